"""What both readers of provisions build with: the result type, geometry assembly, tables.

The member-by-member reader (:mod:`vggeo.lm.bestammelse`) and the compiled reader
(:mod:`vggeo.lm._compiled`) share these, so neither imports the other's internals: the
compiled reader sits below :mod:`~vggeo.lm.bestammelse`, which falls back to member-by-member
reading and dispatches between the two.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely import GeometryType

from vggeo.crs import (
    SWEREF99TM,
    AxisOrder,
    easting_first_by_magnitude,
    epsg_from_srs_name,
    get_crs,
    gml_axis_swap,
    transform,
)
from vggeo.errors import CoordinateError, GeometryError, InputError, current_input
from vggeo.lm import mapping as M
from vggeo.lm._records import ELEMENT_KEY, column_values, identities, raw_column, typed_columns
from vggeo.lm.gml import (
    GML32,
    ArcBudget,
    convert_texts,
    geometry_elements,
    inherited_srs_name,
    is_number,
    parse_geometry,
    polygons_of,
    simple_polygon_texts,
    source_line,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    import pyarrow as pa
    from lxml import etree

    from vggeo.lm._records import ColumnRows

__all__ = [
    "GeometryCollector",
    "AreaSlot",
    "Area",
    "build_geometries",
    "PROVISION_TYPES",
    "PROVISION_COLUMNS",
    "DECISION_COLUMNS",
    "BestammelseData",
    "valid_rings",
    "to_3006",
    "assemble",
]

PROVISION_TYPES = tuple(dict.fromkeys(M.PROVISION_TYPES.values()))
PROVISION_COLUMNS = (
    "provision_id",
    "provision_type",
    "object_version",
    "municipality",
    "designation",
    "name",
    "status",
    "plan_type",
    "alt_designation",
    "last_changed",
    "implementation_start",
    "implementation_end",
    "reference_text",
)
DECISION_COLUMNS = (
    "provision_id",
    "kind",
    "object_version",
    "valid_from",
    "decision_date",
    "decision_id",
)

_PROVISION = M.BESTAMMELSE.records[M.BESTAMMELSE_SET][0]
_AFFECTED = _PROVISION.children[0]
_DECISION = _PROVISION.children[1]


@dataclass
class BestammelseData:
    """What :func:`read_bestammelser` returns (contracts.md: Provisions).

    Attributes
    ----------
    provisions
        GeoDataFrame, one row per provision, geometry MultiPolygon in EPSG:3006.
    affected
        ``provision_id``, ``register_unit_id`` (the berörkrets).
    decisions
        ``provision_id``, ``kind``, ``object_version``, ``valid_from``, ``decision_date``,
        ``decision_id``.
    subsets
        ``provision_id``, ``subset``: which information subsets each provision carried.
    unmapped
        ``{element path: count}`` of XML elements the mapping did not use.
    geometry_errors
        ``(provision_id, message)`` of features kept with an empty geometry
        (``on_geometry_error="keep"``).
    """

    provisions: gpd.GeoDataFrame
    affected: pd.DataFrame
    decisions: pd.DataFrame
    subsets: pd.DataFrame
    unmapped: Counter = field(default_factory=Counter)
    geometry_errors: list[tuple[str, str]] = field(default_factory=list)
    files: list[str] = field(default_factory=list)

    def tables(self) -> dict[str, pd.DataFrame]:
        """The store's table names → frames."""
        return {
            "provisions": self.provisions,
            "affected_properties": self.affected,
            "decisions": self.decisions,
            "subsets": self.subsets,
        }


#: A provision's area as read: polygons (each a list of rings, a ring an (n, 2) coordinate array
#: with x = easting) and the EPSG code of their coordinates (None: the delivery's).
Area = tuple[list[list[np.ndarray]], int | None]


@dataclass(slots=True)
class AreaSlot:
    """One provision's area as :class:`GeometryCollector` collects it, filled in by
    :meth:`~GeometryCollector.resolve`.

    Until then ``parts`` holds each polygon as it was read: a plain polygon as the indexes of
    its ring texts (converted per file in bulk), any other as its rings.
    """

    ident: str
    epsg: int | None
    parts: list[list[int] | list[np.ndarray]]
    polygons: list[list[np.ndarray]] = field(default_factory=list)

    def area(self) -> Area:
        """The resolved area."""
        return self.polygons, self.epsg


class GeometryCollector:
    """Parses each ``Yta``; plain polygons are kept as raw text and converted per file in bulk.

    ``__call__`` returns an :class:`AreaSlot` per provision; :meth:`resolve` fills every slot in
    (polygons as coordinate arrays, EPSG code) once the file is read.
    """

    def __init__(
        self,
        *,
        default_srs: str | None,
        arc_tolerance: float,
        on_error: str,
        file: str,
        budget: ArcBudget | None = None,
    ):
        self.default_srs = default_srs
        self.tol = arc_tolerance
        self.budget = budget if budget is not None else ArcBudget()
        self.on_error = on_error
        self.file = file
        self.errors: list[tuple[str, str]] = []
        self.texts: list[str] = []
        # per text: (feature ident, line, dim, swap: True/False/None = by magnitude)
        self.meta: list[tuple[str, int, int, bool | None]] = []
        self.pending: list[AreaSlot] = []
        self._srs_cache: dict[str | None, tuple[int | None, bool | None]] = {}

    def srs(self, explicit: str | None) -> tuple[int | None, bool | None]:
        """(EPSG code, swap) for an srsName (None = none given: decide by magnitude)."""
        got = self._srs_cache.get(explicit)
        if got is None:
            code = epsg_from_srs_name(explicit or self.default_srs)
            got = self._srs_cache[explicit] = (code, gml_axis_swap(explicit) if explicit else None)
        return got

    def _fail(self, err: GeometryError, ident: str) -> None:
        if self.on_error != "keep":
            raise err
        self.errors.append((ident, str(err)))

    def __call__(self, element: etree._Element, row: dict[str, Any]) -> AreaSlot:
        feature_el = row.get(ELEMENT_KEY)
        ident = row.get("provision_id") or (
            feature_el.get(f"{{{GML32}}}id") if feature_el is not None else None
        )
        ident = (ident or "?").strip().lower()
        self.budget.start_feature()
        polys: list[list[int] | list[np.ndarray]] = []
        epsg = None
        try:
            geoms = geometry_elements(element)
            if not geoms:
                raise GeometryError(
                    f"feature {ident}: Yta holds no GML geometry",
                    file=self.file,
                    row=source_line(element),
                    element="Yta",
                )
            for g in geoms:
                explicit = inherited_srs_name(g)
                srs = explicit or self.default_srs
                code, swap = self.srs(explicit)
                if code is None:
                    raise GeometryError(
                        f"feature {ident}: no EPSG code in srsName {srs!r}",
                        file=self.file,
                        row=g.sourceline,
                        element="srsName",
                    )
                if epsg is not None and code != epsg:
                    raise GeometryError(
                        f"feature {ident}: mixed coordinate systems in one area",
                        file=self.file,
                        row=g.sourceline,
                    )
                epsg = code
                simple = simple_polygon_texts(g)
                if simple is not None:
                    for rings in simple:
                        handles = []
                        for text, dim, line in rings:
                            handles.append(len(self.texts))
                            self.texts.append(text)
                            self.meta.append((ident, line, dim, swap))
                        polys.append(handles)
                    continue
                parsed, _ = parse_geometry(
                    g,
                    axis="auto" if explicit else "file",
                    srs_name=self.default_srs,
                    arc_tolerance=self.tol,
                    feature=ident,
                    file=self.file,
                    budget=self.budget,
                )
                try:
                    part = polygons_of(parsed)
                except ValueError:
                    raise GeometryError(
                        f"feature {ident}: provision area is a {parsed.kind}, not a surface",
                        file=self.file,
                        row=g.sourceline,
                        element=g.tag.rpartition("}")[2],
                    ) from None
                if not explicit:
                    part = [[easting_first_by_magnitude(r) for r in p] for p in part]
                polys.extend(part)
        except GeometryError as err:
            self._fail(err, ident)
            polys, epsg = [], None
        slot = AreaSlot(ident, epsg, polys)
        self.pending.append(slot)
        return slot

    def resolve(self) -> None:
        """Convert every collected text, check the rings, and fill every pending slot in."""
        rings = self._convert()
        for slot in self.pending:
            try:
                out: list[list[np.ndarray]] = []
                for p in slot.parts:
                    out.append(
                        [_ring_of(rings, h) if isinstance(h, (int, np.integer)) else h for h in p]
                    )
                slot.polygons = out
            except GeometryError as err:
                self._fail(err, slot.ident)
                slot.polygons, slot.epsg = [], None
            slot.parts = []
        self.texts, self.meta = [], []

    def _convert(self) -> list[np.ndarray | GeometryError]:
        """Ring arrays (x = easting) for every text, or a GeometryError in its place.

        All checks are vectorised over the batch (counts, dimension, closure, finiteness, axis
        order); only rings that fail are looked at one by one, to build their error.
        """
        if not self.texts:
            return []
        try:
            values, offsets = convert_texts(self.texts)
        except ValueError as err:
            i = int(err.args[0])
            ident, line, _, _ = self.meta[i]
            bad = next((t for t in self.texts[i].split() if not is_number(t)), None)
            e = GeometryError(
                f"feature {ident}: non-numeric coordinate text",
                file=self.file,
                row=line,
                element="posList",
                value=bad,
            )
            if self.on_error != "keep":
                raise e from None
            # Convert the rest one by one so only the bad features are dropped.
            return [self._one(i) for i in range(len(self.texts))]
        n = len(self.texts)
        dims = np.fromiter((m[2] for m in self.meta), dtype=np.int64, count=n)
        swaps = [m[3] for m in self.meta]
        start, stop = offsets[:-1].astype(np.int64), offsets[1:].astype(np.int64)
        valid = valid_rings(values, offsets, dims)
        out: list[np.ndarray | GeometryError | None] = [None] * n
        # Each ring is cut from the values by its own offsets: a ring with an odd count (refused,
        # or kept as an error) never shifts the rings after it by one value.
        for k in np.flatnonzero(valid & (dims == 2)):
            r = values[start[k] : stop[k]].reshape(-1, 2)
            sw = swaps[k]
            out[k] = r[:, ::-1] if sw else (r if sw is False else easting_first_by_magnitude(r))

        def checked(i: int) -> np.ndarray | GeometryError:
            """A ring the vectorised checks did not pass, checked alone (its error built)."""
            ident, line, dim, swap = self.meta[i]
            v = values[start[i] : stop[i]]
            return self._ring(v, np.isfinite(v).all(), ident, line, dim, swap)

        return [r if r is not None else checked(i) for i, r in enumerate(out)]

    def _one(self, i: int) -> np.ndarray | GeometryError:
        ident, line, dim, swap = self.meta[i]
        try:
            v = np.array(self.texts[i].split(), dtype=np.float64)
        except ValueError:
            return GeometryError(
                f"feature {ident}: non-numeric coordinate text",
                file=self.file,
                row=line,
                element="posList",
            )
        return self._ring(v, np.isfinite(v).all(), ident, line, dim, swap)

    def _ring(
        self,
        v: np.ndarray,
        finite: bool | np.bool_,
        ident: str,
        line: int | None,
        dim: int,
        swap: bool | None,
    ) -> np.ndarray | GeometryError:
        def err(msg: str) -> GeometryError:
            return GeometryError(
                f"feature {ident}: {msg}", file=self.file, row=line, element="posList"
            )

        if v.size % dim:
            return err(f"coordinate count {v.size} is not a multiple of the dimension {dim}")
        if not finite:
            return err("non-finite coordinate (nan/inf)")
        r = v.reshape(-1, dim)
        if r.shape[0] < 4:
            return err(f"a ring needs at least 4 positions, got {r.shape[0]}")
        if not np.array_equal(r[0], r[-1]):
            return err("ring is not closed (first and last positions differ)")
        if swap is None:
            return easting_first_by_magnitude(r)
        return r[:, [1, 0]] if swap else r[:, :2]


def _ring_of(rings: list[np.ndarray | GeometryError], handle: int | np.integer) -> np.ndarray:
    """The converted ring of a text handle; its GeometryError raised."""
    ring = rings[handle]
    if isinstance(ring, GeometryError):
        raise ring
    return ring


def valid_rings(values: np.ndarray, offsets: np.ndarray, dims: np.ndarray | int) -> np.ndarray:
    """Which rings pass the checks of :meth:`GeometryCollector._ring`, vectorised.

    Ring ``i`` is ``values[offsets[i]:offsets[i + 1]]`` in dimension ``dims`` (one per ring, or
    one for all): a whole number of positions, at least 4, closed, every value finite.
    """
    n = len(offsets) - 1
    if not values.size:
        return np.zeros(n, dtype=bool)
    dims = np.broadcast_to(np.asarray(dims, dtype=np.int64), (n,))
    start, stop = offsets[:-1].astype(np.int64), offsets[1:].astype(np.int64)
    count = stop - start
    ok = (count % dims == 0) & (count >= 4 * dims)
    safe_last = np.where(ok, stop - dims, start)
    closed = np.ones(n, dtype=bool)
    for k in range(int(dims.max(initial=0))):
        use = ok & (k < dims)
        closed &= ~use | (
            values[np.where(use, start + k, 0)] == values[np.where(use, safe_last + k, 0)]
        )
    not_finite = np.concatenate([[0], np.cumsum(~np.isfinite(values))])
    return ok & closed & (not_finite[stop] == not_finite[start])


def to_3006(
    coords: np.ndarray,
    coord_epsg: int | np.integer | np.ndarray,
    ident_of: Callable[[int], str],
) -> None:
    """Transform ``coords`` (x = easting) in place to EPSG:3006, one call per source code.

    ``coord_epsg`` is the code of every coordinate, or one code for all. Coordinates already in
    3006 are still checked (ranges, swapped axes) but not rewritten. ``ident_of(i)`` names the
    provision of coordinate ``i`` in an error.
    """
    single = np.ndim(coord_epsg) == 0
    for code in [int(coord_epsg)] if single else np.unique(coord_epsg):
        sel = slice(None) if single else coord_epsg == code
        # x = easting, or longitude in a geographic system (the GML reader's order)
        order: AxisOrder = "lonlat" if get_crs(int(code)).is_geographic else "en"
        try:
            e, n = transform(
                coords[sel, 0],
                coords[sel, 1],
                src=int(code),
                dst=3006,
                in_order=order,
                out_order="en",
                names=("easting", "northing"),
            )
        except CoordinateError as err:
            # Name the provision, not the coordinate index.
            rows = np.arange(len(coords)) if single else np.flatnonzero(coord_epsg == code)
            idx = rows[(err.row or 1) - 1]
            raise type(err)(
                f"provision {ident_of(idx)}: {err.message}",
                file=err.file or current_input(),
                field=err.field,
                value=err.value,
            ) from err
        if code != 3006:
            coords[sel, 0], coords[sel, 1] = e, n


def build_geometries(
    geoms: Sequence[Area], ids: list[str], *, default_epsg: int | None
) -> np.ndarray:
    """One ragged-array build of every MultiPolygon, then one transform per source CRS."""
    ring_sizes: list[int] = []
    rings_per_poly: list[int] = []
    polys_per_geom: list[int] = []
    chunks: list[np.ndarray] = []
    epsgs: list[int] = []
    for polys, epsg in geoms:
        polys_per_geom.append(len(polys))
        epsgs.append(epsg or default_epsg or 3006)
        for rings in polys:
            rings_per_poly.append(len(rings))
            for r in rings:
                ring_sizes.append(r.shape[0])
                chunks.append(r[:, :2])
    n_geom = len(geoms)
    if not chunks:
        return np.array([shapely.MultiPolygon() for _ in range(n_geom)], dtype=object)
    coords = np.ascontiguousarray(np.vstack(chunks), dtype=np.float64)
    geom_offsets = np.concatenate([[0], np.cumsum(polys_per_geom)])
    poly_offsets = np.concatenate([[0], np.cumsum(rings_per_poly)])
    ring_offsets = np.concatenate([[0], np.cumsum(ring_sizes)])
    # Which geometry each coordinate belongs to: via rings → polygons → geometries.
    ring_geom = np.repeat(np.repeat(np.arange(n_geom), polys_per_geom), rings_per_poly)
    coord_geom = np.repeat(ring_geom, ring_sizes)
    codes = np.asarray(epsgs)
    to_3006(
        coords,
        codes[0] if (codes == codes[0]).all() else codes[coord_geom],
        lambda i: ids[coord_geom[i]],
    )
    return shapely.from_ragged_array(
        GeometryType.MULTIPOLYGON, coords, (ring_offsets, poly_offsets, geom_offsets)
    )


#: Provisions parsed between two conversions into typed frames: bounds memory (raw strings and
#: row dicts of one batch only) while keeping per-batch overhead small.


def assemble(
    prov_rows: list[dict] | ColumnRows,
    types: Sequence[str | None] | pa.Array,
    geometry: Callable[[list[str]], np.ndarray],
    affected_rows: list[dict] | ColumnRows,
    decision_rows: list[dict] | ColumnRows,
    subsets: list[tuple[str, str]] | dict[str, pa.Array],
    *,
    unmapped: Counter | None = None,
    errors: list[tuple[str, str]] | None = None,
    files: Sequence[str] = (),
) -> BestammelseData:
    """The typed tables of a batch of provisions, whichever reader collected them.

    ``prov_rows``, ``affected_rows`` and ``decision_rows`` are row dicts or
    :class:`~vggeo.lm._records.ColumnRows` of raw strings; ``types`` the provision type per row;
    ``geometry`` a function of the provision ids returning the MultiPolygons; ``subsets``
    ``(raw provision id, subset)`` pairs, or those two columns as Arrow arrays.
    """
    # Each frame is built once from its columns in their final order (selecting columns from a
    # frame copies them; this runs once per part of a few thousand provisions).
    cols = typed_columns(prov_rows, _PROVISION.fields)
    cols["provision_type"] = pd.Categorical(types, categories=list(PROVISION_TYPES))
    missing = cols["provision_id"].isna()
    if missing.any():
        raise InputError(
            f"{int(missing.sum())} provisions have no objektidentitet",
            file=files[0] if files else None,
        )
    geom = geometry(cols["provision_id"].tolist())
    provisions = gpd.GeoDataFrame(
        {c: cols[c] for c in PROVISION_COLUMNS},
        geometry=gpd.GeoSeries(geom, crs=SWEREF99TM.pyproj_crs),
    )
    aff = typed_columns(affected_rows, _AFFECTED.fields)
    affected = pd.DataFrame(
        {
            "provision_id": identities(column_values(affected_rows, "provision_id")),
            "register_unit_id": aff["register_unit_id"],
        }
    )
    dec = typed_columns(decision_rows, _DECISION.fields)
    dec["provision_id"] = identities(column_values(decision_rows, "provision_id"))
    dec["kind"] = raw_column(column_values(decision_rows, "kind")).astype("string")
    decisions = pd.DataFrame({c: dec[c] for c in DECISION_COLUMNS})
    if isinstance(subsets, dict):  # columns (Arrow arrays) from the compiled path
        sub_ids, sub_names = subsets["provision_id"], subsets["subset"]
    else:
        sub_ids = [p for p, _ in subsets]
        sub_names = [n for _, n in subsets]
    sub = pd.DataFrame(
        {"provision_id": identities(sub_ids), "subset": pd.Series(sub_names, dtype="string")}
    )
    return BestammelseData(
        provisions,
        affected,
        decisions,
        sub,
        unmapped if unmapped is not None else Counter(),
        errors if errors is not None else [],
        list(files),
    )
