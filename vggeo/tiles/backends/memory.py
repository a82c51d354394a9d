"""The memory backend: tiles rendered from the store's tables, held in memory as a
:class:`~vggeo.tiles.index.TileData` (numpy arrays sorted by Morton code, STRtrees).

For GeoPackage stores and GeoParquet files (a PostGIS store gets :mod:`.postgis`)::

    import vggeo.store
    from vggeo.tiles import source_for
    with vggeo.store.open("store.gpkg") as store:
        src = source_for(store)
        mvt = src.tile("residences", 12, 2200, 1190)                  # bytes, b"" if empty
        mvt = src.tile("regulations", 5, 10, 3, grid="SWEREF99TM")    # Lantmäteriet's 3006 grid
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import shapely

import vggeo.store
import vggeo.tiles.encode as encode
from vggeo.errors import StoreError
from vggeo.store import DataSource, Store
from vggeo.tiles.backends.base import RenderingSource
from vggeo.tiles.cluster import (
    DEFAULT_OPTIONS,
    CellLevel,
    ClusterOptions,
    aggregate,
    cells_in_tile,
    cluster_ids,
    home_type_codes,
    pyramid,
)
from vggeo.tiles.grids import Grid, TileBounds
from vggeo.tiles.index import (
    DEPTH,
    KNOWN_CATEGORIES,
    MAX_RESIDENCE_ID,
    PROVISION_COLUMNS,
    RESIDENCE_COLUMNS,
    PointIndex,
    TileData,
    provision_feature_ids,
)
from vggeo.tiles.layers import Filters, Layer, slug

__all__ = ["MemorySource", "load_tables", "load_store"]

EXTENT = encode.EXTENT
POLYGON_BUFFER = 64


class MemorySource(RenderingSource):
    """Tiles from an in-memory index of a store's tables.

    Parameters
    ----------
    data
        Loaded data (see :func:`load_tables`).
    options
        Clustering options.
    store
        The store ``data`` was read from (asked for its data version by
        :meth:`current_version`); None for data built in memory.
    """

    kind = "embedded"  # as /readyz has always reported it

    def __init__(
        self,
        data: TileData,
        *,
        options: ClusterOptions = DEFAULT_OPTIONS,
        store: DataSource | None = None,
    ) -> None:
        self.data = data
        self.store: DataSource | None = store  # None: data made in memory, not read from a store
        self.version = data.version
        self.options = options
        self._attr_cache: dict[str, encode.Column] = {}
        self._id_array: np.ndarray | None = None
        self._type_codes, self._type_labels = home_type_codes(data)
        self._prov_codes = {
            c: data.provisions[c].cat.codes.to_numpy().astype(np.int64)
            for c in ("provision_type", "status")
            if c in data.provisions.columns
        }

    @classmethod
    def from_store(
        cls, store: DataSource, *, options: ClusterOptions = DEFAULT_OPTIONS
    ) -> MemorySource:
        """Read a store's tables (see :func:`load_tables`) and wrap them."""
        return cls(load_tables(store), options=options, store=store)

    def allowed_values(self) -> dict[str, list[str]]:
        """Values each set filter accepts (the categories present in the data)."""
        return {c: self.data.categories(c) for c in Filters.SET_FIELDS}

    def home_types(self) -> list[str]:
        return list(self._type_labels)

    def bounds_wgs84(self) -> tuple[float, float, float, float] | None:
        return self.data.bounds_wgs84()

    def warm(self) -> None:
        """Build the Web Mercator indexes and pyramid now."""
        pyramid(self.data, self.data.points("WebMercatorQuad"), self.options)
        self._ids()
        self.data.polygons("WebMercatorQuad")

    def current_version(self) -> str:
        """The store's data version now (differs from :attr:`version` once it changed)."""
        return self.version if self.store is None else self.store.data_version

    # --- public tile API -----------------------------------------------------------------------

    def _member_tile(
        self, member: Layer, g: Grid, z: int, x: int, y: int, filters: Filters
    ) -> bytes:
        if member.table == "residences":
            return self._residence_layer(member, g, z, x, y, filters)
        return self._provision_layer(member, g, z, x, y, filters)

    # --- residences ----------------------------------------------------------------------------

    def _column(self, name: str) -> encode.Column | None:
        col = self._attr_cache.get(name)
        if col is None:
            r = self.data.residences
            if name not in r.columns:
                return None
            s = r[name]
            if isinstance(s.dtype, pd.CategoricalDtype):
                col = encode.Column(
                    name,
                    "str",
                    s.cat.codes.to_numpy().astype(np.int64),
                    labels=[str(c) for c in s.cat.categories],
                )
            else:
                valid = s.notna().to_numpy()
                col = encode.Column(name, "int", s.fillna(0).to_numpy(dtype=np.int64), valid)
            self._attr_cache[name] = col
        return col

    def _ids(self) -> np.ndarray:
        """Residence ids as one numpy array, converted once: the column may be Arrow-backed,
        and converting 5.6 M ids on every tile cost more than encoding the tile."""
        if self._id_array is None:
            self._id_array = np.asarray(self.data.residences["id"].to_numpy())
        return self._id_array

    def _residence_mask(self, positions: np.ndarray, f: Filters) -> np.ndarray | None:
        """Filter mask for residences at ``positions`` (rows of data.residences), or None."""
        if not f:
            return None
        mask = np.ones(len(positions), dtype=bool)
        for name, wanted in (("home_type", f.home_type), ("ownership_type", f.ownership_type)):
            if wanted:
                col = self._column(name)
                if col is None:
                    return np.zeros(len(positions), bool)
                codes = [i for i, lab in enumerate(col.labels or []) if lab in wanted]
                mask &= np.isin(col.values[positions], codes)
        if f.construction_year_min is not None or f.construction_year_max is not None:
            col = self._column("construction_year")
            if col is None:
                return np.zeros(len(positions), bool)
            yrs = col.values[positions]
            if col.valid is not None:  # always set for an integer column
                mask &= col.valid[positions]
            if f.construction_year_min is not None:
                mask &= yrs >= f.construction_year_min
            if f.construction_year_max is not None:
                mask &= yrs <= f.construction_year_max
        return mask

    def _residence_layer(self, layer: Layer, g: Grid, z: int, x: int, y: int, f: Filters) -> bytes:
        idx = self.data.points(g)
        opt = self.options
        bounds = g.bounds(z, x, y)
        if z < opt.cluster_maxzoom:
            if not f:
                levels = pyramid(self.data, idx, opt)
                cells = cells_in_tile(levels[z + g.root_depth + opt.cell_bits], idx, z, x, y)
                return self._cells_layer(layer, idx, cells, bounds)
            return self._aggregate_layer(layer, idx, z, x, y, f, opt.cell_bits, bounds)
        i0, i1 = idx.tile_range(z, x, y)
        sel = np.arange(i0, i1)
        mask = self._residence_mask(idx.order[sel], f)
        if mask is not None:
            sel = sel[mask]
        if len(sel) > opt.max_points:
            return self._aggregate_layer(layer, idx, z, x, y, f, opt.overflow_cell_bits, bounds)
        return self._points_layer(layer, idx, sel, bounds)

    def _aggregate_layer(
        self,
        layer: Layer,
        idx: PointIndex,
        z: int,
        x: int,
        y: int,
        f: Filters,
        bits: int,
        bounds: TileBounds,
    ) -> bytes:
        i0, i1 = idx.tile_range(z, x, y)
        sel = np.arange(i0, i1)
        mask = self._residence_mask(idx.order[sel], f)
        if mask is not None:
            sel = sel[mask]
        depth = z + idx.grid.root_depth + bits
        cells = aggregate(
            idx.codes[sel] >> np.uint64(2 * (DEPTH - depth)),
            idx.x[sel],
            idx.y[sel],
            self._type_codes[idx.order[sel]],
            len(self._type_labels),
            sel,
            depth,
        )
        return self._cells_layer(layer, idx, cells, bounds)

    def _quantise(
        self, ex: np.ndarray, ny: np.ndarray, bounds: TileBounds
    ) -> tuple[np.ndarray, np.ndarray]:
        k = EXTENT / (bounds.east - bounds.west)
        return np.rint((ex - bounds.west) * k).astype(np.int64), np.rint(
            (bounds.north - ny) * k
        ).astype(np.int64)

    def _points_layer(
        self, layer: Layer, idx: PointIndex, sel: np.ndarray, bounds: TileBounds
    ) -> bytes:
        if len(sel) == 0:
            return b""
        rows = idx.order[sel]
        px, py = self._quantise(idx.x[sel], idx.y[sel], bounds)
        ids = self._ids()[rows]
        cols = []
        for name in layer.columns:
            col = self._column(name)
            if col is not None:
                cols.append(
                    encode.Column(
                        name,
                        col.kind,
                        col.values[rows],
                        None if col.valid is None else col.valid[rows],
                        col.labels,
                    )
                )
        return encode.encode_point_layer(layer.id, px, py, ids, cols)

    def _cells_layer(
        self, layer: Layer, idx: PointIndex, cells: CellLevel, bounds: TileBounds
    ) -> bytes:
        n = len(cells)
        if n == 0:
            return b""
        single = cells.count == 1
        rows = idx.order[cells.first]
        ex = np.where(single, idx.x[cells.first], cells.sx / cells.count)
        ny = np.where(single, idx.y[cells.first], cells.sy / cells.count)
        px, py = self._quantise(ex, ny, bounds)
        res_ids = self._ids()[rows]
        ids = np.where(single, res_ids, cluster_ids(cells.depth, cells.codes))
        cols = []
        for name in layer.columns:
            col = self._column(name)
            if col is None:
                continue
            valid = single if col.valid is None else single & col.valid[rows]
            vals = ids if name == "id" else col.values[rows]
            cols.append(encode.Column(name, col.kind, vals, valid, col.labels))
        if not any(c.key == "id" for c in cols):
            cols.insert(0, encode.Column("id", "int", ids))
        else:  # clusters carry their own id as the id property too
            cols[[c.key for c in cols].index("id")].valid = None
        multi = ~single
        cols.append(encode.Column("cluster", "bool", np.ones(n, bool), multi))
        cols.append(encode.Column("point_count", "int", cells.count, multi))
        for t, label in enumerate(self._type_labels):
            counts = cells.types[:, t]
            cols.append(encode.Column(f"count_{slug(label)}", "int", counts, multi & (counts > 0)))
        return encode.encode_point_layer(layer.id, px, py, ids, cols)

    # --- provisions ----------------------------------------------------------------------------

    def _provision_layer(self, layer: Layer, g: Grid, z: int, x: int, y: int, f: Filters) -> bytes:
        data = self.data
        if len(data.provision_geoms) == 0:
            return b""
        pidx = data.polygons(g)
        bounds = g.bounds(z, x, y)
        pad = (bounds.east - bounds.west) * POLYGON_BUFFER / EXTENT
        cand = pidx.tree.query(
            shapely.box(
                bounds.west - pad, bounds.south - pad, bounds.east + pad, bounds.north + pad
            )
        )
        if len(cand) == 0:
            return b""
        cand = np.sort(cand)
        # Polygons smaller than one pixel at this zoom are invisible; leaving them out keeps
        # national-scale tiles small (they appear from the zoom where they reach a pixel).
        keep = pidx.extent[cand] >= (bounds.east - bounds.west) / g.tile_pixels
        wanted_types = set(f.provision_type)
        if layer.provision_type is not None:
            wanted_types = (
                ({layer.provision_type} & wanted_types) if wanted_types else {layer.provision_type}
            )
            if not wanted_types:
                return b""
        for name, wanted in (("provision_type", wanted_types), ("status", set(f.status))):
            if wanted:
                codes = self._prov_codes.get(name)
                if codes is None:
                    return b""
                labels = data.categories(name)
                keep &= np.isin(codes[cand], [i for i, lab in enumerate(labels) if lab in wanted])
        cand = cand[keep]
        if len(cand) == 0:
            return b""
        geoms, ok = encode.to_tile_units(pidx.at_zoom(z)[cand], bounds, buffer=POLYGON_BUFFER)
        cand = cand[ok]
        if len(cand) == 0:
            return b""
        frame = data.provisions.iloc[cand]
        ids = frame["fid"].to_numpy()
        names = [a.name for a in layer.attributes if a.name in frame.columns]
        records = frame[names].astype(object).where(frame[names].notna(), None).to_dict("records")
        props = [
            {"id": int(i), **{k: str(v) for k, v in r.items() if v is not None}}
            for i, r in zip(ids, records, strict=True)
        ]
        return encode.encode_polygon_layer(layer.id, geoms, ids, props)


# --- loading a store's tables ---------------------------------------------------------------


def _categorical(series: pd.Series, column: str) -> pd.Series:
    """A categorical with the known values first (fixed order), then others sorted."""
    values = series.astype("string")
    known = list(KNOWN_CATEGORIES.get(column, ()))
    present = set(values.dropna().unique())
    cats = [k for k in known if k in present] + sorted(present - set(known))
    return pd.Series(pd.Categorical(values, categories=cats), index=series.index, name=column)


def _read(store: DataSource, name: str, wanted: tuple[str, ...]) -> pd.DataFrame | None:
    """Table ``name`` of ``store`` with the ``wanted`` columns it has; None without the table.

    A vggeo store is read through :meth:`~vggeo.store.Store.iter_table` in one batch: whole
    tables go through GDAL's Arrow interface there, where ``read_table`` would make a Python
    object of every value (seconds per million homes)."""
    if isinstance(store, Store):
        have = set(store.columns(name))
        columns = [c for c in wanted if c in have]
        frames = list(store.iter_table(name, columns=columns, batch_size=1 << 30))
        if len(frames) == 1:
            return frames[0]
        return (
            pd.concat(frames, ignore_index=True)
            if frames
            else store.read_table(name, columns=columns)
        )
    if name not in store.tables():
        return None
    return store.read_table(name, columns=list(wanted))


def _residences_frame(gdf: pd.DataFrame | None) -> pd.DataFrame:
    if gdf is None or len(gdf) == 0:
        return pd.DataFrame({"id": pd.Series([], dtype="int64"), "east": [], "north": []})
    if "id" not in gdf.columns:
        raise StoreError("table residences has no 'id' column", field="id")
    geom = gdf.geometry.values
    ok = ~(shapely.is_missing(np.asarray(geom)) | shapely.is_empty(np.asarray(geom)))
    gdf = gdf[ok]
    coords = shapely.get_coordinates(np.asarray(gdf.geometry.values))
    if len(coords) != len(gdf):
        raise StoreError("table residences must hold single points", field="geometry")
    out = pd.DataFrame(index=pd.RangeIndex(len(gdf)))
    ids = pd.to_numeric(gdf["id"], errors="raise").to_numpy(dtype=np.int64)
    if len(ids) and (ids.min() < 0 or ids.max() >= MAX_RESIDENCE_ID):
        raise StoreError("residence ids must be in 0 … 2^52 − 1", field="id", value=int(ids.max()))
    out["id"] = ids
    for c in ("home_type", "ownership_type", "municipality_code"):
        if c in gdf.columns:
            out[c] = _categorical(gdf[c].reset_index(drop=True), c)
    if "construction_year" in gdf.columns:
        out["construction_year"] = pd.to_numeric(gdf["construction_year"]).astype("Int64").values
    out["east"], out["north"] = coords[:, 0], coords[:, 1]
    return out


def _provisions_frame(gdf: pd.DataFrame | None) -> tuple[pd.DataFrame, np.ndarray]:
    if gdf is None or len(gdf) == 0:
        return pd.DataFrame({"fid": pd.Series([], dtype="int64")}), np.array([], dtype=object)
    geoms = np.asarray(gdf.geometry.values)
    ok = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    gdf, geoms = gdf[ok], geoms[ok]
    out = pd.DataFrame(index=pd.RangeIndex(len(gdf)))
    out["fid"] = provision_feature_ids(gdf["provision_id"].to_numpy())
    for c in PROVISION_COLUMNS:
        if c in gdf.columns:
            col = gdf[c].reset_index(drop=True)
            out[c] = (
                _categorical(col, c) if c in ("provision_type", "status") else col.astype("string")
            )
    return out, geoms


def load_tables(store: DataSource) -> TileData:
    """Read a store's ``residences`` and ``provisions`` into a :class:`TileData`.

    Parameters
    ----------
    store
        What :func:`vggeo.store.open` returns for a GeoPackage (a vggeo store or one written by
        other tools) or a GeoParquet file of residences (canonical form, EPSG:3006).

    Raises
    ------
    StoreError
        If a table cannot be read, or the store holds neither table.
    """
    # The version is read before the data: an ingest committed in between then makes the next
    # version check reload again, instead of leaving new-looking old data in place for good.
    version = store.data_version
    res = _read(store, "residences", RESIDENCE_COLUMNS)
    prov = _read(store, "provisions", PROVISION_COLUMNS)
    if res is None and prov is None:
        raise StoreError(
            "store has neither a 'residences' nor a 'provisions' table", file=store.location
        )
    for g in (res, prov):
        if g is not None and len(g) and g.crs is not None and g.crs.to_epsg() != 3006:
            raise StoreError(
                f"store tables must be in EPSG:3006, found {g.crs.to_string()}", file=store.location
            )
    residences = _residences_frame(res)
    provisions, geoms = _provisions_frame(prov)
    return TileData(residences, provisions, geoms, version, store.location)


def load_store(path: str | os.PathLike) -> TileData:
    """:func:`load_tables` of the store at ``path`` (opened with :func:`vggeo.store.open`, read
    and closed again)."""
    with vggeo.store.open(path) as store:
        return load_tables(store)
