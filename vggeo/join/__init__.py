"""Spatial joins of residences and provisions.

Three layers, each importing only the one below it:

* :mod:`vggeo.join.memory` — :func:`residences_in` over two GeoDataFrames (shapely STRtree);
* :mod:`vggeo.join.postgis` — :func:`residences_in_postgis`, the same question asked inside
  PostGIS (the ``postgis`` extra);
* :mod:`vggeo.join.store` — :func:`join_store`, which joins a store where its data lives.
"""

from vggeo.join.memory import (
    PREDICATES,
    PROVISION_TYPES,
    JoinResult,
    Predicate,
    check_predicate,
    filter_provisions,
    residences_in,
)
from vggeo.join.store import StoreJoin, join_store

__all__ = [
    "PREDICATES",
    "PROVISION_TYPES",
    "Predicate",
    "JoinResult",
    "StoreJoin",
    "residences_in",
    "filter_provisions",
    "join_store",
    "check_predicate",
]
