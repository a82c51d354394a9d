"""A changed store (a delivery applied) is picked up: new data version, no stale cached tile."""

import time

import mapbox_vector_tile
from fastapi.testclient import TestClient
from tiles._store import make_store

from vggeo_server import Settings, create_app


def _count(client, url):
    r = client.get(url)
    if r.status_code == 204:
        return 0
    return sum(
        f["properties"].get("point_count", 1)
        for f in mapbox_vector_tile.decode(r.content)["residences"]["features"]
    )


def test_store_change_invalidates_cache(tmp_path):
    path, residences, _ = make_store(tmp_path / "s.gpkg", 1500, seed=1, n_towns=5)
    app = create_app(Settings(_env_file=None, store=str(path), reload_interval=0.2))
    with TestClient(app) as c:
        v1 = c.get("/healthz").json()["data_version"]
        assert _count(c, "/tiles/residences/0/0/0.mvt") == 1500
        assert _count(c, "/tiles/residences/0/0/0.mvt") == 1500  # cached
        make_store(tmp_path / "s.gpkg", 900, seed=2, n_towns=5)
        deadline = time.monotonic() + 10
        while c.get("/healthz").json()["data_version"] == v1:
            assert time.monotonic() < deadline, "store change not noticed"
            time.sleep(0.1)
        assert _count(c, "/tiles/residences/0/0/0.mvt") == 900
