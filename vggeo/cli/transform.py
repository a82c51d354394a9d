"""``vggeo transform``: coordinates on stdin → coordinates on stdout, axis order explicit."""

from __future__ import annotations

import json
import sys

import click

from vggeo import crs as vcrs
from vggeo.crs import AxisOrder, Route, crs_records, crs_table
from vggeo.errors import InputError
from vggeo.pairs import transform_lines


@click.command("transform")
@click.option(
    "--from",
    "src",
    required=True,
    metavar="SRC",
    help="Source system: EPSG:NNNN or a name ('SWEREF 99 TM', 'rt90', 'wgs84' …).",
)
@click.option("--to", "dst", required=True, metavar="DST", help="Target system, as --from.")
@click.option(
    "--in-order",
    type=click.Choice(["ne", "en", "latlon", "lonlat"]),
    default=None,
    help="Order of the input pair. Default: the source system's own (ne for Swedish "
    "grids, latlon for geographic systems).",
)
@click.option(
    "--out-order",
    type=click.Choice(["ne", "en", "latlon", "lonlat"]),
    default=None,
    help="Order of the output pair. Default: the target system's own.",
)
@click.option(
    "--route",
    type=click.Choice(["direct", "helmert"]),
    default="direct",
    show_default=True,
    help="RT 90 only: Lantmäteriet's direct projection, or Bessel + Helmert (EPSG:1895).",
)
@click.option(
    "--swap-axes",
    is_flag=True,
    help="Exchange pairs that are detectably swapped (with a warning) instead of failing.",
)
@click.option(
    "--no-check",
    is_flag=True,
    help="Do not refuse values outside the plausible Swedish range of the source system.",
)
def transform_cmd(
    src: str,
    dst: str,
    in_order: AxisOrder | None,
    out_order: AxisOrder | None,
    route: Route,
    swap_axes: bool,
    no_check: bool,
) -> None:
    """Transform 'a,b' lines from stdin to 'a,b' lines on stdout, in the same order.

    Metres are written with 6 decimals, degrees with 10. A malformed line is an error naming its
    line number; swapped axes are detected from their magnitudes and refused unless --swap-axes.

    \b
    Example:
      echo 59.0,15.0 | vggeo transform --from wgs84 --to "SWEREF 99 TM"
    """
    result = transform_lines(
        sys.stdin.read(),
        src=src,
        dst=dst,
        in_order=in_order,
        out_order=out_order,
        route=route,
        swap=swap_axes,
        check=not no_check,
    )
    for message in result.warnings:
        click.echo(f"vggeo: warning: {message}", err=True)
    sys.stdout.write(result.text)


@click.group("crs")
def crs_group() -> None:
    """Swedish coordinate systems: list them, choose a local zone."""


@crs_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def crs_list(as_json: bool) -> None:
    """Every supported system with its EPSG code, axis order and area of use."""
    if as_json:
        click.echo(json.dumps(crs_records(), ensure_ascii=False, indent=1))
    else:
        click.echo(crs_table())


@crs_group.command("zone")
@click.option("--municipality", metavar="CODE", help="Four-digit municipality code (kommunkod).")
@click.option("--lat", type=float, help="Latitude (degrees, SWEREF 99/WGS 84).")
@click.option("--lon", type=float, help="Longitude (degrees).")
def crs_zone(municipality: str | None, lat: float | None, lon: float | None) -> None:
    """The local SWEREF 99 zone for a municipality (published choice) or a position (rule)."""
    if municipality is not None:
        code = vcrs.local_zone_for_municipality(municipality, lon=lon, lat=lat)
    elif lat is not None and lon is not None:
        code = int(vcrs.local_zone_for(lon, lat)[0])
    else:
        raise InputError("give --municipality CODE, or --lat and --lon")
    click.echo(f"EPSG:{code} {vcrs.get_crs(code).name}")


def register(group: click.Group) -> None:
    group.add_command(transform_cmd)
    group.add_command(crs_group)
