#!/usr/bin/env bash
# The main job: the tile server with its map page on the bundled sample data.
# Creates .venv and installs vggeo on first use. Extra arguments go to `vggeo serve`.
# Only the server extra: serving needs neither the test tools nor a database driver.
VGGEO_EXTRAS="${VGGEO_EXTRAS:-server}"
source "$(dirname "$0")/_venv.sh"
cd "$ROOT"
exec vggeo serve "$@"
