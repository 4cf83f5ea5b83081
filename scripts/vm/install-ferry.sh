#!/usr/bin/env bash
# install-ferry.sh SRC: installs ferry from the checkout SRC on a provisioned host (after scripts/provision-host.sh):
# Node.js >= 20 when the system's is older (Debian 12 ships 18; the official build from nodejs.org, checked against
# its SHASUMS256.txt), a copy of SRC in /opt/ferry/src, npm ci (builds the native addon), tsc -b, and `ferry` /
# `migrate` in /usr/local/bin. For the Vagrant VMs (Vagrantfile); the local qemu guests get ferry on a disk instead.
set -Eeuo pipefail
SRC=${1:?usage: install-ferry.sh SRC}
DEST=/opt/ferry/src
NODE_LINE=${FERRY_NODE_LINE:-v20}
say() { echo "ferry-install: $*"; }
die() { echo "ferry-install: ERROR: $1${2:+; hint: $2}" >&2; exit 1; }
[[ $(id -u) == 0 ]] || die "must run as root" "sudo $0 $SRC"

need=()
for t in curl:curl rsync:rsync xz:xz-utils; do command -v "${t%%:*}" >/dev/null || need+=("${t#*:}"); done
if (( ${#need[@]} )); then
  DEBIAN_FRONTEND=noninteractive apt-get -q -y -o DPkg::Lock::Timeout=300 --no-install-recommends install "${need[@]}" >/dev/null
fi

node_ok() { command -v node >/dev/null && [[ $(node -p 'process.versions.node.split(".")[0]') -ge 20 ]]; }
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
for bin in ferry migrate; do ln -sfn "$DEST/packages/cli/bin/$bin.js" "/usr/local/bin/$bin"; done
say "ferry is $(command -v ferry) -> $DEST"
