#!/usr/bin/env bash
# LXC's own checkpoint-copy-restore path, the baseline of the benchmark's LXC rows: what an operator would script
# with liblxc's tools and ssh, without ferry. Run it on the source host (inside sandbox host h1); it moves LXC
# container NAME (in /var/lib/lxc) to DEST and prints one JSON line with its timings and bytes.
#
#   naive-lxc-migrate.sh NAME --to h2 --ssh-config DIR/ssh_config
#
# Steps (the container is stopped from step 2 to the end of step 4):
#   1. copy the container directory (config and rootfs: tar | ssh; the container still runs)
#   2. lxc-checkpoint -s -D IMAGES (CRIU dumps, liblxc stops the container)
#   3. tar -C IMAGES -cf - . | ssh DEST 'tar -xf -'
#   4. ssh DEST lxc-checkpoint -r -D IMAGES (liblxc restores; its veth joins DEST's lxcbr0)
# Not copied again after the stop: what the container wrote into its rootfs meanwhile (ferry re-syncs it).
# No rollback: if a step after the checkpoint fails, the container is stopped on the source (a restore from IMAGES
# there brings it back).
set -Eeuo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/own-migrate-prelude.sh"
own_migrate_args naive-lxc-migrate.sh '^[A-Za-z0-9_][A-Za-z0-9_.+-]*$' "$@"
LXCPATH=/var/lib/lxc
WORK=/var/lib/ferry/bench-naive/$NAME # a tmpfs private to each sandbox host
IMAGES=$WORK/images
T_START=$(now_ms)

STEP=copy-container
rm -rf -- "$WORK"
mkdir -p "$WORK"
T0=$(now_ms)
tar --totals -C "$LXCPATH" -cf - "$NAME" 2>"$WORK/tar-dir.err" | "${SSH[@]}" "tar -C $LXCPATH -xf -"
DIR_BYTES=$(sed -n 's/^Total bytes written: \([0-9]*\).*/\1/p' "$WORK/tar-dir.err")
T1=$(now_ms)

STEP=checkpoint
mkdir -m 700 "$IMAGES"
lxc-checkpoint -n "$NAME" -s -D "$IMAGES" </dev/null
T2=$(now_ms)

STEP=transfer-images
IMAGE_BYTES=$(du -sb "$IMAGES" | cut -f1)
tar --totals -C "$IMAGES" -cf - . 2>"$WORK/tar.err" | "${SSH[@]}" "rm -rf $IMAGES && mkdir -p -m 700 $IMAGES && tar -C $IMAGES -xf -"
TAR_BYTES=$(sed -n 's/^Total bytes written: \([0-9]*\).*/\1/p' "$WORK/tar.err")
T3=$(now_ms)

STEP=restore
"${SSH[@]}" "lxc-checkpoint -r -n $NAME -D $IMAGES </dev/null >$WORK.restore.out 2>&1 || { cat $WORK.restore.out >&2; exit 1; }"
T4=$(now_ms)

STEP=cleanup
# Not timed: the images on both sides.
"${SSH[@]}" "rm -rf $WORK $WORK.restore.out" || true
rm -rf -- "$WORK"
printf '{"ok":true,"downtimeMs":%d,"totalMs":%d,"bytesSent":%d,"bytesSentFrozen":%d,"imageBytes":%d,"phasesMs":{"copy-bundle":%d,"checkpoint":%d,"transfer-images":%d,"restore":%d},"phaseBytes":{"copy-bundle":%d,"transfer-images":%d}}\n' \
  $((T4 - T1)) $((T4 - T_START)) $((DIR_BYTES + TAR_BYTES)) "$TAR_BYTES" "$IMAGE_BYTES" \
  $((T1 - T0)) $((T2 - T1)) $((T3 - T2)) $((T4 - T3)) "$DIR_BYTES" "$TAR_BYTES"
