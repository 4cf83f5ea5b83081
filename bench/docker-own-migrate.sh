#!/usr/bin/env bash
# Docker's own checkpoint-copy-restore path, the baseline of the benchmark's Docker rows: what an operator would
# script with the docker CLI alone. Run it on the source host (inside sandbox host h1, DOCKER_HOST set); it moves
# Docker container NAME to DEST and prints one JSON line with its timings and bytes.
#
#   docker-own-migrate.sh NAME --to h2 --ssh-config DIR/ssh_config
#
# Steps (the container is stopped from step 2 to the end of step 4):
#   1. on DEST: `docker create` the same container (same image, command, --network none), while the source runs
#   2. `docker checkpoint create --checkpoint-dir WORK NAME cp` (Docker/containerd run CRIU; the container exits)
#   3. tar -C WORK/cp -cf - . | ssh DEST 'tar -x' into the new container's checkpoint directory
#      (DOCKER_ROOT/containers/ID/checkpoints/cp: Docker 20.10 refuses a custom --checkpoint-dir at start)
#   4. ssh DEST `docker start --checkpoint cp NAME`
# The image must be on DEST already (the benchmark loads it on both hosts first). No rollback.
set -Eeuo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/own-migrate-prelude.sh"
DOCKER=/usr/bin/docker # /usr/local/bin/docker may be another client
own_migrate_args docker-own-migrate.sh '^[a-zA-Z0-9][a-zA-Z0-9_.-]*$' "$@"
WORK=/var/lib/ferry/bench-docker/$NAME # the sandbox host's private tmpfs
T_START=$(now_ms)

STEP=create-on-destination
image=$($DOCKER inspect -f '{{.Config.Image}}' "$NAME")
mapfile -t cmd < <($DOCKER inspect -f '{{range .Config.Cmd}}{{println .}}{{end}}' "$NAME" | sed '/^$/d')
# The command goes over ssh as separate, quoted words: printf %q, no string built from unquoted input.
remote_cmd=$(printf '%q ' "$DOCKER" create --name "$NAME" --network none "$image" "${cmd[@]}")
"${SSH[@]}" "$remote_cmd" >/dev/null
dest_root=$("${SSH[@]}" "$(printf '%q ' "$DOCKER" info -f '{{.DockerRootDir}}')")
dest_id=$("${SSH[@]}" "$(printf '%q ' "$DOCKER" inspect -f '{{.Id}}' "$NAME")")
dest_dir=$dest_root/containers/$dest_id/checkpoints/cp
T_CREATED=$(now_ms)

STEP=checkpoint
rm -rf "$WORK" && mkdir -p -m 0700 "$WORK"
T_FREEZE=$(now_ms)
$DOCKER checkpoint create --checkpoint-dir "$WORK" "$NAME" cp >/dev/null
T_DUMPED=$(now_ms)

STEP=transfer
bytes=$(du -sb "$WORK/cp" | cut -f1)
tar -C "$WORK/cp" -cf - . | "${SSH[@]}" "$(printf '%q ' sh -c 'mkdir -p -m 0700 "$1" && tar -C "$1" -xf -' sh "$dest_dir")"
T_SENT=$(now_ms)

STEP=restore
"${SSH[@]}" "$(printf '%q ' "$DOCKER" start --checkpoint cp "$NAME")" >/dev/null
T_RUNNING=$(now_ms)

STEP=cleanup
$DOCKER rm -f "$NAME" >/dev/null
rm -rf "$WORK"
T_END=$(now_ms)

printf '{"ok":true,"downtimeMs":%d,"totalMs":%d,"bytesSent":%d,"bytesSentFrozen":%d,"phasesMs":{"create-on-destination":%d,"checkpoint":%d,"transfer-images":%d,"restore":%d,"cleanup":%d}}\n' \
  $((T_RUNNING - T_FREEZE)) $((T_END - T_START)) "$bytes" "$bytes" \
  $((T_CREATED - T_START)) $((T_DUMPED - T_FREEZE)) $((T_SENT - T_DUMPED)) $((T_RUNNING - T_SENT)) $((T_END - T_RUNNING))
