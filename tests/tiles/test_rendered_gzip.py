"""Tiles rendered on request are gzipped fast when small and tightly when large."""

from __future__ import annotations

import gzip
import zlib

import pytest
from tests_support import busy_tile

from vggeo.tiles import service as service_module
from vggeo.tiles.service import TileService


@pytest.fixture()
def service(source):
    return TileService(lambda: source, cache_bytes=0)


def test_small_tiles_are_gzipped_fast_as_small_as_zlibs_fastest(service, source):
    x, y = busy_tile(source, 15)
    tile = service.get("residences", 15, x, y)
    mvt = source.tile("residences", 15, x, y)
    assert len(tile.body) < service_module.RECOMPRESS_ABOVE
    assert zlib.decompress(tile.body, 31) == mvt  # zlib reads the gzip member
    assert tile.body[:4] == b"\x1f\x8b\x08\x00" and tile.body[4:8] == b"\0\0\0\0"  # no mtime
    assert len(tile.body) <= 1.05 * len(gzip.compress(mvt, compresslevel=1, mtime=0))
    # deterministic: every replica sends the same bytes under the same ETag
    again = TileService(lambda: source, cache_bytes=0).get("residences", 15, x, y)
    assert (again.body, again.etag) == (tile.body, tile.etag)


def test_large_tiles_are_gzipped_again_at_level_6(service, source, monkeypatch):
    monkeypatch.setattr(service_module, "RECOMPRESS_ABOVE", 10)
    x, y = busy_tile(source, 15)
    tile = service.get("residences", 15, x, y)
    mvt = source.tile("residences", 15, x, y)
    assert tile.body == gzip.compress(mvt, compresslevel=6, mtime=0)
    assert zlib.decompress(tile.body, 31) == mvt


def test_an_empty_tile_stays_empty(service):
    assert service.get("residences", 12, 0, 0).empty
