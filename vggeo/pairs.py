"""Coordinate pairs as text: ``a,b`` lines in, transformed ``a,b`` lines out.

What ``vggeo transform`` does, for a Python user with text in hand. Every axis and datum decision
is :func:`vggeo.crs.transform`'s; this module only reads and writes the lines, and words the
warnings (swapped pairs exchanged on request, points outside a system's area of use).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np

from vggeo import crs as vcrs
from vggeo.crs import AxisOrder, Route, SwedishCRS
from vggeo.errors import CoordinateError, InputError

__all__ = ["TransformedLines", "parse_pairs", "transform_lines"]


@dataclass(frozen=True)
class TransformedLines:
    """What :func:`transform_lines` returns.

    Attributes
    ----------
    lines
        One output line per input line, in order; a blank input line stays blank.
    warnings
        One sentence per warning, for the user (no prefix).
    """

    lines: list[str]
    warnings: list[str]

    @property
    def text(self) -> str:
        """The lines joined, each ending in a newline (empty for no lines)."""
        return "".join(f"{line}\n" for line in self.lines)


def parse_pairs(text: str, *, source: str = "<stdin>") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Parse ``a,b`` lines into two float arrays and a mask of blank lines (kept as gaps, so
    output lines match input lines). ``nan,nan`` is a missing point; half a pair or an
    infinity is refused.

    Raises
    ------
    InputError
        Naming ``source`` and the 1-based line of the first line that is not two numbers.
    """
    lines = text.splitlines()
    a = np.full(len(lines), np.nan)
    b = np.full(len(lines), np.nan)
    blank = np.zeros(len(lines), dtype=bool)
    for i, line in enumerate(lines):
        s = line.strip()
        if not s:
            blank[i] = True
            continue
        parts = s.split(",")
        if len(parts) != 2:
            raise InputError(
                f"expected two comma-separated numbers 'a,b', got {len(parts)} field(s)",
                file=source,
                row=i + 1,
                value=line[:80],
            )
        try:
            x, y = float(parts[0]), float(parts[1])
        except ValueError:
            raise InputError("not a number", file=source, row=i + 1, value=line[:80]) from None
        # "nan,nan" is a missing point, kept in its place; half a pair or an infinity
        # ("inf", "1e999") is no point at all and would come out as "nan,nan" unremarked.
        # (math on the Python floats: numpy's scalar functions cost a microsecond a call here)
        if math.isinf(x) or math.isinf(y) or math.isnan(x) != math.isnan(y):
            raise InputError(
                "expected two finite numbers, or 'nan,nan' for a missing point",
                file=source,
                row=i + 1,
                value=line[:80],
            )
        a[i], b[i] = x, y
    return a, b, blank


def _format(values: np.ndarray, geographic: bool) -> list[str]:
    """Metres to the micrometre (6 decimals), degrees to 10 decimals (about 10 µm)."""
    fmt = "{:.10f}" if geographic else "{:.6f}"
    return [fmt.format(v) for v in values.tolist()]


def _outside_warnings(
    a: np.ndarray,
    b: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    s_crs: SwedishCRS,
    d_crs: SwedishCRS,
    in_order: AxisOrder,
    out_order: AxisOrder,
) -> list[str]:
    """Points outside the area of use of either system (e.g. Skåne into SWEREF 99 23 15)."""
    out = []
    for system, mask in (
        (s_crs, vcrs.outside_area(a, b, s_crs, in_order)),
        (d_crs, vcrs.outside_area(x, y, d_crs, out_order)),
    ):
        if mask.any():
            lines = ", ".join(str(i + 1) for i in np.flatnonzero(mask)[:10])
            more = " …" if mask.sum() > 10 else ""
            out.append(
                f"{int(mask.sum())} point(s) outside the area of use of {system} "
                f"(line {lines}{more})"
            )
    return out


def transform_lines(
    text: str,
    *,
    src: int | str | SwedishCRS,
    dst: int | str | SwedishCRS,
    in_order: AxisOrder | None = None,
    out_order: AxisOrder | None = None,
    route: Route = "direct",
    swap: bool = False,
    check: bool = True,
    source: str = "<stdin>",
) -> TransformedLines:
    """Transform ``a,b`` lines from ``src`` to ``dst``.

    Parameters
    ----------
    in_order, out_order
        Order of the pairs; by default each system's own (``"ne"`` for Swedish grids,
        ``"latlon"`` for geographic systems).
    route, swap
        As :func:`vggeo.crs.transform`.
    check
        Refuse values outside the plausible Swedish range of ``src`` and warn about points
        outside either system's area of use; ``False`` does neither.
    source
        The name errors give the input.

    Raises
    ------
    InputError, CoordinateError
        Naming ``source`` and the input line (blank lines count).

    Examples
    --------
    >>> transform_lines("59.0,15.0", src="wgs84", dst="SWEREF 99 TM").lines
    ['6540052.017411,500000.000000']
    """
    s_crs, d_crs = vcrs.get_crs(src), vcrs.get_crs(dst)
    a, b, blank = parse_pairs(text, source=source)
    in_order = in_order or s_crs.native_order
    out_order = out_order or d_crs.native_order
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            x, y = vcrs.transform(
                a,
                b,
                src=s_crs,
                dst=d_crs,
                in_order=in_order,
                out_order=out_order,
                route=route,
                check="raise" if check else "off",
                swap=swap,
            )
    except CoordinateError as err:
        # Positions count non-blank and blank lines alike, so row is the input line number.
        raise type(err)(err.message, file=source, row=err.row, field=None, value=err.value) from err
    said = [str(w.message) for w in caught]
    if check:
        said += _outside_warnings(a, b, x, y, s_crs, d_crs, in_order, out_order)
    xs, ys = _format(x, d_crs.is_geographic), _format(y, d_crs.is_geographic)
    lines = ["" if blank[i] else f"{xs[i]},{ys[i]}" for i in range(len(xs))]
    return TransformedLines(lines, said)
