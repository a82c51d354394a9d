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


def test_varints_are_protobufs_own():
    """Every length class, its edges and the full uint64 range, against protobuf's encoder."""
    from google.protobuf.internal.encoder import _VarintBytes

    from vggeo.tiles.encode import _varints

    rng = np.random.default_rng(11)
    edges = [v for k in range(1, 10) for v in ((1 << 7 * k) - 1, 1 << 7 * k)]
    values = np.array([0, 1, 127, *edges, (1 << 63) - 1, 1 << 63, (1 << 64) - 1], dtype=np.uint64)
    for shift in range(0, 64, 3):
        mixed = rng.integers(0, 1 << 63, 500, dtype=np.uint64) >> np.uint64(shift)
        for v in (values, mixed, np.r_[mixed, values], np.zeros(3, np.uint64), values[:1]):
            rng.shuffle(v)
            assert _varints(v) == b"".join(_VarintBytes(int(x)) for x in v)
    assert _varints(np.zeros(0, np.uint64)) == b""


def test_unique_inverse_is_numpys():
    from vggeo.tiles.encode import _unique_inverse

    rng = np.random.default_rng(12)
    cases = [
        rng.integers(-1, 12, 400),  # category codes
        rng.integers(1700, 2026, 3000).astype(np.int32),  # years
        rng.integers(-128, 128, 300).astype(np.int8),  # a span that overflows int8
        rng.integers(0, 2**52, 50),  # ids: too wide to count, sorted instead
        np.array([2**64 - 1, 2**64 - 2, 5], dtype=np.uint64),
        np.array([7]),
    ]
    for v in cases:
        uniq, inv = _unique_inverse(v)
        want_uniq, want_inv = np.unique(v, return_inverse=True)
        assert uniq.dtype == want_uniq.dtype
        np.testing.assert_array_equal(uniq, want_uniq)
        np.testing.assert_array_equal(inv, want_inv)
