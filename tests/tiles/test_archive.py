"""``vggeo tiles export`` writes archives that serve the same tiles; GDAL reads the MBTiles.

An archive says what it holds (read back with the ``pmtiles`` package's reader, not vggeo's),
serves tiles past its deepest zoom (checked against the embedded backend's own rendering at
that zoom) and holds no empty layer (decoded with mapbox-vector-tile).
"""

import gzip

import mapbox_vector_tile
import pytest
import shapely
from click.testing import CliRunner
from pmtiles.reader import MmapSource, Reader, all_tiles
from system import gdal_json

from vggeo.cli import cli
from vggeo.tiles import open_source
from vggeo.tiles.backends.archive import ArchiveSource
from vggeo.tiles.layers import PROVISION_TYPES, get_layer
from vggeo.tiles.pmtiles import export_archive, tiles_to_render


@pytest.fixture(scope="module")
def archives(tmp_path_factory, store):
    d = tmp_path_factory.mktemp("archives")
    runner = CliRunner()
    out = {}
    for ext in ("pmtiles", "mbtiles"):
        path = d / f"tiles.{ext}"
        r = runner.invoke(
            cli,
            [
                "tiles",
                "export",
                "--store",
                str(store[0]),
                "-o",
                str(path),
                "--minzoom",
                "0",
                "--maxzoom",
                "11",
                "--no-progress",
            ],
        )
        assert r.exit_code == 0, r.output
        assert "tiles" in r.stdout
        out[ext] = path
    return out


@pytest.mark.parametrize("ext", ["pmtiles", "mbtiles"])
def test_archive_serves_the_same_tiles(archives, source, ext):
    arch = open_source(archives[ext])
    try:
        from vggeo.tiles.layers import get_layer
        from vggeo.tiles.pmtiles import tiles_to_render

        n = 0
        for z in (0, 5, 9, 11):
            cols, rows = tiles_to_render(source, get_layer("composite"), z)
            for x, y in list(zip(cols.tolist(), rows.tolist(), strict=True))[:15]:
                assert arch.tile("composite", z, x, y) == source.tile("composite", z, x, y)
                # a member layer is cut out of the composite tile unchanged
                assert arch.tile("residences", z, x, y) == source.tile("residences", z, x, y)
                n += 1
        assert n > 20
        assert arch.tile("composite", 11, 0, 0) == b""
        with pytest.raises(LookupError, match="not in this archive"):
            arch.tile("regulations_plan", 5, 17, 9)
    finally:
        arch.close()


def test_gdal_reads_the_mbtiles_with_exact_counts(archives, store):
    out = gdal_json(
        r"""
import json, sys
from osgeo import gdal
gdal.UseExceptions()
ds = gdal.OpenEx(sys.argv[1], open_options=["ZOOM_LEVEL=6"])
lyr = ds.GetLayerByName("residences")
total = sum((f.GetField("point_count") or 1) for f in lyr)
print(json.dumps({"total": total, "layers": [ds.GetLayer(i).GetName() for i in range(ds.GetLayerCount())]}))
""",
        str(archives["mbtiles"]),
    )
    assert out["total"] == len(store[1])
    assert {"residences", "regulations"} <= set(out["layers"])


def test_export_refuses_overwrite_and_bad_input(tmp_path, store, archives):
    runner = CliRunner()
    r = runner.invoke(
        cli,
        [
            "tiles",
            "export",
            "--store",
            str(store[0]),
            "-o",
            str(archives["pmtiles"]),
            "--no-progress",
        ],
    )
    assert r.exit_code == 2 and "--overwrite" in r.output
    r = runner.invoke(
        cli,
        [
            "tiles",
            "export",
            "--store",
            str(tmp_path / "missing.gpkg"),
            "-o",
            str(tmp_path / "x.pmtiles"),
        ],
    )
    assert r.exit_code == 2 and "not found" in r.output
    r = runner.invoke(
        cli, ["tiles", "export", "--store", str(store[0]), "-o", str(tmp_path / "x.zip")]
    )
    assert r.exit_code == 2 and ".pmtiles or .mbtiles" in r.output
    assert not list(tmp_path.iterdir())  # nothing half-written


def test_interrupted_export_leaves_nothing(tmp_path, source, monkeypatch):
    import vggeo.tiles.pmtiles as pm

    calls = {"n": 0}
    real = pm._render_chunk

    def boom(chunk):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(chunk)

    monkeypatch.setattr(pm, "_render_chunk", boom)
    with pytest.raises(KeyboardInterrupt):
        export_archive(source, tmp_path / "out.pmtiles", maxzoom=14, progress=False, workers=1)
    assert list(tmp_path.iterdir()) == []


def test_pmtiles_directory_decoded_once(archives):
    arch = open_source(archives["pmtiles"])
    try:
        assert len(arch._file.ids) == arch._file.header["tile_entries_count"]
        assert (arch._file.ids[1:] > arch._file.ids[:-1]).all()
        body = arch.compressed_tile("composite", 0, 0, 0).body
        assert mapbox_vector_tile.decode(gzip.decompress(body))
    finally:
        arch.close()


# --- what an archive holds, read by the pmtiles package -------------------------------------------


@pytest.fixture(scope="module")
def archive14(tmp_path_factory, store):
    """The README's path: export to z14, the deepest zoom of `tiles export` by default."""
    path = tmp_path_factory.mktemp("archive14") / "sweden.pmtiles"
    r = CliRunner().invoke(
        cli,
        [
            "tiles",
            "export",
            "--store",
            str(store[0]),
            "-o",
            str(path),
            "--maxzoom",
            "14",
            "--no-progress",
        ],
    )
    assert r.exit_code == 0, r.output
    return path


def _reader(path):
    f = open(path, "rb")  # noqa: SIM115 - the module-scoped test keeps it for its lifetime
    return Reader(MmapSource(f))


def _layers(mvt: bytes) -> dict:
    return mapbox_vector_tile.decode(mvt, default_options={"y_coord_down": True}) if mvt else {}


def test_archive_source_reports_the_archives_own_zooms_layers_and_fields(archive14, source):
    rd = _reader(archive14)
    header, meta = rd.header(), rd.metadata()
    arch = open_source(archive14)
    try:
        assert (arch.minzoom, arch.maxzoom) == (header["min_zoom"], header["max_zoom"]) == (0, 14)
        held = [vl["id"] for vl in meta["vector_layers"]]
        assert sorted(held) == ["regulations", "residences"]
        assert arch.served_layers() == ["composite", *held] or set(arch.served_layers()) == {
            "composite",
            *held,
        }
        for vl in arch.vector_layers(get_layer("composite")):
            assert (
                vl["fields"]
                == next(m for m in meta["vector_layers"] if m["id"] == vl["id"])["fields"]
            )
        # What a map can filter itself, with the values the store held.
        assert arch.filter_mode == "client"
        allowed = source.allowed_values()
        assert arch.allowed_values() == {k: allowed[k] for k in ArchiveSource.CLIENT_FILTERS}
        with pytest.raises(LookupError, match="not in this archive"):
            arch.tile("regulations_plan", 5, 17, 9)
    finally:
        arch.close()


def _residence_points(layers: dict) -> dict[int, tuple[float, float]]:
    return {
        f["id"]: tuple(f["geometry"]["coordinates"])
        for f in layers.get("residences", {}).get("features", [])
    }


@pytest.mark.parametrize("z", [15, 16])
def test_tiles_past_the_deepest_zoom_are_cut_from_it(archive14, source, z):
    """z15–16 of a z14 archive hold what the store renders there (same residences within the
    rounding of z14, same regulations up to simplification) — never blank."""
    arch = open_source(archive14)
    try:
        cols, rows = tiles_to_render(source, get_layer("residences"), z)
        checked = 0
        for x, y in list(zip(cols.tolist(), rows.tolist(), strict=True))[
            :: max(1, len(cols) // 25)
        ]:
            want, got = (
                _layers(source.tile("composite", z, x, y)),
                _layers(arch.tile("composite", z, x, y)),
            )
            wp, gp = _residence_points(want), _residence_points(got)
            assert set(wp) == set(gp), f"{z}/{x}/{y}"
            step = 1 << (z - 14)  # z14 positions are multiples of this at z
            for fid, (ax, ay) in wp.items():
                bx, by = gp[fid]
                assert abs(ax - bx) <= step and abs(ay - by) <= step, (fid, z, x, y)
            for f in got.get("residences", {}).get("features", []):
                assert (
                    f["properties"]
                    == next(w for w in want["residences"]["features"] if w["id"] == f["id"])[
                        "properties"
                    ]
                )
            wr = {
                f["id"]: shapely.geometry.shape(f["geometry"])
                for f in want.get("regulations", {}).get("features", [])
            }
            gr = {
                f["id"]: shapely.geometry.shape(f["geometry"])
                for f in got.get("regulations", {}).get("features", [])
            }
            assert set(gr) <= set(wr), "an overzoomed tile invented a regulation"
            for fid, g in gr.items():
                if wr[fid].area > 4096 * 64:  # big enough for simplification not to matter
                    iou = g.intersection(wr[fid]).area / g.union(wr[fid]).area
                    assert iou > 0.9, (fid, iou)
            checked += 1
        assert checked >= 10
        # The member layers are cut from the overzoomed tile too.
        x, y = int(cols[0]), int(rows[0])
        assert set(_layers(arch.tile("residences", z, x, y))) == {"residences"}
    finally:
        arch.close()


def _assert_no_empty_layer(mvt: bytes, what: str) -> None:
    for name, layer in _layers(mvt).items():
        assert layer["features"], f"{what}: layer {name!r} holds no feature"


def test_no_archived_tile_holds_an_empty_layer(archive14):
    n = 0
    for (z, x, y), body in all_tiles(_reader(archive14).get_bytes):
        _assert_no_empty_layer(gzip.decompress(body), f"{z}/{x}/{y}")
        n += 1
    assert n > 1000


def test_no_rendered_tile_holds_an_empty_layer(source):
    """The per-type regulation layers used to keep a layer whose polygons all collapsed when
    rounded to the tile grid (e.g. regulations_plan/6/35/15 of the sample data)."""
    n = 0
    for z in range(3, 10):
        cols, rows = tiles_to_render(source, get_layer("regulations"), z)
        for x, y in zip(cols.tolist(), rows.tolist(), strict=True):
            for lid in ("composite", "regulations", *(f"regulations_{t}" for t in PROVISION_TYPES)):
                _assert_no_empty_layer(source.tile(lid, z, x, y), f"{lid}/{z}/{x}/{y}")
                n += 1
    assert n > 500
