from __future__ import annotations

import pytest
from _auth_fixtures import api_keys, jwks_file, residence_tiles, secured, signing_keys  # noqa: F401
from tiles._fixtures import source, store  # noqa: F401 - pytest finds fixtures by name


@pytest.fixture(scope="session")
def app(store):  # noqa: F811 - the fixture imported above
    from vggeo_server import Settings, create_app

    return create_app(Settings(_env_file=None, store=str(store[0]), reload_interval=0))


@pytest.fixture(scope="session")
def client(app):
    from fastapi.testclient import TestClient

    with TestClient(app) as c:
        yield c


@pytest.fixture(scope="session")
def vg_store(tmp_path_factory):
    """(path, residences, provisions) of a real vggeo GeoPackage store (features are served)."""
    from vgstore import make_vggeo_store

    return make_vggeo_store(tmp_path_factory.mktemp("vgstore") / "store.gpkg")


@pytest.fixture(scope="session")
def ogc(vg_store):
    """A TestClient of the app over the vggeo store, with a configured public base URL."""
    from fastapi.testclient import TestClient

    from vggeo_server import Settings, create_app

    app = create_app(
        Settings(
            _env_file=None,
            store=str(vg_store[0]),
            reload_interval=0,
            base_url="https://maps.example/vggeo",
        )
    )
    with TestClient(app) as c:
        yield c
