#!/usr/bin/env bash
# CI smoke check: fail loudly when the stack holds failed records or a queue older than StackAlertAge.
# Usage: STATUSCTL_DB=/path/to/statusctl.db examples/ci-smoke.sh
set -euo pipefail
if ! statusctl stack status --check; then
    echo "statusctl smoke check FAILED: failed records on the stack:" >&2
    statusctl stack list --failed >&2 || true
    exit 1
fi
echo "statusctl smoke check passed."
