"""Swedish coordinate reference systems with explicit axis order.

Every Swedish grid (SWEREF 99 TM, the twelve local SWEREF 99 zones, RT 90 and its SWEREF-based
emulations) officially lists **northing first**; Swedish practice calls the northing *X*. Shapely,
GeoPandas and ``pyproj`` with ``always_xy=True`` hold **easting first**. This module is the one
place where that difference is settled: every function takes and returns coordinates in an order
that is named in its signature (``"ne"``, ``"en"``, ``"latlon"``, ``"lonlat"``).

Transformations are done by PROJ (through pyproj). vggeo only chooses the operation:

* **RT 90, route "direct" (default).** Lantmäteriet's direct projection (EPSG 3845–3850): SWEREF 99
  latitude/longitude projected straight onto the RT 90 grid. It reproduces the RT 90 values
  Lantmäteriet publishes to well under a millimetre, and it is what Swedish users compare against.
  RT 90 codes (3019–3024) are *relabelled* to the emulation of the same zone, not transformed.
* **RT 90, route "helmert".** The datum route PROJ picks for EPSG:3021: Bessel 1841 with the
  7-parameter Helmert shift EPSG:1895 (stated accuracy 0.1 m). The two routes differ by a few
  centimetres up to about 0.2 m. WGS 84 is treated as SWEREF 99 on this route (PROJ's null shift),
  so EPSG:1895 is used rather than the 1 m WGS 84 variant EPSG:1896.

Transformers are pyproj's own, built once per pair of systems (``functools.lru_cache``); pyproj
keeps their per-thread state itself. The module also settles what web maps and OGC APIs need:
Web Mercator (:func:`en_to_en`, :func:`en_to_lonlat`, :func:`lonlat_to_en`) and the names and
authority axis order of CRS URIs (:func:`crs_uri`, :func:`ogc_crs`), and what GML readers need
from an ``srsName``: its EPSG code (:func:`epsg_from_srs_name`), whether its form means the
authority's axis order (:func:`gml_axis_swap`), the axes of a code (:func:`epsg_axes`) and, for
files without any srsName, the order read off the values (:func:`northing_first_by_magnitude`).
Valueguard's convention for its three coordinate pairs is the registry's business:
:mod:`vggeo.registry.coordinates`.

Examples
--------
>>> n, e = transform([59.0], [15.0], src="wgs84", dst="SWEREF 99 TM")
>>> round(float(n[0]), 3), round(float(e[0]), 3)
(6540052.017, 500000.0)
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from functools import cache, cached_property, lru_cache
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, cast

import numpy as np
import pyproj
from numpy.typing import ArrayLike

if TYPE_CHECKING:
    from geopandas import GeoDataFrame, GeoSeries

from vggeo.errors import (
    CoordinateRangeError,
    CRSError,
    OutsideAreaWarning,
    SwappedAxesError,
    SwappedAxesWarning,
)

__all__ = [
    "AxisOrder",
    "Route",
    "SwedishCRS",
    "get_crs",
    "list_crs",
    "transform",
    "transform_geoseries",
    "transformer",
    "crs_records",
    "crs_table",
    "en_transformer",
    "en_to_en",
    "en_to_lonlat",
    "lonlat_to_en",
    "detect_axis_problems",
    "epsg_from_srs_name",
    "epsg_from_code_text",
    "EPSGAxes",
    "epsg_axes",
    "gml_axis_swap",
    "northing_first_by_magnitude",
    "easting_first_by_magnitude",
    "outside_area",
    "local_zone_for",
    "local_zone_for_municipality",
    "crs_uri",
    "supported_crs",
    "ogc_crs",
    "OGCCRS",
    "CRS84",
    "STORAGE_CRS",
    "WEB_MERCATOR",
    "SWEREF99TM",
    "WGS84",
    "SWEREF99_GEOGRAPHIC",
    "RT90_25_GON_V",
]

AxisOrder = Literal["ne", "en", "latlon", "lonlat"]
Route = Literal["direct", "helmert"]
AXIS_ORDERS: tuple[str, ...] = ("ne", "en", "latlon", "lonlat")
ROUTES: tuple[str, ...] = ("direct", "helmert")


class Range(NamedTuple):
    low: float
    high: float

    def contains(self, values: np.ndarray) -> np.ndarray:
        return (values >= self.low) & (values <= self.high)


@dataclass(frozen=True)
class SwedishCRS:
    """One supported coordinate reference system.

    Build it with :func:`get_crs`; the registry below is the only source of instances.

    Attributes
    ----------
    epsg
        The EPSG code.
    name
        The official name as Swedish users write it.
    family
        ``"sweref99tm"``, ``"sweref99_local"``, ``"rt90"``, ``"rt90_emulation"`` or ``"geographic"``.
    central_meridian_deg
        Central meridian of a transverse Mercator grid, in degrees; ``None`` for geographic systems.
    first_range, second_range
        Plausible magnitudes over Sweden of the first and second coordinate in the system's own
        order (northing, easting for grids; latitude, longitude for geographic systems). Northings
        and eastings never overlap, which is what makes swapped input detectable.
    """

    epsg: int
    name: str
    family: str
    central_meridian_deg: float | None
    first_range: Range
    second_range: Range
    aliases: tuple[str, ...] = ()

    @property
    def is_geographic(self) -> bool:
        return self.family == "geographic"

    @property
    def native_order(self) -> AxisOrder:
        """The authority axis order: ``"latlon"`` for geographic systems, else ``"ne"``."""
        return "latlon" if self.is_geographic else "ne"

    @property
    def srs(self) -> str:
        return f"EPSG:{self.epsg}"

    @cached_property
    def pyproj_crs(self) -> pyproj.CRS:
        return pyproj.CRS.from_epsg(self.epsg)

    @cached_property
    def area_of_use(self) -> tuple[float, float, float, float]:
        """(west_lon_degree, south_lat_degree, east_lon_degree, north_lat_degree) from EPSG."""
        aou = self.pyproj_crs.area_of_use
        assert aou is not None, self.epsg
        return aou.bounds

    @property
    def rt90_zone_index(self) -> int | None:
        """0–5 for RT 90 zones and their emulations (7.5 gon V … 5 gon O), else None."""
        if self.family == "rt90":
            return self.epsg - 3019
        if self.family == "rt90_emulation":
            return self.epsg - 3845
        return None

    def __str__(self) -> str:
        return f"{self.name} (EPSG:{self.epsg})"


# --- the registry ---------------------------------------------------------------------------

# Magnitudes over Sweden (with margin): SWEREF 99 TM eastings ~0.26–0.92 M, northings ~6.1–7.7 M.
_NORTHING = Range(6_000_000.0, 7_800_000.0)
_TM_EASTING = Range(150_000.0, 1_000_000.0)
# Local zones (false easting 150 000): a municipality lies within ~2° of its meridian.
_LOCAL_EASTING = Range(-150_000.0, 450_000.0)
# RT 90 (false easting 1 500 000).
_RT90_EASTING = Range(1_050_000.0, 1_950_000.0)
_RT90_NORTHING = Range(5_990_000.0, 7_800_000.0)
_LAT = Range(54.0, 70.0)
_LON = Range(9.0, 25.5)

_LOCAL_MERIDIANS = {
    3007: (12, 0),
    3008: (13, 30),
    3009: (15, 0),
    3010: (16, 30),
    3011: (18, 0),
    3012: (14, 15),
    3013: (15, 45),
    3014: (17, 15),
    3015: (18, 45),
    3016: (20, 15),
    3017: (21, 45),
    3018: (23, 15),
}
_RT90_ZONES = ("7.5 gon V", "5 gon V", "2.5 gon V", "0 gon", "2.5 gon O", "5 gon O")
# RT 90 central meridians: 11°18'29.8" + n·2°15' (CRS.md).
_RT90_CM0 = 11 + 18 / 60 + 29.8 / 3600


def _build_registry() -> dict[int, SwedishCRS]:
    reg: dict[int, SwedishCRS] = {}
    reg[3006] = SwedishCRS(
        3006,
        "SWEREF 99 TM",
        "sweref99tm",
        15.0,
        _NORTHING,
        _TM_EASTING,
        aliases=("sweref99", "sweref 99", "sweref99tm", "sweref 99 tm"),
    )
    for code, (deg, minute) in _LOCAL_MERIDIANS.items():
        label = f"{deg:02d} {minute:02d}"
        reg[code] = SwedishCRS(
            code,
            f"SWEREF 99 {label}",
            "sweref99_local",
            deg + minute / 60,
            _NORTHING,
            _LOCAL_EASTING,
            aliases=(f"sweref99 {deg:02d}{minute:02d}",),
        )
    for i, zone in enumerate(_RT90_ZONES):
        cm = _RT90_CM0 + i * 2.25
        reg[3019 + i] = SwedishCRS(
            3019 + i,
            f"RT 90 {zone}",
            "rt90",
            cm,
            _RT90_NORTHING,
            _RT90_EASTING,
            aliases=("rt90", "rt 90") if i == 2 else (),
        )
        reg[3845 + i] = SwedishCRS(
            3845 + i,
            f"SWEREF 99 / RT 90 {zone} emulation",
            "rt90_emulation",
            cm,
            _RT90_NORTHING,
            _RT90_EASTING,
            aliases=(f"rt90 {zone} emulation",),
        )
    reg[4619] = SwedishCRS(
        4619,
        "SWEREF 99",
        "geographic",
        None,
        _LAT,
        _LON,
        aliases=("sweref99 geographic", "sweref 99 geographic", "sweref99 latlon", "sweref99 geo"),
    )
    reg[4326] = SwedishCRS(
        4326, "WGS 84", "geographic", None, _LAT, _LON, aliases=("wgs84", "wgs 84", "gps")
    )
    return reg


_REGISTRY = _build_registry()


def _norm(name: str) -> str:
    """Fold the ways users write names: case, spaces, dots, ö/o, 'gon' spacing, separators."""
    s = name.strip().lower().replace("ö", "o").replace("ø", "o").replace(",", ".")
    s = re.sub(r"[\s_\-/:]+", "", s)
    s = s.replace("rt90", "rt90").replace("sweref99", "sweref99")
    return s


def _build_names() -> dict[str, int]:
    names: dict[str, int] = {}
    for code, crs in _REGISTRY.items():
        for n in (crs.name, *crs.aliases):
            key = _norm(n)
            # Explicit aliases win over derived forms of official names ("sweref99" is TM).
            names.setdefault(key, code)
    # "SWEREF99 1800", "sweref 99 18:00" and "SWEREF99 18 00" all fold to the same key already.
    # RT 90 names without the space in the zone ("RT90 2.5gonV") fold too; so does "RT 90 0 gon".
    return names


_NAMES = _build_names()

_EPSG_RE = re.compile(
    r"""^(?:epsg[:]{1,2}|urn:ogc:def:crs:epsg:[\d.]*:|https?://www\.opengis\.net/def/crs/epsg/[\d.]+/)?
        (\d{4,5})$""",
    re.IGNORECASE | re.VERBOSE,
)

SWEREF99TM = _REGISTRY[3006]
WGS84 = _REGISTRY[4326]
SWEREF99_GEOGRAPHIC = _REGISTRY[4619]
RT90_25_GON_V = _REGISTRY[3021]


def get_crs(spec: str | int | SwedishCRS | pyproj.CRS) -> SwedishCRS:
    """Look a system up by EPSG code, an EPSG string/URN/URI, or a name Swedish users write.

    Accepted: ``3006``, ``"EPSG:3006"``, ``"urn:ogc:def:crs:EPSG::3006"``,
    ``"http://www.opengis.net/def/crs/EPSG/0/3006"``, ``"SWEREF 99 TM"``, ``"sweref99 18 00"``,
    ``"RT 90 2.5 gon V"``, ``"rt90"`` (= RT 90 2.5 gon V, the zone used nationally), ``"wgs84"``.

    Raises
    ------
    CRSError
        For anything else; the message lists what is supported.
    """
    if isinstance(spec, SwedishCRS):
        return spec
    if isinstance(spec, pyproj.CRS):
        code = spec.to_epsg()
        if code in _REGISTRY:
            return _REGISTRY[code]
        raise CRSError(f"unsupported coordinate reference system {spec.name!r}; {_supported()}")
    if isinstance(spec, (int, np.integer)) and not isinstance(spec, bool):
        if int(spec) in _REGISTRY:
            return _REGISTRY[int(spec)]
        raise CRSError(f"unsupported EPSG code {int(spec)}; {_supported()}")
    if isinstance(spec, str):
        m = _EPSG_RE.match(spec.strip())
        if m:
            return get_crs(int(m.group(1)))
        key = _norm(spec)
        if key in _NAMES:
            return _REGISTRY[_NAMES[key]]
        raise CRSError(f"unknown coordinate reference system {spec!r}; {_supported()}")
    raise CRSError(f"cannot interpret {spec!r} as a coordinate reference system; {_supported()}")


def list_crs() -> list[SwedishCRS]:
    """Every supported system, ordered by EPSG code."""
    return [_REGISTRY[c] for c in sorted(_REGISTRY)]


def crs_records() -> list[dict]:
    """Every supported system as a JSON-ready record (``vggeo crs list --json``): EPSG code,
    name, family, axis order, central meridian (degrees, None for geographic systems) and area
    of use (west, south, east, north)."""
    return [
        {
            "epsg": c.epsg,
            "name": c.name,
            "family": c.family,
            "axis_order": c.native_order,
            "central_meridian_deg": c.central_meridian_deg,
            "area_of_use_west_south_east_north": list(c.area_of_use),
        }
        for c in list_crs()
    ]


def crs_table() -> str:
    """Every supported system, one line each: code, name, axis order, central meridian."""
    lines = []
    for r in crs_records():
        cm = "" if r["central_meridian_deg"] is None else f"{r['central_meridian_deg']:.6f}"
        lines.append(f"EPSG:{r['epsg']:<6} {r['name']:<38} {r['axis_order']:<7} {cm}")
    return "\n".join(lines)


def _supported() -> str:
    return (
        "supported: EPSG:3006 (SWEREF 99 TM), 3007–3018 (SWEREF 99 local zones, e.g. "
        "'SWEREF 99 18 00'), 3019–3024 (RT 90, e.g. 'RT 90 2.5 gon V' or 'rt90'), "
        "3845–3850 (RT 90 emulations), 4619 (SWEREF 99), 4326 (WGS 84)"
    )


# --- operations -------------------------------------------------------------------------------

_GEOGRAPHIC_ORDERS = ("latlon", "lonlat")
_GRID_ORDERS = ("ne", "en")


def _check_order(order: str | None, crs: SwedishCRS, what: str) -> AxisOrder:
    if order is None:
        return crs.native_order
    if order not in AXIS_ORDERS:
        raise CRSError(f"{what} axis order {order!r} is not one of {', '.join(AXIS_ORDERS)}")
    allowed = _GEOGRAPHIC_ORDERS if crs.is_geographic else _GRID_ORDERS
    if order not in allowed:
        raise CRSError(
            f"{what} axis order {order!r} does not fit {crs}: use {' or '.join(allowed)}"
        )
    return cast(AxisOrder, order)


def _operation_codes(src: SwedishCRS, dst: SwedishCRS, route: str) -> tuple[int, int]:
    """Source and target EPSG codes actually handed to PROJ for the chosen RT 90 route."""
    if route not in ROUTES:
        raise CRSError(f"route {route!r} is not one of {', '.join(ROUTES)}")
    s, d = src.epsg, dst.epsg
    # The same RT 90 zone on both routes is the same grid: relabel, never transform (CRS.md).
    if src.rt90_zone_index is not None and src.rt90_zone_index == dst.rt90_zone_index:
        return d, d
    if route == "direct":
        # RT 90 grids are relabelled as Lantmäteriet's direct projection of the same zone.
        if src.family == "rt90" and src.rt90_zone_index is not None:
            s = 3845 + src.rt90_zone_index
        if dst.family == "rt90" and dst.rt90_zone_index is not None:
            d = 3845 + dst.rt90_zone_index
    else:
        # Datum route via SWEREF 99 (EPSG:1895, 0.1 m): WGS 84 relabelled as SWEREF 99.
        if src.family == "rt90" and d == 4326:
            d = 4619
        if dst.family == "rt90" and s == 4326:
            s = 4619
    return s, d


@lru_cache(maxsize=128)
def _from_crs(src: int, dst: int) -> pyproj.Transformer:
    # pyproj keeps a transformer's native state per thread itself (pyproj >= 3.1), so one cached
    # object serves every thread of the server.
    return pyproj.Transformer.from_crs(src, dst, always_xy=True)


def transformer(src: int | str, dst: int | str, route: Route = "direct") -> pyproj.Transformer:
    """The cached easting/longitude-first pyproj transformer for a pair of systems.

    Built once per pair and route and reused; ``always_xy=True``, so it takes and returns
    (easting, northing) / (lon, lat).
    """
    return _from_crs(*_operation_codes(get_crs(src), get_crs(dst), route))


def _as_float_array(values: ArrayLike, name: str) -> np.ndarray:
    if hasattr(values, "to_numpy") and not isinstance(values, np.ndarray):
        # pandas nullable columns (Float64/Int64 with pd.NA): NA becomes NaN, not an error.
        try:
            values = values.to_numpy(dtype=np.float64, na_value=np.nan)
        except (TypeError, ValueError) as err:
            raise CoordinateRangeError(f"{name} holds non-numeric values", field=name) from err
    try:
        arr = np.asarray(values, dtype=float) if not isinstance(values, np.ndarray) else values
    except (TypeError, ValueError) as err:
        raise CoordinateRangeError(f"{name} holds non-numeric values", field=name) from err
    if arr.dtype != np.float64:
        try:
            arr = arr.astype(np.float64)
        except (TypeError, ValueError) as err:
            raise CoordinateRangeError(f"{name} holds non-numeric values", field=name) from err
    return arr


def _to_xy(a: np.ndarray, b: np.ndarray, order: str) -> tuple[np.ndarray, np.ndarray]:
    """(first, second) in `order` → (easting|lon, northing|lat)."""
    return (b, a) if order in ("ne", "latlon") else (a, b)


def _from_xy(x: np.ndarray, y: np.ndarray, order: str) -> tuple[np.ndarray, np.ndarray]:
    return (y, x) if order in ("ne", "latlon") else (x, y)


def _axis_names(crs: SwedishCRS, order: str) -> tuple[str, str]:
    names = {
        "ne": ("northing", "easting"),
        "en": ("easting", "northing"),
        "latlon": ("latitude", "longitude"),
        "lonlat": ("longitude", "latitude"),
    }
    return names[order]


def detect_axis_problems(
    a: ArrayLike,
    b: ArrayLike,
    crs: int | str | SwedishCRS,
    order: AxisOrder | None = None,
    *,
    names: tuple[str, str] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Classify each coordinate pair by magnitude.

    Parameters
    ----------
    a, b
        The two coordinate arrays in ``order`` (default: the system's own order).
    crs
        The system the values claim to be in.
    names
        Column names used in error messages (default: the axis names).

    Returns
    -------
    swapped, foreign : numpy bool arrays
        ``swapped`` where the pair fits the system only with its axes exchanged; ``foreign``
        where it fits neither way (another system, or corrupt). NaN pairs are neither.
    """
    c = get_crs(crs)
    order = _check_order(order, c, "input")
    a = _as_float_array(a, names[0] if names else "first coordinate")
    b = _as_float_array(b, names[1] if names else "second coordinate")
    native_first = order in ("ne", "latlon")
    first, second = (a, b) if native_first else (b, a)
    r1, r2 = c.first_range, c.second_range
    ok = r1.contains(first) & r2.contains(second)
    swapped = ~ok & r1.contains(second) & r2.contains(first)
    nan = np.isnan(a) | np.isnan(b)
    foreign = ~ok & ~swapped & ~nan
    return swapped, foreign


def _raise_for_axis_problems(
    a: np.ndarray,
    b: np.ndarray,
    crs: SwedishCRS,
    order: AxisOrder,
    names: tuple[str, str] | None,
    swap: bool,
) -> tuple[np.ndarray, np.ndarray]:
    swapped, foreign = detect_axis_problems(a, b, crs, order, names=names)
    names = names or _axis_names(crs, order)
    if swapped.any():
        i = int(np.flatnonzero(swapped)[0])
        n_bad = int(swapped.sum())
        if not swap:
            raise SwappedAxesError(
                f"{n_bad} of {len(a)} values look swapped: column {names[0]!r} holds "
                f"{_axis_names(crs, order)[1]}s and {names[1]!r} {_axis_names(crs, order)[0]}s for "
                f"{crs}; first at index {i}: {names[0]}={a[i]:.10g}, {names[1]}={b[i]:.10g}. "
                "Pass swap=True (CLI: --swap-axes) to exchange them",
                field=names[0],
                value=float(a[i]),
                row=i + 1,
            )
        warnings.warn(
            f"swapped {n_bad} coordinate pairs of {crs} ({names[0]}/{names[1]} exchanged)",
            SwappedAxesWarning,
            stacklevel=3,
        )
        a, b = np.where(swapped, b, a), np.where(swapped, a, b)
    if foreign.any():
        i = int(np.flatnonzero(foreign)[0])
        raise CoordinateRangeError(
            f"{int(foreign.sum())} of {len(a)} coordinate pairs are not plausible {crs} values "
            f"in {order} order; first at index {i}: {names[0]}={a[i]:.10g}, {names[1]}={b[i]:.10g} "
            f"(expected {names[0]} in {_range_for(crs, order, 0)}, {names[1]} in "
            f"{_range_for(crs, order, 1)})",
            field=names[0] if not crs.first_range.contains(np.array([a[i]]))[0] else names[1],
            value=float(a[i]),
            row=i + 1,
        )
    return a, b


def _range_for(crs: SwedishCRS, order: str, pos: int) -> str:
    native_first = order in ("ne", "latlon")
    r = (crs.first_range, crs.second_range)[pos if native_first else 1 - pos]
    return f"{r.low:g}…{r.high:g}"


def transform(
    a: ArrayLike,
    b: ArrayLike,
    *,
    src: int | str | SwedishCRS,
    dst: int | str | SwedishCRS,
    in_order: AxisOrder | None = None,
    out_order: AxisOrder | None = None,
    route: Route = "direct",
    check: Literal["raise", "off"] = "raise",
    swap: bool = False,
    names: tuple[str, str] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Transform coordinate arrays between Swedish systems, axis order stated on both sides.

    Parameters
    ----------
    a, b
        The two coordinate arrays (or scalars, lists) in ``in_order``.
    src, dst
        Source and target systems (anything :func:`get_crs` accepts).
    in_order, out_order
        ``"ne"``/``"en"`` for grids, ``"latlon"``/``"lonlat"`` for geographic systems.
        Default: each system's own order (``"ne"`` for Swedish grids, ``"latlon"`` for degrees).
    route
        RT 90 only: ``"direct"`` (Lantmäteriet's direct projection, default) or ``"helmert"``
        (Bessel 1841 + EPSG:1895). See the module docstring.
    check
        ``"raise"`` (default): refuse swapped or implausible input with
        :class:`~vggeo.errors.SwappedAxesError` / :class:`~vggeo.errors.CoordinateRangeError`,
        naming the column and an example value. ``"off"``: transform whatever is given.
    swap
        Exchange pairs that are detectably swapped (with a :class:`SwappedAxesWarning`) instead of
        raising.
    names
        Column names for messages.

    Returns
    -------
    (first, second) : numpy float64 arrays in ``out_order``. NaN in, NaN out.

    Notes
    -----
    Use :func:`outside_area` to flag points outside a system's area of use; transform does not
    drop or alter them.
    """
    s_crs, d_crs = get_crs(src), get_crs(dst)
    in_order = _check_order(in_order, s_crs, "input")
    out_order = _check_order(out_order, d_crs, "output")
    a_arr = _as_float_array(a, names[0] if names else "first coordinate")
    b_arr = _as_float_array(b, names[1] if names else "second coordinate")
    if a_arr.shape != b_arr.shape:
        raise CoordinateRangeError(
            f"coordinate arrays differ in shape: {a_arr.shape} and {b_arr.shape}"
        )
    if check == "raise" and a_arr.size:
        a_arr, b_arr = _raise_for_axis_problems(a_arr, b_arr, s_crs, in_order, names, swap)
    x, y = _to_xy(a_arr, b_arr, in_order)
    s, d = _operation_codes(s_crs, d_crs, route)
    if s == d:
        ox, oy = x.astype(np.float64, copy=True), y.astype(np.float64, copy=True)
    else:
        ox, oy = transformer(s_crs.epsg, d_crs.epsg, route).transform(x, y)
        ox, oy = np.asarray(ox, dtype=np.float64), np.asarray(oy, dtype=np.float64)
    return _from_xy(ox, oy, out_order)


def outside_area(
    a: ArrayLike, b: ArrayLike, crs: int | str | SwedishCRS, order: AxisOrder | None = None
) -> np.ndarray:
    """Boolean mask of points outside the system's EPSG area of use (NaN → False).

    Grid coordinates are converted to longitude/latitude first, so this works for every system.
    """
    c = get_crs(crs)
    order = _check_order(order, c, "input")
    a = _as_float_array(a, "first coordinate")
    b = _as_float_array(b, "second coordinate")
    if c.is_geographic:
        lon, lat = _to_xy(a, b, order)
    else:
        lon, lat = transformer(c.epsg, 4619).transform(*_to_xy(a, b, order))
    west, south, east, north = c.area_of_use
    with np.errstate(invalid="ignore"):
        inside = (lon >= west) & (lon <= east) & (lat >= south) & (lat <= north)
    return ~inside & ~(np.isnan(lon) | np.isnan(lat))


def warn_outside_area(
    a: ArrayLike, b: ArrayLike, crs: int | str | SwedishCRS, order: AxisOrder | None = None
) -> np.ndarray:
    """:func:`outside_area`, with an :class:`OutsideAreaWarning` when any point is outside."""
    mask = outside_area(a, b, crs, order)
    if mask.any():
        i = int(np.flatnonzero(mask)[0])
        warnings.warn(
            f"{int(mask.sum())} points lie outside the area of use of {get_crs(crs)}; "
            f"first at index {i}",
            OutsideAreaWarning,
            stacklevel=2,
        )
    return mask


def transform_geoseries(
    geoseries: GeoSeries | GeoDataFrame, dst: int | str | SwedishCRS, *, route: Route = "direct"
) -> GeoSeries | GeoDataFrame:
    """Reproject a GeoSeries/GeoDataFrame (x = easting/longitude) with vggeo's route choice.

    Unlike ``GeoSeries.to_crs`` this honours the RT 90 ``route`` and relabels between the same
    RT 90 zone instead of shifting datums. All coordinates are transformed in one call.
    """
    # lazy: geopandas and shapely are slow to import; at the top they would slow `import vggeo`
    # and `vggeo --help` (which import this module)
    import geopandas as gpd
    import shapely

    if geoseries.crs is None:
        raise CRSError("the GeoSeries has no CRS; set one before transforming")
    s_crs, d_crs = get_crs(geoseries.crs), get_crs(dst)
    is_frame = isinstance(geoseries, gpd.GeoDataFrame)
    geoms = np.asarray(geoseries.geometry.array if is_frame else geoseries.array)
    s, d = _operation_codes(s_crs, d_crs, route)
    if s != d:
        tr = transformer(s_crs.epsg, d_crs.epsg, route)
        geoms = shapely.transform(
            geoms, lambda xy: np.column_stack(tr.transform(xy[:, 0], xy[:, 1]))
        )
    if is_frame:
        out = geoseries.copy()
        out[geoseries.geometry.name] = gpd.GeoSeries(geoms, index=geoseries.index)
        return out.set_crs(d_crs.srs, allow_override=True)
    return gpd.GeoSeries(geoms, index=geoseries.index, crs=d_crs.srs, name=geoseries.name)


# --- local zones --------------------------------------------------------------------------------

_SOUTHERN_ZONES = (3007, 3008, 3009, 3010, 3011)  # 12 00, 13 30, 15 00, 16 30, 18 00
_NORTHERN_ZONES = (3012, 3013, 3014, 3015, 3016, 3017, 3018)  # 14 15 … 23 15
_GOTLAND_ZONE = 3015  # 18 45
# Latitude at which the rule changes from the southern to the northern set of meridians. Norrland
# and Dalarna use the northern set; Svealand and Götaland the southern. The boundary is not a
# parallel, so a municipality lookup should win where known.
_NORTHERN_SET_FROM_LAT = 60.0
# Municipality → zone where the municipality's choice is published (CRS.md: Lantmäteriet's map).
# Only sourced entries: extend as facts become known, never by guess.
MUNICIPALITY_ZONES: dict[str, int] = {
    "2582": 3017,  # Boden: SWEREF 99 21 45
    "2482": 3016,  # Skellefteå: SWEREF 99 20 15
    "2280": 3014,  # Härnösand: SWEREF 99 17 15
    "1881": 3009,  # Kumla: SWEREF 99 15 00
    "0181": 3011,  # Södertälje: SWEREF 99 18 00
    "0980": 3015,  # Gotland: SWEREF 99 18 45
}


def local_zone_for(lon: ArrayLike, lat: ArrayLike) -> np.ndarray:
    """EPSG code of the local SWEREF 99 zone by the longitude rule (vectorised).

    The nearest central meridian from the southern set (12 00, 13 30, 15 00, 16 30, 18 00) below
    60° N, or from the northern set (14 15 … 23 15) from 60° N; Gotland on 18 45. NaN → 0.
    """
    lon = np.atleast_1d(np.asarray(lon, dtype=float))
    lat = np.atleast_1d(np.asarray(lat, dtype=float))
    south = np.array(_SOUTHERN_ZONES)
    north = np.array(_NORTHERN_ZONES)
    cm = lambda codes: np.array([_REGISTRY[c].central_meridian_deg for c in codes])  # noqa: E731
    i_s = np.abs(lon[:, None] - cm(south)[None, :]).argmin(axis=1)
    i_n = np.abs(lon[:, None] - cm(north)[None, :]).argmin(axis=1)
    out = np.where(lat >= _NORTHERN_SET_FROM_LAT, north[i_n], south[i_s])
    gotland = (lon >= 18.0) & (lon <= 19.5) & (lat >= 56.85) & (lat <= 58.0)
    out = np.where(gotland, _GOTLAND_ZONE, out)
    return np.where(np.isnan(lon) | np.isnan(lat), 0, out)


def local_zone_for_municipality(
    code: str, lon: float | None = None, lat: float | None = None
) -> int:
    """Zone of a municipality (four-digit code, e.g. ``"0181"``): the published choice where known,
    else the longitude rule at (lon, lat).
    """
    key = str(code).strip().zfill(4)
    if key in MUNICIPALITY_ZONES:
        return MUNICIPALITY_ZONES[key]
    if lon is None or lat is None:
        raise CRSError(
            f"no published local zone for municipality {key}; give a position to use the "
            "longitude rule"
        )
    return int(local_zone_for(lon, lat)[0])


# --- web maps: Web Mercator and longitude/latitude, easting first ---------------------------------

#: EPSG code of Web Mercator (x east, y north, metres), the grid of web map tiles.
WEB_MERCATOR = 3857


def _tile_epsg(spec: int | str | SwedishCRS) -> int:
    """EPSG code of a system web clients use: a Swedish one, WGS 84, or Web Mercator."""
    if isinstance(spec, (int, np.integer)) and int(spec) == WEB_MERCATOR:
        return WEB_MERCATOR
    if isinstance(spec, str) and spec.strip().upper() in ("EPSG:3857", "3857"):
        return WEB_MERCATOR
    return get_crs(spec).epsg


def en_transformer(src: int | str | SwedishCRS, dst: int | str | SwedishCRS) -> pyproj.Transformer:
    """The cached easting/longitude-first transformer between any two systems that maps and OGC
    APIs use: the Swedish systems and WGS 84 (vggeo's routes, as :func:`transformer`) and
    Web Mercator (PROJ's own operation; SWEREF 99 → WGS 84 is a null shift, as in vggeo).

    Takes and returns (easting, northing) or (longitude, latitude), whatever each system's
    authority order.
    """
    s, d = _tile_epsg(src), _tile_epsg(dst)
    if WEB_MERCATOR in (s, d):
        return _from_crs(s, d)
    return transformer(s, d)


def _xy_out(tr: pyproj.Transformer, x: ArrayLike, y: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    ox, oy = tr.transform(np.asarray(x, dtype=float), np.asarray(y, dtype=float))
    return np.asarray(ox, dtype=np.float64), np.asarray(oy, dtype=np.float64)


def en_to_en(
    easting: ArrayLike,
    northing: ArrayLike,
    *,
    src: int | str | SwedishCRS = 3006,
    dst: int | str | SwedishCRS,
) -> tuple[np.ndarray, np.ndarray]:
    """Grid (easting, northing) in ``src`` → (easting, northing) in ``dst``, vectorised.

    For the grids maps draw on, e.g. SWEREF 99 TM → Web Mercator (``dst=3857``). Nothing is
    range-checked: use :func:`transform` for input from users.
    """
    return _xy_out(en_transformer(src, dst), easting, northing)


def en_to_lonlat(
    easting: ArrayLike,
    northing: ArrayLike,
    *,
    src: int | str | SwedishCRS = 3006,
) -> tuple[np.ndarray, np.ndarray]:
    """Grid (easting, northing) in ``src`` → (longitude, latitude) in degrees (WGS 84)."""
    return _xy_out(en_transformer(src, 4326), easting, northing)


def lonlat_to_en(
    lon: ArrayLike, lat: ArrayLike, *, dst: int | str | SwedishCRS
) -> tuple[np.ndarray, np.ndarray]:
    """(longitude, latitude) in degrees (WGS 84) → (easting, northing) in ``dst``."""
    return _xy_out(en_transformer(4326, dst), lon, lat)


# --- OGC API names of coordinate systems ----------------------------------------------------------

#: OGC's CRS84: WGS 84 with longitude first, the default of GeoJSON and OGC API – Features.
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
_EPSG_URI = "http://www.opengis.net/def/crs/EPSG/0/"
#: The URI of the storage CRS (SWEREF 99 TM): every store holds EPSG:3006.
STORAGE_CRS = _EPSG_URI + "3006"

_URI = re.compile(r"^https?://www\.opengis\.net/def/crs/(EPSG|OGC)/[^/]+/([A-Za-z0-9]+)$")
_CURIE = re.compile(r"^\[?(EPSG|OGC):(?::)?([A-Za-z0-9]+)\]?$", re.IGNORECASE)
_URN = re.compile(r"^urn:ogc:def:crs:(EPSG|OGC):[^:]*:([A-Za-z0-9]+)$", re.IGNORECASE)


@cache
def supported_crs() -> tuple[str, ...]:
    """CRS URIs served: CRS84 first, the storage CRS, the Swedish systems, WGS 84, Web Mercator."""
    codes = [3006, *[c.epsg for c in list_crs() if c.epsg != 3006], WEB_MERCATOR]
    return (CRS84, *[f"{_EPSG_URI}{c}" for c in dict.fromkeys(codes)])


def crs_uri(text: str) -> str:
    """The canonical OGC URI of a CRS given as a URI, a (safe) CURIE or a URN.

    ``EPSG:3006``, ``[EPSG:3006]``, ``urn:ogc:def:crs:EPSG::3006`` and
    ``http://www.opengis.net/def/crs/EPSG/0/3006`` all give the last form.

    Raises
    ------
    CRSError
        For anything that is not one of :func:`supported_crs` (the message lists them).

    Examples
    --------
    >>> crs_uri("urn:ogc:def:crs:OGC:1.3:CRS84") == CRS84
    True
    """
    text = text.strip()
    m = _URI.match(text) or _CURIE.match(text) or _URN.match(text)
    if m:
        auth, code = m.group(1).upper(), m.group(2)
        uri = CRS84 if auth == "OGC" and code.upper() == "CRS84" else f"{_EPSG_URI}{code}"
        if uri in supported_crs():
            return uri
    raise CRSError(f"unsupported CRS; use one of {', '.join(supported_crs())}", value=text[:200])


@dataclass(frozen=True)
class OGCCRS:
    """A CRS as an OGC API names it, with the axis facts its coordinates need.

    Attributes
    ----------
    uri
        The canonical URI (:func:`crs_uri`).
    epsg
        The EPSG code; 4326 for CRS84 (whose axes are longitude, latitude).
    northing_first
        The authority's axis order puts northing (or latitude) first: EPSG:3006 is northing,
        easting and EPSG:4326 latitude, longitude, while CRS84 and Web Mercator are easting first.
    geographic
        Degrees rather than metres.
    """

    uri: str
    epsg: int
    northing_first: bool
    geographic: bool


def ogc_crs(text: str) -> OGCCRS:
    """The :class:`OGCCRS` of a CRS given as anything :func:`crs_uri` accepts.

    Examples
    --------
    >>> ogc_crs("EPSG:3006").northing_first, ogc_crs(CRS84).northing_first
    (True, False)
    """
    return _ogc_crs(crs_uri(text))


@cache
def _ogc_crs(uri: str) -> OGCCRS:
    # Cached by canonical URI only: the few supported systems, however many spellings a client
    # sends (caching the raw text would let requests grow the cache without bound).
    if uri == CRS84:
        return OGCCRS(uri, 4326, northing_first=False, geographic=True)
    epsg = int(uri.rsplit("/", 1)[1])
    axes = epsg_axes(epsg)
    return OGCCRS(uri, epsg, northing_first=axes.northing_first, geographic=axes.geographic)


# --- srsName in GML: the EPSG code, the axis order, the units --------------------------------------
# The GML readers (vggeo.lm.gml, vggeo.lm.provisions and the compiled reader) ask these; none of
# them reads an srsName or looks a code up in PROJ itself.

_SRS_URN = re.compile(r"^urn:ogc:def:crs:epsg:[\d.]*:(\d+)$", re.I)
_SRS_URI = re.compile(r"^https?://www\.opengis\.net/def/crs/epsg/[\d.]+/(\d+)$", re.I)
_SRS_SHORT = re.compile(r"^epsg:{1,2}(\d+)$", re.I)
_SRS_XML = re.compile(r"^https?://www\.opengis\.net/gml/srs/epsg\.xml#(\d+)$", re.I)
_SRS_CRS84 = re.compile(
    r"^(urn:ogc:def:crs:ogc:[\d.]*:crs84|https?://www\.opengis\.net/def/crs/ogc/[\d.]+/crs84)$",
    re.I,
)
_CODE_AT_END = re.compile(r"(\d{4,5})\s*$")


def epsg_from_srs_name(srs_name: str | None) -> int | None:
    """The EPSG code an srsName names, or None.

    Read: ``urn:ogc:def:crs:EPSG::N`` (any version), ``http://www.opengis.net/def/crs/EPSG/0/N``,
    ``EPSG:N`` (or ``EPSG::N``), ``http://www.opengis.net/gml/srs/epsg.xml#N``; CRS84 (URN or
    URI) gives 4326. Case and surrounding blanks do not matter. Any code is returned, supported
    by vggeo or not: whether it is transformable is :func:`get_crs`'s decision.

    Examples
    --------
    >>> epsg_from_srs_name("urn:ogc:def:crs:EPSG::3006"), epsg_from_srs_name("SWEREF 99 TM")
    (3006, None)
    """
    if not srs_name:
        return None
    s = srs_name.strip()
    for rx in (_SRS_URN, _SRS_URI, _SRS_SHORT, _SRS_XML):
        m = rx.match(s)
        if m:
            return int(m.group(1))
    if _SRS_CRS84.match(s):
        return 4326
    return None


def epsg_from_code_text(text: str) -> int | None:
    """The EPSG code a metadata coordinate-system field ends in (``"EPSG:3006"``, ``"3006"``,
    ``"SWEREF 99 TM 3006"``), or None when it does not end in a four- or five-digit code."""
    m = _CODE_AT_END.search(text.strip())
    return int(m.group(1)) if m else None


@dataclass(frozen=True)
class EPSGAxes:
    """What a reader of coordinates needs to know about an EPSG code, from PROJ's database.

    Attributes
    ----------
    northing_first
        The authority's first axis points north or south (every Swedish grid, EPSG:4326).
    geographic
        Degrees rather than a grid.
    metres_per_unit
        Length of the first axis' unit in metres (1.0 for metres and for degrees).
    dimension
        Number of axes (2, or 3 with heights).
    """

    northing_first: bool
    geographic: bool
    metres_per_unit: float
    dimension: int


#: The facts assumed for a code PROJ does not know: easting first, metres, two axes.
_UNKNOWN_AXES = EPSGAxes(northing_first=False, geographic=False, metres_per_unit=1.0, dimension=2)


@lru_cache(maxsize=256)
def epsg_axes(code: int) -> EPSGAxes:
    """The :class:`EPSGAxes` of an EPSG code (cached); for a code PROJ does not know, easting
    first, metres and two axes.

    Examples
    --------
    >>> epsg_axes(3006).northing_first, epsg_axes(3857).northing_first
    (True, False)
    """
    try:
        crs = pyproj.CRS.from_epsg(code)
    except pyproj.exceptions.CRSError:
        return _UNKNOWN_AXES
    axes = crs.axis_info
    metres = (
        float(axes[0].unit_conversion_factor) if axes and axes[0].unit_name != "degree" else 1.0
    )
    return EPSGAxes(
        northing_first=bool(axes) and axes[0].direction.lower() in ("north", "south"),
        geographic=crs.is_geographic,
        metres_per_unit=metres,
        dimension=len(axes) or 2,
    )


def gml_axis_swap(srs_name: str | None) -> bool:
    """Whether GML coordinates written under ``srs_name`` must be swapped to get x = easting.

    True only for the URN (``urn:ogc:def:crs:EPSG::N``) and OGC URI
    (``http://www.opengis.net/def/crs/EPSG/0/N``) forms of a CRS whose authority order puts
    northing (latitude) first — every Swedish grid, EPSG:4326: these forms mean the authority's
    order. ``EPSG:N`` and the ``…/epsg.xml#N`` form mean GDAL's traditional GIS order (easting
    first); they, CRS84, unknown names and no srsName at all keep the document order.

    Examples
    --------
    >>> gml_axis_swap("urn:ogc:def:crs:EPSG::3006"), gml_axis_swap("EPSG:3006")
    (True, False)
    """
    if not srs_name:
        return False
    s = srs_name.strip()
    m = _SRS_URN.match(s) or _SRS_URI.match(s)
    if not m:
        return False
    return epsg_axes(int(m.group(1))).northing_first


# --- no srsName at all: the axis order read off the values ----------------------------------------
# Lantmäteriet's convention is northing first; a file without any srsName says nothing, so the
# order is read off the magnitudes: Swedish northings (> 6 000 000 in every Swedish grid) and
# eastings (< 2 000 000, RT 90's included) never overlap.


def northing_first_by_magnitude(first: Any, second: Any) -> Any:
    """Whether positions are written northing first, read off their values (no srsName).

    True where the first value is above 5 000 000 and the second below 2 000 000. Works on
    scalars and arrays alike.

    Examples
    --------
    >>> bool(northing_first_by_magnitude(6580752.2, 674577.7))
    True
    """
    return (first > 5_000_000) & (second < 2_000_000)


def easting_first_by_magnitude(ring: np.ndarray) -> np.ndarray:
    """``ring`` (positions as rows) with its first two columns exchanged when its first position
    is northing first by :func:`northing_first_by_magnitude`; otherwise ``ring`` itself."""
    if ring.shape[0] and northing_first_by_magnitude(ring[0, 0], ring[0, 1]):
        ring = ring[:, [1, 0, *range(2, ring.shape[1])]]
    return ring
