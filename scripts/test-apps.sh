#!/usr/bin/env bash
# npm run test:apps: real servers from Debian's packages moved between the sandbox hosts under their own load
# (e2e/apps, docs/compatibility.md), then the measured matrix as Markdown and one closing line
# "apps: N passed, N failed, N skipped". Root; after scripts/setup.sh. A first run builds each application's
# rootfs with mmdebstrap (minutes each; cached in /var/cache/ferry/apps, keyed by the package list).
#   --ci                       CI's subset (.ci/run, npm run test:apps:ci): redis, nginx, mosquitto on runc,
#                              nginx on LXC and redis on Docker: a key-value store, a web server with workers, a
#                              broker, and the two other runtimes, in a fraction of the full matrix's time
#                              (docs/compatibility.md has both)
#   FERRY_APPS=redis,nginx     a subset (default: all of e2e/apps/catalog)
#   FERRY_LXC_APPS=redis       the LXC rows (default: redis,nginx)
#   FERRY_DOCKER_APPS=redis    the Docker rows (default: redis,nginx; a dockerd in each sandbox host, a macvlan
#                              network on the LAN: e2e/apps/docker-lab.ts)
#   FERRY_APPS_MATRIX=FILE     where the Markdown table goes (default: printed only)
set -Eeuo pipefail
cd "$(dirname "$0")/.."
export FERRY_E2E_PREFIX=${FERRY_E2E_PREFIX:-apps}
if [[ ${1:-} == --ci ]]; then
  shift
  export FERRY_APPS=${FERRY_APPS:-redis,nginx,mosquitto} FERRY_LXC_APPS=${FERRY_LXC_APPS:-nginx} FERRY_DOCKER_APPS=${FERRY_DOCKER_APPS:-redis}
fi
if ! command -v mmdebstrap >/dev/null; then
  echo "test-apps: installing mmdebstrap (Debian's rootfs builder)"
  DEBIAN_FRONTEND=noninteractive apt-get install -q -y -o DPkg::Lock::Timeout=300 --no-install-recommends mmdebstrap >/dev/null
fi
results=$(mktemp /tmp/ferry-apps-XXXXXX.json)
rows=$(mktemp /tmp/ferry-apps-rows-XXXXXX.jsonl)
trap 'rm -f "$results" "$rows"' EXIT
started=$SECONDS
status=0
# One test file at a time: the servers and their load tools share two cores, and the matrix measures them.
FERRY_APPS_RESULTS=$rows npx jest --ci --selectProjects apps --runInBand --json --outputFile="$results" "$@" || status=$?
if [[ -s $rows ]]; then
  node e2e/apps/matrix.js "$rows" | tee "${FERRY_APPS_MATRIX:-/dev/null}"
fi
echo "test-apps: $((SECONDS - started)) s"
node -e '
  const r = require(process.argv[1]);
  if (r.numTotalTests === 0) { console.log("apps: no tests ran"); process.exit(1); }
  console.log(`apps: ${r.numPassedTests} passed, ${r.numFailedTests} failed, ${r.numPendingTests + r.numTodoTests} skipped`);
' "$results" || status=1
exit $status
