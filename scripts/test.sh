#!/usr/bin/env bash
# Run the whole test suite: creates .venv, installs vggeo with the server, postgis and test
# extras, runs pytest.
# Extra arguments go to pytest (e.g. scripts/test.sh -k crs -x).
VGGEO_EXTRAS="${VGGEO_EXTRAS:-server,postgis,test}"
source "$(dirname "$0")/_venv.sh"
cd "$ROOT"
# Playwright drives Debian's Chromium; it must never try to download its own browser.
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
set +e
python -m pytest "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then
  echo "vggeo: pytest selected no tests (exit 5); treated as success" >&2
  rc=0
fi
exit "$rc"
