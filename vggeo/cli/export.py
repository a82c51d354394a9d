"""``vggeo export gpkg|parquet`` and ``vggeo join``: thin wrappers over :mod:`vggeo.exports` and
:mod:`vggeo.join` (see the table in :mod:`vggeo.cli`).

Every command checks its request (layers, CRS, predicate) before anything is read or written,
then calls one library function that reads the store (``export gpkg`` streams it in batches) and
one that writes the output, complete or not at all: :func:`vggeo.exports.export_store_gpkg`,
:func:`vggeo.exports.write_parquet`, :func:`vggeo.join.join_store` and
:func:`vggeo.exports.tables.write_table`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from vggeo.cli.options import (
    crs_opt,
    output_opt,
    overwrite_opt,
    progress_opt,
    refuse_overwrite,
    store_opt,
)
from vggeo.crs import get_crs

if TYPE_CHECKING:
    from vggeo.crs import SwedishCRS
    from vggeo.join import Predicate

_JOIN_SUFFIXES = (".parquet", ".csv", ".gpkg")


def _split(values: tuple[str, ...]) -> list[str] | None:
    """``--types a,b --types c`` → ``[a, b, c]``; nothing given → None (= all)."""
    out = [v.strip() for item in values for v in item.split(",") if v.strip()]
    return out or None


def _check_output(path: Path, overwrite: bool, suffixes: tuple[str, ...]) -> None:
    if path.suffix.lower() not in suffixes:
        raise click.BadParameter(
            f"{path}: use one of {', '.join(suffixes)}", param_hint="'-o/--output'"
        )
    refuse_overwrite(path, overwrite)


def _crs(spec: str) -> SwedishCRS:
    return get_crs(spec)  # CRSError → exit 2 before anything is read or written


@click.group("export", context_settings={"help_option_names": ["-h", "--help"]})
def export_group() -> None:
    """Export a store for other tools: GeoPackage for QGIS, GeoParquet."""


@export_group.command("gpkg")
@store_opt
@output_opt
@crs_opt
@click.option(
    "--layers",
    "layers",
    multiple=True,
    metavar="NAME[,NAME…]",
    help="Layers to write (default: all): residences, provisions, provisions_<type>, "
    "affected_properties, decisions, inskrivning tables.",
)
@overwrite_opt
@progress_opt
def export_gpkg(
    store: str, output: Path, crs: str, layers: tuple[str, ...], overwrite: bool, progress: bool
) -> None:
    """A QGIS-ready GeoPackage: styled layers, field aliases, relations.

    The store is streamed in batches, so memory stays bounded whatever its size; Ctrl-C leaves
    no file behind (nor changes an existing one).
    """
    # lazy: keeps vggeo --help fast
    from vggeo.exports import export_store_gpkg

    _check_output(output, overwrite, (".gpkg",))
    target = _crs(crs)
    counts = export_store_gpkg(
        store,
        output,
        crs=target.epsg,
        layers=_split(layers),
        overwrite=overwrite,
        progress=progress,
    )
    for name, n in counts.items():
        click.echo(f"{name}\t{n}")
    click.echo(f"wrote {output} ({target})", err=True)


@export_group.command("parquet")
@store_opt
@output_opt
@crs_opt
@click.option(
    "--layer",
    "layer",
    default="residences",
    show_default=True,
    type=click.Choice(["residences", "provisions"]),
    help="Table to write (one GeoParquet file holds one table).",
)
@overwrite_opt
def export_parquet(store: str, output: Path, crs: str, layer: str, overwrite: bool) -> None:
    """GeoParquet 1.1: bbox covering column, Hilbert-sorted row groups."""
    # lazy: keeps vggeo --help fast
    from vggeo.exports import read_store_tables, write_parquet

    _check_output(output, overwrite, (".parquet",))
    target = _crs(crs)
    tables = read_store_tables(store, [layer], required=[layer])
    n = write_parquet(tables[layer], output, crs=target.epsg, overwrite=overwrite)
    click.echo(f"{layer}\t{n}")
    click.echo(f"wrote {output} ({target})", err=True)


@click.command("join", context_settings={"help_option_names": ["-h", "--help"]})
@store_opt
@click.option(
    "--predicate",
    default="within",
    show_default=True,
    type=click.Choice(["within", "intersects", "dwithin"]),
    help="within = ST_Within (boundary excluded), intersects = ST_Intersects, "
    "dwithin = ST_DWithin with --distance.",
)
@click.option(
    "--distance",
    type=float,
    default=None,
    metavar="METRES",
    help="Distance for --predicate dwithin.",
)
@click.option(
    "--types",
    "types",
    multiple=True,
    metavar="TYPE[,TYPE…]",
    help="Provision types (default: all): plan, naturvardsbestammelse, "
    "ovrig_bestammelse, mineralrattighet, utredning, fornlamning.",
)
@click.option(
    "--status",
    "status",
    multiple=True,
    metavar="STATUS[,STATUS…]",
    help="Provision statuses as delivered, e.g. gällande (default: all).",
)
@click.option(
    "--summary",
    "summary_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also write homes per provision (.parquet/.csv).",
)
@click.option(
    "--schema",
    default="public",
    show_default=True,
    help="PostGIS only: the database schema of the store.",
)
@output_opt
@overwrite_opt
@progress_opt
def join_cmd(
    store: str,
    predicate: Predicate,  # click.Choice above admits only these
    distance: float | None,
    types: tuple[str, ...],
    status: tuple[str, ...],
    summary_path: Path | None,
    schema: str,
    output: Path,
    overwrite: bool,
    progress: bool,
) -> None:
    """Pair residences with the provisions they lie in: one row per (residence, provision).

    The output's extension picks the format: .parquet (GeoParquet: each pair with the home's
    point, rows in Hilbert order), .gpkg (pairs as a point layer and a per-provision summary as
    a polygon layer) or .csv (attributes only, sorted by residence id then provision id). A
    .parquet --summary carries each provision's polygon. With a postgresql:// store the join
    runs inside PostGIS (on its GiST index; only the pairs come back).
    """
    # lazy: keeps vggeo --help fast
    from vggeo.exports.tables import write_table
    from vggeo.join import join_store

    _check_output(output, overwrite, _JOIN_SUFFIXES)
    if summary_path is not None:
        _check_output(summary_path, overwrite, (".parquet", ".csv"))
    if predicate == "dwithin" and distance is None:
        raise click.BadParameter(
            "--predicate dwithin needs --distance METRES", param_hint="'--distance'"
        )
    if predicate != "dwithin" and distance is not None:
        raise click.BadParameter(
            "--distance applies only to --predicate dwithin", param_hint="'--distance'"
        )
    joined = join_store(
        store,
        predicate=predicate,
        distance=distance,
        types=_split(types),
        status=_split(status),
        progress=progress,
        schema=schema,
    )
    write_table(joined.pairs, output, layer="pairs", extra_layers={"summary": joined.summary})
    if summary_path is not None:
        write_table(joined.summary, summary_path, layer="summary")
    click.echo(f"{joined.describe()} → {output}", err=True)


def register(group: click.Group) -> None:
    """Add ``vggeo export gpkg|parquet`` and ``vggeo join`` to the main group."""
    group.add_command(export_group)
    group.add_command(join_cmd)
