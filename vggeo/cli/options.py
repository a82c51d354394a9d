"""Options shared by several subcommands, declared once (as rio does in ``rasterio/rio/options.py``).

* ``output_opt``  ``-o/--output PATH``
* ``overwrite_opt``  ``--overwrite``: refuse to replace an existing output unless given
* ``store_opt``  ``--store STORE``: a GeoPackage path or a ``postgresql://`` URL
* ``crs_opt``  ``--crs CRS``: any name or code :func:`vggeo.crs.get_crs` accepts
* ``progress_opt``  ``--progress/--no-progress``
"""

from __future__ import annotations

from pathlib import Path

import click

output_opt = click.option(
    "-o",
    "--output",
    "output",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Output file; its extension chooses the format.",
)
overwrite_opt = click.option(
    "--overwrite", is_flag=True, default=False, help="Replace an existing output file."
)
store_opt = click.option(
    "--store",
    "store",
    envvar="VGGEO_STORE",
    required=True,
    metavar="STORE",
    help="GeoPackage path (created if absent) or postgresql:// URL. Env: VGGEO_STORE.",
)
crs_opt = click.option(
    "--crs",
    "crs",
    default="EPSG:3006",
    show_default=True,
    metavar="CRS",
    help="Output coordinate system: EPSG code or Swedish name ('SWEREF 99 18 00', 'rt90' …).",
)
progress_opt = click.option(
    "--progress/--no-progress", default=True, show_default=True, help="Show a progress bar."
)


def refuse_overwrite(path: Path, overwrite: bool) -> None:
    """Raise a usage error if ``path`` exists and ``--overwrite`` was not given."""
    if path.exists() and not overwrite:
        raise click.UsageError(f"{path} exists; pass --overwrite to replace it")
