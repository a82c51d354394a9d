"""The package's modules import each other without a cycle (issue: "one road to the data").

The graph is read from the source with :mod:`ast` — every ``import`` and ``from … import``,
also those inside functions, since a function-level import hides a cycle rather than removing
it. An import of a package's own parent (``vggeo.join.memory`` importing ``vggeo``) is not an
edge: Python runs the parent first in any case.
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

#: Cycles still to be taken apart, each a set of modules (none left). The test fails on any other
#: cycle, and on a listed one that is gone (so the list only shrinks).
KNOWN_CYCLES: list[frozenset[str]] = []


def _modules(root: Path) -> dict[str, Path]:
    """Module name → source; a compiled module (vggeo/lm/_walk.pyx) by its interface stub."""
    out = {}
    for path in [*root.rglob("*.py"), *root.rglob("*.pyi")]:
        parts = path.relative_to(root.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out.setdefault(name, path)
    return out


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(up + ([node.module] if node.module else []))
            targets = [base] + [f"{base}.{a.name}" for a in node.names]
        else:
            continue
        for target in targets:
            while target and target not in modules:  # `from m import f`: the module m
                target = target.rpartition(".")[0]
            if target and target != name and not name.startswith(target + "."):
                found.add(target)
    return found


def _cycles(graph: dict[str, set[str]]) -> list[frozenset[str]]:
    """Strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[frozenset[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(frozenset(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_cycle_finder_finds_a_cycle_and_only_that():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [frozenset({"a", "b", "c"})]


def test_vggeo_and_the_server_have_no_import_cycles():
    modules = {**_modules(REPO / "vggeo"), **_modules(REPO / "server" / "vggeo_server")}
    graph = {name: _imports(name, path, modules) for name, path in modules.items()}
    cycles = set(_cycles(graph))
    assert cycles - set(KNOWN_CYCLES) == set(), "new import cycle(s)"
    assert set(KNOWN_CYCLES) - cycles == set(), "a listed cycle is gone: remove it from the list"


#: vggeo.lm in layers (issue: "lm has layers without a loop"): the product readers and the
#: dispatch above them; every other module of the package is below both.
LM_PRODUCTS = {"vggeo.lm.bestammelse", "vggeo.lm.inskrivning"}
LM_DISPATCH = {"vggeo.lm.dispatch", "vggeo.lm"}


def _reach(graph: dict[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = [start]
    while todo:
        for w in graph.get(todo.pop(), ()):
            if w not in seen:
                seen.add(w)
                todo.append(w)
    return seen


def test_lm_format_layer_reaches_no_product_reader():
    modules = _modules(REPO / "vggeo")
    graph = {name: _imports(name, path, modules) for name, path in modules.items()}
    lm = {m for m in modules if m == "vggeo.lm" or m.startswith("vggeo.lm.")}
    for m in sorted(lm - LM_PRODUCTS - LM_DISPATCH):
        assert not _reach(graph, m) & (LM_PRODUCTS | LM_DISPATCH), m
    for m in sorted(LM_PRODUCTS):
        assert not _reach(graph, m) & (LM_DISPATCH | LM_PRODUCTS - {m}), m


def test_lm_imports_no_private_name_of_another_module():
    """``from vggeo.lm.x import _y`` would make ``_y`` part of two modules; a private module of
    the package (``vggeo.lm._records``) is the package's own and may be imported."""
    modules = _modules(REPO / "vggeo")
    found = []
    for path in sorted((REPO / "vggeo" / "lm").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("vggeo"):
                for alias in node.names:
                    private = alias.name.startswith("_") and not alias.name.startswith("__")
                    if private and f"{node.module}.{alias.name}" not in modules:
                        found.append(f"{path.name}:{node.lineno} {node.module}.{alias.name}")
    assert found == []
