"""A strict GML 3.2 / 3.1.1 geometry reader producing shapely geometries.

Hand-written because no maintained Python library reads GML *geometry* from an lxml element
without GDAL, and GDAL (``ogr.CreateGeometryFromGML``) is too lenient for a delivery reader: it
reads ``1.5 abc`` as ``POINT (1.5 0)`` and accepts unclosed rings. GDAL serves instead as the
independent oracle in the tests.

What is read
    Point, LineString, LinearRing, Polygon, Rectangle, Triangle, Curve (segments LineStringSegment,
    Arc, ArcString, Circle, ArcByCenterPoint, CircleByCenterPoint), Ring of curveMembers,
    OrientableCurve, CompositeCurve, OrientableSurface, Surface / PolygonPatch / Triangle /
    Rectangle patches, PolyhedralSurface, Tin / TriangulatedSurface, CompositeSurface,
    MultiPoint, MultiCurve, MultiLineString, MultiSurface, MultiPolygon, MultiGeometry, Envelope,
    Box; coordinates as ``pos``, ``posList``, ``coordinates`` (with ``cs``/``ts``/``decimal``) and
    ``coord``; ``srsDimension`` 3 (inherited from ancestors). Elements are matched by local name in
    the GML 3.2 namespace, the GML 3.1.1/2 namespace, or no namespace. Anything else is an error.

Axis order (decided from the ``srsName`` form by :func:`vggeo.crs.gml_axis_swap`)
    ``urn:ogc:def:crs:EPSG::3006`` and ``http://www.opengis.net/def/crs/EPSG/0/3006`` mean the
    CRS's **authority order**: northing first for every Swedish grid (latitude first for EPSG:4326).
    ``EPSG:3006`` and ``http://www.opengis.net/gml/srs/epsg.xml#3006`` mean GDAL's traditional GIS
    order: easting (longitude) first. The reader swaps authority-ordered input so that shapely's
    ``x`` is always the easting/longitude. ``axis="file"`` keeps the document order (what
    ``ogr.CreateGeometryFromGML`` does; used to compare with GDAL).

Arcs
    Linearised so that no chord strays more than ``arc_tolerance`` from the true arc
    (default :data:`DEFAULT_ARC_TOLERANCE` = 2 mm in metre systems; scaled to degrees in geographic
    systems). Three collinear points make a straight segment. The vertices this produces are
    capped per arc, per feature and per file (:class:`~vggeo.lm.safety.GeometryLimits`, counted
    by an :class:`ArcBudget`) *before* any is computed: a circle too large for the caps is refused
    with :class:`~vggeo.errors.GeometryLimitError` naming the setting, whatever its radius.

Errors
    Malformed geometry raises :class:`~vggeo.errors.GeometryError` naming the feature (when the
    caller says which), the element, and its line: odd or short coordinate lists, non-numeric or
    non-finite text, unclosed rings, rings with fewer than four positions, empty geometries where
    content is required, unknown elements, and nesting deeper than :data:`MAX_DEPTH`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import shapely

from vggeo.crs import epsg_axes, epsg_from_srs_name, gml_axis_swap
from vggeo.errors import GeometryError, GeometryLimitError, LimitError
from vggeo.lm.safety import GeometryLimits, geometry_limits, safe_fromstring

if TYPE_CHECKING:
    from lxml import etree

__all__ = [
    "DEFAULT_ARC_TOLERANCE",
    "ArcBudget",
    "check_arc_tolerance",
    "GML_NAMESPACES",
    "MAX_DEPTH",
    "Geom",
    "inherited_srs_name",
    "source_line",
    "parse_geometry",
    "geometry_from_string",
    "to_shapely",
    "polygons_of",
]

GML32 = "http://www.opengis.net/gml/3.2"
GML3 = "http://www.opengis.net/gml"
#: Namespaces whose elements are read as GML ("" = no namespace).
GML_NAMESPACES = frozenset({GML32, GML3, ""})
#: Maximum deviation of a linearised arc from the true arc, in CRS units (metres here).
DEFAULT_ARC_TOLERANCE = 0.002
#: Deepest geometry nesting accepted (a MultiGeometry of MultiGeometries … is refused beyond it).
MAX_DEPTH = 64

AxisMode = Literal["auto", "file"]


# --- the intermediate form ----------------------------------------------------------------------


@dataclass(slots=True)
class Geom:
    """A parsed geometry before it becomes shapely: ``kind`` and ``parts``.

    kind: ``point`` (array (1, d)), ``line`` (array (n, d)), ``polygon`` (list of ring arrays),
    ``multipoint`` / ``multiline`` (list of arrays), ``multipolygon`` (list of ring lists),
    ``collection`` (list of Geom). Coordinates are float64 with x = easting/longitude once the
    axis decision is applied.
    """

    kind: str
    #: The shape follows ``kind`` (above): Any, since a tagged union by a string is not a type.
    parts: Any
    empty: bool = False


# --- srsName: decided in vggeo.crs ----------------------------------------------------------------


def inherited_srs_name(element: etree._Element) -> str | None:
    """The srsName that applies to ``element``: its own, else its nearest ancestor's, else None."""
    node: etree._Element | None = element
    while node is not None:
        v = node.get("srsName")
        if v:
            return v
        node = node.getparent()
    return None


# --- helpers ------------------------------------------------------------------------------------


def source_line(element: etree._Element) -> int | None:
    """The line ``element`` starts on, if the parser recorded it."""
    line: int | None = element.sourceline  # type: ignore[assignment]  # lxml-stubs: "..."
    return line


def _local(el: etree._Element) -> str:
    tag = el.tag
    if not isinstance(tag, str):
        return ""
    return tag.rpartition("}")[2] if tag[0] == "{" else tag


def _ns(el: etree._Element) -> str:
    tag = el.tag
    return tag[1:].partition("}")[0] if isinstance(tag, str) and tag[0] == "{" else ""


def _children(el: etree._Element) -> list[etree._Element]:
    return [c for c in el if isinstance(c.tag, str)]


class _Ctx:
    __slots__ = (
        "feature",
        "swap",
        "tol",
        "file",
        "geographic",
        "unit",
        "dim",
        "northing_first",
        "budget",
    )

    def __init__(
        self,
        feature: str | None,
        swap: bool,
        tol: float,
        file: str | None,
        geographic: bool,
        unit: float = 1.0,
        dim: int = 2,
        budget: ArcBudget | None = None,
    ) -> None:
        self.northing_first = False
        # parse_geometry always gives one; a context made without gets the default caps
        self.budget = budget if budget is not None else ArcBudget()
        self.unit = unit
        self.dim = dim
        self.feature = feature
        self.swap = swap
        self.tol = tol
        self.file = file
        self.geographic = geographic

    def error(self, msg: str, el: etree._Element, value: Any = None) -> GeometryError:
        prefix = f"feature {self.feature}: " if self.feature else ""
        return GeometryError(
            prefix + msg,
            file=self.file,
            row=getattr(el, "sourceline", None) if self.file else None,
            element=_local(el) or str(el.tag),
            value=value,
            feature=self.feature,
        )


def _srs_dimension(el: etree._Element) -> str | None:
    """srsDimension as written on the element or its nearest ancestor that has one."""
    node: etree._Element | None = el
    while node is not None:
        v = node.get("srsDimension")
        if v is not None:
            return v
        node = node.getparent()
    return None


def _as_dimension(text: str) -> int:
    """An srsDimension's number, or 0 for a text that is not one (ASCII digits only: ``"³"``
    passes ``str.isdigit`` and fails ``int``)."""
    t = text.strip()
    return int(t) if t.isascii() and t.isdigit() and len(t) < 4 else 0


def _dimension(text: str, el: etree._Element, ctx: _Ctx) -> int:
    """A written srsDimension, refused unless it is 2 or 3 (naming what was written)."""
    dim = _as_dimension(text)
    if dim not in (2, 3):
        raise ctx.error("unsupported srsDimension (2 or 3 expected)", el, value=text[:40])
    return dim


def _numbers(text: str | None, el: etree._Element, ctx: _Ctx) -> np.ndarray:
    if text is None or not text.strip():
        raise ctx.error("no coordinates", el)
    try:
        # The main cost of reading a delivery: one split + one C-level conversion per posList.
        arr = np.array(text.split(), dtype=np.float64)
    except ValueError:
        bad = next((t for t in text.split() if not is_number(t)), None)
        raise ctx.error("non-numeric coordinate text", el, value=bad) from None
    if not np.isfinite(arr).all():
        raise ctx.error("non-finite coordinate (nan/inf)", el)
    return arr


def is_number(t: str) -> bool:
    """Whether a coordinate token parses as a number (to name the first one that does not)."""
    try:
        float(t)
        return True
    except ValueError:
        return False


def _shape(arr: np.ndarray, dim: int, el: etree._Element, ctx: _Ctx) -> np.ndarray:
    if arr.size % dim:
        raise ctx.error(f"coordinate count {arr.size} is not a multiple of the dimension {dim}", el)
    return arr.reshape(-1, dim)


def _pos(el: etree._Element, ctx: _Ctx) -> np.ndarray:
    arr = _numbers(el.text, el, ctx)
    dim = el.get("srsDimension")
    if dim is not None:
        return _shape(arr, _dimension(dim, el, ctx), el, ctx)
    if arr.size not in (2, 3):
        raise ctx.error(f"a pos holds {arr.size} numbers; 2 or 3 expected", el)
    return arr.reshape(1, -1)


def _pos_list(el: etree._Element, ctx: _Ctx) -> np.ndarray:
    arr = _numbers(el.text, el, ctx)
    # srsDimension on the posList or an ancestor; else the CRS's own dimension (EPSG:4979 is 3-D).
    written = _srs_dimension(el)
    dim = ctx.dim if written is None else _dimension(written, el, ctx)
    return _shape(arr, dim, el, ctx)


def _coordinates(el: etree._Element, ctx: _Ctx) -> np.ndarray:
    text = el.text or ""
    cs, ts, dec = el.get("cs", ","), el.get("ts", " "), el.get("decimal", ".")
    tuples = [t for t in (text.split() if ts.isspace() else text.strip().split(ts)) if t.strip()]
    if not tuples:
        raise ctx.error("no coordinates", el)
    rows = []
    for t in tuples:
        vals = t.strip().split(cs) if not cs.isspace() else t.split()
        if dec != ".":
            vals = [v.replace(dec, ".") for v in vals]
        try:
            nums = [float(v) for v in vals]
        except ValueError:
            raise ctx.error("non-numeric coordinate text", el, value=t) from None
        if len(nums) not in (2, 3):
            raise ctx.error(f"a coordinate tuple holds {len(nums)} numbers", el, value=t)
        rows.append(nums)
    dim = max(len(r) for r in rows)
    # As GDAL does: a mix of 2-D and 3-D tuples becomes 3-D with Z = 0.
    out = np.array([r + [0.0] * (dim - len(r)) for r in rows], dtype=np.float64)
    if not np.isfinite(out).all():
        raise ctx.error("non-finite coordinate (nan/inf)", el)
    return out


def _coord(el: etree._Element, ctx: _Ctx) -> np.ndarray:
    vals = []
    for name in ("X", "Y", "Z"):
        c = next((c for c in _children(el) if _local(c) == name), None)
        if c is None:
            if name == "Z":
                break
            raise ctx.error(f"coord without {name}", el)
        vals.append(_numbers(c.text, c, ctx)[0])
    return np.array([vals], dtype=np.float64)


def _points_of(el: etree._Element, ctx: _Ctx, *, allow_point_members: bool = True) -> np.ndarray:
    """Coordinates of a line-like element: posList, pos+, coordinates, coord+, pointProperty."""
    chunks = []
    for c in _children(el):
        name = _local(c)
        if name == "posList":
            chunks.append(_pos_list(c, ctx))
        elif name == "pos":
            chunks.append(_pos(c, ctx))
        elif name == "coordinates":
            chunks.append(_coordinates(c, ctx))
        elif name == "coord":
            chunks.append(_coord(c, ctx))
        elif name in ("pointProperty", "pointRep") and allow_point_members:
            pts = [g for g in _children(c) if _local(g) == "Point"]
            if not pts:
                raise ctx.error("pointProperty without Point", c)
            chunks.append(_point_coords(pts[0], ctx))
        elif name in (
            "radius",
            "startAngle",
            "endAngle",
            "name",
            "description",
            "metaDataProperty",
        ):
            continue
        else:
            raise ctx.error("unexpected element in coordinate list", c)
    if not chunks:
        raise ctx.error("no coordinates", el)
    if len(chunks) == 1:
        return chunks[0]
    dim = max(ch.shape[1] for ch in chunks)
    return np.vstack(
        [
            ch if ch.shape[1] == dim else np.pad(ch, ((0, 0), (0, dim - ch.shape[1])))
            for ch in chunks
        ]
    )


def _point_coords(el: etree._Element, ctx: _Ctx) -> np.ndarray:
    pts = _points_of(el, ctx, allow_point_members=False)
    if pts.shape[0] != 1:
        raise ctx.error(f"a Point holds {pts.shape[0]} positions", el)
    return pts


# --- arcs ---------------------------------------------------------------------------------------


def _tolerance_for(ctx: _Ctx) -> float:
    # Metres → degrees in a geographic system (1° ≈ 111 km); a chord error stays a few mm.
    return ctx.tol / 111_320.0 if ctx.geographic else ctx.tol


def check_arc_tolerance(tolerance: float) -> float:
    """``tolerance`` as a float, or ValueError unless it is a positive, finite number."""
    try:
        t = float(tolerance)
    except (TypeError, ValueError):
        raise ValueError(f"arc tolerance must be a number of metres, not {tolerance!r}") from None
    if not (math.isfinite(t) and t > 0):
        raise ValueError(f"arc tolerance must be a positive, finite number of metres, not {t!r}")
    return t


class ArcBudget:
    """The vertices linearised arcs may still produce: per arc, per feature and per file.

    One budget serves one data file (``file_bytes`` = its size; None: no per-file cap) and is
    told where each feature starts (:meth:`start_feature`). :meth:`spend` is asked before an arc's
    vertices are computed, so no cap is ever exceeded in memory, even for a circle of 10^15 m.
    """

    def __init__(
        self, limits: GeometryLimits | None = None, *, file_bytes: int | None = None
    ) -> None:
        self.limits = limits if limits is not None else geometry_limits()
        lim = self.limits
        self.file_cap = (
            None
            if file_bytes is None
            else max(
                lim.max_feature_arc_vertices, lim.max_arc_vertices_per_kib * int(file_bytes) // 1024
            )
        )
        self.file_used = 0
        self.feature_used = 0

    def start_feature(self) -> None:
        self.feature_used = 0

    def spend(self, n: float, ctx: _Ctx, el: etree._Element, radius: float) -> int:
        """Take ``n`` vertices for one arc (a float: may be huge or infinite); return it as int."""
        lim = self.limits
        setting = type(lim).setting

        def refuse(what: str, name: str, cls: type[LimitError] = GeometryLimitError) -> LimitError:
            prefix = f"feature {ctx.feature}: " if ctx.feature else ""
            return cls(
                f"{prefix}{what} (setting {setting(name)}; a larger arc tolerance needs fewer "
                "vertices)",
                file=ctx.file,
                row=getattr(el, "sourceline", None) if ctx.file else None,
                element=_local(el) or str(el.tag),
                feature=ctx.feature,
            )

        need = _count_text(n)
        if not n <= lim.max_arc_vertices:
            raise refuse(
                f"an arc of radius {radius:.6g} needs {need} vertices to stay within the "
                f"arc tolerance of {ctx.tol:g} m, above the limit of "
                f"{lim.max_arc_vertices:,} per arc",
                "max_arc_vertices",
            )
        k = int(n)
        if self.feature_used + k > lim.max_feature_arc_vertices:
            raise refuse(
                f"the arcs of this feature need more than {lim.max_feature_arc_vertices:,} "
                "vertices in all",
                "max_feature_arc_vertices",
            )
        if self.file_cap is not None and self.file_used + k > self.file_cap:
            # Not one feature's fault: the whole file is refused, even when bad geometry is kept.
            raise refuse(
                f"the arcs of this file need more than {self.file_cap:,} vertices in all, "
                f"at {lim.max_arc_vertices_per_kib:,} per KiB of the file",
                "max_arc_vertices_per_kib",
                LimitError,
            )
        self.feature_used += k
        self.file_used += k
        return k


def _count_text(n: float) -> str:
    return f"{int(n):,}" if n < 1e18 else "over 10^18"


def _n_steps(radius: float, sweep: float, ctx: _Ctx, el: etree._Element) -> int:
    """Chords for an arc of ``radius`` sweeping ``sweep`` radians, charged to the arc budget."""
    tol = _tolerance_for(ctx)
    if not (math.isfinite(radius) and math.isfinite(sweep)):
        raise ctx.error("the arc's radius or angles are not finite numbers", el)
    quarter = abs(sweep) / (math.pi / 2)  # never a chord over more than a quarter turn
    if radius <= tol:
        n = float(math.ceil(quarter))
    else:
        # A chord over angle a strays r (1 - cos(a/2)) = 2 r sin²(a/4) from the arc: the largest
        # a within the tolerance is 4 asin(sqrt(tol / 2r)). (The textbook 2 acos(1 - tol/r) loses
        # everything to rounding once tol/r < 1e-16 and divides by zero.)
        step = 4.0 * math.asin(math.sqrt(tol / (2.0 * radius)))
        ratio = abs(sweep) / step if step > 0 else math.inf
        n = float(math.ceil(max(ratio, quarter))) if ratio < 1e18 else math.inf
    n = max(1.0, n)
    return ctx.budget.spend(n + 1, ctx, el, radius) - 1


def _arc_points(
    x0: float, y0: float, r: float, a0: float, sweep: float, ctx: _Ctx, el: etree._Element
) -> np.ndarray:
    """Points from (x0, y0) — on the circle, at angle a0 — along ``sweep`` radians.

    Each point is its chord from the start, ``2 r sin(d/2)`` in direction ``a0 + d/2 + 90°``,
    rather than centre + r·(cos, sin): with a large radius (a nearly straight arc) the centre is
    far away and the textbook form would lose millimetres to rounding; chords stay short.
    """
    n = _n_steps(r, sweep, ctx, el)
    d = sweep * np.arange(n + 1) / n
    chord = 2.0 * r * np.sin(d / 2.0)
    mid = a0 + d / 2.0
    pts = np.column_stack([x0 - chord * np.sin(mid), y0 + chord * np.cos(mid)])
    if not np.isfinite(pts).all():
        raise ctx.error("the arc's coordinates overflow", el)
    return pts


def _circle_through(
    p0: np.ndarray, p1: np.ndarray, p2: np.ndarray
) -> tuple[float, float, float] | None:
    """Centre and radius of the circle through three points, or None when collinear.

    Computed relative to ``p0``: with Swedish grid coordinates (~6.5e6) the textbook formula
    loses centimetres to cancellation; relative coordinates keep it at the sub-micrometre level.
    """
    ox, oy = float(p0[0]), float(p0[1])
    x1, y1 = float(p1[0]) - ox, float(p1[1]) - oy
    x2, y2 = float(p2[0]) - ox, float(p2[1]) - oy
    d = 2.0 * (x1 * y2 - x2 * y1)
    scale = max(abs(x1), abs(y1), abs(x2), abs(y2), 1e-300)
    if abs(d) <= 1e-12 * scale * scale:
        return None
    s1, s2 = x1 * x1 + y1 * y1, x2 * x2 + y2 * y2
    cx = (y2 * s1 - y1 * s2) / d
    cy = (x1 * s2 - x2 * s1) / d
    return cx + ox, cy + oy, math.hypot(cx, cy)


def _arc3(
    p0: np.ndarray,
    p1: np.ndarray,
    p2: np.ndarray,
    ctx: _Ctx,
    el: etree._Element,
    *,
    full: bool = False,
) -> np.ndarray:
    dim = p0.shape[0]
    x0, y0 = float(p0[0]), float(p0[1])
    if not full and np.array_equal(p0[:2], p2[:2]) and not np.array_equal(p0[:2], p1[:2]):
        # An arc that returns to its start is a full circle whose diameter is p0–p1 (as GDAL).
        cx, cy = (p0[0] + p1[0]) / 2.0, (p0[1] + p1[1]) / 2.0
        r = math.hypot(p0[0] - cx, p0[1] - cy)
        pts = _arc_points(x0, y0, r, math.atan2(p0[1] - cy, p0[0] - cx), 2 * math.pi, ctx, el)
        pts[0] = pts[-1] = p0[:2]
        return np.column_stack([pts, np.full(len(pts), p0[2])]) if dim == 3 else pts
    circ = _circle_through(p0, p1, p2)
    if circ is None:
        if full:
            raise ctx.error("a Circle through three collinear points", el)
        # Collinear: a straight piece, as GDAL does.
        return np.vstack([p0, p1, p2])
    cx, cy, r = circ
    if not all(map(math.isfinite, (cx, cy, r))):
        raise ctx.error(
            "the circle through the arc's points cannot be computed (coordinates too large)", el
        )
    a0 = math.atan2(p0[1] - cy, p0[0] - cx)
    a1 = math.atan2(p1[1] - cy, p1[0] - cx)
    a2 = math.atan2(p2[1] - cy, p2[0] - cx)
    ccw = (p1[0] - p0[0]) * (p2[1] - p1[1]) - (p1[1] - p0[1]) * (p2[0] - p1[0]) > 0
    two_pi = 2 * math.pi
    if full:
        sweep = two_pi if ccw else -two_pi
    elif ccw:
        sweep = (a2 - a0) % two_pi
    else:
        sweep = -((a0 - a2) % two_pi)
    _ = a1
    pts = _arc_points(x0, y0, r, a0, sweep, ctx, el)
    # Exact end points: the arc must join its neighbours bit for bit.
    pts[0] = p0[:2]
    pts[-1] = p0[:2] if full else p2[:2]
    if dim == 3:
        z = np.linspace(p0[2], p0[2] if full else p2[2], len(pts))
        pts = np.column_stack([pts, z])
    return pts


def _arc_string(el: etree._Element, ctx: _Ctx, *, full: bool) -> np.ndarray:
    pts = _points_of(el, ctx)
    n = pts.shape[0]
    if full:
        if n != 3:
            raise ctx.error(f"a Circle needs 3 positions, got {n}", el)
        return _arc3(pts[0], pts[1], pts[2], ctx, el, full=True)
    if n < 3 or n % 2 == 0:
        raise ctx.error(f"an arc needs 2k+1 ≥ 3 positions, got {n}", el)
    if _local(el) == "Arc" and n != 3:
        raise ctx.error(f"an Arc needs exactly 3 positions, got {n}", el)
    out = [_arc3(pts[i], pts[i + 1], pts[i + 2], ctx, el) for i in range(0, n - 2, 2)]
    return _join([o for o in out])


_UOM_TO_M = {
    "m": 1.0,
    "metre": 1.0,
    "meter": 1.0,
    "km": 1000.0,
    "ft": 0.3048,
    "[ft_i]": 0.3048,
    "urn:ogc:def:uom:epsg::9001": 1.0,
    "urn:ogc:def:uom:epsg::9002": 0.3048,
}


def _by_center(el: etree._Element, ctx: _Ctx, *, full: bool) -> np.ndarray:
    kids = {_local(c): c for c in _children(el)}
    if not any(k in kids for k in ("pos", "posList", "pointProperty", "coordinates")):
        raise ctx.error("no centre position", el)
    centre = _points_of(el, ctx)[0]
    if "radius" not in kids:
        raise ctx.error("no radius", el)
    rad_el = kids["radius"]
    r = float(_numbers(rad_el.text, rad_el, ctx)[0])
    uom = (rad_el.get("uom") or "").strip().lower()
    if uom and ctx.geographic:
        raise ctx.error(
            f"a radius in {uom!r} in a geographic CRS (geodesic circles are not read)", rad_el
        )
    if uom and epsg_from_srs_name(uom) is not None:
        uom = ""  # a CRS named as the unit: the radius is in that CRS's own units
    if uom and uom not in _UOM_TO_M:
        raise ctx.error(f"unknown radius unit {uom!r}", rad_el)
    if uom:
        # Radius in metres, then in the units of the CRS (metres when no srsName says otherwise).
        r = r * _UOM_TO_M[uom] / ctx.unit
    if not (math.isfinite(r) and r > 0):
        raise ctx.error("radius must be a positive, finite length", rad_el, value=r)
    if full:
        a0, sweep = math.pi, 2 * math.pi
    else:
        if "startAngle" not in kids or "endAngle" not in kids:
            raise ctx.error("ArcByCenterPoint needs startAngle and endAngle", el)
        s = float(_numbers(kids["startAngle"].text, kids["startAngle"], ctx)[0])
        e = float(_numbers(kids["endAngle"].text, kids["endAngle"], ctx)[0])
        a0, sweep = math.radians(s), math.radians(e - s)
    # Angles count anticlockwise from the easting axis; in a northing-first document the centre
    # is swapped for the computation and the points swapped back (as GDAL does).
    cx, cy = (centre[1], centre[0]) if ctx.northing_first else (centre[0], centre[1])
    pts = _arc_points(cx + r * math.cos(a0), cy + r * math.sin(a0), r, a0, sweep, ctx, el)
    if ctx.northing_first:
        pts = pts[:, ::-1].copy()
    if full:
        pts[-1] = pts[0]
    if centre.shape[0] == 3:
        pts = np.column_stack([pts, np.full(len(pts), centre[2])])
    return pts


def _join(chunks: list[np.ndarray]) -> np.ndarray:
    """Concatenate line pieces, dropping the repeated point where one piece ends and the next starts."""
    if len(chunks) == 1:
        return chunks[0]
    dim = max(c.shape[1] for c in chunks)
    out: list[np.ndarray] = []
    for i, c in enumerate(chunks):
        if c.shape[1] < dim:
            c = np.pad(c, ((0, 0), (0, dim - c.shape[1])))
        if i and out and np.array_equal(out[-1][-1], c[0]):
            c = c[1:]
        out.append(c)
    return np.vstack(out)


# --- the element handlers -------------------------------------------------------------------------

_SEGMENTS = {
    "LineStringSegment",
    "Arc",
    "ArcString",
    "Circle",
    "ArcByCenterPoint",
    "CircleByCenterPoint",
    "LineString",
}


def _curve_coords(el: etree._Element, ctx: _Ctx, depth: int) -> np.ndarray:
    """Coordinates of any curve element (LineString, Curve, OrientableCurve, CompositeCurve, segments)."""
    if depth > MAX_DEPTH:
        raise ctx.error(f"geometry nested deeper than {MAX_DEPTH} levels", el)
    name = _local(el)
    if _ns(el) not in GML_NAMESPACES:
        raise ctx.error("element outside the GML namespaces", el)
    if name in ("LineString", "LineStringSegment"):
        pts = _points_of(el, ctx)
        if pts.shape[0] < 2:
            raise ctx.error(f"a line needs at least 2 positions, got {pts.shape[0]}", el)
        return pts
    if name in ("Arc", "ArcString"):
        return _arc_string(el, ctx, full=False)
    if name == "Circle":
        return _arc_string(el, ctx, full=True)
    if name == "ArcByCenterPoint":
        return _by_center(el, ctx, full=False)
    if name == "CircleByCenterPoint":
        return _by_center(el, ctx, full=True)
    if name == "Curve":
        segs = [c for c in _children(el) if _local(c) == "segments"]
        if not segs:
            raise ctx.error("a Curve without segments", el)
        pieces = []
        for s in _children(segs[0]):
            if _local(s) not in _SEGMENTS:
                raise ctx.error("unknown curve segment", s)
            pieces.append(_curve_coords(s, ctx, depth + 1))
        if not pieces:
            raise ctx.error("a Curve with no segments", el)
        return _join(pieces)
    if name == "OrientableCurve":
        base = [c for c in _children(el) if _local(c) == "baseCurve"]
        inner = _children(base[0]) if base else []
        if not inner:
            raise ctx.error("an OrientableCurve without baseCurve", el)
        pts = _curve_coords(inner[0], ctx, depth + 1)
        return pts[::-1].copy() if el.get("orientation", "+").strip() == "-" else pts
    if name == "CompositeCurve":
        pieces = []
        for m in _children(el):
            if _local(m) not in ("curveMember", "curveMembers"):
                raise ctx.error("unexpected element in CompositeCurve", m)
            for g in _children(m):
                pieces.append(_curve_coords(g, ctx, depth + 1))
        if not pieces:
            raise ctx.error("an empty CompositeCurve", el)
        for a, b in zip(pieces, pieces[1:], strict=False):
            if not np.allclose(a[-1][:2], b[0][:2]):
                raise ctx.error("CompositeCurve members do not join end to start", el)
        return _join(pieces)
    raise ctx.error("unknown curve element", el)


def _ring(el: etree._Element, ctx: _Ctx, depth: int) -> np.ndarray:
    """A closed ring from exterior/interior/outerBoundaryIs/innerBoundaryIs content."""
    kids = _children(el)
    if len(kids) != 1:
        raise ctx.error(f"a boundary must hold one ring, found {len(kids)}", el)
    r = kids[0]
    name = _local(r)
    if name == "LinearRing":
        pts = _points_of(r, ctx)
    elif name == "Ring":
        pieces = []
        for m in _children(r):
            if _local(m) != "curveMember":
                raise ctx.error("unexpected element in Ring", m)
            for g in _children(m):
                pieces.append(_curve_coords(g, ctx, depth + 1))
        if not pieces:
            raise ctx.error("an empty Ring", r)
        pts = _join(pieces)
    elif name in ("CompositeCurve", "Curve", "LineString", "OrientableCurve"):
        pts = _curve_coords(r, ctx, depth + 1)
    else:
        raise ctx.error("unknown ring element", r)
    if pts.shape[0] < 4:
        raise ctx.error(f"a ring needs at least 4 positions, got {pts.shape[0]}", r)
    if not np.array_equal(pts[0], pts[-1]):
        raise ctx.error(
            "ring is not closed (first and last positions differ)",
            r,
            value=f"{pts[0].tolist()} ≠ {pts[-1].tolist()}",
        )
    return pts


def _polygon(el: etree._Element, ctx: _Ctx, depth: int) -> list[np.ndarray] | None:
    ext: np.ndarray | None = None
    empty_exterior = False
    holes: list[np.ndarray] = []
    for c in _children(el):
        n = _local(c)
        if n in ("exterior", "outerBoundaryIs"):
            if ext is not None or empty_exterior:
                raise ctx.error("two exteriors", c)
            if not _children(c):
                empty_exterior = True  # empty exterior → empty polygon (GDAL's answer as well)
                continue
            ext = _ring(c, ctx, depth + 1)
        elif n in ("interior", "innerBoundaryIs"):
            holes.append(_ring(c, ctx, depth + 1))
        elif n in ("name", "description", "metaDataProperty"):
            continue
        else:
            raise ctx.error("unexpected element in polygon", c)
    if empty_exterior:
        return None
    if ext is None:
        raise ctx.error("a polygon without exterior", el)
    return [ext, *holes]


def _surface_patches(el: etree._Element, ctx: _Ctx, depth: int) -> list[list[np.ndarray]]:
    polys = []
    for p in _children(el):
        if _local(p) not in ("patches", "polygonPatches", "trianglePatches"):
            raise ctx.error("unexpected element in surface", p)
        for patch in _children(p):
            if _local(patch) not in ("PolygonPatch", "Triangle", "Rectangle"):
                raise ctx.error("unknown surface patch", patch)
            poly = _polygon(patch, ctx, depth + 1)
            if poly is not None:
                polys.append(poly)
    return polys


def _polys_of(g: Geom, el: etree._Element, ctx: _Ctx) -> list[list[np.ndarray]]:
    if g.kind == "polygon":
        return [] if g.empty else [g.parts]
    if g.kind == "multipolygon":
        return list(g.parts)
    raise ctx.error(f"a surface member holds a {g.kind}, not a surface", el)


def _parse(el: etree._Element, ctx: _Ctx, depth: int) -> Geom:
    if depth > MAX_DEPTH:
        raise ctx.error(f"geometry nested deeper than {MAX_DEPTH} levels", el)
    if _ns(el) not in GML_NAMESPACES:
        raise ctx.error("not a GML geometry element", el)
    name = _local(el)
    if name == "Point":
        return Geom("point", _point_coords(el, ctx))
    if name in (
        "LineString",
        "Curve",
        "OrientableCurve",
        "CompositeCurve",
        "Arc",
        "ArcString",
        "Circle",
        "ArcByCenterPoint",
        "CircleByCenterPoint",
        "LineStringSegment",
    ):
        return Geom("line", _curve_coords(el, ctx, depth))
    if name == "LinearRing":
        pts = _points_of(el, ctx)
        if pts.shape[0] < 4 or not np.array_equal(pts[0], pts[-1]):
            raise ctx.error("a LinearRing must be closed with at least 4 positions", el)
        return Geom("line", pts)
    if name in ("Polygon", "PolygonPatch", "Triangle", "Rectangle"):
        rings = _polygon(el, ctx, depth)
        return Geom("polygon", rings or [], empty=rings is None)
    if name == "Envelope" or name == "Box":
        corners = _points_of(el, ctx) if name == "Box" else None
        if name == "Envelope":
            kids = {_local(c): c for c in _children(el)}
            if "lowerCorner" not in kids or "upperCorner" not in kids:
                raise ctx.error("an Envelope needs lowerCorner and upperCorner", el)
            lo = _pos(kids["lowerCorner"], ctx)
            hi = _pos(kids["upperCorner"], ctx)
            if lo.shape != hi.shape:
                raise ctx.error("lowerCorner and upperCorner differ in dimension", el)
            corners = np.vstack([lo, hi])
        if corners is None or corners.shape[0] != 2:
            raise ctx.error("a Box needs exactly 2 positions", el)
        (x0, y0), (x1, y1) = corners[0, :2], corners[1, :2]
        ring = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]])
        return Geom("polygon", [ring])
    if name in ("Surface", "PolyhedralSurface", "Tin", "TriangulatedSurface"):
        polys = _surface_patches(el, ctx, depth)
        if name in ("Tin", "TriangulatedSurface") and not polys:
            raise ctx.error("a TIN without triangles", el)
        if name == "Surface" and len(polys) == 1:
            return Geom("polygon", polys[0])
        return Geom("multipolygon", polys, empty=not polys)
    if name == "OrientableSurface":
        base = [c for c in _children(el) if _local(c) == "baseSurface"]
        inner = _children(base[0]) if base else []
        if not inner:
            raise ctx.error("an OrientableSurface without baseSurface", el)
        g = _parse(inner[0], ctx, depth + 1)
        if el.get("orientation", "+").strip() == "-":
            g = Geom(
                g.kind,
                [[r[::-1].copy() for r in p] for p in g.parts]
                if g.kind == "multipolygon"
                else [r[::-1].copy() for r in g.parts],
                g.empty,
            )
        return g
    if name in ("MultiSurface", "MultiPolygon", "CompositeSurface", "Shell"):
        polys = []
        for m in _children(el):
            if _local(m) not in (
                "surfaceMember",
                "surfaceMembers",
                "polygonMember",
                "polygonMembers",
            ):
                raise ctx.error("unexpected element in a surface collection", m)
            for child in _children(m):
                polys.extend(_polys_of(_parse(child, ctx, depth + 1), child, ctx))
        return Geom("multipolygon", polys, empty=not polys)
    if name in ("MultiCurve", "MultiLineString"):
        lines = []
        for m in _children(el):
            if _local(m) not in (
                "curveMember",
                "curveMembers",
                "lineStringMember",
                "lineStringMembers",
            ):
                raise ctx.error("unexpected element in a curve collection", m)
            for child in _children(m):
                lines.append(_curve_coords(child, ctx, depth + 1))
        return Geom("multiline", lines, empty=not lines)
    if name == "MultiPoint":
        points = []
        for m in _children(el):
            if _local(m) not in ("pointMember", "pointMembers"):
                raise ctx.error("unexpected element in MultiPoint", m)
            for child in _children(m):
                if _local(child) != "Point":
                    raise ctx.error("a MultiPoint member is not a Point", child)
                points.append(_point_coords(child, ctx))
        return Geom("multipoint", points, empty=not points)
    if name == "MultiGeometry":
        parts = []
        for m in _children(el):
            if _local(m) not in ("geometryMember", "geometryMembers"):
                raise ctx.error("unexpected element in MultiGeometry", m)
            for child in _children(m):
                parts.append(_parse(child, ctx, depth + 1))
        return Geom("collection", parts, empty=not parts)
    raise ctx.error("unknown or unsupported GML geometry element", el)


def _swap_all(g: Geom) -> Geom:
    def sw(a: np.ndarray) -> np.ndarray:
        b = a.copy()
        b[:, [0, 1]] = a[:, [1, 0]]
        return b

    k = g.kind
    if k in ("point", "line"):
        return Geom(k, sw(g.parts), g.empty)
    if k == "polygon":
        return Geom(k, [sw(r) for r in g.parts], g.empty)
    if k in ("multipoint", "multiline"):
        return Geom(k, [sw(r) for r in g.parts], g.empty)
    if k == "multipolygon":
        return Geom(k, [[sw(r) for r in p] for p in g.parts], g.empty)
    return Geom(k, [_swap_all(p) for p in g.parts], g.empty)


def parse_geometry(
    element: etree._Element,
    *,
    axis: AxisMode = "auto",
    srs_name: str | None = None,
    arc_tolerance: float = DEFAULT_ARC_TOLERANCE,
    feature: str | None = None,
    file: str | None = None,
    budget: ArcBudget | None = None,
) -> tuple[Geom, str | None]:
    """Parse one GML geometry element into the intermediate :class:`Geom`.

    Parameters
    ----------
    element
        An lxml element whose local name is a GML geometry (e.g. ``Polygon``).
    axis
        ``"auto"``: swap to x = easting/longitude when the srsName form implies authority order
        (:func:`vggeo.crs.gml_axis_swap`). ``"file"``: keep document order (as GDAL's
        ``CreateGeometryFromGML`` does).
    srs_name
        The srsName to assume when neither the element nor an ancestor has one.
    arc_tolerance
        Largest deviation of a linearised arc from the true arc, in CRS units (metres; scaled to
        degrees for geographic systems).
    feature, file
        Feature identity and file name used in error messages.
    budget
        The :class:`ArcBudget` arcs are charged to (a reader passes one per file and starts a
        feature before each). Default: a fresh one with the limits in effect, no per-file cap.

    Returns
    -------
    (Geom, srsName in effect or None)

    Raises
    ------
    GeometryError
        Malformed geometry; :class:`~vggeo.errors.GeometryLimitError` for arcs beyond the caps.
    LimitError
        The budget's per-file cap is used up.
    ValueError
        ``arc_tolerance`` is not a positive, finite number.
    """
    tol = check_arc_tolerance(arc_tolerance)
    srs = inherited_srs_name(element) or srs_name
    code = epsg_from_srs_name(srs)
    axes = epsg_axes(code) if code else None
    ctx = _Ctx(
        feature,
        False,
        tol,
        file,
        axes.geographic if axes else False,
        axes.metres_per_unit if axes else 1.0,
        axes.dimension if axes else 2,
        budget if budget is not None else ArcBudget(),
    )
    ctx.northing_first = gml_axis_swap(srs)
    g = _parse(element, ctx, 0)
    if axis == "auto" and ctx.northing_first:
        # Arcs are linearised in document order first, then swapped: the arc is the same set of
        # points either way, only the labels of the axes change.
        g = _swap_all(g)
    return g, srs


def geometry_from_string(
    text: str | bytes, *, axis: AxisMode = "auto", arc_tolerance: float = DEFAULT_ARC_TOLERANCE
) -> shapely.Geometry:
    """Parse a GML geometry fragment (safe XML settings) into a shapely geometry."""
    root = safe_fromstring(text, name="<GML fragment>")
    g, _ = parse_geometry(root, axis=axis, arc_tolerance=arc_tolerance)
    return to_shapely(g)


def to_shapely(g: Geom) -> shapely.Geometry:
    """The shapely geometry of a parsed :class:`Geom`."""
    k = g.kind
    if k == "point":
        return shapely.Point(g.parts[0])
    if k == "line":
        return shapely.LineString(g.parts)
    if k == "polygon":
        if g.empty or not g.parts:
            return shapely.Polygon()
        return shapely.Polygon(g.parts[0], g.parts[1:])
    if k == "multipoint":
        return shapely.MultiPoint([p[0] for p in g.parts]) if g.parts else shapely.MultiPoint()
    if k == "multiline":
        return shapely.MultiLineString(list(g.parts)) if g.parts else shapely.MultiLineString()
    if k == "multipolygon":
        if not g.parts:
            return shapely.MultiPolygon()
        return shapely.MultiPolygon([shapely.Polygon(p[0], p[1:]) for p in g.parts])
    return shapely.GeometryCollection([to_shapely(p) for p in g.parts])


def polygons_of(g: Geom) -> list[list[np.ndarray]]:
    """The polygons (lists of rings) of an areal geometry; ValueError for points and lines."""
    if g.kind == "polygon":
        return [] if g.empty or not g.parts else [g.parts]
    if g.kind == "multipolygon":
        return list(g.parts)
    if g.kind == "collection":
        out = []
        for p in g.parts:
            out.extend(polygons_of(p))
        return out
    raise ValueError(f"a {g.kind} is not an area")


# --- the fast path: plain polygons, coordinates converted in bulk -----------------------------


def simple_polygon_texts(
    el: etree._Element, dim: int | None = None
) -> list[list[tuple[str, int, int]]] | None:
    """Polygons of a *plain* areal geometry as raw posList texts, without converting numbers.

    Plain means: Polygon, Surface of PolygonPatches, or MultiSurface/MultiPolygon/CompositeSurface
    of those, with rings written as ``LinearRing/posList`` — what provision areas nearly always
    are. Returns ``[[(text, dim, line), …rings], …polygons]``, or None for anything else (the
    caller then uses :func:`parse_geometry`, which also produces the precise error message).
    Converting all texts of a file in one vectorised call is what makes reading fast.
    """
    if dim is None:  # once per geometry: on it or an ancestor
        written = _srs_dimension(el)
        dim = 2 if written is None else _as_dimension(written)
    d = el.get("srsDimension")
    if d is not None:
        dim = _as_dimension(d)
    if dim not in (2, 3):
        return None
    tag = el.tag
    if not isinstance(tag, str) or not (
        tag.startswith("{" + GML32 + "}") or tag.startswith("{" + GML3 + "}")
    ):
        return None
    name = tag.rpartition("}")[2]
    if name == "Polygon" or name == "PolygonPatch":
        rings = []
        first = True
        for b in el:
            bn = b.tag.rpartition("}")[2] if isinstance(b.tag, str) else ""
            if bn != ("exterior" if first else "interior") or len(b) != 1:
                return None
            first = False
            lr = b[0]
            if lr.tag.rpartition("}")[2] != "LinearRing" or len(lr) != 1 or lr.get("srsDimension"):
                return None
            pl = lr[0]
            if pl.tag.rpartition("}")[2] != "posList" or pl.text is None:
                return None
            pd = pl.get("srsDimension")
            rdim = dim if pd is None else _as_dimension(pd)
            if rdim not in (2, 3):
                return None
            line: int | None = pl.sourceline  # type: ignore[assignment]  # lxml-stubs: "..."
            rings.append((pl.text, rdim, line or 0))
        return [rings] if rings else None
    if name == "Surface":
        if len(el) != 1 or _local(el[0]) not in ("patches", "polygonPatches"):
            return None
        out = []
        for patch in el[0]:
            if _local(patch) != "PolygonPatch":
                return None
            got = simple_polygon_texts(patch, dim)
            if got is None:
                return None
            out.extend(got)
        return out or None
    if name in ("MultiSurface", "MultiPolygon", "CompositeSurface"):
        out = []
        for m in el:
            if _local(m) not in ("surfaceMember", "polygonMember", "surfaceMembers"):
                return None
            for g in m:
                got = simple_polygon_texts(g, dim)
                if got is None:
                    return None
                out.extend(got)
        return out or None
    return None


def convert_texts(texts: list[str] | pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """All numbers of many coordinate texts in one call: (values, offsets per text).

    ``texts`` is a list of str or an Arrow string array. pyarrow splits on whitespace and casts
    with a strict float parser in C++ (about 4× faster than ``np.array(text.split(), float)`` per
    text). The result is the same as that per-text conversion, which the geometry reader uses:
    whitespace around a text (a pretty-printed posList) adds no token, and a token Arrow's parser
    refuses but Python's ``float`` reads (``1_000``, a non-ASCII space) is converted the Python
    way. Raises ValueError naming the first bad text's index when a token is not a number.
    """
    arr = pa.array(texts, type=pa.large_string())
    lists = pc.ascii_split_whitespace(arr)
    tokens = lists.flatten()
    offsets = lists.offsets.to_numpy()
    empty = pc.equal(tokens, "").to_numpy(zero_copy_only=False)
    if empty.any():  # whitespace at either end of a text leaves an empty token there
        parents = pc.list_parent_indices(lists).to_numpy()[~empty]
        tokens = tokens.filter(pa.array(~empty))
        offsets = np.concatenate([[0], np.cumsum(np.bincount(parents, minlength=len(arr)))])
    try:
        return pc.cast(tokens, pa.float64()).to_numpy(zero_copy_only=False), offsets
    except pa.ArrowInvalid:
        pass
    per_text = []
    for i, t in enumerate(arr.to_pylist()):
        try:
            per_text.append(np.array(t.split(), dtype=np.float64))
        except ValueError:
            raise ValueError(i) from None
    counts = [len(v) for v in per_text]
    return np.concatenate([np.zeros(0), *per_text]), np.concatenate(
        [[0], np.cumsum(counts, dtype=np.int64)]
    )


def geometry_elements(parent: etree._Element) -> list:
    """The GML geometry children of a property element such as ``Yta``."""
    return [c for c in parent if isinstance(c.tag, str) and _ns(c) in (GML32, GML3)]
