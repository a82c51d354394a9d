# Sourced by scripts/*.sh: create .venv beside the repository and install vggeo into it.
# Re-installs only when pyproject.toml, setup.py or the compiled module's source changed since
# the last install. VGGEO_EXTRAS names the extras to install (each script sets its own: serve.sh
# `server`, test.sh `server,postgis,test`).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VGGEO_VENV:-$ROOT/.venv}"
PY="${PYTHON:-python3}"
if [ ! -x "$VENV/bin/python" ]; then
  echo "vggeo: creating virtual environment $VENV" >&2
  "$PY" -m venv "$VENV"
fi
EXTRAS="${VGGEO_EXTRAS:?set by the calling script}"
stamp="$VENV/.vggeo-installed"  # holds the extras installed, one a line
missing=0
for extra in ${EXTRAS//,/ }; do
  grep -qx -- "$extra" "$stamp" 2>/dev/null || missing=1
done
# setup.py and the .pyx: the compiled module is rebuilt by the install
if [ "$missing" = 1 ] || [ "$ROOT/pyproject.toml" -nt "$stamp" ] || [ "$ROOT/setup.py" -nt "$stamp" ] \
  || [ "$ROOT/vggeo/lm/_walk.pyx" -nt "$stamp" ]; then
  echo "vggeo: installing vggeo and its dependencies into $VENV" >&2
  "$VENV/bin/python" -m pip install -q --upgrade pip >&2
  "$VENV/bin/python" -m pip install -q -e "$ROOT[$EXTRAS]" >&2
  tr ',' '\n' <<< "$EXTRAS" > "$stamp"
  echo "vggeo: installed; to use the vggeo command in your shell: source $VENV/bin/activate" >&2
fi
export PATH="$VENV/bin:$PATH"
