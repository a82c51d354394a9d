"""Tiles rendered on request are gzipped fast when small and tightly when large."""

from __future__ import annotations

import gzip
import zlib

import pytest
from tests_support import busy_tile

from vggeo.tiles import service as service_module
from vggeo.tiles.service import TileService


def _level_of(body: bytes) -> int:
    """The deflate level class the gzip header records (XFL: 4 = fastest, 2 = best, 0 = other)."""
    return body[8]


@pytest.fixture()
def service(source):
    return TileService(lambda: source, cache_bytes=0)


def test_small_tiles_are_gzipped_at_the_fast_level(service, source):
    x, y = busy_tile(source, 15)
    tile = service.get("residences", 15, x, y)
    mvt = source.tile("residences", 15, x, y)
    assert len(tile.body) < service_module.RECOMPRESS_ABOVE
    assert gzip.decompress(tile.body) == mvt
    assert tile.body == gzip.compress(mvt, compresslevel=service_module.RENDER_GZIP_LEVEL, mtime=0)
    assert _level_of(tile.body) == 4  # zlib's "fastest" flag


def test_large_tiles_are_gzipped_again_at_level_6(service, source, monkeypatch):
    monkeypatch.setattr(service_module, "RECOMPRESS_ABOVE", 10)
    x, y = busy_tile(source, 15)
    tile = service.get("residences", 15, x, y)
    mvt = source.tile("residences", 15, x, y)
    assert tile.body == gzip.compress(mvt, compresslevel=6, mtime=0)
    assert zlib.decompress(tile.body, 31) == mvt


def test_an_empty_tile_stays_empty(service):
    assert service.get("residences", 12, 0, 0).empty
