"""The residences × provisions join run inside PostGIS, where a server's data already lives.

:func:`residences_in_postgis` answers the same question as :func:`vggeo.join.memory.residences_in`,
with the same pairs, columns and order, but the database does the work: the GiST index of the
residence points is probed once per selected provision (``ST_Within``, ``ST_Intersects`` and
``ST_DWithin`` all use it), and only the answer crosses the wire — the pairs as one ``COPY …
TO STDOUT`` stream of integers, read with pyarrow's CSV reader, plus the selected provisions'
attributes (and polygons, when asked) for the per-provision summary. Nothing of the millions of
residences is pulled into Python.

When to use which (README, "Joins"): with a PostGIS store this path needs no memory for the
registry and keeps a laptop free; the in-memory join is faster on one machine when the data is
in a GeoPackage or GeoParquet file anyway, and is the one to use without a database.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from typing import TYPE_CHECKING

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import shapely

from vggeo.errors import SchemaError, StoreError
from vggeo.join.memory import (
    PAIR_COLUMNS,
    JoinResult,
    _as_list,
    _summarise,
    _take_categorical,
    check_predicate,
    filter_provisions,
)
from vggeo.store import Store, open_store
from vggeo.store.schema import parse_category

if TYPE_CHECKING:
    import psycopg

__all__ = ["residences_in_postgis"]

_SQL_PREDICATE = {
    "within": "ST_Within(r.geom, p.geom)",
    "intersects": "ST_Intersects(r.geom, p.geom)",
    "dwithin": "ST_DWithin(r.geom, p.geom, %(distance)s)",
}


def residences_in_postgis(
    url: str,
    *,
    schema: str = "public",
    predicate: str = "within",
    distance: float | None = None,
    types: str | Iterable[str] | None = None,
    status: str | Iterable[str] | None = None,
    geometry: bool = False,
) -> JoinResult:
    """Pair residences with provisions inside the PostGIS store at ``url``.

    Parameters
    ----------
    url, schema
        The PostGIS store (as :func:`vggeo.store.open_store`).
    predicate, distance, types, status
        As :func:`vggeo.join.memory.residences_in` (statuses compared case-insensitively as there, by
        Python's ``casefold``, whatever the database's collation).
    geometry
        Also return each pair's home point (``pairs`` as a GeoDataFrame) and each provision's
        polygon (``summary`` as a GeoDataFrame), EPSG:3006.

    Returns
    -------
    JoinResult
        The same pairs and summary as :func:`vggeo.join.memory.residences_in` on the store's tables.

    Raises
    ------
    InputError
        Unknown predicate or provision type, a bad distance.
    SchemaError
        The store has no residences with a geometry (nothing to join).
    StoreError
        The store cannot be opened or queried.
    """
    # lazy: psycopg is in the postgis extra
    import psycopg

    distance = check_predicate(predicate, distance)
    with open_store(url, schema=schema) as store:
        conn = store.conn  # its search_path is the store's schema
        try:
            provisions, every = _selected_provisions(conn, types, status, geometry=geometry)
            home_cat = _home_type_dtype(store)
            pairs_raw = _pairs(
                conn,
                None if every else provisions,
                predicate,
                distance,
                home_cat is not None,
                geometry=geometry,
            )
        except psycopg.Error as err:
            raise StoreError(f"{store.location}: the join failed in the database: {err}") from err
    return _result(provisions, pairs_raw, predicate, home_cat, geometry=geometry)


def _selected_provisions(
    conn: psycopg.Connection,
    types: str | Iterable[str] | None,
    status: str | Iterable[str] | None,
    *,
    geometry: bool,
) -> tuple[pd.DataFrame, bool]:
    """The provisions the filters select, in the store's order, with their row number ``fid``,
    and whether that is every provision."""
    cols = ["fid", "provision_id", *PAIR_COLUMNS]
    sel = ", ".join(f'"{c}"' for c in cols)
    if geometry:
        sel += ", ST_AsBinary(geom)"
    rows = conn.execute(f"SELECT {sel} FROM provisions ORDER BY fid").fetchall()
    frame = pd.DataFrame([r[: len(cols)] for r in rows], columns=cols)
    if geometry:
        wkb = np.asarray([None if r[-1] is None else bytes(r[-1]) for r in rows], dtype=object)
        frame = gpd.GeoDataFrame(frame, geometry=shapely.from_wkb(wkb), crs=3006)
    for c in ("provision_id", *PAIR_COLUMNS):
        frame[c] = frame[c].astype("string")
    # the same selection rules as the in-memory join (types checked, statuses casefolded)
    chosen = filter_provisions(frame, types=_as_list(types), status=_as_list(status))
    return chosen.reset_index(drop=True), len(chosen) == len(frame)


def _home_type_dtype(store: Store) -> pd.CategoricalDtype | None:
    """The registered categories of ``residences.home_type`` (the order the in-memory join sees
    after reading the store), or None when the registry has no home types."""
    for col in store._registered_columns("residences"):
        if col.name == "home_type":
            dtype = parse_category(col.dtype)
            return dtype if dtype is not None else pd.CategoricalDtype()
    return None


def _pairs(
    conn: psycopg.Connection,
    provisions: pd.DataFrame | None,
    predicate: str,
    distance: float | None,
    home_type: bool,
    *,
    geometry: bool,
) -> pd.DataFrame:
    """The matching (residence id, provision fid, …) rows, streamed by COPY as CSV; with
    ``provisions`` None, of every provision."""
    names = ["residence_id", "fid"]
    cols = ["r.id", "p.fid"]
    if home_type:
        names.append("home_type")
        cols.append("r.home_type::text")
    if predicate == "dwithin":
        names.append("distance")
        cols.append("ST_Distance(r.geom, p.geom)")
    if geometry:
        names += ["x", "y"]
        cols += ["ST_X(r.geom)", "ST_Y(r.geom)"]
    has_id = conn.execute(
        "SELECT 1 FROM information_schema.columns WHERE table_schema = "
        "current_schema() AND table_name = 'residences' AND column_name = 'id'"
    ).fetchone()
    if has_id is None:
        raise SchemaError(
            "the store holds no residences (table residences has no id column)", field="id"
        )
    # The fids of the selected provisions go in as one array: a filter the planner applies
    # before probing the residences' GiST index once per provision.
    where = "" if provisions is None else "WHERE p.fid = ANY(%(fids)s)"
    sql = (
        f"COPY (SELECT {', '.join(cols)} FROM provisions p JOIN residences r ON "
        f"{_SQL_PREDICATE[predicate]} {where}) TO STDOUT WITH (FORMAT csv)"
    )
    params = {"distance": distance}
    if provisions is not None:
        params["fids"] = provisions["fid"].astype("int64").tolist()
    buf = io.BytesIO()
    with conn.cursor() as cur, cur.copy(sql, params) as copy:
        for block in copy:
            buf.write(block)
    types = {
        "residence_id": "int64",
        "fid": "int64",
        "home_type": "string",
        "distance": "float64",
        "x": "float64",
        "y": "float64",
    }
    if not buf.tell():
        return pd.DataFrame({n: pd.Series([], dtype=types[n]) for n in names})
    buf.seek(0)

    table = pacsv.read_csv(
        buf,
        read_options=pacsv.ReadOptions(column_names=names),
        convert_options=pacsv.ConvertOptions(
            column_types={
                n: pa.string() if types[n] == "string" else pa.from_numpy_dtype(np.dtype(types[n]))
                for n in names
            },
            strings_can_be_null=True,
        ),
    )
    return table.to_pandas()


def _result(
    provisions: pd.DataFrame,
    raw: pd.DataFrame,
    predicate: str,
    home_cat: pd.CategoricalDtype | None,
    *,
    geometry: bool,
) -> JoinResult:
    """Pairs in the in-memory join's order (residence id, then provision id) and its summary."""
    prov_pos_of_fid = pd.Index(provisions["fid"].to_numpy())
    prov_pos = prov_pos_of_fid.get_indexer(raw["fid"].to_numpy()).astype(np.int64)
    order_of_id = np.argsort(provisions["provision_id"].to_numpy(dtype=object), kind="stable")
    prov_rank = np.empty(len(provisions), dtype=np.int64)
    prov_rank[order_of_id] = np.arange(len(provisions))
    res_id = raw["residence_id"].to_numpy(dtype=np.int64)
    order = np.lexsort((prov_rank[prov_pos], res_id))
    prov_pos, res_id = prov_pos[order], res_id[order]

    pairs = pd.DataFrame({"residence_id": res_id})
    for col in ("provision_id", *PAIR_COLUMNS):
        pairs[col] = _take_categorical(provisions[col], prov_pos)
    if predicate == "dwithin":
        pairs["distance"] = raw["distance"].to_numpy()[order]
    home_types = None
    if home_cat is not None:
        home_types = pd.Series(
            pd.Categorical(raw["home_type"].to_numpy(dtype=object)[order], dtype=home_cat)
        )
    attrs = pd.DataFrame({c: provisions[c] for c in ("provision_id", *PAIR_COLUMNS)})
    summary = _summarise(attrs, np.arange(len(pairs)), prov_pos, home_types)
    if geometry:
        points = shapely.points(raw["x"].to_numpy()[order], raw["y"].to_numpy()[order])
        pairs = gpd.GeoDataFrame(pairs, geometry=points, crs=3006)
        summary = gpd.GeoDataFrame(summary, geometry=provisions.geometry.values, crs=3006)
    return JoinResult(pairs, summary)
