"""Which homes lie in which land-regulating provisions: a vectorised, chunked spatial join.

:func:`residences_in` answers "which residences lie inside (or touch, or lie near) which
provisions" for millions of homes and hundreds of thousands of provisions in one pass:

* One shapely 2 :class:`~shapely.STRtree` is built over the **residence points**, and the
  provision polygons are the *query* geometries. Shapely prepares each query geometry, so every
  polygon is prepared once and tested against all the points in its bounding box. This is the
  swap GeoPandas' ``sjoin`` does for ``within`` (``geopandas/tools/sjoin.py``,
  ``_geom_predicate_query``; discussed in geopandas PR #1421): *point within polygon* is asked as
  *polygon contains point*, which GEOS answers much faster with a prepared polygon than the other
  way round with a prepared point.
* Provisions are queried in chunks, so the candidate pairs held at once stay bounded; only the
  answer (two integer arrays) grows.
* The predicates have PostGIS' meaning, because GEOS and PostGIS share DE-9IM semantics:
  ``within`` = ``ST_Within(home, provision)`` (a home *on* the boundary is not within),
  ``intersects`` = ``ST_Intersects`` (boundary counts), ``dwithin`` = ``ST_DWithin(home,
  provision, distance)`` (distance ≤ ``distance`` metres, boundary inclusive). The test suite
  checks this against a real PostGIS.

Example (``residences`` and ``provisions`` as read from a store)::

    result = residences_in(residences, provisions, types=["naturvardsbestammelse"])
    result.pairs.head()        # residence_id, provision_id, provision_type, status, designation
    result.summary.nlargest(5, "homes")
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal, NamedTuple

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from tqdm.auto import tqdm

from vggeo.crs import get_crs, transform_geoseries
from vggeo.errors import CRSError, InputError, SchemaError

__all__ = [
    "PREDICATES",
    "PROVISION_TYPES",
    "Predicate",
    "JoinResult",
    "residences_in",
    "filter_provisions",
    "check_predicate",
]

Predicate = Literal["within", "intersects", "dwithin"]
PREDICATES: tuple[str, ...] = ("within", "intersects", "dwithin")

#: The provision types of the contract (``docs/contracts.md``), in display order.
PROVISION_TYPES: tuple[str, ...] = (
    "plan",
    "naturvardsbestammelse",
    "ovrig_bestammelse",
    "mineralrattighet",
    "utredning",
    "fornlamning",
)

#: STRtree predicate to ask with the provision as the query geometry (see module docstring).
#: ``dwithin`` is asked as itself, with the distance.
_TREE_PREDICATE: dict[str, Literal["contains", "intersects"]] = {
    "within": "contains",
    "intersects": "intersects",
}

#: Provision columns carried into every pair.
PAIR_COLUMNS = ("provision_type", "status", "designation")


class JoinResult(NamedTuple):
    """What :func:`residences_in` returns; unpacks as ``pairs, summary = residences_in(...)``.

    Attributes
    ----------
    pairs
        One row per (residence, provision) pair: ``residence_id``, ``provision_id``,
        ``provision_type``, ``status``, ``designation`` (categoricals) and, for ``dwithin``,
        ``distance`` (metres; 0 inside). Sorted by residence id, then provision id.
    summary
        One row per selected provision (also those without homes): ``provision_id``,
        ``provision_type``, ``status``, ``designation``, ``homes`` (number of residences) and one
        ``homes_<home type>`` column per home type present.
    """

    pairs: pd.DataFrame
    summary: pd.DataFrame


def _as_list(values: str | Iterable[str] | None) -> list[str] | None:
    if values is None:
        return None
    if isinstance(values, str):
        values = [values]
    out = [str(v).strip() for v in values]
    return [v for v in out if v] or None


def filter_provisions(
    provisions: pd.DataFrame,
    *,
    types: str | Iterable[str] | None = None,
    status: str | Iterable[str] | None = None,
) -> pd.DataFrame:
    """Provisions of the given types and statuses (``None`` = all).

    Raises
    ------
    InputError
        For a type that is not one of :data:`PROVISION_TYPES` (a typo would silently match
        nothing otherwise). Statuses are free text as delivered, so they are not checked.
    """
    mask = np.ones(len(provisions), dtype=bool)
    types_ = _as_list(types)
    if types_ is not None:
        unknown = sorted(set(types_) - set(PROVISION_TYPES))
        if unknown:
            raise InputError(
                f"unknown provision type(s) {', '.join(unknown)}; "
                f"known: {', '.join(PROVISION_TYPES)}",
                field="provision_type",
            )
        mask &= provisions["provision_type"].astype("string").isin(types_).to_numpy(bool)
    status_ = _as_list(status)
    if status_ is not None:
        folded = {s.casefold() for s in status_}
        col = provisions["status"].astype("string").str.casefold()
        mask &= col.isin(folded).fillna(False).to_numpy(bool)
    return provisions[mask] if not mask.all() else provisions


def _require(frame: pd.DataFrame, columns: Iterable[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise SchemaError(
            f"{what} lack column(s) {', '.join(missing)} (see docs/contracts.md)", field=missing[0]
        )


def _geometries(frame: gpd.GeoDataFrame, what: str) -> np.ndarray:
    if not hasattr(frame, "geometry"):
        raise SchemaError(f"{what} have no geometry column", field="geometry")
    return np.asarray(frame.geometry.array, dtype=object)


def check_predicate(predicate: str, distance: float | None) -> float | None:
    """The distance to use for ``predicate`` (None unless ``dwithin``), checked.

    Raises
    ------
    InputError
        Unknown predicate; ``dwithin`` without a finite distance ≥ 0; a distance for another
        predicate.
    """
    if predicate not in PREDICATES:
        raise InputError(f"unknown predicate {predicate!r}; use one of {', '.join(PREDICATES)}")
    if predicate == "dwithin":
        if distance is None:
            raise InputError("predicate 'dwithin' needs a distance (metres)", field="distance")
        distance = float(distance)
        if not np.isfinite(distance) or distance < 0:
            raise InputError(
                "distance must be a finite number ≥ 0", field="distance", value=distance
            )
        return distance
    if distance is not None:
        raise InputError(
            f"a distance applies only to predicate 'dwithin', not {predicate!r}", field="distance"
        )
    return None


def residences_in(
    residences: gpd.GeoDataFrame,
    provisions: gpd.GeoDataFrame,
    *,
    predicate: Predicate = "within",
    distance: float | None = None,
    types: str | Iterable[str] | None = None,
    status: str | Iterable[str] | None = None,
    chunk_size: int = 2_000,
    progress: bool = False,
) -> JoinResult:
    """Pair residences with the provisions they lie in (or touch, or lie near).

    Parameters
    ----------
    residences
        GeoDataFrame in the contract shape: ``id`` and Point geometries (EPSG:3006); ``home_type``
        is used for the summary when present. Rows without a point never match.
    provisions
        GeoDataFrame with ``provision_id``, ``provision_type``, ``status``, ``designation`` and
        (Multi)Polygon geometries. Reprojected to the residences' CRS if it differs.
    predicate
        ``"within"`` (default; PostGIS ``ST_Within``), ``"intersects"`` (``ST_Intersects``) or
        ``"dwithin"`` (``ST_DWithin``, needs ``distance``).
    distance
        Metres, for ``"dwithin"`` only.
    types, status
        Keep only provisions of these types (:data:`PROVISION_TYPES`) / statuses (as delivered,
        compared case-insensitively). ``None`` keeps all.
    chunk_size
        Provisions queried at a time; bounds the memory of candidate pairs.
    progress
        Show a tqdm progress bar on stderr.

    Returns
    -------
    JoinResult
        ``pairs`` (one row per residence–provision pair) and ``summary`` (one row per provision).

    Raises
    ------
    InputError
        Unknown predicate or provision type; ``distance`` missing, negative or given without
        ``dwithin``.
    SchemaError
        A required column is missing.
    CRSError
        A frame has no CRS, or ``dwithin`` is asked in degrees.
    """
    distance = check_predicate(predicate, distance)
    if chunk_size < 1:
        raise InputError("chunk_size must be at least 1", field="chunk_size", value=chunk_size)

    _require(residences, ["id"], "residences")
    _require(provisions, ["provision_id", *PAIR_COLUMNS], "provisions")
    provisions = _same_crs(residences, provisions, metric=predicate == "dwithin")
    provisions = filter_provisions(provisions, types=types, status=status)

    points = _geometries(residences, "residences")
    polygons = _geometries(provisions, "provisions")

    # Deterministic order whatever the input order: by residence id, then provision id. Each
    # pair becomes one int64 key (residence rank × n + provision rank); sorting one array of keys
    # is cheaper in time and memory than a lexsort of two arrays followed by gathers.
    n_prov = len(polygons)
    res_rank, res_order = _rank(residences["id"].to_numpy())
    prov_rank, prov_order = _rank(
        provisions["provision_id"].astype("string").to_numpy(dtype=object)
    )
    key_parts: list[np.ndarray] = []
    dist_parts: list[np.ndarray] = []
    if len(points) and n_prov:
        tree = shapely.STRtree(points)
        bar = tqdm(
            total=n_prov,
            unit="provision",
            desc=f"join ({predicate})",
            disable=not progress,
            leave=False,
        )
        with bar:
            for start in range(0, n_prov, chunk_size):
                chunk = polygons[start : start + chunk_size]
                if distance is not None:  # dwithin: check_predicate gives it alone a distance
                    q, t = tree.query(chunk, predicate="dwithin", distance=distance)
                    dist_parts.append(shapely.distance(chunk[q], points[t]))
                else:
                    q, t = tree.query(chunk, predicate=_TREE_PREDICATE[predicate])
                key_parts.append(res_rank[t] * n_prov + prov_rank[q + start])
                del q, t
                bar.update(len(chunk))
    key = np.concatenate(key_parts) if key_parts else np.empty(0, np.int64)
    del key_parts
    if predicate == "dwithin":
        order = np.argsort(key, kind="stable")
        key = key[order]
        dist = (np.concatenate(dist_parts) if dist_parts else np.empty(0))[order]
        del order, dist_parts
    else:
        key.sort()
    r, p = np.divmod(key, max(n_prov, 1))
    del key
    res_pos, prov_pos = res_order[r], prov_order[p]
    del r, p

    pairs = pd.DataFrame({"residence_id": residences["id"].to_numpy()[res_pos]})
    # Provision attributes as categoricals over the provisions' values: 4 bytes a row instead of
    # a string per row (tens of millions of pairs are normal for a whole country).
    for col in ("provision_id", *PAIR_COLUMNS):
        pairs[col] = _take_categorical(provisions[col], prov_pos)
    if predicate == "dwithin":
        pairs["distance"] = dist

    home_types = residences["home_type"] if "home_type" in residences.columns else None
    summary = _summarise(provisions, res_pos, prov_pos, home_types)
    return JoinResult(pairs, summary)


def _rank(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(rank of each position in sorted order, position of each rank) — a sort key and its inverse."""
    n = len(values)
    if values.dtype.kind in "iuf" and (n < 2 or bool((values[1:] >= values[:-1]).all())):
        ident = np.arange(n, dtype=np.int64)  # already sorted (the store's usual order)
        return ident, ident
    order = np.argsort(values, kind="stable").astype(np.int64)
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n)
    return rank, order


def _take_categorical(values: pd.Series, pos: np.ndarray) -> pd.Categorical:
    """``values[pos]`` as a categorical whose categories are ``values``' distinct values."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        codes, cats = values.cat.codes.to_numpy(), values.cat.categories
    else:
        codes, cats = pd.factorize(values, use_na_sentinel=True)
    return pd.Categorical.from_codes(codes.astype(np.int32)[pos], categories=cats)


def _same_crs(
    residences: gpd.GeoDataFrame, provisions: gpd.GeoDataFrame, *, metric: bool
) -> gpd.GeoDataFrame:
    if residences.crs is None or provisions.crs is None:
        which = "residences" if residences.crs is None else "provisions"
        raise CRSError(f"{which} have no CRS; the contract is EPSG:3006")
    r_crs = get_crs(residences.crs)
    if metric and r_crs.is_geographic:
        raise CRSError(f"'dwithin' needs metres, but the residences are in {r_crs}")
    if get_crs(provisions.crs).epsg != r_crs.epsg:
        provisions = transform_geoseries(provisions, r_crs.epsg)
    return provisions


def _summarise(
    provisions: pd.DataFrame,
    res_pos: np.ndarray,
    prov_pos: np.ndarray,
    home_types: pd.Series | None,
) -> pd.DataFrame:
    """Homes per provision, total and by home type, counted with one ``bincount`` each."""
    n = len(provisions)
    summary = pd.DataFrame({"provision_id": provisions["provision_id"].to_numpy()})
    for col in PAIR_COLUMNS:
        summary[col] = provisions[col].reset_index(drop=True)
    summary["homes"] = np.bincount(prov_pos, minlength=n).astype(np.int64)
    if home_types is not None:
        # Category codes directly (no string conversion of millions of rows): categoricals as
        # the contract stores them, else factorised once.
        if isinstance(home_types.dtype, pd.CategoricalDtype):
            all_codes = home_types.cat.codes.to_numpy()
            labels: list[str | None] = [str(c) for c in home_types.cat.categories]
        else:
            all_codes, uniques = pd.factorize(home_types, use_na_sentinel=True)
            labels = [str(c) for c in uniques]
        codes = all_codes[res_pos].astype(np.int64)
        if (codes < 0).any():
            labels.append(None)
            codes = np.where(codes < 0, len(labels) - 1, codes)
        k = len(labels)
        counts = np.bincount(prov_pos.astype(np.int64) * k + codes, minlength=n * k)
        counts = counts.reshape(n, k) if n else np.zeros((0, k), np.int64)
        for i, label in enumerate(labels):
            name = "homes_missing" if label is None else f"homes_{_column_label(label)}"
            if name in summary:  # labels that differ only in their spaces share a column
                summary[name] += counts[:, i].astype(np.int64)
            else:
                summary[name] = counts[:, i].astype(np.int64)
    return summary


def _column_label(value: str) -> str:
    return "_".join(str(value).split())


# --- a store's homes and provisions, with their geometries ---------------------------------------
