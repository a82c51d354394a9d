from __future__ import annotations

import pytest
from tiles._fixtures import source, store  # noqa: F401 - pytest finds fixtures by name


@pytest.fixture(scope="session")
def app(store):  # noqa: F811 - the fixture imported above
    from server import Settings, create_app

    return create_app(Settings(_env_file=None, store=str(store[0]), reload_interval=0))


@pytest.fixture(scope="session")
def client(app):
    from fastapi.testclient import TestClient

    with TestClient(app) as c:
        yield c
