"""Session fixtures shared by the tile and server tests (imported by both conftests)."""

from __future__ import annotations

import pytest
from tiles._store import make_store

from vggeo.tiles.embedded import EmbeddedSource


@pytest.fixture(scope="session")
def store(tmp_path_factory):
    """(path, residences, provisions) of a 4 000-home store."""
    return make_store(tmp_path_factory.mktemp("store") / "store.gpkg")


@pytest.fixture(scope="session")
def source(store):
    return EmbeddedSource.from_store(store[0])
