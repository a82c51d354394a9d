"""``vggeo transform``: coordinates on stdin → coordinates on stdout, axis order explicit."""

from __future__ import annotations

import sys
import warnings

import click

from vggeo.errors import InputError


def _parse_lines(text: str):
    """Parse ``a,b`` lines. Blank lines are kept as gaps so output lines match input lines."""
    import numpy as np

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
                file="<stdin>", row=i + 1, value=line[:80],
            )  # fmt: skip
        try:
            a[i], b[i] = float(parts[0]), float(parts[1])
        except ValueError:
            raise InputError(
                "not a number", file="<stdin>", row=i + 1, value=line[:80]
            ) from None
    return a, b, blank


def _format(values, geographic: bool) -> list[str]:
    fmt = "{:.10f}" if geographic else "{:.6f}"
    return [fmt.format(v) for v in values.tolist()]


@click.command("transform")
@click.option("--from", "src", required=True, metavar="SRC",
              help="Source system: EPSG:NNNN or a name ('SWEREF 99 TM', 'rt90', 'wgs84' …).")
@click.option("--to", "dst", required=True, metavar="DST", help="Target system, as --from.")
@click.option("--in-order", type=click.Choice(["ne", "en", "latlon", "lonlat"]), default=None,
              help="Order of the input pair. Default: the source system's own (ne for Swedish "
                   "grids, latlon for geographic systems).")
@click.option("--out-order", type=click.Choice(["ne", "en", "latlon", "lonlat"]), default=None,
              help="Order of the output pair. Default: the target system's own.")
@click.option("--route", type=click.Choice(["direct", "helmert"]), default="direct",
              show_default=True,
              help="RT 90 only: Lantmäteriet's direct projection, or Bessel + Helmert (EPSG:1895).")
@click.option("--swap-axes", is_flag=True,
              help="Exchange pairs that are detectably swapped (with a warning) instead of failing.")
@click.option("--no-check", is_flag=True,
              help="Do not refuse values outside the plausible Swedish range of the source system.")
def transform_cmd(src, dst, in_order, out_order, route, swap_axes, no_check) -> None:
    """Transform 'a,b' lines from stdin to 'a,b' lines on stdout, in the same order.

    Metres are written with 6 decimals, degrees with 10. A malformed line is an error naming its
    line number; swapped axes are detected from their magnitudes and refused unless --swap-axes.

    \b
    Example:
      echo 59.0,15.0 | vggeo transform --from wgs84 --to "SWEREF 99 TM"
    """
    import numpy as np

    from vggeo import crs as vcrs
    from vggeo.errors import CoordinateError

    s_crs, d_crs = vcrs.get_crs(src), vcrs.get_crs(dst)
    a, b, blank = _parse_lines(sys.stdin.read())
    in_order = in_order or s_crs.native_order
    out_order = out_order or d_crs.native_order
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            x, y = vcrs.transform(
                a, b, src=s_crs, dst=d_crs, in_order=in_order, out_order=out_order, route=route,
                check="off" if no_check else "raise", swap=swap_axes,
            )  # fmt: skip
    except CoordinateError as err:
        # Positions count non-blank and blank lines alike, so row is the input line number.
        raise type(err)(err.message, file="<stdin>", row=err.row, field=None, value=err.value) from err
    for w in caught:
        click.echo(f"vggeo: warning: {w.message}", err=True)
    if not no_check:
        # Flag points outside the area of use of either system (e.g. Skåne into SWEREF 99 23 15).
        for system, mask in ((s_crs, vcrs.outside_area(a, b, s_crs, in_order)),
                             (d_crs, vcrs.outside_area(x, y, d_crs, out_order))):  # fmt: skip
            if mask.any():
                lines = ", ".join(str(i + 1) for i in np.flatnonzero(mask)[:10])
                more = " …" if mask.sum() > 10 else ""
                click.echo(f"vggeo: warning: {int(mask.sum())} point(s) outside the area of use "
                           f"of {system} (line {lines}{more})", err=True)  # fmt: skip
    xs, ys = _format(x, d_crs.is_geographic), _format(y, d_crs.is_geographic)
    out = ["" if blank[i] else f"{xs[i]},{ys[i]}" for i in range(len(xs))]
    if out:
        sys.stdout.write("\n".join(out) + "\n")


@click.group("crs")
def crs_group() -> None:
    """Swedish coordinate systems: list them, choose a local zone."""


@crs_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def crs_list(as_json: bool) -> None:
    """Every supported system with its EPSG code, axis order and area of use."""
    import json

    from vggeo import crs as vcrs

    rows = [
        {"epsg": c.epsg, "name": c.name, "family": c.family, "axis_order": c.native_order,
         "central_meridian_deg": c.central_meridian_deg,
         "area_of_use_west_south_east_north": list(c.area_of_use)}
        for c in vcrs.list_crs()
    ]  # fmt: skip
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False, indent=1))
        return
    for r in rows:
        cm = "" if r["central_meridian_deg"] is None else f"{r['central_meridian_deg']:.6f}"
        click.echo(f"EPSG:{r['epsg']:<6} {r['name']:<38} {r['axis_order']:<7} {cm}")


@crs_group.command("zone")
@click.option("--municipality", metavar="CODE", help="Four-digit municipality code (kommunkod).")
@click.option("--lat", type=float, help="Latitude (degrees, SWEREF 99/WGS 84).")
@click.option("--lon", type=float, help="Longitude (degrees).")
def crs_zone(municipality: str | None, lat: float | None, lon: float | None) -> None:
    """The local SWEREF 99 zone for a municipality (published choice) or a position (rule)."""
    from vggeo import crs as vcrs
    from vggeo.errors import InputError

    if municipality is None and (lat is None or lon is None):
        raise InputError("give --municipality CODE, or --lat and --lon")
    if municipality is not None:
        code = vcrs.local_zone_for_municipality(municipality, lon=lon, lat=lat)
    else:
        code = int(vcrs.local_zone_for(lon, lat)[0])
    click.echo(f"EPSG:{code} {vcrs.get_crs(code).name}")


def register(group: click.Group) -> None:
    group.add_command(transform_cmd)
    group.add_command(crs_group)
