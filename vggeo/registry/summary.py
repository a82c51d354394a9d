"""One-line summaries of a load: where the coordinates came from, and what was rejected.

What ``vggeo registry load|fetch`` print, as functions a Python user can call on the same frames.
"""

from __future__ import annotations

import os

import pandas as pd

from vggeo.registry.rules import RULES

__all__ = ["coordinate_sources", "rejects_summary"]


def coordinate_sources(frame: pd.DataFrame) -> str:
    """How many rows took their point from each coordinate pair, e.g. ``"sweref99 1998, rt90 2"``.

    Rows without any complete pair count as ``none``; ``"none"`` alone for an empty frame.

    Examples
    --------
    >>> coordinate_sources(pd.DataFrame({"coord_source": ["sweref99", "sweref99", None]}))
    'sweref99 2, none 1'
    """
    counts = frame["coord_source"].value_counts(dropna=False)
    parts = ", ".join(f"{k if isinstance(k, str) else 'none'} {v}" for k, v in counts.items() if v)
    return parts or "none"


def rejects_summary(rejects: pd.DataFrame | None, path: str | os.PathLike | None = None) -> str:
    """One line: how many values were rejected, in how many rows, by rule, and where listed.

    ``rejects`` is a rejects table (:data:`vggeo.registry.canonical.REJECT_COLUMNS`); ``path``
    the file it was written to, if any.
    """
    where = f" → {path}" if path else ""
    if rejects is None or not len(rejects):
        return "rejects: none" + where
    by_rule = rejects["rule"].value_counts(sort=False)
    nulled = int(sum(v for k, v in by_rule.items() if RULES[k].action == "null"))
    rows = rejects[["file", "row"]].drop_duplicates().shape[0]
    parts = ", ".join(f"{k} {v}" for k, v in by_rule.items())
    return (
        f"rejects: {len(rejects)} value(s) in {rows} row(s) ({nulled} nulled, "
        f"{len(rejects) - nulled} kept flagged): {parts}{where}"
    )
