#!/usr/bin/env bash
# Podman's own checkpoint-copy-restore path, the baseline of the benchmark's Podman rows: what an operator would
# script with the podman CLI alone. Run it on the source host (inside sandbox host h1); it moves Podman container NAME
# to DEST and prints one JSON line with its timings and bytes.
#
#   podman-own-migrate.sh NAME --to h2 --ssh-config DIR/ssh_config
#
# Steps (the container is stopped from step 1 to the end of step 3):
#   1. `podman container checkpoint --export FILE NAME` (CRIU images, rootfs diff, config; zstd, Podman's default)
#   2. cat FILE | ssh DEST 'cat > FILE'
#   3. ssh DEST `podman container restore --import FILE`
# The image must be on DEST already (the benchmark loads it on both hosts first). No rollback.
set -Eeuo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/own-migrate-prelude.sh"
own_migrate_args podman-own-migrate.sh '^[a-zA-Z0-9][a-zA-Z0-9_.-]*$' "$@"
FILE=/var/lib/ferry/bench-podman-$NAME.tar.zst # each sandbox host's private tmpfs
T_START=$(now_ms)

STEP=checkpoint
podman container checkpoint --export "$FILE" "$NAME" >/dev/null
T_DUMPED=$(now_ms)
BYTES=$(stat -c %s "$FILE")

STEP=copy
"${SSH[@]}" "$(printf '%q ' sh -c 'cat > "$1"' sh "$FILE")" <"$FILE"
T_COPIED=$(now_ms)

STEP=restore
"${SSH[@]}" "$(printf '%q ' podman container restore --import "$FILE")" >/dev/null
T_END=$(now_ms)
rm -f "$FILE"
"${SSH[@]}" "$(printf '%q ' rm -f "$FILE")"
podman rm -f "$NAME" >/dev/null 2>&1 || true

printf '{"ok":true,"downtimeMs":%d,"totalMs":%d,"bytesSent":%d,"phasesMs":{"checkpoint":%d,"copy":%d,"restore":%d}}\n' \
  $((T_END - T_START)) $((T_END - T_START)) "$BYTES" $((T_DUMPED - T_START)) $((T_COPIED - T_DUMPED)) $((T_END - T_COPIED))
