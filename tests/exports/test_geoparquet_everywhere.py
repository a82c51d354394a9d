"""Every Parquet file vggeo writes opens in the tools people use, and says the same thing there.

The writers: ``export parquet`` (residences; provisions in WGS 84), ``registry load -o``,
``registry fetch -o`` (against a local server speaking Valueguard's protocol), ``sample
registry -o``, ``read -o`` (a Lantmäteriet delivery), ``join -o`` and its ``--summary``, and the
shipped ``sample_data/registry/registry.parquet``. The readers, none of them vggeo:
``geopandas.read_parquet``, ``pandas.read_parquet``, ``pyarrow.parquet``, DuckDB with its spatial
extension (loaded from the ``duckdb-extension-spatial`` package: nothing is downloaded) and the
GeoParquet project's ``geoparquet-validator`` (Core, Bounding Box Covering and Cloud-Optimized
Distribution classes). Geometries are compared with the data the writer was given (the generator's
frames, the registry's own coordinate fields), never with vggeo reading its own output.
"""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pyproj
import pytest
import shapely
from click.testing import CliRunner

from vggeo.cli import cli

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "sample_data"


@dataclass
class Written:
    """One output file and what it must hold."""

    path: Path
    key: str  # a column identifying the source row
    truth: dict  # key → expected geometry (None for a missing one), from the writer's input
    epsg: int
    tolerance: float = 0.0


def _run(*args: str, env: dict | None = None):
    r = CliRunner().invoke(cli, [str(a) for a in args], env=env, catch_exceptions=False)
    assert r.exit_code == 0, r.output
    return r


def _registry_truth(frame: pd.DataFrame) -> dict:
    """id → the point its SWEREF 99 TM fields name (x = easting = sweref99y)."""
    x, y = frame["sweref99y"].to_numpy(float), frame["sweref99x"].to_numpy(float)
    pts = shapely.points(x, y)
    pts[np.isnan(x) | np.isnan(y)] = None
    return dict(zip(frame["id"].tolist(), pts, strict=True))


def _raw_records(frame) -> list[dict]:
    from vggeo.registry.readers import to_raw

    raw = to_raw(frame.drop(columns=["coord_source"]), number_as="list")
    return json.loads(raw.to_json(orient="records", force_ascii=False))


@pytest.fixture(scope="module")
def outputs(tmp_path_factory, store_gpkg, contract_tables) -> dict[str, Written]:
    from vggeo.registry.readers import write_registry
    from vggeo.sample.registry import generate_registry

    d = tmp_path_factory.mktemp("everywhere")
    res, prov = contract_tables["residences"], contract_tables["provisions"]
    res_truth = dict(zip(res["id"].tolist(), res.geometry.values, strict=True))
    prov_truth = dict(zip(prov["provision_id"].tolist(), prov.geometry.values, strict=True))
    out: dict[str, Written] = {}

    _run("export", "parquet", "--store", store_gpkg, "-o", d / "res.parquet")
    out["export residences"] = Written(d / "res.parquet", "id", res_truth, 3006)

    _run(
        "export",
        "parquet",
        "--store",
        store_gpkg,
        "-o",
        d / "prov84.parquet",
        "--layer",
        "provisions",
        "--crs",
        "wgs84",
    )
    to84 = pyproj.Transformer.from_crs(3006, 4326, always_xy=True)
    prov84 = {
        k: shapely.transform(g, lambda c: np.column_stack(to84.transform(c[:, 0], c[:, 1])))
        for k, g in prov_truth.items()
    }
    out["export provisions wgs84"] = Written(
        d / "prov84.parquet", "provision_id", prov84, 4326, tolerance=1e-9
    )

    reg = generate_registry(600, seed=21)
    write_registry(reg, d / "input.csv")
    _run("registry", "load", d / "input.csv", "-o", d / "loaded.parquet")
    out["registry load"] = Written(d / "loaded.parquet", "id", _registry_truth(reg), 3006)

    import sys

    sys.path.insert(0, str(ROOT / "tests" / "registry"))
    from vg_server import RegistryServer

    with RegistryServer(_raw_records(reg), username="u", password="pw-everywhere") as srv:
        env = {
            "VGGEO_VALUEGUARD_USERNAME": "u",
            "VGGEO_VALUEGUARD_PASSWORD": "pw-everywhere",
            "VGGEO_VALUEGUARD_BASE_URL": srv.url,
            "VGGEO_VALUEGUARD_PAGE_SIZE": "250",
        }
        _run("registry", "fetch", "-o", d / "fetched.parquet", "--no-progress", env=env)
    out["registry fetch"] = Written(d / "fetched.parquet", "id", _registry_truth(reg), 3006)

    _run("sample", "registry", "--n", "500", "--seed", "8", "-o", d / "sampled.parquet")
    out["sample registry"] = Written(
        d / "sampled.parquet", "id", _registry_truth(generate_registry(500, seed=8)), 3006
    )

    base = sorted((SAMPLE / "deliveries" / "bestammelse").glob("000_base_*.zip"))[0]
    _run("read", base, "-o", d / "read.parquet", "--no-progress")
    out["read delivery"] = Written(d / "read.parquet", "provision_id", {}, 3006)

    _run(
        "join",
        "--store",
        store_gpkg,
        "-o",
        d / "pairs.parquet",
        "--summary",
        d / "summary.parquet",
        "--no-progress",
    )
    out["join pairs"] = Written(d / "pairs.parquet", "residence_id", res_truth, 3006)
    out["join summary"] = Written(d / "summary.parquet", "provision_id", prov_truth, 3006)

    shipped = pd.read_parquet(SAMPLE / "registry" / "registry.parquet")
    out["shipped sample"] = Written(
        SAMPLE / "registry" / "registry.parquet", "id", _registry_truth(shipped), 3006
    )
    return out


NAMES = [
    "export residences",
    "export provisions wgs84",
    "registry load",
    "registry fetch",
    "sample registry",
    "read delivery",
    "join pairs",
    "join summary",
    "shipped sample",
]


def _same(a, b, tolerance: float) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return bool(shapely.equals_exact(a, b, tolerance=tolerance)) or (a.is_empty and b.is_empty)


def _check_geometries(w: Written, keys, geoms) -> None:
    if not w.truth:
        return
    keys = list(keys)
    assert set(keys) <= set(w.truth), f"{w.path.name}: rows the input did not have"
    bad = [k for k, g in zip(keys, geoms, strict=True) if not _same(g, w.truth[k], w.tolerance)]
    assert not bad, f"{w.path.name}: {len(bad)} geometries differ from the input, e.g. {bad[:3]}"


@pytest.mark.parametrize("name", NAMES)
def test_geopandas_reads_rows_crs_and_geometries(outputs, name):
    w = outputs[name]
    g = gpd.read_parquet(w.path)
    assert len(g) > 0 and g.crs.to_epsg() == w.epsg
    assert "bbox" not in g.columns  # GeoPandas knows the covering column for what it is
    _check_geometries(w, g[w.key], g.geometry.values)
    if w.truth and w.key != "residence_id":
        assert len(g) == len(w.truth)


@pytest.mark.parametrize("name", NAMES)
def test_pandas_reads_every_column(outputs, name):
    w = outputs[name]
    df = pd.read_parquet(w.path)
    assert len(df) == pq.ParquetFile(w.path).metadata.num_rows > 0
    if "number" in df.columns:  # the registry's list column: "data type not understood" before
        lists = df["number"].dropna()
        assert len(lists) and all(np.ndim(v) == 1 for v in lists)
    geo = json.loads(pq.read_schema(w.path).metadata[b"geo"])
    assert df[geo["primary_column"]].map(lambda v: v is None or isinstance(v, bytes)).all()


@pytest.mark.parametrize("name", NAMES)
def test_pyarrow_sees_geoparquet_1_1_with_a_bbox_covering(outputs, name):
    w = outputs[name]
    f = pq.ParquetFile(w.path)
    geo = json.loads(f.schema_arrow.metadata[b"geo"])
    assert geo["version"] == "1.1.0"
    col = geo["columns"][geo["primary_column"]]
    assert col["encoding"] == "WKB"
    assert col["crs"]["id"] == {"authority": "EPSG", "code": w.epsg}
    assert col["covering"] == {"bbox": {k: ["bbox", k] for k in ("xmin", "ymin", "xmax", "ymax")}}
    table = f.read()
    table.to_pandas()  # the pandas metadata parses (pandas 3 + pyarrow ≥ 26)
    wkb = np.asarray(table.column(geo["primary_column"]).to_pylist(), dtype=object)
    geoms = shapely.from_wkb(wkb)
    bbox = table.column("bbox")
    # The covering rule: the bbox is null exactly where the geometry is.
    assert (np.asarray(bbox.is_null()) == shapely.is_missing(geoms)).all()
    solid = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    got = np.column_stack(
        [
            bbox.combine_chunks().field(k).to_numpy(zero_copy_only=False)
            for k in ("xmin", "ymin", "xmax", "ymax")
        ]
    )
    assert np.array_equal(got[solid], shapely.bounds(geoms[solid]))
    assert col["bbox"] == pytest.approx(list(shapely.total_bounds(geoms[solid])))
    present = geoms[~shapely.is_missing(geoms)]
    assert sorted(col["geometry_types"]) == sorted({g.geom_type for g in present})


@pytest.fixture(scope="module")
def duck():
    """DuckDB with the spatial extension from its PyPI package; never downloaded at run time."""
    import duckdb
    import duckdb_extension_spatial

    ext = (
        Path(duckdb_extension_spatial.__file__).parent
        / "extensions"
        / f"v{duckdb.__version__}"
        / "spatial.duckdb_extension"
    )
    assert ext.exists(), f"duckdb-extension-spatial has no build for DuckDB {duckdb.__version__}"
    con = duckdb.connect(
        config={"autoinstall_known_extensions": False, "autoload_known_extensions": False}
    )
    con.execute(f"LOAD '{ext}'")
    yield con
    con.close()


@pytest.mark.parametrize("name", NAMES)
def test_duckdb_spatial_reads_geometries_crs_and_prunes_by_bbox(outputs, name, duck):
    w = outputs[name]
    src = str(w.path).replace("'", "''")
    kind = duck.execute(f"SELECT typeof(geometry) FROM read_parquet('{src}') LIMIT 1").fetchone()
    assert kind[0].startswith("GEOMETRY"), kind
    rows = duck.execute(
        f"SELECT {w.key}, ST_AsWKB(geometry), ST_CRS(geometry) FROM read_parquet('{src}')"
    ).fetchall()
    assert {r[2] for r in rows if r[1] is not None} == {f"EPSG:{w.epsg}"}
    geoms = shapely.from_wkb(
        np.asarray([None if r[1] is None else bytes(r[1]) for r in rows], dtype=object)
    )
    _check_geometries(w, [r[0] for r in rows], geoms)
    # A window over the south-west quarter: the covering columns answer what the geometries do.
    solid = geoms[~(shapely.is_missing(geoms) | shapely.is_empty(geoms))]
    x0, y0, x1, y1 = shapely.total_bounds(solid)
    window = (x0, y0, (x0 + x1) / 2, (y0 + y1) / 2)
    n = duck.execute(
        f"SELECT count(*) FROM read_parquet('{src}') WHERE bbox.xmin <= ? AND "
        "bbox.xmax >= ? AND bbox.ymin <= ? AND bbox.ymax >= ?",
        [window[2], window[0], window[3], window[1]],
    ).fetchone()[0]
    box = shapely.box(*window)
    expect = int((shapely.intersects(shapely.envelope(solid), box)).sum())
    assert n == expect and n > 0
    exact = duck.execute(
        f"SELECT count(*) FROM read_parquet('{src}') WHERE ST_Intersects("
        "ST_SetCRS(geometry, ''), ST_MakeEnvelope(?, ?, ?, ?))",
        list(window),
    ).fetchone()[0]
    assert exact == int(shapely.intersects(solid, box).sum())


@pytest.mark.parametrize("name", NAMES)
def test_geoparquet_validator_core_covering_and_distribution(outputs, name):
    import geoparquet_validator as gpv

    w = outputs[name]
    report = gpv.check(str(w.path))
    assert report["version"] == "1.1.0"
    assert gpv.failed(report) == [], [o for o in report["outcomes"] if o["status"] == "fail"]
    covering = [o for o in report["outcomes"] if o["id"].startswith("/conf/covering/")]
    assert covering and all(o["status"] == "pass" for o in covering)  # claimed, and met
    advice = {a["topic"]: a["level"] for a in report["advice"]}
    assert advice["compression"] == "good" and advice["bbox covering"] == "good"
    assert advice["row group size"] == "good"


@pytest.mark.parametrize("name", [n for n in NAMES if n != "shipped sample"])
def test_files_get_the_mode_of_any_new_file(outputs, name):
    mask = os.umask(0o022)
    os.umask(mask)
    assert (outputs[name].path.stat().st_mode & 0o777) == 0o666 & ~mask


def test_shipped_sample_is_world_readable_in_the_repository():
    assert (SAMPLE / "registry" / "registry.parquet").stat().st_mode & 0o444 == 0o444


def test_spatial_order_passes_the_distribution_class(tmp_path, contract_tables):
    """Hilbert-sorted rows in many row groups: the validator measures the pruning and passes it."""
    import geoparquet_validator as gpv

    from vggeo.exports import write_parquet

    path = tmp_path / "ordered.parquet"
    write_parquet(contract_tables["residences"], path, row_group_size=250)
    report = gpv.check(str(path))
    order = next(o for o in report["outcomes"] if o["id"] == "/conf/distribution/spatial-order")
    assert order["status"] == "pass", order
    assert {a["topic"]: a["level"] for a in report["advice"]}["spatial ordering"] == "good"


def test_a_mode_set_by_the_user_survives_a_rewrite(tmp_path, contract_tables):
    from vggeo.exports import write_parquet

    path = tmp_path / "shared.parquet"
    write_parquet(contract_tables["residences"], path)
    path.chmod(0o640)
    write_parquet(contract_tables["residences"], path, overwrite=True)
    assert path.stat().st_mode & 0o777 == 0o640


def test_a_frame_whose_every_geometry_is_missing_is_still_geoparquet(tmp_path):
    import geoparquet_validator as gpv

    from vggeo.exports import write_parquet

    frame = gpd.GeoDataFrame({"id": [1, 2]}, geometry=[None, None], crs=3006)
    path = tmp_path / "none.parquet"
    write_parquet(frame, path)
    report = gpv.check(str(path))
    # Core and Covering hold; Distribution's statistics need at least one geometry to describe.
    assert gpv.failed(report, "core") == [] and gpv.failed(report, "covering") == []
    back = gpd.read_parquet(path)
    assert back.geometry.isna().all() and back.crs.to_epsg() == 3006
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert len(pd.read_parquet(path)) == 2


def test_rows_keep_their_geometry_whatever_the_frame_index(tmp_path, contract_tables):
    """A filtered frame (index with gaps, out of order) is written row by row, not by label."""
    from vggeo.exports import write_parquet

    res = contract_tables["residences"]
    part = res.iloc[::-3]  # descending labels with gaps
    path = tmp_path / "part.parquet"
    assert write_parquet(part, path) == len(part)
    back = gpd.read_parquet(path).set_index("id")
    truth = part.set_index("id").geometry
    assert set(back.index) == set(truth.index)
    assert all(_same(back.geometry[k], truth[k], 0) for k in truth.index)
