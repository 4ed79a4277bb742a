#!/usr/bin/env bash
# Run the whole suite (`make test`). Arguments go to pytest.
# pytest exits 5 when it collected no tests: that is a failure here, never a pass.
set -uo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
start=$(date +%s)
"$VENV/bin/python" -m pytest "$@"
status=$?
if [[ $status -eq 5 ]]; then
  echo "test: pytest collected no tests; that is a failure (check the paths and -m/-k filters)." >&2
  status=1
fi
echo "test: pytest finished with status $status in $(( $(date +%s) - start )) s"
exit $status
