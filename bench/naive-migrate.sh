#!/usr/bin/env bash
# The naive baseline of the migration benchmark: what an operator would script around runc and ssh, without ferry.
# Run it on the source host (inside sandbox host h1); it moves runc container NAME to DEST and prints one JSON line
# with its timings and bytes.
#
#   naive-migrate.sh NAME --to h2 --ssh-config DIR/ssh_config --uplink LAN_NETNS_FILE:BRIDGE
#
# Steps (the container is stopped from step 2 to the end of step 5):
#   1. copy the bundle's config.json (tar | ssh; the container still runs), with another linux.cgroupsPath (the
#      sandbox hosts share one cgroup tree, and the copy must not land in the source's cgroup)
#   2. runc checkpoint --tcp-established --file-locks (CRIU dumps and kills the container)
#   3. delete the source's network namespace (runc leaves it behind; its veth would keep the address on the LAN)
#   4. tar -C IMAGES -cf - . | ssh DEST 'mkdir -p IMAGES && tar -C IMAGES -xf -'
#   5. ssh DEST: re-create the network namespace (same name, interface names, MACs, addresses, plugged into the LAN
#      bridge: runc does not dump it) and `runc restore -d` the container from the copied images
# Not copied: the rootfs and the bind-mounted state directory, which are absolute paths under /tmp that both sandbox
# hosts share (a real pair of hosts needs the rootfs on both, or rsync'd first).
# No rollback: if a step after the checkpoint fails, the container is gone from both hosts; the images stay on the
# source (IMAGES path in the error) so that a `runc restore` by hand can bring it back.
set -Eeuo pipefail
export PATH="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:$PATH"

# JSON without jq (not part of the provisioned tools): node is there, ferry needs it.
json() { node -e "$1" "${@:2}"; }
die() { printf '{"ok":false,"step":"%s","error":%s}\n' "$STEP" "$(json 'process.stdout.write(JSON.stringify(process.argv[1]))' "$1")"; exit 1; }
trap 'die "failed at line $LINENO: $BASH_COMMAND"' ERR
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

STEP=args
NAME=${1:-}
[[ -n $NAME && $NAME != -* ]] || { echo "usage: naive-migrate.sh NAME --to HOST --ssh-config FILE --uplink NETNS_FILE:BRIDGE" >&2; exit 2; }
shift
DEST= SSH_CONFIG= UPLINK=${FERRY_NETNS_UPLINK:-}
while [[ $# -gt 0 ]]; do
  case $1 in
    --to) DEST=$2; shift 2 ;;
    --ssh-config) SSH_CONFIG=$2; shift 2 ;;
    --uplink) UPLINK=$2; shift 2 ;;
    *) echo "naive-migrate.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
[[ -n $DEST && -n $SSH_CONFIG && $UPLINK == *:* ]] || { echo "naive-migrate.sh: --to, --ssh-config and --uplink are required" >&2; exit 2; }
LAN_NETNS=${UPLINK%:*} BRIDGE=${UPLINK##*:}
SSH=(ssh -F "$SSH_CONFIG" "$DEST")

WORK=/var/lib/ferry/bench-naive/$NAME # a tmpfs private to each sandbox host (ferry keeps its images there too)
IMAGES=$WORK/images CRIU_WORK=$WORK/work BUNDLE2=$WORK/bundle
T_START=$(now_ms)

STEP=inspect
bundle=$(runc state "$NAME" | json 'process.stdout.write(JSON.parse(require("fs").readFileSync(0, "utf8")).bundle)')
config=$bundle/config.json
ns_path=$(json 'const c = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
  process.stdout.write((c.linux.namespaces.find((n) => n.type === "network") || {}).path || "")' "$config")
[[ $ns_path == /run/netns/* ]] || die "the container's network namespace is not a named one under /run/netns: '$ns_path'"
ns_name=${ns_path#/run/netns/}
# Interfaces with global addresses: "ifname mac mtu addr/len,addr/len"
mapfile -t ifaces < <(nsenter --net="$ns_path" ip -j addr show | json 'for (const i of JSON.parse(require("fs").readFileSync(0, "utf8"))) {
  const addrs = (i.addr_info || []).filter((a) => a.scope === "global").map((a) => `${a.local}/${a.prefixlen}`);
  if (i.link_type !== "loopback" && addrs.length) console.log([i.ifname, i.address, i.mtu, addrs.join(",")].join("\t"));
}')

STEP=copy-bundle
rm -rf -- "$WORK"
mkdir -p "$WORK/bundle"
T0=$(now_ms)
# The copy's cgroupsPath gets a suffix: the sandbox hosts share one cgroup tree.
json 'const fs = require("fs"); const c = JSON.parse(fs.readFileSync(process.argv[1], "utf8"));
  c.linux.cgroupsPath = `${c.linux.cgroupsPath}-naive`; fs.writeFileSync(process.argv[2], JSON.stringify(c, null, 2))' \
  "$config" "$WORK/bundle/config.json"
tar --totals -C "$WORK/bundle" -cf - config.json 2>"$WORK/tar-bundle.err" | "${SSH[@]}" "mkdir -p $BUNDLE2 && tar -C $BUNDLE2 -xf -"
BUNDLE_BYTES=$(sed -n 's/^Total bytes written: \([0-9]*\).*/\1/p' "$WORK/tar-bundle.err")
T1=$(now_ms)

STEP=checkpoint
mkdir -p "$IMAGES" "$CRIU_WORK"
runc checkpoint --tcp-established --file-locks --image-path "$IMAGES" --work-path "$CRIU_WORK" "$NAME" </dev/null
T2=$(now_ms)

STEP=delete-source-netns
ip netns delete "$ns_name"
T3=$(now_ms)

STEP=transfer-images
IMAGE_BYTES=$(du -sb "$IMAGES" | cut -f1)
tar --totals -C "$IMAGES" -cf - . 2>"$WORK/tar.err" | "${SSH[@]}" "rm -rf $IMAGES && mkdir -p $IMAGES && tar -C $IMAGES -xf -"
TAR_BYTES=$(sed -n 's/^Total bytes written: \([0-9]*\).*/\1/p' "$WORK/tar.err")
T4=$(now_ms)

STEP=restore
remote="set -e; ip netns add $ns_name; ip -n $ns_name link set lo up"
for line in "${ifaces[@]}"; do
  IFS=$'\t' read -r ifname mac mtu addrs <<<"$line"
  peer=nb$(head -c 4 /dev/urandom | od -An -tx1 | tr -d ' \n')
  remote+="; nsenter --net=$LAN_NETNS ip link add $peer type veth peer name $ifname address $mac mtu $mtu netns $ns_name"
  remote+="; nsenter --net=$LAN_NETNS ip link set $peer master $BRIDGE up"
  for a in ${addrs//,/ }; do remote+="; ip -n $ns_name addr add $a dev $ifname"; done
  remote+="; ip -n $ns_name link set $ifname up"
done
remote+="; mkdir -p $CRIU_WORK; runc restore -d --tcp-established --file-locks --image-path $IMAGES --work-path $CRIU_WORK"
remote+=" --bundle $BUNDLE2 $NAME </dev/null >$CRIU_WORK/runc-restore.out 2>&1 || { cat $CRIU_WORK/runc-restore.out >&2; exit 1; }"
"${SSH[@]}" "$remote"
T5=$(now_ms)

STEP=cleanup
# Not timed: the images on both sides (the restored container needs neither them nor the work dirs).
"${SSH[@]}" "rm -rf $IMAGES" || true
rm -rf -- "$WORK"
printf '{"ok":true,"downtimeMs":%d,"totalMs":%d,"bytesSent":%d,"bytesSentFrozen":%d,"imageBytes":%d,"phasesMs":{"copy-bundle":%d,"checkpoint":%d,"delete-source-netns":%d,"transfer-images":%d,"restore":%d},"phaseBytes":{"copy-bundle":%d,"transfer-images":%d}}\n' \
  $((T5 - T1)) $((T5 - T_START)) $((BUNDLE_BYTES + TAR_BYTES)) "$TAR_BYTES" "$IMAGE_BYTES" \
  $((T1 - T0)) $((T2 - T1)) $((T3 - T2)) $((T4 - T3)) $((T5 - T4)) "$BUNDLE_BYTES" "$TAR_BYTES"
