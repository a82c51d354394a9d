"""A restricted tile is the full tile minus the dropped layers and properties: same features,
ids and geometries, read back by GDAL's MVT driver and mapbox-vector-tile (independent decoders),
and nothing of a dropped property left in the bytes."""

import json

import mapbox_vector_tile
import numpy as np
import pytest
from system import gdal_json
from test_gdal_decode import READ_TILES

from vggeo.tiles.restrict import restrict_tile

KEEP = {"id", "cluster", "point_count"}


def _busy_tiles(source):
    """(z, x, y) of composite tiles with residences and regulations: a clustered and a points one."""
    from vggeo.tiles.index import DEPTH

    idx = source.data.points("WebMercatorQuad")
    out = []
    for z in (10, 15):
        codes, counts = np.unique(idx.codes >> np.uint64(2 * (DEPTH - z)), return_counts=True)
        from vggeo.tiles.index import demorton

        x, y = demorton(codes[np.argsort(counts)[::-1][:1]])
        out.append((z, int(x[0]), int(y[0])))
    return out


@pytest.fixture(scope="module")
def tiles(source):
    return [(zxy, source.tile("composite", *zxy)) for zxy in _busy_tiles(source)]


def test_dropped_properties_leave_features_ids_and_geometry_alone(tiles):
    for _zxy, full in tiles:
        cut = restrict_tile(full, {"residences": KEEP, "regulations": None})
        a, b = mapbox_vector_tile.decode(full), mapbox_vector_tile.decode(cut)
        assert a.get("regulations") == b.get("regulations")  # kept whole
        fa, fb = a["residences"]["features"], b["residences"]["features"]
        assert len(fa) == len(fb) > 0
        for x, y in zip(fa, fb, strict=True):
            assert (x["id"], x["geometry"], x["type"]) == (y["id"], y["geometry"], y["type"])
            assert y["properties"] == {k: v for k, v in x["properties"].items() if k in KEEP}
        dropped = {k.encode() for f in fa for k in f["properties"] if k not in KEEP}
        dropped |= {
            v.encode()
            for f in fa
            for k, v in f["properties"].items()
            if k not in KEEP and isinstance(v, str)
        }
        assert b"home_type" in dropped and all(word in full for word in dropped)
        residences_part = cut.split(b"regulations")[0]
        assert not [word for word in dropped if word in residences_part]


def test_layers_not_named_are_dropped_and_nothing_left_is_empty(tiles):
    full = next(t for _zxy, t in tiles if b"regulations" in t)
    only = restrict_tile(full, {"regulations": None})
    assert set(mapbox_vector_tile.decode(only)) == {"regulations"}
    assert restrict_tile(full, {}) == b"" and restrict_tile(b"", {"residences": None}) == b""
    # re-encoded in protobuf's field order, so compared decoded
    whole = restrict_tile(full, {"residences": None, "regulations": None})
    assert mapbox_vector_tile.decode(whole) == mapbox_vector_tile.decode(full)


@pytest.mark.gdal
def test_gdal_reads_the_restricted_tile(tmp_path, tiles):
    specs, expected = [], {}
    for key, ((z, x, y), full) in enumerate(tiles):
        cut = restrict_tile(full, {"residences": KEEP})
        path = tmp_path / f"{key}.pbf"
        path.write_bytes(cut)
        specs.append({"path": str(path), "x": x, "y": y, "z": z, "key": key})
        expected[key] = mapbox_vector_tile.decode(full)["residences"]["features"]
    rows = gdal_json(READ_TILES, json.dumps(specs))
    for key, feats in expected.items():
        got = [r for r in rows if r["tile"] == key]
        assert {r["layer"] for r in got} == {"residences"}
        assert sorted(r["fid"] for r in got) == sorted(f["id"] for f in feats)
        for r in got:
            assert set(r["props"]) <= KEEP
