"""Every GeoPackage vggeo writes passes GDAL's validate_gpkg.py with its warnings counted as faults.

The files: the store the real pipeline builds from the bundled deliveries and registry (ledger
included), the QGIS export of that store, ``registry load -o x.gpkg``, ``read -o x.gpkg`` and
``join -o x.gpkg``. The validator runs with ``-k --extra --warning-as-error`` semantics
(:func:`system.validate_gpkg`), so a DATETIME outside ``YYYY-MM-DDTHH:MM:SS.SSSZ`` or a string
wider than its declared ``TEXT(n)`` fails. GDAL 3.6's validator misreads the empty-geometry flag;
a store holding empty geometries (``--keep-bad-geometry`` writes them) exercises that known false
report, which is set aside only when GDAL itself confirms each of those geometries is empty.
"""

from __future__ import annotations

import os
import re
import sqlite3
from contextlib import closing
from datetime import datetime
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner
from system import validate_gpkg

from vggeo.cli import cli

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "sample_data"
#: GeoPackage 1.3, Req 5: the one DATETIME form.
DATETIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")

pytestmark = pytest.mark.gdal


def _run(*args) -> None:
    r = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
    assert r.exit_code == 0, r.output


@pytest.fixture(scope="module")
def pipeline_store(tmp_path_factory) -> Path:
    """The store the README builds: every bundled delivery, then the registry."""
    store = tmp_path_factory.mktemp("spec") / "store.gpkg"
    for product in ("bestammelse", "inskrivning"):
        _run(
            "ingest",
            *sorted((SAMPLE / "deliveries" / product).glob("*.zip")),
            "--store",
            store,
            "--no-progress",
        )
    _run(
        "registry",
        "load",
        SAMPLE / "registry" / "registry.parquet",
        "--store",
        store,
        "--no-progress",
    )
    return store


@pytest.fixture(scope="module")
def qgis_export(pipeline_store, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("spec") / "for_qgis.gpkg"
    _run(
        "export",
        "gpkg",
        "--store",
        pipeline_store,
        "-o",
        out,
        "--crs",
        "SWEREF 99 18 00",
        "--no-progress",
    )
    return out


def _datetime_values(path: Path) -> dict[str, list[str]]:
    """Every value of every DATETIME column, as stored: ``table.column`` → texts."""
    out: dict[str, list[str]] = {}
    with closing(sqlite3.connect(path)) as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for t in tables:
            for _, col, kind, *_ in conn.execute(f'PRAGMA table_info("{t}")').fetchall():
                if str(kind).upper() == "DATETIME":
                    out[f"{t}.{col}"] = [
                        v
                        for (v,) in conn.execute(
                            f'SELECT "{col}" FROM "{t}" WHERE "{col}" IS NOT NULL'
                        )
                    ]
    return out


def _empty_geometries(path: Path) -> int:
    with closing(sqlite3.connect(path)) as conn:
        cols = conn.execute("SELECT table_name, column_name FROM gpkg_geometry_columns").fetchall()
        return sum(
            bool(blob[3] & 0b10000)
            for t, c in cols
            for (blob,) in conn.execute(f'SELECT "{c}" FROM "{t}" WHERE "{c}" NOT NULL')
        )


def test_pipeline_store_passes_the_validator(pipeline_store):
    # the bundled change deliveries leave every provision whole (no empty geometry)
    assert _empty_geometries(pipeline_store) == 0
    assert validate_gpkg(pipeline_store) == []


def test_a_store_holding_empty_geometries_passes_the_validator(tmp_path):
    from datetime import UTC

    import geopandas as gpd
    import shapely

    from vggeo.store import MemoryDelivery, open_store

    provisions = gpd.GeoDataFrame(
        {
            "provision_id": ["a1", "b2"],
            "provision_type": ["plan", "plan"],
            "status": ["gällande"] * 2,
        },
        geometry=[
            shapely.MultiPolygon(),
            shapely.MultiPolygon([shapely.box(0, 6e6, 10, 6e6 + 10)]),
        ],
        crs=3006,
    )
    delivery = MemoryDelivery(
        "bestammelse",
        "e1",
        "base",
        datetime(2026, 1, 1, tzinfo=UTC),
        {"markreglerandebestammelse": {"provisions": provisions}},
    )
    path = tmp_path / "store.gpkg"
    with open_store(path, create=True) as store:
        store.apply(delivery)
    assert _empty_geometries(path) == 1  # the known validator bug is really exercised
    assert validate_gpkg(path) == []


def test_store_and_ledger_datetimes_have_the_standard_form(pipeline_store):
    values = _datetime_values(pipeline_store)
    assert {
        "vggeo_ledger.produced_at",
        "vggeo_ledger.applied_at",
        "provisions.last_changed",
    } <= set(values)
    for column, texts in values.items():
        bad = [t for t in texts if not DATETIME.fullmatch(t)]
        assert not bad, f"{column}: {bad[:3]}"
    assert len(values["vggeo_ledger.applied_at"]) >= 6


def test_qgis_export_passes_the_validator(qgis_export):
    assert validate_gpkg(qgis_export) == []


def test_qgis_export_datetimes_keep_their_day(qgis_export, pipeline_store):
    """``1949-02-24`` is exported as ``1949-02-24T00:00:00.000Z``: the same instant, in form."""
    values = _datetime_values(qgis_export)
    assert values["provisions.last_changed"] and values["residences.updated_at"]
    for column, texts in values.items():
        bad = [t for t in texts if not DATETIME.fullmatch(t)]
        assert not bad, f"{column}: {bad[:3]}"
    with closing(sqlite3.connect(pipeline_store)) as conn:
        stored = dict(conn.execute("SELECT provision_id, last_changed FROM provisions"))
    with closing(sqlite3.connect(qgis_export)) as conn:
        exported = dict(conn.execute("SELECT provision_id, last_changed FROM provisions"))
    assert exported == stored


def test_style_names_fit_their_declared_width(qgis_export):
    with closing(sqlite3.connect(qgis_export)) as conn:
        ddl = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'layer_styles'").fetchone()[
            0
        ]
        width = int(re.search(r'"styleName" TEXT\((\d+)\)', ddl).group(1))
        rows = conn.execute("SELECT f_table_name, styleName FROM layer_styles").fetchall()
    assert width == 30 and len(rows) > 10
    assert max(len(name) for _, name in rows) <= width
    assert any(len(t) > width for t, _ in rows)  # layer names longer than a style name may be


@pytest.mark.parametrize("command", ["registry load", "read", "join"])
def test_other_geopackage_writers_pass_the_validator(command, pipeline_store, tmp_path):
    out = tmp_path / "out.gpkg"
    if command == "registry load":
        _run("registry", "load", SAMPLE / "registry" / "registry.parquet", "-o", out)
    elif command == "read":
        base = sorted((SAMPLE / "deliveries" / "bestammelse").glob("000_base_*.zip"))[0]
        _run("read", base, "-o", out, "--no-progress")
        assert _datetime_values(out)["provisions.last_changed"]
    else:
        _run("join", "--store", pipeline_store, "-o", out, "--no-progress")
    assert validate_gpkg(out) == []
    for column, texts in _datetime_values(out).items():
        assert all(DATETIME.fullmatch(t) for t in texts), column
    mask = os.umask(0o022)
    os.umask(mask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~mask


def test_store_refuses_a_datetime_finer_than_a_millisecond(tmp_path):
    """The standard's form holds milliseconds: a finer value is refused, the store unchanged."""
    import geopandas as gpd
    import shapely

    from vggeo.errors import SchemaError
    from vggeo.store import MemoryDelivery, open_store

    path = tmp_path / "s.gpkg"
    gdf = gpd.GeoDataFrame(
        {"provision_id": ["a"], "last_changed": pd.to_datetime(["2024-05-06T07:08:09.123456"])},
        geometry=[shapely.box(6e5, 6.6e6, 6.1e5, 6.61e6)],
        crs=3006,
    )
    with open_store(path, create=True) as store:
        before = store.counts()
        with pytest.raises(SchemaError, match="milliseconds"):
            store.apply(
                MemoryDelivery(
                    "bestammelse",
                    "e",
                    "base",
                    datetime(2025, 1, 1),
                    {"markreglerandebestammelse": {"provisions": gdf}},
                )
            )
        assert store.counts() == before
