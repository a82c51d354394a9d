"""A store's residences joined with its provisions, where the data lives.

:func:`join_store` reads a GeoPackage store's two tables and joins them in memory
(:func:`vggeo.join.memory.residences_in`); a ``postgresql://`` store is joined inside PostGIS
(:func:`vggeo.join.postgis.residences_in_postgis`), and only the pairs come back.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import NamedTuple

import geopandas as gpd
import pandas as pd

from vggeo.exports.source import read_store_tables
from vggeo.join.memory import Predicate, check_predicate, filter_provisions, residences_in
from vggeo.join.postgis import residences_in_postgis
from vggeo.store import is_postgres_url

__all__ = ["StoreJoin", "join_store"]


class StoreJoin(NamedTuple):
    """What :func:`join_store` returns: the pairs and the summary, each with geometry.

    Attributes
    ----------
    pairs
        :attr:`JoinResult.pairs` with each residence's point (EPSG:3006).
    summary
        :attr:`JoinResult.summary` with each provision's polygon, one row per selected provision.
    predicate
        The predicate asked.
    """

    pairs: gpd.GeoDataFrame
    summary: gpd.GeoDataFrame
    predicate: str

    def describe(self) -> str:
        """One line: pairs, residences, provisions holding homes, provisions considered."""
        homes = int((self.summary["homes"] > 0).sum())
        return (
            f"{len(self.pairs)} pairs: {self.pairs['residence_id'].nunique()} residences in "
            f"{homes} of {len(self.summary)} provisions ({self.predicate})"
        )


def join_store(
    store: str | os.PathLike,
    *,
    predicate: Predicate = "within",
    distance: float | None = None,
    types: str | Iterable[str] | None = None,
    status: str | Iterable[str] | None = None,
    progress: bool = False,
    schema: str = "public",
) -> StoreJoin:
    """Join a store's residences with its provisions (:func:`residences_in`), with geometries.

    Parameters
    ----------
    store
        GeoPackage path or ``postgresql://`` URL holding ``residences`` and ``provisions``.
    predicate, distance, types, status, progress
        As :func:`residences_in`; ``types`` and ``status`` select provisions first
        (:func:`filter_provisions`), so the summary lists only the selected ones.
    schema
        PostGIS only: the store's schema. A ``postgresql://`` store is joined inside PostGIS
        (:func:`vggeo.join.postgis.residences_in_postgis`): only the pairs come back.

    Raises
    ------
    StoreError
        The store lacks residences or provisions.
    InputError
        ``dwithin`` without a distance, a distance with another predicate, an unknown type.
    """
    distance = check_predicate(predicate, distance)
    if is_postgres_url(store):
        result = residences_in_postgis(
            str(store),
            schema=schema,
            predicate=predicate,
            distance=distance,
            types=types,
            status=status,
            geometry=True,
        )
        return StoreJoin(result.pairs, result.summary, predicate)
    tables = read_store_tables(
        store, ["residences", "provisions"], required=["residences", "provisions"]
    )
    residences = tables["residences"]
    keep = [c for c in ("id", "home_type", residences.geometry.name) if c in residences.columns]
    provisions = filter_provisions(tables["provisions"], types=types, status=status)
    result = residences_in(
        residences[keep], provisions, predicate=predicate, distance=distance, progress=progress
    )
    pairs = _with_geometry(result.pairs, "residence_id", residences, "id")
    # One summary row per selected provision, in their order: the polygons align.
    summary = gpd.GeoDataFrame(
        result.summary, geometry=provisions.geometry.values, crs=provisions.crs
    )
    return StoreJoin(pairs, summary, predicate)


def _with_geometry(
    frame: pd.DataFrame, key: str, source: gpd.GeoDataFrame, source_key: str
) -> gpd.GeoDataFrame:
    """``frame`` as a GeoDataFrame carrying the geometry of the ``source`` row its ``key`` names."""
    pos = pd.Index(source[source_key]).get_indexer(frame[key])
    geometry = source.geometry.values.take(pos) if len(pos) else source.geometry.values[:0]
    return gpd.GeoDataFrame(frame, geometry=geometry, crs=source.crs)
