#!/usr/bin/env bash
# install-ferry.sh SRC: installs ferry from the checkout SRC on a provisioned host (after scripts/provision-host.sh):
# Node.js >= 20 when the system's is older (Debian 12 ships 18; the official build from nodejs.org, checked against
# its SHASUMS256.txt), a copy of SRC in /opt/ferry/src, npm ci (builds the native addon), tsc -b, and `ferry` /
# `migrate` in /usr/local/bin. For the Vagrant VMs (Vagrantfile); the local qemu guests get ferry on a disk instead.
# install-ferry.sh --prebuilt DIR: ferry already built elsewhere for this userland (scripts/vm/app-disk.sh --dir, on
# Debian 12 amd64 with the same Node major): no download, no npm, no compiler; `ferry` runs from DIR.
set -Eeuo pipefail
PREBUILT=
if [[ ${1:-} == --prebuilt ]]; then PREBUILT=${2:?usage: install-ferry.sh --prebuilt DIR}; fi
SRC=${1:?usage: install-ferry.sh SRC | --prebuilt DIR}
DEST=/opt/ferry/src
NODE_LINE=${FERRY_NODE_LINE:-v20}
say() { echo "ferry-install: $*"; }
die() { echo "ferry-install: ERROR: $1${2:+; hint: $2}" >&2; exit 1; }
[[ $(id -u) == 0 ]] || die "must run as root" "sudo $0 $*"
node_ok() { command -v node >/dev/null && [[ $(node -p 'process.versions.node.split(".")[0]') -ge 20 ]]; }
link_bins() { local bin; for bin in ferry migrate; do ln -sfn "$1/packages/cli/bin/$bin.js" "/usr/local/bin/$bin"; done; }

if [[ -n $PREBUILT ]]; then
  node_ok || die "a prebuilt ferry needs Node.js >= 20 on this machine" "install-ferry.sh SRC installs it"
  [[ -f $PREBUILT/packages/cli/bin/ferry.js ]] || die "$PREBUILT holds no built ferry" "make it with scripts/vm/app-disk.sh --dir"
  # The native addon is what must match this machine: load it now rather than fail on first use.
  node -e 'require(process.argv[1])' "$PREBUILT/packages/native/build/Release/ferry_native.node" \
    || die "the prebuilt native addon does not load here (node $(node --version))" "build ferry on this machine: install-ferry.sh SRC"
  # The test workloads compiled with it, where packages/core's test helpers look for them (as guest-boot.sh does).
  if [[ -d $PREBUILT/.fixtures ]]; then mkdir -p /tmp/ferry-fixtures && cp -a "$PREBUILT/.fixtures/." /tmp/ferry-fixtures/; fi
  link_bins "$PREBUILT"
  say "ferry is $(command -v ferry) -> $PREBUILT (prebuilt), node $(node --version)"
  exit 0
fi

need=()
for t in curl:curl rsync:rsync xz:xz-utils; do command -v "${t%%:*}" >/dev/null || need+=("${t#*:}"); done
if (( ${#need[@]} )); then
  DEBIAN_FRONTEND=noninteractive apt-get -q -y -o DPkg::Lock::Timeout=300 --no-install-recommends install "${need[@]}" >/dev/null
fi

if ! node_ok; then
  arch=$(dpkg --print-architecture); case $arch in amd64) arch=x64 ;; arm64) ;; *) die "no Node.js build for $arch" "install Node.js >= 20 by hand" ;; esac
  base="https://nodejs.org/dist/latest-$NODE_LINE.x"
  tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
  say "downloading Node.js ($NODE_LINE, $arch) from nodejs.org"
  curl -fsSL -o "$tmp/SHASUMS256.txt" "$base/SHASUMS256.txt" || die "cannot reach nodejs.org" "install Node.js >= 20 by hand"
  file=$(awk -v a="linux-$arch.tar.xz" '$2 ~ a"$" {print $2; exit}' "$tmp/SHASUMS256.txt")
  [[ -n $file ]] || die "no linux-$arch tarball listed in $base/SHASUMS256.txt" ""
  curl -fsSL -o "$tmp/$file" "$base/$file"
  (cd "$tmp" && grep " $file\$" SHASUMS256.txt | sha256sum -c --quiet) || die "checksum mismatch for $file" "retry; the download was damaged"
  tar -xJf "$tmp/$file" -C /usr/local --strip-components=1 --exclude='*/README.md' --exclude='*/LICENSE' --exclude='*/CHANGELOG.md'
  node_ok || die "Node.js install failed" "check /usr/local/bin/node"
fi
say "node $(node --version), copying $SRC to $DEST"
mkdir -p "$DEST"
rsync -a --delete --exclude=.git --exclude=node_modules --exclude='packages/*/dist' --exclude='packages/native/build' --exclude=.vagrant "$SRC/" "$DEST/"
cd "$DEST"
say "npm ci"
# The project's .npmrc points node-gyp at /usr (Debian's headers); a nodejs.org install keeps them under its prefix.
npm_config_nodedir=$(dirname "$(dirname "$(readlink -f "$(command -v node)")")") npm ci --no-audit --no-fund --loglevel=error
say "tsc -b"
npx tsc -b
link_bins "$DEST"
say "ferry is $(command -v ferry) -> $DEST"
