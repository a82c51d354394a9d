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


@pytest.fixture(scope="session")
def app(store):
    from server import Settings, create_app

    return create_app(Settings(_env_file=None, store=str(store[0]), reload_interval=0))


@pytest.fixture(scope="session")
def client(app):
    from fastapi.testclient import TestClient

    with TestClient(app) as c:
        yield c
