#!/usr/bin/env bash
# `npm run test:vm`: the two-VM suite (e2e-vm/) from a clone, as root. Installs the host tools it needs (qemu,
# mmdebstrap) when missing, builds ferry (npm ci once, tsc -b), then runs jest on e2e-vm/, which boots the guests
# (scripts/vm/lab.sh), migrates between them and stops them. Extra arguments go to jest.
#   FERRY_VM_STRATEGIES=pre-copy   only these strategies (comma-separated; default all three)
#   FERRY_VM_KEEP=1                leave the guests running afterwards (scripts/vm/lab.sh down stops them)
set -Eeuo pipefail
cd "$(dirname "$0")/../.."
[[ $(id -u) == 0 ]] || { echo "ferry-vm: ERROR: run as root (qemu overlays in /run, image cache in /var/cache); hint: sudo npm run test:vm" >&2; exit 1; }
need=()
command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
command -v qemu-img >/dev/null || need+=(qemu-utils)
command -v mmdebstrap >/dev/null || need+=(mmdebstrap)
command -v mkfs.ext4 >/dev/null || need+=(e2fsprogs)
command -v rsync >/dev/null || need+=(rsync)
if (( ${#need[@]} )); then
  echo "ferry-vm: installing ${need[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get -q -y -o DPkg::Lock::Timeout=300 --no-install-recommends install "${need[@]}" >/dev/null
fi
if [[ ! -f node_modules/.package-lock.json || package-lock.json -nt node_modules/.package-lock.json ]]; then
  echo "ferry-vm: npm ci"
  npm ci --no-audit --no-fund --loglevel=error
fi
# Incremental, as in setup.sh: the guests get this addon, so it must match the sources (a merge may add to it).
(cd packages/native && npx node-gyp build --loglevel=error >/dev/null)
npx tsc -b
T0=$SECONDS
status=0
npx jest -c e2e-vm/jest.config.js --ci "$@" || status=$?
echo "ferry-vm: two-VM suite took $((SECONDS - T0)) s"
exit $status
