"""Markreglerande bestämmelser: provisions, affected properties (berörkrets), decisions.

:func:`read_bestammelser` streams the numbered data files of a delivery (or one XML file, or the
GeoPackage vector product) into the tables of ``docs/contracts.md`` (Provisions): geometry as
MultiPolygon in EPSG:3006 with x = easting, whatever zone (3006, 3007–3018) and srsName form the
delivery used.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from vggeo.errors import CoordinateError, GeometryError, InputError, IntegrityError
from vggeo.lm import mapping as M
from vggeo.lm._records import GEOMETRY_KEY, SUBSETS_KEY, Extractor, typed_frame
from vggeo.lm.gml import (
    DEFAULT_ARC_TOLERANCE,
    GML32,
    ArcBudget,
    check_arc_tolerance,
    geometry_elements,
    is_number,
    parse_geometry,
    polygons_of,
)

if TYPE_CHECKING:
    from vggeo.lm.safety import GeometryLimits

__all__ = ["BestammelseData", "read_bestammelser", "PROVISION_COLUMNS"]

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

    provisions: object
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


class _GeometryCollector:
    """Parses each ``Yta``; plain polygons are kept as raw text and converted per file in bulk.

    ``__call__`` returns a placeholder per provision; :meth:`resolve` turns every placeholder into
    ``(polygons as coordinate arrays, EPSG code)`` once the file is read.
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
        self.pending: list[list] = []
        self._srs_cache: dict[str | None, tuple[int | None, bool | None]] = {}

    def _srs(self, explicit: str | None) -> tuple[int | None, bool | None]:
        """(EPSG code, swap) for an srsName (None = none given: decide by magnitude)."""
        got = self._srs_cache.get(explicit)
        if got is None:
            from vggeo.lm.gml import axis_swap_for, epsg_of

            code = epsg_of(explicit or self.default_srs)
            got = self._srs_cache[explicit] = (code, axis_swap_for(explicit) if explicit else None)
        return got

    def _fail(self, err: GeometryError, ident: str):
        if self.on_error != "keep":
            raise err
        self.errors.append((ident, str(err)))

    def __call__(self, element, row: dict):
        from vggeo.lm._records import ELEMENT_KEY
        from vggeo.lm.gml import simple_polygon_texts

        feature_el = row.get(ELEMENT_KEY)
        ident = row.get("provision_id") or (
            feature_el.get(f"{{{GML32}}}id") if feature_el is not None else None
        )
        ident = (ident or "?").strip().lower()
        self.budget.start_feature()
        polys: list = []
        epsg = None
        try:
            geoms = geometry_elements(element)
            if not geoms:
                raise GeometryError(
                    f"feature {ident}: Yta holds no GML geometry",
                    file=self.file,
                    row=element.sourceline,
                    element="Yta",
                )
            for g in geoms:
                explicit = g.get("srsName") or _inherited(g)
                srs = explicit or self.default_srs
                code, swap = self._srs(explicit)
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
                    part = [[_by_magnitude(r) for r in p] for p in part]
                polys.extend(part)
        except GeometryError as err:
            self._fail(err, ident)
            polys, epsg = [], None
        slot = [polys, epsg, ident]
        self.pending.append(slot)
        return slot

    def resolve(self) -> None:
        """Convert every collected text, check the rings, and fill the placeholders in place."""
        rings = self._convert()
        for slot in self.pending:
            polys, epsg, ident = slot
            try:
                out = []
                for p in polys:
                    if isinstance(p, list) and p and isinstance(p[0], (int, np.integer)):
                        out.append(
                            [
                                rings[h]
                                if not isinstance(rings[h], GeometryError)
                                else _raise(rings[h])
                                for h in p
                            ]
                        )
                    else:
                        out.append(p)
                slot[0] = out
            except GeometryError as err:
                self._fail(err, ident)
                slot[0], slot[1] = [], None
        self.texts, self.meta = [], []

    def _convert(self) -> list:
        """Ring arrays (x = easting) for every text, or a GeometryError in its place.

        All checks are vectorised over the batch (counts, dimension, closure, finiteness, axis
        order); only rings that fail are looked at one by one, to build their error.
        """
        from vggeo.lm.gml import convert_texts

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
        out: list = [None] * n
        # Each ring is cut from the values by its own offsets: a ring with an odd count (refused,
        # or kept as an error) never shifts the rings after it by one value.
        for i in np.flatnonzero(valid & (dims == 2)):
            r = values[start[i] : stop[i]].reshape(-1, 2)
            sw = swaps[i]
            out[i] = r[:, ::-1] if sw else (r if sw is False else _by_magnitude(r))
        for i in range(n):
            if out[i] is None:
                ident, line, dim, swap = self.meta[i]
                v = values[start[i] : stop[i]]
                out[i] = self._ring(v, np.isfinite(v).all(), ident, line, dim, swap)
        return out

    def _one(self, i: int):
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

    def _ring(self, v, finite, ident, line, dim, swap):
        def err(msg):
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
            return _by_magnitude(r)
        return r[:, [1, 0]] if swap else r[:, :2]


def _raise(err: GeometryError):
    raise err


def valid_rings(values: np.ndarray, offsets: np.ndarray, dims) -> np.ndarray:
    """Which rings pass the checks of :meth:`_GeometryCollector._ring`, vectorised.

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


def northing_first(first, second):
    """Whether positions are written northing first, read off their values (no srsName).

    Lantmäteriet's convention is northing first; Swedish northings (> 6 000 000) and eastings
    (< 1 000 000) never overlap. Works on scalars and arrays alike.
    """
    return (first > 5_000_000) & (second < 2_000_000)


def _inherited(el):
    node = el.getparent()
    while node is not None:
        if node.get("srsName"):
            return node.get("srsName")
        node = node.getparent()
    return None


def _by_magnitude(ring: np.ndarray) -> np.ndarray:
    # No srsName anywhere: the order is read off the values.
    if ring.shape[0] and northing_first(ring[0, 0], ring[0, 1]):
        ring = ring[:, [1, 0, *range(2, ring.shape[1])]]
    return ring


def to_3006(coords: np.ndarray, coord_epsg, ident_of) -> None:
    """Transform ``coords`` (x = easting) in place to EPSG:3006, one call per source code.

    ``coord_epsg`` is the code of every coordinate, or one code for all. Coordinates already in
    3006 are still checked (ranges, swapped axes) but not rewritten. ``ident_of(i)`` names the
    provision of coordinate ``i`` in an error.
    """
    from vggeo.crs import transform

    single = np.ndim(coord_epsg) == 0
    for code in [int(coord_epsg)] if single else np.unique(coord_epsg):
        sel = slice(None) if single else coord_epsg == code
        try:
            e, n = transform(
                coords[sel, 0],
                coords[sel, 1],
                src=int(code),
                dst=3006,
                in_order="en",
                out_order="en",
                names=("easting", "northing"),
            )
        except CoordinateError as err:
            # Name the provision, not the coordinate index.
            idx = (np.arange(len(coords)) if single else np.flatnonzero(sel))[(err.row or 1) - 1]
            raise type(err)(
                f"provision {ident_of(idx)}: {err.message}", field=err.field, value=err.value
            ) from err
        if code != 3006:
            coords[sel, 0], coords[sel, 1] = e, n


def _build_geometries(
    geoms: list[tuple[list, int | None]], ids: list[str], *, default_epsg: int | None
):
    """One ragged-array build of every MultiPolygon, then one transform per source CRS."""
    import shapely
    from shapely import GeometryType

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
BATCH_SIZE = 4000


class _FileReader:
    """Reads the members of one data file into typed frames, batch by batch (bounded memory).

    Members go in one at a time (:meth:`feed`, the declarative :class:`Extractor`) or a chunk at
    a time (:mod:`vggeo.lm._compiled`, which hands back to :meth:`feed` every member it cannot
    read exactly); :meth:`flush` turns what was collected into frames.
    """

    def __init__(
        self,
        label: str,
        *,
        default_srs,
        default_epsg,
        arc_tolerance,
        on_geometry_error,
        limits=None,
        file_bytes: int | None = None,
    ):
        self.label = label
        self.default_epsg = default_epsg
        self.on_geometry_error = on_geometry_error
        self.collector = _GeometryCollector(
            default_srs=default_srs,
            arc_tolerance=arc_tolerance,
            on_error=on_geometry_error,
            file=label,
            budget=ArcBudget(limits, file_bytes=file_bytes or 0),
        )
        self.ex = Extractor(M.BESTAMMELSE.records[M.BESTAMMELSE_SET], geometry=self.collector)
        self.parts: list[BestammelseData] = []

    def feed(self, member) -> None:
        self.ex.feed_member(member)

    def flush(self) -> None:
        self.collector.resolve()
        rows = self.ex.take_rows()
        for row in rows["provisions"]:
            slot = row.get(GEOMETRY_KEY)
            if slot is not None:
                row[GEOMETRY_KEY] = (slot[0], slot[1])
        self.collector.pending = []
        if rows["provisions"]:
            self.parts.append(
                _frames(rows, Counter(), [], default_epsg=self.default_epsg, files=[self.label])
            )

    def result(self) -> tuple[list[BestammelseData], Counter, list]:
        return self.parts, self.ex.unmapped, self.collector.errors


def _read_file(
    f, *, batch_size: int | None = None, compiled: bool | None = None, **options
) -> tuple[list[BestammelseData], Counter, list]:
    """Parse one data file into typed frames.

    Large files take the compiled path (:mod:`vggeo.lm._compiled`): same result, C-speed
    extraction. It gives up (returns None) on anything it cannot vouch for, and the file is then
    read here, member by member, which also names the exact line of any error.
    """
    import gc

    from vggeo.lm import _compiled
    from vggeo.lm.package import iter_members

    # The parse allocates millions of short-lived objects and no reference cycles; the cyclic
    # garbage collector would only rescan them, so it is paused while a file is read.
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        if compiled is None:
            compiled = (f.size or 0) >= _compiled.MIN_FILE_BYTES
        if compiled:
            got = _compiled.read_file(
                f,
                lambda: _FileReader(f.label, file_bytes=f.size, **options),
                default_epsg=options.get("default_epsg"),
            )
            if got is not None:
                return got
        reader = _FileReader(f.label, file_bytes=f.size, **options)
        batch_size = batch_size or BATCH_SIZE
        n = 0
        for member in iter_members(f):
            reader.feed(member)
            n += 1
            if n % batch_size == 0:
                reader.flush()
        reader.flush()
        return reader.result()
    finally:
        if was_enabled:
            gc.enable()


def _read_chunk(chunk: bytes, offset: int, *, label: str, **options):
    """Worker: read one wrapped chunk of a file (see :mod:`vggeo.lm._parallel`)."""
    import io
    import re

    from vggeo.lm.package import DataFile

    f = DataFile(label, M.BESTAMMELSE_SET, "data", len(chunk), lambda: io.BytesIO(chunk), label)
    parts, unmapped, errors = _read_file(f, **options)
    # Line numbers in kept-error messages refer to the chunk; make them the file's.
    rx = re.compile(re.escape(label) + r":(\d+)")
    errors = [
        (i, rx.sub(lambda m: f"{label}:{int(m.group(1)) + offset}", msg)) for i, msg in errors
    ]
    return parts, unmapped, errors


def _read_file_parallel(f, *, workers: int, **options):
    """Read one large file on several cores; None when it must be read sequentially instead."""
    from concurrent.futures.process import BrokenProcessPool
    from functools import partial

    from vggeo.errors import VggeoError
    from vggeo.lm._parallel import ChunkingUnsupported, map_chunks
    from vggeo.lm.package import _peek_member_tag

    _peek_member_tag(f)  # the DTD check and well-formed head, on the whole file, first
    try:
        with f.open() as stream:
            results = map_chunks(
                stream, partial(_read_chunk, label=f.label, **options), workers=workers
            )
    except (ChunkingUnsupported, VggeoError, BrokenProcessPool):
        # The sequential reader names the exact line of any error, and reads what cannot be split.
        return None
    from vggeo.lm._records import PathCounts

    parts, unmapped, errors = [], PathCounts(), []
    for p, u, e in results:
        parts.extend(p)
        unmapped.update(u)
        unmapped.unknown.update(getattr(u, "unknown", ()))
        errors.extend(e)
    return parts, unmapped, errors


#: Columns every provision carrying its Basinformation has (Lantmäteriet's example shows them on
#: every provision; FORMATS.md §5, §7). Entirely null over a set, they were spelt otherwise.
REQUIRED_WITH_BASINFORMATION = ("designation", "status", "municipality", "object_version")


def refuse_empty_columns(data: BestammelseData, path=None) -> None:
    """Raise IntegrityError when a column that comes with the Basinformation is null for every
    provision that carried it: its element was there under a spelling the mapping did not catch
    (or missing from the whole delivery) — an error, not a warning: nothing is read with values
    silently lost.
    """
    sub = data.subsets
    if not len(sub):
        return
    ids = sub.loc[sub["subset"] == "basinformation", "provision_id"]
    if not len(ids):
        return
    prov = data.provisions
    rows = prov[prov["provision_id"].isin(ids)]
    for col in REQUIRED_WITH_BASINFORMATION:
        if len(rows) and rows[col].isna().all():
            raise IntegrityError(
                f"{col} is null in all {len(rows)} provisions carrying Basinformation: its "
                "element is spelt in a way vggeo/lm/mapping.py does not know; see `vggeo inspect`",
                file=data.files[0] if data.files else path,
                field=col,
            )


def refuse_repeated_identities(parts: list[BestammelseData]) -> None:
    """Raise IntegrityError when a provision identity occurs more than once in the parts.

    An extract lists each object once (seed 004: a change file holds an object's changed
    subsets, once); two members with one identity would leave the store to pick one of them.
    The error names the identity and every file it occurs in.
    """
    sizes = [len(p.provisions) for p in parts]
    if sum(sizes) < 2:
        return
    ids = pd.concat([p.provisions["provision_id"] for p in parts], ignore_index=True)
    repeated = ids.duplicated(keep=False).to_numpy()
    if not repeated.any():
        return
    labels = np.repeat(
        np.array([p.files[0] if p.files else "?" for p in parts], dtype=object), sizes
    )
    first = ids[repeated].iloc[0]
    at = (ids == first).to_numpy()
    where = list(dict.fromkeys(labels[at]))
    others = ids[repeated].nunique() - 1
    raise IntegrityError(
        f"provision {first} occurs {int(at.sum())} times"
        + (f" (also in {', '.join(where[1:])})" if len(where) > 1 else "")
        + (f", and {others} more identities occur more than once" if others else "")
        + "; an extract lists each object once",
        file=where[0],
        field="objektidentitet",
    )


def _concat(parts: list[BestammelseData], unmapped, errors, files) -> BestammelseData:
    import geopandas as gpd

    parts = [p for p in parts if len(p.provisions)] or parts[:1]
    if len(parts) == 1:
        d = parts[0]
        return BestammelseData(
            d.provisions, d.affected, d.decisions, d.subsets, unmapped, errors, files
        )
    prov = gpd.GeoDataFrame(
        pd.concat([p.provisions for p in parts], ignore_index=True),
        geometry="geometry",
        crs="EPSG:3006",
    )
    prov["provision_type"] = pd.Categorical(
        prov["provision_type"], categories=list(PROVISION_TYPES)
    )
    cat = lambda name: pd.concat([getattr(p, name) for p in parts], ignore_index=True)  # noqa: E731
    return BestammelseData(
        prov, cat("affected"), cat("decisions"), cat("subsets"), unmapped, errors, files
    )


def read_bestammelser(
    source,
    *,
    set_name: str | None = None,
    arc_tolerance: float = DEFAULT_ARC_TOLERANCE,
    on_geometry_error: str = "raise",
    progress: bool = False,
    workers: int | None = 1,
    limits: GeometryLimits | None = None,
    check_counts: bool = True,
) -> BestammelseData:
    """Read markreglerande bestämmelser into provisions, affected properties and decisions.

    Parameters
    ----------
    source
        A :class:`~vggeo.lm.package.Delivery`, anything :func:`~vggeo.lm.open_delivery` accepts
        (outer ZIP, folder, set ZIP, one XML file), or a GeoPackage of the vector product.
    set_name
        The information set (default: ``markreglerandebestammelse``).
    arc_tolerance
        Maximum deviation of linearised arcs, in metres (default 2 mm).
    on_geometry_error
        ``"raise"`` (default): malformed geometry raises :class:`~vggeo.errors.GeometryError`
        naming the provision and the element. ``"keep"``: keep the provision with an empty
        geometry and list it in ``geometry_errors``.
    progress
        Show a progress bar (stderr) of the bytes read over all data files.
    workers
        Processes reading one large file (split at member boundaries): 1 (default) reads in this
        process; ``None`` uses the cores available (at most 4). Files under 12 MB are always read
        in-process. In this process, a file of 8 MB or more takes the compiled path
        (:mod:`vggeo.lm._compiled`: an XSLT stylesheet generated from the mapping, a worker
        thread, pyarrow), which reads exactly what the member-by-member reader reads, about twice
        as fast as GDAL on two cores; see ``benchmarks/lm.md``. Several processes pay off only on
        more, idle cores, and cost memory (each holds its chunk's tree and results).
    limits
        Caps on the vertices arcs may be linearised into (default: :func:`~vggeo.lm.safety.
        geometry_limits`, from the environment). A feature beyond the per-arc or per-feature cap
        is a geometry error (kept empty with ``on_geometry_error="keep"``); a file beyond its
        per-file cap is refused whole. With several ``workers`` the per-file cap applies to each
        process's part of the file.
    check_counts
        Refuse (IntegrityError) a data file from which another number of provisions was
        recognised than its metadata lists — or, without metadata, none from a non-empty file —
        and a set whose total differs (default). ``vggeo inspect`` reads with False to show
        what it found.

    Returns
    -------
    BestammelseData

    Raises
    ------
    GeometryError
        Malformed geometry (``on_geometry_error="raise"``), naming the provision and the element.
    LimitError
        Arcs beyond the per-file cap of ``limits``.
    IntegrityError
        A provision identity that occurs more than once in the set (naming it and its files);
        provisions recognised not matching the metadata's counts (``check_counts``), naming the
        element path not understood.
    """

    from vggeo.lm.package import Delivery, open_delivery

    if on_geometry_error not in ("raise", "keep"):
        raise ValueError("on_geometry_error must be 'raise' or 'keep'")
    check_arc_tolerance(arc_tolerance)
    if limits is None:
        from vggeo.lm.safety import geometry_limits

        limits = geometry_limits()
    if isinstance(source, (str, os.PathLike)) and Path(source).suffix.lower() == ".gpkg":
        return read_vector_product(source)
    own = not isinstance(source, Delivery)
    d = open_delivery(source) if own else source
    bar = None
    try:
        if d.product != "bestammelse":
            raise InputError(f"{d.path} is an {d.product} delivery, not markreglerande bestämmelse")
        sets = [set_name] if set_name else [s for s in d.sets if d.data_files(s)] or d.sets
        default_srs = f"urn:ogc:def:crs:EPSG::{d.crs}" if d.crs else None
        parts: list[BestammelseData] = []
        unmapped: Counter = Counter()
        errors: list = []
        files = [f for s in sets for f in d.data_files(s)]
        recognised: dict[str, int] = {}
        bar = _ByteProgress(files) if progress else None
        it = [bar.wrap(f) for f in files] if bar else files
        from vggeo.lm._parallel import CHUNK_BYTES, default_workers

        n_workers = default_workers() if workers is None else max(1, int(workers))
        options = dict(
            default_srs=default_srs,
            default_epsg=d.crs,
            arc_tolerance=arc_tolerance,
            on_geometry_error=on_geometry_error,
            limits=limits,
        )
        for f in it:
            got = None
            if n_workers > 1 and (f.size or 0) > 2 * CHUNK_BYTES:
                got = _read_file_parallel(f, workers=n_workers, **options)
            p, u, e = got if got is not None else _read_file(f, **options)
            n = sum(len(x.provisions) for x in p)
            if check_counts:
                d.check_recognised(f, n, getattr(u, "unknown", None) or (u if not n else None))
            recognised[f.set_name] = recognised.get(f.set_name, 0) + n
            parts.extend(p)
            unmapped.update(u)
            errors.extend(e)
        if check_counts:
            for s in sets:
                d.check_total(s, recognised.get(s, 0))
        if not parts:
            parts = [
                _frames(
                    {"provisions": [], "affected_properties": [], "decisions": []},
                    Counter(),
                    [],
                    default_epsg=d.crs,
                    files=[],
                )
            ]
        refuse_repeated_identities(parts)
        data = _concat(parts, unmapped, errors, [f.label for f in files])
        if check_counts:
            refuse_empty_columns(data, d.path)
        return data
    finally:
        if bar is not None:
            bar.close()
        if own:
            d.close()


class _ByteProgress:
    """One progress bar (stderr) in bytes read over the data files of a read.

    A file read again (the compiled path handing a file back to the member-by-member reader)
    does not count twice: each file advances the bar only past its own high-water mark.
    """

    def __init__(self, files) -> None:
        from tqdm import tqdm

        self.total = sum(f.size or 0 for f in files) or None
        self.done = 0
        self.bar = tqdm(
            total=self.total, desc="provisions", unit="B", unit_scale=True, disable=None
        )
        self.high: dict[str, int] = {}

    def wrap(self, f):
        import dataclasses

        return dataclasses.replace(f, opener=lambda: _CountedStream(f.open(), self, f.label))

    def advance(self, label: str, pos: int) -> None:
        gain = pos - self.high.get(label, 0)
        if gain > 0:
            self.high[label] = pos
            self.done += gain
            self.bar.update(gain)

    def close(self) -> None:
        self.bar.close()


class _CountedStream:
    """A binary stream that reports how far it has been read."""

    def __init__(self, stream, progress: _ByteProgress, label: str) -> None:
        self._stream, self._progress, self._label, self._pos = stream, progress, label, 0

    def read(self, n: int = -1) -> bytes:
        data = self._stream.read(n)
        self._pos += len(data)
        self._progress.advance(self._label, self._pos)
        return data

    def close(self) -> None:
        self._stream.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _frames(rows, unmapped, errors, *, default_epsg, files) -> BestammelseData:
    """Typed tables from the Extractor's raw rows (one dict per provision)."""
    prov_rows = rows["provisions"]
    geoms = [r.get(GEOMETRY_KEY) or ([], None) for r in prov_rows]
    return assemble(
        prov_rows,
        [r.get("provision_type") for r in prov_rows],
        lambda ids: _build_geometries(geoms, ids, default_epsg=default_epsg),
        rows["affected_properties"],
        rows["decisions"],
        [(r["provision_id"], s) for r in prov_rows for s in sorted(r.get(SUBSETS_KEY, ()))],
        unmapped=unmapped,
        errors=errors,
        files=files,
    )


def assemble(
    prov_rows,
    types,
    geometry,
    affected_rows,
    decision_rows,
    subsets,
    *,
    unmapped=None,
    errors=None,
    files=(),
) -> BestammelseData:
    """The typed tables of a batch of provisions, whichever reader collected them.

    ``prov_rows``, ``affected_rows`` and ``decision_rows`` are row dicts or
    :class:`~vggeo.lm._records.ColumnRows` of raw strings; ``types`` the provision type per row;
    ``geometry`` a function of the provision ids returning the MultiPolygons; ``subsets``
    ``(raw provision id, subset)`` pairs, or those two columns as Arrow arrays.
    """
    import geopandas as gpd

    prov = typed_frame(prov_rows, _PROVISION.fields)
    prov.insert(1, "provision_type", pd.Categorical(types, categories=list(PROVISION_TYPES)))
    missing = prov["provision_id"].isna()
    if missing.any():
        raise InputError(
            f"{int(missing.sum())} provisions have no objektidentitet",
            file=files[0] if files else None,
        )
    geom = geometry(prov["provision_id"].tolist())
    prov = prov[list(PROVISION_COLUMNS)]
    provisions = gpd.GeoDataFrame(prov, geometry=gpd.GeoSeries(geom, crs="EPSG:3006"))
    affected = typed_frame(affected_rows, _AFFECTED.fields, extra=("provision_id",))[
        ["provision_id", "register_unit_id"]
    ]
    affected["provision_id"] = affected["provision_id"].astype("string").str.strip().str.lower()
    dec = typed_frame(decision_rows, _DECISION.fields, extra=("provision_id", "kind"))
    dec["provision_id"] = dec["provision_id"].astype("string").str.strip().str.lower()
    dec["kind"] = dec["kind"].astype("string")
    decisions = dec[list(DECISION_COLUMNS)]
    if isinstance(subsets, dict):  # columns (Arrow arrays) from the compiled path
        subsets = pd.DataFrame({k: pd.Series(v, dtype="string") for k, v in subsets.items()})
    else:
        subsets = pd.DataFrame(subsets, columns=["provision_id", "subset"]).astype("string")
    subsets["provision_id"] = subsets["provision_id"].str.strip().str.lower()
    return BestammelseData(
        provisions,
        affected,
        decisions,
        subsets,
        unmapped if unmapped is not None else Counter(),
        errors if errors is not None else [],
        list(files),
    )


# --- the vector product ------------------------------------------------------------------------

#: Vector-product column names (lower-cased) → vggeo columns. [inferred]
VECTOR_COLUMNS = {
    "objektidentitet": "provision_id",
    "provision_id": "provision_id",
    "bestammelsetyp": "provision_type",
    "typ": "provision_type",
    "objektversion": "object_version",
    "kommun": "municipality",
    "kommunkod": "municipality",
    "aktbeteckning": "designation",
    "namn": "name",
    "status": "status",
    "plantyp": "plan_type",
    "alternativaktbeteckning": "alt_designation",
    "senasteandringallmannadelen": "last_changed",
    "genomforandetidstart": "implementation_start",
    "genomforandetidslut": "implementation_end",
}
_TYPE_NAMES = {
    "plan": "plan",
    "naturvårdsbestämmelse": "naturvardsbestammelse",
    "övrig bestämmelse": "ovrig_bestammelse",
    "mineralrättighet": "mineralrattighet",
    "utredning m.m.": "utredning",
    "fornlämning": "fornlamning",
}


def read_vector_product(path) -> BestammelseData:
    """Read the GeoPackage vector product of provision areas into the same shape."""
    import geopandas as gpd
    import pyogrio
    import shapely

    from vggeo.crs import transform_geoseries
    from vggeo.lm._records import normalise_kommun, parse_dates

    frames = []
    for name, gtype in pyogrio.list_layers(path):
        if gtype is None:
            continue
        df = pyogrio.read_dataframe(path, layer=name)
        df = df.rename(
            columns={
                c: VECTOR_COLUMNS[c.lower()] for c in df.columns if c.lower() in VECTOR_COLUMNS
            }
        )
        if df.crs is None:
            raise InputError("vector product layer has no CRS", file=path, element=name)
        df = transform_geoseries(df, 3006)
        frames.append(df)
    if not frames:
        raise InputError("no geometry layer in the GeoPackage", file=path)
    df = pd.concat(frames, ignore_index=True)
    out = pd.DataFrame(index=df.index)
    for col in PROVISION_COLUMNS:
        out[col] = df[col] if col in df else pd.NA
    out["provision_id"] = out["provision_id"].astype("string").str.lower()
    t = out["provision_type"].astype("string").str.lower()
    out["provision_type"] = pd.Categorical(
        t.map(lambda v: _TYPE_NAMES.get(v, v) if isinstance(v, str) else v),
        categories=list(PROVISION_TYPES),
    )
    out["object_version"] = pd.to_numeric(out["object_version"], errors="coerce").astype("Int64")
    out["municipality"] = normalise_kommun(out["municipality"], column="municipality", file=path)
    for c in ("last_changed", "implementation_start", "implementation_end"):
        out[c] = parse_dates(out[c].astype("string"), column=c, file=path)
    for c in ("designation", "name", "status", "plan_type", "alt_designation", "reference_text"):
        out[c] = out[c].astype("string")
    geom = shapely.get_parts(np.asarray(df.geometry.values))  # noqa: F841 - validity below
    mp = [
        g if g is None or g.geom_type == "MultiPolygon" else shapely.MultiPolygon([g])
        for g in df.geometry.values
    ]
    gdf = gpd.GeoDataFrame(out, geometry=gpd.GeoSeries(mp, crs="EPSG:3006"))
    empty = pd.DataFrame({"provision_id": pd.Series(dtype="string")})
    return BestammelseData(
        gdf,
        empty.assign(register_unit_id=pd.Series(dtype="string")),
        pd.DataFrame({c: pd.Series(dtype="string") for c in DECISION_COLUMNS}),
        pd.DataFrame({"provision_id": gdf["provision_id"], "subset": "basinformation"}).astype(
            "string"
        ),
        files=[str(path)],
    )
