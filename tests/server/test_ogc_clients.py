"""Independent clients against a real ``vggeo serve`` process: GDAL's OGCAPI (and MVT) drivers,
headless QGIS's OGC API – Features provider, morecantile."""

import json
from pathlib import Path

import httpx
import morecantile
import pyproj
import pytest
from system import gdal_json, run_system_python
from tiles._live import live_server

pytestmark = [pytest.mark.slow, pytest.mark.gdal]

PROBE = Path(__file__).with_name("qgis_oapif_probe.py")

GDAL_OGCAPI = r"""
import json, sys
from osgeo import gdal, ogr
gdal.UseExceptions()
base = sys.argv[1]
root = gdal.OpenEx("OGCAPI:" + base + "/", gdal.OF_VECTOR)
subs = root.GetMetadata("SUBDATASETS")
out = {"collections": [v for k, v in sorted(subs.items()) if k.endswith("_NAME")]}
ds = gdal.OpenEx("OGCAPI:" + base + "/collections/residences", gdal.OF_VECTOR,
                 open_options=["API=ITEMS"])
lyr = ds.GetLayer(0)
out["count"] = lyr.GetFeatureCount()
out["fields"] = [lyr.GetLayerDefn().GetFieldDefn(i).GetName()
                 for i in range(lyr.GetLayerDefn().GetFieldCount())]
feats = {}
for f in lyr:
    g = f.GetGeometryRef()
    feats[str(f.GetFID())] = {"home_type": f.GetField("home_type"),
                              "construction_year": f.GetField("construction_year"),
                              "xy": [g.GetX(), g.GetY()]}
out["features"] = feats
plans = gdal.OpenEx("OGCAPI:" + base + "/collections/regulations_plan", gdal.OF_VECTOR,
                    open_options=["API=ITEMS"])
regs = plans.GetLayer(0)  # the dataset must outlive its layer
out["plans"] = regs.GetFeatureCount()
out["plan_geometry"] = ogr.GeometryTypeToName(regs.GetGeomType())
print(json.dumps(out))
"""

GDAL_MVT = r"""
import json, sys
from osgeo import gdal
gdal.UseExceptions()
ds = gdal.OpenEx(sys.argv[1], gdal.OF_VECTOR, allowed_drivers=["MVT"],
                 open_options=["X=" + sys.argv[2], "Y=" + sys.argv[3], "Z=" + sys.argv[4]])
out = {}
for i in range(ds.GetLayerCount()):
    lyr = ds.GetLayer(i)
    out[lyr.GetName()] = sorted(f.GetField("id") for f in lyr)
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def live(vg_store):
    with live_server(vg_store[0]) as (base, _pid):
        yield base


def test_gdal_ogcapi_lists_collections_and_reads_features(live, vg_store):
    out = gdal_json(GDAL_OGCAPI, live)
    assert f"OGCAPI:{live}/collections/residences?f=json" in out["collections"]
    assert len(out["collections"]) == len(httpx.get(f"{live}/collections").json()["collections"])
    res = vg_store[1].set_index("id")
    assert out["count"] == len(res) == len(out["features"])
    assert {"home_type", "construction_year"} <= set(out["fields"])
    assert "address" not in out["fields"]
    tr = pyproj.Transformer.from_crs(3006, 4326, always_xy=True)
    for fid, f in list(out["features"].items())[:50]:
        row = res.loc[int(fid)]
        assert f["home_type"] == row["home_type"]
        assert f["construction_year"] == (
            None
            if row["construction_year"] is None or str(row["construction_year"]) == "<NA>"
            else int(row["construction_year"])
        )
        lon, lat = tr.transform(row.geometry.x, row.geometry.y)
        assert f["xy"] == pytest.approx([lon, lat], abs=1e-8)
    prov = vg_store[2]
    assert out["plans"] == (prov["provision_type"] == "plan").sum()
    assert "Polygon" in out["plan_geometry"]


def test_gdal_reads_the_ogc_tiles(live, vg_store, tmp_path):
    tms = morecantile.tms.get("WebMercatorQuad")
    tileset = httpx.get(f"{live}/collections/residences/tiles/WebMercatorQuad").json()
    template = next(link["href"] for link in tileset["links"] if link["rel"] == "item")
    res = vg_store[1]
    lon, lat = pyproj.Transformer.from_crs(3006, 4326, always_xy=True).transform(
        res.geometry.x.iloc[0], res.geometry.y.iloc[0]
    )
    t = tms.tile(lon, lat, 15)
    url = (
        template.replace("{tileMatrix}", "15")
        .replace("{tileRow}", str(t.y))
        .replace("{tileCol}", str(t.x))
    )
    r = httpx.get(url)  # GDAL 3.6's OGCAPI driver reads TMS 1.0 only: fetch, then decode
    assert (
        r.status_code == 200 and r.headers["content-type"] == "application/vnd.mapbox-vector-tile"
    )
    path = tmp_path / "tile.mvt"
    path.write_bytes(r.content)
    out = gdal_json(GDAL_MVT, str(path), str(t.x), str(t.y), "15")
    assert int(res["id"].iloc[0]) in out["residences"]


def test_every_tile_matrix_set_parses_with_morecantile(live):
    listed = httpx.get(f"{live}/tileMatrixSets").json()["tileMatrixSets"]
    assert {t["id"] for t in listed} == {"WebMercatorQuad", "SWEREF99TM"}
    for t in listed:
        doc = httpx.get(t["links"][0]["href"]).json()
        tms = morecantile.TileMatrixSet.model_validate(doc)
        assert tms.id == t["id"]


@pytest.mark.qgis
def test_qgis_loads_features_layers(live, vg_store):
    r = run_system_python(
        PROBE.read_text(),
        live,
        "residences",
        "regulations_plan",
        module="qgis.core",
        packages="python3-qgis",
    )
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout[r.stdout.index("{") :])
    res, prov = vg_store[1], vg_store[2]
    assert out["residences"]["valid"]
    assert out["residences"]["count"] == out["residences"]["iterated"] == len(res)
    assert {"home_type", "construction_year"} <= set(out["residences"]["fields"])
    by_id = res.set_index("id")
    for sample in out["residences"]["sample"]:
        key = sample.get("id") if sample.get("id") is not None else sample.get("gml_id")
        if key is not None and str(key).isdigit():
            assert sample["home_type"] == by_id.loc[int(key), "home_type"]
    assert out["regulations_plan"]["valid"]
    assert out["regulations_plan"]["iterated"] == (prov["provision_type"] == "plan").sum()


def test_links_use_the_bind_address_never_the_host_header(live):
    r = httpx.get(f"{live}/tiles/composite.json", headers={"Host": "evil.example"})
    assert r.json()["tiles"][0].startswith(f"{live}/tiles/composite/")
    head = httpx.head(f"{live}/healthz")
    assert head.status_code == 200 and head.content == b""
