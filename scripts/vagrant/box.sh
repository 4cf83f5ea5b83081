#!/usr/bin/env bash
# box.sh: builds (or reuses) a local Vagrant box for the libvirt provider from the two-VM suite's guest image
# (scripts/vm/build-image.sh: Debian 12, CRIU 4.2.1, Node, provisioned by scripts/provision-host.sh), adds it to
# Vagrant (VAGRANT_HOME) unless it is there already, and prints its name for FERRY_VAGRANT_BOX. No download beyond
# the image's Debian packages. Root (the image cache is root's).
#
# The box: box.img (the image as qcow2: one ext4 filesystem, no partition table), metadata.json, the kernel and
# initrd for direct kernel boot (no boot loader in the image), the key that logs in as root, and a Vagrantfile that
# tells Vagrant so: root over SSH with that key (the image has no `vagrant` user), the kernel command line
# (busybox init with guest-boot.sh in its Vagrant mode, transparent_hugepage=madvise for soft-dirty tracking).
# Cached in $FERRY_VAGRANT_CACHE (default /var/cache/ferry/vagrant) under a hash of the image's recipe and this
# script; the box's name carries that hash, so that libvirt's copy of an older box (a storage-pool volume named after
# the box) is never taken for this one.
set -Eeuo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
CACHE=${FERRY_VAGRANT_CACHE:-/var/cache/ferry/vagrant}
say() { echo "ferry-vagrant-box: $*" >&2; }
die() { echo "ferry-vagrant-box: ERROR: $1${2:+; hint: $2}" >&2; exit 1; }
[[ $(id -u) == 0 ]] || die "must run as root" "sudo $0"
for t in vagrant qemu-img tar; do command -v $t >/dev/null || die "$t not found" "apt-get install vagrant vagrant-libvirt qemu-utils"; done

img=$(bash "$HERE/../vm/build-image.sh") || die "could not build the guest image" "see the lines above"
key=$( { cat "$img/recipe.sha256" "$0"; } | sha256sum | cut -c1-12)
NAME=ferry/bookworm-$key
OUT=$CACHE/box-$key
mkdir -p "$CACHE"; chmod 700 "$CACHE"
exec 9>"$CACHE/.box-$key.lock"
flock 9

if [[ ! -f $OUT/ferry.box ]]; then
  T0=$SECONDS
  WORK=$(mktemp -d "$CACHE/.box-$key.XXXXXX")
  trap 'rm -rf "$WORK"' EXIT
  mkdir -m 700 "$WORK/box"
  say "box.img from $img/rootfs.ext4"
  qemu-img convert -f raw -O qcow2 "$img/rootfs.ext4" "$WORK/box/box.img"
  gib=$(( ($(stat -c %s "$img/rootfs.ext4") + (1 << 30) - 1) >> 30 ))
  printf '{"provider": "libvirt", "format": "qcow2", "virtual_size": %d}\n' "$gib" >"$WORK/box/metadata.json"
  cp "$img/vmlinuz" "$img/initrd.img" "$WORK/box/"
  cp "$img/keys/client_ed25519" "$WORK/box/root_ed25519"
  echo "$key" >"$WORK/box/recipe"
  cat >"$WORK/box/Vagrantfile" <<'RUBY'
# The box made by ferry's scripts/vagrant/box.sh. Merged under the project's Vagrantfile.
Vagrant.configure("2") do |config|
  config.ssh.username = "root"
  config.ssh.private_key_path = [File.join(__dir__, "root_ed25519")]
  # Under TCG (no KVM for this kernel) a boot to sshd takes about a minute, two at once on a busy machine more.
  config.vm.boot_timeout = 900
  config.vm.provider :libvirt do |lv|
    lv.kernel = File.join(__dir__, "vmlinuz")
    lv.initrd = File.join(__dir__, "initrd.img")
    lv.cmd_line = "root=/dev/vda rw console=ttyS0 transparent_hugepage=madvise net.ifnames=0 init=/usr/local/ferryvm/init ferryvm.vagrant=1"
    lv.disk_bus = "virtio"
    lv.nic_model_type = "virtio"
  end
end
RUBY
  # qemu may run as another user than Vagrant (libvirt-qemu with a stock libvirt): it reads the disk and the kernel.
  chmod 644 "$WORK/box/"*; chmod 600 "$WORK/box/root_ed25519"
  say "packing ferry.box"
  tar -cf "$WORK/ferry.box" -C "$WORK/box" .
  rm -rf "$WORK/box"
  chmod 700 "$WORK"
  rm -rf "$OUT"; mv "$WORK" "$OUT"
  trap - EXIT
  # Each box is ~1.3 GB: keep this one and the one before it.
  ls -1dt "$CACHE"/box-*/ 2>/dev/null | tail -n +3 | while read -r old; do rm -rf -- "$old" "$CACHE/.$(basename "$old").lock"; done
  say "built $OUT/ferry.box in $((SECONDS - T0)) s"
fi

boxes=$(vagrant box list --machine-readable | awk -F, '$3 == "box-name" && $4 ~ /^ferry\/bookworm-/ {print $4}')
if ! grep -qxF "$NAME" <<<"$boxes"; then
  T0=$SECONDS
  LOG=$OUT/box-add.log
  vagrant box add --name "$NAME" --provider libvirt "$OUT/ferry.box" >"$LOG" 2>&1 || { tail -5 "$LOG" >&2; die "vagrant box add failed" "see $LOG"; }
  say "added $NAME to Vagrant in $((SECONDS - T0)) s"
fi
# Older ferry boxes in this Vagrant home only take space.
for old in $boxes; do [[ $old == "$NAME" ]] || vagrant box remove --force --all "$old" >/dev/null 2>&1 || true; done
echo "$NAME"
