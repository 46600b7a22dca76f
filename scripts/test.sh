#!/usr/bin/env bash
# Set up everything the test suite needs (Python env, bubblewrap, a Docker daemon and the sandbox image), then
# run the tests.   bash scripts/test.sh [pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
[ -f scripts/setup-sandbox.sh ] && bash scripts/setup-sandbox.sh
. .venv/bin/activate
exec python -m pytest "$@"
