#!/bin/sh
# Runs inside a ferry test guest as busybox init's sysinit step (the image has no systemd: booting it under TCG
# would cost minutes). Two ways to boot, chosen on the kernel command line:
# - ferryvm.id=N (scripts/vm/lab.sh): guest N of the qemu suite; picks the host keys made for this guest at image
#   build, the address on the private link (10.98.0.N) and the hostname.
# - ferryvm.vagrant=1 (the Vagrant box, scripts/vagrant/box.sh): a host like any Vagrant box's. eth0 asks the
#   provider's management network for an address (DHCP), the other links are Vagrant's to configure
#   (/etc/network/interfaces, busybox ifup), the hostname and the SSH host key are the Vagrantfile's provisioning.
set -eu
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

# The initramfs hands over /proc, /sys, /dev and /run already mounted; mount what is missing.
mounted() { mountpoint -q "$1"; }
mounted /proc || mount -t proc proc /proc
mounted /sys || mount -t sysfs sysfs /sys
mounted /dev || mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mounted /dev/pts || mount -t devpts -o gid=5,mode=620,ptmxmode=666 devpts /dev/pts
mounted /dev/shm || mount -t tmpfs -o mode=1777 tmpfs /dev/shm
mounted /run || mount -t tmpfs -o mode=755 tmpfs /run
mounted /sys/fs/cgroup || mount -t cgroup2 cgroup2 /sys/fs/cgroup
mount -o remount,rw /

# No udev: load the NIC driver by hand. Device nodes udev would have made: CRIU checks (and dumps) tun devices
# through /dev/net/tun.
modprobe virtio_net 2>/dev/null || true
modprobe tun 2>/dev/null && [ -e /dev/net/tun ] || { mkdir -p /dev/net && mknod -m 666 /dev/net/tun c 10 200; } || true
ip link set lo up

if grep -q 'ferryvm\.vagrant=1' /proc/cmdline; then
  [ -s /etc/hostname ] && hostname -F /etc/hostname
  # The provisioning replaces this key with the one the Vagrantfile made; until then sshd needs one of its own.
  [ -f /etc/ssh/ssh_host_ed25519_key ] || ssh-keygen -q -t ed25519 -N '' -C vagrant-box -f /etc/ssh/ssh_host_ed25519_key
  ip link set eth0 up
  # Backgrounds itself once it holds a lease (or after three tries) and keeps renewing it.
  busybox udhcpc -b -i eth0 -p /run/udhcpc.eth0.pid -s /etc/ferryvm/udhcpc.script >/dev/console 2>&1 || true
  ifup -a >/dev/console 2>&1 || true  # the private networks Vagrant wrote into /etc/network/interfaces on an earlier boot
  ln -sf /etc/ssh/ferryvm/vagrant/sshd_config /run/ferryvm-sshd_config
else
  id=$(sed -n 's/.*ferryvm\.id=\([0-9]*\).*/\1/p' /proc/cmdline)
  [ -n "$id" ] || id=1
  hostname "ferryvm-g$id"
  echo "ferryvm-g$id" >/etc/hostname
  # eth0 is qemu's user network (the host reaches sshd through a loopback port forward), eth1 the private link to
  # the other guest.
  ip link set eth0 up && ip addr add 10.0.2.15/24 dev eth0
  ip link set eth1 up && ip addr add "10.98.0.$id/24" dev eth1
  ln -sf "/etc/ssh/ferryvm/g$id/sshd_config" /run/ferryvm-sshd_config
fi

# What provision-host.sh persisted (fs.pipe-max-size for lazy pages); nothing else applies sysctl.d here.
for f in /etc/sysctl.d/*.conf; do [ -f "$f" ] && sysctl -q -p "$f" || true; done

# ferry itself comes on a second, read-only disk made fresh for each run (scripts/vm/app-disk.sh).
mkdir -p /opt/ferry/app
if [ -b /dev/vdb ]; then
  mount -o ro,noload /dev/vdb /opt/ferry/app
  # Test workloads compiled on the host (static), where packages/core/src/testing/fixtures.ts looks for them.
  if [ -d /opt/ferry/app/.fixtures ]; then mkdir -p /tmp/ferry-fixtures && cp -a /opt/ferry/app/.fixtures/. /tmp/ferry-fixtures/; fi
fi

mkdir -p /run/sshd /run/runc
chmod 0755 /run/sshd
echo "ferryvm: $(hostname) up" >/dev/console
