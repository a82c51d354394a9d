"""Features of a store for web clients: pages of GeoJSON in a chosen CRS, read through the store.

This is what the server's OGC API – Features routes call, and what a Python user calls to get the
same answer without a server::

    from vggeo.features import FeatureReader
    from vggeo.store import open_store

    reader = FeatureReader(open_store("store.gpkg"))
    page = reader.page("residences", bbox=(17.9, 59.2, 18.2, 59.4), limit=100)
    page.number_matched, page.frame                      # GeoDataFrame in CRS84 (lon, lat)
    page = reader.page("regulations_plan", crs="EPSG:3006", filters=Filters(status={"gällande"}))

Collections are the tile layers of :mod:`vggeo.tiles.layers` (one definition: a collection's
table, fixed provision type and accepted filters are the layer's), so an attribute filter selects
the same features here as in a tile. Only an explicit allow-list of columns is served per table:
the registry's addresses, apartment numbers and registration dates, and every inskrivning table,
never leave the store this way — adding a column to the store does not publish it.

Coordinates follow OGC API – Features Part 2: GeoJSON in CRS84 (longitude, latitude) by default;
with another CRS the coordinates are in that CRS's *authority* axis order (EPSG:3006 is
northing, easting; EPSG:4326 is latitude, longitude), which the ``Content-Crs`` header states.
"""

from __future__ import annotations

import json
import math
import re
import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import shapely
from shapely.geometry.base import BaseGeometry

from vggeo.crs import CRS84, crs_uri, en_transformer, ogc_crs
from vggeo.errors import InputError
from vggeo.store.base import quote_literal
from vggeo.tiles.layers import LAYERS, Filters, Layer

if TYPE_CHECKING:
    from geopandas import GeoDataFrame

    from vggeo.store import Store

__all__ = [
    "FeatureType",
    "FeaturePage",
    "FeatureReader",
    "feature_types",
    "filters_where",
]

#: Columns served per store table (an allow-list: see the module docstring). Columns a store
#: does not hold are left out.
PUBLIC_COLUMNS: dict[str, tuple[str, ...]] = {
    "residences": (
        "id",
        "home_type",
        "ownership_type",
        "construction_year",
        "municipality_code",
        "county_code",
        "building_type",
        "apartment_category",
        "living_area",
        "living_space",
        "rooms",
        "plot_area",
    ),
    "provisions": (
        "provision_id",
        "provision_type",
        "status",
        "designation",
        "name",
        "municipality",
        "plan_type",
        "alt_designation",
        "object_version",
        "last_changed",
        "implementation_start",
        "implementation_end",
    ),
}
#: The column identifying a feature (its GeoJSON ``id``).
KEY_COLUMNS = {"residences": "id", "provisions": "provision_id"}
#: Upper bound of ``limit`` and of ``offset + limit`` pages cached per query.
MAX_LIMIT = 10_000


@dataclass(frozen=True)
class FeatureType:
    """A collection of features: one store table, optionally restricted to a provision type."""

    id: str
    title: str
    description: str
    table: str
    geometry: str
    filters: tuple[str, ...]
    provision_type: str | None = None

    @property
    def key(self) -> str:
        return KEY_COLUMNS[self.table]

    @classmethod
    def from_layer(cls, layer: Layer) -> FeatureType:
        return cls(
            layer.id,
            layer.title,
            layer.description,
            layer.table,
            layer.geometry,
            layer.filters,
            layer.provision_type,
        )


def feature_types() -> dict[str, FeatureType]:
    """Every collection with features (the plain tile layers), by id."""
    return {lid: FeatureType.from_layer(layer) for lid, layer in LAYERS.items()}


# --- coordinate reference systems: decided in vggeo.crs ------------------------------------------


def _to_crs(geoms: np.ndarray, uri: str) -> np.ndarray:
    """Store geometries (EPSG:3006, easting first) → ``uri``, in its authority axis order."""
    info = ogc_crs(uri)
    if info.epsg == 3006:
        return shapely.transform(geoms, lambda xy: xy[:, ::-1])  # northing, easting
    tr = en_transformer(3006, info.epsg)

    def project(xy: np.ndarray) -> np.ndarray:
        x, y = tr.transform(xy[:, 0], xy[:, 1])
        out = np.column_stack([x, y])
        if info.geographic:
            out = np.round(out, 9)  # 0.1 mm: more digits are noise of the transformation
        return out[:, ::-1] if info.northing_first else out

    return shapely.transform(geoms, project)


#: Where a feature can be, as longitude/latitude: SWEREF 99 TM's area of use with a margin of 10°.
#: A bbox is clipped to it (in the bbox's own CRS) before it is transformed: a world-wide bbox
#: would fold over itself in the projection (no longer a valid polygon, so it matched nothing)
#: and huge numbers would not survive the densification. Nothing vggeo stores lies outside it.
DATA_EXTENT_LONLAT = (0.03, 44.96, 34.17, 79.07)


@lru_cache(maxsize=64)
def _data_extent(epsg: int) -> tuple[float, float, float, float]:
    """:data:`DATA_EXTENT_LONLAT` in the projected ``epsg``, easting first (densified edges)."""
    return en_transformer(4326, epsg).transform_bounds(*DATA_EXTENT_LONLAT, densify_pts=64)


def _bbox_area(bbox: Sequence[float], uri: str) -> BaseGeometry:
    """The bbox (in ``uri``'s axis order) in EPSG:3006, densified so that its edges stay straight
    lines of the source CRS, and clipped to where features can be (:data:`DATA_EXTENT_LONLAT`).

    A polygon; a line or a point where the bbox has no width or height (both allowed, as in
    OGC API Features); empty where the bbox lies wholly outside where features can be.
    """
    if len(bbox) not in (4, 6):
        raise InputError("bbox needs 4 numbers (or 6 with heights)", field="bbox")
    if len(bbox) == 6:
        bbox = (bbox[0], bbox[1], bbox[3], bbox[4])
    if not all(math.isfinite(v) for v in bbox):
        raise InputError("bbox numbers must be finite", field="bbox")
    info = ogc_crs(uri)
    a0, b0, a1, b1 = bbox
    if info.northing_first:
        a0, b0, a1, b1 = b0, a0, b1, a1  # to easting/longitude first
    if a0 > a1 or b0 > b1:
        raise InputError(
            "bbox must be min, min, max, max (in the CRS's axis order)",
            field="bbox",
            value=list(bbox),
        )
    if info.geographic and not (-180 <= a0 and a1 <= 180 and -90 <= b0 and b1 <= 90):
        raise InputError(
            "bbox outside longitude −180…180 / latitude −90…90", field="bbox", value=list(bbox)
        )
    e0, f0, e1, f1 = DATA_EXTENT_LONLAT if info.geographic else _data_extent(info.epsg)
    a0, b0, a1, b1 = max(a0, e0), max(b0, f0), min(a1, e1), min(b1, f1)
    if a0 > a1 or b0 > b1:
        return shapely.Polygon()
    if a0 == a1 and b0 == b1:
        area: BaseGeometry = shapely.Point(a0, b0)
    elif a0 == a1 or b0 == b1:
        area = shapely.segmentize(
            shapely.LineString([(a0, b0), (a1, b1)]), (a1 - a0 + b1 - b0) / 64
        )
    else:
        area = shapely.segmentize(shapely.box(a0, b0, a1, b1), max(a1 - a0, b1 - b0) / 64)
    if info.epsg == 3006:
        return area
    tr = en_transformer(info.epsg, 3006)

    def project(xy: np.ndarray) -> np.ndarray:
        x, y = tr.transform(xy[:, 0], xy[:, 1])
        return np.column_stack([x, y])

    area = shapely.transform(area, project)
    if not np.isfinite(shapely.bounds(area)).all():  # not expected inside the data's extent
        raise InputError(
            "bbox cannot be transformed to SWEREF 99 TM", field="bbox", value=list(bbox)
        )
    return area


# --- filters as SQL ------------------------------------------------------------------------------


def _literal(value: str) -> str:
    """An SQL string literal valid in SQLite and PostgreSQL (standard_conforming_strings)."""
    if "\x00" in value or "%" in value:
        # NUL cannot be stored; '%' would be read as a placeholder by the PostGIS driver.
        raise InputError("filter values may not contain NUL or '%'", value=value[:50])
    return quote_literal(value)


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def filters_where(filters: Filters, ftype: FeatureType, *, columns: Iterable[str]) -> str | None:
    """The SQL condition selecting ``ftype``'s features that pass ``filters``.

    The semantics are the tiles' (:class:`vggeo.tiles.layers.Filters`): a set filter keeps rows
    whose value is in the set; a year bound drops rows without a year. Values were validated
    against the values the data holds, and are quoted here in any case.
    """
    have = set(columns)
    f = filters.for_table(ftype.table)
    parts = []
    if ftype.provision_type is not None:
        parts.append(f"{_quote('provision_type')} = {_literal(ftype.provision_type)}")
    for name in Filters.SET_FIELDS:
        wanted = getattr(f, name)
        if wanted:
            if name not in have:
                return "1 = 0"  # the tiles drop every feature for a filter on a missing column
            values = ", ".join(_literal(v) for v in sorted(wanted))
            parts.append(f"{_quote(name)} IN ({values})")
    for name, op in (("construction_year_min", ">="), ("construction_year_max", "<=")):
        bound = getattr(f, name)
        if bound is not None:
            if "construction_year" not in have:
                return "1 = 0"
            parts.append(f"{_quote('construction_year')} {op} {int(bound)}")
    return " AND ".join(parts) or None


# --- reading -------------------------------------------------------------------------------------


@dataclass
class FeaturePage:
    """One page of features.

    Attributes
    ----------
    frame
        GeoDataFrame of the page: the key column first, the requested properties, ``geometry``
        in the requested CRS (axis order as the CRS defines).
    number_matched
        Features matching the query in all pages.
    offset, limit
        The page asked for.
    crs
        URI of the coordinates' CRS.
    key
        Name of the column holding the feature ids.
    """

    frame: pd.DataFrame
    number_matched: int
    offset: int
    limit: int
    crs: str
    key: str

    @property
    def number_returned(self) -> int:
        return len(self.frame)

    def features_json(self) -> list[str]:
        """Each feature as GeoJSON text (geometry coordinates as in :attr:`frame`)."""
        return _features_json(self.frame, self.key)


@dataclass
class _Matches:
    keys: np.ndarray


@dataclass
class FeatureReader:
    """Reads feature pages from a store (GeoPackage or PostGIS) through ``store.read_table``.

    A page costs two reads: the keys (and geometries, for the exact bbox test) of every match,
    then the properties of the page's rows. The keys of recent queries are kept (bounded, keyed
    by the store's data version), so walking a result page by page reads the matches once.
    """

    store: Store
    cache_keys: int = 2_000_000
    _cache: OrderedDict = field(default_factory=OrderedDict, repr=False)
    _cached: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def columns(self, ftype: FeatureType) -> list[str]:
        """The public columns of ``ftype`` the store holds (the key first)."""
        have = set(self.store.columns(ftype.table))
        return [c for c in PUBLIC_COLUMNS[ftype.table] if c in have]

    def _select_properties(self, ftype: FeatureType, properties: Sequence[str] | None) -> list[str]:
        cols = self.columns(ftype)
        if properties is None:
            return [c for c in cols if c != ftype.key]
        unknown = [p for p in properties if p not in cols]
        if unknown:
            raise InputError(
                f"unknown property; known: {', '.join(cols)}",
                field="properties",
                value=unknown[0][:100],
            )
        return [p for p in dict.fromkeys(properties) if p != ftype.key]

    def _matches(
        self, ftype: FeatureType, where: str | None, bbox_area: BaseGeometry | None
    ) -> np.ndarray:
        if bbox_area is not None and bbox_area.is_empty:  # outside where features can be
            where = "1 = 0"
        version = self.store.data_version
        ck = (ftype.table, version, where, None if bbox_area is None else bbox_area.wkb)
        with self._lock:
            hit = self._cache.get(ck)
            if hit is not None:
                self._cache.move_to_end(ck)
                return hit.keys
        env = None
        if bbox_area is not None and not bbox_area.is_empty:
            env = tuple(shapely.bounds(bbox_area))
        frame = self.store.read_table(ftype.table, bbox=env, columns=[ftype.key], where=where)
        keys = frame[ftype.key].to_numpy()
        if env is not None and len(frame):
            geoms = np.asarray(frame.geometry.values, dtype=object)
            shapely.prepare(bbox_area)
            keys = keys[shapely.intersects(bbox_area, geoms)]
        if len(keys) <= self.cache_keys:
            with self._lock:
                self._cache[ck] = _Matches(keys)
                self._cached += len(keys)
                while self._cached > self.cache_keys and len(self._cache) > 1:
                    _, old = self._cache.popitem(last=False)
                    self._cached -= len(old.keys)
        return keys

    def _rows(
        self, ftype: FeatureType, keys: np.ndarray, props: list[str], crs: str
    ) -> GeoDataFrame:
        if len(keys) == 0:
            frame = self.store.read_table(ftype.table, columns=[ftype.key, *props], where="1 = 0")
        else:
            if ftype.table == "residences":
                listed = ", ".join(str(int(k)) for k in keys)
            else:
                listed = ", ".join(_literal(str(k)) for k in keys)
            frame = self.store.read_table(
                ftype.table, columns=[ftype.key, *props], where=f"{_quote(ftype.key)} IN ({listed})"
            )
            # the page keeps the matches' order (read_table orders by insertion as they do)
            order = pd.Index(frame[ftype.key]).get_indexer(keys)
            frame = frame.iloc[order[order >= 0]].reset_index(drop=True)
        geoms = np.asarray(frame.geometry.values, dtype=object)
        frame = frame.set_geometry(_to_crs(geoms, crs), crs=None)
        return frame

    def page(
        self,
        collection: str | FeatureType,
        *,
        bbox: Sequence[float] | None = None,
        bbox_crs: str = CRS84,
        filters: Filters | None = None,
        limit: int = 10,
        offset: int = 0,
        properties: Sequence[str] | None = None,
        crs: str = CRS84,
    ) -> FeaturePage:
        """One page of a collection's features, in insertion order.

        Parameters
        ----------
        collection
            Collection id (a plain tile layer: ``residences``, ``regulations``,
            ``regulations_plan`` …) or a :class:`FeatureType`.
        bbox
            (min, min, max, max) in ``bbox_crs``'s axis order (CRS84: lon, lat); features whose
            geometry intersects it.
        bbox_crs, crs
            CRS of the bbox and of the returned coordinates (URI or ``EPSG:n``; see
            :func:`vggeo.crs.supported_crs`).
        filters
            Attribute filters, as for tiles.
        limit, offset
            Page size (1 … :data:`MAX_LIMIT`) and start.
        properties
            Property names to return (default: every public one).

        Raises
        ------
        InputError, CRSError
            For a bad bbox, limit, offset, property or CRS (each naming the parameter).
        KeyError
            For an unknown collection.
        """
        ftype = self._ftype(collection)
        crs, bbox_crs = crs_uri(crs), crs_uri(bbox_crs)
        if not 1 <= limit <= MAX_LIMIT:
            raise InputError(f"limit must be in 1…{MAX_LIMIT}", field="limit", value=limit)
        if offset < 0:
            raise InputError("offset must be 0 or more", field="offset", value=offset)
        props = self._select_properties(ftype, properties)
        where = filters_where(filters or Filters(), ftype, columns=self.store.columns(ftype.table))
        area = None if bbox is None else _bbox_area(bbox, bbox_crs)
        keys = self._matches(ftype, where, area)
        frame = self._rows(ftype, keys[offset : offset + limit], props, crs)
        return FeaturePage(frame, len(keys), offset, limit, crs, ftype.key)

    def feature(
        self,
        collection: str | FeatureType,
        feature_id: str,
        *,
        crs: str = CRS84,
        properties: Sequence[str] | None = None,
    ) -> FeaturePage | None:
        """The feature with id ``feature_id`` as a one-row page, or ``None`` if there is none."""
        ftype = self._ftype(collection)
        crs = crs_uri(crs)
        props = self._select_properties(ftype, properties)
        key = _parse_key(ftype, feature_id)
        if key is None:
            return None
        where = filters_where(Filters(), ftype, columns=self.store.columns(ftype.table))
        cond = f"{_quote(ftype.key)} = {key}" + (f" AND {where}" if where else "")
        found = self.store.read_table(ftype.table, columns=[ftype.key], where=cond)
        if len(found) == 0:
            return None
        frame = self._rows(ftype, found[ftype.key].to_numpy()[:1], props, crs)
        return FeaturePage(frame, 1, 0, 1, crs, ftype.key)

    @staticmethod
    def _ftype(collection: str | FeatureType) -> FeatureType:
        if isinstance(collection, FeatureType):
            return collection
        types = feature_types()
        if collection not in types:
            raise KeyError(f"unknown collection {collection!r}; with features: {', '.join(types)}")
        return types[collection]


_UUIDISH = re.compile(r"^[0-9A-Za-z][0-9A-Za-z._:-]{0,99}$")


def _parse_key(ftype: FeatureType, text: str) -> str | None:
    """The SQL literal of a feature id, or ``None`` when it cannot be one (→ 404)."""
    if ftype.table == "residences":
        if not (text.isascii() and text.isdigit()) or len(text) > 18:
            return None
        return str(int(text))
    return _literal(text) if _UUIDISH.match(text) else None


def _json_value(v: Any) -> Any:
    if v is None or v is pd.NA or v is pd.NaT:
        return None
    if isinstance(v, float | np.floating):
        return None if not math.isfinite(v) else float(v)
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.bool_):
        return bool(v)
    if isinstance(v, pd.Timestamp | datetime):
        ts = pd.Timestamp(v)
        ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
        return ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"
    if isinstance(v, date):
        return v.isoformat()
    if isinstance(v, np.ndarray | list | tuple):
        return [_json_value(x) for x in v]
    return v if isinstance(v, int | str | bool) else str(v)


def _features_json(frame: pd.DataFrame, key: str) -> list[str]:
    geoms = np.asarray(frame.geometry.values, dtype=object)
    geo_text = shapely.to_geojson(geoms)
    props = [c for c in frame.columns if c not in (key, frame.geometry.name)]
    columns = {c: frame[c].astype(object).tolist() for c in [key, *props]}
    out = []
    for i, g in enumerate(geo_text.tolist()):
        fid = _json_value(columns[key][i])
        p = {c: _json_value(columns[c][i]) for c in props}
        out.append(
            '{"type":"Feature","id":'
            + json.dumps(fid)
            + ',"geometry":'
            + (g if g is not None else "null")
            + ',"properties":'
            + json.dumps(p, ensure_ascii=False)
            + "}"
        )
    return out
