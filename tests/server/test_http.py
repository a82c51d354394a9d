"""HTTP done properly: HEAD, conditional requests, content codings, public URLs, status codes."""

import gzip

import pytest
from tests_support import busy_tile

from vggeo.tiles.cache import CachedTile, compress
from vggeo_server.http import choose_encoding, etag_for, none_match, tile_answer

MVT = "application/vnd.mapbox-vector-tile"


@pytest.mark.parametrize(
    "header, expected",
    [
        (None, "identity"),
        ("", "identity"),
        ("gzip", "gzip"),
        ("gzip, deflate, br", "gzip"),
        ("gzip;q=0", "identity"),
        ("GZIP;Q=0", "identity"),
        ("gzip;q=0.5, identity;q=1", "identity"),
        ("identity;q=0, gzip", "gzip"),
        ("br", "identity"),
        ("*", "gzip"),
        ("*;q=0, identity", "identity"),
        ("*;q=0", None),
        ("identity;q=0", None),
        ("gzip;q=0, identity;q=0", None),
        ("gzip;q=abc", "identity"),
        ("gzip;q=2", "identity"),
    ],
)
def test_content_coding_follows_q_values(header, expected):
    assert choose_encoding(header) == expected


@pytest.mark.parametrize(
    "header, match",
    [
        ('"abc"', True),
        ('W/"abc"', True),
        ('"x", "abc"', True),
        ('"x",W/"abc" ,"y"', True),
        ("*", True),
        ('"x", "y"', False),
        ('"abcd"', False),
        ("", False),
        (None, False),
    ],
)
def test_if_none_match_uses_weak_comparison_lists_and_star(header, match):
    assert none_match(header, '"abc"') is match


def test_identity_and_gzip_etags_differ():
    assert etag_for('"abc"', "gzip") == '"abc"'
    assert etag_for('"abc"', "identity") not in ('"abc"', 'W/"abc"')


def test_tile_encodings_have_their_own_etags(client, source):
    x, y = busy_tile(source, 12)
    url = f"/tiles/residences/12/{x}/{y}.mvt"
    gz = client.get(url, headers={"Accept-Encoding": "gzip"})
    plain = client.get(url, headers={"Accept-Encoding": "gzip;q=0"})
    assert gz.headers["content-encoding"] == "gzip" and "content-encoding" not in plain.headers
    assert all("Accept-Encoding" in r.headers["vary"] for r in (gz, plain))
    assert gz.headers["etag"] != plain.headers["etag"]
    assert gz.content == plain.content  # httpx decodes the gzip body
    # each ETag validates only its own representation
    r = client.get(
        url, headers={"Accept-Encoding": "gzip;q=0", "If-None-Match": gz.headers["etag"]}
    )
    assert r.status_code == 200
    r = client.get(
        url,
        headers={"Accept-Encoding": "identity", "If-None-Match": f'"x", W/{plain.headers["etag"]}'},
    )
    assert r.status_code == 304 and r.headers["etag"] == plain.headers["etag"]
    r = client.get(url, headers={"Accept-Encoding": "gzip", "If-None-Match": "*"})
    assert r.status_code == 304


def test_q_zero_is_respected_on_cache_hits_too(client, source):
    x, y = busy_tile(source, 11)
    url = f"/tiles/composite/11/{x}/{y}.mvt"
    client.get(url, headers={"Accept-Encoding": "gzip"})  # now cached: the fast path answers
    assert client.app.state.service.cached("composite", 11, x, y) is not None
    r = client.get(url, headers={"Accept-Encoding": "gzip;q=0, identity"})
    assert r.status_code == 200 and "content-encoding" not in r.headers
    raw = gzip.decompress(client.app.state.service.cached("composite", 11, x, y).body)
    assert r.content == raw
    r = client.get(url, headers={"Accept-Encoding": "*;q=0"})
    assert r.status_code == 406 and r.json()["type"] == "NotAcceptable"


@pytest.mark.parametrize(
    "path",
    [
        "/healthz",
        "/",
        "/?f=json",
        "/collections",
        "/conformance",
        "/tiles/residences.json",
        "/tileMatrixSets/SWEREF99TM",
        "/layers",
        "/style.json",
        "/tiles/residences/0/0/0.mvt",
        "/tiles/residences/10/0/0.mvt",
        "/tiles/nope/0/0/0.mvt",
        "/static/app.css",
    ],
)
def test_head_answers_wherever_get_does(client, path):
    get = client.get(path, headers={"Accept-Encoding": "gzip"})
    head = client.head(path, headers={"Accept-Encoding": "gzip"})
    assert head.status_code == get.status_code != 405
    assert head.content == b""
    for k in ("content-type", "etag", "content-encoding", "cache-control"):
        assert head.headers.get(k) == get.headers.get(k), k
    if "content-length" in get.headers and "content-encoding" not in get.headers:
        assert head.headers["content-length"] == get.headers["content-length"]


def test_json_documents_are_conditional(client):
    r = client.get("/collections")
    etag = r.headers["etag"]
    assert (
        client.get("/collections", headers={"If-None-Match": f'"other", {etag}'}).status_code == 304
    )
    assert client.get("/collections", headers={"If-None-Match": "*"}).status_code == 304
    assert client.get("/collections", headers={"If-None-Match": '"other"'}).status_code == 200


def test_links_never_come_from_the_host_header(client, ogc):
    evil = {"Host": "evil.example", "X-Forwarded-Host": "evil.example"}
    for c in (client, ogc):
        for path in (
            "/tiles/composite.json",
            "/style.json",
            "/collections",
            "/?f=json",
            "/collections/residences/tiles/WebMercatorQuad",
        ):
            assert "evil.example" not in c.get(path, headers=evil).text, path
    # a trailing slash is redirected by its path alone (Starlette's redirect used the Host)
    for c in (client, ogc):
        r = c.get("/collections/?f=json", headers=evil, follow_redirects=False)
        assert r.status_code == 307 and r.headers["location"] == "/collections?f=json"
        assert c.get("/collections/", headers=evil).status_code == 200  # followed
        assert c.get("/nothing/here/", follow_redirects=False).status_code == 404
    tj = ogc.get("/tiles/composite.json", headers=evil).json()
    assert tj["tiles"][0].startswith("https://maps.example/vggeo/tiles/composite/")
    assert ogc.get("/style.json").json()["sources"]["vggeo"]["url"] == (
        "https://maps.example/vggeo/tiles/composite.json"
    )


@pytest.mark.parametrize(
    "url",
    [
        "/tiles/residences/%C2%B2/0/0.mvt",
        "/tiles/residences/0/%D9%A1/0.mvt",
        "/tiles/residences/" + "9" * 5000 + "/0/0.mvt",
        "/tiles/residences/5/17/9.mvt?construction_year_min=%C2%B2",
        "/tiles/residences/5/17/9.mvt?construction_year_max=" + "1" * 5000,
        "/tiles/residences/5/17/9.mvt?construction_year_min=-" + "1" * 5000,
        "/tiles/residences/5/17/9.mvt?home_type=" + "x" * 5000,
        "/collections/residences/tiles/3006/%C2%B2/0/0",
        "/collections/residences/items?limit=" + "9" * 5000,
        "/collections/residences/items?limit=%C2%B2",
        "/collections/residences/items?offset=-1",
        "/collections/residences/items?bbox=%C2%B2,1,2,3",
        "/collections/residences/items?bbox=1,2,3",
        "/collections/residences/items?bbox=nan,1,2,3",
        "/collections/residences/items?bbox=1e999,1,2,3",
        "/collections/residences/items?bbox=20,60,10,50",
        "/collections/residences/items?bbox=0,0,1,100",
        "/collections/residences/items?crs=EPSG:99999",
        "/collections/residences/items?crs=%00",
        "/collections/residences/items?bbox-crs=http://www.opengis.net/def/crs/EPSG/0/3006&bbox=1,2,3,4,5",
        "/collections/residences/items?properties=address",
        "/collections/residences/items?construction_year_min=%C2%B2",
        "/collections/residences/items/%C2%B2",
        "/collections/residences/items/" + "1" * 5000,
        "/collections/regulations/items/'%20OR%201=1--",
        "/collections/composite/items",
        "/collections/agande/items",
    ],
)
def test_odd_input_is_a_4xx_never_a_5xx(ogc, url):
    r = ogc.get(url)
    assert 400 <= r.status_code < 500, (r.status_code, r.text[:300])
    assert r.headers["content-type"] == "application/json" and r.json()["detail"]


def test_openapi_documents_400_not_422(client):
    spec = client.get("/openapi.json").json()
    assert "HTTPValidationError" not in spec["components"]["schemas"]
    for path, ops in spec["paths"].items():
        for op in ops.values():
            assert "422" not in op["responses"], path
            if op.get("parameters"):
                assert op["responses"]["400"]["content"]["application/json"]["schema"] == {
                    "$ref": "#/components/schemas/Error"
                }, path
    # FastAPI's own validation (a non-integer limit) answers 400 with that schema too
    r = client.get("/collections/residences/items?limit=abc")
    assert r.status_code in (400, 404) and set(r.json()) == {"detail", "type"}


@pytest.mark.parametrize(
    "bad", ["ftp://x.example", "maps.example", "https://x.example/?a=1", "https://x.example/#top"]
)
def test_base_url_setting_must_be_an_http_url(bad):
    from vggeo_server.settings import Settings

    with pytest.raises(ValueError, match="base_url"):
        Settings(_env_file=None, base_url=bad)
    assert (
        Settings(_env_file=None, base_url="https://m.example/v/").base_url == "https://m.example/v"
    )


def test_default_base_url_is_the_bind_address():
    from vggeo_server.settings import bind_url

    assert bind_url("127.0.0.1", 8000) == "http://127.0.0.1:8000"
    assert bind_url("0.0.0.0", 80) == "http://localhost:80"
    assert bind_url("::1", 8000) == "http://[::1]:8000"


def test_tile_answer_is_one_rule_for_route_and_fast_path():
    tile = compress(b"\x1a\x02x\x01", version="v1")
    cc = b"public, max-age=60"
    status, headers, body = tile_answer(tile, "gzip", cc, None)
    h = dict(headers)
    assert status == 200 and body == tile.body and h[b"content-encoding"] == b"gzip"
    assert h[b"cache-control"] == cc and h[b"vary"] == b"Accept-Encoding"
    assert h[b"content-type"] == MVT.encode() and h[b"content-length"] == str(len(body)).encode()
    status, headers, body = tile_answer(tile, "identity", cc, None)
    h = dict(headers)
    assert status == 200 and body == gzip.decompress(tile.body) and b"content-encoding" not in h
    assert h[b"etag"].decode() == etag_for(tile.etag, "identity")
    status, headers, body = tile_answer(tile, "gzip", cc, f'W/{tile.etag}, "other"')
    assert status == 304 and body == b"" and b"content-length" not in dict(headers)
    assert tile_answer(CachedTile(b"", '"e"'), "gzip", cc, None)[0] == 204
