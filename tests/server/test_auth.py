"""Access control over every route that exposes data: API keys and JWTs, scopes per layer and per
field, 400/401/403 as RFC 6750 says, a tile cache that never crosses callers, nothing secret in
the logs. Tokens are signed in the tests (``_tokens``: RFC 7515 by hand, not PyJWT)."""

from __future__ import annotations

import gzip
import json
import logging
import re

import mapbox_vector_tile
import pytest
from _auth_fixtures import ORIGIN, auth_settings, make_client
from _tokens import SigningKey, claims, hs256, unsigned

LOCATION_FIELDS = {"id", "cluster", "point_count"}
RESIDENCE_ATTRIBUTES = {"home_type", "ownership_type", "construction_year", "municipality_code"}


def key(k: str) -> dict:
    return {"X-API-Key": k}


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def challenge(r) -> dict[str, str]:
    """The parameters of a ``WWW-Authenticate: Bearer …`` header."""
    value = r.headers["www-authenticate"]
    assert value.startswith("Bearer "), value
    return dict(re.findall(r'(\w+)="([^"]*)"', value))


def decode(r) -> dict:
    body = r.content
    if r.headers.get("content-encoding") == "gzip" and body[:2] == b"\x1f\x8b":
        body = gzip.decompress(body)
    return mapbox_vector_tile.decode(body) if r.status_code == 200 else {}


def server_records(caplog):
    """Log records of the server (the test client's own, httpx's, name the URLs it requests)."""
    return [r for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))]


def tile_url(layer, zxy):
    z, x, y = zxy
    return f"/tiles/{layer}/{z}/{x}/{y}.mvt"


# --- off by default ------------------------------------------------------------------------------


def test_access_control_is_off_without_configuration(ogc, residence_tiles):
    r = ogc.get(tile_url("residences", residence_tiles[15]))
    assert r.status_code == 200 and "www-authenticate" not in r.headers
    assert "residences" in {la["id"] for la in ogc.get("/layers").json()["layers"]}
    assert ogc.get("/metrics").status_code == 200


# --- who sees what -------------------------------------------------------------------------------


def test_anonymous_callers_get_the_public_scopes_only(secured, residence_tiles):
    z15 = residence_tiles[15]
    r = secured.get(tile_url("residences", z15))
    assert r.status_code == 401
    params = challenge(r)
    assert params == {"realm": "vggeo", "scope": "residences"}  # no error code: none was sent
    assert r.json()["type"] == "Unauthenticated"
    # provisions are public by default; the composite comes without residences
    assert secured.get(tile_url("regulations", z15)).status_code in (200, 204)
    composite = decode(secured.get(tile_url("composite", residence_tiles[10])))
    assert "residences" not in composite
    for path in (
        "/collections/residences",
        "/collections/residences/items",
        "/tiles/residences.json",
        "/collections/residences/tiles/WebMercatorQuad",
        "/collections/residences/items/1",
    ):
        assert secured.get(path).status_code == 401, path


def test_metadata_does_not_advertise_what_the_caller_cannot_see(secured, api_keys):
    layers = {la["id"]: la for la in secured.get("/layers").json()["layers"]}
    assert "residences" not in layers and "regulations" in layers
    assert layers["composite"]["layers"] == ["regulations"]
    assert not set(layers["composite"]["fields"]) & RESIDENCE_ATTRIBUTES
    assert "home_type" not in layers["composite"]["filters"]
    ids = {c["id"] for c in secured.get("/collections").json()["collections"]}
    assert "residences" not in ids and "regulations" in ids
    tj = secured.get("/tiles/composite.json").json()
    assert [v["id"] for v in tj["vector_layers"]] == ["regulations"]
    style = secured.get("/style.json").json()
    assert not [la for la in style["layers"] if la.get("source-layer") == "residences"]
    tileset = secured.get("/collections/composite/tiles/WebMercatorQuad").json()
    assert [la["id"] for la in tileset["layers"]] == ["regulations"]
    # with the locations scope: residences appear, without their attributes
    h = key(api_keys.locations)
    layers = {la["id"]: la for la in secured.get("/layers", headers=h).json()["layers"]}
    assert set(layers["residences"]["fields"]) <= LOCATION_FIELDS
    assert layers["residences"]["filters"] == {}
    tj = secured.get("/tiles/residences.json", headers=h).json()
    assert set(tj["vector_layers"][0]["fields"]) <= LOCATION_FIELDS
    tileset = secured.get("/collections/residences/tiles/WebMercatorQuad", headers=h).json()
    assert set(tileset["layers"][0]["propertiesSchema"]["properties"]) <= LOCATION_FIELDS
    style = secured.get("/style.json", headers=h).json()
    assert [la for la in style["layers"] if la.get("source-layer") == "residences"]
    # with attributes: everything
    full = {
        la["id"]: la for la in secured.get("/layers", headers=key(api_keys.full)).json()["layers"]
    }
    assert RESIDENCE_ATTRIBUTES <= set(full["residences"]["fields"])
    assert full["residences"]["filters"]["home_type"]


@pytest.mark.parametrize("zoom", [10, 15])
def test_residences_without_the_attributes_scope_are_locations_only(
    secured, ogc, api_keys, residence_tiles, zoom
):
    url = tile_url("residences", residence_tiles[zoom])
    full = secured.get(url, headers=key(api_keys.full))
    bare = secured.get(url, headers=key(api_keys.locations))
    assert full.status_code == bare.status_code == 200
    # the full view is exactly what the server sends without access control
    assert full.content == ogc.get(url).content
    f, b = decode(full)["residences"]["features"], decode(bare)["residences"]["features"]
    assert len(f) == len(b) > 0
    for ff, bb in zip(f, b, strict=True):
        assert ff["id"] == bb["id"] and ff["geometry"] == bb["geometry"]
        assert set(bb["properties"]) <= LOCATION_FIELDS
        assert {k: v for k, v in ff["properties"].items() if k in LOCATION_FIELDS} == bb[
            "properties"
        ]
    assert any(set(ff["properties"]) & RESIDENCE_ATTRIBUTES for ff in f)
    # nothing of the attributes is left in the tile's value table either
    raw = gzip.decompress(bare.content) if bare.content[:2] == b"\x1f\x8b" else bare.content
    for word in (b"villa", b"home_type", b"count_villa", b"construction_year"):
        assert word not in raw
    assert full.headers["etag"] != bare.headers["etag"]


def test_attribute_filters_need_the_attributes_scope(secured, api_keys, residence_tiles):
    url = tile_url("residences", residence_tiles[10]) + "?home_type=villa"
    r = secured.get(url, headers=key(api_keys.locations))
    assert r.status_code == 403
    assert challenge(r) == {
        "realm": "vggeo",
        "error": "insufficient_scope",
        "scope": "residences:attributes",
    }
    assert "home_type" in r.json()["detail"]
    # even an invalid value: its 400 would list the home types in the data
    bad = secured.get(url.replace("villa", "castle"), headers=key(api_keys.locations))
    assert bad.status_code == 403 and "villa" not in bad.text
    assert secured.get(url, headers=key(api_keys.full)).status_code == 200
    items = "/collections/residences/items?construction_year_min=1950"
    assert secured.get(items, headers=key(api_keys.locations)).status_code == 403
    assert secured.get(items, headers=key(api_keys.full)).status_code == 200


def test_features_carry_only_the_visible_properties(secured, api_keys, vg_store):
    h = key(api_keys.locations)
    page = secured.get("/collections/residences/items?limit=5", headers=h).json()
    assert page["numberReturned"] == 5
    for feat in page["features"]:
        assert feat["properties"] == {} and feat["id"] is not None and feat["geometry"]
    one = page["features"][0]["id"]
    item = secured.get(f"/collections/residences/items/{one}", headers=h).json()
    assert item["properties"] == {}
    r = secured.get("/collections/residences/items?properties=home_type", headers=h)
    assert r.status_code == 403 and challenge(r)["scope"] == "residences:attributes"
    full = secured.get("/collections/residences/items?limit=5", headers=key(api_keys.full)).json()
    assert "home_type" in full["features"][0]["properties"]
    # provisions are public: whole
    prov = secured.get("/collections/regulations/items?limit=2").json()
    assert prov["features"][0]["properties"]["provision_type"]


# --- the tile cache ------------------------------------------------------------------------------


@pytest.mark.parametrize("first", ["full", "locations"])
def test_a_cached_tile_never_reaches_a_caller_of_another_scope(
    vg_store, api_keys, residence_tiles, first
):
    # a fresh app per order: the first caller fills the cache, the fast path answers the next
    with make_client(vg_store[0], auth_settings(api_keys)) as c:
        url = tile_url("composite", residence_tiles[15])
        gz = {"Accept-Encoding": "gzip"}
        order = [first, "locations" if first == "full" else "full"]
        seen = {}
        for _ in range(2):  # second round: every answer from the cache
            for who in order:
                r = c.get(url, headers=gz | key(getattr(api_keys, who)))
                assert r.status_code == 200
                seen.setdefault(who, set()).add(r.headers["etag"])
                props = {k for f in decode(r)["residences"]["features"] for k in f["properties"]}
                if who == "locations":
                    assert props <= LOCATION_FIELDS, props
                else:
                    assert props & RESIDENCE_ATTRIBUTES
            anon = c.get(url, headers=gz)  # no regulation here: a composite of nothing, 204
            assert anon.status_code in (200, 204) and "residences" not in decode(anon)
            assert c.get(tile_url("residences", residence_tiles[15]), headers=gz).status_code == 401
        assert len(seen["full"]) == len(seen["locations"]) == 1
        assert seen["full"] != seen["locations"]
        assert c.get("/healthz").json()["cache"]["hits"] > 0


def test_responses_vary_on_credentials_and_are_private_with_them(
    secured, api_keys, residence_tiles
):
    url = tile_url("regulations", residence_tiles[10])
    anon = secured.get(url)
    assert "Authorization" in anon.headers["vary"] and "X-API-Key" in anon.headers["vary"]
    assert "Accept-Encoding" in anon.headers["vary"]
    assert anon.headers["cache-control"].startswith("public")
    keyed = secured.get(url, headers=key(api_keys.full))
    assert keyed.headers["cache-control"].startswith("private")
    assert "public" not in keyed.headers["cache-control"]


# --- credentials ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers, status, error",
    [
        ({"X-API-Key": "vgk_aaaaaaaaaa_" + "A" * 43}, 401, "invalid_token"),
        ({"X-API-Key": "not-a-key"}, 401, "invalid_token"),
        ({"Authorization": "Bearer vgk_bbbbbbbbbb_" + "B" * 43}, 401, "invalid_token"),
        ({"Authorization": "Bearer not.a.jwt"}, 401, "invalid_token"),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, 400, "invalid_request"),
        ({"Authorization": "Bearer"}, 400, "invalid_request"),
        ({"Authorization": "Bearer a b"}, 400, "invalid_request"),
    ],
)
def test_bad_credentials_are_refused_everywhere_but_the_probes(secured, headers, status, error):
    for path in ("/tiles/regulations/3/4/2.mvt", "/collections", "/", "/conformance"):
        r = secured.get(path, headers=headers | {"Accept": "application/json"})
        assert r.status_code == status, (path, r.text)
        assert challenge(r)["error"] == error
        assert r.json()["type"] in ("Unauthenticated", "BadCredentials")
    assert secured.get("/healthz", headers=headers).status_code == 200
    assert secured.get("/readyz", headers=headers).status_code == 200


def test_one_credential_per_request(secured, api_keys):
    h = key(api_keys.full) | bearer(api_keys.full)
    r = secured.get("/collections", headers=h)
    assert r.status_code == 400 and challenge(r)["error"] == "invalid_request"


def test_keys_in_the_query_string_only_when_allowed_and_never_copied_into_links(
    vg_store, api_keys, secured, residence_tiles, caplog
):
    url = tile_url("residences", residence_tiles[15])
    r = secured.get(f"{url}?api_key={api_keys.full}")
    assert r.status_code == 400 and challenge(r)["error"] == "invalid_request"
    assert secured.get("/collections?access_token=abc").status_code == 400
    with make_client(vg_store[0], auth_settings(api_keys, query_key=True)) as c:
        caplog.set_level(logging.DEBUG)
        assert c.get(f"{url}?api_key={api_keys.full}").status_code == 200
        # percent-encoded parameter names are the same parameter
        assert c.get(f"{url}?api%5Fkey={api_keys.full}").status_code == 200
        tj = c.get(f"/tiles/residences.json?home_type=villa&api_key={api_keys.full}").json()
        assert tj["tiles"][0].endswith("?home_type=villa")
        page = c.get(f"/collections/residences/items?limit=2&api_key={api_keys.full}").json()
        assert all("api_key" not in link["href"] for link in page["links"])
        log = "\n".join(rec.getMessage() for rec in server_records(caplog))
        assert api_keys.full not in log and "api_key=REDACTED" in log


def test_a_revoked_key_stops_working_without_a_restart(vg_store, tmp_path):
    import time

    from vggeo_server.auth import AuthSettings
    from vggeo_server.auth.keys import create_key, revoke_key

    path = tmp_path / "keys.json"
    k, entry = create_key(path, name="temp", scopes=["residences"])
    other, _ = create_key(path, name="other", scopes=["residences"])
    with make_client(vg_store[0], AuthSettings(_env_file=None, keys_file=path)) as c:
        assert c.get("/collections/residences", headers=key(k)).status_code == 200
        revoke_key(path, entry.id)
        time.sleep(1.1)  # the file is checked at most once a second
        assert c.get("/collections/residences", headers=key(k)).status_code == 401
        assert c.get("/collections/residences", headers=key(other)).status_code == 200
        # a half-edited keys file: the keys loaded last stay (and the log says why)
        path.write_text("{")
        time.sleep(1.1)
        assert c.get("/collections/residences", headers=key(other)).status_code == 200
        assert c.get("/collections/residences", headers=key(k)).status_code == 401


def test_an_expired_key_is_refused(vg_store, tmp_path):
    from datetime import UTC, datetime, timedelta

    from vggeo_server.auth import AuthSettings
    from vggeo_server.auth.keys import create_key

    path = tmp_path / "keys.json"
    soon = (datetime.now(UTC) + timedelta(seconds=4)).replace(microsecond=0)  # stored to 1 s
    k, _ = create_key(path, name="short", scopes=["residences"], expires=soon)
    with make_client(vg_store[0], AuthSettings(_env_file=None, keys_file=path)) as c:
        assert c.get("/collections/residences", headers=key(k)).status_code == 200
        import time

        time.sleep(max(0.0, (soon - datetime.now(UTC)).total_seconds()) + 0.2)
        r = c.get("/collections/residences", headers=key(k))
        assert r.status_code == 401 and challenge(r)["error"] == "invalid_token"


# --- JWT -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["rsa", "ec"])
def test_signed_tokens_grant_their_scopes(secured, signing_keys, residence_tiles, kind):
    sk = signing_keys[kind]
    url = tile_url("residences", residence_tiles[15])
    r = secured.get(url, headers=bearer(sk.sign(claims("residences residences:attributes"))))
    assert r.status_code == 200
    props = {k for f in decode(r)["residences"]["features"] for k in f["properties"]}
    assert props & RESIDENCE_ATTRIBUTES
    only = secured.get(url, headers=bearer(sk.sign(claims("residences"))))
    assert {
        k for f in decode(only)["residences"]["features"] for k in f["properties"]
    } <= LOCATION_FIELDS
    # a list claim (Azure's `scp`) works as well
    scp = sk.sign(claims(None, scp=["residences", "residences:attributes"]))
    assert secured.get(url + "?home_type=villa", headers=bearer(scp)).status_code == 200
    # no vggeo scope at all: 403, not 401 (the token is fine)
    none = secured.get(url, headers=bearer(sk.sign(claims("openid profile"))))
    assert none.status_code == 403 and challenge(none)["error"] == "insufficient_scope"


def _bad_tokens(keys: dict[str, SigningKey]) -> dict[str, str]:
    rsa, ec = keys["rsa"], keys["ec"]
    stranger = SigningKey.rsa("rsa-1")  # same kid, another key: a forged signature
    pub = rsa.private.public_key()
    from cryptography.hazmat.primitives import serialization

    pem = pub.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return {
        "expired": rsa.sign(claims(lifetime=-120)),
        "not yet valid": rsa.sign(claims(nbf=int(__import__("time").time()) + 600)),
        "other audience": rsa.sign(claims(aud="another-api")),
        "other issuer": rsa.sign(claims(iss="https://evil.example")),
        "no exp": rsa.sign(claims(exp=None)),
        "no aud": rsa.sign(claims(aud=None)),
        "unknown kid": SigningKey.rsa("rsa-9").sign(claims()),
        "forged": stranger.sign(claims()),
        "alg none": unsigned(claims()),
        "hs256 with the public key": hs256(claims(), pem, "rsa-1"),
        "es256 header on the rsa key": ec.sign(claims(), header={"kid": "rsa-1"}),
        "tampered": rsa.sign(claims("residences"))[:-8] + "AAAAAAAA",
    }


def test_tokens_that_do_not_verify_are_401_invalid_token(secured, signing_keys):
    for why, token in _bad_tokens(signing_keys).items():
        r = secured.get("/collections/residences", headers=bearer(token))
        assert r.status_code == 401, (why, r.status_code, r.text)
        assert challenge(r)["error"] == "invalid_token", why


def test_tokens_are_refused_where_only_keys_are_configured(vg_store, api_keys, signing_keys):
    with make_client(vg_store[0], auth_settings(api_keys)) as c:
        r = c.get("/collections", headers=bearer(signing_keys["rsa"].sign(claims())))
        assert r.status_code == 401 and challenge(r)["error"] == "invalid_token"


# --- metrics, logs, OpenAPI, settings ------------------------------------------------------------


def test_metrics_need_their_own_scope(secured, api_keys):
    assert secured.get("/metrics").status_code == 401
    r = secured.get("/metrics", headers=key(api_keys.full))
    assert r.status_code == 403 and challenge(r)["scope"] == "metrics"
    ok = secured.get("/metrics", headers=key(api_keys.metrics))
    assert ok.status_code == 200 and "vggeo_http_requests_total" in ok.text


def test_keys_and_tokens_never_reach_the_logs(
    vg_store, api_keys, jwks_file, signing_keys, residence_tiles, caplog
):
    token = signing_keys["rsa"].sign(claims("residences"))
    bad_token = signing_keys["rsa"].sign(claims(lifetime=-100))
    secrets = [api_keys.full, api_keys.locations, token, bad_token, "vgk_cccccccccc_" + "C" * 43]
    caplog.set_level(logging.DEBUG)
    with make_client(vg_store[0], auth_settings(api_keys, jwks_file, query_key=True)) as c:
        url = tile_url("residences", residence_tiles[15])
        c.get(url, headers=key(api_keys.full))
        c.get(url, headers=bearer(api_keys.locations))
        c.get(url, headers=bearer(token))
        c.get(url, headers=bearer(bad_token))
        c.get(url, headers=key(secrets[-1]))
        c.get(f"{url}?api_key={api_keys.full}&home_type=villa")
        c.get(f"/nope?api_key={api_keys.locations}")
    text = "\n".join(
        f"{r.name} {r.getMessage()} {r.args!r} {r.exc_text or ''}" for r in server_records(caplog)
    )
    assert "vggeo.access" in text
    for s in secrets:
        assert s not in text
        assert s[4:20] not in text  # not even a recognisable part of it
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "vggeo.access"]
    principals = {line["principal"] for line in lines}
    assert any(p and p.startswith("key:") for p in principals)
    assert any(p and p.startswith("jwt:") for p in principals)
    assert "analyst@bank.example" not in text  # the token's subject is personal data


def test_openapi_documents_the_security_schemes_and_refusals(secured):
    spec = secured.get("/openapi.json").json()
    schemes = spec["components"]["securitySchemes"]
    assert schemes["bearer"]["scheme"] == "bearer" and schemes["apiKey"]["name"] == "X-API-Key"
    op = spec["paths"]["/tiles/{layer}/{z}/{x}/{y}.{fmt}"]["get"]
    assert {"401", "403"} <= set(op["responses"])
    assert spec["paths"]["/healthz"]["get"]["security"] == []


def test_cors_star_is_refused_with_access_control_on(api_keys):
    from pydantic import ValidationError

    from vggeo_server import Settings
    from vggeo_server.settings import settings_error

    with pytest.raises(ValidationError) as err:
        Settings(_env_file=None, auth=auth_settings(api_keys))  # default origins: *
    line = settings_error(err.value)
    assert "\n" not in line and "CORS" in line and "VGGEO_CORS_ORIGINS" in line
    Settings(_env_file=None, auth=auth_settings(api_keys), cors_origins=[ORIGIN])
    Settings(_env_file=None, auth=auth_settings(api_keys), cors_origins=[])


def test_cors_preflight_and_refusals_carry_cors_headers(secured):
    pre = secured.options(
        "/tiles/residences/1/1/1.mvt",
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "x-api-key",
        },
    )
    assert pre.status_code == 200
    assert pre.headers["access-control-allow-origin"] == ORIGIN
    assert "x-api-key" in pre.headers["access-control-allow-headers"].lower()
    r = secured.get("/tiles/residences/1/1/1.mvt", headers={"Origin": ORIGIN})
    assert r.status_code == 401 and r.headers["access-control-allow-origin"] == ORIGIN
    assert "WWW-Authenticate" in r.headers["access-control-expose-headers"]
    other = secured.get("/collections", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in other.headers


@pytest.mark.parametrize(
    "kw, match",
    [
        ({"jwks": "jwks.json"}, "issuer"),
        ({"jwks": "http://idp.example/jwks", "issuer": "i", "audience": "a"}, "https"),
        ({"algorithms": ["HS256"]}, "HS256"),
        ({"algorithms": ["none"]}, "none"),
        ({"public_scopes": ["everything"]}, "everything"),
    ],
)
def test_unsafe_auth_settings_are_refused(kw, match):
    from pydantic import ValidationError

    from vggeo_server.auth import AuthSettings
    from vggeo_server.settings import settings_error

    with pytest.raises(ValidationError) as err:
        AuthSettings(_env_file=None, **kw)
    assert match in settings_error(err.value)


def test_every_table_of_the_store_is_classified():
    from vggeo.features import PUBLIC_COLUMNS
    from vggeo.store.schema import TABLES
    from vggeo.tiles.layers import LAYERS
    from vggeo_server.auth.policy import TABLE_POLICIES

    assert set(TABLES) <= set(TABLE_POLICIES)
    assert TABLE_POLICIES["agande"].scope == TABLE_POLICIES["persons"].scope == "inskrivning"
    # every served field is either open with its table's scope or behind the fields scope
    for table in PUBLIC_COLUMNS:
        assert table in TABLE_POLICIES
    assert {lay.table for lay in LAYERS.values()} <= set(TABLE_POLICIES)


def test_an_unclassified_or_inskrivning_table_is_closed_to_every_key():
    from vggeo_server.auth.policy import SCOPES, Access

    everything = Access(frozenset(SCOPES) - {"inskrivning"}, authenticated=True)
    assert not everything.can_read("agande") and not everything.can_read("persons")
    assert not Access(frozenset(SCOPES), authenticated=True).can_read("some_new_table")
