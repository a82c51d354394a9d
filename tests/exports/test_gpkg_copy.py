"""The SQL copy of a GeoPackage store (``vggeo.exports.gpkg_copy``) writes the frame route's file.

Each store is exported twice, by the SQL copy (the default for a GeoPackage store in EPSG:3006)
and by the frame route (the copy switched off); the two files must hold the same rows with the
same values and SQLite storage classes, the same schema, metadata and R-tree entries. The files
are read back by SQLite, GDAL (pyogrio), geopandas, GDAL's validator and QGIS, never by vggeo.
"""

from __future__ import annotations

import json
import signal
import sqlite3
import struct
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyogrio
import pytest
import shapely
from exports import frames
from exports.frames import write_store
from exports.test_gpkg import PROBE
from exports.test_gpkg_stream import _same_file, export_waiting
from system import run_system_python

from vggeo.exports import export_store_gpkg, gpkg_copy
from vggeo.exports import gpkg as gpkg_mod
from vggeo.lm import open_delivery, read_inskrivning
from vggeo.sample.delivery import generate_deliveries
from vggeo.sample.registry import generate_registry
from vggeo.store import open_store
from vggeo.store.gpkg import register_functions, to_gpkg_blobs

#: Tables whose whole content is compared (timestamps of gpkg_contents and the styles aside).
_TIMESTAMPED = {"gpkg_contents", "layer_styles", "qgis_projects", "sqlite_sequence"}


def _export(store: Path, out: Path, monkeypatch, *, sql: bool) -> list[str]:
    """Export; return the layers that went through the frame route."""
    streamed: list[str] = []
    stream = gpkg_mod._stream_layer

    def spy(path, plan, *a, **k):
        streamed.append(plan.name)
        return stream(path, plan, *a, **k)

    with monkeypatch.context() as m:
        m.setattr(gpkg_mod, "_stream_layer", spy)
        if not sql:
            m.setattr(gpkg_mod, "_copy_layer", lambda *a, **k: None)
        export_store_gpkg(store, out)
    return streamed


def _same_rows(a: Path, b: Path) -> None:
    """Every table: the same rows, values and storage classes (EXCEPT both ways)."""
    with sqlite3.connect(a) as conn:
        conn.execute("ATTACH DATABASE ? AS b", (str(b),))
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'rtree_%'"
            )
        ]
        other = {r[0] for r in conn.execute("SELECT name FROM b.sqlite_master")}
        for t in tables:
            assert t in other, t
            if t in _TIMESTAMPED:
                continue
            for x, y in (("main", "b"), ("b", "main")):
                extra = conn.execute(
                    f'SELECT count(*) FROM (SELECT * FROM {x}."{t}" EXCEPT SELECT * FROM {y}."{t}")'
                ).fetchone()[0]
                assert extra == 0, (t, x)
            types = f'SELECT {{}} FROM {{}}."{t}" ORDER BY rowid'
            cols = ", ".join(
                f'typeof("{c[1]}")' for c in conn.execute(f'PRAGMA main.table_info("{t}")')
            )
            assert (
                conn.execute(types.format(cols, "main")).fetchall()
                == conn.execute(types.format(cols, "b")).fetchall()
            ), t
        for (r,) in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'rtree_%' "
            "AND sql LIKE 'CREATE VIRTUAL TABLE%'"
        ).fetchall():
            assert conn.execute(f"SELECT rtreecheck('main', '{r}')").fetchone()[0] == "ok"
            assert conn.execute(f"SELECT rtreecheck('b', '{r}')").fetchone()[0] == "ok"


def _same_for_geopandas(a: Path, b: Path) -> None:
    for name, _ in pyogrio.list_layers(a):
        if name == "layer_styles":  # its update_time is the time of writing
            continue
        pd.testing.assert_frame_equal(gpd.read_file(a, layer=name), gpd.read_file(b, layer=name))


def _both(store: Path, tmp_path: Path, monkeypatch) -> tuple[Path, Path, list[str]]:
    sql, frame = tmp_path / "sql.gpkg", tmp_path / "frame.gpkg"
    streamed = _export(store, sql, monkeypatch, sql=True)
    _export(store, frame, monkeypatch, sql=False)
    _same_file(sql, frame)
    _same_rows(sql, frame)
    _same_for_geopandas(sql, frame)
    return sql, frame, streamed


@pytest.fixture(scope="module")
def copied(tmp_path_factory, store_gpkg) -> tuple[Path, Path, list[str]]:
    with pytest.MonkeyPatch.context() as m:
        return _both(store_gpkg, tmp_path_factory.mktemp("copy"), m)


def test_the_copy_writes_the_frame_routes_file(copied):
    _, _, streamed = copied
    assert streamed == []  # every spatial layer was copied in SQL


@pytest.mark.gdal
def test_gdal_validator_accepts_the_copy(copied):
    r = run_system_python(
        "import sys; from osgeo_utils.samples import validate_gpkg as v; "
        "sys.exit(v.main(['validate_gpkg.py', sys.argv[1]]))",
        str(copied[0]),
    )
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.qgis
def test_qgis_sees_the_same_layers_in_both(copied):
    views = []
    for path in copied[:2]:
        r = run_system_python(
            PROBE.read_text(), str(path), module="qgis.core", packages="python3-qgis"
        )
        assert r.returncode == 0, r.stderr
        views.append(json.loads(r.stdout[r.stdout.index("{") :]))
    assert views[0]["layers"] == views[1]["layers"]


def test_fids_with_gaps_and_fractional_coordinates(tmp_path, monkeypatch):
    """Deleted rows leave gaps in the store's fids: the copy renumbers them 1…n, as GDAL does,
    and moves the R-tree entries with them; the extent is the geometries' own, not the
    R-tree's rounded one."""
    res = frames.residences(2000, seed=5)
    res.geometry = shapely.transform(res.geometry.values, lambda xy: xy + 0.123456)
    prov = frames.provisions(60, seed=6)
    store = write_store(tmp_path / "s.gpkg", {"residences": res, "provisions": prov})
    with sqlite3.connect(store) as conn:
        conn.execute("DELETE FROM residences WHERE fid % 7 = 0 OR fid < 4")
        conn.execute("DELETE FROM provisions WHERE fid % 5 = 0")
    sql, _, streamed = _both(store, tmp_path, monkeypatch)
    assert streamed == []
    info = pyogrio.read_info(sql, layer="residences")
    kept = res.geometry.values[[i for i in range(len(res)) if (i + 1) % 7 and i + 1 >= 4]]
    assert np.allclose(info["total_bounds"], shapely.total_bounds(kept), rtol=0, atol=0)
    with sqlite3.connect(sql) as conn:
        fids = [r[0] for r in conn.execute("SELECT fid FROM residences ORDER BY fid")]
    assert fids == list(range(1, len(fids) + 1))


def test_a_geometry_the_copy_does_not_know_goes_the_frame_route(tmp_path, monkeypatch):
    """A single polygon in the multipolygon layer (the frame route promotes it): streamed."""
    prov = frames.provisions(40, seed=7)
    res = frames.residences(100, seed=8)
    store = write_store(tmp_path / "s.gpkg", {"residences": res, "provisions": prov})
    polygon = shapely.box(500000, 6500000, 500100, 6500100)
    with sqlite3.connect(store) as conn:
        register_functions(conn)  # the store's R-tree triggers call ST_IsEmpty …
        conn.execute("UPDATE provisions SET geom = ? WHERE fid = 3", to_gpkg_blobs([polygon]))
    _, _, streamed = _both(store, tmp_path, monkeypatch)
    assert "provisions" in streamed


def test_columns_outside_the_proven_list_are_refused():
    schema = pa.schema([pa.field("a", pa.float32())])
    assert gpkg_copy.column_expressions(schema, {"a": "float"}, {}, None) is None
    schema = pa.schema([pa.field("a", pa.list_(pa.string()))])
    assert gpkg_copy.column_expressions(schema, {"a": "json"}, {}, None) is None
    schema = pa.schema([pa.field("a", pa.int64())])
    assert gpkg_copy.column_expressions(schema, {"a": "int"}, {}, None) == ['"a"']


_WAIT_IN_THE_COPY = """
import os, pathlib, time
import vggeo.exports.gpkg_copy as gc
def waiting():
    pathlib.Path(os.environ["MARKER"]).touch()
    time.sleep(120)
gc._no_op = waiting
gc.PROGRESS_EVERY = 100  # the test store is small: wait in the first statement
"""


def test_ctrl_c_stops_the_copy_at_once(tmp_path, store_gpkg):
    """SIGINT while SQLite copies: exit 130 within seconds, no file, no temporary file."""
    proc, work = export_waiting(tmp_path, store_gpkg, _WAIT_IN_THE_COPY)
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert time.monotonic() - sent < 30  # not the 120 s the statement would have taken
    assert "Traceback" not in err
    assert list(work.iterdir()) == []


def test_every_registry_field_through_the_copy(tmp_path, monkeypatch):
    """The generator's registry (JSON house-number lists, integer code categories, nullable
    integers, datetimes, booleans): copied, not streamed, into the frame route's file."""
    reg = generate_registry(400, seed=3)
    prov = frames.provisions(20, seed=9)
    store = write_store(tmp_path / "s.gpkg", {"residences": reg, "provisions": prov})
    sql, _, streamed = _both(store, tmp_path, monkeypatch)
    assert streamed == []
    with sqlite3.connect(sql) as conn:
        numbers = [r[0] for r in conn.execute("SELECT number FROM residences")]
    assert any(n is not None for n in numbers)
    assert all(n is None or json.loads(n) == json.loads(n) for n in numbers)
    assert all(n is None or (n.startswith("[") and ", " in n or "," not in n) for n in numbers)


def test_a_null_inside_a_number_list_survives_both_routes(tmp_path, monkeypatch):
    """[1, 3, None] (a house-number list with an unknown part, valid by the field list) was
    written by GDAL as an IntegerList, which holds no null: [1, 3, 0]."""
    reg = generate_registry(50, seed=4)
    numbers = reg["number"].tolist()
    numbers[:2] = [[1, 3, None], []]
    reg["number"] = pd.Series(
        pd.arrays.ArrowExtensionArray(pa.array(numbers, reg["number"].dtype.pyarrow_dtype)),
        index=reg.index,
    )
    store = write_store(
        tmp_path / "s.gpkg", {"residences": reg, "provisions": frames.provisions(5)}
    )
    sql, frame, streamed = _both(store, tmp_path, monkeypatch)
    assert streamed == []
    for path in (sql, frame):
        back = gpd.read_file(path, layer="residences").set_index("id")["number"]
        assert list(back.loc[reg["id"].iloc[0]]) == [1, 3, None]
        assert list(back.loc[reg["id"].iloc[1]]) == []


def test_inskrivning_tables_through_the_copy_keep_the_redaction(tmp_path, monkeypatch):
    """A store with inskrivning deliveries (a base and changes: rows deleted on the way) beside
    the registry: its attribute tables copied into the frame route's file, and no personnummer
    column or value in it (the store never held them: the export adds nothing)."""
    store = write_store(
        tmp_path / "s.gpkg",
        {"residences": frames.residences(200, seed=10), "provisions": frames.provisions(10)},
    )
    paths = generate_deliveries(tmp_path / "insk", product="inskrivning", n=60, changes=2, seed=23)
    with open_store(store) as s:
        for p in paths:
            with open_delivery(p) as d:
                s.apply(d)
    sql, _, streamed = _both(store, tmp_path, monkeypatch)
    assert streamed == []
    numbers = set()
    for p in paths:
        persons = read_inskrivning(p, personal_data=True).persons
        numbers |= {str(n) for n in persons["personnummer"].dropna()}
    data = sql.read_bytes()
    assert numbers and not any(n.encode() in data for n in numbers)
    with sqlite3.connect(sql) as conn:
        layers = {r[0] for r in conn.execute("SELECT table_name FROM gpkg_contents")}
        assert {"agande", "forvarv", "persons"} <= layers
        for t in layers:
            cols = {r[1] for r in conn.execute(f'PRAGMA table_info("{t}")')}
            assert "personnummer" not in cols, t


@pytest.mark.parametrize("n", [0, 1, 50, 20_000])
def test_rtree_bounds_from_the_root_are_sqlites_min_and_max(n):
    """The root node's boxes bound the tree: the same as SQLite's own min/max over every entry,
    for an empty tree, a one-node tree and a tree several levels deep."""
    rng = np.random.default_rng(n)
    with sqlite3.connect(":memory:") as conn:
        conn.execute("CREATE VIRTUAL TABLE rtree_t_geom USING rtree(id, minx, maxx, miny, maxy)")
        x = rng.uniform(200_000, 950_000, n)
        y = rng.uniform(6_100_000, 7_700_000, n)
        w = rng.uniform(0, 500, (2, n))
        conn.executemany(
            "INSERT INTO rtree_t_geom VALUES (?, ?, ?, ?, ?)",
            zip(range(1, n + 1), x, x + w[0], y, y + w[1], strict=True),
        )
        depth = struct.unpack(
            ">H", conn.execute("SELECT data FROM rtree_t_geom_node").fetchone()[0][:2]
        )
        expected = conn.execute(
            "SELECT min(minx), min(miny), max(maxx), max(maxy) FROM rtree_t_geom"
        ).fetchone()
        got = gpkg_copy._rtree_bounds(conn, "rtree_t_geom")
    assert got == (None if n == 0 else expected)
    assert n < 20_000 or depth[0] >= 2


@pytest.mark.parametrize(
    "blob",
    [
        "point z",  # a 3-D point: GDAL writes its own envelope form
        "big endian",
        "text",
    ],
)
def test_blobs_the_survey_does_not_know(blob):
    """The survey refuses what the copy cannot spell as GDAL does, so the frame route takes it."""
    good = to_gpkg_blobs([shapely.Point(500_000, 6_500_000)])[0]
    value = {
        "point z": to_gpkg_blobs([shapely.Point(500_000, 6_500_000, 12)])[0],
        "big endian": good[:3] + bytes([good[3] & 0xFE]) + good[4:],
        "text": "POINT (1 2)",
    }[blob]
    with sqlite3.connect(":memory:") as conn:
        conn.execute("ATTACH DATABASE ':memory:' AS src")
        conn.execute("CREATE TABLE src.t (fid INTEGER PRIMARY KEY, kind TEXT, geom BLOB)")
        conn.executemany(
            "INSERT INTO src.t (kind, geom) VALUES (?, ?)",
            [("a", good), ("b", None), ("a", value)],
        )
        known, values = gpkg_copy.survey(conn, "t", "1 = 1", "Point", ['"kind"'])
        assert not known
        conn.execute("DELETE FROM src.t WHERE fid = 3")
        known, values = gpkg_copy.survey(conn, "t", "1 = 1", "Point", ['"kind"'])
        assert known and values == {("a",), ("b",)}
