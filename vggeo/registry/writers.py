"""Writers of the canonical registry frame: GeoParquet, GeoPackage, CSV, JSON lines.

Every writer goes to a temporary file beside the target and renames it into place only when
complete (:func:`vggeo.atomic.atomic_path`), so an error or Ctrl-C never leaves a half-written
output. GeoParquet is written by vggeo's one GeoParquet writer
(:func:`vggeo.exports.parquet.write_parquet`: GeoParquet 1.1, bbox covering, Hilbert order), so
a registry file opens in GeoPandas, pandas, DuckDB and GDAL like every other vggeo output. The
GeoPackage, CSV and JSON-lines writers convert and write in batches, so writing the national
registry does not need a second copy of it in memory.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyogrio.raw
import shapely

from vggeo.atomic import atomic_path
from vggeo.errors import ParseError
from vggeo.exports.parquet import write_parquet

__all__ = [
    "write_registry",
    "write_rejects",
    "update_rejects",
    "save_rejects",
    "default_rejects_path",
    "to_raw",
    "FORMATS",
]

#: Output/input format by file extension.
FORMATS = {
    ".parquet": "parquet",
    ".geoparquet": "parquet",
    ".gpkg": "gpkg",
    ".csv": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
}


def _arrow_array(s: pd.Series) -> pa.Array:
    """One contiguous Arrow array of an Arrow-backed Series (readers may give several chunks)."""
    arr = pa.array(s.array) if not hasattr(s.array, "_pa_array") else s.array._pa_array
    return arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr


#: Columns derived from the fields (see :mod:`vggeo.registry.fields`) that are not Valueguard's.
_DERIVED_FIELDS = ("kommunkod", "construction_year_placeholder")


def to_raw(gdf: pd.DataFrame, *, number_as: str = "list", derived: bool = True) -> pd.DataFrame:
    """The canonical frame back in Valueguard's raw shape (codes as values, dates as text).

    ``number_as``: ``"list"`` (Python lists, for JSON), ``"text"`` (``"[1, 3, None]"``, as
    pandas writes a list to CSV) or ``"json"`` (``"[1,3,null]"``, for GeoPackage).
    ``derived=False`` leaves out ``kommunkod`` and ``construction_year_placeholder`` (the API's
    own shape; readers derive them again).
    """
    out = {}
    for c in gdf.columns:
        if c == "geometry" or (
            hasattr(gdf, "geometry") and c == getattr(gdf.geometry, "name", None)
        ):
            continue
        if not derived and c in _DERIVED_FIELDS:
            continue
        s = gdf[c]
        if isinstance(s.dtype, pd.CategoricalDtype):
            cats = s.cat.categories
            if pd.api.types.is_integer_dtype(cats.dtype):
                vals = np.where(
                    s.cat.codes.to_numpy() < 0,
                    0,
                    cats.to_numpy()[np.maximum(s.cat.codes.to_numpy(), 0)],
                )
                s = pd.Series(
                    pd.arrays.IntegerArray(vals.astype(np.int64), s.cat.codes.to_numpy() < 0),
                    index=s.index,
                )
            else:
                s = s.astype("string")
        elif pd.api.types.is_datetime64_any_dtype(s.dtype):
            s = s.dt.strftime("%Y-%m-%d").astype("string")
        elif c == "number" or (isinstance(s.dtype, pd.ArrowDtype) and "list" in str(s.dtype)):
            s = _number_out(s, number_as)
        out[c] = s
    return pd.DataFrame(out, index=gdf.index)


def _number_out(s: pd.Series, how: str) -> pd.Series:
    arr = _arrow_array(s)
    if how == "list":
        return pd.Series(arr.to_pylist(), index=s.index, dtype=object)
    null_txt = "None" if how == "text" else "null"
    sep = ", " if how == "text" else ","
    flat = pc.cast(pc.list_flatten(arr), pa.string())
    flat = pc.fill_null(flat, null_txt)
    lists = pa.ListArray.from_arrays(arr.offsets, flat, mask=arr.is_null())
    joined = pc.binary_join(lists, sep)
    text = pc.binary_join_element_wise("[", joined, "]", "")
    return pd.Series(pd.array(text, dtype="string"), index=s.index)


def write_registry(
    gdf: pd.DataFrame, path: str | os.PathLike, *, overwrite: bool = True, layer: str = "residences"
) -> Path:
    """Write the canonical frame; the extension chooses the format (atomically).

    ``.parquet`` GeoParquet 1.1 (types kept: categoricals, lists, dates; rows in Hilbert order,
    see :func:`vggeo.exports.parquet.write_parquet`); ``.gpkg`` GeoPackage via
    pyogrio (codes as integers/text, ``number`` as JSON text); ``.csv`` raw fields plus
    ``coord_source`` (``number`` as ``[1, 3, None]``, as pandas writes lists); ``.jsonl`` one raw
    residence per line, as the API delivers them.
    """
    path = Path(path)
    fmt = FORMATS.get(path.suffix.lower())
    if fmt not in ("parquet", "gpkg", "csv", "jsonl"):
        raise ParseError(
            f"cannot write {path.suffix!r}; use .parquet, .gpkg, .csv or .jsonl", file=str(path)
        )
    if fmt == "parquet":
        write_parquet(gdf, path, overwrite=overwrite)
        return path
    with atomic_path(path, overwrite=overwrite) as tmp:
        if fmt == "gpkg":
            # Streamed in batches through pyogrio's Arrow writer: one layer, one spatial index,
            # and only one batch of converted columns in memory at a time.
            reader = _batch_reader(gdf, number_as="json", geometry=True, json=("number",))
            # GeoPackage 1.3: what GDAL 3.6 (Debian 12, its QGIS, validate_gpkg.py) reads fully.
            pyogrio.raw.write_arrow(
                reader,
                tmp,
                layer=layer,
                driver="GPKG",
                geometry_name="geometry",
                geometry_type="Point",
                crs="EPSG:3006",
                dataset_options={"VERSION": "1.3"},
            )
        elif fmt == "csv":
            reader = _batch_reader(gdf, number_as="text", geometry=False)
            with pcsv.CSVWriter(tmp, reader.schema) as w:
                for batch in reader:
                    w.write_batch(batch)
        else:
            with open(tmp, "w", encoding="utf-8") as fh:
                for start in range(0, len(gdf), _BATCH_ROWS):
                    raw = to_raw(
                        gdf.iloc[start : start + _BATCH_ROWS], number_as="list", derived=False
                    )
                    text = raw.to_json(orient="records", lines=True, force_ascii=False)
                    fh.write(text if text.endswith("\n") else text + "\n")
    return path


def write_rejects(
    rejects: pd.DataFrame, path: str | os.PathLike, *, overwrite: bool = True
) -> Path:
    """Write a rejects table (see :data:`vggeo.registry.canonical.REJECT_COLUMNS`), atomically.

    ``.csv`` (default for anything else), ``.jsonl`` (one reject per line) or ``.parquet``.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    with atomic_path(path, overwrite=overwrite) as tmp:
        if suffix in (".jsonl", ".ndjson"):
            text = rejects.to_json(orient="records", lines=True, force_ascii=False)
            tmp.write_text(
                text if not text or text.endswith("\n") else text + "\n", encoding="utf-8"
            )
        elif suffix in (".parquet", ".geoparquet"):
            pd.DataFrame(rejects).to_parquet(tmp, index=False)
        else:
            rejects.to_csv(tmp, index=False, encoding="utf-8")
    return path


def update_rejects(rejects: pd.DataFrame, path: str | os.PathLike) -> Path | None:
    """Keep the rejects file nobody named explicitly up to date; never an empty one unasked.

    Written when there are rejects, or replaced when an earlier run left one at ``path`` (so
    it never describes another input); otherwise nothing is written and ``None`` returned.
    """
    if len(rejects) or Path(path).exists():
        return write_rejects(rejects, path)
    return None


def default_rejects_path(
    output: str | os.PathLike | None, source: str | os.PathLike | None = None
) -> Path:
    """Where the rejects go unless named: ``<output name>.rejects.csv`` beside the output, else
    (rows loaded into a store only) ``<source name>.rejects.csv`` in the working folder."""
    if output is not None:
        return Path(output).with_name(f"{Path(output).stem}.rejects.csv")
    return Path(f"{Path(source).stem if source else 'registry'}.rejects.csv")


def save_rejects(rejects: pd.DataFrame, path: str | os.PathLike, *, explicit: bool) -> Path | None:
    """The rejects where the user named them (always written, :func:`write_rejects`), or at the
    default place (:func:`update_rejects`: never an empty file unasked); the path written or
    None."""
    return write_rejects(rejects, path) if explicit else update_rejects(rejects, path)


#: Rows converted at a time by the streaming writers.
_BATCH_ROWS = 500_000


#: Arrow field metadata GDAL writes as a JSON column (GeoPackage: ``mime_type
#: application/json`` in ``gpkg_data_columns``), as ``vggeo export gpkg`` marks ``number``.
_JSON_FIELD = {b"GDAL:OGR:subtype": b"JSON"}


def _batch_reader(
    gdf: pd.DataFrame, *, number_as: str, geometry: bool, json: tuple[str, ...] = ()
) -> pa.RecordBatchReader:
    """An Arrow RecordBatchReader over the frame's raw form, converted batch by batch; the
    ``json`` columns (text) marked as JSON for GDAL."""

    def convert(part: pd.DataFrame) -> pa.Table:
        raw = to_raw(part, number_as=number_as)
        if geometry:
            geoms = np.asarray(part.geometry.values)
            raw["geometry"] = shapely.to_wkb(geoms)  # None stays None
        return pa.Table.from_pandas(raw, preserve_index=False)

    first = convert(gdf.iloc[:_BATCH_ROWS])
    schema = pa.schema(
        [f.with_metadata(_JSON_FIELD) if f.name in json else f for f in first.schema],
        metadata=first.schema.metadata,
    )
    first = first.cast(schema)

    def batches() -> Iterator[pa.RecordBatch]:
        yield from first.to_batches()
        for start in range(_BATCH_ROWS, len(gdf), _BATCH_ROWS):
            yield from convert(gdf.iloc[start : start + _BATCH_ROWS]).cast(schema).to_batches()

    return pa.RecordBatchReader.from_batches(schema, batches())
