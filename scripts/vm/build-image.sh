#!/usr/bin/env bash
# Builds the Debian 12 guest image of the two-VM suite from Debian's packages, without Vagrant Cloud or any other
# download than deb.debian.org, and prints the directory that holds it:
#   rootfs.ext4  vmlinuz  initrd.img  keys/ (the host's client key, g1.pub, g2.pub)  recipe.sha256
# The image is cached in $FERRY_VM_CACHE (default /var/cache/ferry/vm) under a hash of its inputs (this script,
# guest-boot.sh, provision-host.sh, the node binary): a changed recipe builds a new one, an unchanged one is reused.
# ferry itself is not in the image; scripts/vm/app-disk.sh puts the checkout on a second disk for each run.
#
# Inside: mmdebstrap minbase + the kernel, then scripts/provision-host.sh run in the chroot (the same script that
# provisions real hosts and the Vagrant VMs: packages, CRIU 4.2.1 in /opt/ferry/criu, sysctl), the host's node
# binary (guests have no network; ferry needs Node >= 20 and Debian 12 ships 18), per-guest SSH host keys.
# Gotchas: no loop devices needed (mkfs.ext4 -d); the kernel must boot with transparent_hugepage=madvise or
# soft-dirty tracks 2 MiB pages and pre-copy never converges (scripts/vm/lab.sh sets it).
set -Eeuo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
CACHE=${FERRY_VM_CACHE:-/var/cache/ferry/vm}
NODE=${FERRY_VM_NODE:-$(command -v node)}
SIZE=${FERRY_VM_IMAGE_SIZE:-3G}
SUITE=bookworm
MIRROR=${FERRY_VM_MIRROR:-http://deb.debian.org/debian}
# The kernel and what busybox init, runc's network lock, ferry's node and Vagrant (sudo, rsync) need;
# provision-host.sh adds the rest.
BASE_PACKAGES=linux-image-amd64,kmod,busybox-static,iproute2,openssh-server,openssh-client,iptables,runc,procps,libstdc++6,rsync,ca-certificates,apt-utils,sudo

say() { echo "ferry-vm-image: $*" >&2; }
sshd_config() { # sshd_config HOSTKEY PIDFILE
  cat <<EOF
HostKey $1
ListenAddress 0.0.0.0:22
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
AuthorizedKeysFile /root/.ssh/authorized_keys
UsePAM no
UseDNS no
PidFile $2
# Under TCG a login takes seconds: let the test's parallel logins queue instead of being dropped.
MaxStartups 50:30:100
LoginGraceTime 300
Subsystem sftp internal-sftp
EOF
}
die() { echo "ferry-vm-image: ERROR: $1${2:+; hint: $2}" >&2; exit 1; }

[[ $(id -u) == 0 ]] || die "must run as root" "sudo $0"
for t in mmdebstrap mkfs.ext4 ssh-keygen sha256sum; do command -v $t >/dev/null || die "$t not found" "apt-get install mmdebstrap e2fsprogs openssh-client"; done
[[ -x $NODE ]] || die "no node binary to copy into the image" "set FERRY_VM_NODE=/path/to/node (>= 20)"

recipe=$( { cat "$0" "$HERE/guest-boot.sh" "$ROOT/scripts/provision-host.sh"; echo "$SIZE $SUITE $BASE_PACKAGES"; sha256sum <"$NODE"; } | sha256sum | cut -c1-16)
OUT=$CACHE/$recipe
if [[ -f $OUT/recipe.sha256 ]]; then say "cached: $OUT"; echo "$OUT"; exit 0; fi

mkdir -p "$CACHE"; chmod 700 "$CACHE"
# Only one build per recipe at a time (two checkouts may test at once); the second waits and reuses it.
exec 9>"$CACHE/.build-$recipe.lock"
flock 9
if [[ -f $OUT/recipe.sha256 ]]; then say "cached: $OUT"; echo "$OUT"; exit 0; fi

T0=$SECONDS
WORK=$(mktemp -d "$CACHE/.build-$recipe.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
mkdir -m 700 "$WORK/keys" "$WORK/stage"
LOG=$WORK/build.log

say "keys"
ssh-keygen -q -t ed25519 -N '' -C ferryvm-host-client -f "$WORK/keys/client_ed25519"
ssh-keygen -q -t ed25519 -N '' -C ferryvm-guest-client -f "$WORK/stage/guest_client_ed25519"
: >"$WORK/stage/guest_known_hosts"
for n in 1 2; do
  mkdir -p "$WORK/stage/g$n"
  ssh-keygen -q -t ed25519 -N '' -C "ferryvm-g$n" -f "$WORK/stage/g$n/ssh_host_ed25519_key"
  pub=$(cut -d' ' -f1,2 "$WORK/stage/g$n/ssh_host_ed25519_key.pub")
  # The host reaches guest N on a loopback port forward; ssh names such a host [127.0.0.1]:PORT, so the host's
  # known_hosts is written per run by lab.sh from these public keys.
  cp "$WORK/stage/g$n/ssh_host_ed25519_key.pub" "$WORK/keys/g$n.pub"
  echo "10.98.0.$n $pub" >>"$WORK/stage/guest_known_hosts"
  sshd_config "/etc/ssh/ferryvm/g$n/ssh_host_ed25519_key" none >"$WORK/stage/g$n/sshd_config"
done
# The Vagrant box (guest-boot.sh with ferryvm.vagrant=1): the host key the Vagrantfile installs; a pid file, so that
# its provisioning can make sshd reload that key (SIGHUP) without systemd.
mkdir "$WORK/stage/vagrant"
sshd_config /etc/ssh/ssh_host_ed25519_key /run/sshd.pid >"$WORK/stage/vagrant/sshd_config"
# busybox udhcpc's hook: it hands over the lease in the environment ($ip, $mask in bits, $router, $dns).
cat >"$WORK/stage/udhcpc.script" <<'EOF'
#!/bin/sh
case $1 in
  deconfig) ip -4 addr flush dev "$interface"; ip link set "$interface" up ;;
  bound|renew)
    # A renewal of the same lease must not flush the address under the connections that use it.
    [ "$(ip -4 -o addr show dev "$interface" | awk '{print $4}')" = "$ip/$mask" ] || ip -4 addr flush dev "$interface"
    ip addr replace "$ip/$mask" dev "$interface"
    [ -z "$router" ] || ip route replace default via "${router%% *}" dev "$interface"
    [ -z "$dns" ] || { for d in $dns; do echo "nameserver $d"; done >/etc/resolv.conf; } ;;
esac
exit 0
EOF
# busybox ifup/ifdown stand in for Debian's ifupdown, which Vagrant drives: it appends its private networks here and
# runs `ifdown IF; ifup IF` on every link when it sets the hostname. "manual" makes that a no-op for eth0 (DHCP,
# started by guest-boot.sh) and for eth1 before Vagrant has configured it.
cat >"$WORK/stage/interfaces" <<'EOF'
auto lo
iface lo inet loopback
iface eth0 inet manual
iface eth1 inet manual
EOF
{ cat "$WORK/keys/client_ed25519.pub"; cat "$WORK/stage/guest_client_ed25519.pub"; } >"$WORK/stage/authorized_keys"
# ferry's host resolution inside the guests: g1 and g2 on the private link, strict host keys.
cat >"$WORK/stage/hosts.yaml" <<EOF
hosts:
  g1: { address: 10.98.0.1, user: root, identityFile: /root/.ssh/id_ed25519, knownHostsFile: /root/.ssh/known_hosts }
  g2: { address: 10.98.0.2, user: root, identityFile: /root/.ssh/id_ed25519, knownHostsFile: /root/.ssh/known_hosts }
EOF
cp "$HERE/guest-boot.sh" "$ROOT/scripts/provision-host.sh" "$WORK/stage/"
cp "$NODE" "$WORK/stage/node"

# A host whose mirror serves a frozen snapshot turns apt's date checks off; the chroot's apt (provision-host.sh
# fetches CRIU from sid through it) needs the same, or sid's expired Release file looks unreachable.
APTOPTS=()
for opt in Acquire::Check-Valid-Until Acquire::Check-Date; do
  if apt-config dump "$opt" | grep -qi '"false"'; then APTOPTS+=(--aptopt="$opt \"false\""); fi
done
say "mmdebstrap $SUITE (log: $LOG)"
# The customize hook runs on the host with the chroot at $1: provision-host.sh inside it installs what ferry needs
# exactly as on a real host (its own apt, CRIU from sid in a private root), except `criu check`, which cannot judge a
# chroot: the suite runs `provision-host.sh --check` in each booted guest instead. Then the guest's own files.
mmdebstrap --variant=minbase --include="$BASE_PACKAGES" "${APTOPTS[@]}" \
  --customize-hook='mkdir -p "$1/etc/ssh/ferryvm" "$1/etc/ferryvm" "$1/root/.ssh" "$1/etc/ferry" "$1/usr/local/ferryvm" "$1/tmp/ferryvm"' \
  --customize-hook="copy-in $WORK/stage/provision-host.sh /tmp/ferryvm" \
  --customize-hook='rc=0; chroot "$1" env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin FERRY_PROVISION_IMAGE=1 FERRY_PROVISION_LOG=/var/log/ferry-provision.log bash /tmp/ferryvm/provision-host.sh || rc=$?; [ $rc = 0 ] || { tail -40 "$1/var/log/ferry-provision.log"; exit 1; }' \
  --customize-hook="copy-in $WORK/stage/g1 $WORK/stage/g2 $WORK/stage/vagrant /etc/ssh/ferryvm" \
  --customize-hook="copy-in $WORK/stage/guest-boot.sh $WORK/stage/udhcpc.script /etc/ferryvm" \
  --customize-hook='mkdir -p "$1"/etc/network/if-pre-up.d "$1"/etc/network/if-up.d "$1"/etc/network/if-down.d "$1"/etc/network/if-post-down.d; ln -sf /bin/busybox "$1/sbin/ifup"; ln -sf /bin/busybox "$1/sbin/ifdown"' \
  --customize-hook="upload $WORK/stage/interfaces /etc/network/interfaces" \
  --customize-hook="copy-in $WORK/stage/node /usr/local/bin" \
  --customize-hook="upload $WORK/stage/authorized_keys /root/.ssh/authorized_keys" \
  --customize-hook="upload $WORK/stage/guest_client_ed25519 /root/.ssh/id_ed25519" \
  --customize-hook="upload $WORK/stage/guest_known_hosts /root/.ssh/known_hosts" \
  --customize-hook="upload $WORK/stage/hosts.yaml /etc/ferry/hosts.yaml" \
  --customize-hook='chmod 700 "$1/root/.ssh" "$1/etc/ssh/ferryvm"; chmod 600 "$1/root/.ssh/id_ed25519" "$1/etc/ssh/ferryvm"/g*/ssh_host_ed25519_key; chmod 755 "$1/etc/ferryvm/guest-boot.sh" "$1/etc/ferryvm/udhcpc.script" "$1/usr/local/bin/node"' \
  --customize-hook='ln -sf /bin/busybox "$1/usr/local/ferryvm/init"; ln -sf /opt/ferry/app/packages/cli/bin/ferry.js "$1/usr/local/bin/ferry"; ln -sf /opt/ferry/app/packages/cli/bin/migrate.js "$1/usr/local/bin/migrate"' \
  --customize-hook='printf "::sysinit:/etc/ferryvm/guest-boot.sh\n::respawn:/usr/sbin/sshd -D -e -f /run/ferryvm-sshd_config\n::ctrlaltdel:/bin/busybox poweroff -f\n" >"$1/etc/inittab"' \
  --customize-hook='rm -rf "$1/tmp/ferryvm" "$1/etc/ssh/ssh_host_"*; rm -f "$1/etc/machine-id"; : >"$1/etc/machine-id"; cp "$1"/boot/vmlinuz-* "$1/../vmlinuz"; cp "$1"/boot/initrd.img-* "$1/../initrd.img"' \
  "$SUITE" "$WORK/root" "deb $MIRROR $SUITE main" "deb $MIRROR $SUITE-updates main" >"$LOG" 2>&1 \
  || { cp "$LOG" "$CACHE/last-failed-build.log"; tail -60 "$LOG" >&2; die "mmdebstrap failed" "see $CACHE/last-failed-build.log"; }

# The chroot's own host keys were removed above: a guest only has the key made for it, recorded in keys/.
say "mkfs.ext4 -d ($SIZE)"
mkfs.ext4 -q -L ferryvm -d "$WORK/root" "$WORK/rootfs.ext4" "$SIZE" >>"$LOG" 2>&1 || die "mkfs.ext4 -d failed" "see $LOG"
rm -rf "$WORK/root" "$WORK/stage"
chmod 600 "$WORK/rootfs.ext4" "$WORK/vmlinuz" "$WORK/initrd.img"
echo "$recipe" >"$WORK/recipe.sha256"
chmod 700 "$WORK"
mv "$WORK" "$OUT"
trap - EXIT
# Each image is ~1.3 GB on disk: keep this one and the one before it (another checkout may still use that recipe).
ls -1dt "$CACHE"/[0-9a-f]*/ 2>/dev/null | tail -n +3 | while read -r old; do
  [[ -f $old/recipe.sha256 ]] && rm -rf -- "$old" && rm -f -- "$CACHE/.build-$(basename "$old").lock"
done
say "built $OUT in $((SECONDS - T0)) s"
echo "$OUT"
