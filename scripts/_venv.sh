# Sourced by scripts/*.sh: create .venv beside the repository and install vggeo into it.
# Re-installs only when pyproject.toml changed since the last install.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VGGEO_VENV:-$ROOT/.venv}"
PY="${PYTHON:-python3}"
if [ ! -x "$VENV/bin/python" ]; then
  echo "vggeo: creating virtual environment $VENV" >&2
  "$PY" -m venv "$VENV"
fi
stamp="$VENV/.vggeo-installed"
if [ ! -f "$stamp" ] || [ "$ROOT/pyproject.toml" -nt "$stamp" ]; then
  echo "vggeo: installing vggeo and its dependencies into $VENV" >&2
  "$VENV/bin/python" -m pip install -q --upgrade pip >&2
  "$VENV/bin/python" -m pip install -q -e "$ROOT[${VGGEO_EXTRAS:-test}]" >&2
  touch "$stamp"
  echo "vggeo: installed; to use the vggeo command in your shell: source $VENV/bin/activate" >&2
fi
export PATH="$VENV/bin:$PATH"
