"""``vggeo.tiles.export``: what ``vggeo tiles export [--refresh]`` does, from Python."""

from __future__ import annotations

import pytest

from vggeo.errors import InputError
from vggeo.store import open_store
from vggeo.tiles.export import ArchiveState, archive_state, export_store_archive
from vggeo.tiles.sample import generate


def test_refresh_leaves_a_current_archive(tmp_path):
    homes, _ = generate(600, seed=5, n_towns=2)
    store, out = tmp_path / "s.gpkg", tmp_path / "t.pmtiles"
    with open_store(store, create=True) as s:
        s.load_residences(homes)
        version = s.data_version
    assert archive_state(out) is None
    first = export_store_archive(store, out, maxzoom=6, progress=False)
    assert first.written and first.tiles > 0
    assert archive_state(out) == first.state == ArchiveState(version, "composite", 0, 6)
    stamp = out.stat().st_mtime_ns
    again = export_store_archive(store, out, maxzoom=6, refresh=True, progress=False)
    assert not again.written and again.tiles == 0 and out.stat().st_mtime_ns == stamp
    deeper = export_store_archive(store, out, maxzoom=7, refresh=True, progress=False)
    assert deeper.written and archive_state(out) == ArchiveState(version, "composite", 0, 7)
    with pytest.raises(InputError, match="minzoom"):
        export_store_archive(store, out, minzoom=5, maxzoom=4)
    (tmp_path / "not.pmtiles").write_bytes(b"nothing")
    assert archive_state(tmp_path / "not.pmtiles") is None
