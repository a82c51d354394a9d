"""A QGIS-ready GeoPackage: every table a layer, styled, documented and related.

What :func:`write_gpkg` writes, beyond the features:

* **Layers**: ``residences`` (Point), ``provisions`` (MultiPolygon) and one
  ``provisions_<type>`` layer per provision type present, ``affected_properties`` and
  ``decisions`` (attribute tables), and the inskrivning tables when the store has them. Spatial
  layers get GeoPackage R-tree indexes; codes get a readable ``*_label`` column beside them.
* **Field documentation** in ``gpkg_data_columns`` (the GeoPackage schema extension): an alias
  (``name``/``title``) and a description per known column.
* **Default styles** in ``layer_styles`` — the table QGIS writes for *Save as default* and reads
  when it opens a layer — with QML (applied by QGIS) and SLD (for other clients).
* **Relations** provisions → affected properties and provisions → decisions, twice: as SQLite
  foreign keys (GDAL ≥ 3.6 reports them as relationships; QGIS ≥ 3.28 discovers them) and as QGIS
  relations inside the styles (QGIS resolves them by layer name when both layers are loaded).

Rows are streamed (:func:`export_store_gpkg`): each layer is read from the store, converted and
handed to GDAL in batches of a bounded number of rows, as one Arrow stream per layer, so the
national registry (5.6 M homes, 52 columns) is exported in about the memory of a few batches
rather than of the whole table; GDAL builds each R-tree once, after the layer's last row. What the
styles and relations need of the data (the values present, key checks) is gathered on the way
or asked of the file being written in SQL, never by keeping rows.

From a GeoPackage store exported in its own CRS (EPSG:3006), layers are not read as frames at
all: SQLite copies the rows from the attached store into the layer GDAL created
(:mod:`vggeo.exports.gpkg_copy`): the same file, without the read through GDAL that cost the
streamed route most of its time (benchmarks/export.md); a layer the copy cannot prove the same
for takes the streamed route.

Writing goes to a temporary file beside the output that replaces it only when complete, so an
error or Ctrl-C leaves any existing file untouched and nothing half-written.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import re
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import closing
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyogrio
import shapely
from tqdm.auto import tqdm

from vggeo.atomic import atomic_path
from vggeo.crs import get_crs, transform_geoseries
from vggeo.errors import InputError, SchemaError, StoreError
from vggeo.exports import gpkg_copy as gc
from vggeo.exports import styles as st
from vggeo.exports.qgis_project import write_project
from vggeo.exports.source import (
    BATCH_ROWS,
    StoreSource,
    TableSource,
    as_source,
    open_store_sources,
    value_counts,
)
from vggeo.frames import categorical_as_text, categoricals_as_text
from vggeo.lm import inskrivning
from vggeo.store.base import quote_ident
from vggeo.store.gpkg import GeoPackageStore, register_functions
from vggeo.store.schema import SRID

if TYPE_CHECKING:
    from tqdm import tqdm as Bar

log = logging.getLogger(__name__)
T = TypeVar("T")

__all__ = [
    "export_layers",
    "export_store_gpkg",
    "write_gpkg",
    "normalise_datetimes",
    "plain_columns",
    "INSKRIVNING_TABLES",
    "EXPORT_TABLES",
    "TYPE_LABELS",
    "TYPE_CODE_LABELS",
]

#: Inskrivning tables exported as attribute tables when present: the reader's tables, in the
#: order of docs/contracts.md.
INSKRIVNING_TABLES = inskrivning.TABLES
ATTRIBUTE_TABLES = ("affected_properties", "decisions", *INSKRIVNING_TABLES)
#: Every store table an export may write.
EXPORT_TABLES = ("residences", "provisions", *ATTRIBUTE_TABLES)

#: provision_type code → readable label (the ``provision_type_label`` column).
TYPE_LABELS = {
    "plan": "Plan",
    "naturvardsbestammelse": "Naturvårdsbestämmelse",
    "ovrig_bestammelse": "Övrig bestämmelse",
    "mineralrattighet": "Mineralrättighet",
    "utredning": "Utredning",
    "fornlamning": "Fornlämning",
}

#: Valueguard ``type_code`` (taxation unit type) → label, from Valueguard's field list.
TYPE_CODE_LABELS = {
    113: "farm unit (building value < 50000 SEK)",
    120: "farm unit (built-up)",
    213: "house (building value < 50000 SEK)",
    220: "house (built-up)",
    221: "house (cottage)",
    222: "house (3 or more residence buildings)",
    320: "rental (residences)",
    321: "rental (residences & local places)",
    325: "rental (local places)",
    823: "special unit",
}

#: Relations child.child_field → parent.parent_field (written as FKs and QGIS relations).
RELATIONS = (
    st.RelationSpec(
        "provisions_affected_properties",
        "Affected properties (berörkrets)",
        "provisions",
        "provision_id",
        "affected_properties",
        "provision_id",
    ),
    st.RelationSpec(
        "provisions_decisions",
        "Decisions",
        "provisions",
        "provision_id",
        "decisions",
        "provision_id",
    ),
)


def export_layers(tables: Mapping[str, pd.DataFrame | TableSource]) -> list[str]:
    """The layer names a GeoPackage export of these tables can contain, in output order."""
    return [p.name for p in _layer_plans({n: as_source(t) for n, t in tables.items()})]


def _ordered_types(present: Iterable[str]) -> list[str]:
    present = set(present)
    return [t for t in TYPE_LABELS if t in present] + sorted(present - set(TYPE_LABELS))


def _select_layers(available: list[str], layers: Iterable[str] | None) -> list[str]:
    if layers is None:
        return available
    wanted = [x.strip() for x in layers if x.strip()]
    unknown = [x for x in wanted if x not in available]
    if unknown:
        raise InputError(
            f"unknown layer(s) {', '.join(unknown)}; available: {', '.join(available) or 'none'}",
            field="layers",
        )
    if not wanted:
        raise InputError("no layers selected", field="layers")
    return list(dict.fromkeys(wanted))


# --- column preparation --------------------------------------------------------------------------


def _is_listlike(v: object) -> bool:
    return isinstance(v, (list, tuple, np.ndarray))


def plain_columns(df: pd.DataFrame) -> pd.DataFrame:
    """Columns GeoPackage can hold: categoricals as text, lists as Arrow lists (JSON in GPKG)."""
    out = categoricals_as_text(df)  # a shallow copy: columns are replaced, never modified
    for col in out.columns:
        if col == getattr(out, "_geometry_column_name", None):
            continue
        s = out[col]
        if s.dtype == object:
            # Lists in object columns (Arrow-backed list columns are written natively, as JSON).
            sample = s.dropna().head(1000)
            if len(sample) and sample.map(_is_listlike).any():
                out[col] = _as_arrow_list(s)
    return out


def _as_arrow_list(s: pd.Series) -> pd.Series:
    """An object column of lists as an Arrow list column, which GDAL writes as JSON text
    (``gpkg_data_columns.mime_type = application/json``); mixed content as JSON strings."""

    values = [
        None
        if v is None or (not _is_listlike(v) and pd.isna(v))
        else (list(v) if _is_listlike(v) else v)
        for v in s.tolist()
    ]
    try:
        arr = pa.array(values)
        if pa.types.is_list(arr.type) or pa.types.is_large_list(arr.type):
            return pd.Series(pd.arrays.ArrowExtensionArray(arr), index=s.index)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        pass
    text = [None if v is None else json.dumps(v, default=str) for v in values]
    return pd.Series(text, index=s.index, dtype="string")


def _with_label(df: pd.DataFrame, col: str, labels: Mapping, label_col: str) -> pd.DataFrame:
    if col not in df.columns:
        return df
    # Codes arrive as integers or as categorical/text ("320"): look both up by their text.
    by_text = {str(k): v for k, v in labels.items()}
    values = df[col]
    if isinstance(values.dtype, pd.CategoricalDtype):
        # Not astype("string"): integer categories with a missing value would read "320.0".
        text = categorical_as_text(values)
    elif pd.api.types.is_numeric_dtype(values):
        text = pd.Series(pd.array(values, dtype="Int64"), index=df.index).astype("string")
    else:
        text = values.astype("string")
    mapped = text.map(by_text)
    pos = df.columns.get_loc(col) + 1
    df = df.copy(deep=False)
    df.insert(pos, label_col, mapped.astype("string"))
    return df


# --- what to write -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _LayerPlan:
    """One output layer: the table it comes from, an optional filter, the rows it must get."""

    name: str
    table: str
    equals: tuple[str, str] | None
    rows: int


@dataclass
class _Written:
    """What the writer learnt about a layer while streaming it: counts and style facts only."""

    name: str
    rows: int = 0
    columns: list[str] = field(default_factory=list)
    geometry: str | None = None  # "Point", "MultiPolygon" or None (attribute table)
    home_types: set[str] = field(default_factory=set)
    type_status: set[tuple[str, str]] = field(default_factory=set)
    #: Columns written as text marked DateTime (values Arrow cannot hold as UTC instants); only
    #: these need :func:`normalise_datetimes` afterwards.
    text_datetimes: set[str] = field(default_factory=set)
    #: Rows converted so far (the FID of a batch's first row is this plus one).
    converted: int = 0
    #: Column → (FID, value) of the times GDAL's Arrow writer gets wrong (see
    #: :func:`_gdal_minute_slips`), rewritten after the layer is written.
    fixups: dict[str, list[tuple[int, str]]] = field(default_factory=dict)


def _layer_plans(sources: Mapping[str, TableSource]) -> list[_LayerPlan]:
    plans: list[_LayerPlan] = []
    if "residences" in sources:
        plans.append(_LayerPlan("residences", "residences", None, len(sources["residences"])))
    if "provisions" in sources:
        prov = sources["provisions"]
        plans.append(_LayerPlan("provisions", "provisions", None, len(prov)))
        counts = value_counts(prov, "provision_type")
        plans += [
            _LayerPlan(f"provisions_{t}", "provisions", ("provision_type", t), counts[t])
            for t in _ordered_types(counts)
        ]
    plans += [_LayerPlan(t, t, None, len(sources[t])) for t in ATTRIBUTE_TABLES if t in sources]
    return plans


def _prepare_batch(name: str, batch: pd.DataFrame, crs_epsg: int) -> pd.DataFrame:
    """One batch of a layer as written: target CRS, ``*_label`` columns, GeoPackage-able types."""

    if name == "residences":
        batch = transform_geoseries(batch, crs_epsg) if batch.crs is not None else batch
        batch = _with_label(batch, "type_code", TYPE_CODE_LABELS, "type_code_label")
    elif name == "provisions" or name.startswith("provisions_"):
        batch = transform_geoseries(batch, crs_epsg) if batch.crs is not None else batch
        batch = _with_label(batch, "provision_type", TYPE_LABELS, "provision_type_label")
    else:
        batch = pd.DataFrame(batch)
    return plain_columns(batch)


# --- writing -----------------------------------------------------------------------------------


def write_gpkg(
    tables: Mapping[str, pd.DataFrame | TableSource],
    path: str | os.PathLike,
    *,
    crs: str | int = "EPSG:3006",
    layers: Iterable[str] | None = None,
    overwrite: bool = False,
    progress: bool = False,
    batch_size: int = BATCH_ROWS,
) -> dict[str, int]:
    """Write the contract tables as a styled, documented GeoPackage for QGIS.

    The rows are streamed: each layer is read, converted and written in batches of at most
    ``batch_size`` rows, through one GDAL dataset per layer (one Arrow stream, the R-tree built
    once at the end), so memory stays bounded whatever the table's size when the tables are
    :class:`~vggeo.exports.source.TableSource` objects (:func:`export_store_gpkg` streams a
    store that way). Frames in memory are written from slices, without copies.

    Parameters
    ----------
    tables
        Table name → (Geo)DataFrame or :class:`~vggeo.exports.source.TableSource` in the contract
        shape (``residences``, ``provisions``, ``affected_properties``, ``decisions``,
        inskrivning tables); spatial tables in EPSG:3006.
    path
        Output ``.gpkg``; replaced atomically when the export is complete.
    crs
        Output coordinate system: anything :func:`vggeo.crs.get_crs` accepts (SWEREF 99 TM, a
        local SWEREF 99 zone, RT 90, WGS 84 …).
    layers
        Layer names to write (default: all, see :func:`export_layers`).
    overwrite
        Replace an existing file (otherwise refuse).
    progress
        Show a progress bar (rows written, over all layers).
    batch_size
        Rows per batch for frames given in memory (sources carry their own).

    Returns
    -------
    dict of layer name → number of features written.

    Raises
    ------
    CRSError
        Unknown coordinate system.
    InputError
        Unknown layer names, or an existing output without ``overwrite``.
    StoreError
        Nothing to export (no residences or provisions), or a source that changed while it was
        being written (nothing is written then).
    """

    target = get_crs(crs)  # an unknown CRS fails here, before anything is written
    path = Path(path)
    if path.exists() and not overwrite:
        raise InputError(f"{path} exists; pass overwrite=True (CLI: --overwrite) to replace it")
    sources = {name: as_source(t, batch_size) for name, t in tables.items()}
    plans = _layer_plans(sources)
    if not plans:
        raise StoreError(
            "nothing to export: no residences, provisions or related tables "
            f"(got: {', '.join(tables) or 'none'})"
        )
    names = _select_layers([p.name for p in plans], layers)
    plans = sorted((p for p in plans if p.name in names), key=lambda p: names.index(p.name))
    relations = [r for r in RELATIONS if r.parent in names and r.child in names]
    fk_children = {r.child for r in relations}

    total = sum(p.rows for p in plans)
    # The temporary name ends in .gpkg: GDAL warns about (and QGIS mistrusts) other extensions.
    with (
        atomic_path(path, overwrite=overwrite) as tmp,
        tqdm(
            total=total,
            unit="row",
            unit_scale=True,
            desc=f"gpkg {path.name}",
            disable=not progress,
            leave=False,
        ) as bar,
    ):
        written: dict[str, _Written] = {}
        for plan in plans:
            if plan.name in fk_children:
                continue  # written with a foreign key below
            written[plan.name] = _write_layer(tmp, plan, sources[plan.table], target.epsg, bar)
        with closing(sqlite3.connect(tmp)) as conn, conn:  # closed, and committed on success
            children = [p for p in plans if p.name in fk_children]
            fk_written = _write_related_tables(
                conn, children, sources, relations, written, target.epsg, bar
            )
            written = {p.name: written[p.name] for p in plans}  # output order
            _write_data_columns(conn, {n: w.columns for n, w in written.items()})
            # Only columns GDAL got as text need rewriting: timestamps reach it as UTC instants
            # and are written in the standard's form (a table-wide UPDATE costs as much as the
            # whole write on the national registry).
            normalise_datetimes(
                conn, {n: w.text_datetimes for n, w in written.items() if w.text_datetimes}
            )
            _apply_fixups(conn, written)
            geom_cols = dict(
                conn.execute("SELECT table_name, column_name FROM gpkg_geometry_columns").fetchall()
            )
            layer_styles = _write_styles(conn, written, geom_cols, relations)
            write_project(
                conn,
                path.name,
                layer_styles,
                relations,
                f"EPSG:{target.epsg}",
                now=datetime.now(UTC),
            )
        # A store written to while it was read gives a file of no single state: refuse it.
        for source in sources.values():
            source.check_unchanged()
        if not fk_written and relations:
            log.warning("relations written as QGIS relations only (no foreign keys)")
    return {n: w.rows for n, w in written.items()}


def export_store_gpkg(
    store: str | os.PathLike,
    path: str | os.PathLike,
    *,
    crs: str | int = "EPSG:3006",
    layers: Iterable[str] | None = None,
    overwrite: bool = False,
    progress: bool = False,
    batch_size: int = BATCH_ROWS,
) -> dict[str, int]:
    """Stream a store (GeoPackage path or ``postgresql://`` URL) into a QGIS-ready GeoPackage.

    :func:`write_gpkg` over the store's tables read in batches of ``batch_size`` rows: memory
    stays bounded by a few batches whatever the size of the store (the national registry's 5.6 M
    homes included). A GeoPackage store exported in EPSG:3006 has its layers copied by SQLite
    instead (:mod:`vggeo.exports.gpkg_copy`: the same file, no rows in Python at all).
    Parameters, result and errors as :func:`write_gpkg`.
    """

    get_crs(crs)  # an unknown CRS fails before the store is opened
    with open_store_sources(store, EXPORT_TABLES, batch_size=batch_size) as sources:
        return write_gpkg(
            sources,
            path,
            crs=crs,
            layers=layers,
            overwrite=overwrite,
            progress=progress,
            batch_size=batch_size,
        )


def _spatial(frame: pd.DataFrame) -> bool:
    return hasattr(frame, "geometry") and getattr(frame, "crs", None) is not None


def _stream_layer(
    path: Path, plan: _LayerPlan, source: TableSource, crs_epsg: int, bar: Bar
) -> _Written:
    """Write one layer through GDAL from a stream of Arrow batches, one batch in memory at a time.

    One ``write_arrow`` call per layer: GDAL creates the layer, appends every batch and builds
    the R-tree once, at the end (its deferred spatial index), instead of per batch. An error or
    Ctrl-C raised while a batch is prepared reaches the caller as itself, not as GDAL's
    "error while accessing batch from stream".
    """

    out = _Written(plan.name)
    batches = (_prepare_batch(plan.name, b, crs_epsg) for b in source.batches(equals=plan.equals))
    first = next(batches, None)
    if first is None:  # no rows: the layer still gets its columns
        first = _prepare_batch(plan.name, source.empty(), crs_epsg)
    spatial = _spatial(first)
    if spatial:
        out.geometry = "Point" if plan.table == "residences" else "MultiPolygon"
    geometry_name = first.geometry.name if spatial else None
    out.columns = [c for c in first.columns if c != geometry_name]
    head = _arrow_batch(first, out, plan.name)
    schema = head.schema
    _observe(out, first)
    del first
    failure: list[BaseException] = []

    def converted() -> Iterator[pa.RecordBatch]:
        for frame in batches:
            _observe(out, frame)
            yield _conform(_arrow_batch(frame, out, plan.name), schema, plan.name)

    def stream() -> Iterator[pa.RecordBatch]:
        nonlocal head
        try:
            rb, head = head, None
            out.rows += rb.num_rows
            bar.update(rb.num_rows)
            yield rb
            del rb
            # The next batches are read and converted while GDAL writes this one.
            for rb in read_ahead(converted()):
                out.rows += rb.num_rows
                bar.update(rb.num_rows)
                yield rb
        except BaseException as err:  # Ctrl-C included: re-raised below as itself
            failure.append(err)
            raise

    reader = pa.RecordBatchReader.from_batches(schema, stream())
    try:
        _gdal_write(reader, path, plan.name, geometry_name, out.geometry, crs_epsg)
    except Exception:
        if failure:
            raise failure[0] from None
        raise
    if failure:
        raise failure[0]
    if out.rows != plan.rows:
        raise StoreError(
            f"layer {plan.name}: {out.rows} rows read, {plan.rows} expected; the "
            "store changed while it was being exported. Nothing was written; run "
            "the export again"
        )
    return out


def _gdal_write(
    reader: pa.RecordBatchReader,
    path: Path,
    layer: str,
    geometry_name: str | None,
    geometry: str | None,
    crs_epsg: int,
) -> None:
    """One layer written by GDAL from an Arrow stream, with the export's options."""
    alias, description = _layer_doc(layer)
    pyogrio.write_arrow(
        reader,
        path,
        driver="GPKG",
        layer=layer,
        geometry_name=geometry_name,
        geometry_type=geometry,
        crs=f"EPSG:{crs_epsg}" if geometry is not None else None,
        layer_options={"IDENTIFIER": alias, "DESCRIPTION": description},
        # GeoPackage 1.3, not GDAL 3.12's default 1.4: GDAL 3.6 (Debian 12, and the QGIS
        # built on it) reads 1.4 only "partially" and expects the 1.3 R-tree triggers.
        dataset_options={"VERSION": "1.3"},
    )


#: ``*_label`` columns per layer kind, for the SQL copy (the frame route adds them in
#: :func:`_prepare_batch`).
_LABELS = {
    "residences": {"type_code_label": gc.LabelSpec("type_code", TYPE_CODE_LABELS)},
    "provisions": {"provision_type_label": gc.LabelSpec("provision_type", TYPE_LABELS)},
}


def _write_layer(
    path: Path, plan: _LayerPlan, source: TableSource, crs_epsg: int, bar: Bar
) -> _Written:
    """One layer: copied in SQL from a GeoPackage store when that gives the frame route's file
    (:mod:`vggeo.exports.gpkg_copy`), streamed as frames otherwise."""
    out = _copy_layer(path, plan, source, crs_epsg, bar)
    return out if out is not None else _stream_layer(path, plan, source, crs_epsg, bar)


def _copy_layer(
    path: Path, plan: _LayerPlan, source: TableSource, crs_epsg: int, bar: Bar
) -> _Written | None:
    """The SQL copy of a layer, or None (nothing written) when it cannot give the same file."""
    if not (
        isinstance(source, StoreSource)
        and isinstance(source.store, GeoPackageStore)
        and crs_epsg == SRID
    ):
        return None
    first = _prepare_batch(plan.name, source.empty(), crs_epsg)
    if any(
        first[c].dtype == object
        for c in first.columns
        if c != getattr(first, "_geometry_column_name", None)
    ):
        return None  # the frame route types these from their values, which an empty frame lacks
    out = _Written(plan.name)
    spatial = _spatial(first)
    if spatial:
        out.geometry = "Point" if plan.table == "residences" else "MultiPolygon"
    geometry_name = first.geometry.name if spatial else None
    out.columns = [c for c in first.columns if c != geometry_name]
    schema = _arrow_batch(first, out, plan.name).schema
    exprs = gc.column_expressions(
        schema, source.store.column_kinds(plan.table), _LABELS.get(plan.table, {}), out.geometry
    )
    if exprs is None or out.text_datetimes:
        return None
    out.fixups.clear()  # the copy writes the store's own text: nothing for GDAL to get wrong
    out.converted = 0
    where = source.where(plan.equals) or "1 = 1"
    store_path = Path(source.store.path)
    facts: list[str] = []  # the columns whose values the default style needs (as _observe)
    if plan.table == "residences" and "home_type" in out.columns:
        facts = ["home_type"]
    elif plan.table == "provisions" and {"provision_type", "status"} <= set(out.columns):
        facts = ["provision_type", "status"]
    values: set[tuple] = set()
    if out.geometry is not None or facts:
        with closing(sqlite3.connect(":memory:")) as probe:
            gc.attach(probe, store_path)
            known, values = gc.survey(
                probe,
                plan.table,
                where,
                out.geometry,
                [exprs[out.columns.index(c)] for c in facts],
            )
        if not known:
            log.info("layer %s: geometries the SQL copy does not know; streamed", plan.name)
            return None
    empty = pa.RecordBatchReader.from_batches(schema, iter(()))
    _gdal_write(empty, path, plan.name, geometry_name, out.geometry, crs_epsg)
    with closing(sqlite3.connect(path.resolve().as_uri(), uri=True)) as conn:
        gc.fast_writes(conn)
        gc.attach(conn, store_path)
        shown = 0

        def advance(copied: int) -> None:
            nonlocal shown
            bar.update(min(copied, plan.rows) - shown)
            shown = min(copied, plan.rows)

        with conn:
            rows = gc.copy_rows(
                conn, plan.name, plan.table, where, out.columns, exprs, out.geometry, advance
            )
        if rows != plan.rows:
            raise StoreError(
                f"layer {plan.name}: {rows} rows read, {plan.rows} expected; the "
                "store changed while it was being exported. Nothing was written; run "
                "the export again"
            )
    _observe_copied(out, values)
    out.rows = rows
    bar.update(rows - shown)
    return out


def _observe_copied(out: _Written, values: set[tuple]) -> None:
    """:func:`_observe` of a copied layer, from the distinct values of its style columns."""
    if out.name == "residences":
        out.home_types.update(str(v) for (v,) in values if v is not None)
    elif out.name == "provisions" or out.name.startswith("provisions_"):
        out.type_status.update(
            ("" if a is None else str(a), "" if b is None else str(b)) for a, b in values
        )


def read_ahead(items: Iterator[T], depth: int = 2) -> Iterator[T]:
    """Yield ``items`` as a worker thread computes them, at most ``depth`` ahead of the consumer.

    The export reads and converts the next batches (GDAL's reader, Arrow and shapely release the
    GIL for most of it) while GDAL writes the current one, so the two cores work at once; memory
    stays bounded by ``depth`` batches. Written here because the standard library's executors
    have no back-pressure on an iterator (``Executor.map`` consumes it whole). An error in the
    worker is raised in the consumer as itself; when the consumer stops (error, Ctrl-C, done) the
    worker is told to stop, joined, and ``items`` closed.
    """
    slots: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(entry: tuple) -> bool:
        while not stop.is_set():
            try:
                slots.put(entry, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        try:
            for item in items:
                if not put(("item", item)):
                    return
            put(("done", None))
        except BaseException as err:  # noqa: BLE001 - handed to the consumer, raised there
            put(("error", err))

    worker = threading.Thread(target=work, name="vggeo-read-ahead", daemon=True)
    worker.start()
    try:
        while True:
            kind, value = slots.get()
            if kind == "item":
                yield value
            elif kind == "error":
                raise value
            else:
                return
    finally:
        stop.set()
        worker.join()
        close = getattr(items, "close", None)
        if close is not None:
            close()


def _observe(out: _Written, frame: pd.DataFrame) -> None:
    """Keep what the default styles need from a batch: the values present, never the rows."""
    if out.name == "residences" and "home_type" in frame.columns:
        out.home_types.update(frame["home_type"].dropna().astype(str).unique().tolist())
    elif out.name == "provisions" or out.name.startswith("provisions_"):
        cols = [c for c in ("provision_type", "status") if c in frame.columns]
        if len(cols) == 2:
            pairs = frame[cols].astype("string").fillna("").drop_duplicates()
            out.type_status.update(map(tuple, pairs.to_numpy().tolist()))


#: Arrow field metadata GDAL reads as a JSON string (GeoPackage: ``mime_type application/json``).
_JSON_FIELD = {"GDAL:OGR:subtype": "JSON"}


def _is_integer_list(t: pa.DataType) -> bool:
    return (pa.types.is_list(t) or pa.types.is_large_list(t)) and pa.types.is_integer(t.value_type)


def _json_integer_lists(a: pa.Array) -> pa.Array:
    """Integer lists as JSON text (``[1, 3, null]``), in Arrow's own kernels.

    GDAL writes an Arrow list of integers as an IntegerList, which cannot hold a null element:
    ``[1, 3, None]`` (an address number list, documented as valid) became ``[1, 3, 0]``. As JSON
    text marked JSON the file holds what the store holds, and GDAL and geopandas read it back as
    the list (the form the GeoPackage copy of a store table already has).
    """
    texts = pc.fill_null(pc.cast(a.values, pa.string()), "null")
    cls = pa.LargeListArray if pa.types.is_large_list(a.type) else pa.ListArray
    # A batch sliced from a larger frame has sliced offsets (still into the whole values), which
    # Arrow does not combine with a null mask: the offsets are copied to start at zero.
    offsets = pa.concat_arrays([a.offsets]) if a.offsets.offset else a.offsets
    lists = cls.from_arrays(offsets, texts, mask=a.is_null())
    return pc.binary_join_element_wise("[", pc.binary_join(lists, ", "), "]", "")


def _arrow_batch(frame: pd.DataFrame, out: _Written, layer: str) -> pa.RecordBatch:
    """A prepared batch as an Arrow record batch GDAL writes: WKB geometry, GDAL-typed columns.

    The conversions are those ``pyogrio.write_dataframe`` makes before its own ``write_arrow``
    (so the file is the one it would write): polygons promoted to multipolygons, untypeable
    object columns as text, all-null columns as text. Datetimes go to GDAL as UTC instants
    (vggeo's naive datetimes are UTC by contract; aware ones are converted), which GDAL writes in
    the GeoPackage's one DATETIME form (``YYYY-MM-DDTHH:MM:SS.SSSZ``); only values pandas cannot
    read as instants go as text marked ``DateTime``, named in ``out.text_datetimes``.
    """

    df = pd.DataFrame(frame, copy=False)
    wkb = None
    if out.geometry is not None:
        name = frame.geometry.name
        geoms = np.asarray(frame.geometry.array, dtype=object)
        wkb = shapely.to_wkb(_as_layer_type(geoms, out.geometry, layer))
        df = df.drop(columns=name)
    datetime_cols = []
    for col in df.columns:
        s = df[col]
        if s.dtype == object:
            inferred = pd.api.types.infer_dtype(s, skipna=True)
            if inferred == "datetime":
                try:  # mixed offsets: one instant each, in UTC
                    df[col] = pd.to_datetime(s, utc=True)
                except (ValueError, TypeError, OverflowError):
                    df[col] = s.astype("string")
                    datetime_cols.append(col)
            elif inferred not in ("string", "empty"):
                try:
                    pa.Schema.from_pandas(df[[col]], preserve_index=False)
                except (pa.ArrowInvalid, pa.ArrowTypeError):
                    df[col] = s.astype("string")
        elif isinstance(s.dtype, pd.DatetimeTZDtype) and str(s.dtype.tz) != "UTC":
            df[col] = s.dt.tz_convert("UTC")
        elif s.dtype.kind == "M":
            df[col] = s.dt.tz_localize("UTC")
    out.text_datetimes.update(datetime_cols)
    rb = pa.RecordBatch.from_pandas(df, preserve_index=False)
    fields, arrays = [], []
    for f, a in zip(rb.schema, rb.columns, strict=True):
        if pa.types.is_timestamp(f.type):
            slips = _gdal_minute_slips(a, out.converted + 1)
            if slips:
                out.fixups.setdefault(f.name, []).extend(slips)
        if pa.types.is_null(f.type):  # GDAL has no null type
            f, a = f.with_type(pa.string()), a.cast(pa.string())
        elif _is_integer_list(f.type):
            f, a = f.with_type(pa.string()).with_metadata(_JSON_FIELD), _json_integer_lists(a)
        if f.name in datetime_cols:
            f = f.with_metadata({"GDAL:OGR:type": "DateTime"})
        fields.append(f)
        arrays.append(a)
    if wkb is not None:
        fields.append(pa.field(frame.geometry.name, pa.binary()))
        arrays.append(pa.array(wkb, pa.binary()))
    out.converted += len(frame)
    return pa.RecordBatch.from_arrays(arrays, schema=pa.schema(fields))


def _gdal_minute_slips(a: pa.Array, first_fid: int) -> list[tuple[int, str]]:
    """(FID, ``YYYY-MM-DDTHH:MM:SS.SSSZ``) of the times GDAL's Arrow writer writes wrong.

    GDAL (3.12) turns a time before 1970 in the last second of a minute with milliseconds
    (``1938-04-25T18:35:59.728``) into the next whole minute (``18:36:00``): one such time in
    sixty. The mask below predicts its errors exactly (measured on 400 000 random times and
    every millisecond of the two minutes before 1970). Those rows are rewritten in SQL after
    the layer is written; no other value is touched.
    """
    ms = a.cast(pa.timestamp("ms", tz=a.type.tz), safe=False)
    v = pc.fill_null(ms.cast(pa.int64()), 0).to_numpy(zero_copy_only=False)
    hit = np.flatnonzero((v < 0) & (v % 60_000 >= 59_000) & (v % 1000 != 0))
    if not hit.size:
        return []
    texts = pc.strftime(ms.take(pa.array(hit)), "%Y-%m-%dT%H:%M:%SZ").to_pylist()
    return list(zip((first_fid + hit).tolist(), texts, strict=True))


def _apply_fixups(conn: sqlite3.Connection, written: Mapping[str, _Written]) -> None:
    """Rewrite the values :func:`_gdal_minute_slips` found, by FID (GDAL numbers a new layer's
    rows 1, 2, … in the order written)."""
    if not any(w.fixups for w in written.values()):
        return
    register_functions(conn)  # the R-tree triggers GDAL created name ST_IsEmpty, ST_MinX …
    for name, w in written.items():
        for col, rows in w.fixups.items():
            conn.executemany(
                f"UPDATE {quote_ident(name)} SET {quote_ident(col)} = ? WHERE fid = ?",
                [(text, fid) for fid, text in rows],
            )


def _as_layer_type(geoms: np.ndarray, layer_type: str, layer: str) -> np.ndarray:
    """Geometries of the layer's one type: polygons promoted; anything else refused by name."""

    ids = shapely.get_type_id(geoms)
    wanted = {"Point": 0, "MultiPolygon": 6}[layer_type]
    if layer_type == "MultiPolygon":
        single = np.flatnonzero(ids == 3)
        if len(single):
            geoms = geoms.copy()
            geoms[single] = shapely.multipolygons(geoms[single], indices=np.arange(len(single)))
            ids = ids.copy()
            ids[single] = 6
    empty = shapely.is_empty(geoms)
    bad = np.flatnonzero((ids != wanted) & (ids != -1) & ~empty)
    if len(bad):
        kind = shapely.get_type_id(geoms[bad[0]])
        raise SchemaError(
            f"layer {layer} holds {layer_type} geometries, but a row has a "
            f"{_TYPE_NAMES.get(int(kind), kind)}",
            field="geometry",
        )
    return geoms


_TYPE_NAMES = {
    0: "Point",
    1: "LineString",
    2: "LinearRing",
    3: "Polygon",
    4: "MultiPoint",
    5: "MultiLineString",
    6: "MultiPolygon",
    7: "GeometryCollection",
}


def _conform(rb: pa.RecordBatch, schema: pa.Schema, layer: str) -> pa.RecordBatch:
    """A record batch with exactly the layer's schema (the first batch's), or a clear refusal.

    Store tables keep their dtypes, so batches agree; only object columns can differ (a batch
    whose values are all missing, lists in one batch and none in another). Those are cast, and
    nested values become JSON text when the layer's column is text.
    """

    if rb.schema.equals(schema):
        return rb
    if rb.schema.names != schema.names:
        raise SchemaError(
            f"layer {layer}: batches with different columns ({rb.schema.names} vs {schema.names})"
        )
    arrays = []
    for f, a in zip(schema, rb.columns, strict=True):
        if a.type != f.type:
            try:
                a = a.cast(f.type)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as err:
                if not (pa.types.is_string(f.type) or pa.types.is_large_string(f.type)):
                    raise SchemaError(
                        f"layer {layer}: column {f.name} holds {a.type} in one "
                        f"batch and {f.type} in another",
                        field=f.name,
                    ) from err
                a = pa.array(
                    [None if v is None else json.dumps(v, default=str) for v in a.to_pylist()],
                    f.type,
                )
        arrays.append(a)
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def _layer_doc(name: str) -> tuple[str, str]:
    if name == "residences":
        return "Residences", "Valueguard residential registry: one point per home (vggeo)"
    if name == "provisions":
        return "Provisions", "Land-regulating provisions (markreglerande bestämmelser), all types"
    if name.startswith("provisions_"):
        t = name.removeprefix("provisions_")
        return f"Provisions: {TYPE_LABELS.get(t, t)}", f"Provisions of type {t}"
    if name == "affected_properties":
        return "Affected properties", "Register units affected by each provision (berörkrets)"
    if name == "decisions":
        return "Decisions", "Decisions forming, changing or revoking each provision"
    return name, f"Inskrivning: {name}"


_SQL_TYPES = {"b": "BOOLEAN", "i": "INTEGER", "u": "INTEGER", "f": "REAL", "M": "DATETIME"}


def _sql_column(s: pd.Series) -> tuple[str, list]:
    """GeoPackage column type and Python values (None for missing) of one column."""
    kind = s.dtype.kind if not isinstance(s.dtype, pd.CategoricalDtype) else "O"
    sql = _SQL_TYPES.get(kind, "TEXT")
    mask = s.isna().to_numpy()
    if kind == "M":
        # GeoPackage DATETIME: ISO 8601 UTC with milliseconds (Req 5 of the standard).
        ts = pd.to_datetime(s)
        ts = ts.dt.tz_convert("UTC") if ts.dt.tz is not None else ts
        vals = ts.dt.strftime("%Y-%m-%dT%H:%M:%S.%f").str.slice(0, 23) + "Z"
        values = vals.astype(object).tolist()
    elif kind in "iub":
        values = (
            [int(v) for v in s.fillna(0).to_numpy()] if mask.any() else s.astype("int64").tolist()
        )
    elif kind == "f":
        values = s.astype(float).tolist()
    else:
        values = s.astype("string").astype(object).tolist()
    return sql, [None if m else v for v, m in zip(values, mask, strict=True)]


def _write_related_tables(
    conn: sqlite3.Connection,
    plans: list[_LayerPlan],
    sources: Mapping[str, TableSource],
    relations: list[st.RelationSpec],
    written: dict[str, _Written],
    crs_epsg: int,
    bar: Bar,
) -> bool:
    """Attribute tables with a foreign key to their parent (GDAL cannot declare one), streamed.

    The parent's key gets a UNIQUE index, which SQLite requires of a referenced column. If the
    key is not unique, or children refer to missing parents, the table is written without the
    foreign key (the style's QGIS relation still links them) and a warning says why. Both checks
    are SQL on the file being written, so no table is held in memory for them.
    """
    by_child = {r.child: r for r in relations}
    keyed: set[str] = set()  # parents whose key index a kept foreign key needs
    all_fk = True
    for plan in plans:
        rel = by_child[plan.name]
        unique = f"uq_{rel.parent}_{rel.parent_field}"
        try:
            conn.execute(
                f'CREATE UNIQUE INDEX IF NOT EXISTS "{unique}" '
                f'ON "{rel.parent}" ("{rel.parent_field}")'
            )
            fk = True
        except sqlite3.IntegrityError:
            log.warning("%s.%s is not unique; no foreign key", rel.parent, rel.parent_field)
            fk = False
        out = _insert_child(conn, plan, sources[plan.table], rel, fk, crs_epsg, bar)
        if fk:
            orphans = conn.execute(
                f'SELECT count(*) FROM "{rel.child}" c WHERE c."{rel.child_field}" IS NULL OR '
                f'NOT EXISTS (SELECT 1 FROM "{rel.parent}" p '
                f'WHERE p."{rel.parent_field}" = c."{rel.child_field}")'
            ).fetchone()[0]
            if orphans:
                log.warning(
                    "%d %s rows refer to provisions not exported; no foreign key",
                    orphans,
                    rel.child,
                )
                _drop_foreign_key(conn, rel.child)
                fk = False
        if fk:
            keyed.add(unique)
        conn.execute(
            f'CREATE INDEX "idx_{rel.child}_{rel.child_field}" ON "{rel.child}" '
            f'("{rel.child_field}")'
        )
        written[plan.name] = out
        all_fk &= fk
    for rel in relations:  # an index no foreign key needs is not left behind
        unique = f"uq_{rel.parent}_{rel.parent_field}"
        if unique not in keyed:
            conn.execute(f'DROP INDEX IF EXISTS "{unique}"')
    return all_fk


def _insert_child(
    conn: sqlite3.Connection,
    plan: _LayerPlan,
    source: TableSource,
    rel: st.RelationSpec,
    fk: bool,
    crs_epsg: int,
    bar: Bar,
) -> _Written:
    out = _Written(plan.name)
    insert = None
    for batch in source.batches(equals=plan.equals):
        frame = _prepare_batch(plan.name, batch, crs_epsg)
        typed = [_sql_column(frame[col]) for col in frame.columns]
        if insert is None:
            out.columns = list(frame.columns)
            insert = _create_child(conn, rel, out.columns, [t for t, _ in typed], fk)
        conn.executemany(insert, zip(*(v for _, v in typed), strict=True) if typed else [])
        out.rows += len(frame)
        bar.update(len(frame))
    if insert is None:  # no rows: the table still gets its columns
        frame = _prepare_batch(plan.name, source.empty(), crs_epsg)
        out.columns = list(frame.columns)
        _create_child(conn, rel, out.columns, [_sql_column(frame[c])[0] for c in out.columns], fk)
    if out.rows != plan.rows:
        raise StoreError(
            f"layer {plan.name}: {out.rows} rows read, {plan.rows} expected; the "
            "store changed while it was being exported. Nothing was written; run "
            "the export again"
        )
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:23] + "Z"
    alias, description = _layer_doc(plan.name)
    conn.execute(
        "INSERT INTO gpkg_contents (table_name, data_type, identifier, description, "
        "last_change) VALUES (?, 'attributes', ?, ?, ?)",
        (plan.name, alias, description, now),
    )
    _register_ogr_count(conn, plan.name, out.rows)
    return out


def _create_child(
    conn: sqlite3.Connection, rel: st.RelationSpec, columns: list[str], types: list[str], fk: bool
) -> str:
    """Create the child table (with the foreign key if ``fk``); return its INSERT statement."""
    cols = []
    for col, sql in zip(columns, types, strict=True):
        ref = ""
        if fk and col == rel.child_field:
            ref = f' REFERENCES "{rel.parent}" ("{rel.parent_field}")'
        cols.append(f'"{col}" {sql}{ref}')
    conn.execute(
        f'CREATE TABLE "{rel.child}" ("fid" INTEGER PRIMARY KEY AUTOINCREMENT '
        f"NOT NULL, {', '.join(cols)})"
    )
    names = ", ".join(f'"{c}"' for c in columns)
    return f'INSERT INTO "{rel.child}" ({names}) VALUES ({", ".join("?" * len(columns))})'


def _drop_foreign_key(conn: sqlite3.Connection, table: str) -> None:
    """Rebuild ``table`` without its REFERENCES clause (SQLite cannot drop a constraint)."""
    ddl = conn.execute(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
    ).fetchone()[0]
    plain = re.sub(r'\s+REFERENCES\s+"[^"]+"\s*\("[^"]+"\)', "", ddl)
    conn.execute(f'ALTER TABLE "{table}" RENAME TO "{table}__with_fk"')
    conn.execute(plain)
    conn.execute(f'INSERT INTO "{table}" SELECT * FROM "{table}__with_fk"')
    conn.execute(f'DROP TABLE "{table}__with_fk"')


#: The one DATETIME form the GeoPackage standard allows (Req 5): UTC, milliseconds, ``Z``.
GPKG_DATETIME_SQL = "strftime('%Y-%m-%dT%H:%M:%fZ', {})"


def normalise_datetimes(
    target: sqlite3.Connection | str | os.PathLike,
    columns: Mapping[str, Iterable[str]] | None = None,
) -> None:
    """Rewrite every DATETIME value of a GeoPackage's tables as ``YYYY-MM-DDTHH:MM:SS.SSSZ``.

    GDAL writes timezone-naive values without ``Z`` and whole seconds without ``.000``; both are
    outside the standard's one form (Req 5; GDAL's ``validate_gpkg.py`` flags them). vggeo's
    naive datetimes are UTC by contract, and GDAL keeps milliseconds at most, so SQLite's own
    formatting (``%f`` = ``SS.SSS``) loses nothing. A value SQLite cannot parse is left as it is
    rather than lost.

    Parameters
    ----------
    target
        An open connection (the caller commits) or the path of a GeoPackage written by GDAL.
    columns
        ``{table: columns}`` to rewrite; by default every DATETIME column of every table.
    """
    if columns is not None and not columns:
        return
    if not isinstance(target, sqlite3.Connection):
        with closing(sqlite3.connect(target)) as conn, conn:
            normalise_datetimes(conn, columns)
        return

    conn = target
    register_functions(conn)  # the R-tree triggers GDAL created name ST_IsEmpty, ST_MinX …
    tables = [r[0] for r in conn.execute("SELECT table_name FROM gpkg_contents")]
    for table in tables:
        if columns is not None and table not in columns:
            continue
        wanted = None if columns is None else set(columns[table])
        cols = [
            r[1]
            for r in conn.execute(f'PRAGMA table_info("{table}")')
            if str(r[2]).upper() == "DATETIME" and (wanted is None or r[1] in wanted)
        ]
        for col in cols:
            canonical = GPKG_DATETIME_SQL.format(f'"{col}"')
            conn.execute(
                f'UPDATE "{table}" SET "{col}" = {canonical} WHERE "{col}" IS NOT NULL '
                f'AND {canonical} IS NOT NULL AND "{col}" IS NOT {canonical}'
            )


def _register_ogr_count(conn: sqlite3.Connection, table: str, count: int) -> None:
    """Keep GDAL's feature-count cache (``gpkg_ogr_contents``) complete when it exists."""
    has = conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'gpkg_ogr_contents'").fetchone()
    if has:
        conn.execute(
            "INSERT OR REPLACE INTO gpkg_ogr_contents (table_name, feature_count) VALUES (?, ?)",
            (table, count),
        )


def _ensure_extension(
    conn: sqlite3.Connection,
    table: str | None,
    name: str,
    definition: str,
    scope: str = "read-write",
) -> None:
    conn.execute(
        "CREATE TABLE IF NOT EXISTS gpkg_extensions (table_name TEXT, column_name TEXT, "
        "extension_name TEXT NOT NULL, definition TEXT NOT NULL, scope TEXT NOT NULL, "
        "CONSTRAINT ge_tce UNIQUE (table_name, column_name, extension_name))"
    )
    # Not INSERT OR IGNORE: with column_name NULL the UNIQUE constraint never fires, and GDAL
    # may have registered the extension already (it does for JSON list columns).
    seen = conn.execute(
        "SELECT 1 FROM gpkg_extensions WHERE table_name IS ? AND "
        "column_name IS NULL AND extension_name = ?",
        (table, name),
    ).fetchone()
    if not seen:
        conn.execute(
            "INSERT INTO gpkg_extensions VALUES (?, NULL, ?, ?, ?)",
            (table, name, definition, scope),
        )


def _write_data_columns(conn: sqlite3.Connection, columns: Mapping[str, list[str]]) -> None:
    """Aliases and descriptions in ``gpkg_data_columns`` (GeoPackage schema extension)."""
    docs = st.field_docs()
    conn.execute(
        "CREATE TABLE IF NOT EXISTS gpkg_data_columns (table_name TEXT NOT NULL, column_name TEXT "
        "NOT NULL, name TEXT, title TEXT, description TEXT, mime_type TEXT, constraint_name TEXT, "
        "CONSTRAINT pk_gdc PRIMARY KEY (table_name, column_name), "
        "CONSTRAINT gdc_tn UNIQUE (table_name, name))"
    )
    conn.execute(
        "CREATE TABLE IF NOT EXISTS gpkg_data_column_constraints (constraint_name TEXT NOT NULL, "
        "constraint_type TEXT NOT NULL, value TEXT, min NUMERIC, min_is_inclusive BOOLEAN, "
        "max NUMERIC, max_is_inclusive BOOLEAN, description TEXT, "
        "CONSTRAINT gdcc_ntv UNIQUE (constraint_name, constraint_type, value))"
    )
    definition = "http://www.geopackage.org/spec/#extension_schema"
    _ensure_extension(conn, "gpkg_data_columns", "gpkg_schema", definition)
    _ensure_extension(conn, "gpkg_data_column_constraints", "gpkg_schema", definition)
    rows = [
        (table, col, docs[col][0], docs[col][0], docs[col][1])
        for table, names in columns.items()
        for col in names
        if col in docs
    ]
    # Upsert: GDAL may already have registered a column (mime_type of JSON list columns).
    conn.executemany(
        "INSERT INTO gpkg_data_columns (table_name, column_name, name, title, description) "
        "VALUES (?, ?, ?, ?, ?) ON CONFLICT (table_name, column_name) DO UPDATE SET "
        "name = excluded.name, title = excluded.title, description = excluded.description",
        rows,
    )


def _write_styles(
    conn: sqlite3.Connection,
    layers: Mapping[str, _Written],
    geom_cols: Mapping[str, str],
    relations: list[st.RelationSpec],
) -> list[tuple[str, str | None, st.LayerStyle]]:
    """``layer_styles`` exactly as QGIS creates it, one default style per layer.

    Returns (layer, geometry type or None, style) for the embedded project.
    """
    conn.execute(
        'CREATE TABLE "layer_styles" ("id" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL, '
        '"f_table_catalog" TEXT(256), "f_table_schema" TEXT(256), "f_table_name" TEXT(256), '
        f'"f_geometry_column" TEXT(256), "styleName" TEXT({st.STYLE_NAME_WIDTH}), "styleQML" TEXT, '
        '"styleSLD" TEXT, '
        '"useAsDefault" BOOLEAN, "description" TEXT, "owner" TEXT(30), "ui" TEXT(30), '
        "\"update_time\" DATETIME DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')))"
    )
    rows, out = [], []
    for name, layer in layers.items():
        columns = layer.columns
        rels = [r for r in relations if name in (r.parent, r.child)]
        if name == "residences" and "home_type" in columns:
            style = st.residences_style(name, columns, sorted(layer.home_types), rels)
        elif name == "provisions" or name.startswith("provisions_"):
            style = st.provisions_style(name, columns, sorted(layer.type_status), rels)
        else:
            style = st.table_style(name, columns, rels)
        rows.append(
            (
                "",
                "",
                name,
                geom_cols.get(name, ""),
                style.name,
                style.qml,
                style.sld,
                1,
                style.description,
                "",
            )
        )
        geometry = None
        if name in geom_cols:
            geometry = "Point" if name == "residences" else "MultiPolygon"
        out.append((name, geometry, style))
    conn.executemany(
        "INSERT INTO layer_styles (f_table_catalog, f_table_schema, f_table_name, "
        'f_geometry_column, "styleName", "styleQML", "styleSLD", "useAsDefault", description, '
        "owner) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        rows,
    )
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:23] + "Z"
    conn.execute(
        "INSERT INTO gpkg_contents (table_name, data_type, identifier, description, "
        "last_change) VALUES ('layer_styles', 'attributes', 'layer_styles', "
        "'QGIS default styles (QML, SLD)', ?)",
        (now,),
    )
    _register_ogr_count(conn, "layer_styles", len(rows))
    return out
