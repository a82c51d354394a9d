"""One road to the data: ``vggeo.store.open`` turns every kind of location into a source, and
``vggeo.tiles.source_for`` builds the tile backend from it, versioned by the store's own data
version."""

from __future__ import annotations

from pathlib import Path

import pytest
from tiles._store import make_store

import vggeo.store
import vggeo.tiles
from vggeo.errors import StoreError
from vggeo.store.gpkg import GeoPackageStore
from vggeo.tiles import TileSource, source_for
from vggeo.tiles.backends.archive import ArchiveSource
from vggeo.tiles.backends.memory import MemorySource
from vggeo.tiles.pmtiles import export_archive
from vggeo.tiles.sample import generate

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    return make_store(tmp_path_factory.mktemp("plain") / "plain.gpkg", 600, n_towns=4)[0]


def test_each_location_opens_as_its_kind(plain, tmp_path):
    parquet = tmp_path / "homes.parquet"
    generate(200, n_towns=3)[0].to_parquet(parquet)
    with vggeo.store.open(plain) as s:
        assert isinstance(s, vggeo.store.FileTables) and s.read_only and s.backend == "file"
        assert set(s.tables()) == {"residences", "provisions"}
        assert len(s.read_table("residences", columns=["id", "home_type"])) == 600
    with vggeo.store.open(parquet) as s:
        assert isinstance(s, vggeo.store.FileTables) and s.tables() == ["residences"]
    store = tmp_path / "store.gpkg"
    with vggeo.store.open(store, create=True) as s:
        assert isinstance(s, GeoPackageStore) and not s.read_only and s.backend == "gpkg"
    with vggeo.store.open(store) as s:
        assert isinstance(s, GeoPackageStore)
    # what ingests write to stays refused when it is not a vggeo store
    with pytest.raises(StoreError, match="not a vggeo store"):
        vggeo.store.open_store(plain)
    with pytest.raises(StoreError):
        vggeo.store.open(tmp_path / "missing.gpkg")


def test_the_backend_follows_the_store_and_its_data_version(plain, tmp_path):
    with vggeo.store.open(plain) as s, source_for(s) as src:
        assert isinstance(src, MemorySource) and isinstance(src, TileSource)
        assert src.store is s and src.version == s.data_version == src.current_version()
        body = src.tile("residences", 0, 0, 0)
        assert body
    archive = tmp_path / "t.pmtiles"
    with vggeo.tiles.open_source(plain) as src:
        export_archive(src, archive, layer="residences", minzoom=0, maxzoom=3)
    with vggeo.store.open(archive) as s, source_for(s) as arch:
        assert isinstance(s, vggeo.store.TileArchive) and isinstance(arch, ArchiveSource)
        assert arch.version == s.data_version
        with pytest.raises(StoreError):
            s.read_table("residences")
    # a vggeo store: the version is the ledger's, and a load changes it
    homes, _ = generate(300, n_towns=3)
    with vggeo.store.open(tmp_path / "v.gpkg", create=True) as s:
        s.load_residences(homes)
        src = source_for(s)
        assert src.version == s.data_version
        assert len(src.data.residences) == 300
        s.load_residences(homes.head(10))
        assert src.current_version() == s.data_version != src.version
        src.close()
    assert source_for(vggeo.store.open(tmp_path / "v.gpkg")).data.residences.shape[0] == 10


def test_no_module_outside_the_store_decides_from_the_location_string():
    """``postgresql://`` and the archive suffixes are read in :mod:`vggeo.store` only (messages
    and help texts aside)."""
    for path in [
        *(ROOT / "vggeo/tiles").rglob("*.py"),
        *(ROOT / "server").rglob("*.py"),
        ROOT / "vggeo/cli/tiles.py",
    ]:
        text = path.read_text(encoding="utf-8")
        assert 'startswith(("postgresql://"' not in text, path
        assert 'endswith((".pmtiles", ".mbtiles"))' not in text, path
