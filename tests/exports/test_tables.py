"""vggeo.exports.tables and vggeo.join.join_store: the library behind ``vggeo join`` and ``vggeo read``.

Read back by GDAL (pyogrio) and pandas/pyarrow, never by vggeo's own readers.
"""

from __future__ import annotations

import geopandas as gpd
import pandas as pd
import pyarrow.parquet as pq
import pyogrio
import pytest
import shapely

from vggeo.errors import InputError, StoreError
from vggeo.exports.tables import write_gpkg_layers, write_table
from vggeo.frames import categoricals_as_text
from vggeo.join import join_store, residences_in


def _points() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"id": [1, 2, 3], "kind": pd.Categorical(["a", None, "b"])},
        geometry=shapely.points([(1, 2), (3, 4), (5, 6)]),
        crs=3006,
    )


def _polygons() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"pid": ["x", "y"]},
        crs=3006,
        geometry=[shapely.box(0, 0, 1, 1), shapely.MultiPolygon([shapely.box(2, 2, 3, 3)])],
    )


def test_categoricals_become_text_and_the_rest_is_shared():
    frame = _points()
    out = categoricals_as_text(frame)
    assert isinstance(out, gpd.GeoDataFrame) and out.crs == frame.crs
    assert out["kind"].dtype == "string" and out["kind"].isna().tolist() == [False, True, False]
    assert isinstance(frame["kind"].dtype, pd.CategoricalDtype)  # the input is left alone


def test_gpkg_layers_as_gdal_reads_them(tmp_path):
    path = tmp_path / "t.gpkg"
    counts = write_gpkg_layers(
        {"points": _points(), "areas": _polygons(), "attrs": pd.DataFrame({"n": [1, 2]})}, path
    )
    assert counts == {"points": 3, "areas": 2, "attrs": 2}
    layers = dict(pyogrio.list_layers(path).tolist())
    assert layers == {"points": "Point", "areas": "MultiPolygon", "attrs": None}
    info = pyogrio.read_info(path, layer="points")
    assert dict(zip(info["fields"], info["dtypes"], strict=True))["kind"] == "object"
    kinds = pyogrio.read_dataframe(path, layer="points")["kind"]
    assert kinds.iloc[[0, 2]].tolist() == ["a", "b"] and pd.isna(kinds.iloc[1])


def test_declared_geometry_type_promotes_single_parts(tmp_path):
    path = tmp_path / "m.gpkg"
    write_gpkg_layers({"areas": _polygons().iloc[:1]}, path, geometry_type="MultiPolygon")
    assert dict(pyogrio.list_layers(path).tolist()) == {"areas": "MultiPolygon"}


def test_write_table_by_extension(tmp_path):
    frame = _points()
    write_table(frame, tmp_path / "t.csv")
    csv = pd.read_csv(tmp_path / "t.csv")
    assert list(csv.columns) == ["id", "kind"] and csv["id"].tolist() == [1, 2, 3]
    write_table(frame, tmp_path / "t.parquet")
    meta = pq.read_schema(tmp_path / "t.parquet").metadata
    assert b"geo" in meta  # GeoParquet
    write_table(pd.DataFrame(frame.drop(columns="geometry")), tmp_path / "plain.parquet")
    assert pd.read_parquet(tmp_path / "plain.parquet")["id"].tolist() == [1, 2, 3]
    write_table(frame, tmp_path / "t.gpkg", layer="pairs", extra_layers={"summary": _polygons()})
    assert [n for n, _ in pyogrio.list_layers(tmp_path / "t.gpkg")] == ["pairs", "summary"]


def test_write_table_refuses_before_writing(tmp_path):
    with pytest.raises(InputError, match="extension"):
        write_table(_points(), tmp_path / "t.shp")
    target = tmp_path / "keep.csv"
    target.write_text("old\n")
    with pytest.raises(InputError, match="exists"):
        write_table(_points(), target, overwrite=False)
    assert target.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.csv"]


def test_join_store_equals_residences_in_with_geometries(store_gpkg, contract_tables):
    joined = join_store(store_gpkg, progress=False)
    plain = residences_in(contract_tables["residences"], contract_tables["provisions"])
    assert len(joined.pairs) == len(plain.pairs) > 0
    assert joined.pairs.crs.to_epsg() == 3006 and joined.summary.crs.to_epsg() == 3006
    res = contract_tables["residences"].set_index("id").geometry
    for rid, point in zip(joined.pairs["residence_id"], joined.pairs.geometry, strict=True):
        assert point.equals(res.loc[rid])
    prov = contract_tables["provisions"].set_index("provision_id").geometry
    for pid, area in zip(joined.summary["provision_id"], joined.summary.geometry, strict=True):
        assert area.equals(prov.loc[pid])
    line = joined.describe()
    assert line.startswith(f"{len(plain.pairs)} pairs: ") and line.endswith("(within)")
    assert f"of {len(contract_tables['provisions'])} provisions" in line


def test_join_store_refuses_bad_requests(store_gpkg, tmp_path):
    with pytest.raises(InputError, match="distance"):
        join_store(store_gpkg, predicate="dwithin")
    with pytest.raises(InputError, match="distance"):
        join_store(store_gpkg, distance=5.0)
    with pytest.raises(StoreError):
        join_store(tmp_path / "absent.gpkg")
    assert not (tmp_path / "absent.gpkg").exists()
