"""OGC API – Common, Tiles and Features over vggeo's tiles and store.

:func:`ogc_router` builds one :class:`~fastapi.APIRouter` from an :class:`OGCConfig`; the three
modules each add their paths: :mod:`~vggeo_server.ogcapi.common` (landing page, conformance,
collections), :mod:`~vggeo_server.ogcapi.tiles` (tile matrix sets, tilesets, tiles) and
:mod:`~vggeo_server.ogcapi.features` (items). Documents are built by :mod:`~vggeo_server.ogcapi.docs`; what
the routes need from the backends goes through :mod:`~vggeo_server.ogcapi.catalog`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from fastapi import APIRouter

from vggeo.tiles.grids import grid_ids
from vggeo.tiles.layers import layer_ids
from vggeo_server.http import CacheControlPolicy

__all__ = ["OGCConfig", "ogc_router"]


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


def ogc_router(config: OGCConfig | None = None) -> APIRouter:
    """The OGC API paths, as one router."""
    from vggeo_server.ogcapi import common, features, tiles

    config = config or OGCConfig()
    router = APIRouter()
    common.register(router, config)
    tiles.register(router, config)
    features.register(router, config)
    return router
