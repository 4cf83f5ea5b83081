#!/usr/bin/env bash
# `npm run test:vm` and `npm run test:vagrant`: the two-VM suite (e2e-vm/) from a clone, as root. Installs the host
# tools it needs when missing, builds ferry (npm ci once, tsc -b), then runs jest on e2e-vm/, which brings the VMs up
# through the lab (FERRY_VM_LAB: qemu, scripts/vm/lab.sh, the default; or vagrant, scripts/vagrant/lab.sh), migrates
# between them and takes them down. Extra arguments go to jest.
#   FERRY_VM_STRATEGIES=pre-copy   only these strategies (comma-separated; default all three)
#   FERRY_VM_KEEP=1                leave the VMs running afterwards (`bash LAB down` stops them)
#   FERRY_VM_REUSE=1               test the VMs a FERRY_VM_KEEP=1 run left running instead of bringing them up
# Whatever ends the run (a failed test, Ctrl-C, SIGTERM), the lab is taken down unless FERRY_VM_KEEP=1.
set -Eeuo pipefail
cd "$(dirname "$0")/../.."
LAB_KIND=${FERRY_VM_LAB:-qemu}
case $LAB_KIND in
  qemu) LAB=scripts/vm/lab.sh ;;
  vagrant) LAB=scripts/vagrant/lab.sh ;;
  *) echo "ferry-vm: ERROR: FERRY_VM_LAB must be qemu or vagrant, not '$LAB_KIND'" >&2; exit 2 ;;
esac
export FERRY_VM_LAB=$LAB_KIND
[[ $(id -u) == 0 ]] || { echo "ferry-vm: ERROR: run as root (VMs, image cache in /var/cache); hint: sudo npm run test:vm" >&2; exit 1; }
need=()
command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
command -v qemu-img >/dev/null || need+=(qemu-utils)
command -v mmdebstrap >/dev/null || need+=(mmdebstrap)
command -v mkfs.ext4 >/dev/null || need+=(e2fsprogs)
command -v rsync >/dev/null || need+=(rsync)
if [[ $LAB_KIND == vagrant ]]; then
  command -v vagrant >/dev/null || need+=(vagrant)
  [[ -d /usr/share/vagrant-plugins/plugins.d ]] && grep -qs libvirt /usr/share/vagrant-plugins/plugins.d/* || need+=(vagrant-libvirt)
  command -v libvirtd >/dev/null || need+=(libvirt-daemon-system)
  command -v virsh >/dev/null || need+=(libvirt-clients)
  command -v dnsmasq >/dev/null || need+=(dnsmasq-base)
fi
if (( ${#need[@]} )); then
  echo "ferry-vm: installing ${need[*]}"
  # Package scripts would start libvirtd (and its default network) in the machine's own network namespace: the lab
  # runs its own, in a namespace of its own. Deny service starts for the install unless the host already does.
  deny=
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\n# ferry test-vm.sh: no service starts during its install\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d; deny=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get -q -y -o DPkg::Lock::Timeout=300 --no-install-recommends install "${need[@]}" >/dev/null || status=$?
  [[ -n $deny ]] && rm -f /usr/sbin/policy-rc.d
  [[ ${status:-0} == 0 ]] || { echo "ferry-vm: ERROR: apt-get install ${need[*]} failed" >&2; exit 1; }
fi
if [[ ! -f node_modules/.package-lock.json || package-lock.json -nt node_modules/.package-lock.json ]]; then
  echo "ferry-vm: npm ci"
  npm ci --no-audit --no-fund --loglevel=error
fi
# Incremental, as in setup.sh: the guests get this addon, so it must match the sources (a merge may add to it).
(cd packages/native && npx node-gyp build --loglevel=error >/dev/null)
npx tsc -b
# The image (and for Vagrant the box) before jest: a cold build takes 5 min on a quiet machine and over 35 under
# load, which no deadline of the VMs' bring-up in the tests should have to include. Cached: a second or two.
T_PREP=$SECONDS
# The box goes into the lab's Vagrant home (scripts/vagrant/lab.sh), not root's ~/.vagrant.d: a second copy costs 1.3 GB.
if [[ $LAB_KIND == vagrant ]]; then
  VAGRANT_HOME=${FERRY_VAGRANT_CACHE:-/var/cache/ferry/vagrant}/home VAGRANT_CHECKPOINT_DISABLE=1 bash scripts/vagrant/box.sh >/dev/null
else
  bash scripts/vm/build-image.sh >/dev/null
fi
echo "ferry-vm: image$([[ $LAB_KIND == vagrant ]] && echo ' and box') ready in $((SECONDS - T_PREP)) s"

jest_pid=
finish() {
  local rc=$? p
  trap - EXIT INT TERM HUP
  # jest leads a process group of its own: ending the group ends what it started too (a lab coming up, ssh).
  if [[ -n $jest_pid ]]; then
    kill -TERM -- "-$jest_pid" 2>/dev/null || true
    for p in $(seq 100); do kill -0 -- "-$jest_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$jest_pid" 2>/dev/null || true
  fi
  if [[ ${FERRY_VM_KEEP:-} != 1 ]]; then bash "$LAB" down || rc=1; fi
  echo "ferry-vm: two-VM suite ($LAB_KIND) took $((SECONDS - T0)) s"
  exit "$rc"
}
T0=$SECONDS
trap finish EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP
# In the background and in its own session, so that a signal reaches the trap at once rather than after jest.
setsid node node_modules/.bin/jest -c e2e-vm/jest.config.js --ci "$@" &
jest_pid=$!
rc=0
wait "$jest_pid" || rc=$?
jest_pid=
exit "$rc"
