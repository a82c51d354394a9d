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

Writing goes to a temporary file beside the output that replaces it only when complete, so an
error or Ctrl-C leaves any existing file untouched and nothing half-written.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import Iterable, Mapping
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from vggeo.atomic import atomic_path
from vggeo.errors import InputError, StoreError
from vggeo.exports import styles as st
from vggeo.exports.qgis_project import write_project

log = logging.getLogger(__name__)

__all__ = ["export_layers", "write_gpkg", "normalise_datetimes", "INSKRIVNING_TABLES",
           "TYPE_LABELS", "TYPE_CODE_LABELS"]  # fmt: skip

#: Inskrivning tables exported as attribute tables when present (docs/contracts.md).
INSKRIVNING_TABLES = ("inskrivningsfastighet", "agande", "forvarv", "avtalsrattighet",
                      "inteckning", "anteckning", "tomtrattsupplatelse", "persons",
                      "organisations")  # fmt: skip
ATTRIBUTE_TABLES = ("affected_properties", "decisions", *INSKRIVNING_TABLES)

#: provision_type code → readable label (the ``provision_type_label`` column).
TYPE_LABELS = {
    "plan": "Plan", "naturvardsbestammelse": "Naturvårdsbestämmelse",
    "ovrig_bestammelse": "Övrig bestämmelse", "mineralrattighet": "Mineralrättighet",
    "utredning": "Utredning", "fornlamning": "Fornlämning",
}  # fmt: skip

#: Valueguard ``type_code`` (taxation unit type) → label, from Valueguard's field list.
TYPE_CODE_LABELS = {
    113: "farm unit (building value < 50000 SEK)", 120: "farm unit (built-up)",
    213: "house (building value < 50000 SEK)", 220: "house (built-up)", 221: "house (cottage)",
    222: "house (3 or more residence buildings)", 320: "rental (residences)",
    321: "rental (residences & local places)", 325: "rental (local places)",
    823: "special unit",
}  # fmt: skip

#: Relations child.child_field → parent.parent_field (written as FKs and QGIS relations).
RELATIONS = (
    st.RelationSpec("provisions_affected_properties", "Affected properties (berörkrets)",
                    "provisions", "provision_id", "affected_properties", "provision_id"),
    st.RelationSpec("provisions_decisions", "Decisions", "provisions", "provision_id",
                    "decisions", "provision_id"),
)  # fmt: skip

_ROWS_PER_WRITE = 250_000


def export_layers(tables: Mapping[str, pd.DataFrame]) -> list[str]:
    """The layer names a GeoPackage export of these tables can contain, in output order."""
    names: list[str] = []
    if "residences" in tables:
        names.append("residences")
    if "provisions" in tables:
        names.append("provisions")
        present = set(tables["provisions"]["provision_type"].dropna().astype(str))
        names += [f"provisions_{t}" for t in _ordered_types(present)]
    names += [t for t in ATTRIBUTE_TABLES if t in tables]
    return names


def _ordered_types(present: Iterable[str]) -> list[str]:
    present = set(present)
    return [t for t in TYPE_LABELS if t in present] + sorted(present - set(TYPE_LABELS))


def _select_layers(available: list[str], layers: Iterable[str] | None) -> list[str]:
    if layers is None:
        return available
    wanted = [x.strip() for x in layers if x.strip()]
    unknown = [x for x in wanted if x not in available]
    if unknown:
        raise InputError(f"unknown layer(s) {', '.join(unknown)}; "
                         f"available: {', '.join(available) or 'none'}", field="layers")  # fmt: skip
    if not wanted:
        raise InputError("no layers selected", field="layers")
    return list(dict.fromkeys(wanted))


# --- column preparation --------------------------------------------------------------------------


def _is_listlike(v: object) -> bool:
    return isinstance(v, (list, tuple, np.ndarray))


def _plain_columns(df: pd.DataFrame) -> pd.DataFrame:
    """Columns GeoPackage can hold: categoricals as text, lists as Arrow lists (JSON in GPKG)."""
    out = df.copy(deep=False)  # copy-on-write: columns are replaced, never modified
    for col in out.columns:
        if col == getattr(out, "_geometry_column_name", None):
            continue
        s = out[col]
        if isinstance(s.dtype, pd.CategoricalDtype):
            out[col] = s.astype("string")
        elif s.dtype == object:
            # Lists in object columns (Arrow-backed list columns are written natively, as JSON).
            sample = s.dropna().head(1000)
            if len(sample) and sample.map(_is_listlike).any():
                out[col] = _as_arrow_list(s)
    return out


def _as_arrow_list(s: pd.Series) -> pd.Series:
    """An object column of lists as an Arrow list column, which GDAL writes as JSON text
    (``gpkg_data_columns.mime_type = application/json``); mixed content as JSON strings."""
    import json

    import pyarrow as pa

    values = [None if v is None or (not _is_listlike(v) and pd.isna(v)) else
              (list(v) if _is_listlike(v) else v) for v in s.tolist()]  # fmt: skip
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
    if not isinstance(values.dtype, pd.CategoricalDtype) and pd.api.types.is_numeric_dtype(values):
        values = pd.Series(pd.array(values, dtype="Int64"), index=df.index)
    mapped = values.astype("string").map(by_text)
    pos = df.columns.get_loc(col) + 1
    df = df.copy(deep=False)
    df.insert(pos, label_col, mapped.astype("string"))
    return df


def _prepare_layers(
    tables: Mapping[str, pd.DataFrame], names: list[str], crs_epsg: int
) -> dict[str, pd.DataFrame]:
    from vggeo.crs import transform_geoseries

    out: dict[str, pd.DataFrame] = {}
    if "residences" in names:
        res = tables["residences"]
        res = transform_geoseries(res, crs_epsg) if res.crs is not None else res
        res = _with_label(res, "type_code", TYPE_CODE_LABELS, "type_code_label")
        out["residences"] = _plain_columns(res)
    if any(n == "provisions" or n.startswith("provisions_") for n in names):
        prov = tables["provisions"]
        prov = transform_geoseries(prov, crs_epsg) if prov.crs is not None else prov
        prov = _with_label(prov, "provision_type", TYPE_LABELS, "provision_type_label")
        prov = _plain_columns(prov)
        if "provisions" in names:
            out["provisions"] = prov
        for n in names:
            if n.startswith("provisions_"):
                t = n.removeprefix("provisions_")
                out[n] = prov[(prov["provision_type"] == t).fillna(False).to_numpy(bool)]
    for n in names:
        if n in ATTRIBUTE_TABLES:
            out[n] = _plain_columns(pd.DataFrame(tables[n]))
    return {n: out[n] for n in names}


# --- writing -----------------------------------------------------------------------------------


def write_gpkg(
    tables: Mapping[str, pd.DataFrame],
    path: str | os.PathLike,
    *,
    crs: str | int = "EPSG:3006",
    layers: Iterable[str] | None = None,
    overwrite: bool = False,
    progress: bool = False,
) -> dict[str, int]:
    """Write the contract tables as a styled, documented GeoPackage for QGIS.

    Parameters
    ----------
    tables
        Table name → (Geo)DataFrame in the contract shape (``residences``, ``provisions``,
        ``affected_properties``, ``decisions``, inskrivning tables); spatial tables in EPSG:3006.
    path
        Output ``.gpkg``; replaced atomically when the export is complete.
    crs
        Output coordinate system: anything :func:`vggeo.crs.get_crs` accepts (SWEREF 99 TM, a
        local SWEREF 99 zone, RT 90, WGS 84 …).
    layers
        Layer names to write (default: all, see :func:`export_layers`).
    overwrite
        Replace an existing file (otherwise refuse).

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
        Nothing to export (no residences or provisions).
    """
    from tqdm.auto import tqdm

    from vggeo.crs import get_crs

    target = get_crs(crs)  # an unknown CRS fails here, before anything is written
    path = Path(path)
    if path.exists() and not overwrite:
        raise InputError(f"{path} exists; pass overwrite=True (CLI: --overwrite) to replace it")
    available = export_layers(tables)
    if not available:
        raise StoreError("nothing to export: no residences, provisions or related tables "
                         f"(got: {', '.join(tables) or 'none'})")  # fmt: skip
    names = _select_layers(available, layers)
    frames = _prepare_layers(tables, names, target.epsg)
    relations = [r for r in RELATIONS if r.parent in frames and r.child in frames]

    total = sum(len(f) for f in frames.values())
    # The temporary name ends in .gpkg: GDAL warns about (and QGIS mistrusts) other extensions.
    with atomic_path(path, overwrite=overwrite) as tmp, \
            tqdm(total=total, unit="row", desc=f"gpkg {path.name}", disable=not progress,
                 leave=False) as bar:  # fmt: skip
        fk_children = {r.child for r in relations}
        for name, frame in frames.items():
            if name in fk_children:
                continue  # written with a foreign key below
            _write_layer(tmp, name, frame, bar)
        counts = {n: len(f) for n, f in frames.items()}
        with closing(sqlite3.connect(tmp)) as conn, conn:  # closed, and committed on success
            fk_written = _write_related_tables(conn, frames, relations, bar)
            _write_data_columns(conn, frames)
            normalise_datetimes(conn)
            geom_cols = dict(conn.execute(
                "SELECT table_name, column_name FROM gpkg_geometry_columns").fetchall())  # fmt: skip
            layer_styles = _write_styles(conn, frames, geom_cols, relations)
            write_project(conn, path.name, layer_styles, relations, f"EPSG:{target.epsg}",
                          now=datetime.now(UTC))  # fmt: skip
        if not fk_written and relations:
            log.warning("relations written as QGIS relations only (no foreign keys)")
    return counts


def _write_layer(path: Path, name: str, frame: pd.DataFrame, bar) -> None:
    import pyogrio

    spatial = hasattr(frame, "geometry") and getattr(frame, "crs", None) is not None
    alias, description = _layer_doc(name)
    kwargs: dict = {
        "driver": "GPKG", "layer": name,
        "layer_options": {"IDENTIFIER": alias, "DESCRIPTION": description},
        # GeoPackage 1.3, not GDAL 3.12's default 1.4: GDAL 3.6 (Debian 12, and the QGIS built on
        # it) reads 1.4 only "partially" and expects the 1.3 R-tree triggers.
        "dataset_options": {"VERSION": "1.3"},
        # Arrow batches: about eight times faster than feature by feature for the registry.
        "use_arrow": True,
    }  # fmt: skip
    if spatial:
        kinds = set(frame.geometry.geom_type.dropna())
        kwargs["geometry_type"] = "Point" if kinds <= {"Point"} else "MultiPolygon"
        kwargs["promote_to_multi"] = kwargs["geometry_type"] == "MultiPolygon"
    else:
        frame = pd.DataFrame(frame)
    if len(frame) == 0:
        pyogrio.write_dataframe(frame, path, **kwargs)
        return
    for start in range(0, len(frame), _ROWS_PER_WRITE):
        chunk = frame.iloc[start : start + _ROWS_PER_WRITE]
        pyogrio.write_dataframe(chunk, path, append=start > 0, **kwargs)
        bar.update(len(chunk))


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
        values = [int(v) for v in s.fillna(0).to_numpy()] if mask.any() else s.astype(
            "int64").tolist()
    elif kind == "f":
        values = s.astype(float).tolist()
    else:
        values = s.astype("string").astype(object).tolist()
    return sql, [None if m else v for v, m in zip(values, mask, strict=True)]


def _write_related_tables(conn: sqlite3.Connection, frames: Mapping[str, pd.DataFrame],
                          relations: list[st.RelationSpec], bar) -> bool:  # fmt: skip
    """Attribute tables with a foreign key to their parent (GDAL cannot declare one).

    The parent's key gets a UNIQUE index, which SQLite requires of a referenced column. If the
    key is not unique, or children refer to missing parents, the table is written without the
    foreign key (the style's QGIS relation still links them) and a warning says why.
    """
    all_fk = True
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:23] + "Z"
    for rel in relations:
        child = frames[rel.child]
        parent_keys = frames[rel.parent][rel.parent_field]
        fk = True
        if parent_keys.duplicated().any():
            log.warning("%s.%s is not unique; no foreign key", rel.parent, rel.parent_field)
            fk = False
        orphans = ~child[rel.child_field].isin(set(parent_keys.dropna()))
        if orphans.any():
            log.warning("%d %s rows refer to provisions not exported; no foreign key",
                        int(orphans.sum()), rel.child)  # fmt: skip
            fk = False
        if fk:
            conn.execute(f'CREATE UNIQUE INDEX IF NOT EXISTS "uq_{rel.parent}_{rel.parent_field}" '
                         f'ON "{rel.parent}" ("{rel.parent_field}")')  # fmt: skip
        cols, data = [], []
        for col in child.columns:
            sql, values = _sql_column(child[col])
            ref = ""
            if fk and col == rel.child_field:
                ref = f' REFERENCES "{rel.parent}" ("{rel.parent_field}")'
            cols.append(f'"{col}" {sql}{ref}')
            data.append(values)
        conn.execute(f'CREATE TABLE "{rel.child}" ("fid" INTEGER PRIMARY KEY AUTOINCREMENT '
                     f'NOT NULL, {", ".join(cols)})')  # fmt: skip
        placeholders = ", ".join("?" * len(cols))
        names = ", ".join(f'"{c}"' for c in child.columns)
        conn.executemany(f'INSERT INTO "{rel.child}" ({names}) VALUES ({placeholders})',
                         zip(*data, strict=True) if data else [])  # fmt: skip
        conn.execute(f'CREATE INDEX "idx_{rel.child}_{rel.child_field}" ON "{rel.child}" '
                     f'("{rel.child_field}")')  # fmt: skip
        alias, description = _layer_doc(rel.child)
        conn.execute("INSERT INTO gpkg_contents (table_name, data_type, identifier, description, "
                     "last_change) VALUES (?, 'attributes', ?, ?, ?)",
                     (rel.child, alias, description, now))  # fmt: skip
        _register_ogr_count(conn, rel.child, len(child))
        bar.update(len(child))
        all_fk &= fk
    return all_fk


#: The one DATETIME form the GeoPackage standard allows (Req 5): UTC, milliseconds, ``Z``.
GPKG_DATETIME_SQL = "strftime('%Y-%m-%dT%H:%M:%fZ', {})"


def normalise_datetimes(target: sqlite3.Connection | str | os.PathLike) -> None:
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
    """
    if not isinstance(target, sqlite3.Connection):
        with closing(sqlite3.connect(target)) as conn, conn:
            normalise_datetimes(conn)
        return
    from vggeo.store.gpkg import register_functions

    conn = target
    register_functions(conn)  # the R-tree triggers GDAL created name ST_IsEmpty, ST_MinX …
    tables = [r[0] for r in conn.execute("SELECT table_name FROM gpkg_contents")]
    for table in tables:
        cols = [r[1] for r in conn.execute(f'PRAGMA table_info("{table}")')
                if str(r[2]).upper() == "DATETIME"]  # fmt: skip
        for col in cols:
            canonical = GPKG_DATETIME_SQL.format(f'"{col}"')
            conn.execute(f'UPDATE "{table}" SET "{col}" = {canonical} WHERE "{col}" IS NOT NULL '
                         f'AND {canonical} IS NOT NULL AND "{col}" IS NOT {canonical}')  # fmt: skip


def _register_ogr_count(conn: sqlite3.Connection, table: str, count: int) -> None:
    """Keep GDAL's feature-count cache (``gpkg_ogr_contents``) complete when it exists."""
    has = conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'gpkg_ogr_contents'").fetchone()
    if has:
        conn.execute("INSERT OR REPLACE INTO gpkg_ogr_contents (table_name, feature_count) "
                     "VALUES (?, ?)", (table, count))  # fmt: skip


def _ensure_extension(conn: sqlite3.Connection, table: str | None, name: str, definition: str,
                      scope: str = "read-write") -> None:  # fmt: skip
    conn.execute("CREATE TABLE IF NOT EXISTS gpkg_extensions (table_name TEXT, column_name TEXT, "
                 "extension_name TEXT NOT NULL, definition TEXT NOT NULL, scope TEXT NOT NULL, "
                 "CONSTRAINT ge_tce UNIQUE (table_name, column_name, extension_name))")  # fmt: skip
    # Not INSERT OR IGNORE: with column_name NULL the UNIQUE constraint never fires, and GDAL
    # may have registered the extension already (it does for JSON list columns).
    seen = conn.execute("SELECT 1 FROM gpkg_extensions WHERE table_name IS ? AND "
                        "column_name IS NULL AND extension_name = ?", (table, name)).fetchone()  # fmt: skip
    if not seen:
        conn.execute("INSERT INTO gpkg_extensions VALUES (?, NULL, ?, ?, ?)",
                     (table, name, definition, scope))  # fmt: skip


def _write_data_columns(conn: sqlite3.Connection, frames: Mapping[str, pd.DataFrame]) -> None:
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
        for table, frame in frames.items()
        for col in frame.columns
        if col in docs
    ]
    # Upsert: GDAL may already have registered a column (mime_type of JSON list columns).
    conn.executemany(
        "INSERT INTO gpkg_data_columns (table_name, column_name, name, title, description) "
        "VALUES (?, ?, ?, ?, ?) ON CONFLICT (table_name, column_name) DO UPDATE SET "
        "name = excluded.name, title = excluded.title, description = excluded.description",
        rows,
    )


def _write_styles(conn: sqlite3.Connection, frames: Mapping[str, pd.DataFrame],
                  geom_cols: Mapping[str, str],
                  relations: list[st.RelationSpec]) -> list[tuple[str, str | None, st.LayerStyle]]:  # fmt: skip
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
    for name, frame in frames.items():
        columns = [c for c in frame.columns if c != getattr(frame, "_geometry_column_name", None)]
        rels = [r for r in relations if name in (r.parent, r.child)]
        if name == "residences" and "home_type" in frame.columns:
            home_types = sorted(set(frame["home_type"].dropna().astype(str)))
            style = st.residences_style(name, columns, home_types, rels)
        elif name == "provisions" or name.startswith("provisions_"):
            pairs = frame[["provision_type", "status"]].astype("string").fillna("")
            ts = sorted(set(map(tuple, pairs.drop_duplicates().to_numpy().tolist())))
            style = st.provisions_style(name, columns, ts, rels)
        else:
            style = st.table_style(name, columns, rels)
        rows.append(("", "", name, geom_cols.get(name, ""), style.name, style.qml, style.sld, 1,
                     style.description, ""))  # fmt: skip
        geometry = None
        if name in geom_cols:
            geometry = "Point" if name == "residences" else "MultiPolygon"
        out.append((name, geometry, style))
    conn.executemany(
        'INSERT INTO layer_styles (f_table_catalog, f_table_schema, f_table_name, '
        'f_geometry_column, "styleName", "styleQML", "styleSLD", "useAsDefault", description, '
        "owner) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        rows,
    )
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:23] + "Z"
    conn.execute("INSERT INTO gpkg_contents (table_name, data_type, identifier, description, "
                 "last_change) VALUES ('layer_styles', 'attributes', 'layer_styles', "
                 "'QGIS default styles (QML, SLD)', ?)", (now,))  # fmt: skip
    _register_ogr_count(conn, "layer_styles", len(rows))
    return out
