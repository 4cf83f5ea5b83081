#!/usr/bin/env bash
# The project's test command (README, .ci/run): set-up, then every jest project (unit, native, integration with the
# real CRIU, end to end), then one closing line "tests: N passed, N failed, N skipped".
set -Eeuo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

results=$(mktemp /tmp/ferry-jest-XXXXXX.json)
trap 'rm -f "$results"' EXIT
status=0
npx jest --ci --json --outputFile="$results" "$@" || status=$?

node -e '
  const r = require(process.argv[1]);
  const skipped = r.numPendingTests + r.numTodoTests;
  if (r.numTotalTests === 0) { console.log("tests: no tests ran"); process.exit(1); }
  console.log(`tests: ${r.numPassedTests} passed, ${r.numFailedTests} failed, ${skipped} skipped`);
' "$results" || status=1
exit $status
