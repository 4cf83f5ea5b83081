#!/usr/bin/env bash
# Two Vagrant VMs from the project's Vagrantfile, for the two-VM suite (e2e-vm/, FERRY_VM_LAB=vagrant). Root.
#   lab.sh up               the box (box.sh), ferry's app dir, the lab's network namespace with its own virtlogd and
#                           libvirtd, then `vagrant up` of ferry1 and ferry2 (provisioned by the Vagrantfile)
#   lab.sh exec NAME -- ARGV   run ARGV as root in VM NAME over SSH (each argument quoted for the remote shell)
#   lab.sh guests           the VMs' names, as ferry's hosts.yaml in the VMs knows them
#   lab.sh ssh-config       path of an ssh_config with Host ferry1 and ferry2 (run ssh in the namespace: see exec)
#   lab.sh down             `vagrant destroy -f`, stop the daemons, end whatever still runs in the namespace, delete it
# Environment: FERRY_VAGRANT_CACHE (default /var/cache/ferry/vagrant: the box, Vagrant's home, libvirt's state),
# FERRY_VAGRANT_CPUS / FERRY_VAGRANT_MEMORY_MIB (per VM, default 1 / 1536 here), FERRY_VM_BOOT_TIMEOUT (s, default 2100).
#
# Network: every packet of the VMs stays in the network namespace ferryvagrant: libvirtd runs in it (with a private
# mount namespace for its state, so the machine's /etc/libvirt and /run/libvirt are untouched), and so do its
# bridges, dnsmasq, the qemu processes, Vagrant (its SSH and rsync) and the suite's SSH. The namespace has no link to
# the machine's network; the Vagrantfile's defaults (192.168.56.0/24, vagrant-libvirt's 192.168.121.0/24) exist only
# inside it. Whatever runs in it at `down` is the lab's and is ended by pid.
set -Eeuo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
NS=ferryvagrant
RUN=/run/$NS
CACHE=${FERRY_VAGRANT_CACHE:-/var/cache/ferry/vagrant}
STATE=$CACHE/libvirt
URI="qemu:///system?socket=$RUN/libvirt/libvirt-sock"
GUESTS=(ferry1 ferry2)
BOOT_TIMEOUT=${FERRY_VM_BOOT_TIMEOUT:-2100}  # a loaded 2-core machine took over 15 min (900 s ran out)

say() { echo "ferry-vagrant: $*" >&2; }
die() { echo "ferry-vagrant: ERROR: $1${2:+; hint: $2}" >&2; exit 1; }
stamp() { local l; while IFS= read -r l; do printf '%(%T)T %s\n' -1 "$l"; done; }  # where Vagrant's time goes
in_ns() { nsenter --net="/run/netns/$NS" -- "$@"; }
virsh_() { virsh -q -c "$URI" "$@"; }

# Vagrant as the suite uses it: its own home (the box), machine state in $RUN, libvirt through the lab's socket,
# and the Vagrantfile's settings for a machine without KVM (TCG), VMs without internet (ferry prebuilt here) and
# the hostname set by the provisioning rather than by Vagrant's slow step.
vg() {
  VAGRANT_HOME=$CACHE/home VAGRANT_DOTFILE_PATH=$RUN/dot VAGRANT_CWD=$ROOT VAGRANT_CHECKPOINT_DISABLE=1 \
    VAGRANT_BOX_UPDATE_CHECK_DISABLE=1 VAGRANT_DEFAULT_PROVIDER=libvirt LIBVIRT_DEFAULT_URI=$URI \
    FERRY_VAGRANT_BOX=$(cat "$RUN/box") FERRY_VAGRANT_APP=$RUN/app FERRY_VAGRANT_LIBVIRT_DRIVER=qemu FERRY_VAGRANT_HOSTNAME_STEP=0 \
    FERRY_VAGRANT_CPUS=${FERRY_VAGRANT_CPUS:-1} FERRY_VAGRANT_MEMORY_MIB=${FERRY_VAGRANT_MEMORY_MIB:-1536} \
    in_ns vagrant "$@"
}

ns_inode() { stat -L -c %i "/run/netns/$NS" 2>/dev/null; }
ns_pids() { # every process in the lab's network namespace
  local ino p
  ino=$(ns_inode) || return 0
  for p in /proc/[0-9]*; do
    [[ $(stat -L -c %i "$p/ns/net" 2>/dev/null) == "$ino" ]] && echo "${p#/proc/}"
  done
  return 0
}
daemon_pid() { # daemon_pid NAME: the pid in $RUN/NAME.pid, if it is that daemon and lives in the lab's namespace
  local p
  p=$(cat "$RUN/$1.pid" 2>/dev/null) || return 0
  [[ $p =~ ^[0-9]+$ && $(readlink "/proc/$p/exe" 2>/dev/null) == */$1 && $(stat -L -c %i "/proc/$p/ns/net" 2>/dev/null) == "$(ns_inode)" ]] && echo "$p"
  return 0
}
stop_pids() { # stop_pids PID...: TERM, up to 10 s, then KILL
  local p left
  (($#)) || return 0
  kill "$@" 2>/dev/null || true
  for _ in $(seq 100); do
    left=(); for p in "$@"; do [[ -d /proc/$p ]] && left+=("$p"); done
    ((${#left[@]})) || return 0
    sleep 0.1
  done
  kill -9 "${left[@]}" 2>/dev/null || true
}

# libvirt's configuration and state for the lab only: the package's files as a start, and a qemu.conf for root's
# throwaway VMs (qemu as root reads the box's kernel in Vagrant's home; no cgroups on this shared machine).
prepare_state() {
  [[ -f $STATE/etc/qemu.conf ]] && return 0
  mkdir -p "$STATE"/{etc,lib,cache,log}; chmod 700 "$STATE"
  cp -a /etc/libvirt/. "$STATE/etc/"
  rm -f "$STATE"/etc/qemu/networks/*.xml "$STATE"/etc/qemu/networks/autostart/*.xml
  cat >"$STATE/etc/qemu.conf" <<'EOF'
# ferry's Vagrant lab (scripts/vagrant/lab.sh): root's test VMs in the lab's own namespaces.
user = "root"
group = "root"
dynamic_ownership = 0
remember_owner = 0
security_driver = "none"
cgroup_controllers = [ ]
EOF
}

start_daemons() {
  mkdir -m 700 -p "$RUN/libvirt"
  # A fresh sysfs: this namespace's links under /sys/class/net (libvirt manages its bridges there). The bind mounts
  # give libvirtd and virtlogd the lab's state; they share this mount namespace, the machine never sees it.
  in_ns unshare --mount --propagation private -- bash -c '
    set -e
    mount -t sysfs sysfs /sys
    mkdir -p /run/libvirt  # a mount point only (the machine has none without a libvirtd of its own)
    mount --bind "$1/etc" /etc/libvirt
    mount --bind "$1/lib" /var/lib/libvirt
    mount --bind "$1/cache" /var/cache/libvirt
    mount --bind "$1/log" /var/log/libvirt
    mount --bind "$2/libvirt" /run/libvirt
    virtlogd -d -p "$2/virtlogd.pid"
    libvirtd -d -p "$2/libvirtd.pid"
  ' _ "$STATE" "$RUN"
  for _ in $(seq 150); do
    [[ -S $RUN/libvirt/libvirt-sock ]] && virsh_ version >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  die "libvirtd did not answer on $RUN/libvirt/libvirt-sock" "see $STATE/log"
}

# Domains and volumes of an earlier run that did not end cleanly (all domains of this libvirtd are the lab's), and
# libvirt's copies of older boxes.
clean_libvirt() {
  local d v box
  for d in $(virsh_ list --all --name 2>/dev/null); do
    virsh_ destroy "$d" >/dev/null 2>&1 || true
    virsh_ undefine "$d" --remove-all-storage --nvram >/dev/null 2>&1 || virsh_ undefine "$d" >/dev/null 2>&1 || true
  done
  box=$(sed 's|/|-VAGRANTSLASH-|' "$RUN/box" 2>/dev/null) || return 0
  for v in $(virsh_ vol-list default 2>/dev/null | awk '{print $1}'); do
    [[ $v == ferry-VAGRANTSLASH-bookworm-* && $v != "${box}_"* ]] && virsh_ vol-delete "$v" --pool default >/dev/null 2>&1 || true
  done
}

write_ssh_config() {
  local name ip keys=$RUN/dot/ferry-keys
  : >"$RUN/known_hosts"
  : >"$RUN/ssh_config"
  for name in "${GUESTS[@]}"; do
    ip=$(vg ssh-config "$name" | awk '$1 == "HostName" {print $2}')
    [[ -n $ip ]] || die "no address for $name" "vagrant ssh-config $name"
    # The host key the Vagrantfile made for this VM: checked, never learnt.
    echo "$ip $(cut -d' ' -f1,2 "$keys/$name/ssh_host_ed25519_key.pub")" >>"$RUN/known_hosts"
    cat >>"$RUN/ssh_config" <<EOF
Host $name
  HostName $ip
  User root
  IdentityFile $keys/root_ed25519
  IdentitiesOnly yes
  UserKnownHostsFile $RUN/known_hosts
  StrictHostKeyChecking yes
  BatchMode yes
  ConnectTimeout 60
  ServerAliveInterval 15
  ServerAliveCountMax 8
EOF
  done
}

up() {
  [[ $(id -u) == 0 ]] || die "must run as root" "sudo $0 up"
  [[ -z $(ns_pids) ]] || die "the lab is already running" "$0 down"
  local t0=$SECONDS t box
  box=$(VAGRANT_HOME=$CACHE/home VAGRANT_CHECKPOINT_DISABLE=1 bash "$HERE/box.sh") || die "could not make the box" "see the lines above"
  ip netns del "$NS" 2>/dev/null || true
  rm -rf "$RUN"; mkdir -m 700 "$RUN"
  echo "$box" >"$RUN/box"
  say "box $box ready after $((SECONDS - t0)) s"
  bash "$ROOT/scripts/vm/app-disk.sh" --dir "$RUN/app"
  ip netns add "$NS"
  ip -n "$NS" link set lo up
  prepare_state
  start_daemons
  clean_libvirt
  t=$SECONDS
  say "vagrant up ferry1 ferry2 (TCG: several minutes; log: $RUN/up.log)"
  if ! timeout "$BOOT_TIMEOUT" bash "$0" vagrant up --provider libvirt 2>&1 | stamp >"$RUN/up.log"; then
    tail -40 "$RUN/up.log" >&2
    die "vagrant up failed" "see $RUN/up.log; $0 down ends the lab"
  fi
  say "vagrant up took $((SECONDS - t)) s"
  write_ssh_config
  say "up in $((SECONDS - t0)) s (ssh: $0 exec ferry1 -- CMD)"
}

down() {
  local t0=$SECONDS
  if [[ -n $(daemon_pid libvirtd) && -f $RUN/box ]]; then
    # One VM after the other: vagrant-libvirt 0.11.2's --parallel destroy failed for one of them ("uninitialized
    # constant ... ProvisionerCleanup"), and the two take seconds either way.
    timeout 300 bash "$0" vagrant destroy -f 2>&1 | stamp >"$RUN/destroy.log" \
      || { say "vagrant destroy failed (see below); removing the domains with virsh"; tail -20 "$RUN/destroy.log" >&2; }
    clean_libvirt
  fi
  stop_pids $(daemon_pid libvirtd)
  stop_pids $(daemon_pid virtlogd)
  # Whatever is left in the namespace (a qemu whose libvirtd died, dnsmasq, ssh, an interrupted vagrant) is the lab's.
  stop_pids $(ns_pids)
  ip netns del "$NS" 2>/dev/null || true
  rmdir /run/libvirt 2>/dev/null || true  # the mount point start_daemons made, unless something else uses it
  # The last run's Vagrant logs outlive it (libvirt's own, with the VMs' qemu logs, are in $STATE/log).
  if compgen -G "$RUN/*.log" >/dev/null; then mkdir -p "$CACHE/logs" && cp "$RUN"/*.log "$CACHE/logs/"; fi
  rm -rf "$RUN"
  say "down in $((SECONDS - t0)) s"
}

guest_exec() { # guest_exec NAME -- ARGV...
  local host=$1; shift
  [[ " ${GUESTS[*]} " == *" $host "* ]] || die "no VM '$host'" "${GUESTS[*]}"
  [[ ${1:-} == -- ]] && shift
  [[ -s $RUN/ssh_config ]] || die "the lab is not up" "$0 up"
  local quoted=() a
  for a in "$@"; do quoted+=("$(printf '%q' "$a")"); done
  exec nsenter --net="/run/netns/$NS" -- ssh -F "$RUN/ssh_config" "$host" -- "${quoted[@]}"
}

case ${1:-} in
  up) up ;;
  down) down ;;
  exec) shift; guest_exec "$@" ;;
  guests) echo "${GUESTS[*]}" ;;
  ssh-config) echo "$RUN/ssh_config" ;;
  vagrant) shift; vg "$@" ;;
  *) sed -n '2,11p' "$0" >&2; exit 2 ;;
esac
