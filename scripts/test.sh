#!/usr/bin/env bash
# The project's test command (README, .ci/run): set-up, then the jest projects unit and integration (native, real
# CRIU, end to end), then one closing line "tests: N passed, N failed, N skipped". The application matrix (project
# apps) has its own command, scripts/test-apps.sh; --selectProjects given here chooses instead.
set -Eeuo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

results=$(mktemp /tmp/ferry-jest-XXXXXX.json)
trap 'rm -f "$results"' EXIT
status=0
projects=(--selectProjects unit integration)
for arg in "$@"; do [[ $arg == --selectProjects* ]] && projects=(); done
npx jest --ci --json --outputFile="$results" "${projects[@]}" "$@" || status=$?

node -e '
  const r = require(process.argv[1]);
  const skipped = r.numPendingTests + r.numTodoTests;
  if (r.numTotalTests === 0) { console.log("tests: no tests ran"); process.exit(1); }
  console.log(`tests: ${r.numPassedTests} passed, ${r.numFailedTests} failed, ${skipped} skipped`);
' "$results" || status=1
exit $status
