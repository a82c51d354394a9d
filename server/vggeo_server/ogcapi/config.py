"""What the OGC API routes serve: :class:`OGCConfig` (re-exported by :mod:`vggeo_server.ogcapi`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from vggeo.tiles.grids import grid_ids
from vggeo.tiles.layers import layer_ids
from vggeo_server.http import CacheControlPolicy

__all__ = ["OGCConfig"]


@dataclass(frozen=True)
class OGCConfig:
    """What the OGC API routes serve.

    Attributes
    ----------
    layers
        Collection ids (tile layers and composites; plain layers also have features).
    grids
        Tile matrix set ids.
    minzoom, maxzoom
        Web Mercator zoom range of the tiles.
    default_limit, max_limit
        Features per page by default, and at most (a larger ``limit`` is reduced to it).
    """

    title: str = "vggeo"
    description: str = "Swedish residences and land-regulating provisions."
    layers: tuple[str, ...] = field(default_factory=lambda: tuple(layer_ids()))
    grids: tuple[str, ...] = field(default_factory=lambda: tuple(grid_ids()))
    cache_control: str | CacheControlPolicy = "public, max-age=300"
    minzoom: int = 0
    maxzoom: int = 16
    default_limit: int = 10
    max_limit: int = 10_000
