"""GeoParquet 1.1 with a bbox covering column, rows in Hilbert order.

GeoPandas writes the file (``to_parquet(schema_version="1.1.0", write_covering_bbox=True)``):
the ``geo`` metadata names a ``bbox`` struct column as the geometry's *covering*, so readers
(DuckDB, GDAL, GeoPandas with ``bbox=``) can skip row groups by their min/max statistics. That only
pays off when nearby rows share row groups, so rows are first sorted along a Hilbert curve over
the layer's extent (``GeoSeries.hilbert_distance``) and written in modest row groups.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from vggeo.errors import InputError

__all__ = ["write_parquet", "hilbert_order", "ROW_GROUP_SIZE"]

#: Rows per row group: small enough that a bbox filter skips most of a national file.
ROW_GROUP_SIZE = 50_000


def hilbert_order(geometry) -> np.ndarray:
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
    frame,
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
        A GeoDataFrame (EPSG:3006 in the contract shape).
    crs
        Reproject to this system first (anything :func:`vggeo.crs.get_crs` accepts).
    overwrite
        Replace an existing file (otherwise refuse).

    Returns
    -------
    Number of rows written. The file appears only when complete (temporary file + rename).
    """
    from vggeo.crs import get_crs, transform_geoseries
    from vggeo.exports.gpkg import _plain_columns

    target = get_crs(crs) if crs is not None else None
    path = Path(path)
    if path.exists() and not overwrite:
        raise InputError(f"{path} exists; pass overwrite=True (CLI: --overwrite) to replace it")
    if target is not None:
        frame = transform_geoseries(frame, target.epsg)
    frame = frame.iloc[hilbert_order(frame.geometry)]
    frame = frame.reset_index(drop=True)
    frame = _arrow_lists_as_objects(frame)
    # Object columns mixing lists and scalars cannot be typed by Arrow: write those as text.
    frame = _plain_columns(frame) if _has_nested_objects(frame) else frame
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        frame.to_parquet(tmp, index=False, compression=compression, schema_version="1.1.0",
                         write_covering_bbox=True, row_group_size=row_group_size)  # fmt: skip
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return len(frame)


def _arrow_lists_as_objects(frame):
    """Arrow-backed list columns (``number``) as object columns of arrays.

    Parquet stores them as lists either way; but pandas cannot parse the dtype name
    ``list<item: int64>[pyarrow]`` that would be recorded in the pandas metadata, so GeoPandas
    could not read the file back.
    """
    lists = [c for c in frame.columns if isinstance(frame[c].dtype, pd.ArrowDtype)
             and pa.types.is_list(frame[c].dtype.pyarrow_dtype)]  # fmt: skip
    if lists:
        frame = frame.copy(deep=False)
        for col in lists:
            frame[col] = frame[col].to_numpy(dtype=object)
    return frame


def _has_nested_objects(frame: pd.DataFrame) -> bool:
    """Object columns mixing lists and scalars, which Arrow cannot type; plain lists are fine."""
    for col in frame.columns:
        s = frame[col]
        if s.dtype == object and col != frame.geometry.name:
            kinds = {type(v) for v in s.dropna().head(1000)}
            if len(kinds) > 1:
                return True
    return False
