#!/usr/bin/env bash
# Two local sandbox "hosts" for ferry's demo, e2e tests and benchmarks (root; see e2e/sandbox-hosts.md).
#
#   sandbox-hosts.sh up [--dir DIR] [--shape RATE]   create (or keep) ferry-h1 and ferry-h2, wait for their sshd
#   sandbox-hosts.sh down [--dir DIR]                kill both hosts, delete their netns, remove DIR's files
#   sandbox-hosts.sh status [--dir DIR]              is each host up, is its sshd reachable over the veth (exit 0/1)
#   sandbox-hosts.sh exec [--dir DIR] hN [--] CMD..  run CMD inside host N (its net, mnt, uts, ipc and pid namespaces)
#   sandbox-hosts.sh shape [--dir DIR] RATE|off      token-bucket limit on the link (tc tbf, e.g. 1gbit, 200mbit)
#
# A host = a network namespace ferry-hN (10.231.0.N/24 on eth0, a veth to the other host; nothing in the root netns)
# plus `unshare --mount --uts --ipc --pid --fork` whose pid 1 is that host's sshd. Each host has private tmpfs mounts
# on /run/runc, /run/ferry, /var/lib/ferry, /run/netns, /var/lib/lxc, /etc/criu and /dev/shm, its own hostname, and a sysfs of its own netns
# with the machine's /sys/fs/cgroup moved in (runc needs it; `ip netns exec` would hide it).
# DIR (default /run/ferry-sandbox, or $FERRY_SANDBOX_DIR) receives: env, hosts.yaml, known_hosts, ssh_config,
# client_ed25519(.pub), authorized_keys, boot.sh, hN/{sshd_config,ssh_host_ed25519_key*,host.log}.
# A LAN netns NAME-lan with bridge br-lan (client address 10.77.0.1/24) is where container interfaces plug in, so a
# container keeps its address across hosts; its netns is bound at DIR/lan.netns for the hosts. Each host's lxcbr0
# bridge is plugged into it too (for LXC containers).
# Environment: FERRY_SANDBOX_DIR, FERRY_SANDBOX_NAME (prefix of every namespace name, default ferry: NAME-h1,
# NAME-h2, NAME-lan; sandboxes of different names run side by side), FERRY_SANDBOX_TIMEOUT (seconds, default 20).
#
# Gotchas:
# - Host pids are taken from the outside ($! and /proc/PID/task/PID/children) and checked against their start time
#   before any kill. Never kill by a pid file written inside a host: it holds the namespace-local pid (1 = sshd
#   there, but the machine's own init here).
# - The host processes are started with fds 0-2 on DIR/hN/host.log and the lock fd closed: a caller reading
#   `up`'s output through a pipe would otherwise wait for EOF until `down`.
# - sshd is the pid namespace's init: SIGTERM/SIGKILL from outside ends the whole host (and containers in it).
#   `unshare --kill-child` also kills it when unshare dies.
# - Killed hosts must be gone before `ip netns del`; a host's mount namespace would otherwise keep copies of the
#   /run/netns bind mounts (each host therefore starts with an empty /run/netns tmpfs of its own).
# - The hosts share the machine's cgroup hierarchy, /tmp and the rest of the filesystem.
set -Eeuo pipefail
set +m # no job control: a background job must not become a process group leader (setsid would fork, $! would lie)

export PATH="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:$PATH"
PROG=ferry-sandbox
HOSTS=(1 2)
# FERRY_SANDBOX_NAME keeps several sandboxes apart (demo, tests, benchmark): it prefixes every namespace name.
SANDBOX_NAME=${FERRY_SANDBOX_NAME:-ferry}
[[ $SANDBOX_NAME =~ ^[a-z][a-z0-9]{0,9}$ ]] || { echo "sandbox-hosts.sh: FERRY_SANDBOX_NAME must be 1-10 lowercase letters/digits" >&2; exit 2; }
NETNS_PREFIX=$SANDBOX_NAME-h
SUBNET=10.231.0
PREFIXLEN=24
IFACE=eth0
SSH_PORT=22
DEFAULT_DIR=/run/ferry-sandbox
LOCK_FILE=/run/lock/$SANDBOX_NAME-sandbox.lock
TIMEOUT=${FERRY_SANDBOX_TIMEOUT:-20}
# The hosts run the ferry of the checkout this script lives in (DIR/bin first on PATH), not whatever
# /usr/local/bin/ferry points at: two checkouts (a CI clone, a work tree) can then test side by side.
CHECKOUT_BIN=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/packages/cli/bin
HOST_PATH_TAIL=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
STATE_MOUNTS=(/run/runc /run/ferry /var/lib/ferry /run/netns /var/lib/lxc /etc/criu /var/lib/containers /run/containers /run/libpod)
# Where a host's own dockerd listens when a test starts one (e2e/lib/docker-hosts.ts): inside the host's private
# /run/ferry, so ferry and its agent on each host find that host's daemon through DOCKER_HOST.
HOST_DOCKER_SOCKET=/run/ferry/docker.sock
# The containers' LAN: a netns with a bridge that both hosts' container namespaces plug into (veth), so a container
# keeps its address and MAC when it moves, and outside clients (in this netns) keep reaching it.
LAN_NETNS=$SANDBOX_NAME-lan
LAN_BRIDGE=br-lan
# The clients' address on the LAN (containers take others in 10.77.0.0/24).
LAN_CLIENT_ADDR=10.77.0.1/24
T0=$(date +%s.%N)

# up/down/shape ignore SIGPIPE (`up | head -1` must not leave a half-built sandbox): writes may fail, never abort.
say() { echo "$PROG: $*" 2>/dev/null || true; }
warn() { echo "$PROG: warning: $*" >&2 2>/dev/null || true; }
die() { # die MESSAGE [HINT]
  echo "$PROG: ERROR: $1" >&2
  [[ -n ${2:-} ]] && echo "$PROG: hint: $2" >&2
  exit 1
}
usage_error() { echo "$PROG: $1" >&2; echo "usage: $(basename "$0") up|down|status|exec|shape [--dir DIR] ... (see --help)" >&2; exit 2; }
trap 'die "unexpected failure (line $LINENO: $BASH_COMMAND)"' ERR

usage() { sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; }
elapsed() { awk -v a="$T0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }'; }

netns() { echo "$NETNS_PREFIX$1"; }
addr() { echo "$SUBNET.$1"; }
other() { [[ $1 == 1 ]] && echo 2 || echo 1; }
netns_exists() { [[ -e /run/netns/$(netns "$1") ]]; }
lan_netns_file() { echo "$DIR/lan.netns"; }
in_netns() { local n=$1; shift; nsenter --net="/run/netns/$(netns "$n")" "$@"; }

# ---------- arguments ----------
CMD=${1:-}
[[ $# -gt 0 ]] && shift
DIR=${FERRY_SANDBOX_DIR:-$DEFAULT_DIR}
SHAPE=
POSITIONAL=()
case $CMD in
  -h | --help | help) usage; exit 0 ;;
  up | down | status | exec | shape) ;;
  "") usage_error "missing command" ;;
  *) usage_error "unknown command '$CMD'" ;;
esac
while [[ $# -gt 0 ]]; do
  case $1 in
    --dir) [[ $# -ge 2 ]] || usage_error "--dir needs a value"; DIR=$2; shift 2 ;;
    --dir=*) DIR=${1#--dir=}; shift ;;
    --shape) [[ $CMD == up && $# -ge 2 ]] || usage_error "--shape RATE is an option of 'up'"; SHAPE=$2; shift 2 ;;
    --shape=*) [[ $CMD == up ]] || usage_error "--shape is an option of 'up'"; SHAPE=${1#--shape=}; shift ;;
    -h | --help) usage; exit 0 ;;
    --) [[ $CMD == exec ]] || usage_error "unexpected '--'"; POSITIONAL+=("$@"); break ;;
    -*) [[ $CMD == exec && ${#POSITIONAL[@]} -ge 1 ]] && { POSITIONAL+=("$@"); break; }
        usage_error "unknown option '$1' for '$CMD'" ;;
    *) POSITIONAL+=("$1"); shift
       # everything after `exec hN` belongs to the command (its own options included)
       if [[ $CMD == exec ]]; then
         [[ ${1:-} == -- ]] && shift
         POSITIONAL+=("$@"); break
       fi ;;
  esac
done

# ---------- checks ----------
[[ $EUID -eq 0 ]] || die "must run as root (network namespaces, mounts, sshd)" "sudo bash $0 $CMD"

check_tools() { # check_tools CMD... : name the Debian package of each missing one
  local missing=() c
  declare -A pkg=([ip]=iproute2 [tc]=iproute2 [nsenter]=util-linux [unshare]=util-linux [setpriv]=util-linux
    [flock]=util-linux [sshd]=openssh-server [ssh]=openssh-client [ssh-keygen]=openssh-client [awk]=mawk)
  for c in "$@"; do command -v "$c" >/dev/null 2>&1 || missing+=("$c (${pkg[$c]:-?})"); done
  [[ ${#missing[@]} -eq 0 ]] || die "missing tools: ${missing[*]}" \
    "run 'bash scripts/provision-host.sh' or apt-get install openssh-server openssh-client iproute2 util-linux"
}

# DIR goes unquoted into sshd_config, ssh_config, hosts.yaml and the env file: keep it to plain path characters.
DIR=$(realpath -m -- "$DIR")
HOST_PATH=$DIR/bin:$HOST_PATH_TAIL
[[ $DIR =~ ^/[A-Za-z0-9._/+-]*$ ]] || die "--dir '$DIR' contains characters this script does not quote" \
  "use a path of letters, digits and . _ / + -"
[[ $DIR != / ]] || die "--dir / is not allowed"
for m in "${STATE_MOUNTS[@]}" /dev/shm /sys /proc; do
  [[ $DIR == "$m" || $DIR == "$m"/* ]] && die "--dir $DIR lies under $m, which each host overmounts" \
    "use a directory both hosts see, e.g. $DEFAULT_DIR"
done
ENV_FILE=$DIR/env

# ---------- state (DIR/env, written from the outside) ----------
declare -A PID=() START=() UPID=() USTART=()
CUR_SHAPE=
load_env() {
  PID=() START=() UPID=() USTART=() CUR_SHAPE=
  [[ -r $ENV_FILE ]] || return 1
  local k v n
  while IFS='=' read -r k v; do
    [[ $k =~ ^FERRY_H([12])_(PID|START|UNSHARE_PID|UNSHARE_START)$ ]] || {
      [[ $k == FERRY_SANDBOX_SHAPE ]] && CUR_SHAPE=$v; continue; }
    n=${BASH_REMATCH[1]} k=${BASH_REMATCH[2]}
    [[ $v =~ ^[0-9]+$ ]] || continue
    case $k in
      PID) PID[$n]=$v ;; START) START[$n]=$v ;; UNSHARE_PID) UPID[$n]=$v ;; UNSHARE_START) USTART[$n]=$v ;;
    esac
  done <"$ENV_FILE"
  return 0
}
write_env() {
  local n tmp=$ENV_FILE.tmp
  {
    echo "# written by scripts/sandbox-hosts.sh; pids are as seen from the root pid namespace"
    echo "FERRY_SANDBOX_DIR=$DIR"
    echo "FERRY_SANDBOX_SSH_CONFIG=$DIR/ssh_config"
    echo "FERRY_SANDBOX_HOSTS_FILE=$DIR/hosts.yaml"
    echo "FERRY_SANDBOX_SHAPE=$CUR_SHAPE"
    echo "FERRY_LAN_NETNS=/run/netns/$LAN_NETNS"
    echo "FERRY_NETNS_UPLINK=$(lan_netns_file):$LAN_BRIDGE"
    for n in "${HOSTS[@]}"; do
      echo "FERRY_H${n}_ADDR=$(addr "$n")"
      echo "FERRY_H${n}_NETNS=$(netns "$n")"
      echo "FERRY_H${n}_PID=${PID[$n]}"
      echo "FERRY_H${n}_START=${START[$n]}"
      echo "FERRY_H${n}_UNSHARE_PID=${UPID[$n]}"
      echo "FERRY_H${n}_UNSHARE_START=${USTART[$n]}"
    done
  } >"$tmp"
  mv -f "$tmp" "$ENV_FILE"
}

starttime() { # starttime PID: field 22 of /proc/PID/stat (after the parenthesised comm), empty if gone or zombie
  local s rest f
  s=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
  rest=${s##*) }
  read -ra f <<<"$rest"
  [[ ${f[0]} == Z || ${f[0]} == X ]] && return 0
  echo "${f[19]}"
}
same_process() { [[ -n ${1:-} && -n ${2:-} && $(starttime "$1") == "$2" ]]; }
host_alive() { same_process "${PID[$1]:-}" "${START[$1]:-}"; }

ssh_opts() {
  SSH_OPTS=(-F none -i "$DIR/client_ed25519" -o IdentitiesOnly=yes -o UserKnownHostsFile="$DIR/known_hosts"
    -o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes -o BatchMode=yes -o ConnectTimeout=3
    -o LogLevel=ERROR -p "$SSH_PORT")
}
ssh_probe() { # ssh_probe FROM TO: log in from netns FROM to host TO, expect its hostname
  local out
  ssh_opts
  out=$(in_netns "$1" ssh "${SSH_OPTS[@]}" "root@$(addr "$2")" cat /proc/sys/kernel/hostname 2>&1) || {
    PROBE_ERR=$out; return 1; }
  [[ $out == "$(netns "$2")" ]] || { PROBE_ERR="unexpected hostname '$out'"; return 1; }
}

probe_hosts() { # probe_hosts: ssh_probe into every live host from the other one, all at once
  # sets PROBE_OK[n] (1/0) and PROBE_MSG[n]; a host that is not alive is not probed
  local n tmp w=()
  tmp=$(mktemp -d /tmp/ferry-sandbox-probe.XXXXXX)
  for n in "${HOSTS[@]}"; do
    PROBE_OK[$n]=0 PROBE_MSG[$n]="not running"
    if ! host_alive "$n" || ! netns_exists "$n"; then continue; fi
    ( if ssh_probe "$(other "$n")" "$n"; then exit 0; fi; printf '%s' "$PROBE_ERR" >"$tmp/$n"; exit 1 ) &
    w[n]=$!
  done
  for n in "${!w[@]}"; do
    if wait "${w[$n]}"; then PROBE_OK[$n]=1 PROBE_MSG[$n]=ok; else PROBE_MSG[$n]=$(cat "$tmp/$n" 2>/dev/null || true); fi
  done
  rm -rf -- "$tmp"
}
declare -A PROBE_OK=() PROBE_MSG=()

lock() {
  check_tools flock
  mkdir -p "${LOCK_FILE%/*}"
  exec 9>"$LOCK_FILE"
  flock -w 120 9 || die "another sandbox-hosts.sh up/down/shape has held $LOCK_FILE for 120 s"
}

# ---------- teardown (down, and leftovers at up) ----------
wait_gone() { # wait_gone PID...: until none is alive (zombies count as gone), at most 10 s
  local deadline=$((SECONDS + 10)) left p
  while :; do
    left=()
    for p in "$@"; do [[ -n $(starttime "$p") ]] && left+=("$p"); done
    [[ ${#left[@]} -eq 0 ]] && return 0
    [[ $SECONDS -lt $deadline ]] || die "processes ${left[*]} still alive 10 s after SIGKILL" \
      "look at them with 'ps -o pid,stat,wchan,cmd -p $(IFS=,; echo "${left[*]}")' (D = stuck in the kernel)"
    sleep 0.02
  done
}

netns_owner() { # netns_owner N: the DIR of the sshd running in netns N (from its -f DIR/hN/sshd_config), or empty
  local p
  netns_exists "$1" || return 0
  for p in $(ip netns pids "$(netns "$1")" 2>/dev/null); do
    tr '\0' ' ' 2>/dev/null <"/proc/$p/cmdline" | grep -o -- '-f /[^ ]*/h[12]/sshd_config' |
      sed 's/^-f //; s,/h[12]/sshd_config$,,' || true
  done | head -n 1
}

runc_cgroups() { # runc_cgroups INIT...: the cgroup dirs runc recorded for the containers inside these hosts
  # runc creates them in the machine's shared hierarchy (default /<id>) and a SIGKILL leaves them behind. Read from
  # the outside through /proc/INIT/root (the host's own /run/runc tmpfs): "cgroup_paths" of each state.json.
  local init f
  for init in "$@"; do
    for f in /proc/"$init"/root/run/runc/*/state.json; do
      [[ -r $f ]] || continue
      grep -o '"cgroup_paths":{[^}]*}' "$f" 2>/dev/null | grep -o '"/sys/fs/cgroup/[^"]*"' | tr -d '"' || true
    done
  done | sort -u
}

remove_cgroups() { # remove_cgroups DIR...: rmdir each (only succeeds when empty: no tasks, no children)
  local d removed=() _
  for d in "$@"; do
    [[ $d == /sys/fs/cgroup/?*/?* && $d != *..* && -d $d ]] || continue
    # a just-killed cgroup can stay busy for a moment after its last task is reaped: retry while it has no tasks
    for _ in 1 2 3 4 5 6 7 8 9 10; do
      if rmdir -- "$d" 2>/dev/null; then removed+=("$d"); break; fi
      [[ -d $d && -z $(cat "$d/cgroup.procs" 2>/dev/null) ]] || break # (cgroup files have size 0: read them)
      sleep 0.05
    done
  done
  [[ ${#removed[@]} -eq 0 ]] || say "removed ${#removed[@]} cgroup dir(s) of containers in the hosts"
}

teardown() { # teardown own|replace: kill hosts by their outside pids, then anything left in the netns; delete the netns
  # own: leave alone a netns whose sshd belongs to another --dir (`down --dir A` must not end B's sandbox)
  local mode=$1 n p d inits=() victims=() skip=()
  TEARDOWN_FOUND=0
  load_env || true
  for n in "${HOSTS[@]}"; do
    if same_process "${PID[$n]:-}" "${START[$n]:-}"; then inits+=("${PID[$n]}"); fi
  done
  # 1. SIGKILL each host's init: the kernel kills its whole pid namespace (containers included); unshare then reaps
  #    it and exits by itself (killing unshare first would leave the init to be reaped by the machine's pid 1).
  local cgroups=()
  mapfile -t cgroups < <(runc_cgroups "${inits[@]}")
  for p in "${inits[@]}"; do if kill -KILL "$p" 2>/dev/null; then victims+=("$p"); fi; done
  wait_gone "${inits[@]}"
  # 2. What is left: unshare parents, and whatever lives in the network namespaces (a crashed earlier run whose
  #    env is gone, `ip netns exec` / nsenter --net clients of tests).
  for n in "${HOSTS[@]}"; do
    if same_process "${UPID[$n]:-}" "${USTART[$n]:-}" && kill -KILL "${UPID[$n]}" 2>/dev/null; then victims+=("${UPID[$n]}"); fi
  done
  for n in "${HOSTS[@]}"; do
    netns_exists "$n" || continue
    if [[ $mode == own ]]; then
      d=$(netns_owner "$n")
      if [[ -n $d && $d != "$DIR" ]]; then
        skip[n]=1; warn "netns $(netns "$n") belongs to the sandbox in $d: left alone"; continue
      fi
    fi
    TEARDOWN_FOUND=1
    for p in $(ip netns pids "$(netns "$n")" 2>/dev/null); do
      [[ $p == "$$" ]] && continue
      if kill -KILL "$p" 2>/dev/null; then victims+=("$p"); fi
    done
  done
  wait_gone "${victims[@]}"
  [[ ${#cgroups[@]} -eq 0 ]] || remove_cgroups "${cgroups[@]}"
  [[ ${#victims[@]} -eq 0 ]] || { TEARDOWN_FOUND=1; say "killed ${#victims[@]} process(es): ${victims[*]}"; }
  for n in "${HOSTS[@]}"; do
    if netns_exists "$n" && [[ -z ${skip[n]:-} ]]; then
      ip netns del "$(netns "$n")" || die "cannot delete netns $(netns "$n")" "ip netns pids $(netns "$n")"
      say "deleted netns $(netns "$n")"
    fi
  done
  delete_lan
}

remove_files() {
  [[ -d $DIR ]] || return 0
  rm -f -- "$DIR"/{env,env.tmp,hosts.yaml,known_hosts,authorized_keys,client_ed25519,client_ed25519.pub,ssh_config,boot.sh}
  rm -rf -- "$DIR/h1" "$DIR/h2" "$DIR/bin"
  rmdir -- "$DIR" 2>/dev/null || warn "$DIR is not empty (files not created by this script), left in place"
}

# ---------- shaping ----------
burst_for() { # burst_for RATE: tc burst, at least 256 KiB and 4 ms worth of the rate (tbf needs >= rate/HZ)
  awk -v r="$1" 'BEGIN {
    if (!match(tolower(r), /^[0-9]+(\.[0-9]+)?/)) { print "256kb"; exit }
    v = substr(r, 1, RLENGTH); u = tolower(substr(r, RLENGTH + 1)); m = -1
    if (u == "" || u == "bit") m = 1; else if (u == "kbit") m = 1e3; else if (u == "mbit") m = 1e6
    else if (u == "gbit") m = 1e9; else if (u == "tbit") m = 1e12; else if (u == "bps") m = 8
    else if (u == "kbps") m = 8e3; else if (u == "mbps") m = 8e6; else if (u == "gbps") m = 8e9
    else if (u == "kibit") m = 1024; else if (u == "mibit") m = 1048576; else if (u == "gibit") m = 1073741824
    if (m < 0) { print "256kb"; exit }
    b = v * m / 8 / 250; if (b < 262144) b = 262144
    printf "%d", b }'
}
apply_shape() { # apply_shape RATE|off
  local rate=$1 n burst err
  check_tools tc
  for n in "${HOSTS[@]}"; do
    netns_exists "$n" || die "netns $(netns "$n") does not exist" "run '$0 up' first"
    if [[ $rate == off ]]; then
      in_netns "$n" tc qdisc del dev "$IFACE" root 2>/dev/null || true
    else
      burst=$(burst_for "$rate")
      err=$(in_netns "$n" tc qdisc replace dev "$IFACE" root tbf rate "$rate" burst "$burst" latency 50ms 2>&1) ||
        die "tc rejected rate '$rate': ${err//$'\n'/ }" "use tc units, e.g. 1gbit, 500mbit, 100mbps"
    fi
  done
  if [[ $rate == off ]]; then CUR_SHAPE=; say "link shaping off"
  else CUR_SHAPE=$rate; say "link shaped to $rate each way (tbf burst $burst latency 50ms on $IFACE in both hosts)"; fi
}

# ---------- up ----------
write_files() {
  local n key
  mkdir -p "$DIR"
  chmod 0700 "$DIR"
  if [[ ! -s $DIR/client_ed25519 || ! -s $DIR/client_ed25519.pub ]]; then
    rm -f "$DIR/client_ed25519" "$DIR/client_ed25519.pub"
    ssh-keygen -q -t ed25519 -N '' -C ferry-sandbox-client -f "$DIR/client_ed25519"
  fi
  cp "$DIR/client_ed25519.pub" "$DIR/authorized_keys"
  mkdir -p "$DIR/bin"
  ln -sfn "$CHECKOUT_BIN/ferry.js" "$DIR/bin/ferry"
  ln -sfn "$CHECKOUT_BIN/migrate.js" "$DIR/bin/migrate"
  : >"$DIR/known_hosts"
  for n in "${HOSTS[@]}"; do
    mkdir -p "$DIR/h$n"
    key=$DIR/h$n/ssh_host_ed25519_key
    if [[ ! -s $key || ! -s $key.pub ]]; then
      rm -f "$key" "$key.pub"
      ssh-keygen -q -t ed25519 -N '' -C "$(netns "$n")" -f "$key"
    fi
    echo "$(addr "$n") $(cut -d' ' -f1,2 "$key.pub")" >>"$DIR/known_hosts"
    cat >"$DIR/h$n/sshd_config" <<EOF
# ferry sandbox host $(netns "$n"), generated by scripts/sandbox-hosts.sh
ListenAddress $(addr "$n")
Port $SSH_PORT
AddressFamily inet
HostKey $key
PidFile none
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
AuthorizedKeysFile $DIR/authorized_keys
UsePAM no
StrictModes no
Subsystem sftp internal-sftp
MaxStartups 50:30:100
MaxSessions 64
AllowTcpForwarding yes
X11Forwarding no
PrintMotd no
PrintLastLog no
UseDNS no
LogLevel ERROR
SetEnv PATH=$HOST_PATH FERRY_NETNS_UPLINK=$DIR/lan.netns:$LAN_BRIDGE DOCKER_HOST=unix://$HOST_DOCKER_SOCKET CONTAINERS_CONF=/run/ferry/podman/containers.conf CONTAINERS_STORAGE_CONF=/run/ferry/podman/storage.conf
EOF
  done
  cat >"$DIR/ssh_config" <<EOF
# ssh -F $DIR/ssh_config h2 (from inside a host or its netns)
Host h1 $(netns 1)
  HostName $(addr 1)
Host h2 $(netns 2)
  HostName $(addr 2)
Host *
  User root
  Port $SSH_PORT
  IdentityFile $DIR/client_ed25519
  IdentitiesOnly yes
  UserKnownHostsFile $DIR/known_hosts
  GlobalKnownHostsFile /dev/null
  StrictHostKeyChecking yes
  BatchMode yes
  LogLevel ERROR
  Ciphers aes128-gcm@openssh.com,aes256-gcm@openssh.com,chacha20-poly1305@openssh.com
EOF
  {
    echo "# ferry hosts file for the sandbox, generated by scripts/sandbox-hosts.sh"
    echo "hosts:"
    for n in "${HOSTS[@]}"; do
      echo "  h$n: { address: $(addr "$n"), user: root, port: $SSH_PORT, identityFile: $DIR/client_ed25519, knownHostsFile: $DIR/known_hosts }"
    done
  } >"$DIR/hosts.yaml"
  # BOOT: pid 1 of a host, in its fresh mount/uts/ipc/pid namespaces (already in its netns).
  cat >"$DIR/boot.sh" <<'EOF'
#!/bin/bash
# Pid 1 of a ferry sandbox host (scripts/sandbox-hosts.sh): private state mounts, hostname, then sshd.
set -euo pipefail
n=$1 dir=$2 name=$3
mount --make-rprivate /
# Detach the copies of transient mounts that other processes had made below /run, /tmp, /var/tmp and /var/lib/ferry
# when this host started (netns bind mounts, runc/CRIU work mounts, ...): a separate host would not see them, and the
# copies would pin those namespaces and filesystems for the host's lifetime. DIR (which holds our configs) stays.
awk '{ print $5 }' /proc/self/mountinfo | sort -r | while read -r m; do
  case $m in
    "$dir" | "$dir"/*) ;;
    /run/* | /tmp/* | /var/tmp/* | /var/lib/ferry | /var/lib/ferry/*) umount --lazy "$m" 2>/dev/null || true ;;
  esac
done
# Own runtime state per host; /run/netns too, so that `ip netns add` inside a host names namespaces of that host only.
# /var/lib/lxc: each host has its own LXC containers (LXC's default lxcpath). /etc/criu: runc's CRIU configuration
# (runc.conf) of this host only; the Docker tests turn on tcp-established there.
# /var/lib/containers, /run/containers, /run/libpod: Podman's storage, run root and tmp dir, so each host's Podman knows
# only its own containers; its settings (LAB.md: runc, cgroupfs, vfs, file events) come from CONTAINERS_CONF and
# CONTAINERS_STORAGE_CONF (sshd's SetEnv) naming the files written below.
for d in /run/runc /run/ferry /var/lib/ferry /run/netns /var/lib/lxc /etc/criu /var/lib/containers /run/containers /run/libpod; do
  mkdir -p "$d"; mount -t tmpfs -o mode=0755 "ferry-h$n" "$d"
done
mkdir -m 0700 /run/ferry/podman
printf '[storage]\ndriver = "vfs"\nrunroot = "/run/containers/storage"\ngraphroot = "/var/lib/containers/storage"\n' >/run/ferry/podman/storage.conf
printf '[engine]\nruntime = "runc"\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\ntmp_dir = "/run/libpod"\n[containers]\nulimits = ["nofile=1024:1024", "nproc=4096:4096"]\nnetns = "none"\n' >/run/ferry/podman/containers.conf
mount -t tmpfs -o mode=1777,nosuid,nodev "ferry-h$n" /dev/shm
# A sysfs of this netns (/sys/class/net shows the host's own interfaces), keeping the machine's mounts below /sys
# (/sys/fs/cgroup above all: runc needs it, and `ip netns exec` loses it). Top-level submounts are parked, then moved.
if mountpoint -q /sys; then
  mapfile -t subs < <(awk '$5 ~ /^\/sys\// { print $5 }' /proc/self/mountinfo | sort |
    awk '{ if (last != "" && ($0 == last || index($0, last "/") == 1)) next; print; last = $0 }')
  mkdir -p /run/ferry/.sys
  for i in "${!subs[@]}"; do mkdir "/run/ferry/.sys/$i"; mount --rbind "${subs[$i]}" "/run/ferry/.sys/$i"; done
  umount --recursive --lazy /sys
  mount -t sysfs -o nosuid,nodev,noexec sysfs /sys
  for i in "${!subs[@]}"; do
    if [[ -d ${subs[$i]} ]]; then mount --move "/run/ferry/.sys/$i" "${subs[$i]}"
    else echo "boot: ${subs[$i]} does not exist in the new sysfs: dropped" >&2; umount --recursive --lazy "/run/ferry/.sys/$i"; fi
    rmdir "/run/ferry/.sys/$i"
  done
  rmdir /run/ferry/.sys
fi
echo "$name" >/proc/sys/kernel/hostname
exec /usr/sbin/sshd -D -e -f "$dir/h$n/sshd_config"
EOF
  chmod 0755 "$DIR/boot.sh"
}

start_host() { # start_host N: launch, then record the unshare pid ($!) and its forked child, the host's pid 1
  local n=$1 upid child c kids deadline ns_path=/run/netns/$NETNS_PREFIX$1 log=$DIR/h$1/host.log
  : >"$log"
  # setsid: own session (no SIGHUP/process-group kills from the caller). fd 9 (the lock) must not leak into the host.
  # No $(...) in this line: the background subshell would fork for it, and the (possibly unreaped) child would show
  # up in /proc/$!/task/$!/children after the exec chain setsid -> nsenter -> unshare (same pid throughout).
  # trap - PIPE: the host gets the default SIGPIPE disposition back (this script ignores it); the subshell execs,
  # so $! stays the pid of setsid -> nsenter -> unshare.
  (trap - PIPE; exec setsid nsenter --net="$ns_path" unshare --mount --uts --ipc --pid --fork --kill-child \
    --mount-proc "$DIR/boot.sh" "$n" "$DIR" "$(netns "$n")" </dev/null >>"$log" 2>&1 9>&-) &
  upid=$!
  deadline=$((SECONDS + 5))
  child=
  while [[ -z $child ]]; do
    if [[ $(cat "/proc/$upid/comm" 2>/dev/null) == unshare ]]; then
      kids=()
      read -ra kids 2>/dev/null <"/proc/$upid/task/$upid/children" || true
      for c in "${kids[@]}"; do
        # the forked init: pid 1 in its own pid namespace ("NSpid: <outside pid> 1")
        [[ $(awk '/^NSpid:/ { print NF == 3 && $3 == 1 }' "/proc/$c/status" 2>/dev/null) == 1 ]] && child=$c && break
      done
    fi
    if [[ -z $child ]]; then
      [[ -n $(starttime "$upid") ]] ||
        die "host h$n exited at once: $(tail -n 5 "$log" | tr '\n' ' ' | grep . || echo '(no output)')" "see $log"
      [[ $SECONDS -lt $deadline ]] || die "host h$n: no unshare'd init under pid $upid after 5 s" \
        "is pid $upid ($(cat "/proc/$upid/comm" 2>/dev/null)) unshare? run this script as a program, not sourced"
      sleep 0.005
    fi
  done
  UPID[$n]=$upid USTART[$n]=$(starttime "$upid")
  PID[$n]=$child START[$n]=$(starttime "$child")
  [[ -n ${START[$n]} && -n ${USTART[$n]} ]] || die "host h$n died while starting" "see $log"
}

wait_ready() { # wait_ready N: a real login from the other host's netns, with strict host key checking
  local n=$1 o deadline
  o=$(other "$n")
  deadline=$((SECONDS + TIMEOUT))
  until ssh_probe "$o" "$n"; do
    host_alive "$n" || die "host h$n (pid ${PID[$n]}) died: $(tail -n 5 "$DIR/h$n/host.log" | tr '\n' ' ' | grep . || echo '(no output)')" \
      "see $DIR/h$n/host.log and 'sshd -t -f $DIR/h$n/sshd_config'"
    [[ $SECONDS -lt $deadline ]] || die "ssh root@$(addr "$n") from h$o still fails after $TIMEOUT s: $PROBE_ERR" \
      "see $DIR/h$n/host.log; check $DIR/known_hosts and $DIR/authorized_keys; FERRY_SANDBOX_TIMEOUT raises the limit"
    sleep 0.02
  done
}

create_lan() {
  # Bound into DIR (which the hosts keep when they start) because each host gets a private /run/netns.
  say "creating the containers' LAN: netns $LAN_NETNS with bridge $LAN_BRIDGE (bound at $(lan_netns_file))"
  ip netns add "$LAN_NETNS"
  ip -n "$LAN_NETNS" link set lo up
  ip -n "$LAN_NETNS" link add "$LAN_BRIDGE" type bridge
  ip -n "$LAN_NETNS" addr add "$LAN_CLIENT_ADDR" dev "$LAN_BRIDGE"
  ip -n "$LAN_NETNS" link set "$LAN_BRIDGE" up
  touch "$(lan_netns_file)"
  mount --bind "/run/netns/$LAN_NETNS" "$(lan_netns_file)"
}

# LXC's usual bridge, lxcbr0, in each host, plugged into the LAN: LXC containers (lxc.net.0.link = lxcbr0) keep
# their address and MAC across hosts, like runc containers on the LAN. Deleting a host's netns removes its veth.
create_lxc_bridges() {
  local n
  for n in "${HOSTS[@]}"; do
    ip -n "$LAN_NETNS" link add "lxc-h$n" type veth peer name lxcup netns "$(netns "$n")"
    ip -n "$LAN_NETNS" link set "lxc-h$n" master "$LAN_BRIDGE" up
    in_netns "$n" ip link add lxcbr0 type bridge
    in_netns "$n" ip link set lxcup master lxcbr0 up
    in_netns "$n" ip link set lxcbr0 up
  done
}

delete_lan() {
  local f; f=$(lan_netns_file)
  if mountpoint -q "$f" 2>/dev/null; then umount "$f"; fi
  rm -f -- "$f"
  if [[ -e /run/netns/$LAN_NETNS ]]; then
    local p
    for p in $(ip netns pids "$LAN_NETNS" 2>/dev/null); do kill -KILL "$p" 2>/dev/null || true; done
    ip netns del "$LAN_NETNS" && say "deleted netns $LAN_NETNS"
  fi
}

cmd_up() {
  local n d healthy=1
  trap '' PIPE
  check_tools ip nsenter unshare setsid sshd ssh ssh-keygen flock timeout awk mountpoint
  [[ -z $SHAPE ]] || check_tools tc
  [[ $TIMEOUT =~ ^[0-9]+$ ]] || die "FERRY_SANDBOX_TIMEOUT='$TIMEOUT' is not a number of seconds"
  lock
  # Already up (same DIR, same processes, sshd answering)? Then only apply --shape.
  if load_env; then
    probe_hosts
    for n in "${HOSTS[@]}"; do [[ ${PROBE_OK[$n]} == 1 ]] || healthy=0; done
  else healthy=0; fi
  if [[ $healthy == 1 ]]; then
    say "already up (h1 pid ${PID[1]}, h2 pid ${PID[2]}, dir $DIR)"
    if [[ -n $SHAPE ]]; then apply_shape "$SHAPE"; write_env; fi
    return 0
  fi
  # Leftovers of a crashed or half-finished run, or a sandbox of another --dir (the netns names are global).
  for n in "${HOSTS[@]}"; do
    d=$(netns_owner "$n")
    [[ -z $d || $d == "$DIR" ]] ||
      warn "netns $(netns "$n") belongs to the sandbox in $d: replacing it ($d stays; '$0 down --dir $d' removes it)"
  done
  teardown replace
  [[ $TEARDOWN_FOUND == 1 ]] && say "removed leftovers of an earlier run"
  CUR_SHAPE=

  say "writing keys and configs to $DIR"
  write_files
  # Mount points and sshd's privilege separation dir on the machine's fs. They stay after `down`: removing a dir
  # that is a mount point in a live host's mount namespace would silently detach that host's tmpfs there.
  mkdir -p /run/sshd "${STATE_MOUNTS[@]}"
  for n in "${HOSTS[@]}"; do
    sshd -t -f "$DIR/h$n/sshd_config" 2>"$DIR/h$n/host.log" ||
      die "sshd rejects $DIR/h$n/sshd_config: $(tr '\n' ' ' <"$DIR/h$n/host.log")"
  done

  say "creating netns $(netns 1) and $(netns 2), veth $IFACE <-> $IFACE, $(addr 1)/$PREFIXLEN and $(addr 2)/$PREFIXLEN"
  for n in "${HOSTS[@]}"; do ip netns add "$(netns "$n")"; done
  # Both ends are created directly inside the namespaces: nothing appears in the root netns, no name clashes there.
  ip link add "$IFACE" netns "$(netns 1)" type veth peer name "$IFACE" netns "$(netns 2)"
  for n in "${HOSTS[@]}"; do
    in_netns "$n" ip link set lo up
    in_netns "$n" ip addr add "$(addr "$n")/$PREFIXLEN" dev "$IFACE"
    in_netns "$n" ip link set "$IFACE" up
  done
  [[ -z $SHAPE ]] || apply_shape "$SHAPE"
  create_lan
  create_lxc_bridges

  say "starting hosts (nsenter --net + unshare --mount --uts --ipc --pid --fork, pid 1 = sshd)"
  for n in "${HOSTS[@]}"; do start_host "$n"; done
  write_env
  # Both logins at once (each costs ~0.3 s here); wait_ready's die ends its own subshell with the message.
  local waiters=() w failed=0
  for n in "${HOSTS[@]}"; do wait_ready "$n" & waiters+=($!); done
  for w in "${waiters[@]}"; do wait "$w" || failed=1; done
  [[ $failed == 0 ]] || die "the sandbox did not come up (see above); '$0 down' cleans up" \
    "logs in $DIR/h1/host.log and $DIR/h2/host.log"
  say "h1 = $(netns 1) pid ${PID[1]} $(addr 1), h2 = $(netns 2) pid ${PID[2]} $(addr 2): ssh ok both ways"
  say "up in $(elapsed) s; source $DIR/env; hosts file $DIR/hosts.yaml; ssh -F $DIR/ssh_config h2"
}

cmd_down() {
  trap '' PIPE
  check_tools ip flock
  lock
  teardown own
  remove_files
  say "down ($(elapsed) s)"
}

cmd_status() {
  local n ok=1 state
  check_tools ip nsenter ssh
  if ! load_env; then
    say "down (no $ENV_FILE)"
    for n in "${HOSTS[@]}"; do netns_exists "$n" && say "but netns $(netns "$n") exists: '$0 down' or 'up' cleans it"; done
    return 1
  fi
  say "dir $DIR"
  probe_hosts
  for n in "${HOSTS[@]}"; do
    if ! netns_exists "$n"; then state="DOWN (netns $(netns "$n") missing)"; ok=0
    elif ! host_alive "$n"; then state="DOWN (pid ${PID[$n]:-?} gone)"; ok=0
    elif [[ ${PROBE_OK[$n]} == 1 ]]; then state="up, pid ${PID[$n]}, ssh from h$(other "$n") ok"
    else state="UNREACHABLE (pid ${PID[$n]} alive, ssh from h$(other "$n"): ${PROBE_MSG[$n]})"; ok=0; fi
    say "h$n $(addr "$n") $state"
  done
  say "shape ${CUR_SHAPE:-none}"
  if [[ $ok == 1 ]]; then return 0; fi
  return 1
}

cmd_exec() {
  local h=${POSITIONAL[0]:-} n
  [[ -n $h ]] || usage_error "exec needs a host: exec h1|h2 [--] CMD ARGS..."
  case $h in h1 | 1 | ferry-h1) n=1 ;; h2 | 2 | ferry-h2) n=2 ;; *) usage_error "unknown host '$h' (h1 or h2)" ;; esac
  local argv=("${POSITIONAL[@]:1}")
  [[ ${#argv[@]} -gt 0 ]] || argv=(bash)
  check_tools nsenter setpriv
  load_env || die "no sandbox in $DIR (no env file)" "run '$0 up${DIR:+ --dir $DIR}' first"
  host_alive "$n" || die "host h$n is not running (pid ${PID[$n]:-?} gone)" "run '$0 up --dir $DIR' again"
  trap - ERR
  export PATH=$DIR/bin:$PATH
  # As over ssh (sshd's SetEnv): the host's own Podman configuration.
  export CONTAINERS_CONF=/run/ferry/podman/containers.conf CONTAINERS_STORAGE_CONF=/run/ferry/podman/storage.conf
  # nsenter -p forks the command into the host's pid namespace; pdeathsig TERM ends it if nsenter is killed (a
  # test timeout). The inner sh keeps the caller's working directory (setns(mnt) resets it to /). argv stays intact.
  # shellcheck disable=SC2016 # the inner script expands its own positional parameters
  exec nsenter -t "${PID[$n]}" -n -m -u -i -p -- \
    setpriv --pdeathsig TERM -- /bin/sh -c 'cd -- "$1" 2>/dev/null || cd /; shift; exec "$@"' ferry-exec "$PWD" "${argv[@]}"
}

cmd_shape() {
  trap '' PIPE
  [[ ${#POSITIONAL[@]} -eq 1 ]] || usage_error "shape needs one argument: RATE (e.g. 1gbit) or off"
  check_tools ip nsenter tc flock
  lock
  load_env || die "no sandbox in $DIR (no env file)" "run '$0 up' first"
  apply_shape "${POSITIONAL[0]}"
  write_env
}

case $CMD in
  up) [[ ${#POSITIONAL[@]} -eq 0 ]] || usage_error "unexpected argument '${POSITIONAL[0]}'"; cmd_up ;;
  down) [[ ${#POSITIONAL[@]} -eq 0 ]] || usage_error "unexpected argument '${POSITIONAL[0]}'"; cmd_down ;;
  status) cmd_status || exit 1 ;;
  exec) cmd_exec ;;
  shape) cmd_shape ;;
esac
