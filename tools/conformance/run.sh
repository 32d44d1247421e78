#!/usr/bin/env bash
# libiscsi conformance run (see README.md beside this file). All arguments go to run.ts, e.g.
#   bash tools/conformance/run.sh                       # arraysim, three LUN configurations, -t ALL
#   bash tools/conformance/run.sh -t ALL.Read10         # quick run
#   ARRAYSIM_CMD='bash tools/conformance/targets/tgt.sh' bash tools/conformance/run.sh --lun-number 1
set -uo pipefail
cd "$(dirname "$0")/../.."
if ! command -v iscsi-test-cu >/dev/null; then
  echo "iscsi-test-cu not found: apt-get install libiscsi-bin" >&2
  echo "conformance: 0 passed, 1 failed, 0 skipped"
  exit 1
fi
# The targets run from dist/ (bin/arraysim.js); rebuild it when a source is newer.
node tools/build.mjs --if-stale || exit 1
exec node_modules/.bin/tsx tools/conformance/run.ts "$@"
