#!/usr/bin/env bash
# Provision a Debian host for ferry: runtime/test packages, CRIU >= 4.2, sysctls.
# Idempotent; run as root. `--check` only verifies and reports.
#   FERRY_PROVISION_RUNTIMES  extra runtimes to install, e.g. "lxc" (default: none; docker.io is always installed)
#   FERRY_CRIU_PREFIX         private CRIU root (default /opt/ferry/criu)
#   FERRY_CRIU_SUITES         Debian suites tried in order for CRIU (first offering >= 4.2 wins)
#   FERRY_CRIU_FORCE=1        reinstall the private CRIU even if a good criu is in PATH
#   FERRY_PROVISION_LOG       apt/criu output log (default /var/log/ferry-provision.log)
#   FERRY_PROVISION_IMAGE=1   provisioning a disk image in a chroot (scripts/vm/build-image.sh): `criu check` cannot
#                             judge a chroot (foreign mount tree, no /dev/net/tun), so it is left to `--check` on the
#                             booted machine; everything else is done and verified as usual
# Gotchas (see /work/shared/LAB.md):
# - Debian 12's criu 3.17 fails on kernels >= 6.x (vDSO bounds); 13's 4.1 cannot dump inet sockets on >= 6.16.
#   CRIU 4.2 from sid needs glibc >= 2.38, so it runs from a private root through its own ld.so.
# - The wrapper uses `ld.so --library-path`, NOT LD_LIBRARY_PATH: the latter would leak into the helpers
#   CRIU execs (iptables-restore, ip, tar) and break them against the system loader.
# - Every CRIU run logs "rlimit: Can't setup RLIMIT_NOFILE" (no CAP_SYS_RESOURCE here): judge by exit code.
# - Lazy pages need fs.pipe-max-size >= 4 MiB, otherwise "page-pipe: splice: Bad file descriptor".
# - `apt-get update` may exit non-zero because of unrelated third-party sources: tolerated, install decides.
# - Debs may ship absolute symlinks (e.g. lib64/ld-linux -> /lib/...), which would escape the prefix:
#   the loader is picked as a regular file. /proc/self/exe of CRIU is then ld.so: harmless so far
#   (runc's `criu swrk`, dump, restore, tmpfs tar all verified through the wrapper).
# - Bookworm's debian-archive-keyring (2023.3+deb12u2) still verifies sid/forky (Nov 2026).
# - No systemd here, but invoke-rc.d still starts daemons unless policy-rc.d denies it.
# - Testing CRIU on a process in `unshare --pid --fork --mount-proc`: the session leader must be inside
#   (`setsid` inside the ns), no fd may be inherited from outside the new mount ns ("Can't lookup mount=N"),
#   restore needs `--root /` (else mount.c BUG), and the ns init ignores SIGTERM from outside: SIGKILL it.
set -Eeuo pipefail

PREFIX=${FERRY_CRIU_PREFIX:-/opt/ferry/criu}
RUNTIMES=${FERRY_PROVISION_RUNTIMES:-}
SUITES=${FERRY_CRIU_SUITES:-"sid trixie-backports forky trixie"}
LOG=${FERRY_PROVISION_LOG:-/var/log/ferry-provision.log}
WRAPPER=/usr/local/sbin/criu
CRIU_MIN=4.2
PIPE_MAX=4194304
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
PACKAGES=(runc lxc iptables openssh-server openssh-client busybox-static iproute2 libxxhash-dev
  build-essential gcc g++ libc6-dev make python3 procps util-linux tar tmux screen
  docker.io # the Docker adapter's tests start their own dockerd (no systemd: the package's service stays off)
  podman zstd) # checkpoint archives: tests run Podman 4.3 in a private storage root; Podman compresses exports with zstd
ORIG_PATH=$PATH
# A minimal PATH (cron, CI) may lack the sbin dirs; keep the caller's order otherwise.
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin:/usr/local/bin:/usr/bin:/bin"
export DEBIAN_FRONTEND=noninteractive
# Other sessions may run apt concurrently on this host: wait for the dpkg lock instead of failing.
APT_OPTS=(-q -y -o DPkg::Lock::Timeout=300 --no-install-recommends)
STEP_OPEN=0 T0=$SECONDS
# set -e would otherwise end the run silently on an unforeseen failure.
trap 'die "unexpected failure (line $LINENO: $BASH_COMMAND)"' ERR

step() { printf 'ferry-provision: %s ... ' "$*"; STEP_OPEN=1; }
ok() { echo "${1:-ok}"; STEP_OPEN=0; }
say() { echo "ferry-provision: $*"; }
die() { # die MESSAGE [HINT]
  [[ $STEP_OPEN == 1 ]] && echo "FAILED"
  echo "ferry-provision: ERROR: $1${2:+; hint: $2}" >&2
  [[ -s $LOG ]] && echo "ferry-provision: details in $LOG" >&2
  exit 1
}
log_run() { echo "+ $*" >>"$LOG"; "$@" >>"$LOG" 2>&1; }

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

# ---------- system packages ----------
UPDATED=0
apt_update() { # apt_update [force]: refresh once if lists are missing or older than a day
  [[ $UPDATED == 1 ]] && return 0
  [[ ${1:-} != force && -n $(find /var/lib/apt/lists -maxdepth 1 -name '*_InRelease' -mmin -1440 2>/dev/null) ]] && return 0
  step "apt-get update"; UPDATED=1
  # Tolerated: unrelated third-party sources may fail; the install decides.
  if log_run apt-get "${APT_OPTS[@]}" update; then ok; else ok "warnings (see $LOG)"; fi
}

install_packages() {
  local missing=() p
  for p in "${PACKAGES[@]}" $RUNTIMES; do installed "$p" || missing+=("$p"); done
  if [[ ${#missing[@]} -eq 0 ]]; then say "packages: all ${#PACKAGES[@]} present${RUNTIMES:+ (+ $RUNTIMES)}"; return; fi
  apt_update
  # Maintainer scripts (openssh-server, docker.io, lxc) start their daemons unless policy-rc.d
  # says no. This host ships one; elsewhere add a temporary deny-all for the install only.
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\n# temporary, ferry provision-host.sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d; trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  step "installing ${missing[*]}"
  if ! log_run apt-get "${APT_OPTS[@]}" install "${missing[@]}"; then
    ok "FAILED"  # Lists may be recent yet lack a package: update once, retry, then name the culprit.
    apt_update force
    step "retrying ${missing[*]}"
    if ! log_run apt-get "${APT_OPTS[@]}" install "${missing[@]}"; then
      for p in "${missing[@]}"; do
        log_run apt-get "${APT_OPTS[@]}" -s install "$p" || die "could not install Debian package '$p'" "check apt sources"
      done
      die "apt-get install ${missing[*]} failed" "see the log"
    fi
  fi
  ok
  if grep -q 'ferry provision-host' /usr/sbin/policy-rc.d 2>/dev/null; then rm -f /usr/sbin/policy-rc.d; trap - EXIT; fi
}

# ---------- CRIU ----------
criu_version() { "$1" --version 2>/dev/null | awk '/^Version:/{print $2; exit}'; }
criu_check() { # criu_check BIN
  if [[ -n ${FERRY_PROVISION_IMAGE:-} ]]; then echo "+ $1 check: skipped (image build; run --check after boot)" >>"$LOG"; return 0; fi
  log_run "$1" check
}
criu_good() { # criu_good BIN: version >= CRIU_MIN and `criu check` exits 0
  local v; v=$(criu_version "$1") || return 1
  [[ -n $v ]] && dpkg --compare-versions "$v" ge "$CRIU_MIN" && criu_check "$1"
}

# Private apt: its own sources, lists, cache and an EMPTY dpkg status, so the resolver treats
# every dependency as missing and prints the full closure; /etc/apt/sources.list* stay untouched.
papt() { local cmd=$1; shift; "$cmd" -q -o Dir::Etc::sourcelist="$WORK/sources.list" -o Dir::Etc::sourceparts=- \
  -o Dir::State::Lists="$WORK/lists" -o Dir::Cache="$WORK/cache" -o Dir::State::status="$WORK/status" \
  -o Dir::Etc::preferences=/dev/null -o Dir::Etc::preferencesparts="$WORK/prefs.d" \
  -o APT::Default-Release="$SUITE" "$@"; }

pick_suite() { # sets SUITE and CRIU_PKG_VER to the first suite offering criu >= CRIU_MIN
  local s base v
  for s in $SUITES; do
    base=${s%-backports}; SUITE=$s
    # A backports suite resolves its dependencies against its base release.
    { echo "deb [signed-by=$KEYRING] http://deb.debian.org/debian $s main"
      [[ $base != "$s" ]] && echo "deb [signed-by=$KEYRING] http://deb.debian.org/debian $base main"; } >"$WORK/sources.list"
    rm -rf "$WORK/lists"; mkdir -p "$WORK/lists/partial"
    # apt-get update can exit 0 with an unverifiable Release (it only warns): check its output too.
    if ! papt apt-get update >"$WORK/update.out" 2>&1 || grep -q -E 'NO_PUBKEY|not signed|EXPKEYSIG' "$WORK/update.out"; then
      cat "$WORK/update.out" >>"$LOG"; OFFERS+="${OFFERS:+, }$s: unreachable"; continue; fi
    v=$(papt apt-cache policy criu 2>>"$LOG" | awk '/Candidate:/{print $2}')
    echo "  suite $s offers criu ${v:-none}" >>"$LOG"; OFFERS+="${OFFERS:+, }$s: ${v:-none}"
    if [[ -n $v && $v != "(none)" ]] && dpkg --compare-versions "$v" ge "$CRIU_MIN"; then CRIU_PKG_VER=$v; return 0; fi
  done
  return 1
}

install_private_criu() {
  WORK=$(mktemp -d /tmp/ferry-criu.XXXXXX); trap 'rm -rf "$WORK"' EXIT; chmod 755 "$WORK"
  mkdir -p "$WORK/cache/archives/partial" "$WORK/prefs.d" "$WORK/debs"; : >"$WORK/status"
  # apt-get download drops privileges to _apt; let it write there (avoids the "unsandboxed" warning).
  id _apt >/dev/null 2>&1 && chown _apt "$WORK/debs"
  step "finding a Debian suite with criu >= $CRIU_MIN ($SUITES)"; OFFERS=""
  pick_suite || die "could not install CRIU >= $CRIU_MIN: no Debian suite offers it ($OFFERS)" \
    "check access to deb.debian.org and that $KEYRING is current (apt-get install debian-archive-keyring)"
  ok "$SUITE: $CRIU_PKG_VER"
  step "resolving criu dependencies"
  # apt's own resolver over Depends/Pre-Depends (no Recommends). Tools that only maintainer
  # scripts need are dropped: we unpack, never configure.
  local pkgs=()
  mapfile -t pkgs < <(papt apt-get -s --no-install-recommends install criu 2>>"$LOG" | awk '/^Inst /{print $2}' \
    | grep -v -x -E 'debconf|perl-base|dpkg|install-info|init-system-helpers|python3.*' || true)
  [[ ${#pkgs[@]} -gt 0 ]] || die "could not install CRIU >= $CRIU_MIN: apt could not resolve criu in $SUITE" "see the log"
  ok "${#pkgs[@]} packages"
  step "downloading ${#pkgs[@]} packages from $SUITE"
  (cd "$WORK/debs" && log_run papt apt-get download "${pkgs[@]}") \
    || die "could not install CRIU >= $CRIU_MIN: apt-get download failed" "check access to deb.debian.org"
  ok
  step "unpacking into $PREFIX"
  local stage="$PREFIX.new" deb
  rm -rf "$stage"; mkdir -p "$stage"
  for deb in "$WORK"/debs/*.deb; do dpkg-deb -x "$deb" "$stage"; done
  ok
  echo "$CRIU_PKG_VER" >"$stage/VERSION"
  printf 'suite=%s\npackages=%s\n' "$SUITE" "${pkgs[*]}" >"$stage/SOURCE"
  # Swap only after the new tree is complete, so an interrupted run never leaves a half prefix.
  rm -rf "$PREFIX.old"; if [[ -e $PREFIX ]]; then mv "$PREFIX" "$PREFIX.old"; fi
  mv "$stage" "$PREFIX"; rm -rf "$PREFIX.old"
  write_wrapper "$PREFIX"
  rm -rf "$WORK"; trap - EXIT
}

write_wrapper() { # write_wrapper ROOT
  local stage=$1 triplet ld libdirs="" d
  triplet=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || echo "$(uname -m)-linux-gnu")
  # Newer glibc packages may keep the loader in lib64 or usr/lib64; take the real file, not a symlink.
  ld=$(cd "$stage" && find "usr/lib/$triplet" "lib/$triplet" usr/lib64 lib64 -maxdepth 1 -type f \
    -name 'ld-linux*.so.*' 2>/dev/null | head -1 || true)
  [[ -n $ld ]] || die "could not install CRIU >= $CRIU_MIN: no dynamic loader in the unpacked libc6" "see $stage"
  for d in "usr/lib/$triplet" "lib/$triplet"; do [[ -d $stage/$d ]] && libdirs+="${libdirs:+:}$PREFIX/$d"; done
  [[ -x $stage/usr/sbin/criu ]] || die "could not install CRIU >= $CRIU_MIN: usr/sbin/criu missing from the package" ""
  mkdir -p "$(dirname "$WRAPPER")"
  cat >"$WRAPPER.tmp" <<EOF
#!/bin/sh
# Generated by ferry scripts/provision-host.sh: CRIU $CRIU_PKG_VER ($SUITE) in a private root.
# The private loader + --library-path keeps the newer glibc away from everything CRIU execs.
exec $PREFIX/$ld --library-path $libdirs $PREFIX/usr/sbin/criu "\$@"
EOF
  chmod 755 "$WRAPPER.tmp"; mv "$WRAPPER.tmp" "$WRAPPER"
}

ensure_criu() {
  local cur; cur=$(command -v criu || true)
  step "checking CRIU >= $CRIU_MIN${cur:+ ($cur)}"
  if [[ -n ${FERRY_CRIU_FORCE:-} ]]; then ok "reinstall forced"; install_private_criu
  elif [[ -n $cur ]] && criu_good "$cur"; then ok "ok ($(criu_version "$cur"))"; return
  else
    ok "no${cur:+ ($(criu_version "$cur" || true), or criu check failed)}"
    # The prefix may still be intact (wrapper deleted or shadowed): reuse it before downloading again.
    if [[ -x $PREFIX/usr/sbin/criu && -f $PREFIX/SOURCE ]]; then
      CRIU_PKG_VER=$(cat "$PREFIX/VERSION"); SUITE=$(sed -n 's/^suite=//p' "$PREFIX/SOURCE")
      write_wrapper "$PREFIX"
    fi
    if [[ ! -x $WRAPPER ]] || ! criu_good "$WRAPPER"; then install_private_criu; fi
  fi
  step "checking private CRIU"
  criu_good "$WRAPPER" || die "could not install CRIU >= $CRIU_MIN: $WRAPPER fails 'criu check'" "see $LOG"
  ok "ok ($(criu_version "$WRAPPER"))"
}

# ---------- sysctl ----------
ensure_sysctl() {
  step "fs.pipe-max-size >= $PIPE_MAX"
  local cur; cur=$(cat /proc/sys/fs/pipe-max-size)
  if (( cur < PIPE_MAX )); then
    log_run sysctl -w fs.pipe-max-size=$PIPE_MAX || die "cannot set fs.pipe-max-size" "needed by CRIU lazy pages"
  fi
  local conf=/etc/sysctl.d/60-ferry.conf line="fs.pipe-max-size = $PIPE_MAX"
  if ! grep -qxF "$line" "$conf" 2>/dev/null; then
    printf '# ferry: CRIU lazy pages grow a pipe to ~3.3 MiB (LAB.md)\n%s\n' "$line" >"$conf"
  fi
  ok "ok ($(cat /proc/sys/fs/pipe-max-size))"
}

# ---------- verification ----------
verify() {
  local missing=() c v x
  c=$(PATH=$ORIG_PATH command -v criu || true)
  v=""; [[ -z $c ]] || v=$(criu_version "$c" || true)
  if [[ -z $c ]]; then missing+=("criu (not in PATH; wrapper: $WRAPPER)")
  elif ! dpkg --compare-versions "${v:-0}" ge "$CRIU_MIN"; then missing+=("criu >= $CRIU_MIN (found ${v:-?} at $c)")
  elif ! criu_check "$c"; then missing+=("criu check (see $LOG)"); fi
  if [[ -x $WRAPPER && $c != "$WRAPPER" ]]; then say "warning: '$c' shadows $WRAPPER in PATH"; fi
  command -v runc >/dev/null || missing+=("runc")
  command -v lxc-checkpoint >/dev/null || missing+=("lxc-checkpoint (lxc)")
  [[ -x /usr/sbin/sshd ]] || missing+=("sshd (openssh-server)")
  command -v ssh >/dev/null || missing+=("ssh (openssh-client)")
  { [[ -x /bin/busybox ]] && ! ldd /bin/busybox >/dev/null 2>&1; } || missing+=("static busybox (busybox-static)")
  command -v iptables-restore >/dev/null || missing+=("iptables-restore (iptables)")
  command -v ip >/dev/null || missing+=("ip (iproute2)")
  [[ -x /usr/sbin/dockerd && -x /usr/bin/docker ]] || missing+=("dockerd and /usr/bin/docker (docker.io)")
  command -v podman >/dev/null || missing+=("podman")
  command -v zstd >/dev/null || missing+=("zstd")
  for x in gcc g++ make python3 tar nsenter unshare ps; do command -v $x >/dev/null || missing+=("$x"); done
  [[ -f /usr/include/xxhash.h ]] || missing+=("xxhash.h (libxxhash-dev)")
  for x in $RUNTIMES; do installed "$x" || missing+=("$x"); done
  (( $(cat /proc/sys/fs/pipe-max-size) >= PIPE_MAX )) || missing+=("fs.pipe-max-size >= $PIPE_MAX")

  x=""; [[ $c == "$WRAPPER" && -f $PREFIX/SOURCE ]] && x="(private root $PREFIX, $(sed -n 's/^suite=/from /p' "$PREFIX/SOURCE"))"
  printf 'ferry-provision: summary:\n  criu:       %s\n' "${c:-none} ${v:-} $x"
  # Informational: without soft-dirty (this kernel) CRIU pre-dump cannot work; ferry has its own pre-copy.
  x="unknown"; [[ -z $c || -n ${FERRY_PROVISION_IMAGE:-} ]] || { log_run "$c" check --feature mem_dirty_track && x=yes || x="no (no CRIU pre-dump)"; }
  printf '  soft-dirty: %s\n  runc:       %s\n  pipe-max:   %s\n  runtimes:   %s\n  elapsed:    %s s\n' "$x" \
    "$(runc --version 2>/dev/null | head -1 || echo none)" "$(cat /proc/sys/fs/pipe-max-size)" \
    "${RUNTIMES:-none requested (FERRY_PROVISION_RUNTIMES=\"lxc docker.io\")}" "$((SECONDS - T0))"
  if (( ${#missing[@]} )); then
    printf -v x '%s, ' "${missing[@]}"; echo "ferry-provision: ERROR: missing: ${x%, }" >&2
    echo "ferry-provision: hint: run scripts/provision-host.sh (without --check) as root; log: $LOG" >&2
    return 1
  fi
  say "all checks passed"
}

main() {
  local mode=install
  case ${1:-} in
    --check) mode=check ;;
    "") ;;
    -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
    *) die "unknown argument '$1'" "usage: $0 [--check]" ;;
  esac
  [[ $(id -u) == 0 ]] || die "must run as root" "sudo $0"
  mkdir -p "$(dirname "$LOG")"; echo "=== $(date -Is) provision-host $mode" >>"$LOG"
  if [[ $mode == install ]]; then
    command -v apt-get >/dev/null || die "apt-get not found" "this script supports Debian hosts only"
    case ":$ORIG_PATH:" in *:/usr/sbin:*/usr/local/sbin:*) say "warning: /usr/sbin precedes /usr/local/sbin in PATH";; esac
    install_packages
    ensure_criu
    ensure_sysctl
  fi
  verify || exit 1
}

main "$@"
