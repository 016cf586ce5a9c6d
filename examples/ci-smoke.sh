#!/usr/bin/env bash
# CI smoke check: fail loudly when the stack holds failed records or a queue older than StackAlertAge.
# Usage: STATUSCTL_DB=/path/to/statusctl.db examples/ci-smoke.sh
set -uo pipefail
statusctl stack status --check
code=$?
case $code in
    0) echo "statusctl smoke check passed." ;;
    3) echo "statusctl smoke check FAILED: failed records or an old queue on the stack:" >&2
       statusctl stack list --failed >&2 || true ;;
    *) echo "statusctl smoke check FAILED: could not read the stack (exit $code; see the error above)." >&2 ;;
esac
exit $code
