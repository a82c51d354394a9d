"""``vggeo tiles export`` writes archives that serve the same tiles; GDAL reads the MBTiles."""

import gzip

import mapbox_vector_tile
import pytest
from click.testing import CliRunner
from system import gdal_json

from vggeo.cli import cli
from vggeo.tiles.pmtiles import ArchiveSource, export_archive


@pytest.fixture(scope="module")
def archives(tmp_path_factory, store):
    d = tmp_path_factory.mktemp("archives")
    runner = CliRunner()
    out = {}
    for ext in ("pmtiles", "mbtiles"):
        path = d / f"tiles.{ext}"
        r = runner.invoke(cli, ["tiles", "export", "--store", str(store[0]), "-o", str(path),
                                "--minzoom", "0", "--maxzoom", "11", "--no-progress"])
        assert r.exit_code == 0, r.output
        assert "tiles" in r.stdout
        out[ext] = path
    return out


@pytest.mark.parametrize("ext", ["pmtiles", "mbtiles"])
def test_archive_serves_the_same_tiles(archives, source, ext):
    arch = ArchiveSource(archives[ext])
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
    out = gdal_json(r"""
import json, sys
from osgeo import gdal
gdal.UseExceptions()
ds = gdal.OpenEx(sys.argv[1], open_options=["ZOOM_LEVEL=6"])
lyr = ds.GetLayerByName("residences")
total = sum((f.GetField("point_count") or 1) for f in lyr)
print(json.dumps({"total": total, "layers": [ds.GetLayer(i).GetName() for i in range(ds.GetLayerCount())]}))
""", str(archives["mbtiles"]))
    assert out["total"] == len(store[1])
    assert {"residences", "regulations"} <= set(out["layers"])


def test_export_refuses_overwrite_and_bad_input(tmp_path, store, archives):
    runner = CliRunner()
    r = runner.invoke(cli, ["tiles", "export", "--store", str(store[0]), "-o",
                            str(archives["pmtiles"]), "--no-progress"])
    assert r.exit_code == 2 and "--overwrite" in r.output
    r = runner.invoke(cli, ["tiles", "export", "--store", str(tmp_path / "missing.gpkg"), "-o",
                            str(tmp_path / "x.pmtiles")])
    assert r.exit_code == 2 and "not found" in r.output
    r = runner.invoke(cli, ["tiles", "export", "--store", str(store[0]), "-o",
                            str(tmp_path / "x.zip")])
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
    arch = ArchiveSource(archives["pmtiles"])
    try:
        assert len(arch._ids) == arch.header["tile_entries_count"]
        assert (arch._ids[1:] > arch._ids[:-1]).all()
        body = arch.compressed_tile("composite", 0, 0, 0).body
        assert mapbox_vector_tile.decode(gzip.decompress(body))
    finally:
        arch.close()
