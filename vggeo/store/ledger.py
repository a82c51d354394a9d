"""The ledger: which extracts a store has applied, and whether a new one may follow.

Lantmäteriet keeps only the latest delivery, for 30 days (FORMATS.md §4). A missed or re-ordered
change extract would silently corrupt the local copy, so every applied delivery is recorded and a
new one is checked against the record *before* anything is written:

* the same extract again → a no-op with a message (a different checksum under the same id is an
  error: the file is not the one that was applied);
* a change extract with no base extract of its product before it → refused;
* a change extract that names a previous extract other than the last one applied → refused,
  naming the missing (or out-of-order) extract;
* an extract produced no later than the last one applied → refused (older data would win).

Chains are per product (``bestammelse``, ``inskrivning``): they are separate subscriptions.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from vggeo.errors import LedgerError

__all__ = ["LedgerEntry", "LEDGER_COLUMNS", "check_order", "as_utc", "last_extract"]

#: Ledger columns and their kinds (see :mod:`vggeo.store.schema`).
LEDGER_COLUMNS: tuple[tuple[str, str], ...] = (
    ("seq", "int"),
    ("extract_id", "text"),
    ("product", "text"),
    ("extract_type", "text"),
    ("previous_extract_id", "text"),
    ("produced_at", "datetime"),
    ("applied_at", "datetime"),
    ("checksum", "text"),
    ("counts", "json"),
    ("source", "text"),
    ("personal_data", "bool"),
)

DELIVERY_TYPES = ("base", "change")


def as_utc(value: Any) -> datetime | None:
    """A timezone-aware UTC datetime; naive values are taken to be UTC already."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if hasattr(value, "to_pydatetime"):
        value = value.to_pydatetime()
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


@dataclass(frozen=True)
class LedgerEntry:
    """One applied delivery (or residences load)."""

    seq: int
    extract_id: str
    product: str
    extract_type: str
    previous_extract_id: str | None
    produced_at: datetime | None
    applied_at: datetime
    checksum: str | None
    counts: dict = field(default_factory=dict)
    source: str | None = None
    personal_data: bool = False

    def as_row(self) -> dict[str, Any]:
        return {
            "seq": self.seq, "extract_id": self.extract_id, "product": self.product,
            "extract_type": self.extract_type, "previous_extract_id": self.previous_extract_id,
            "produced_at": self.produced_at, "applied_at": self.applied_at,
            "checksum": self.checksum, "counts": json.dumps(self.counts, sort_keys=True),
            "source": self.source, "personal_data": self.personal_data,
        }  # fmt: skip

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> LedgerEntry:
        counts = row.get("counts")
        if isinstance(counts, str):
            counts = json.loads(counts)
        return cls(
            seq=int(row["seq"]), extract_id=row["extract_id"], product=row["product"],
            extract_type=row["extract_type"], previous_extract_id=row.get("previous_extract_id"),
            produced_at=as_utc(row.get("produced_at")), applied_at=as_utc(row["applied_at"]),
            checksum=row.get("checksum"), counts=counts or {}, source=row.get("source"),
            personal_data=bool(row.get("personal_data")),
        )  # fmt: skip


def last_extract(entries: list[LedgerEntry], product: str) -> LedgerEntry | None:
    """The last base/change extract of ``product`` applied, or None."""
    chain = [e for e in entries if e.product == product and e.extract_type in DELIVERY_TYPES]
    return max(chain, key=lambda e: e.seq) if chain else None


def _when(e: LedgerEntry) -> str:
    return e.produced_at.isoformat() if e.produced_at else "unknown time"


def check_order(entries: list[LedgerEntry], delivery: Any) -> LedgerEntry | None:
    """Check that ``delivery`` may be applied after ``entries``.

    Returns
    -------
    LedgerEntry or None
        The earlier entry when this very extract was applied already (the caller does nothing),
        else None (the caller may apply it).

    Raises
    ------
    LedgerError
        The delivery does not follow: no base, a gap, or older than what the store holds.
    """
    extract_id = str(delivery.extract_id)
    product = str(delivery.product)
    kind = str(delivery.extract_type)
    if kind not in DELIVERY_TYPES:
        raise LedgerError(f"extract {extract_id}: unknown extract type {kind!r}; "
                          f"expected one of {', '.join(DELIVERY_TYPES)}")  # fmt: skip
    for e in entries:
        if e.extract_id == extract_id and e.product == product:
            if e.checksum and delivery.checksum and e.checksum != delivery.checksum:
                raise LedgerError(
                    f"extract {extract_id} was applied on {e.applied_at.isoformat()} with checksum "
                    f"{e.checksum[:16]}…, but this delivery's checksum is "
                    f"{str(delivery.checksum)[:16]}…: it is not the same delivery"
                )
            return e
    last = last_extract(entries, product)
    produced = as_utc(delivery.produced_at)
    if kind == "change":
        if last is None:
            raise LedgerError(
                f"change extract {extract_id} of {product} cannot be applied: no base extract of "
                f"{product} has been applied to this store; apply the base extract first"
            )
        previous = delivery.previous_extract_id
        if previous is not None and str(previous) != last.extract_id:
            applied = {e.extract_id: e for e in entries if e.product == product}
            if str(previous) in applied:
                raise LedgerError(
                    f"change extract {extract_id} of {product} is out of order: it follows "
                    f"extract {previous}, but extract {last.extract_id} (produced {_when(last)}) "
                    f"has been applied since"
                )
            raise LedgerError(
                f"change extract {extract_id} of {product} follows extract {previous}, which is "
                f"missing from this store (last applied: {last.extract_id}, produced "
                f"{_when(last)}); apply {previous} first, or start again from a new base extract"
            )
    if last is not None and produced is not None and last.produced_at is not None:
        if produced <= last.produced_at:
            raise LedgerError(
                f"{kind} extract {extract_id} of {product} was produced {produced.isoformat()}, "
                f"not after the last applied extract {last.extract_id} (produced "
                f"{_when(last)}): it is out of order"
            )
    return None
