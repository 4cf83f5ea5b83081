#!/usr/bin/env bash
# Everything the demo and the tests need, from a clean clone, as root: host packages and CRIU (provision-host.sh),
# npm dependencies with the native addon, the TypeScript build, and `ferry` / `migrate` on PATH.
# Idempotent and quick on a second run.
set -Eeuo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

if [[ $(id -u) != 0 ]]; then
  echo "ferry-setup: ERROR: run as root (CRIU, namespaces and cgroups need it); hint: sudo bash $0" >&2
  exit 1
fi
command -v node >/dev/null && command -v npm >/dev/null || {
  echo "ferry-setup: ERROR: Node.js >= 20 with npm is required; hint: install nodejs and npm" >&2
  exit 1
}

bash scripts/provision-host.sh

# npm ci only when the lock file changed since the last install: it rebuilds the addon and takes a while.
if [[ ! -f node_modules/.package-lock.json || package-lock.json -nt node_modules/.package-lock.json ]]; then
  echo "ferry-setup: npm ci"
  npm ci --no-audit --no-fund --loglevel=error
else
  echo "ferry-setup: npm dependencies up to date"
fi
# Incremental: make rebuilds only what changed since npm ci (or since the last run).
echo "ferry-setup: native addon"
(cd packages/native && npx node-gyp build --loglevel=error >/dev/null)
echo "ferry-setup: tsc -b"
npx tsc -b

# The CLI on PATH for operators, the demo and the agent started over SSH on the sandbox hosts.
for bin in ferry migrate; do
  ln -sfn "$ROOT/packages/cli/bin/$bin.js" "/usr/local/bin/$bin"
done
echo "ferry-setup: ferry is $(command -v ferry) -> $ROOT"
