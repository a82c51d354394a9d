"""The real parts the other tests rely on are really there and really work."""

import psycopg
from system import gdal_json


def test_postgis_cluster_runs_postgis(postgis_url):
    with psycopg.connect(postgis_url) as conn:
        version = conn.execute("SELECT postgis_lib_version()").fetchone()[0]
        area = conn.execute(
            "SELECT ST_Area(ST_GeomFromText('POLYGON((0 0,2 0,2 3,0 3,0 0))', 3006))"
        ).fetchone()[0]
    assert version.split(".")[0] == "3"
    assert area == 6.0


def test_gdal_oracle_answers():
    out = gdal_json(
        "import json; from osgeo import ogr; "
        "g = ogr.CreateGeometryFromWkt('POINT (1 2)'); print(json.dumps(g.ExportToIsoWkt()))"
    )
    assert out == "POINT (1 2)"
