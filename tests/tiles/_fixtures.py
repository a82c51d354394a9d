"""Session fixtures shared by the tile and server tests (imported by both conftests)."""

from __future__ import annotations

import pytest
from tiles._store import make_store

from vggeo.tiles import open_source


@pytest.fixture(scope="session")
def store(tmp_path_factory):
    """(path, residences, provisions) of a 4 000-home store."""
    return make_store(tmp_path_factory.mktemp("store") / "store.gpkg")


@pytest.fixture(scope="session")
def source(store):
    return open_source(store[0])
