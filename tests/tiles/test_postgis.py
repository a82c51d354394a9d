"""The PostGIS backend (ST_AsMVT) yields the same tiles as the embedded backend."""

import mapbox_vector_tile
import numpy as np
import pytest

from vggeo.tiles import open_source
from vggeo.tiles.backends.memory import MemorySource
from vggeo.tiles.index import DEPTH, demorton
from vggeo.tiles.layers import Filters

pytestmark = pytest.mark.postgis


@pytest.fixture(scope="module")
def pg_source(postgis_url, store):
    from vggeo.tiles.backends.postgis import write_tables

    write_tables(postgis_url, store[1], store[2])
    src = open_source(postgis_url, pool_size=4)
    yield src
    src.close()


def _decode(data):
    return {
        name: {f["id"]: f for f in layer["features"]}
        for name, layer in (mapbox_vector_tile.decode(data).items() if data else [])
    }


def _tiles(source: MemorySource, z: int, k: int, grid="WebMercatorQuad"):
    idx = source.data.points(grid)
    depth = z + idx.grid.root_depth
    codes, counts = np.unique(idx.codes >> np.uint64(2 * (DEPTH - depth)), return_counts=True)
    col, row = demorton(codes[np.argsort(-counts)[:k]])
    return list(zip(col.tolist(), row.tolist(), strict=True))


def _assert_same(a: bytes, b: bytes, what: str, *, polygons_subset=False):
    da, db = _decode(a), _decode(b)
    assert set(da) == set(db), what
    for name in da:
        fa, fb = da[name], db[name]
        if name == "residences":
            assert set(fa) == set(fb), f"{what}: residence/cluster ids differ"
            for fid, f in fa.items():
                assert f["properties"] == fb[fid]["properties"], f"{what}: {fid}"
                (ax, ay), (bx, by) = (
                    f["geometry"]["coordinates"],
                    fb[fid]["geometry"]["coordinates"],
                )
                assert abs(ax - bx) <= 1 and abs(ay - by) <= 1, f"{what}: {fid} moved"
        else:
            # Both drop polygons that collapse when rounded; the rest must agree.
            common = set(fa) & set(fb)
            assert len(common) >= 0.9 * max(len(fa), len(fb)), f"{what}: regulation ids differ"
            for fid in common:
                assert fa[fid]["properties"] == fb[fid]["properties"], f"{what}: {fid}"


@pytest.mark.parametrize("z", [3, 8, 12, 14, 16])
def test_same_tiles_as_embedded(pg_source, source, z):
    for x, y in _tiles(source, z, 3):
        _assert_same(
            source.tile("composite", z, x, y), pg_source.tile("composite", z, x, y), f"{z}/{x}/{y}"
        )


def test_same_filtered_and_sweref_tiles(pg_source, source):
    f = Filters.parse(
        {"home_type": "villa,lägenhet", "construction_year_min": "1960", "status": "gällande"},
        allowed=source.allowed_values(),
    )
    for z in (6, 11, 15):
        for x, y in _tiles(source, z, 2):
            _assert_same(
                source.tile("composite", z, x, y, filters=f),
                pg_source.tile("composite", z, x, y, filters=f),
                f"filtered {z}/{x}/{y}",
            )
    for z in (2, 7, 12):
        for x, y in _tiles(source, z, 2, grid="SWEREF99TM"):
            _assert_same(
                source.tile("composite", z, x, y, grid="SWEREF99TM"),
                pg_source.tile("composite", z, x, y, grid="SWEREF99TM"),
                f"3006 {z}/{x}/{y}",
            )


def test_overflow_clustering_matches(pg_source, source, store, postgis_url):
    from vggeo.tiles.cluster import ClusterOptions

    opt = ClusterOptions(max_points=40)
    emb = MemorySource(source.data, options=opt)
    pg = open_source(postgis_url, options=opt, pool_size=2)
    try:
        for x, y in _tiles(source, 15, 2):
            a = emb.tile("residences", 15, x, y)
            assert any(f["properties"].get("cluster") for f in _decode(a)["residences"].values())
            _assert_same(a, pg.tile("residences", 15, x, y), f"overflow 15/{x}/{y}")
    finally:
        pg.close()


def test_server_on_postgis_serves_the_same_tiles(pg_source, postgis_url, source):
    from fastapi.testclient import TestClient

    from vggeo_server import Settings, create_app

    app = create_app(Settings(_env_file=None, store=postgis_url, reload_interval=0, pool_size=2))
    with TestClient(app) as c:
        assert c.get("/healthz").json()["backend"] == "postgis"
        assert "villa" in c.get("/layers").json()["layers"][0]["filters"]["home_type"]
        for z, (x, y) in [(5, _tiles(source, 5, 1)[0]), (15, _tiles(source, 15, 1)[0])]:
            r = c.get(f"/tiles/composite/{z}/{x}/{y}.mvt")
            assert r.status_code == 200
            _assert_same(source.tile("composite", z, x, y), r.content, f"http {z}/{x}/{y}")
        assert c.get("/tiles/residences/12/0/0.mvt").status_code == 204


def test_no_postgis_tile_holds_an_empty_layer(pg_source, source):
    """ST_AsMVT over no rows gives no layer; a layer without features never reaches a client."""
    from vggeo.tiles.layers import PROVISION_TYPES, get_layer
    from vggeo.tiles.pmtiles import tiles_to_render

    n = 0
    for z in (4, 6, 8):
        cols, rows = tiles_to_render(source, get_layer("regulations"), z)
        for x, y in list(zip(cols.tolist(), rows.tolist(), strict=True))[:40]:
            for lid in ("composite", *(f"regulations_{t}" for t in PROVISION_TYPES)):
                for name, layer in _decode(pg_source.tile(lid, z, x, y)).items():
                    assert layer, f"{lid}/{z}/{x}/{y}: layer {name!r} holds no feature"
                    n += 1
    assert n > 50
