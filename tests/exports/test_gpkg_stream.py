"""The GeoPackage export streamed in batches: the same file in bounded memory, and no trace of an
interrupted run. Files are read back by GDAL (pyogrio) and SQLite, never by vggeo."""

from __future__ import annotations

import gc
import os
import signal
import sqlite3
import subprocess
import sys
import time
import weakref
from pathlib import Path

import pandas as pd
import pyogrio
import pytest
from click.testing import CliRunner

from vggeo.cli import cli
from vggeo.exports import export_store_gpkg, write_gpkg
from vggeo.exports import gpkg as gpkg_mod
from vggeo.exports.source import FrameSource


def _layers(path: Path) -> dict[str, pd.DataFrame]:
    """Every layer as GDAL reads it, with its fids, in fid order."""
    out = {}
    for name, _ in pyogrio.list_layers(path):
        frame = pyogrio.read_dataframe(path, layer=name, fid_as_index=True)
        out[name] = frame.sort_index()
    return out


def _sql(path: Path, query: str) -> list[tuple]:
    with sqlite3.connect(path) as conn:
        return conn.execute(query).fetchall()


def _same_file(a: Path, b: Path) -> None:
    """Two exports equal in everything but their time stamps."""
    la, lb = _layers(a), _layers(b)
    assert list(la) == list(lb)
    for name in la:
        if name == "layer_styles":
            cols = ["f_table_name", "f_geometry_column", "styleName", "styleQML", "styleSLD"]
            pd.testing.assert_frame_equal(la[name][cols], lb[name][cols])
        else:
            pd.testing.assert_frame_equal(la[name], lb[name], check_like=False)
    for query in (
        "SELECT table_name, data_type, identifier, description, min_x, min_y, max_x, max_y, "
        "srs_id FROM gpkg_contents ORDER BY table_name",
        "SELECT * FROM gpkg_geometry_columns ORDER BY table_name",
        "SELECT * FROM gpkg_data_columns ORDER BY table_name, column_name",
        "SELECT table_name, column_name, extension_name FROM gpkg_extensions "
        "ORDER BY table_name, column_name, extension_name",
        "SELECT * FROM gpkg_ogr_contents ORDER BY table_name",
        "SELECT * FROM rtree_residences_geom ORDER BY id",
        "SELECT * FROM rtree_provisions_geom ORDER BY id",
        "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY name",
    ):
        assert _sql(a, query) == _sql(b, query), query


@pytest.fixture(scope="module")
def one_batch(tmp_path_factory, store_gpkg) -> Path:
    out = tmp_path_factory.mktemp("one") / "one.gpkg"
    counts = export_store_gpkg(store_gpkg, out, crs="SWEREF 99 18 00", batch_size=10**9)
    assert counts["residences"] == 3000
    return out


def test_many_small_batches_give_the_file_of_one_batch(tmp_path, store_gpkg, one_batch):
    out = tmp_path / "many.gpkg"
    # 7 rows a batch: 429 batches of residences, batches cutting across provision types.
    export_store_gpkg(store_gpkg, out, crs="SWEREF 99 18 00", batch_size=7)
    _same_file(out, one_batch)


def test_frames_in_memory_stream_like_the_store(tmp_path, contract_tables, one_batch):
    out = tmp_path / "frames.gpkg"
    write_gpkg(contract_tables, out, crs="SWEREF 99 18 00", batch_size=13)
    got, want = _layers(out), _layers(one_batch)
    assert list(got) == list(want)
    keys = {"residences": "id", "provisions": "provision_id", "provisions_plan": "provision_id"}
    for name, key in keys.items():
        # The store adds the contract's empty columns and keeps its own row order: compare the
        # frame's columns, row by identity.
        g, w = got[name].set_index(key).sort_index(), want[name].set_index(key).sort_index()
        assert set(g.columns) <= set(w.columns), name
        pd.testing.assert_frame_equal(g, w[g.columns], check_dtype=False)
    for name in ("affected_properties", "decisions"):
        assert len(got[name]) == len(want[name])


def test_the_cli_streams_and_gdal_counts_every_row(tmp_path, store_gpkg, contract_tables):
    out = tmp_path / "cli.gpkg"
    r = CliRunner().invoke(
        cli,
        ["export", "gpkg", "--store", str(store_gpkg), "-o", str(out), "--no-progress"],
        catch_exceptions=False,
    )
    assert r.exit_code == 0, r.output
    info = {n: pyogrio.read_info(out, layer=n)["features"] for n, _ in pyogrio.list_layers(out)}
    prov = contract_tables["provisions"]
    assert info["residences"] == len(contract_tables["residences"])
    assert info["provisions"] == len(prov)
    for t, n in prov["provision_type"].astype(str).value_counts().items():
        assert info[f"provisions_{t}"] == n
    assert info["affected_properties"] == len(contract_tables["affected_properties"])
    # gpkg_contents' extent covers every feature (the R-tree's bounds; GDAL fills both).
    ((minx, miny, maxx, maxy),) = _sql(
        out, "SELECT min_x, min_y, max_x, max_y FROM gpkg_contents WHERE table_name = 'residences'"
    )
    ((rminx, rminy, rmaxx, rmaxy),) = _sql(
        out, "SELECT min(minx), min(miny), max(maxx), max(maxy) FROM rtree_residences_geom"
    )
    assert minx <= rminx and miny <= rminy and maxx >= rmaxx and maxy >= rmaxy


class _Watched(FrameSource):
    """A source that checks, each time it hands out a batch, which earlier batches still live."""

    def __init__(self, frame: pd.DataFrame, batch_size: int) -> None:
        super().__init__(frame, batch_size)
        self.most_alive = 0

    def batches(self, **kw):
        alive: list[weakref.ref] = []
        for batch in super().batches(**kw):
            # A copy: a slice of the frame would keep nothing alive on its own.
            batch = batch.copy()
            gc.collect()  # what only a cycle keeps would be freed anyway
            alive = [r for r in alive if r() is not None]
            self.most_alive = max(self.most_alive, len(alive))
            alive.append(weakref.ref(batch))
            yield batch


def test_the_writer_holds_at_most_one_earlier_batch(tmp_path, contract_tables):
    res = _Watched(contract_tables["residences"], batch_size=100)
    prov = _Watched(contract_tables["provisions"], batch_size=10)
    counts = write_gpkg({"residences": res, "provisions": prov}, tmp_path / "w.gpkg")
    assert counts["residences"] == 3000
    # When batch k+1 is asked for, batch k may still be in hand (it is being let go); k-1 never.
    assert res.most_alive <= 1 and prov.most_alive <= 1


def test_interrupted_mid_stream_leaves_nothing_and_a_rerun_works(
    tmp_path, store_gpkg, one_batch, monkeypatch
):
    out = tmp_path / "old.gpkg"
    out.write_bytes(b"previous export")
    convert = gpkg_mod._arrow_batch
    calls = {"n": 0}

    def ctrl_c_on_the_third_batch(*a, **k):
        calls["n"] += 1
        if calls["n"] == 3:  # GDAL is pulling the stream: the layer is half written
            raise KeyboardInterrupt
        return convert(*a, **k)

    monkeypatch.setattr(gpkg_mod, "_arrow_batch", ctrl_c_on_the_third_batch)
    r = CliRunner().invoke(
        cli,
        [
            "export",
            "gpkg",
            "--store",
            str(store_gpkg),
            "-o",
            str(out),
            "--crs",
            "SWEREF 99 18 00",
            "--overwrite",
        ],
    )
    assert r.exit_code == 130, r.output
    assert out.read_bytes() == b"previous export"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.gpkg"]
    monkeypatch.undo()
    r = CliRunner().invoke(
        cli,
        [
            "export",
            "gpkg",
            "--store",
            str(store_gpkg),
            "-o",
            str(out),
            "--crs",
            "SWEREF 99 18 00",
            "--overwrite",
            "--no-progress",
        ],
    )
    assert r.exit_code == 0, r.output
    _same_file(out, one_batch)


def test_an_error_in_a_batch_is_raised_as_itself(tmp_path, contract_tables):
    """Not GDAL's 'error while accessing batch from stream': the cause, named."""
    res = contract_tables["residences"].copy()
    res.loc[res.index[2500], "geometry"] = res.geometry.iloc[1].buffer(5)  # a polygon home
    with pytest.raises(gpkg_mod.SchemaError, match="residences holds Point geometries"):
        write_gpkg({"residences": res}, tmp_path / "x.gpkg", batch_size=1000)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("route", ["frames", "sql"])
def test_a_store_changed_during_the_export_gives_no_file(
    tmp_path, contract_tables, monkeypatch, route
):
    from exports.frames import write_store

    from vggeo.store import open_store

    store = write_store(tmp_path / "s.gpkg", {"residences": contract_tables["residences"]})
    out = tmp_path / "x.gpkg"
    # Frames: the load lands between two batches; SQL: right after the layer's copy.
    hook = "_observe" if route == "frames" else "_observe_copied"
    if route == "frames":
        monkeypatch.setattr(gpkg_mod, "_copy_layer", lambda *a, **k: None)
    observe = getattr(gpkg_mod, hook)

    def load_again_meanwhile(*a, **k):
        monkeypatch.setattr(gpkg_mod, hook, observe)
        with open_store(store) as s:  # another process loads the registry again
            s.load_residences(contract_tables["residences"], mode="upsert")
        return observe(*a, **k)

    monkeypatch.setattr(gpkg_mod, hook, load_again_meanwhile)
    with pytest.raises(gpkg_mod.StoreError, match="changed while residences was being exported"):
        export_store_gpkg(store, out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.gpkg"]


_WAIT_ON_THE_THIRD_BATCH = """
import os, pathlib, time
import vggeo.exports.gpkg as g
convert = g._arrow_batch
calls = []
def waiting(*a, **k):
    calls.append(1)
    if len(calls) == 3:  # the first layer is in the file, GDAL pulls the stream: wait here
        pathlib.Path(os.environ["MARKER"]).touch()
        time.sleep(120)
    return convert(*a, **k)
g._arrow_batch = waiting
"""


def export_waiting(
    tmp_path: Path, store: Path, hook: str, *options: str
) -> tuple[subprocess.Popen, Path]:
    """``vggeo export gpkg`` of ``store`` in a real process, ``hook`` as its ``sitecustomize``;
    returned (process, output folder) once the hook has touched ``$MARKER``, i.e. waits."""
    folder = tmp_path / "hook"
    folder.mkdir()
    (folder / "sitecustomize.py").write_text(hook)
    work = tmp_path / "work"
    work.mkdir()
    marker = tmp_path / "waiting"
    # The code under test stays importable (PYTHONPATH may name a working copy).
    path = os.pathsep.join(filter(None, [str(folder), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": path, "MARKER": str(marker)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "vggeo", "export", "gpkg", "--store", str(store)]
        + ["-o", str(work / "out.gpkg"), *options, "--no-progress"],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while not marker.exists():
        assert proc.poll() is None and time.monotonic() < deadline, "the export never waited"
        time.sleep(0.01)
    return proc, work


def test_ctrl_c_in_a_real_process(tmp_path, store_gpkg):
    """SIGINT to ``vggeo export gpkg`` while it writes: exit 130, no file, no temporary file."""
    # The frame route, whose batches GDAL pulls (the SQL copy: test_gpkg_copy).
    proc, work = export_waiting(
        tmp_path, store_gpkg, _WAIT_ON_THE_THIRD_BATCH, "--crs", "SWEREF 99 18 00"
    )
    assert any(p.name.endswith(".part.gpkg") for p in work.iterdir())  # half written
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert list(work.iterdir()) == []


def test_integer_codes_with_gaps_keep_their_text_and_label(tmp_path, contract_tables):
    """A code list held as an integer categorical with missing values: "320", not "320.0"."""
    res = contract_tables["residences"].head(200).copy()
    codes = [320, 213, None, 823] * 50
    res["type_code"] = pd.Categorical(codes)
    out = tmp_path / "codes.gpkg"
    write_gpkg({"residences": res}, out, batch_size=30)
    back = pyogrio.read_dataframe(out, layer="residences").set_index("id").loc[res["id"]]
    want = [None if c is None else str(c) for c in codes]
    assert [None if pd.isna(v) else v for v in back["type_code"]] == want
    labels = dict(zip(back["type_code"].dropna(), back["type_code_label"].dropna(), strict=True))
    assert labels == {
        "320": "rental (residences)",
        "213": "house (building value < 50000 SEK)",
        "823": "special unit",
    }
