"""ruff owns the layout and the lint rules, mypy the types (pyproject.toml): the tree is formatted,
clean and type-checks."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PATHS = ["vggeo", "server", "tests", "benchmarks"]
#: The formatter's escape comments (spelled apart, so that this file holds neither).
MARKERS = ("fmt" + ": skip", "fmt" + ": off")


def _ruff(*args: str) -> subprocess.CompletedProcess:
    exe = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    if exe is None:
        pytest.skip("ruff is not installed (the test extra installs it)")
    return subprocess.run(
        [exe, *args, *PATHS], cwd=REPO, capture_output=True, text=True, timeout=300
    )


def test_the_code_is_formatted_by_ruff():
    r = _ruff("format", "--check")
    assert r.returncode == 0, r.stdout + r.stderr


def test_ruff_finds_nothing():
    r = _ruff("check")
    assert r.returncode == 0, r.stdout + r.stderr


def test_no_formatter_escapes():
    skips = [
        f"{p.relative_to(REPO)}:{i}"
        for d in PATHS
        for p in (REPO / d).rglob("*.py")
        for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
        if any(marker in line for marker in MARKERS)
    ]
    assert skips == []


def test_mypy_finds_nothing():
    """mypy over the files ``[tool.mypy]`` names (vggeo/ and the server), with its settings."""
    exe = shutil.which("mypy", path=str(Path(sys.executable).parent)) or shutil.which("mypy")
    if exe is None:
        pytest.skip("mypy is not installed (the test extra installs it)")
    r = subprocess.run(
        [exe, "--no-error-summary", "--hide-error-context"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    errors = [line for line in r.stdout.splitlines() if ": error:" in line]
    assert r.returncode == 0 and not errors, "\n".join(errors) or r.stdout + r.stderr


def _function_level_imports(path: Path) -> list[tuple[int, bool]]:
    """(line, explained) of each import inside a function: explained when a comment stands on its
    line or on the line directly above the run of import lines it belongs to."""
    lines = path.read_text(encoding="utf-8").splitlines()
    found = []
    for fn in ast.walk(ast.parse("\n".join(lines))):
        if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for node in ast.walk(fn):
            if not isinstance(node, (ast.Import, ast.ImportFrom)):
                continue
            above = node.lineno - 2
            while above >= 0 and lines[above].lstrip().startswith(("import ", "from ")):
                above -= 1
            explained = "#" in lines[node.lineno - 1] or (
                above >= 0 and lines[above].lstrip().startswith("#")
            )
            found.append((node.lineno, explained))
    return found


def test_every_function_level_import_says_why():
    """An import inside a function hides what a module needs, and can hide a cycle: the library
    and the server import at the top, except where a function avoids an optional extra or keeps
    ``vggeo --help`` fast — and then a comment says so."""
    silent = [
        f"{p.relative_to(REPO)}:{line}"
        for root in ("vggeo", "server/vggeo_server")
        for p in sorted((REPO / root).rglob("*.py"))
        for line, explained in _function_level_imports(p)
        if not explained
    ]
    assert silent == [], f"{len(silent)} function-level imports without a comment"
