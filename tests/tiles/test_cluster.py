"""Clusters carry exact counts: nothing is lost or counted twice at any zoom, on any grid."""

import mapbox_vector_tile
import numpy as np
import pyproj
import pytest

from vggeo.tiles import open_source
from vggeo.tiles.cluster import CLUSTER_ID_BASE
from vggeo.tiles.layers import Filters, slug


def _lonlat(residences):
    tr = pyproj.Transformer.from_crs(3006, 4326, always_xy=True)
    return tr.transform(residences.geometry.x.to_numpy(), residences.geometry.y.to_numpy())


def _xyz_tiles(lon, lat, z):
    """Occupied XYZ tiles by the slippy-map formula (independent of vggeo's Morton index)."""
    n = 2**z
    x = np.floor((lon + 180) / 360 * n).astype(int)
    lat_r = np.radians(lat)
    y = np.floor((1 - np.log(np.tan(lat_r) + 1 / np.cos(lat_r)) / np.pi) / 2 * n).astype(int)
    return sorted(set(zip(x.tolist(), y.tolist(), strict=True)))


def _features(source, z, x, y, filters=None, grid="WebMercatorQuad"):
    data = source.tile("residences", z, x, y, filters=filters, grid=grid)
    if not data:
        return []
    return mapbox_vector_tile.decode(data)["residences"]["features"]


@pytest.mark.parametrize("z", [0, 4, 7, 10, 13, 14])
def test_counts_add_up_at_every_zoom(source, store, z):
    residences = store[1]
    lon, lat = _lonlat(residences)
    total, per_type, ids = 0, {}, []
    for x, y in _xyz_tiles(lon, lat, z):
        for f in _features(source, z, x, y):
            p = f["properties"]
            ids.append(f["id"])
            assert p["id"] == f["id"]
            if p.get("cluster"):
                assert f["id"] >= CLUSTER_ID_BASE and p["point_count"] >= 2
                total += p["point_count"]
                for k, v in p.items():
                    if k.startswith("count_"):
                        per_type[k] = per_type.get(k, 0) + v
            else:
                assert f["id"] < CLUSTER_ID_BASE
                total += 1
                key = f"count_{slug(p['home_type'])}"
                per_type[key] = per_type.get(key, 0) + 1
    assert total == len(residences)
    expected = residences["home_type"].astype(str).map(lambda t: f"count_{slug(t)}").value_counts()
    assert per_type == expected.to_dict()
    assert len(ids) == len(set(ids)), "feature ids repeat within a zoom"


def test_filtered_clusters_count_exactly_the_filtered_homes(source, store):
    residences = store[1]
    f = Filters.parse(
        {
            "home_type": "villa,radhus",
            "construction_year_min": "1950",
            "construction_year_max": "1990",
        },
        allowed=source.allowed_values(),
    )
    year = residences["construction_year"]
    want = residences["home_type"].isin(["villa", "radhus"]) & (year >= 1950) & (year <= 1990)
    lon, lat = _lonlat(residences)
    for z in (5, 11, 15):
        total = 0
        for x, y in _xyz_tiles(lon, lat, z):
            for feat in _features(source, z, x, y, filters=f):
                p = feat["properties"]
                total += p.get("point_count", 1)
                if not p.get("cluster"):
                    assert p["home_type"] in ("villa", "radhus")
                    assert 1950 <= p["construction_year"] <= 1990
        assert total == int(want.fillna(False).sum())


def test_pyramid_and_on_the_fly_aggregation_agree(source):
    """Unfiltered tiles come from the precomputed pyramid, filtered ones from the tile's points;
    a filter that keeps everything must give the very same tile."""
    everything = Filters(construction_year_min=None, home_type=frozenset(source.home_types()))
    idx = source.data.points("WebMercatorQuad")
    codes = idx.codes
    for z in (3, 8, 12):
        from vggeo.tiles.index import DEPTH, demorton

        tiles = np.unique(codes >> np.uint64(2 * (DEPTH - z)))
        col, row = demorton(tiles)
        for x, y in list(zip(col.tolist(), row.tolist(), strict=True))[:10]:
            a = source.tile("residences", z, x, y)
            b = source.tile("residences", z, x, y, filters=everything)
            # Residences with no home type would be filtered out; the sample has none.
            assert a == b


def test_overflowing_tiles_cluster_instead_of_dropping(store):
    from vggeo.tiles.cluster import ClusterOptions

    src = open_source(store[0], options=ClusterOptions(max_points=50))
    lon, lat = _lonlat(store[1])
    total, clusters = 0, 0
    for x, y in _xyz_tiles(lon, lat, 15):
        for f in _features(src, 15, x, y):
            total += f["properties"].get("point_count", 1)
            clusters += bool(f["properties"].get("cluster"))
    assert clusters > 0 and total == len(store[1])


def test_sweref_grid_counts_add_up(source, store):
    residences = store[1]
    e, n = residences.geometry.x.to_numpy(), residences.geometry.y.to_numpy()
    for z in (0, 3, 8):
        size = 4096 * 256 / 2**z
        tiles = set(
            zip(
                ((e + 1_200_000) // size).astype(int).tolist(),
                ((8_500_000 - n) // size).astype(int).tolist(),
                strict=True,
            )
        )
        total = sum(
            f["properties"].get("point_count", 1)
            for x, y in tiles
            for f in _features(source, z, x, y, grid="SWEREF99TM")
        )
        assert total == len(residences)
