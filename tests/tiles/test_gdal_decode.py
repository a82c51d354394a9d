"""GDAL's MVT driver (an independent decoder) reads our tiles back to the source's features."""

import json

import numpy as np
import pyproj
import pytest
import shapely
from system import gdal_json

from vggeo.tiles.grids import get_grid
from vggeo.tiles.index import provision_feature_ids

pytestmark = pytest.mark.gdal

READ_TILES = r"""
import json, sys
from osgeo import gdal
gdal.UseExceptions()
out = []
for spec in json.loads(sys.argv[1]):
    ds = gdal.OpenEx(spec["path"], open_options=[f"X={spec['x']}", f"Y={spec['y']}", f"Z={spec['z']}"])
    for i in range(ds.GetLayerCount()):
        lyr = ds.GetLayer(i)
        for f in lyr:
            props = {k: v for k, v in f.items().items() if v is not None}
            # GDAL exposes the MVT feature id as the field mvt_id.
            out.append({"tile": spec["key"], "layer": lyr.GetName(), "fid": props.pop("mvt_id"),
                        "props": props,
                        "wkt": f.GetGeometryRef().ExportToIsoWkt()})
print(json.dumps(out))
"""


def _decode_with_gdal(tmp_path, source, tiles):
    specs = []
    for key, (layer, z, x, y) in enumerate(tiles):
        data = source.tile(layer, z, x, y)
        assert data, f"tile {z}/{x}/{y} unexpectedly empty"
        path = tmp_path / f"{key}.pbf"
        path.write_bytes(data)
        specs.append({"path": str(path), "x": x, "y": y, "z": z, "key": key})
    return gdal_json(READ_TILES, json.dumps(specs))


def _busiest_tile(e3857, n3857, z):
    g = get_grid("WebMercatorQuad")
    size = g.tile_size(z)
    col = ((e3857 - g.origin_east) // size).astype(int)
    row = ((g.origin_north - n3857) // size).astype(int)
    pairs, counts = np.unique(np.column_stack([col, row]), axis=0, return_counts=True)
    x, y = pairs[np.argmax(counts)]
    return int(x), int(y), col, row


def test_points_and_clusters_decode_to_the_source(tmp_path, source, store):
    residences = store[1]
    tr = pyproj.Transformer.from_crs(3006, 3857, always_xy=True)
    e, n = tr.transform(residences.geometry.x.to_numpy(), residences.geometry.y.to_numpy())
    x15, y15, c15, r15 = _busiest_tile(e, n, 15)
    x10, y10, c10, r10 = _busiest_tile(e, n, 10)
    feats = _decode_with_gdal(
        tmp_path, source, [("residences", 15, x15, y15), ("residences", 10, x10, y10)]
    )

    inside = (c15 == x15) & (r15 == y15)
    want = residences[inside].set_index("id")
    got = [f for f in feats if f["tile"] == 0]
    assert sorted(f["fid"] for f in got) == sorted(want.index.tolist())
    unit = get_grid("WebMercatorQuad").tile_size(15) / 4096
    pos = dict(
        zip(residences["id"].tolist(), zip(e.tolist(), n.tolist(), strict=True), strict=True)
    )
    for f in got:
        row = want.loc[f["fid"]]
        p = f["props"]
        assert p["id"] == f["fid"] and p["home_type"] == row["home_type"]
        assert p["ownership_type"] == row["ownership_type"]
        assert p["municipality_code"] == row["municipality_code"]
        year = row["construction_year"]
        assert p.get("construction_year") == (
            None if year is None or str(year) == "<NA>" else int(year)
        )
        gx, gy = shapely.from_wkt(f["wkt"]).coords[0]
        sx, sy = pos[f["fid"]]
        assert abs(gx - sx) <= unit and abs(gy - sy) <= unit  # half a unit + float slack

    in10 = int(((c10 == x10) & (r10 == y10)).sum())
    got10 = [f for f in feats if f["tile"] == 1]
    assert sum(f["props"].get("point_count", 1) for f in got10) == in10
    assert any(f["props"].get("cluster") for f in got10)


def test_polygons_decode_to_the_source(tmp_path, source, store):
    provisions = store[2].copy()
    provisions["fid"] = provision_feature_ids(provisions["provision_id"])
    geoms = provisions.to_crs(3857).geometry.values
    g = get_grid("WebMercatorQuad")
    z = 13
    size = g.tile_size(z)
    c = shapely.centroid(geoms[0])
    x, y = int((c.x - g.origin_east) // size), int((g.origin_north - c.y) // size)
    feats = [f for f in _decode_with_gdal(tmp_path, source, [("regulations", z, x, y)])]
    b = g.bounds(z, x, y)
    box = shapely.box(*b)
    hits = provisions[
        shapely.intersects(geoms, box)
        & (shapely.area(shapely.intersection(geoms, box)) > (size / 256) ** 2)
    ]
    got = {f["fid"]: f for f in feats}
    assert set(hits["fid"]) <= set(got), "a provision visibly inside the tile is missing"
    unit = size / 4096
    by_fid = provisions.set_index("fid")
    for fid, f in got.items():
        src = by_fid.loc[fid]
        for col in ("provision_id", "provision_type", "status", "designation", "name"):
            assert f["props"][col] == src[col]
        ours = shapely.intersection(shapely.from_wkt(f["wkt"]), box)
        theirs = shapely.intersection(
            geoms[np.flatnonzero(provisions["fid"].to_numpy() == fid)[0]], box
        )
        # quantisation (½ unit) + simplification (¼ pixel = 4 units)
        assert shapely.hausdorff_distance(ours, theirs) <= 6 * unit
