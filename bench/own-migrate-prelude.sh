# Sourced by the runtimes' own-path baselines (docker-own-migrate.sh, podman-own-migrate.sh, naive-lxc-migrate.sh),
# after their `set -Eeuo pipefail`: the PATH, the one JSON line a failure prints for the benchmark, the clock, and
# their shared command line, parsed by own_migrate_args SCRIPT NAME_PATTERN "$@":
#
#   SCRIPT NAME --to HOST --ssh-config FILE
#
# which sets NAME (it must match NAME_PATTERN, the runtime's names), DEST, SSH_CONFIG and SSH (the ssh command to
# DEST, an array); bad arguments exit 2 with a usage.
export PATH="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:$PATH"

# JSON without jq (not part of the provisioned tools): node is there, ferry needs it.
json() { node -e "$1" "${@:2}"; }
die() { printf '{"ok":false,"step":"%s","error":%s}\n' "$STEP" "$(json 'process.stdout.write(JSON.stringify(process.argv[1]))' "$1")"; exit 1; }
trap 'die "failed at line $LINENO: $BASH_COMMAND"' ERR
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

own_migrate_args() {
  local script=$1 pattern=$2
  shift 2
  STEP=args
  NAME=${1:-}
  [[ $NAME =~ $pattern ]] || { echo "usage: $script NAME --to HOST --ssh-config FILE" >&2; exit 2; }
  shift
  DEST= SSH_CONFIG=
  while [[ $# -gt 0 ]]; do
    case $1 in
      --to) DEST=$2; shift 2 ;;
      --ssh-config) SSH_CONFIG=$2; shift 2 ;;
      *) echo "$script: unknown option $1" >&2; exit 2 ;;
    esac
  done
  [[ -n $DEST && -n $SSH_CONFIG ]] || { echo "$script: --to and --ssh-config are required" >&2; exit 2; }
  SSH=(ssh -F "$SSH_CONFIG" "$DEST")
}
