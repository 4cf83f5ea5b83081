#!/usr/bin/env bash
# app-disk.sh OUT: puts this checkout's built ferry (dist/, the native addon, runtime node_modules, the e2e helpers and fault-bin
# and the static test workloads) on an ext4 disk image OUT that the guests mount read-only at /opt/ferry/app.
# app-disk.sh --dir OUT: the same files in a directory OUT (the Vagrant lab syncs it into its VMs, FERRY_VAGRANT_APP).
# Made for every run, so the cached guest image never holds a stale ferry. Run `npx tsc -b` first.
set -Eeuo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
MODE=disk
if [[ ${1:-} == --dir ]]; then MODE=dir; shift; fi
OUT=${1:?usage: app-disk.sh [--dir] OUT}
die() { echo "ferry-vm-app: ERROR: $1${2:+; hint: $2}" >&2; exit 1; }

for p in native core migrate cli; do
  [[ -f $ROOT/packages/$p/dist/index.js || -f $ROOT/packages/$p/dist/main.js ]] || die "packages/$p is not built" "run npx tsc -b"
done
[[ -f $ROOT/packages/native/build/Release/ferry_native.node ]] || die "the native addon is not built" "run npm ci"

if [[ $MODE == dir ]]; then
  rm -rf "$OUT"; mkdir -m 755 "$OUT"; STAGE=$OUT
else
  STAGE=$(mktemp -d /tmp/ferryvm-app.XXXXXX)
  trap 'rm -rf "$STAGE"' EXIT
fi
# The guests only run ferry and container-ctl: the production dependencies (npm's own list) and none of the compilers,
# type definitions and test runners, a third of the files (fewer to copy into a VM under TCG).
deps=$(cd "$ROOT" && npm ls --omit=dev --all --parseable 2>/dev/null | sed "s|^$ROOT/||" | grep '^node_modules/' | sort -u) || true
[[ -n $deps ]] || die "npm ls found no production dependencies" "run npm ci"
{ printf '%s\n' package.json packages e2e/bin e2e/fault-bin e2e/package.json fixtures scripts/provision-host.sh; echo "$deps"; } |
  rsync -a -r --files-from=- --exclude=.git --exclude='*.ts' --exclude='*.map' \
    --exclude='/packages/native/build/Release/obj.target' --exclude='/packages/*/src' --exclude='*.tsbuildinfo' "$ROOT/" "$STAGE/"
# The e2e helpers build their workload with a C compiler on first use; the guests get them compiled here.
node -e '
  const { buildFixture } = require(process.argv[1]);
  for (const name of ["workload"]) console.log(buildFixture(name));
' "$ROOT/packages/core/dist/testing/fixtures.js" | while read -r f; do mkdir -p "$STAGE/.fixtures" && cp "$f" "$STAGE/.fixtures/"; done
[[ $MODE == dir ]] && exit 0
rm -f "$OUT"
mkfs.ext4 -q -L ferryapp -d "$STAGE" "$OUT" 512M || die "mkfs.ext4 -d failed" ""
chmod 600 "$OUT"
