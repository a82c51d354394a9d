"""A store's tiles written to an archive, and kept up to date: :func:`export_store_archive`
(``vggeo tiles export``).

An archive names what it was written from — the store's data version, the layer and the zoom
range (:func:`archive_state`) — so a refresh after a delivery rewrites it only when one of them
differs, and otherwise leaves it as it is.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import vggeo.store
from vggeo.errors import InputError, VggeoError
from vggeo.tiles import open_source
from vggeo.tiles.backends.archive import ArchiveSource
from vggeo.tiles.pmtiles import export_archive, export_source

__all__ = ["ArchiveExport", "ArchiveState", "archive_state", "export_store_archive"]


@dataclass(frozen=True)
class ArchiveState:
    """What an archive was written with (its ``vggeo:data_version`` metadata, layer and zooms)."""

    data_version: object
    layer: str
    minzoom: int
    maxzoom: int


@dataclass(frozen=True)
class ArchiveExport:
    """The outcome of :func:`export_store_archive`.

    Attributes
    ----------
    path
        The archive.
    state
        What it holds now: the store's data version, the layer and the zooms.
    written
        False when a refresh found it up to date and left it.
    tiles, max_bytes
        Tiles written and the largest (compressed) of them; 0 when nothing was written.
    """

    path: Path
    state: ArchiveState
    written: bool
    tiles: int = 0
    max_bytes: int = 0


def archive_state(path: str | os.PathLike) -> ArchiveState | None:
    """What the archive at ``path`` was written with; None when it cannot be read or is not an
    archive (then a refresh rewrites it)."""
    try:
        archive = open_source(path)
    except (VggeoError, OSError, ValueError):
        return None
    try:
        if not isinstance(archive, ArchiveSource):  # not an archive's suffix: nothing to compare
            return None
        return ArchiveState(
            archive.metadata.get("vggeo:data_version"),
            archive.layer.id,
            archive.minzoom,
            archive.maxzoom,
        )
    finally:
        archive.close()


def export_store_archive(
    store: str | os.PathLike,
    output: str | os.PathLike,
    *,
    schema: str = "public",
    layer: str = "composite",
    minzoom: int = 0,
    maxzoom: int = 14,
    refresh: bool = False,
    progress: bool = True,
) -> ArchiveExport:
    """Write every non-empty tile of ``layer`` from ``minzoom`` to ``maxzoom`` of ``store`` into
    a PMTiles or MBTiles archive (:func:`vggeo.tiles.pmtiles.export_archive`), atomically.

    Parameters
    ----------
    store
        Anything :func:`vggeo.store.open` accepts (``schema``: PostGIS only).
    output
        ``.pmtiles`` or ``.mbtiles``; an existing file is replaced.
    refresh
        Leave an existing ``output`` as it is when the store's data version, the layer and the
        zooms are those it was written with (``written`` is then False).
    """
    if minzoom > maxzoom:
        raise InputError(f"minzoom ({minzoom}) is greater than maxzoom ({maxzoom})")
    output = Path(output)
    with vggeo.store.open(store, schema=schema) as data:
        wanted = ArchiveState(data.data_version, layer, minzoom, maxzoom)
        if refresh and output.exists() and archive_state(output) == wanted:
            return ArchiveExport(output, wanted, written=False)
        with export_source(data) as source:
            stats = export_archive(
                source, output, layer=layer, minzoom=minzoom, maxzoom=maxzoom, progress=progress
            )
    return ArchiveExport(output, wanted, True, stats["tiles"], stats["max_bytes"])
