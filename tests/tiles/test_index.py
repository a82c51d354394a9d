"""Loading stores: GeoPackage and GeoParquet, clear errors, and no web framework in the library."""

import subprocess
import sys

import geopandas
import numpy as np
import pytest

from vggeo.errors import StoreError
from vggeo.tiles import open_source
from vggeo.tiles.backends.memory import load_store
from vggeo.tiles.index import demorton, morton


def test_geoparquet_residences_serve_like_the_geopackage(tmp_path, store, source):
    path = tmp_path / "res.parquet"
    store[1].to_parquet(path)
    pq = open_source(path)
    assert len(pq.data.residences) == len(store[1]) and len(pq.data.provision_geoms) == 0
    for z, x, y in [(0, 0, 0), (6, 35, 18), (9, 281, 150)]:
        assert pq.tile("residences", z, x, y) == source.tile("residences", z, x, y)


def test_store_errors_name_the_problem(tmp_path, store):
    with pytest.raises(StoreError, match="store not found"):
        load_store(tmp_path / "missing.gpkg")
    bad = tmp_path / "other.gpkg"
    geopandas.GeoDataFrame(
        {"a": [1]}, geometry=geopandas.points_from_xy([1], [2]), crs=3006
    ).to_file(bad, layer="something")
    with pytest.raises(StoreError, match="neither a 'residences' nor a 'provisions'"):
        load_store(bad)
    wrong_crs = tmp_path / "wgs.gpkg"
    store[1].head(5).to_crs(4326).to_file(wrong_crs, layer="residences")
    with pytest.raises(StoreError, match="EPSG:3006"):
        load_store(wrong_crs)


def test_morton_roundtrip():
    rng = np.random.default_rng(0)
    c, r = rng.integers(0, 2**28, 1000), rng.integers(0, 2**28, 1000)
    cc, rr = demorton(morton(c, r))
    assert (cc == c).all() and (rr == r).all()
    assert (
        int(morton(np.uint64(1), np.uint64(0))) == 1
        and int(morton(np.uint64(0), np.uint64(1))) == 2
    )


def test_library_never_imports_fastapi():
    code = (
        "import sys, vggeo, vggeo.tiles, vggeo.tiles.backends.memory, vggeo.tiles.backends.postgis, vggeo.tiles.backends.archive, "
        "vggeo.tiles.pmtiles, vggeo.tiles.basemap, vggeo.tiles.service, vggeo.cli; "
        "print('fastapi' in sys.modules or 'starlette' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_residence_id_may_be_the_geopackage_fid(tmp_path, store):
    import pyogrio

    path = tmp_path / "fid.gpkg"
    res = store[1].head(300)
    # GDAL's GPKG driver takes the values of a column named like the FID column as FIDs.
    pyogrio.write_dataframe(
        res.astype({"home_type": "string", "ownership_type": "string"}),
        path,
        layer="residences",
        layer_options={"FID": "id"},
    )
    assert pyogrio.read_info(path, layer="residences")["fid_column"] == "id"
    data = load_store(path)
    assert sorted(data.residences["id"]) == sorted(res["id"])
