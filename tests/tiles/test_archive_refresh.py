"""``vggeo tiles export --refresh``: an archive brought up to date after a delivery."""

from __future__ import annotations

import gzip

import mapbox_vector_tile
from click.testing import CliRunner

from vggeo.cli import cli
from vggeo.store import open_store
from vggeo.tiles import open_source
from vggeo.tiles.sample import generate


def _export(store, out, *extra):
    r = CliRunner().invoke(cli, ["tiles", "export", "--store", str(store), "-o", str(out),
                                 "--maxzoom", "8", "--no-progress", *extra])  # fmt: skip
    assert r.exit_code == 0, r.output
    return r.output


def _archive(path):
    a = open_source(path)
    try:
        return a.metadata["vggeo:data_version"], a.compressed_tile(a.layer, 0, 0, 0).body
    finally:
        a.close()


def test_refresh_rewrites_only_after_the_store_changed(tmp_path):
    homes, _ = generate(1500, seed=3, n_towns=4)
    store, out = tmp_path / "s.gpkg", tmp_path / "t.pmtiles"
    with open_store(store, create=True) as s:
        s.load_residences(homes)
        first = s.data_version
    _export(store, out)
    assert _archive(out)[0] == first
    stamp = out.stat().st_mtime_ns
    assert "up to date" in _export(store, out, "--refresh")
    assert out.stat().st_mtime_ns == stamp

    with open_store(store) as s:
        s.load_residences(homes.head(700))  # a registry update: fewer homes
        second = s.data_version
    assert "up to date" not in _export(store, out, "--refresh")
    version, z0 = _archive(out)
    assert version == second != first
    feats = mapbox_vector_tile.decode(gzip.decompress(z0))["residences"]["features"]
    assert sum(f["properties"].get("point_count", 1) for f in feats) == 700


def test_refresh_with_other_zooms_rewrites(tmp_path):
    homes, _ = generate(300, seed=4, n_towns=2)
    store, out = tmp_path / "s.gpkg", tmp_path / "t.pmtiles"
    with open_store(store, create=True) as s:
        s.load_residences(homes)
    _export(store, out)
    assert "up to date" not in _export(store, out, "--refresh", "--minzoom", "2")
