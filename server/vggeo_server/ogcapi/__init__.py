"""OGC API – Common, Tiles and Features over vggeo's tiles and store.

:func:`ogc_router` builds one :class:`~fastapi.APIRouter` from an :class:`OGCConfig`; the three
modules each add their paths: :mod:`~vggeo_server.ogcapi.common` (landing page, conformance,
collections), :mod:`~vggeo_server.ogcapi.tiles` (tile matrix sets, tilesets, tiles) and
:mod:`~vggeo_server.ogcapi.features` (items). Documents are built by :mod:`~vggeo_server.ogcapi.docs`; what
the routes need from the backends goes through :mod:`~vggeo_server.ogcapi.catalog`.
"""

from __future__ import annotations

from fastapi import APIRouter

from vggeo_server.ogcapi import common, features, tiles
from vggeo_server.ogcapi.config import OGCConfig

__all__ = ["OGCConfig", "ogc_router"]


def ogc_router(config: OGCConfig | None = None) -> APIRouter:
    """The OGC API paths, as one router."""
    config = config or OGCConfig()
    router = APIRouter()
    common.register(router, config)
    tiles.register(router, config)
    features.register(router, config)
    return router
