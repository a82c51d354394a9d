"""A vggeo GeoPackage store holding only some of its tables is served for what it holds, and
the server's data version is the store's own."""

from __future__ import annotations

import morecantile
import pytest
import shapely
from fastapi.testclient import TestClient
from pyproj import Transformer

from vggeo.lm import open_delivery
from vggeo.sample.delivery import generate_deliveries
from vggeo.store import open_store
from vggeo.tiles.sample import generate
from vggeo_server import Settings, create_app


@pytest.fixture(scope="module")
def provisions_only(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("subset")
    base = generate_deliveries(tmp, product="bestammelse", n=60, changes=0, seed=4)[0]
    with open_store(tmp / "p.gpkg", create=True) as s:
        s.apply(open_delivery(base))
        return tmp / "p.gpkg", s.read_table("provisions"), s.data_version


def test_provisions_only_store_serves_regulations(provisions_only):
    path, provisions, version = provisions_only
    app = create_app(Settings(_env_file=None, store=str(path), reload_interval=0))
    p = shapely.point_on_surface(provisions.geometry.iloc[0])
    lon, lat = Transformer.from_crs(3006, 4326, always_xy=True).transform(p.x, p.y)
    t = morecantile.tms.get("WebMercatorQuad").tile(lon, lat, 12)
    with TestClient(app) as c:
        assert c.get("/readyz").status_code == 200
        assert c.get("/healthz").json()["data_version"] == version
        assert c.get("/tiles/residences/0/0/0.mvt").status_code == 204
        r = c.get(f"/tiles/regulations/12/{t.x}/{t.y}.mvt")
        assert r.status_code == 200 and len(r.content) > 0


def test_registry_only_store_serves_homes(tmp_path):
    homes, _ = generate(800, seed=2, n_towns=3)
    with open_store(tmp_path / "r.gpkg", create=True) as s:
        s.load_residences(homes)
        version = s.data_version
    app = create_app(Settings(_env_file=None, store=str(tmp_path / "r.gpkg"), reload_interval=0))
    with TestClient(app) as c:
        assert c.get("/readyz").status_code == 200
        assert c.get("/healthz").json()["data_version"] == version
        assert c.get("/tiles/residences/0/0/0.mvt").status_code == 200
        assert c.get("/tiles/regulations/10/560/300.mvt").status_code == 204
