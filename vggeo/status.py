"""What a store holds and what applying deliveries did, as data and as text.

:func:`store_status` is ``vggeo store status`` for a Python user (the same document as
``--json``, and the same text); :func:`applied_lines` is what ``vggeo ingest`` prints per
delivery. Both only read what :mod:`vggeo.store` reports.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import pandas as pd

from vggeo.store import open_store

__all__ = ["StoreStatus", "store_status", "applied_lines"]


def _iso(value: Any) -> str | None:
    """A timestamp as ISO 8601 to the second; None for a missing one."""
    if value is None:
        return None
    try:
        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    return value.isoformat(timespec="seconds") if hasattr(value, "isoformat") else str(value)


@dataclass(frozen=True)
class StoreStatus:
    """A store's ledger, row counts and last extract per product.

    Attributes
    ----------
    doc
        The JSON-ready document: ``store``, ``backend``, ``data_version``, ``counts`` (table →
        rows), ``last_extract`` (product → extract) and ``ledger`` (every applied delivery).
    """

    doc: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return self.doc

    def to_text(self) -> str:
        """The plain-text report of ``vggeo store status``."""
        doc = self.doc
        lines = [
            f"store: {doc['store']} ({doc['backend']})",
            f"data version: {doc['data_version']}",
            "last extract:",
        ]
        if not doc["last_extract"]:
            lines.append("  (none applied)")
        for p, e in doc["last_extract"].items():
            lines.append(
                f"  {p}: {e['extract_type']} {e['extract_id']} produced "
                f"{e['produced_at']}, applied {e['applied_at']}"
            )
        lines.append("rows:")
        width = max((len(t) for t in doc["counts"]), default=0)
        lines += [f"  {t:<{width}}  {n:>10}" for t, n in doc["counts"].items()]
        lines.append("ledger:")
        if not doc["ledger"]:
            lines.append("  (empty)")
        for r in doc["ledger"]:
            # "rebase" is a rebase's report, not a set's row counts
            sets = [t for s, t in r["counts"].items() if s != "rebase"]
            deleted = sum(c["deleted"] for t in sets for c in t.values())
            inserted = sum(c["inserted"] for t in sets for c in t.values())
            rebase = r["counts"].get("rebase")
            note = (
                f"  rebase of {rebase['replaces']}: {_changes(rebase['tables'])}" if rebase else ""
            )
            lines.append(
                f"  {r['seq']:>4}  {r['applied_at']}  {r['product']:<12} "
                f"{r['extract_type']:<7} {r['extract_id']}  -{deleted}/+{inserted}{note}"
            )
        return "\n".join(lines)


def store_status(store: str | os.PathLike, *, schema: str = "public") -> StoreStatus:
    """Read a store's ledger, row counts and last extracts (GeoPackage path or
    ``postgresql://`` URL; ``schema`` for PostGIS). The store is not created if absent."""
    with open_store(store, schema=schema) as s:
        counts = s.counts()
        ledger = s.ledger()
        last = s.last_extracts()
        doc = {
            "store": s.location,
            "backend": s.backend,
            "data_version": s.data_version,
            "counts": counts,
            "last_extract": {
                p: {
                    "extract_id": e.extract_id,
                    "extract_type": e.extract_type,
                    "produced_at": _iso(e.produced_at),
                    "applied_at": _iso(e.applied_at),
                }
                for p, e in last.items()
            },
            "ledger": [
                {
                    "seq": int(r.seq),
                    "extract_id": r.extract_id,
                    "product": r.product,
                    "extract_type": r.extract_type,
                    "previous_extract_id": r.previous_extract_id,
                    "produced_at": _iso(r.produced_at),
                    "applied_at": _iso(r.applied_at),
                    "checksum": r.checksum,
                    "counts": r.counts,
                }
                for r in ledger.itertuples()
            ],
        }
    return StoreStatus(doc)


def _changes(tables: dict[str, dict[str, int]]) -> str:
    """``provisions +3 -1 ~2, decisions +0 -0 ~1``: a rebase's identities added, removed, changed."""
    parts = [
        f"{t} +{c['added']} -{c['removed']} ~{c['changed']}"
        for t, c in tables.items()
        if c["added"] or c["removed"] or c["changed"]
    ]
    return ", ".join(parts) or "no differences"


def applied_lines(name: str, result: Any) -> list[str]:
    """What applying one delivery did: its message, then per set the rows deleted and inserted
    with the split by table, and for a rebase the identities added (+), removed (-) and changed
    (~) per table (``result`` is what ``Store.apply`` returns)."""
    lines = [f"{name}: {result.message}"]
    for set_name, (deleted, inserted) in result.totals().items():
        detail = ", ".join(
            f"{t} -{c['deleted']}/+{c['inserted']}" for t, c in result.counts[set_name].items()
        )
        lines.append(f"  {set_name}: deleted {deleted}, inserted {inserted} ({detail})")
    if getattr(result, "rebase", None) is not None:
        lines.append(f"  rebase, by identity: {_changes(result.rebase)}")
    return lines
