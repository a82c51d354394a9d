"""OGC API documents and features, checked against independent models: morecantile for the tile
matrix sets and limits, pyproj and shapely on the generated frames for the features."""

import json

import mapbox_vector_tile
import morecantile
import numpy as np
import pyproj
import pytest
import shapely

EPSG3006 = "http://www.opengis.net/def/crs/EPSG/0/3006"
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
BASE = "https://maps.example/vggeo"


def rels(doc):
    return {link["rel"]: link for link in doc["links"]}


# --- landing page, conformance, collections -------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs", [{"params": {"f": "json"}}, {"headers": {"Accept": "application/json"}}]
)
def test_landing_page_is_json_for_api_clients(ogc, kwargs):
    r = ogc.get("/", **kwargs)
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    links = rels(r.json())
    for rel in (
        "self",
        "alternate",
        "service-desc",
        "service-doc",
        "conformance",
        "data",
        "http://www.opengis.net/def/rel/ogc/1.0/tiling-schemes",
    ):
        assert links[rel]["href"].startswith(BASE), rel
    assert links["service-desc"]["href"] == f"{BASE}/openapi.json"
    assert links["data"]["href"] == f"{BASE}/collections"


def test_landing_page_is_the_map_for_browsers(ogc):
    r = ogc.get("/", headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"})
    assert r.headers["content-type"].startswith("text/html") and "maplibre" in r.text
    assert "maplibre" in ogc.get("/?f=html").text


def test_conformance_declares_tiles_and_features(ogc, client):
    classes = set(ogc.get("/conformance").json()["conformsTo"])
    for c in (
        "ogcapi-common-1/1.0/conf/core",
        "ogcapi-tiles-1/1.0/conf/tileset",
        "ogcapi-tiles-1/1.0/conf/tilesets-list",
        "ogcapi-features-1/1.0/conf/core",
        "ogcapi-features-1/1.0/conf/geojson",
        "ogcapi-features-2/1.0/conf/crs",
    ):
        assert f"http://www.opengis.net/spec/{c}" in classes, c
    # a plain GeoPackage (not a vggeo store) serves tiles only, and says so
    tiles_only = set(client.get("/conformance").json()["conformsTo"])
    assert not any("features" in c for c in tiles_only)


def test_collections_link_what_the_specs_require(ogc):
    doc = ogc.get("/collections").json()
    ids = [c["id"] for c in doc["collections"]]
    assert {"residences", "regulations", "regulations_plan", "composite"} <= set(ids)
    assert not {"agande", "persons", "inskrivningsfastighet"} & set(ids)
    for c in doc["collections"]:
        links = rels(c)
        assert links["self"]["href"].startswith(f"{BASE}/collections/{c['id']}")
        tilesets = links["http://www.opengis.net/def/rel/ogc/1.0/tilesets-vector"]
        assert ogc.get(tilesets["href"].removeprefix(BASE)).status_code == 200
        w, s, e, n = c["extent"]["spatial"]["bbox"][0]
        assert 10 < w < e < 25 and 55 < s < n < 70
        if c["id"] == "composite":
            assert "items" not in links and "itemType" not in c
        else:
            assert links["items"]["type"] == "application/geo+json"
            assert c["itemType"] == "feature" and c["storageCrs"] == EPSG3006
            assert c["crs"][0] == CRS84 and EPSG3006 in c["crs"]
        assert ogc.get(f"/collections/{c['id']}").json() == c


# --- tiles -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("grid", ["WebMercatorQuad", "SWEREF99TM"])
def test_tile_matrix_sets_parse_with_morecantile(ogc, grid):
    listed = ogc.get("/tileMatrixSets").json()["tileMatrixSets"]
    href = next(t for t in listed if t["id"] == grid)["links"][0]["href"]
    doc = ogc.get(href.removeprefix(BASE)).json()
    tms = morecantile.TileMatrixSet.model_validate(doc)
    if grid == "WebMercatorQuad":
        ref = morecantile.tms.get("WebMercatorQuad")
        assert [m.model_dump() for m in tms.tileMatrices] == [
            m.model_dump() for m in ref.tileMatrices
        ]
    else:
        # Lantmäteriet's "3006": top-left E −1 200 000, N 8 500 000, 4096 m/px at level 0
        assert tms.crs.to_epsg() == 3006
        top_left = tms.xy_bounds(morecantile.Tile(0, 0, 0))
        assert (top_left.left, top_left.top) == (-1_200_000, 8_500_000)
        assert top_left.right - top_left.left == 4096 * 256
        assert [m.cellSize for m in tms.tileMatrices][:14] == [4096 / 2**z for z in range(14)]
        assert all(m.tileWidth == m.tileHeight == 256 for m in tms.tileMatrices)


@pytest.mark.parametrize("grid", ["WebMercatorQuad", "SWEREF99TM"])
def test_tileset_limits_cover_every_residence(ogc, vg_store, grid):
    tilesets = ogc.get("/collections/residences/tiles").json()["tilesets"]
    entry = next(t for t in tilesets if t["links"][0]["href"].endswith(f"/tiles/{grid}"))
    doc = ogc.get(rels(entry)["self"]["href"].removeprefix(BASE)).json()
    links = rels(doc)
    assert links["http://www.opengis.net/def/rel/ogc/1.0/tiling-scheme"]["href"] == (
        f"{BASE}/tileMatrixSets/{grid}"
    )
    assert "{tileMatrix}/{tileRow}/{tileCol}" in links["item"]["href"]
    layer = doc["layers"][0]
    assert layer["id"] == "residences" and layer["geometryDimension"] == 0
    assert {"home_type", "construction_year", "point_count"} <= set(
        layer["propertiesSchema"]["properties"]
    )
    tms = morecantile.TileMatrixSet.model_validate(ogc.get(f"/tileMatrixSets/{grid}").json())
    res = vg_store[1]
    lon, lat = pyproj.Transformer.from_crs(3006, 4326, always_xy=True).transform(
        res.geometry.x.to_numpy(), res.geometry.y.to_numpy()
    )
    limits = {lim["tileMatrix"]: lim for lim in doc["tileMatrixSetLimits"]}
    assert int(layer["minTileMatrix"]) == min(map(int, limits))
    assert int(layer["maxTileMatrix"]) == max(map(int, limits))
    for z in (min(map(int, limits)), 6, 10):
        lim = limits[str(z)]
        for i in range(0, len(res), 97):
            t = tms.tile(lon[i], lat[i], z)
            assert lim["minTileCol"] <= t.x <= lim["maxTileCol"], (z, t)
            assert lim["minTileRow"] <= t.y <= lim["maxTileRow"], (z, t)


def test_ogc_tile_holds_what_the_tileset_describes(ogc, vg_store):
    tms = morecantile.tms.get("WebMercatorQuad")
    res = vg_store[1]
    lon, lat = pyproj.Transformer.from_crs(3006, 4326, always_xy=True).transform(
        res.geometry.x.iloc[0], res.geometry.y.iloc[0]
    )
    t = tms.tile(lon, lat, 15)
    r = ogc.get(f"/collections/residences/tiles/WebMercatorQuad/15/{t.y}/{t.x}")
    assert r.status_code == 200
    feats = mapbox_vector_tile.decode(r.content)["residences"]["features"]
    assert int(res["id"].iloc[0]) in {f["properties"]["id"] for f in feats}


# --- features --------------------------------------------------------------------------------------


def _all_pages(ogc, url):
    out, seen = [], 0
    while url:
        doc = ogc.get(url.removeprefix(BASE)).json()
        assert doc["numberReturned"] == len(doc["features"])
        out += doc["features"]
        seen += 1
        nxt = [link for link in doc["links"] if link["rel"] == "next"]
        url = nxt[0]["href"] if nxt else None
        assert seen < 100
    return out, doc["numberMatched"]


def test_paging_returns_every_feature_once(ogc, vg_store):
    feats, matched = _all_pages(ogc, "/collections/residences/items?limit=700")
    ids = [f["id"] for f in feats]
    assert matched == len(vg_store[1]) == len(ids) == len(set(ids))
    assert set(ids) == set(vg_store[1]["id"].tolist())
    doc = ogc.get("/collections/residences/items?limit=700&offset=1400").json()
    prev = rels(doc)["prev"]["href"]
    assert "offset=700" in prev and "limit=700" in prev


def test_crs84_coordinates_are_lon_lat(ogc, vg_store):
    doc = ogc.get("/collections/residences/items?limit=50").json()
    assert ogc.get("/collections/residences/items?limit=1").headers["content-crs"] == f"<{CRS84}>"
    res = vg_store[1].set_index("id")
    tr = pyproj.Transformer.from_crs("EPSG:3006", "OGC:CRS84")
    for f in doc["features"]:
        p = res.geometry.loc[f["id"]]
        lon, lat = tr.transform(p.y, p.x)  # EPSG:3006's own axis order: northing, easting
        assert f["geometry"]["coordinates"] == pytest.approx([lon, lat], abs=1e-8)
        assert f["properties"]["home_type"] == res.loc[f["id"], "home_type"]


def test_epsg3006_is_northing_easting_to_the_millimetre(ogc, vg_store):
    r = ogc.get("/collections/regulations/items", params={"crs": EPSG3006, "limit": 30})
    assert r.headers["content-crs"] == f"<{EPSG3006}>"
    prov = vg_store[2].set_index("provision_id")
    for f in r.json()["features"]:
        ring = np.asarray(f["geometry"]["coordinates"][0][0])
        expected = shapely.get_coordinates(prov.geometry.loc[f["id"]])
        np.testing.assert_allclose(ring[:, ::-1], expected, atol=1e-3)
        assert ring[:, 0].min() > 6_000_000  # northing first
    short = ogc.get("/collections/regulations/items?crs=EPSG:3006&limit=30").json()
    assert short["features"] == r.json()["features"]


def test_bbox_selects_what_intersects_it(ogc, vg_store):
    res = vg_store[1]
    tr = pyproj.Transformer.from_crs(3006, 4326, always_xy=True)
    lon, lat = tr.transform(res.geometry.x.to_numpy(), res.geometry.y.to_numpy())
    box = (
        float(np.median(lon)) - 0.2,
        float(np.median(lat)) - 0.1,
        float(np.median(lon)) + 0.2,
        float(np.median(lat)) + 0.1,
    )
    inside = (lon >= box[0]) & (lon <= box[2]) & (lat >= box[1]) & (lat <= box[3])
    feats, matched = _all_pages(
        ogc, "/collections/residences/items?limit=1000&bbox=" + ",".join(map(str, box))
    )
    assert 0 < matched == inside.sum()
    assert {f["id"] for f in feats} == set(res["id"][inside].tolist())
    # the same area as a bbox in EPSG:3006 (northing, easting axis order)
    e0, n0 = tr.transform(box[0], box[1], direction="INVERSE")
    e1, n1 = tr.transform(box[2], box[3], direction="INVERSE")
    r = ogc.get(
        "/collections/residences/items",
        params={"bbox": f"{n0},{e0},{n1},{e1}", "bbox-crs": "EPSG:3006", "limit": 1},
    )
    in_box = (
        (res.geometry.x >= e0)
        & (res.geometry.x <= e1)
        & (res.geometry.y >= n0)
        & (res.geometry.y <= n1)
    )
    assert r.json()["numberMatched"] == in_box.sum() > 0


@pytest.mark.parametrize(
    ("bbox", "crs"),
    [
        ("-180,-90,180,90", None),  # the world: folded over itself once projected
        ("-90,-180,90,180", "EPSG:4326"),
        ("-2e7,-2e7,2e7,2e7", "EPSG:3857"),
        ("-1e300,-1e300,1e300,1e300", "EPSG:3006"),  # finite, but not densifiable as given
        ("0,0,1e155,1e155", "EPSG:3021"),
    ],
)
def test_a_bbox_larger_than_sweden_matches_everything(ogc, vg_store, bbox, crs):
    params = {"bbox": bbox, "limit": 1, **({"bbox-crs": crs} if crs else {})}
    r = ogc.get("/collections/residences/items", params=params)
    assert r.status_code == 200, r.text
    assert r.json()["numberMatched"] == len(vg_store[1])


def test_a_bbox_without_width_or_height_is_a_point_or_a_line(ogc, vg_store):
    res = vg_store[1]
    x, y = float(res.geometry.x.iloc[0]), float(res.geometry.y.iloc[0])
    ids = set(res["id"][(res.geometry.x == x) & (res.geometry.y == y)].tolist())
    point = ogc.get(  # northing, easting: EPSG:3006's axis order
        "/collections/residences/items",
        params={"bbox": f"{y},{x},{y},{x}", "bbox-crs": "EPSG:3006"},
    )
    assert point.status_code == 200 and {f["id"] for f in point.json()["features"]} == ids
    line = ogc.get(
        "/collections/residences/items",
        params={"bbox": f"{y},{x - 10},{y},{x + 10}", "bbox-crs": "EPSG:3006"},
    )
    assert line.status_code == 200 and ids <= {f["id"] for f in line.json()["features"]}
    for bbox in ("17,59,17,59", "17,59,18,59"):  # in CRS84: also no 5xx, whatever matches
        assert ogc.get(f"/collections/regulations/items?bbox={bbox}").status_code == 200


def test_a_bbox_outside_where_features_can_be_matches_nothing(ogc):
    r = ogc.get("/collections/residences/items", params={"bbox": "-170,-80,-160,-70"})
    assert r.status_code == 200 and r.json()["numberMatched"] == 0


@pytest.mark.parametrize(
    "query",
    [
        "limt=5",  # a typo: ignored, the page would look limited and is not
        "home-type=villa",
        "limit=5&sortby=id",
        "_=1700000000",
    ],
)
def test_an_unknown_query_parameter_is_refused(ogc, query):
    """OGC API – Features /req/core/query-param-unknown: 400, one line naming the parameter."""
    name = query.rsplit("&", 1)[-1].split("=")[0]
    r = ogc.get(f"/collections/residences/items?{query}")
    assert r.status_code == 400 and f"unknown query parameter {name!r}" in r.text, r.text
    assert "\n" not in r.text
    one = ogc.get(f"/collections/residences/items/x?{query}")  # limit is not one's either
    assert one.status_code == 400 and "unknown query parameter" in one.text, one.text


def test_every_declared_parameter_is_known(ogc):
    """The known names are the route's own: every parameter the API document declares for the
    operation is accepted (attribute filters and paging included)."""
    spec = ogc.get("/openapi.json").json()
    items = spec["paths"]["/collections/{layer}/items"]["get"]["parameters"]
    declared = {p["name"] for p in items if p["in"] == "query"}
    assert {"bbox", "bbox-crs", "crs", "limit", "offset", "properties", "f", "datetime"} <= declared
    assert {"home_type", "construction_year_min"} <= declared
    r = ogc.get(
        "/collections/residences/items",
        params={"limit": 2, "offset": 1, "f": "json", "home_type": "villa", "crs": "EPSG:3006"},
    )
    assert r.status_code == 200, r.text


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("garbage", "not an RFC 3339"),
        ("2018-02-12T23:20:50", "not an RFC 3339"),  # no time zone
        ("2018-02-12/2018-03-01/2019-01-01", "not an RFC 3339"),
        ("2018-02-12T23:20:50Z", "no temporal property"),
        ("../2018-03-18T12:31:12+01:00", "no temporal property"),
        ("2018-02-12/", "no temporal property"),
    ],
)
def test_datetime_is_validated_and_never_ignored(ogc, value, says):
    """``datetime`` is a core parameter: a value that is not a time is a 400 naming it; a valid
    one cannot be applied (the features have no temporal property), so it is refused too
    rather than answered with every feature as if filtered."""
    r = ogc.get("/collections/residences/items", params={"datetime": value})
    assert r.status_code == 400 and says in r.text, r.text


def test_properties_select_and_personal_data_never_leaves(ogc):
    doc = ogc.get(
        "/collections/residences/items?limit=5&properties=home_type,construction_year"
    ).json()
    assert all(set(f["properties"]) == {"home_type", "construction_year"} for f in doc["features"])
    full = ogc.get("/collections/residences/items?limit=200").text
    assert "Storgatan" not in full and "address" not in full
    assert ogc.get("/collections/residences/items?properties=address").status_code == 400


def test_a_feature_by_id(ogc, vg_store):
    rid = int(vg_store[1]["id"].iloc[3])
    f = ogc.get(f"/collections/residences/items/{rid}").json()
    assert f["type"] == "Feature" and f["id"] == rid
    assert rels(f)["self"]["href"] == f"{BASE}/collections/residences/items/{rid}"
    pid = vg_store[2]["provision_id"].iloc[0]
    ptype = vg_store[2]["provision_type"].iloc[0]
    f = ogc.get(f"/collections/regulations_{ptype}/items/{pid}?crs=EPSG:3006").json()
    assert f["id"] == pid and f["properties"]["provision_type"] == ptype
    other = next(t for t in vg_store[2]["provision_type"].unique() if t != ptype)
    assert ogc.get(f"/collections/regulations_{other}/items/{pid}").status_code == 404
    assert ogc.get("/collections/residences/items/1").status_code == 404


@pytest.mark.parametrize(
    "query",
    [
        "home_type=villa&construction_year_min=1950",
        "ownership_type=bostadsrätt,hyresrätt",
        "construction_year_max=1930",
    ],
)
def test_filters_select_alike_on_tiles_and_features(ogc, vg_store, query):
    res = vg_store[1]
    expected = np.ones(len(res), bool)
    for part in query.split("&"):
        key, value = part.split("=")
        if key == "construction_year_min":
            expected &= (res["construction_year"] >= int(value)).fillna(False).to_numpy()
        elif key == "construction_year_max":
            expected &= (res["construction_year"] <= int(value)).fillna(False).to_numpy()
        else:
            expected &= res[key].isin(value.split(",")).to_numpy()
    feats = ogc.get(f"/collections/residences/items?limit=1&{query}").json()
    assert feats["numberMatched"] == expected.sum() > 0
    tile = mapbox_vector_tile.decode(ogc.get(f"/tiles/residences/0/0/0.mvt?{query}").content)
    counted = sum(f["properties"].get("point_count", 1) for f in tile["residences"]["features"])
    assert counted == expected.sum()


def test_plan_collection_holds_plans_only(ogc, vg_store):
    feats, matched = _all_pages(
        ogc, "/collections/regulations_plan/items?limit=1000&status=gällande"
    )
    prov = vg_store[2]
    want = prov[(prov["provision_type"] == "plan") & (prov["status"] == "gällande")]
    assert matched == len(want) == len(feats)
    assert {f["id"] for f in feats} == set(want["provision_id"])
    assert json.dumps(feats[0]).count("plan") >= 1
