#!/usr/bin/env bash
# CI smoke check: fail loudly when the stack holds failed records, a queue older than
# StackAlertAge, or a store that is paused (its cart keeps failing) or misconfigured.
# Usage: STATUSCTL_DB=/path/to/statusctl.db examples/ci-smoke.sh
# It runs the statusctl on PATH; set STATUSCTL to the full path where PATH lacks it
# (cron, a CI job): STATUSCTL=/path/to/statusctl/.venv/bin/statusctl examples/ci-smoke.sh
set -uo pipefail
statusctl=${STATUSCTL:-statusctl}
"$statusctl" stack status --check
code=$?
case $code in
    0) echo "statusctl smoke check passed." ;;
    3) echo "statusctl smoke check FAILED: failed records, an old queue, or a paused or misconfigured store (see above):" >&2
       "$statusctl" stack list --failed >&2 || true ;;
    *) echo "statusctl smoke check FAILED: could not read the stack (exit $code; see the error above)." >&2 ;;
esac
exit $code
