"""The one GeoParquet writer: GeoParquet 1.1, a ``bbox`` covering column, rows in Hilbert order.

Every Parquet file vggeo writes with a geometry goes through :func:`write_parquet`: ``vggeo export
parquet``, ``vggeo registry load|fetch -o x.parquet``, ``vggeo sample registry``, ``vggeo read``,
``vggeo join`` and the bundled ``sample_data/registry/registry.parquet``. What it writes:

* **GeoParquet 1.1.0** ``geo`` metadata: WKB encoding (ISO flavour), the geometry types present,
  the CRS as PROJJSON (with its EPSG id, so DuckDB and GDAL name it), the extent, and a ``bbox``
  struct column declared as the geometry's ``covering``. Readers (DuckDB, GDAL, GeoPandas with
  ``bbox=``) skip row groups and pages by the covering's min/max statistics.
* **Rows in Hilbert order** (``GeoSeries.hilbert_distance`` over the layer's extent), in modest row
  groups with a page index, so that nearby rows share row groups and the statistics prune: the
  distribution best practice of the GeoParquet guide.
* **pandas metadata pandas can read back**: nullable integers, text categoricals and dates return
  as written. Categoricals of integer codes (``type_code``, ``is_meter_address`` …) come back as
  their integers, not as categoricals: Parquet keeps a dictionary only for text, and pyarrow
  restores only those (``read_dictionary`` is for byte arrays); the values are exact. Arrow list
  columns (the registry's house ``number``) are recorded as ``object``, because pandas cannot
  parse the dtype name ``list<item: int64>[pyarrow]`` it would otherwise record
  ("data type not understood" in ``pandas.read_parquet``).

Why not ``GeoDataFrame.to_parquet``: GeoPandas (1.2) writes a non-null ``bbox`` struct of nulls
for a missing geometry, which breaks the covering rule that the bbox is null exactly where the
geometry is, and it records the unreadable list dtype above. The table is therefore assembled
with pyarrow here; the ``geo`` metadata is a small documented JSON object.

The file is written through :func:`vggeo.atomic.atomic_path`: complete or not at all, mode 0644
under the usual umask.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import shapely

from vggeo.atomic import atomic_path
from vggeo.crs import get_crs, transform_geoseries
from vggeo.errors import InputError
from vggeo.exports.gpkg import plain_columns

if TYPE_CHECKING:
    import geopandas as gpd
    import pyproj

__all__ = [
    "write_parquet",
    "geoparquet_table",
    "hilbert_order",
    "ROW_GROUP_SIZE",
    "GEOPARQUET_VERSION",
    "COVERING_COLUMN",
]

#: Rows per row group: small enough that a bbox filter skips most of a national file, well below
#: the 150 000-row ceiling of the GeoParquet distribution guide.
ROW_GROUP_SIZE = 50_000
GEOPARQUET_VERSION = "1.1.0"
#: Name of the bbox covering column (the name GeoPandas, GDAL and DuckDB use).
COVERING_COLUMN = "bbox"
_BBOX_FIELDS = ("xmin", "ymin", "xmax", "ymax")


def hilbert_order(geometry: gpd.GeoSeries) -> np.ndarray:
    """Row positions in Hilbert-curve order of the geometries' bbox centres; missing ones last."""
    gs = geometry
    missing = (gs.isna() | gs.is_empty).to_numpy()
    order = np.arange(len(gs))
    if (~missing).any():
        present = gs[~missing]
        dist = present.hilbert_distance(total_bounds=present.total_bounds, level=16).to_numpy()
        idx = np.flatnonzero(~missing)
        order = np.concatenate([idx[np.argsort(dist, kind="stable")], np.flatnonzero(missing)])
    return order


def write_parquet(
    frame: pd.DataFrame,
    path: str | os.PathLike,
    *,
    crs: str | int | None = None,
    overwrite: bool = False,
    row_group_size: int = ROW_GROUP_SIZE,
    compression: str = "zstd",
) -> int:
    """Write a GeoDataFrame as Hilbert-sorted GeoParquet 1.1 with a ``bbox`` covering column.

    Parameters
    ----------
    frame
        A GeoDataFrame (EPSG:3006 in the contract shape). Its row order is not kept: rows are
        written in Hilbert order, missing and empty geometries last.
    path
        The output file; it appears only when complete (temporary file + rename).
    crs
        Reproject to this system first (anything :func:`vggeo.crs.get_crs` accepts).
    overwrite
        Replace an existing file (otherwise refuse).
    row_group_size
        Rows per Parquet row group.
    compression
        Parquet codec (``zstd`` as the GeoParquet best practices recommend).

    Returns
    -------
    Number of rows written.

    Raises
    ------
    InputError
        ``path`` exists and ``overwrite`` is false, or ``frame`` has no geometry column.
    CRSError
        Unknown ``crs``.
    """
    target = get_crs(crs) if crs is not None else None  # an unknown CRS fails before writing
    path = Path(path)
    if path.exists() and not overwrite:
        raise InputError(
            f"{path} exists; pass overwrite=True (CLI: --overwrite) to replace it", file=str(path)
        )
    if target is not None:
        frame = transform_geoseries(frame, target.epsg)
    # The rows go out in Hilbert order row group by row group, taken from the table in the
    # frame's order: a sorted copy of a national frame (pandas, then Arrow) cost 2.6 GB and
    # most of the time of writing it (BENCHMARKS.md, registry).
    table = geoparquet_table(frame, sort=False)
    order = hilbert_order(frame.geometry)
    with (
        atomic_path(path, overwrite=overwrite) as tmp,
        pq.ParquetWriter(
            tmp,
            table.schema,
            compression=compression,
            write_statistics=True,
            write_page_index=True,
        ) as writer,
    ):
        # About a tenth of the rows per take, in whole row groups: each take on a column of
        # many chunks (a streamed read makes thousands) costs ~0.1 s at national scale whatever
        # it takes (113 takes of one row group were 24 s of a 46 s write; 13 takes, 13 s), and
        # a tenth bounds the memory of the taken part.
        step = row_group_size * max(1, -(-len(order) // (10 * row_group_size)))
        for start in range(0, max(len(order), 1), step):
            part = table.take(order[start : start + step])
            writer.write_table(part, row_group_size=row_group_size)
    return table.num_rows


def geoparquet_table(frame: gpd.GeoDataFrame, *, sort: bool = True) -> pa.Table:
    """The Arrow table :func:`write_parquet` writes: Hilbert-sorted rows (``sort=False``: the
    frame's order), WKB, bbox, metadata."""
    name = getattr(frame, "_geometry_column_name", None)
    if name is None or name not in frame.columns:
        raise InputError("GeoParquet needs a geometry column; the frame has none")
    if COVERING_COLUMN in frame.columns and COVERING_COLUMN != name:
        raise InputError(
            f"a column named {COVERING_COLUMN!r} would clash with the bbox covering",
            field=COVERING_COLUMN,
        )
    if sort:
        frame = frame.iloc[hilbert_order(frame.geometry)]
    geoms = np.asarray(frame.geometry.values, dtype=object)
    missing = shapely.is_missing(geoms)
    attrs = pd.DataFrame(frame.drop(columns=name))
    # Object columns mixing lists and scalars cannot be typed by Arrow: write those as text.
    if _has_nested_objects(attrs):
        attrs = plain_columns(attrs)
    # An array, not a Series: inserted by position whatever the frame's index.
    attrs.insert(frame.columns.get_loc(name), name, shapely.to_wkb(geoms, flavor="iso"))
    table = pa.Table.from_pandas(attrs, preserve_index=False)
    pos = table.schema.get_field_index(name)
    if table.schema.field(pos).type != pa.binary():  # all missing: Arrow inferred the null type
        table = table.set_column(
            pos, pa.field(name, pa.binary()), table.column(pos).cast(pa.binary())
        )
    bounds = shapely.bounds(geoms)  # (n, 4): xmin, ymin, xmax, ymax; NaN for missing and empty
    table = table.append_column(
        pa.field(COVERING_COLUMN, _bbox_type()), _bbox_array(bounds, missing)
    )
    metadata = dict(table.schema.metadata or {})
    if b"pandas" in metadata:
        metadata[b"pandas"] = _readable_pandas_metadata(metadata[b"pandas"], attrs)
    geo = _geo_metadata(frame, name, geoms, missing, bounds)
    metadata[b"geo"] = json.dumps(geo).encode("utf-8")
    return table.replace_schema_metadata(metadata)


def _bbox_type() -> pa.DataType:
    return pa.struct([pa.field(f, pa.float64()) for f in _BBOX_FIELDS])


def _bbox_array(bounds: np.ndarray, missing: np.ndarray) -> pa.StructArray:
    """Per-row bounds; null exactly where the geometry is null (the covering rule).

    An empty geometry has no extent: its bbox is a struct of nulls, so no range filter on the
    covering selects it (as no spatial predicate does).
    """
    children = [pa.array(bounds[:, i], pa.float64(), from_pandas=True) for i in range(4)]
    return pa.StructArray.from_arrays(children, fields=list(_bbox_type()), mask=pa.array(missing))


def _geo_metadata(
    frame: gpd.GeoDataFrame, name: str, geoms: np.ndarray, missing: np.ndarray, bounds: np.ndarray
) -> dict:
    """The ``geo`` file metadata of GeoParquet 1.1.0 for one WKB geometry column."""
    present = geoms[~missing]
    types = set(shapely.get_type_id(present).tolist()) if len(present) else set()
    names = {
        0: "Point",
        1: "LineString",
        2: "LineString",
        3: "Polygon",
        4: "MultiPoint",
        5: "MultiLineString",
        6: "MultiPolygon",
        7: "GeometryCollection",
    }
    has_z = bool(shapely.has_z(present).any()) if len(present) else False
    geometry_types = sorted({names[t] + (" Z" if has_z else "") for t in types})
    column: dict = {
        "encoding": "WKB",
        "geometry_types": geometry_types,
        "crs": _projjson(frame.crs),
    }
    solid = ~np.isnan(bounds[:, 0])  # neither missing nor empty
    if solid.any():
        b = bounds[solid]
        column["bbox"] = [
            float(b[:, 0].min()),
            float(b[:, 1].min()),
            float(b[:, 2].max()),
            float(b[:, 3].max()),
        ]
    column["covering"] = {COVERING_COLUMN: {f: [COVERING_COLUMN, f] for f in _BBOX_FIELDS}}
    return {"version": GEOPARQUET_VERSION, "primary_column": name, "columns": {name: column}}


def _projjson(crs: pyproj.CRS | None) -> dict | None:
    """The CRS as PROJJSON with its authority id; ``None`` (unknown) when the frame has none.

    Ids inside a datum ensemble's members are dropped: the PROJJSON schema the GeoParquet 1.1
    schema refers to does not allow them there (GeoPandas does the same).
    """
    if crs is None:
        return None
    doc = crs.to_json_dict()
    ensemble = doc.get("base_crs", doc).get("datum_ensemble") or doc.get("datum_ensemble")
    for member in (ensemble or {}).get("members", []):
        member.pop("id", None)
    epsg = crs.to_epsg()
    if "id" not in doc and epsg is not None:
        doc["id"] = {"authority": "EPSG", "code": int(epsg)}
    return doc


def _readable_pandas_metadata(raw: bytes, attrs: pd.DataFrame) -> bytes:
    """pandas metadata in which every dtype name is one pandas can parse when reading back."""
    meta = json.loads(raw)
    nested = {
        c
        for c in attrs.columns
        if isinstance(attrs[c].dtype, pd.ArrowDtype)
        and pa.types.is_nested(attrs[c].dtype.pyarrow_dtype)
    }
    for col in meta.get("columns", []):
        if col.get("name") in nested:
            col["numpy_type"] = "object"
    return json.dumps(meta).encode("utf-8")


def _has_nested_objects(frame: pd.DataFrame) -> bool:
    """Object columns mixing lists and scalars, which Arrow cannot type; plain lists are fine."""
    for col in frame.columns:
        s = frame[col]
        if s.dtype == object:
            kinds = {type(v) for v in s.dropna().head(1000)}
            if len(kinds) > 1:
                return True
    return False
