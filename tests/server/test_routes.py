"""Routing, headers and error mapping (TestClient; the live server has its own tests)."""

import gzip

import mapbox_vector_tile
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from vggeo.tiles.index import DEPTH, demorton

MVT = "application/vnd.mapbox-vector-tile"


def _busy_tile(source, z):
    idx = source.data.points("WebMercatorQuad")
    import numpy as np

    codes, counts = np.unique(idx.codes >> np.uint64(2 * (DEPTH - z)), return_counts=True)
    col, row = demorton(codes[np.argmax(counts)])
    return int(col), int(row)


def test_tile_is_gzip_with_etag_and_304(client, source):
    x, y = _busy_tile(source, 12)
    r = client.get(f"/tiles/residences/12/{x}/{y}.mvt", headers={"Accept-Encoding": "gzip"})
    assert r.status_code == 200
    assert r.headers["content-type"] == MVT
    assert r.headers["content-encoding"] == "gzip"
    assert r.headers["cache-control"].startswith("public")
    etag = r.headers["etag"]
    assert etag.startswith('"') and etag.endswith('"')  # strong
    # httpx decodes gzip transparently; the decoded body is the MVT
    layer = mapbox_vector_tile.decode(r.content)["residences"]
    assert layer["features"]
    r2 = client.get(f"/tiles/residences/12/{x}/{y}.pbf", headers={"If-None-Match": etag})
    assert r2.status_code == 304 and r2.content == b""
    r3 = client.get(f"/tiles/residences/12/{x}/{y}.mvt", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in r3.headers and r3.content == gzip.decompress(
        client.app.state.service.get("residences", 12, x, y).body
    )


def test_empty_area_is_204(client):
    r = client.get("/tiles/residences/10/0/0.mvt")
    assert r.status_code == 204 and r.content == b""


@pytest.mark.parametrize(
    "url, status, text",
    [
        ("/tiles/nope/0/0/0.mvt", 404, "unknown layer 'nope'"),
        ("/tiles/residences/3/8/0.mvt", 400, "column (x) must be in 0…7"),
        ("/tiles/residences/3/0/-1.mvt", 400, "non-negative integer"),
        ("/tiles/residences/x/0/0.mvt", 400, "non-negative integer"),
        ("/tiles/residences/30/0/0.mvt", 400, "zoom 30 outside"),
        ("/tiles/residences/1/0/0.png", 400, "unknown tile format"),
        ("/tiles/residences/5/17/9.mvt?home_type=slott", 400, "allowed: "),
        ("/tiles/residences/5/17/9.mvt?construction_year_min=abc", 400, "one integer year"),
        (
            "/tiles/residences/5/17/9.mvt?construction_year_min=2000&construction_year_max=1990",
            400,
            "greater than",
        ),
        ("/tiles/regulations/5/17/9.mvt?home_type=villa", 400, "not accepted by this layer"),
        # a misspelt filter would give the unfiltered tile, looking filtered
        (
            "/tiles/residences/5/17/9.mvt?home-type=villa",
            400,
            "unknown query parameter 'home-type'",
        ),
        ("/tiles/residences.json?hometype=villa", 400, "unknown query parameter 'hometype'"),
        (
            "/collections/residences/tiles/WebMercatorQuad/5/9/17?status=x&typo=1",
            400,
            "unknown query parameter 'typo'",
        ),
        ("/collections/residences/tiles/EPSG4326/0/0/0", 404, "unknown tile matrix set"),
        ("/collections/residences/tiles/3006/2/20/0", 400, "outside SWEREF99TM"),
    ],
)
def test_errors_are_json_with_status(client, url, status, text):
    r = client.get(url)
    assert r.status_code == status
    assert r.headers["content-type"] == "application/json"
    assert text in r.json()["detail"]


def test_filtered_tiles_are_cached_apart(client, source):
    x, y = _busy_tile(source, 9)
    url = f"/tiles/residences/9/{x}/{y}.mvt"
    full = mapbox_vector_tile.decode(client.get(url).content)["residences"]["features"]
    villas = mapbox_vector_tile.decode(client.get(url + "?home_type=villa").content)
    villas = villas["residences"]["features"]
    n_all = sum(f["properties"].get("point_count", 1) for f in full)
    n_villa = sum(f["properties"].get("point_count", 1) for f in villas)
    assert 0 < n_villa < n_all
    assert n_villa == sum(
        f["properties"].get("count_villa", int(f["properties"].get("home_type") == "villa"))
        for f in full
    )
    again = mapbox_vector_tile.decode(client.get(url).content)["residences"]["features"]
    assert again == full


def test_tilejson_and_style(client):
    tj = client.get("/tiles/composite.json?status=gällande").json()
    assert tj["tilejson"] == "3.0.0"
    assert tj["tiles"][0].endswith("/tiles/composite/{z}/{x}/{y}.mvt?status=g%C3%A4llande")
    assert [v["id"] for v in tj["vector_layers"]] == ["residences", "regulations"]
    fields = tj["vector_layers"][0]["fields"]
    assert {"id", "home_type", "point_count", "count_villa"} <= set(fields)
    w, s, e, n = tj["bounds"]
    assert 10 < w < e < 25 and 55 < s < n < 70
    assert w <= tj["center"][0] <= e and s <= tj["center"][1] <= n
    style = client.get("/style.json").json()
    assert style["version"] == 8
    assert style["sources"]["vggeo"]["url"].endswith("/tiles/composite.json")
    assert {"residences-points", "residences-clusters", "regulations-fill"} <= {
        la["id"] for la in style["layers"]
    }
    layers = client.get("/layers").json()["layers"]
    res = next(la for la in layers if la["id"] == "residences")
    assert "villa" in res["filters"]["home_type"]


def test_ogc_paths_serve_the_sweref_grid(client, source, store):
    tms = client.get("/tileMatrixSets").json()["tileMatrixSets"]
    assert {t["id"] for t in tms} == {"WebMercatorQuad", "SWEREF99TM"}
    doc = client.get("/tileMatrixSets/3006").json()
    assert doc["tileMatrices"][0]["pointOfOrigin"] == [8500000.0, -1200000.0]
    assert doc["crs"].endswith("/EPSG/0/3006")
    e, n = store[1].geometry.x.iloc[0], store[1].geometry.y.iloc[0]
    z = 6
    size = 4096 * 256 / 2**z
    col, row = int((e + 1_200_000) // size), int((8_500_000 - n) // size)
    r = client.get(f"/collections/residences/tiles/3006/{z}/{row}/{col}")
    assert r.status_code == 200 and r.headers["content-type"] == MVT
    assert client.get(f"/collections/residences/tiles/SWEREF99TM/{z}/{col}/{row}").status_code in (
        204,
        200,
    )  # the swapped address is another tile (or empty)
    ts = client.get("/collections/composite/tiles/SWEREF99TM").json()
    assert ts["crs"].endswith("/EPSG/0/3006")


def test_cors_and_healthz(client):
    r = client.get("/healthz", headers={"Origin": "https://example.org"})
    assert r.json()["status"] == "ok" and r.headers["access-control-allow-origin"] == "*"


def test_openapi_documents_every_route(client):
    spec = client.get("/openapi.json").json()
    ops = {op["operationId"] for path in spec["paths"].values() for op in path.values()}
    assert {
        "getTile",
        "getTileJSON",
        "getCollectionTile",
        "getTileMatrixSets",
        "getStyle",
        "getLayers",
        "getHealth",
        "getLandingPage",
    } <= ops
    tile = spec["paths"]["/tiles/{layer}/{z}/{x}/{y}.{fmt}"]["get"]
    assert "204" in tile["responses"] and tile["tags"] == ["Tiles"]
    assert all(p.get("description") for p in tile["parameters"])


def test_router_mounts_on_a_bare_app(source):
    from vggeo.tiles.service import TileService
    from vggeo_server.errors import add_exception_handlers
    from vggeo_server.routes import TilesFactory

    app = FastAPI()
    add_exception_handlers(app)
    app.include_router(TilesFactory(layers=["residences"]).router)
    app.state.service = TileService(lambda: source)
    with TestClient(app) as c:
        assert c.get("/tiles/residences/0/0/0.mvt").status_code == 200
        assert c.get("/tiles/regulations/0/0/0.mvt").status_code == 404


def test_map_page_and_bundled_maplibre(client):
    page = client.get("/")
    assert page.status_code == 200 and "/static/maplibre/maplibre-gl.js" in page.text
    assert "http" not in page.text.split("<body>")[1].split("</body>")[0]  # no CDN
    js = client.get("/static/maplibre/maplibre-gl.js")
    assert js.status_code == 200 and len(js.content) > 500_000


def test_cache_hits_from_the_fast_path_equal_the_route(client, source):
    x, y = _busy_tile(source, 11)
    url = f"/tiles/composite/11/{x}/{y}.mvt"
    first = client.get(url, headers={"Accept-Encoding": "gzip", "Origin": "https://a.example"})
    again = client.get(url, headers={"Accept-Encoding": "gzip", "Origin": "https://a.example"})
    assert client.app.state.service.cached("composite", 11, x, y) is not None
    for k in (
        "content-type",
        "content-encoding",
        "etag",
        "cache-control",
        "vary",
        "access-control-allow-origin",
    ):
        assert first.headers[k] == again.headers[k], k
    assert first.content == again.content
    r304 = client.get(
        url, headers={"Accept-Encoding": "gzip", "If-None-Match": again.headers["etag"]}
    )
    assert r304.status_code == 304
    empty = "/tiles/residences/10/0/0.mvt"
    assert client.get(empty).status_code == 204 and client.get(empty).status_code == 204
