"""``vggeo tiles export --refresh``: an archive brought up to date after a delivery."""

from __future__ import annotations

import gzip
import uuid

import mapbox_vector_tile
import pytest
from click.testing import CliRunner

from vggeo.cli import cli
from vggeo.store import open_store
from vggeo.tiles import open_source
from vggeo.tiles.sample import generate


def _export(store, out, *extra):
    r = CliRunner().invoke(
        cli,
        [
            "tiles",
            "export",
            "--store",
            str(store),
            "-o",
            str(out),
            "--maxzoom",
            "8",
            "--no-progress",
            *extra,
        ],
    )
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


@pytest.mark.postgis
def test_refresh_from_a_postgis_store_follows_its_data_version(tmp_path, postgis_url):
    """The same on PostGIS, in a schema of its own: the archive carries the store's version."""
    homes, _ = generate(1500, seed=5, n_towns=4)
    schema = "t_refresh_" + uuid.uuid4().hex[:8]
    out = tmp_path / "t.pmtiles"
    try:
        with open_store(postgis_url, create=True, schema=schema) as s:
            s.load_residences(homes)
            first = s.data_version
        _export(postgis_url, out, "--schema", schema)
        assert _archive(out)[0] == first
        assert "up to date" in _export(postgis_url, out, "--refresh", "--schema", schema)
        with open_store(postgis_url, schema=schema) as s:
            s.load_residences(homes.head(600))
            second = s.data_version
        assert "up to date" not in _export(postgis_url, out, "--refresh", "--schema", schema)
        version, z0 = _archive(out)
        assert version == second != first
        feats = mapbox_vector_tile.decode(gzip.decompress(z0))["residences"]["features"]
        assert sum(f["properties"].get("point_count", 1) for f in feats) == 600
    finally:
        import psycopg

        with psycopg.connect(postgis_url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
