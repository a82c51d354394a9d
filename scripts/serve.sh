#!/usr/bin/env bash
# The main job: the tile server with its map page on the bundled sample data.
# Creates .venv and installs vggeo on first use. Extra arguments go to `vggeo serve`.
VGGEO_EXTRAS="${VGGEO_EXTRAS:-test}"
source "$(dirname "$0")/_venv.sh"
cd "$ROOT"
exec vggeo serve "$@"
