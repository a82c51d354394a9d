"""``vggeo inspect``, ``vggeo read`` and ``vggeo sample delivery``: Lantmäteriet deliveries."""

from __future__ import annotations

import json
from pathlib import Path

import click

from vggeo.cli.options import overwrite_opt, progress_opt, refuse_overwrite
from vggeo.crs import get_crs


@click.command("inspect")
@click.argument("delivery", type=click.Path(exists=True, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document instead of text.")
def inspect_cmd(delivery: Path, as_json: bool) -> None:
    """Show what a Lantmäteriet DELIVERY holds: product, extract, sets, counts, CRS, integrity,
    and every XML element the mapping did not use.

    DELIVERY is the outer ZIP, an unpacked folder, an inner set ZIP or one XML file. Exits with
    code 2 (after printing) when the delivery does not match its metadata.
    """
    # lazy: keeps vggeo --help fast
    from vggeo.lm import inspect

    report = inspect(delivery)
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2, ensure_ascii=False))
    else:
        click.echo(report.to_text())
    if report.problem is not None:
        raise report.problem


@click.command("read")
@click.argument("delivery", type=click.Path(exists=True, path_type=Path))
@click.option(
    "-o",
    "--output",
    "output",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="OUT.gpkg (one layer per table) or OUT.parquet (one table, GeoParquet).",
)
@click.option(
    "--table",
    default=None,
    help="Parquet only: the table to write (default: provisions; agande for inskrivning).",
)
@click.option(
    "--personal-data",
    is_flag=True,
    help="Keep personnummer, names and addresses (inskrivning). Default: redacted.",
)
@click.option(
    "--keep-bad-geometry",
    is_flag=True,
    help="Keep provisions with malformed geometry (empty geometry, listed on stderr) "
    "instead of failing.",
)
@click.option(
    "--workers",
    type=click.IntRange(0),
    default=1,
    show_default=True,
    help="Processes per large data file (0 = one per core, at most 4). The default "
    "already uses two cores on files of 8 MB or more; more processes pay off only "
    "on more idle cores, and cost memory.",
)
@overwrite_opt
@progress_opt
def read_cmd(
    delivery: Path,
    output: Path,
    table: str | None,
    personal_data: bool,
    keep_bad_geometry: bool,
    workers: int,
    overwrite: bool,
    progress: bool,
) -> None:
    """Read a Lantmäteriet DELIVERY (any form, also one data XML file, or the vector product's
    GeoPackage of provision areas) into OUT.gpkg or OUT.parquet.

    GeoPackage: one layer per table; the provisions layer has MultiPolygon geometry in
    EPSG:3006 and the provision_id column. Parquet: the provisions table (or --table).
    """
    # lazy: keeps vggeo --help fast
    from vggeo.exports.delivery import DELIVERY_SUFFIXES, DeliveryWritten, write_delivery
    from vggeo.lm.bestammelse import is_vector_product
    from vggeo.lm.package import unmapped_lines

    if output.suffix.lower() not in DELIVERY_SUFFIXES:
        raise click.UsageError("-o must end in .gpkg or .parquet")
    refuse_overwrite(output, overwrite)
    vector = is_vector_product(delivery)

    def report(read: DeliveryWritten) -> None:
        for ident, msg in read.geometry_errors:
            click.echo(f"vggeo: kept {ident} with an empty geometry: {msg}", err=True)
        if read.product == "inskrivning":
            click.echo(
                "vggeo: owner keys of persons are keyed with a secret drawn for this run "
                "only: they link this file's tables, match no store and cannot be "
                "reversed",
                err=True,
            )
        if read.unmapped:  # data the tables do not keep: every path, with its count
            what, where = ("values", "columns") if vector else ("XML elements", "paths")
            click.echo(
                f"vggeo: {sum(read.unmapped.values())} {what} were not mapped "
                f"({len(read.unmapped)} {where}); their data is not in the output:",
                err=True,
            )
            for line in unmapped_lines(read.unmapped):
                click.echo(f"  {line}", err=True)

    written = write_delivery(
        delivery,
        output,
        table=table,
        personal_data=personal_data,
        on_geometry_error="keep" if keep_bad_geometry else "raise",
        workers=workers or None,
        progress=progress,
        on_read=report,
    )
    for name, n in written.rows.items():
        click.echo(f"{name}\t{n}")


@click.command("delivery")
@click.option("--product", type=click.Choice(["bestammelse", "inskrivning"]), required=True)
@click.option(
    "--n",
    "n",
    type=click.IntRange(1),
    default=200,
    show_default=True,
    help="Provisions (bestammelse) or properties (inskrivning) in the base extract.",
)
@click.option(
    "--changes",
    type=click.IntRange(0),
    default=2,
    show_default=True,
    help="Change extracts after the base.",
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--crs",
    "crs",
    default="EPSG:3006",
    show_default=True,
    metavar="CRS",
    help="Coordinate system of the geometries: EPSG:3006 or a local zone 3007–3018.",
)
@click.option(
    "--per-file",
    type=click.IntRange(1, 50_000),
    default=50_000,
    show_default=True,
    help="Objects per numbered data file.",
)
@click.option(
    "-o",
    "--output",
    "output",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Output directory.",
)
def sample_delivery_cmd(
    product: str, n: int, changes: int, seed: int, crs: str, per_file: int, output: Path
) -> None:
    """Write one base and K change deliveries (ZIPs that sort in application order) to a folder."""
    # lazy: keeps vggeo --help fast
    from vggeo.sample.delivery import generate_deliveries

    code = get_crs(crs).epsg
    if code != 3006 and not 3007 <= code <= 3018:
        raise click.BadParameter(
            "deliveries use EPSG:3006 or a local zone 3007–3018", param_hint="--crs"
        )
    paths = generate_deliveries(
        output, product=product, n=n, changes=changes, seed=seed, crs=code, per_file=per_file
    )
    for p in paths:
        click.echo(str(p))


def register(group: click.Group) -> None:
    """Add this area's commands to the main group (and to group.commands['sample'])."""
    group.add_command(inspect_cmd)
    group.add_command(read_cmd)
    sample = group.commands["sample"]
    if not isinstance(sample, click.Group):
        raise TypeError("the vggeo command's 'sample' is not a group")
    sample.add_command(sample_delivery_cmd)
