"""The vectorised point encoder against mapbox-vector-tile's decoder."""

import mapbox_vector_tile
import numpy as np

from vggeo.tiles.encode import Column, encode_point_layer


def test_points_roundtrip_through_mapbox_vector_tile():
    rng = np.random.default_rng(5)
    n = 3000
    px, py = rng.integers(-64, 4160, n), rng.integers(-64, 4160, n)
    ids = np.r_[rng.integers(0, 2**52, n - 2), 0, 2**52 - 1]
    year = rng.integers(-3000, 3000, n)
    year_ok = rng.random(n) > 0.2
    labels = ["villa", "lägenhet", "småhus övriga"]
    kind = rng.integers(-1, 3, n)
    flag = rng.random(n) > 0.5
    tile = encode_point_layer(
        "residences",
        px,
        py,
        ids,
        [
            Column("id", "int", ids),
            Column("home_type", "str", kind, labels=labels),
            Column("year", "int", year, year_ok),
            Column("cluster", "bool", np.ones(n, bool), flag),
        ],
    )
    layer = mapbox_vector_tile.decode(tile, default_options={"y_coord_down": True})["residences"]
    assert layer["extent"] == 4096
    feats = layer["features"]
    assert len(feats) == n
    for i, f in enumerate(feats):
        assert f["id"] == ids[i]
        assert f["geometry"] == {"type": "Point", "coordinates": [int(px[i]), int(py[i])]}
        expected = {"id": int(ids[i])}
        if kind[i] >= 0:
            expected["home_type"] = labels[kind[i]]
        if year_ok[i]:
            expected["year"] = int(year[i])
        if flag[i]:
            expected["cluster"] = True
        assert f["properties"] == expected


def test_empty_layer_is_empty_bytes():
    e = np.array([], dtype=np.int64)
    assert encode_point_layer("x", e, e, e, []) == b""
