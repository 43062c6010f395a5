#!/usr/bin/env bash
# The README's test command: starts the local Kafka + S3 stack when it is not running (and stops what it
# started), lints (module boundaries included), then runs every project's tests through Nx and ends with
# one line "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/stack-env.sh

started=0
stop_stack() { if [ "$started" = 1 ]; then bash deploy/local/stop.sh || true; fi; }
trap stop_stack EXIT INT TERM

if ! bash deploy/local/status.sh >/dev/null 2>&1; then
  echo "== starting the local stack (Kafka + SeaweedFS S3) =="
  bash deploy/local/install.sh || { echo "stack install failed"; echo "0 passed, 1 failed"; exit 1; }
  started=1
  bash deploy/local/start.sh || { echo "stack start failed: see .stack/logs/"; echo "0 passed, 1 failed"; exit 1; }
fi

find apps libs test -maxdepth 3 -path '*/.reports/vitest.json' -delete 2>/dev/null
npx nx run-many -t lint test --outputStyle=stream "$@"
rc=$?
node scripts/test-summary.mjs "$rc"
exit $rc
