#!/usr/bin/env bash
# app-disk.sh OUT: puts this checkout's built ferry (dist/, the native addon, runtime node_modules, the e2e helpers
# and the static test workloads) on an ext4 disk image OUT that the guests mount read-only at /opt/ferry/app.
# Made for every run, so the cached guest image never holds a stale ferry. Run `npx tsc -b` first.
set -Eeuo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
OUT=${1:?usage: app-disk.sh OUT}
die() { echo "ferry-vm-app: ERROR: $1${2:+; hint: $2}" >&2; exit 1; }

for p in native core migrate cli; do
  [[ -f $ROOT/packages/$p/dist/index.js || -f $ROOT/packages/$p/dist/main.js ]] || die "packages/$p is not built" "run npx tsc -b"
done
[[ -f $ROOT/packages/native/build/Release/ferry_native.node ]] || die "the native addon is not built" "run npm ci"

STAGE=$(mktemp -d /tmp/ferryvm-app.XXXXXX)
trap 'rm -rf "$STAGE"' EXIT
# Compilers, type definitions and test runners stay on the host: the guests only run ferry and container-ctl.
rsync -a --exclude=.git --exclude='*.ts' --exclude='*.map' --exclude='/node_modules/typescript' --exclude='/node_modules/@swc' \
  --exclude='/node_modules/@babel' --exclude='/node_modules/@types' --exclude='/node_modules/@jest' --exclude='/node_modules/jest*' \
  --exclude='/packages/native/build/Release/obj.target' --exclude='/bench' --exclude='/docs' \
  --include='/package.json' --include='/packages/***' --include='/node_modules/***' --include='/e2e/' --include='/e2e/bin/***' \
  --include='/e2e/package.json' --include='/fixtures/***' --include='/scripts/' --include='/scripts/provision-host.sh' --exclude='*' "$ROOT/" "$STAGE/"
# The e2e helpers build their workload with a C compiler on first use; the guests get them compiled here.
node -e '
  const { buildFixture } = require(process.argv[1]);
  for (const name of ["workload"]) console.log(buildFixture(name));
' "$ROOT/packages/core/dist/testing/fixtures.js" | while read -r f; do mkdir -p "$STAGE/.fixtures" && cp "$f" "$STAGE/.fixtures/"; done
rm -f "$OUT"
mkfs.ext4 -q -L ferryapp -d "$STAGE" "$OUT" 512M || die "mkfs.ext4 -d failed" ""
chmod 600 "$OUT"
