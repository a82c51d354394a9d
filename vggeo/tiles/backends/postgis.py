"""The PostGIS backend: ``ST_AsMVT`` over the store's tables, same tiles as the memory backend.

Same features, ids and attributes as :class:`~vggeo.tiles.backends.memory.MemorySource`: residences
are assigned to tiles and cluster cells with the very same floating-point arithmetic (Morton
cell = ``floor((x − origin) · 2**28 / root) >> shift``, half-open tile bounds), clusters carry
the same ids and exact counts, provisions get the same 52-bit ids from their UUIDs and the same
per-zoom simplification tolerance and pixel-size cut.

Unfiltered low-zoom clusters come from a table of precomputed cell aggregates
(``vggeo_tile_cells``, one row per non-empty cell per depth, rebuilt when the data version
changes), so a z6 tile over millions of homes reads at most 256 rows instead of aggregating them.
Filtered tiles are aggregated on the fly. Homes one by one (high zooms) come, once built, from a
copy of the residences in the grid's CRS, in the order of a space-filling curve
(``vggeo_tile_points``, built and versioned with the cells): a tile's homes are then neighbours on
disk, and none is transformed per request. Connections come from the store's pool
(:meth:`vggeo.store.Store.pool`); every table is named with the store's schema; every query runs
as a server-side prepared statement (``prepare=True``).

A tile is planned once and run by either of two drivers: each member layer's plan is a
generator that yields its statements (``(sql, params)``) and receives each one's row, so the
same SQL and the same decisions (points, or clusters when a tile holds too many) serve
:meth:`PostGISSource.tile` (a thread, the store's pool) and :meth:`PostGISSource.tile_async`
(an event loop, an asyncio pool of its own: no thread hand-off per tile).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import threading
import time
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import shapely

from vggeo.errors import StoreError
from vggeo.store.postgis import NOTIFY_CHANNEL, PostGISStore
from vggeo.store.readonly import PostGISTables
from vggeo.store.schema import META_TABLE
from vggeo.tiles.backends.base import RenderingSource
from vggeo.tiles.cluster import CLUSTER_ID_BASE, DEFAULT_OPTIONS, ClusterOptions
from vggeo.tiles.encode import EXTENT
from vggeo.tiles.grids import Grid, get_grid
from vggeo.tiles.index import DEPTH, KNOWN_CATEGORIES, RESIDENCE_COLUMNS
from vggeo.tiles.layers import Composite, Filters, Layer, slug

if TYPE_CHECKING:
    import geopandas as gpd
    import psycopg

    from vggeo.store import DataSource

__all__ = ["PostGISSource", "write_tables", "data_version", "listen_versions", "NOTIFY_CHANNEL"]

# closings of asyncio pools scheduled on their loop (kept referenced until done)
_closing: set[asyncio.Task[None]] = set()

log = logging.getLogger(__name__)

#: A member layer's plan: yields ``(sql, params)``, receives the statement's row, returns the
#: encoded MVT layer (``b""`` when it holds nothing).
Plan = Generator[tuple[str, dict], Any, bytes]

POLYGON_BUFFER = 64
CELLS_TABLE = "vggeo_tile_cells"
POINTS_TABLE = "vggeo_tile_points"
#: What the cell and point tables are built as: part of their tag, so that tables another
#: version of vggeo built (without the point table) are rebuilt, not trusted.
TABLES_LAYOUT = "points1"
# The tile envelope in EPSG:3006 for the index prefilter (&&). Straight edges in the grid CRS
# are curves in 3006: densify the edges and pad by 0.1 % so the bounding box covers them; the
# exact membership test is done afterwards in grid coordinates.
_ENVELOPE_3006 = (
    "ST_Transform(ST_Segmentize(ST_Expand(ST_MakeEnvelope(%(w)s, %(s)s, %(e)s, "
    "%(n)s, %(srid)s), (%(e)s - %(w)s) / 1000), (%(e)s - %(w)s) / 16), 3006)"
)

# Every layer's features in the order of their ids: the order in which PostgreSQL hands the
# aggregate its rows depends on the plan (index or sequential scan, hash or sorted grouping,
# parallel workers), which a generic plan, new statistics or a busier table can change from one
# execution to the next; the same tile would then be other bytes, and get another ETag, on
# another replica or after a cache eviction. The aggregate's own ORDER BY is the form SQL
# guarantees (a sorted subquery "usually" works). Its cost is the sort: +0.07 ms at the median
# z14–z16 tile with generic plans (paired per tile, 600 tiles of 5.6 M homes; see TILE_SESSION
# for what it cost without them), about 15 % of the densest tiles' statements (24 000 homes:
# 40 → 46 ms).
# Provisions' 52-bit ids come from their UUIDs, so two could in principle be equal: their
# geometries break such a tie.
_AS_MVT = "ST_AsMVT(q, %(name)s, %(extent)s, 'geom', 'fid' ORDER BY q.fid)"
_AS_MVT_PROVISIONS = "ST_AsMVT(q, %(name)s, %(extent)s, 'geom', 'fid' ORDER BY q.fid, q.geom)"

#: Server settings of the tile connections (a URL's own ``options`` come after, and win): the
#: source's pool, for tiles in threads and its other statements, gets the generic plans; the
#: asyncio pool, for tiles on the event loop, both:
#:
#: * no parallel workers: a tile is a short statement and concurrent requests keep the cores
#:   busy already; a parallel plan (which PostgreSQL picks for the densest tiles) starts two
#:   more processes per statement: with 8 clients of the z14–z16 list on 2 cores, p99 67 ms and
#:   396 tiles/s without them, 71–80 ms and 336–384 tiles/s with them;
#: * generic plans: the statements are prepared and differ only in the tile's bounds. Left to
#:   choose, PostgreSQL kept planning the sorted points statement anew at every execution (its
#:   generic plan's estimate, with a sort over an unknown number of rows, stayed above the
#:   custom plans'): +0.28 ms at the median tile against the unsorted statement; with the
#:   generic plan +0.07 ms, and the densest tiles faster too (mean 3.39 against 3.83 ms, p99
#:   41 against 46 ms; in process, 600 z14–z16 tiles, paired; benchmarks/tiles.md).
GENERIC_PLANS = "-c plan_cache_mode=force_generic_plan"
TILE_SESSION = f"-c max_parallel_workers_per_gather=0 {GENERIC_PLANS}"


def _res_select(attrs: list[str]) -> str:
    """The select list of a residence row in a tile: the id, then the properties, as text but the
    construction year."""
    return ", ".join(
        ["id", *[c if c == "construction_year" else f"{c}::text AS {c}" for c in attrs]]
    )


def _with_literals(sql: str, **values: str | int) -> str:
    """``sql`` with the placeholders ``%(key)s`` of ``values`` written in as literals: integers,
    and names made of letters, digits and ``_`` only (layer ids)."""
    for key, value in values.items():
        if isinstance(value, int):
            text = str(int(value))
        elif value.replace("_", "").isalnum() and value.isascii():
            text = f"'{value}'"
        else:
            raise StoreError(f"unsafe SQL literal {value!r}")
        sql = sql.replace(f"%({key})s", text)
    return sql


def _ident(name: str) -> str:
    if not name.replace("_", "").isalnum():
        raise StoreError(f"unsafe SQL identifier {name!r}")
    return f'"{name}"'


def data_version(conn: psycopg.Connection, schema: str, *, store: bool = True) -> str:
    """The data version of the tables in ``schema``, read on ``conn`` (inside the snapshot the
    cell table is built from; elsewhere the store's :attr:`~vggeo.store.Store.data_version`).

    The same value as the store gives: a vggeo store's own ``data_version`` (written in the same
    transaction as the ledger entry of every ingest), or for tables loaded by other tools
    (``store=False``, :class:`~vggeo.store.PostGISTables`) PostgreSQL's change counters.
    """
    if store:
        row = conn.execute(
            f"SELECT value FROM {_ident(schema)}.{_ident(META_TABLE)} WHERE key = 'data_version'"
        ).fetchone()
        return row[0] if row and row[0] else "0"
    rows = conn.execute(
        "SELECT relname, n_tup_ins, n_tup_upd, n_tup_del, pg_relation_filenode(relid::regclass) "
        "FROM pg_stat_user_tables WHERE schemaname = %s AND relname IN ('residences', "
        "'provisions') ORDER BY relname",
        [schema],
    ).fetchall()
    return hashlib.blake2b(repr(rows).encode(), digest_size=8).hexdigest()


def listen_versions(
    url: str,
    schema: str,
    callback: Callable[[str], None],
    stop: threading.Event,
    *,
    wait: float = 1.0,
) -> None:
    """Call ``callback(version)`` for every ingest committed to ``schema`` until ``stop`` is set.

    LISTENs on :data:`~vggeo.store.postgis.NOTIFY_CHANNEL` on a connection of its own (a pooled
    connection cannot hold a LISTEN). A lost connection is opened again after a pause; what
    was missed meanwhile is caught by the caller's version poll. Blocks: run it in a thread.
    """
    # lazy: psycopg is in the postgis extra
    import psycopg

    pause = wait
    while not stop.is_set():
        try:
            with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
                conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
                pause = wait
                while not stop.is_set():
                    for note in conn.notifies(timeout=wait):
                        target, _, version = note.payload.partition(" ")
                        if target == schema:
                            callback(version)
        except Exception as err:  # noqa: BLE001 - keep listening: the poll covers the gap
            log.warning(
                "listening for ingests failed (%s); again in %.0f s", type(err).__name__, pause
            )
            stop.wait(pause)
            pause = min(pause * 2, 30.0)


class PostGISSource(RenderingSource):
    """Tiles rendered by PostGIS from tables ``residences`` and ``provisions`` (EPSG:3006).

    Parameters
    ----------
    store
        A PostGIS store (:class:`~vggeo.store.postgis.PostGISStore`, or
        :class:`~vggeo.store.PostGISTables` for tables loaded by other tools): its URL, schema,
        pool and data version are used; it stays open (its opener closes it).
    options
        Clustering options (the same as the embedded backend's for the same tiles).
    pool_size
        Maximum connections.
    precompute
        Build/refresh the cell-aggregate table for unfiltered low-zoom tiles.
    """

    kind = "postgis"
    renders_on_loop = True

    def __init__(
        self,
        store: DataSource,
        *,
        options: ClusterOptions = DEFAULT_OPTIONS,
        pool_size: int = 8,
        precompute: bool = True,
    ) -> None:
        if not isinstance(store, PostGISStore | PostGISTables):
            raise StoreError(f"{store.location} is not a PostGIS store")
        self.store = store
        self.url = store.url
        self.schema = schema = store.schema or "public"
        _ident(schema)  # refuse an unsafe name before it reaches any SQL
        self.options = options
        # a vggeo store versions its data in its meta table; other tables by PostgreSQL's counters
        self._store_meta = not store.read_only
        self.pool = store.pool(pool_size, settings=GENERIC_PLANS)
        try:
            # The version before the tables are looked at: an ingest committed in between makes
            # the next version check reload, instead of leaving old columns under a new version.
            self.version = self.current_version()
            self._inspect()
            self._read_categories()
        except BaseException:
            self.pool.close()
            raise
        self._cells_ready: dict[str, bool] = {}
        self.precompute = precompute
        self._points_sql: dict[tuple[str, str, bool, bool], str] = {}
        self.pool_size = pool_size
        # tile_async's pool: made in the first event loop that asks (see _async_pool)
        self._apool: Any = None
        self._aloop: asyncio.AbstractEventLoop | None = None
        self._aopening: asyncio.Future[Any] | None = None
        self._closed = False

    def _qual(self, table: str) -> str:
        """``"schema"."table"``: every table is named with the store's schema, never found
        through the connection's search_path."""
        return f"{_ident(self.schema)}.{_ident(table)}"

    # --- metadata ------------------------------------------------------------------------------

    def _inspect(self) -> None:
        with self.pool.connection() as conn:
            rows = conn.execute(
                "SELECT f_table_name, f_geometry_column, srid FROM geometry_columns "
                "WHERE f_table_name IN ('residences', 'provisions') "
                "AND f_table_schema = %s",
                [self.schema],
            ).fetchall()
            self.geom = {t: c for t, c, _ in rows}
            for t, _, srid in rows:
                if srid != 3006:
                    raise StoreError(f"table {t} must be in EPSG:3006, found SRID {srid}")
            cols = conn.execute(
                "SELECT table_name, column_name FROM information_schema.columns "
                "WHERE table_schema = %s "
                "AND table_name IN ('residences', 'provisions')",
                [self.schema],
            ).fetchall()
            self.columns = {
                t: {c for tt, c in cols if tt == t} for t in ("residences", "provisions")
            }
            self._check_keys()
        if not self.geom:
            where = "" if self.schema == "public" else f" in schema {self.schema!r}"
            raise StoreError(
                f"PostGIS store has neither a 'residences' nor a 'provisions' table{where}"
            )

    def _read_categories(self) -> None:
        with self.pool.connection() as conn:
            self.categories: dict[str, list[str]] = {}
            for table, col in (
                ("residences", "home_type"),
                ("residences", "ownership_type"),
                ("provisions", "provision_type"),
                ("provisions", "status"),
            ):
                if table in self.geom and col in self.columns[table]:
                    vals = [
                        r[0]
                        for r in conn.execute(
                            f"SELECT DISTINCT {_ident(col)}::text FROM {self._qual(table)} "
                            f"WHERE {_ident(col)} IS NOT NULL"
                        ).fetchall()
                    ]
                    known = list(KNOWN_CATEGORIES.get(col, ()))
                    self.categories[col] = [k for k in known if k in vals] + sorted(
                        set(vals) - set(known)
                    )

    def _check_keys(self) -> None:
        """A table without the identity its tiles need is left out (a store holds the tables of
        every product from creation; one with provisions only has a ``residences`` table that
        has never received a registry column) — unless it is unusable for another reason."""
        for table, key in (("residences", "id"), ("provisions", "provision_id")):
            if table in self.geom and key not in self.columns[table]:
                log.warning("table %s has no %r column: not served", table, key)
                del self.geom[table]

    def listen(self, callback: Callable[[str], None], stop: threading.Event) -> None:
        """Call ``callback(version)`` whenever an ingest commits (see :func:`listen_versions`)."""
        listen_versions(self.url, self.schema, callback, stop)

    def allowed_values(self) -> dict[str, list[str]]:
        return {c: self.categories.get(c, []) for c in Filters.SET_FIELDS}

    def home_types(self) -> list[str]:
        return list(self.categories.get("home_type", []))

    def bounds_wgs84(self) -> tuple[float, float, float, float] | None:
        """(west, south, east, north) of the data in degrees (queried once)."""
        if not hasattr(self, "_bounds"):
            self._bounds = self._query_bounds()
        return self._bounds

    def _query_bounds(self) -> tuple[float, float, float, float] | None:
        parts = [
            f"SELECT ST_Extent({_ident(g)}) AS e FROM {self._qual(t)}" for t, g in self.geom.items()
        ]
        sql = (
            "SELECT ST_XMin(b), ST_YMin(b), ST_XMax(b), ST_YMax(b) FROM (SELECT "
            "ST_Transform(ST_SetSRID(ST_Extent(e)::geometry, 3006), 4326) b FROM ("
            + " UNION ALL ".join(parts)
            + ") u) v"
        )
        with self.pool.connection() as conn:
            row = conn.execute(sql).fetchone()
        if row is None or row[0] is None:
            return None
        west, south, east, north = (float(v) for v in row)
        return west, south, east, north

    def warm(self) -> None:
        if self.precompute and "residences" in self.geom:
            self._ensure_cells(get_grid("WebMercatorQuad"))

    def _release(self) -> None:
        self.pool.close()
        self._close_async_pool()

    # --- rendering on an event loop ------------------------------------------------------------

    async def tile_async(
        self,
        layer: str | Layer | Composite,
        z: int,
        x: int,
        y: int,
        *,
        grid: str | Grid = "WebMercatorQuad",
        filters: Filters | None = None,
    ) -> bytes | None:
        """:meth:`tile`, awaited on the running event loop: the same plans, run on an asyncio
        connection pool (at most ``pool_size`` connections, made on first use).

        ``None`` where this loop cannot render without blocking — the precomputed cells of
        ``grid`` are not built yet (a DDL build of seconds), or the source's asyncio pool
        belongs to another event loop — and the caller renders with :meth:`tile` in a thread.
        """
        g, todo = self._members_at(layer, z, x, y, grid, filters)
        for m, mf in todo:
            if m.table == "residences" and self._needs_cells(g, z, mf):
                return None
        pool = await self._async_pool()
        if pool is None:
            return None
        parts = [await self._run_async(pool, self._plan(m, g, z, x, y, mf)) for m, mf in todo]
        return b"".join(parts)

    def _needs_cells(self, g: Grid, z: int, f: Filters) -> bool:
        """Whether a residences tile reads cells of ``g`` that are not built yet."""
        unbuilt = self.precompute and not self._cells_ready.get(g.id)
        return unbuilt and not f and z < self.options.cluster_maxzoom and "residences" in self.geom

    async def _run_async(self, pool: Any, plan: Plan) -> bytes:
        """Drive ``plan`` on the asyncio pool (see :meth:`_run`)."""
        try:
            query = next(plan)
            while True:
                async with pool.connection() as conn:
                    cur = await conn.execute(*query, prepare=True, binary=True)
                    row = await cur.fetchone()
                query = plan.send(row)
        except StopIteration as done:
            return done.value

    async def _async_pool(self) -> Any:
        """The asyncio pool of this source, opened in the running loop on first use; ``None``
        when another loop made it (a pool's connections belong to one loop)."""
        loop = asyncio.get_running_loop()
        if self._closed:
            return None
        if self._aloop is None:
            self._aloop = loop
            self._aopening = loop.create_task(self._open_async_pool())
        elif self._aloop is not loop:
            return None
        assert self._aopening is not None
        # shielded: a cancelled request does not cancel the opening the others wait for
        return await asyncio.shield(self._aopening)

    async def _open_async_pool(self) -> Any:
        store = self.store
        assert isinstance(store, PostGISStore | PostGISTables)
        pool = store.async_pool(self.pool_size, settings=TILE_SESSION)
        try:
            await pool.open(wait=True, timeout=30)
        except BaseException as err:
            await pool.close()
            self._aloop = self._aopening = None  # the next request tries again
            if isinstance(err, Exception):
                raise StoreError(f"cannot connect to PostGIS: {err}") from err
            raise
        if self._closed:  # closed while the pool was opening
            await pool.close()
            return None
        self._apool = pool
        return pool

    def _close_async_pool(self) -> None:
        """Close the asyncio pool on its own loop, from whichever thread closes the source (a
        reload closes the old source in a thread while the loop serves)."""
        self._closed = True
        pool, loop, self._apool = self._apool, self._aloop, None
        if pool is None or loop is None or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            task = loop.create_task(pool.close())
            _closing.add(task)
            task.add_done_callback(_closing.discard)
        elif loop.is_running():
            try:
                asyncio.run_coroutine_threadsafe(pool.close(), loop).result(timeout=10)
            except Exception:  # noqa: BLE001 - the loop is ending: its connections go with it
                log.warning("the PostGIS source's asyncio pool did not close in time")

    # --- tiles ---------------------------------------------------------------------------------

    def _member_tile(
        self, member: Layer, g: Grid, z: int, x: int, y: int, filters: Filters
    ) -> bytes:
        return self._run(self._plan(member, g, z, x, y, filters))

    def _run(self, plan: Plan) -> bytes:
        """Drive ``plan`` on the store's pool: each statement on a pooled connection."""
        try:
            query = next(plan)
            while True:
                with self.pool.connection() as conn:
                    # binary: the MVT comes as its bytes, not as hex text twice its size that
                    # PostgreSQL encodes and psycopg decodes (0.1–0.25 ms of a median z15 tile)
                    row = conn.execute(*query, prepare=True, binary=True).fetchone()
                query = plan.send(row)
        except StopIteration as done:
            return done.value

    def _plan(self, member: Layer, g: Grid, z: int, x: int, y: int, filters: Filters) -> Plan:
        if member.table not in self.geom:  # a store without that table serves what it has
            return b""
        if member.table == "residences":
            return (yield from self._residences(member, g, z, x, y, filters))
        return (yield from self._provisions(member, g, z, x, y, filters))

    @staticmethod
    def _fetch(sql: str, params: dict) -> Plan:
        """One statement whose row is the MVT layer."""
        row = yield sql, params
        return bytes(row[0]) if row and row[0] else b""

    def _grid_geom(self, g: Grid, table: str) -> str:
        col = _ident(self.geom[table])
        return col if g.epsg == 3006 else f"ST_Transform({col}, {g.epsg})"

    def _res_attrs(self) -> list[str]:
        """The residences' tile properties this table has (the embedded backend's columns)."""
        return [c for c in RESIDENCE_COLUMNS[1:] if c in self.columns["residences"]]

    def _res_filter_sql(self) -> str:
        cols = self.columns["residences"]
        conds = []
        for name in ("home_type", "ownership_type"):
            if name in cols:
                conds.append(f"(%({name})s::text[] IS NULL OR {name}::text = ANY(%({name})s))")
        if "construction_year" in cols:
            conds.append("(%(ymin)s::int IS NULL OR construction_year >= %(ymin)s)")
            conds.append("(%(ymax)s::int IS NULL OR construction_year <= %(ymax)s)")
        return " AND ".join(conds) or "TRUE"

    def _res_params(self, f: Filters) -> dict:
        return {
            "home_type": sorted(f.home_type) or None,
            "ownership_type": sorted(f.ownership_type) or None,
            "ymin": f.construction_year_min,
            "ymax": f.construction_year_max,
        }

    def _points_from(self, g: Grid, filtered: bool) -> str:
        """The residences of a tile's bounding box with their grid coordinates ``gx``, ``gy`` (a
        superset of the tile: the caller applies the exact, half-open bounds).

        Once the tables of ``g`` are built, from its point table: the coordinates stored, and a
        tile's homes stored next to each other. Measured on 5.6 M homes, 600 z14–z16 tiles of
        the density list, in process: this statement on a spatially ordered copy 0.94–1.00 ms,
        on the same copy in load order 1.39–1.45 ms, from the residences table 1.52–1.67 ms —
        the order, not the saved ``ST_Transform``, is most of it (benchmarks/tiles.md, eighth
        pass). Until then, from the residences table, transformed once per point in a subquery
        the planner may not inline (``OFFSET 0``): inlined, every comparison of the bounds
        repeats the ``ST_Transform``.
        """
        cond = self._res_filter_sql() if filtered else "TRUE"
        attrs = self._res_attrs()
        if self._cells_ready.get(g.id):
            return (
                f"SELECT {', '.join(['id', *attrs])}, ST_X(gg) AS gx, ST_Y(gg) AS gy FROM "
                f"{self._qual(self._points_table(g))} WHERE gg && ST_MakeEnvelope(%(w)s, %(s)s, "
                f"%(e)s, %(n)s, %(srid)s) AND {cond}"
            )
        return (
            f"SELECT {_res_select(attrs)}, ST_X(gg) AS gx, ST_Y(gg) AS gy FROM (SELECT *, "
            f"{self._grid_geom(g, 'residences')} AS gg FROM {self._qual('residences')} WHERE "
            f"{_ident(self.geom['residences'])} && {_ENVELOPE_3006} AND {cond} OFFSET 0) r"
        )

    def _points_cte(self, g: Grid) -> tuple[str, list[str]]:
        """Residences inside the tile (half-open bounds, as the Morton index), grid coords."""
        return (
            f"pts AS (SELECT * FROM ({self._points_from(g, True)}) r2 "
            "WHERE gx >= %(w)s AND gx < %(e)s AND gy > %(s)s AND gy <= %(n)s)"
        ), self._res_attrs()

    def _tile_params(self, g: Grid, z: int, x: int, y: int) -> dict:
        b = g.bounds(z, x, y)
        return {
            "w": b.west,
            "s": b.south,
            "e": b.east,
            "n": b.north,
            "srid": g.epsg,
            "extent": EXTENT,
        }

    def _residences(self, layer: Layer, g: Grid, z: int, x: int, y: int, f: Filters) -> Plan:
        opt = self.options
        params = {**self._tile_params(g, z, x, y), **self._res_params(f), "name": layer.id}
        if z < opt.cluster_maxzoom:
            if not f and self.precompute:
                return (yield from self._cells_from_table(layer, g, z, x, y, params))
            return (yield from self._clusters(layer, g, z, params, opt.cell_bits))
        count, mvt = yield from self._points_or_count(g, params, filtered=bool(f))
        if count > opt.max_points:
            return (yield from self._clusters(layer, g, z, params, opt.overflow_cell_bits))
        return mvt

    # --- the hot path: residences one by one (z ≥ cluster_maxzoom) ------------------------------

    def _points_or_count(
        self, g: Grid, params: dict, *, filtered: bool
    ) -> Generator[tuple[str, dict], Any, tuple[int, bytes]]:
        """(homes in the tile, their MVT layer or ``b""`` when more than ``max_points``).

        One statement, one scan: the tile's points are read once into a materialised CTE that
        both the count and the layer use (counting first in a statement of its own read every
        point twice), the SQL text is built once per grid and prepared, and the tile coordinates
        are computed arithmetically — the points are inside the tile already, so
        ``ST_AsMVTGeom``'s clipping and validation would only cost time. ``round()`` on
        ``float8`` rounds half to even, as the embedded backend's ``numpy.rint``.
        """
        which = (g.id, params["name"], filtered, bool(self._cells_ready.get(g.id)))
        sql = self._points_sql.get(which)
        if sql is None:
            sql = self._points_sql[which] = self._points_layer_sql(g, params["name"], filtered)
        # psycopg binds only the parameters the text names: the others in params cost nothing
        k = EXTENT / (params["e"] - params["w"])
        n, mvt = yield sql, {**params, "k": k}
        return int(n), bytes(mvt) if mvt else b""

    def _points_layer_sql(self, g: Grid, name: str, filtered: bool) -> str:
        """The statement of :meth:`_points_or_count` for grid ``g`` and layer ``name``.

        The grid coordinates come from :meth:`_points_from`. What is the same for every tile of
        the grid and layer (the layer's name, extent, SRID, the point limit) is written into the
        text, and an unfiltered tile — nearly every request — gets a text without the filter's
        conditions: five parameters to bind instead of thirteen (−0.06 to −0.10 ms a tile;
        benchmarks/tiles.md).
        """
        attrs = self._res_attrs()
        sql = (
            f"WITH pts AS MATERIALIZED (SELECT {', '.join(['id', *attrs])}, gx, gy FROM ("
            f"{self._points_from(g, filtered)}) r2 "
            "WHERE gx >= %(w)s AND gx < %(e)s AND gy > %(s)s AND gy <= %(n)s), "
            "n AS (SELECT count(*) AS n FROM pts) "
            "SELECT n.n, CASE WHEN n.n BETWEEN 1 AND %(max_points)s THEN ("
            "SELECT " + _AS_MVT + " FROM ("
            f"SELECT id AS fid, {', '.join(['id', *attrs])}, ST_MakePoint("
            "round((gx - %(w)s) * %(k)s), round((%(n)s - gy) * %(k)s)) AS geom FROM pts) q)"
            " END FROM n"
        )
        return _with_literals(
            sql, name=name, extent=EXTENT, srid=g.epsg, max_points=self.options.max_points
        )

    def _cluster_select(self, attrs: list[str], depth: int) -> str:
        """Columns of the cell rows: singletons as the home, clusters with exact counts."""
        base = CLUSTER_ID_BASE + ((1 << (2 * depth)) - 1) // 3
        ident = f"CASE WHEN count(*) = 1 THEN min(id) ELSE {base} + (cy << {depth}) + cx END"
        cols = [f"{ident} AS fid", f"{ident} AS id"]
        cols += [f"CASE WHEN count(*) = 1 THEN min({a}) END AS {a}" for a in attrs]
        cols += [
            "CASE WHEN count(*) > 1 THEN true END AS cluster",
            "CASE WHEN count(*) > 1 THEN count(*) END AS point_count",
        ]
        for t in self.home_types():
            lit = t.replace("'", "''")
            cols.append(
                f"CASE WHEN count(*) > 1 THEN NULLIF(count(*) FILTER (WHERE home_type = "
                f"'{lit}'), 0) END AS {_ident('count_' + slug(t))}"
            )
        cols += [
            "CASE WHEN count(*) = 1 THEN min(gx) ELSE sum(gx) / count(*) END AS mx",
            "CASE WHEN count(*) = 1 THEN min(gy) ELSE sum(gy) / count(*) END AS my",
        ]
        return ", ".join(cols)

    def _clusters(self, layer: Layer, g: Grid, z: int, params: dict, bits: int) -> Plan:
        depth = z + g.root_depth + bits
        cte, attrs = self._points_cte(g)
        scale = (1 << DEPTH) / g.root_size
        params = {
            **params,
            "ox": g.origin_east,
            "oy": g.origin_north,
            "scale": scale,
            "shift": DEPTH - depth,
        }
        cols = list(attrs)
        sql = (
            f"WITH {cte}, c AS (SELECT *, (floor((gx - %(ox)s) * %(scale)s)::bigint >> %(shift)s)"
            " AS cx, (floor((%(oy)s - gy) * %(scale)s)::bigint >> %(shift)s) AS cy FROM pts), "
            f"cells AS (SELECT {self._cluster_select(cols, depth)} FROM c GROUP BY cx, cy) "
            "SELECT " + _AS_MVT + " FROM (SELECT cells.*, "
            "ST_AsMVTGeom(ST_SetSRID(ST_MakePoint(mx, my), %(srid)s), ST_MakeEnvelope(%(w)s, "
            "%(s)s, %(e)s, %(n)s, %(srid)s), %(extent)s, 0, false) AS geom FROM cells) q"
        )
        sql = sql.replace(
            "SELECT cells.*,",
            "SELECT "
            + ", ".join(
                [
                    "fid",
                    "id",
                    *cols,
                    "cluster",
                    "point_count",
                    *[_ident("count_" + slug(t)) for t in self.home_types()],
                ]
            )
            + ",",
        )
        return (yield from self._fetch(sql, params))

    # --- precomputed cells -------------------------------------------------------------------

    def _cells_table(self, g: Grid) -> str:
        return f"{CELLS_TABLE}_{g.id.lower()}"

    def _points_table(self, g: Grid) -> str:
        return f"{POINTS_TABLE}_{g.id.lower()}"

    def _ensure_cells(self, g: Grid) -> None:
        """Build the aggregate table of unfiltered cells and the point table for ``g`` if
        missing or stale.

        Any number of replicas may start at once: the builder holds a PostgreSQL advisory lock
        (per schema and table), and whoever gets it after a build finds the table tagged with
        the current data version and leaves it. The tag and the aggregates come from one
        snapshot (REPEATABLE READ), so a tag never names data the table does not hold.
        """
        if self._cells_ready.get(g.id):
            return
        table = self._cells_table(g)
        lock = f"vggeo:cells:{self.schema}.{table}"
        with self.pool.connection() as conn:
            # A session lock, taken before the snapshot: a transaction-level lock would be
            # granted inside a snapshot older than the previous builder's commit.
            conn.execute("SELECT pg_advisory_lock(hashtext(%s))", [lock])
            try:
                conn.autocommit = False
                try:
                    conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                    version = data_version(conn, self.schema, store=self._store_meta)
                    tag = self._cells_tag(version)
                    if not self._tables_current(conn, g, tag):
                        started = time.perf_counter()
                        self._build_cells(conn, g, table, tag)
                        log.info(
                            "built %s for data version %s in %.1f s",
                            table,
                            version,
                            time.perf_counter() - started,
                        )
                    conn.commit()
                except BaseException:
                    conn.rollback()
                    raise
                finally:
                    conn.autocommit = True
            finally:
                conn.execute("SELECT pg_advisory_unlock(hashtext(%s))", [lock])
        self._cells_ready[g.id] = True

    def _cells_tag(self, version: str) -> str:
        opt = self.options
        types = ",".join(self.home_types())
        return f"{version}:{opt.cluster_maxzoom}:{opt.cell_bits}:{types}:{TABLES_LAYOUT}"

    def _tables_current(self, conn: psycopg.Connection, g: Grid, tag: str) -> bool:
        """Whether the cell and point tables of ``g`` are built for ``tag`` and hold rows where
        the residences do: after a crash PostgreSQL empties an unlogged table (the cells) and
        keeps its comment, and an empty table must not pass for a tile layer of no homes."""
        cells, points = self._qual(self._cells_table(g)), self._qual(self._points_table(g))
        have = conn.execute(
            "SELECT obj_description(to_regclass(%s), 'pg_class'), "
            "obj_description(to_regclass(%s), 'pg_class')",
            [cells, points],
        ).fetchone()
        if have != (tag, tag):
            return False
        row = conn.execute(
            f"SELECT EXISTS (SELECT FROM {self._qual('residences')}), "
            f"EXISTS (SELECT FROM {cells}), EXISTS (SELECT FROM {points})"
        ).fetchone()
        return row is not None and row[0] == row[1] == row[2]

    def cells_current(self, g: Grid | str = "WebMercatorQuad") -> bool:
        """Whether the cell and point tables of ``g`` are built for the store's current data
        version (see :meth:`_tables_current`)."""
        g = get_grid(g) if isinstance(g, str) else g
        if not self.precompute or "residences" not in self.geom:
            return True
        with self.pool.connection() as conn:
            version = data_version(conn, self.schema, store=self._store_meta)
            return self._tables_current(conn, g, self._cells_tag(version))

    def _build_cells(self, conn: psycopg.Connection, g: Grid, table: str, tag: str) -> None:
        """(Re)build the cell and point tables in the open transaction: built under new names,
        then swapped in, so readers of the old tables wait only for the swap, not for the
        build."""
        points = self._build_points(conn, g, tag)
        opt = self.options
        lo = g.minzoom + g.root_depth + opt.cell_bits
        hi = opt.cluster_maxzoom - 1 + g.root_depth + opt.cell_bits
        has_type = "home_type" in self.columns["residences"]
        types = self.home_types() if has_type else []
        tcols = [_ident("n_" + slug(t)) for t in types]
        scale = (1 << DEPTH) / g.root_size
        new = self._qual(table + "_new")
        conn.execute(f"DROP TABLE IF EXISTS {new}")
        conn.execute(
            f"CREATE UNLOGGED TABLE {new} AS SELECT {hi}::int AS depth, cx, cy, "
            "count(*)::bigint AS n, sum(gx) AS sx, sum(gy) AS sy, min(id) AS one_id, "
            "min(gx) AS one_x, min(gy) AS one_y"
            + "".join(
                f", count(*) FILTER (WHERE home_type::text = "
                f"'{t.replace(chr(39), chr(39) * 2)}')::bigint AS {c}"
                for t, c in zip(types, tcols, strict=True)
            )
            + f" FROM (SELECT id, {'home_type, ' if has_type else ''}ST_X(gg) gx, ST_Y(gg) gy, "
            f"(floor((ST_X(gg) - {g.origin_east!r}) * {scale!r})::bigint >> {DEPTH - hi})"
            f" cx, (floor(({g.origin_north!r} - ST_Y(gg)) * {scale!r})::bigint >> "
            f"{DEPTH - hi}) cy FROM (SELECT *, {self._grid_geom(g, 'residences')} gg "
            f"FROM {self._qual('residences')}) r) p GROUP BY cx, cy"
        )
        for d in range(hi - 1, lo - 1, -1):
            conn.execute(
                f"INSERT INTO {new} SELECT {d}, cx >> 1, cy >> 1, sum(n), sum(sx), "
                "sum(sy), min(one_id), min(one_x), min(one_y)"
                + "".join(f", sum({c})" for c in tcols)
                + f" FROM {new} WHERE depth = {d + 1} GROUP BY cx >> 1, cy >> 1"
            )
        conn.execute(f"CREATE INDEX ON {new} (depth, cy, cx)")
        conn.execute(f"COMMENT ON TABLE {new} IS '{tag.replace(chr(39), chr(39) * 2)}'")
        conn.execute(f"ANALYZE {new}")
        # the swaps last: dropping a table locks its readers out until the commit
        for name in (table, points):
            conn.execute(f"DROP TABLE IF EXISTS {self._qual(name)}")
            conn.execute(f"ALTER TABLE {self._qual(name + '_new')} RENAME TO {_ident(name)}")

    def _build_points(self, conn: psycopg.Connection, g: Grid, tag: str) -> str:
        """The residences with their geometry in ``g``'s CRS, in Hilbert order (PostGIS sorts
        geometries along a Hilbert curve), with their tile properties as tiles carry them: built
        as ``<table>_new``; returns the table's name (the caller swaps it in).

        Logged, unlike the cells: after a crash it keeps its rows (an unlogged table comes back
        empty), so the high zooms stay served. For 5.6 M homes it is most of the build (≈ 20 s)
        and takes ≈ 0.75 GB beside the residences' 0.9 GB."""
        table = self._points_table(g)
        new = self._qual(table + "_new")
        conn.execute(f"DROP TABLE IF EXISTS {new}")
        conn.execute(
            f"CREATE TABLE {new} AS SELECT {_res_select(self._res_attrs())}, "
            f"{self._grid_geom(g, 'residences')} AS gg "
            f"FROM {self._qual('residences')} ORDER BY gg"
        )
        conn.execute(f"CREATE INDEX ON {new} USING gist (gg)")
        conn.execute(f"COMMENT ON TABLE {new} IS '{tag.replace(chr(39), chr(39) * 2)}'")
        conn.execute(f"ANALYZE {new}")
        return table

    def _cells_from_table(
        self, layer: Layer, g: Grid, z: int, x: int, y: int, params: dict
    ) -> Plan:
        self._ensure_cells(g)  # blocking (a build): tile_async leaves unbuilt cells to tile()
        bits = self.options.cell_bits
        depth = z + g.root_depth + bits
        base = CLUSTER_ID_BASE + ((1 << (2 * depth)) - 1) // 3
        attrs = self._res_attrs()
        types = self.home_types()
        counts = "".join(
            f", CASE WHEN c.n > 1 THEN NULLIF(c.{_ident('n_' + slug(t))}, 0) END "
            f"AS {_ident('count_' + slug(t))}"
            for t in types
        )
        one = "".join(
            f", CASE WHEN c.n = 1 THEN r.{a}{'::text' if a != 'construction_year' else ''}"
            f" END AS {a}"
            for a in attrs
        )
        sql = (
            "SELECT " + _AS_MVT + " FROM ("
            f"SELECT CASE WHEN c.n = 1 THEN c.one_id ELSE {base} + (c.cy << {depth}) + c.cx END "
            f"AS fid, CASE WHEN c.n = 1 THEN c.one_id ELSE {base} + (c.cy << {depth}) + c.cx END "
            f"AS id{one}, CASE WHEN c.n > 1 THEN true END AS cluster, "
            f"CASE WHEN c.n > 1 THEN c.n END AS point_count{counts}, "
            "ST_AsMVTGeom(ST_SetSRID(ST_MakePoint(CASE WHEN c.n = 1 THEN c.one_x ELSE c.sx / c.n "
            "END, CASE WHEN c.n = 1 THEN c.one_y ELSE c.sy / c.n END), %(srid)s), "
            "ST_MakeEnvelope(%(w)s, %(s)s, %(e)s, %(n)s, %(srid)s), %(extent)s, 0, false) AS geom "
            f"FROM {self._qual(self._cells_table(g))} c LEFT JOIN {self._qual('residences')} r ON c.n = 1 AND "
            "r.id = c.one_id WHERE c.depth = %(depth)s AND c.cx >= %(cx0)s AND c.cx < %(cx1)s "
            "AND c.cy >= %(cy0)s AND c.cy < %(cy1)s) q"
        )
        k = 1 << bits
        return (
            yield from self._fetch(
                sql,
                {
                    **params,
                    "depth": depth,
                    "cx0": x * k,
                    "cx1": (x + 1) * k,
                    "cy0": y * k,
                    "cy1": (y + 1) * k,
                },
            )
        )

    # --- provisions ----------------------------------------------------------------------------

    def _provisions(self, layer: Layer, g: Grid, z: int, x: int, y: int, f: Filters) -> Plan:
        cols = self.columns["provisions"]
        attrs = [a.name for a in layer.attributes if a.name in cols]
        types = set(f.provision_type)
        if layer.provision_type is not None:
            types = ({layer.provision_type} & types) if types else {layer.provision_type}
            if not types:
                return b""
        b = g.bounds(z, x, y)
        size = b.east - b.west
        pad = size * POLYGON_BUFFER / EXTENT
        params = {
            "w": b.west - pad,
            "s": b.south - pad,
            "e": b.east + pad,
            "n": b.north + pad,
            "tw": b.west,
            "ts": b.south,
            "te": b.east,
            "tn": b.north,
            "srid": g.epsg,
            "extent": EXTENT,
            "buffer": POLYGON_BUFFER,
            "name": layer.id,
            "px": size / g.tile_pixels,
            "tol": size / g.tile_pixels / 4,
            "types": sorted(types) or None,
            "status": sorted(f.status) or None,
        }
        geom = _ident(self.geom["provisions"])
        sql = (
            "SELECT " + _AS_MVT_PROVISIONS + " FROM ("
            "SELECT tile_fid AS fid, tile_fid AS id, "
            + ", ".join(f"{a}::text AS {a}" for a in attrs if a != "id")
            + ", ST_AsMVTGeom(ST_SimplifyPreserveTopology(gg, %(tol)s), ST_MakeEnvelope(%(tw)s, "
            "%(ts)s, %(te)s, %(tn)s, %(srid)s), %(extent)s, %(buffer)s, true) AS geom FROM ("
            "SELECT *, ('x' || substr(replace(provision_id::text, '-', ''), 1, 13))::bit(52)"
            f"::bigint AS tile_fid, {self._grid_geom(g, 'provisions')} AS gg FROM {self._qual('provisions')} WHERE "
            f"{geom} && {_ENVELOPE_3006}"
            " AND (%(types)s::text[] IS NULL OR provision_type::text = ANY(%(types)s)) "
            "AND (%(status)s::text[] IS NULL OR status::text = ANY(%(status)s))) p "
            "WHERE gg && ST_MakeEnvelope(%(w)s, %(s)s, %(e)s, %(n)s, %(srid)s) "
            "AND GREATEST(ST_XMax(gg) - ST_XMin(gg), ST_YMax(gg) - ST_YMin(gg)) >= %(px)s) q "
            "WHERE geom IS NOT NULL"
        )
        return (yield from self._fetch(sql, params))


def write_tables(
    url: str, residences: gpd.GeoDataFrame, provisions: gpd.GeoDataFrame, *, progress: bool = False
) -> None:
    """Load residences and provisions GeoDataFrames (EPSG:3006) into PostGIS with COPY.

    A helper for tests and benchmarks (the store library owns production loading): replaces
    tables ``residences`` and ``provisions`` and indexes their geometry.
    """
    # lazy: psycopg is in the postgis extra
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        for table, frame, ddl in (
            (
                "residences",
                residences,
                "id bigint PRIMARY KEY, home_type text, ownership_type text, construction_year "
                "smallint, municipality_code text, geom geometry(Point, 3006)",
            ),
            (
                "provisions",
                provisions,
                "provision_id text PRIMARY KEY, provision_type text, status text, designation "
                "text, name text, municipality text, plan_type text, "
                "geom geometry(MultiPolygon, 3006)",
            ),
        ):
            cols = [c.split()[0] for c in ddl.split(", ") if not c.startswith("geom")]
            cols = [c for c in cols if c in frame.columns]
            conn.execute(f"DROP TABLE IF EXISTS {table} CASCADE")
            conn.execute(f"CREATE TABLE {table} ({ddl})")
            # CSV built column-wise by pandas, streamed in chunks: no per-row Python.
            for start in range(0, len(frame), 500_000):
                part = frame.iloc[start : start + 500_000]
                out = pd.DataFrame(
                    {c: part[c].astype(object).where(part[c].notna(), None) for c in cols}
                )
                for c in ("id", "construction_year"):
                    if c in out.columns:
                        out[c] = pd.array(part[c], dtype="Int64")
                wkb = shapely.to_wkb(np.asarray(part.geometry.values), hex=True, include_srid=False)
                out["geom"] = np.char.add("SRID=3006;", wkb.astype(str))
                text = out.to_csv(index=False, header=False, na_rep="")
                with conn.cursor().copy(
                    f"COPY {table} ({', '.join(cols)}, geom) FROM STDIN WITH (FORMAT csv)"
                ) as cp:
                    cp.write(text.encode("utf-8"))
                if progress:
                    log.info("%s: %d rows loaded", table, start + len(part))
            conn.execute(f"CREATE INDEX ON {table} USING gist (geom)")
            conn.execute(f"ANALYZE {table}")
