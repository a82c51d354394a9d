"""GeoParquet 1.1: metadata read with pyarrow, Hilbert order, bbox covering, round trip."""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pyarrow.parquet as pq
import pytest
import shapely
from click.testing import CliRunner

from vggeo.cli import cli
from vggeo.exports import write_parquet
from vggeo.exports.parquet import hilbert_order


@pytest.fixture(scope="module")
def written(tmp_path_factory, contract_tables):
    path = tmp_path_factory.mktemp("pq") / "res.parquet"
    n = write_parquet(contract_tables["residences"], path, row_group_size=500)
    return path, n


def test_geo_metadata_is_geoparquet_1_1_with_bbox_covering(written, contract_tables):
    path, n = written
    assert n == len(contract_tables["residences"])
    meta = pq.read_schema(path).metadata
    geo = json.loads(meta[b"geo"])
    assert geo["version"] == "1.1.0"
    col = geo["columns"][geo["primary_column"]]
    assert col["encoding"] == "WKB"
    assert col["covering"] == {
        "bbox": {
            "xmin": ["bbox", "xmin"],
            "ymin": ["bbox", "ymin"],
            "xmax": ["bbox", "xmax"],
            "ymax": ["bbox", "ymax"],
        }
    }
    assert col["crs"]["id"] == {"authority": "EPSG", "code": 3006}
    schema = pq.read_schema(path)
    assert [f.name for f in schema.field("bbox").type] == ["xmin", "ymin", "xmax", "ymax"]


def test_round_trip_and_order(written, contract_tables):
    path, _ = written
    res = contract_tables["residences"]
    back = gpd.read_parquet(path)
    assert back.crs.to_epsg() == 3006
    assert sorted(back.columns) == sorted(res.columns)
    a = back.set_index("id").sort_index()
    b = res.set_index("id").sort_index()
    assert a["home_type"].astype(str).equals(b["home_type"].astype(str))
    assert a["rooms"].equals(b["rooms"])
    assert (
        shapely.equals_exact(a.geometry.array, b.geometry.array, tolerance=0).sum()
        == b.geometry.notna().sum()
    )
    # Hilbert order: distances along the curve never decrease; missing geometries last.
    present = back.geometry.notna().to_numpy()
    assert not present[present.argmin() :].any() or present.all()
    d = (
        back.geometry[present]
        .hilbert_distance(total_bounds=back.geometry[present].total_bounds)
        .to_numpy()
    )
    assert (np.diff(d) >= 0).all()


def test_row_group_statistics_let_readers_skip(written):
    path, _ = written
    f = pq.ParquetFile(path)
    assert f.num_row_groups >= 5
    # Sorted rows → row groups cover small, mostly disjoint areas: their bbox statistics prune.
    idx = f.schema_arrow.get_field_index("bbox")
    assert idx >= 0
    areas = []
    for i in range(f.num_row_groups):
        rg = f.metadata.row_group(i)
        stats = {
            rg.column(j).path_in_schema: rg.column(j).statistics for j in range(rg.num_columns)
        }
        xmin, xmax = stats["bbox.xmin"].min, stats["bbox.xmax"].max
        ymin, ymax = stats["bbox.ymin"].min, stats["bbox.ymax"].max
        areas.append((xmax - xmin) * (ymax - ymin))
    total = gpd.read_parquet(path).total_bounds
    total_area = (total[2] - total[0]) * (total[3] - total[1])
    assert np.median(areas) < 0.25 * total_area
    # A bbox read returns exactly the points inside.
    box = (total[0], total[1], (total[0] + total[2]) / 2, (total[1] + total[3]) / 2)
    sub = gpd.read_parquet(path, bbox=box)
    full = gpd.read_parquet(path)
    expect = full[full.geometry.intersects(shapely.box(*box))]
    assert set(sub["id"]) == set(expect["id"]) and len(sub) > 0


def test_hilbert_order_puts_missing_last(contract_tables):
    g = contract_tables["residences"].geometry
    order = hilbert_order(g)
    assert sorted(order) == list(range(len(g)))
    assert g.iloc[order].isna().to_numpy()[-g.isna().sum() :].all()


def test_cli_parquet_with_crs(tmp_path, store_gpkg, contract_tables):
    out = tmp_path / "prov.parquet"
    r = CliRunner().invoke(
        cli,
        [
            "export",
            "parquet",
            "--store",
            str(store_gpkg),
            "-o",
            str(out),
            "--layer",
            "provisions",
            "--crs",
            "wgs84",
        ],
    )
    assert r.exit_code == 0, r.output
    back = gpd.read_parquet(out)
    assert back.crs.to_epsg() == 4326 and len(back) == len(contract_tables["provisions"])
    assert json.loads(pq.read_schema(out).metadata[b"geo"])["version"] == "1.1.0"
    r = CliRunner().invoke(
        cli,
        [
            "export",
            "parquet",
            "--store",
            str(store_gpkg),
            "-o",
            str(tmp_path / "x.parquet"),
            "--crs",
            "nowhere",
        ],
    )
    assert r.exit_code == 2 and "unknown coordinate reference system" in r.output
    assert not (tmp_path / "x.parquet").exists()


def test_registry_fields_round_trip(tmp_path):
    """Every Valueguard field, including the list column ``number``, survives the round trip."""
    from vggeo.sample.registry import generate_registry

    reg = generate_registry(500, seed=5)
    path = tmp_path / "reg.parquet"
    write_parquet(reg, path)
    back = gpd.read_parquet(path).set_index("id").loc[reg["id"]]
    assert [list(v) if v is not None else None for v in back["number"]] == [
        list(v) if v is not None else None for v in reg["number"].tolist()
    ]
    assert (back["updated_at"].to_numpy() == reg["updated_at"].to_numpy()).all()
    assert back["home_type"].astype(str).tolist() == reg["home_type"].astype(str).tolist()
    assert shapely.equals_exact(back.geometry.array, reg.geometry.array, tolerance=0).all()
