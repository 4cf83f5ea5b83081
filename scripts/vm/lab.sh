#!/usr/bin/env bash
# Two Debian 12 qemu guests for the two-VM suite, joined by a private link and reachable from this host only on
# loopback ports. Root.
#   lab.sh up            build or reuse the image (build-image.sh), make ferry's app disk (app-disk.sh), boot g1, g2
#   lab.sh exec gN -- ARGV   run ARGV as root in guest N over SSH (each argument quoted for the remote shell)
#   lab.sh ssh-config    path of an ssh_config with Host g1 and g2 (ssh -F FILE g1)
#   lab.sh guests        the guests' names (as ferry's hosts.yaml in the guests knows them)
#   lab.sh down          stop both guests and delete their overlays
# Environment: FERRY_VM_NAME (default ferryvm; names the run directory /run/NAME and the guests' processes),
# FERRY_VM_PORT_BASE (default 22700: g1 ssh BASE+1, g2 ssh BASE+2, the private link BASE+3),
# FERRY_VM_SMP (default 1), FERRY_VM_MEM_MIB (default 1536), FERRY_VM_BOOT_TIMEOUT (s, default 600).
#
# Layout of the guests: eth0 is qemu's user network (restrict=on: no way out; the host's 127.0.0.1:PORT forwards to
# sshd), eth1 the link between the guests (10.98.0.1 and 10.98.0.2, a qemu socket netdev over loopback). Direct
# kernel boot with busybox init (no systemd); /dev/vda is a qcow2 overlay of the cached image, thrown away by down,
# /dev/vdb the read-only app disk. KVM here only runs PVM guest kernels, so Debian's kernel runs under TCG.
set -Eeuo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
NAME=${FERRY_VM_NAME:-ferryvm}
[[ $NAME =~ ^ferryvm[a-z0-9-]{0,16}$ ]] || { echo "lab.sh: FERRY_VM_NAME must start with ferryvm" >&2; exit 2; }
RUN=/run/$NAME
BASE=${FERRY_VM_PORT_BASE:-22700}
SMP=${FERRY_VM_SMP:-1}
MEM=${FERRY_VM_MEM_MIB:-1536}
BOOT_TIMEOUT=${FERRY_VM_BOOT_TIMEOUT:-600}

say() { echo "ferry-vm: $*" >&2; }
die() { echo "ferry-vm: ERROR: $1${2:+; hint: $2}" >&2; exit 1; }
ssh_port() { echo $((BASE + $1)); }

# A pid from our pid file is ours only while its command line still names our run directory.
guest_pid() { # guest_pid N: the qemu of guest N, or nothing
  local f=$RUN/g$1.pid p
  [[ -f $f ]] || return 0
  p=$(cat "$f")
  [[ $p =~ ^[0-9]+$ ]] && tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -qF -- "$RUN/g$1.qcow2" && echo "$p"
  return 0
}

banner() { # banner N: true once guest N's sshd greets (user-net forwards accept before the guest listens)
  timeout 5 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1" && head -c 8 <&3' _ "$(ssh_port "$1")" 2>/dev/null | grep -q '^SSH-2.0'
}

boot() { # boot N IMAGE_DIR
  local n=$1 img=$2 link
  qemu-img create -q -f qcow2 -F raw -b "$img/rootfs.ext4" "$RUN/g$n.qcow2"
  # g1 listens on the link port, g2 connects to it: start g1 first.
  if [[ $n == 1 ]]; then link="listen=127.0.0.1:$(ssh_port 3)"; else link="connect=127.0.0.1:$(ssh_port 3)"; fi
  qemu-system-x86_64 -name "$NAME-g$n" -accel tcg,thread=multi -cpu max -smp "$SMP" -m "$MEM" \
    -kernel "$img/vmlinuz" -initrd "$img/initrd.img" \
    -append "root=/dev/vda rw console=ttyS0 transparent_hugepage=madvise net.ifnames=0 init=/usr/local/ferryvm/init ferryvm.id=$n" \
    -drive "file=$RUN/g$n.qcow2,if=virtio,format=qcow2,cache=unsafe" \
    -drive "file=$RUN/app.ext4,if=virtio,format=raw,readonly=on" \
    -netdev "user,id=up,restrict=on,hostfwd=tcp:127.0.0.1:$(ssh_port "$n")-:22" -device "virtio-net-pci,netdev=up,mac=52:54:00:98:00:0$n" \
    -netdev "socket,id=link,$link" -device "virtio-net-pci,netdev=link,mac=52:54:00:98:01:0$n" \
    -display none -monitor none -serial "file:$RUN/g$n.console" \
    -daemonize -pidfile "$RUN/g$n.pid"
}

write_ssh_config() { # write_ssh_config IMAGE_DIR
  local img=$1 n
  : >"$RUN/known_hosts"
  for n in 1 2; do echo "[127.0.0.1]:$(ssh_port "$n") $(cut -d' ' -f1,2 "$img/keys/g$n.pub")" >>"$RUN/known_hosts"; done
  cp "$img/keys/client_ed25519" "$RUN/client_ed25519"
  cat >"$RUN/ssh_config" <<EOF
Host g1 g2
  User root
  HostName 127.0.0.1
  IdentityFile $RUN/client_ed25519
  IdentitiesOnly yes
  UserKnownHostsFile $RUN/known_hosts
  StrictHostKeyChecking yes
  BatchMode yes
  ConnectTimeout 60
  ServerAliveInterval 15
  ServerAliveCountMax 8
Host g1
  Port $(ssh_port 1)
Host g2
  Port $(ssh_port 2)
EOF
}

# The suite's teardown (down) removes $RUN, console included: put the console's end into the error itself.
boot_failed() { # boot_failed N MESSAGE
  say "last lines of guest $1's console ($RUN/g$1.console):"
  tail -n 30 "$RUN/g$1.console" 2>/dev/null | sed 's/^/  | /' >&2 || true
  die "$2" "the console lines above; FERRY_VM_BOOT_TIMEOUT=SECONDS allows more time under load"
}

up() {
  [[ $(id -u) == 0 ]] || die "must run as root" "sudo $0 up"
  local img t0=$SECONDS tb n
  if [[ -n $(guest_pid 1)$(guest_pid 2) ]]; then die "guests of $NAME are already running" "$0 down"; fi
  img=$(bash "$HERE/build-image.sh") || die "could not build the guest image" "see the lines above"
  rm -rf "$RUN"; mkdir -m 700 "$RUN"
  echo "$img" >"$RUN/image"
  say "app disk"
  bash "$HERE/app-disk.sh" "$RUN/app.ext4"
  write_ssh_config "$img"
  say "booting g1 and g2 (TCG: about a minute, several under load)"
  # The boot deadline starts here: a rebuilt image (5-35 min) must not eat the guests' time to boot.
  tb=$SECONDS
  boot 1 "$img"; boot 2 "$img"
  for n in 1 2; do
    until banner "$n"; do
      [[ -n $(guest_pid "$n") ]] || boot_failed "$n" "guest $n exited during boot"
      (( SECONDS - tb < BOOT_TIMEOUT )) || boot_failed "$n" "guest $n did not start sshd within $BOOT_TIMEOUT s of booting"
      sleep 2
    done
  done
  say "booted in $((SECONDS - tb)) s, up in $((SECONDS - t0)) s (ssh -F $RUN/ssh_config g1)"
}

down() {
  local n p
  for n in 1 2; do
    p=$(guest_pid "$n")
    [[ -n $p ]] || continue
    kill "$p" 2>/dev/null || true
    for _ in $(seq 50); do [[ -d /proc/$p ]] || break; sleep 0.1; done
    [[ -d /proc/$p ]] && kill -9 "$p" 2>/dev/null || true
  done
  rm -rf "$RUN"
}

guest_exec() { # guest_exec gN -- ARGV...
  local host=$1; shift
  [[ $host =~ ^g[12]$ ]] || die "no guest '$host'" "g1 or g2"
  [[ ${1:-} == -- ]] && shift
  [[ -f $RUN/ssh_config ]] || die "the lab is not up" "$0 up"
  # ssh joins its arguments into one remote shell line: quote each one so none is read as shell syntax.
  local quoted=() a
  for a in "$@"; do quoted+=("$(printf '%q' "$a")"); done
  exec ssh -F "$RUN/ssh_config" "$host" -- "${quoted[@]}"
}

case ${1:-} in
  up) up ;;
  down) down ;;
  exec) shift; guest_exec "$@" ;;
  ssh-config) echo "$RUN/ssh_config" ;;
  guests) echo "g1 g2" ;;
  *) sed -n '2,11p' "$0" >&2; exit 2 ;;
esac
