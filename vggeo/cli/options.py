"""Options shared by several subcommands, declared once (as rio does in ``rasterio/rio/options.py``).

* ``output_opt``  ``-o/--output PATH``
* ``overwrite_opt``  ``--overwrite``: refuse to replace an existing output unless given
* ``store_opt``  ``--store STORE``: a GeoPackage path or a ``postgresql://`` URL
* ``crs_opt``  ``--crs CRS``: any name or code :func:`vggeo.crs.get_crs` accepts
* ``progress_opt``  ``--progress/--no-progress``
"""

from __future__ import annotations

import tempfile
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
    """Raise a usage error if ``path`` exists and ``--overwrite`` was not given, or if it cannot
    be written: checked before any work, not found out after a long read."""
    if path.exists() and not overwrite:
        raise click.UsageError(f"{path} exists; pass --overwrite to replace it")
    refuse_unwritable(path)


def refuse_unwritable(path: Path) -> None:
    """Raise a usage error unless a file can be created beside ``path``.

    Every writer writes a hidden temporary file in the output's folder and renames it, so this
    creates (and removes) one there. The folder is the nearest one that exists: writers create
    the missing ones. Permissions alone do not tell (root passes ``os.access`` on a read-only
    mount, and ``/proc`` takes no new files).
    """
    folder = path.absolute().parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise click.UsageError(f"cannot write {path}: {folder} is not a folder")
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".vggeo-probe-"):
            pass
    except OSError as err:
        raise click.UsageError(f"cannot write {path}: {err.strerror or err} in {folder}") from None
