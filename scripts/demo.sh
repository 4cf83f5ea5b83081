#!/usr/bin/env bash
# The main job, from a clean clone, as root: set the host up, then show what it can do.
set -Eeuo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
echo
ferry doctor
