"""``vggeo inspect``, ``vggeo read`` and ``vggeo sample delivery``: Lantmäteriet deliveries."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

from vggeo.cli.options import overwrite_opt, progress_opt, refuse_overwrite

if TYPE_CHECKING:
    from collections.abc import Mapping

    import pandas as pd


@click.command("inspect")
@click.argument("delivery", type=click.Path(exists=True, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document instead of text.")
def inspect_cmd(delivery: Path, as_json: bool) -> None:
    """Show what a Lantmäteriet DELIVERY holds: product, extract, sets, counts, CRS, integrity,
    and every XML element the mapping did not use.

    DELIVERY is the outer ZIP, an unpacked folder, an inner set ZIP or one XML file. Exits with
    code 2 (after printing) when the delivery does not match its metadata.
    """
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
    """Read a Lantmäteriet DELIVERY (any form, also one data XML file) into OUT.gpkg or OUT.parquet.

    GeoPackage: one layer per table; the provisions layer has MultiPolygon geometry in
    EPSG:3006 and the provision_id column. Parquet: the provisions table (or --table).
    """
    from vggeo.errors import InputError
    from vggeo.exports.tables import GpkgLayers, write_gpkg_layers, write_table
    from vggeo.frames import categoricals_as_text
    from vggeo.lm import open_delivery, read_delivery
    from vggeo.lm.bestammelse import iter_bestammelser
    from vggeo.lm.dispatch import DEFAULT_TABLE, deletions_table
    from vggeo.lm.package import unmapped_lines

    suffix = output.suffix.lower()
    if suffix not in (".gpkg", ".parquet"):
        raise click.UsageError("-o must end in .gpkg or .parquet")
    refuse_overwrite(output, overwrite)
    on_error = "keep" if keep_bad_geometry else "raise"
    tables: dict[str, pd.DataFrame] = {}
    rows: dict[str, int] = {}
    with open_delivery(delivery) as d:
        product = str(d.product)
        streamed = product == "bestammelse" and suffix == ".gpkg"
        if streamed:
            # Part by part into the GeoPackage: memory bounded by a part, not by the delivery.
            # The file appears only if the whole read (its final checks included) succeeds.
            stream = iter_bestammelser(
                d, progress=progress, workers=workers or None, on_geometry_error=on_error
            )
            with GpkgLayers(output, geometry_type="MultiPolygon") as gpkg:
                for part in stream:
                    for name, frame in part.tables().items():
                        gpkg.append(name, frame)
                dels = deletions_table(d)
                if dels is not None:
                    gpkg.append("deletions", dels)
            rows = dict(gpkg.rows)
            unmapped: Mapping[str, int] = stream.unmapped
            geometry_errors = list(stream.geometry_errors)
        else:
            data = read_delivery(
                d,
                personal_data=personal_data,
                on_geometry_error=on_error,
                workers=workers or None,
                progress=progress,
            )
            tables = data.tables
            unmapped = data.unmapped
            geometry_errors = data.geometry_errors
    for ident, msg in geometry_errors:
        click.echo(f"vggeo: kept {ident} with an empty geometry: {msg}", err=True)
    if product == "inskrivning":
        click.echo(
            "vggeo: owner keys of persons are keyed with a secret drawn for this run "
            "only: they link this file's tables, match no store and cannot be "
            "reversed",
            err=True,
        )
    if unmapped:  # data the tables do not keep: every path, with its count
        click.echo(
            f"vggeo: {sum(unmapped.values())} XML elements were not mapped "
            f"({len(unmapped)} paths); their data is not in the output:",
            err=True,
        )
        for line in unmapped_lines(unmapped):
            click.echo(f"  {line}", err=True)
    if streamed:
        pass  # written already, part by part
    elif suffix == ".gpkg":
        write_gpkg_layers(tables, output, geometry_type="MultiPolygon")
    else:
        name = table or DEFAULT_TABLE[product]
        if name not in tables:
            raise InputError(f"no table {name!r}; this delivery has {sorted(tables)}")
        # GeoParquet 1.1 for the provisions, as every vggeo output; categoricals as text.
        write_table(categoricals_as_text(tables[name]), output)
    for name, frame in tables.items():
        rows[name] = len(frame)
    for name, n in rows.items():
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
    from vggeo.crs import get_crs
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
