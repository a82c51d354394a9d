"""The ledger: which extracts a store has applied, and whether a new one may follow.

Lantmäteriet keeps only the latest delivery, for 30 days, and recommends fetching change extracts
"så ofta som möjligt (minst 1 gång/vecka)" (seed 004; FORMATS.md §4). A missed or re-ordered
change extract would silently corrupt the local copy, so every applied delivery is recorded and a
new one is checked against the record *before* anything is written.

What the metadata carries for this (seeds 003/004, "Metadatafil") is the extract's unique
identity, the time it was produced (*färdigproducerad*) and its type (*basuttag* /
*förändringsuttag*); it does not name the extract a change follows. So:

* the same extract again → a no-op with a message (a different checksum under the same id is an
  error: the file is not the one that was applied);
* a change extract with no base extract of its product before it → refused;
* an extract produced no later than the last one applied → refused, giving both times (older
  data would win);
* a change extract produced longer after the last applied extract than a subscription's interval
  (:data:`DEFAULT_MAX_INTERVAL`, configurable) → applied with a warning giving both times: an
  extract in between may have been missed, and only the operator can know;
* a base extract of a product the store already holds → refused unless the caller asks for a
  *rebase* (the documented way back from a missed extract: a new base replaces that product's
  data).

A delivery whose metadata names the extract it follows (``previous_extract_id``, an element
vggeo's own generator once wrote; not in Lantmäteriet's documentation) gets one more check: a
change that follows another extract than the last one applied is refused, naming both.

Chains are per product (``bestammelse``, ``inskrivning``): they are separate subscriptions.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from vggeo.errors import LedgerError, StoreError

__all__ = [
    "LedgerEntry",
    "LEDGER_COLUMNS",
    "DEFAULT_MAX_INTERVAL",
    "check_order",
    "interval_warning",
    "as_utc",
    "application_key",
    "last_extract",
]

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

#: The longest expected time between two extracts of a weekly subscription, a day of slack
#: included: a change produced later than this after the last applied extract gets a warning.
DEFAULT_MAX_INTERVAL = timedelta(days=8)

#: Key of the accepted unmapped paths inside a ledger row's ``counts`` JSON (not a set name).
ACCEPTED_KEY = "_accepted_unmapped"


def application_key(delivery: Any) -> tuple[bool, str]:
    """Sort key putting deliveries in the order a store applies them: by production time
    (``delivery.produced_at``), those without one last. ``sorted(deliveries,
    key=application_key)`` is the order ``vggeo ingest`` applies several in."""
    produced = as_utc(getattr(delivery, "produced_at", None))
    return (produced is None, produced.isoformat() if produced else "")


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
    #: Unmapped element paths the operator chose to drop (``--accept-unmapped``) → count.
    #: Kept inside the ``counts`` JSON under :data:`ACCEPTED_KEY`, so stores made before this
    #: field need no new column; :meth:`from_row` takes it out again.
    accepted_unmapped: dict = field(default_factory=dict)

    def as_row(self) -> dict[str, Any]:
        counts = dict(self.counts)
        if self.accepted_unmapped:
            counts[ACCEPTED_KEY] = dict(self.accepted_unmapped)
        return {
            "seq": self.seq,
            "extract_id": self.extract_id,
            "product": self.product,
            "extract_type": self.extract_type,
            "previous_extract_id": self.previous_extract_id,
            "produced_at": self.produced_at,
            "applied_at": self.applied_at,
            "checksum": self.checksum,
            "counts": json.dumps(counts, sort_keys=True),
            "source": self.source,
            "personal_data": self.personal_data,
        }

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> LedgerEntry:
        counts = row.get("counts")
        if isinstance(counts, str):
            counts = json.loads(counts)
        counts = dict(counts or {})
        accepted = counts.pop(ACCEPTED_KEY, None) or {}
        applied_at = as_utc(row["applied_at"])
        if applied_at is None:  # the column is nullable in SQL; vggeo always writes it
            raise StoreError(f"ledger entry {row['seq']} has no applied_at")
        return cls(
            seq=int(row["seq"]),
            extract_id=row["extract_id"],
            product=row["product"],
            extract_type=row["extract_type"],
            previous_extract_id=row.get("previous_extract_id"),
            produced_at=as_utc(row.get("produced_at")),
            applied_at=applied_at,
            checksum=row.get("checksum"),
            counts=counts or {},
            source=row.get("source"),
            personal_data=bool(row.get("personal_data")),
            accepted_unmapped=accepted,
        )


def last_extract(entries: list[LedgerEntry], product: str) -> LedgerEntry | None:
    """The last base/change extract of ``product`` applied, or None."""
    chain = [e for e in entries if e.product == product and e.extract_type in DELIVERY_TYPES]
    return max(chain, key=lambda e: e.seq) if chain else None


def _when(e: LedgerEntry) -> str:
    return e.produced_at.isoformat() if e.produced_at else "unknown time"


def check_order(
    entries: list[LedgerEntry], delivery: Any, *, rebase: bool = False
) -> LedgerEntry | None:
    """Check that ``delivery`` may be applied after ``entries``.

    Parameters
    ----------
    entries
        The store's ledger.
    delivery
        Anything with ``extract_id``, ``product``, ``extract_type``, ``produced_at``,
        ``checksum`` and (optionally) ``previous_extract_id``.
    rebase
        Allow a base extract of a product the store already holds (it will replace that
        product's data). Without it such a base is refused.

    Returns
    -------
    LedgerEntry or None
        The earlier entry when this very extract was applied already (the caller does nothing),
        else None (the caller may apply it).

    Raises
    ------
    LedgerError
        The delivery does not follow: no base, a base over existing data without ``rebase``,
        produced no later than the last applied extract, or (when the metadata names it) a
        change following another extract than the last one applied.
    """
    extract_id = str(delivery.extract_id)
    product = str(delivery.product)
    kind = str(delivery.extract_type)
    if kind not in DELIVERY_TYPES:
        raise LedgerError(
            f"extract {extract_id}: unknown extract type {kind!r}; "
            f"expected one of {', '.join(DELIVERY_TYPES)}"
        )
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
    if last is not None and produced is not None and last.produced_at is not None:
        if produced <= last.produced_at:
            raise LedgerError(
                f"{kind} extract {extract_id} of {product} was produced {produced.isoformat()}, "
                f"not after the last applied extract {last.extract_id} (produced "
                f"{_when(last)}): it is out of order"
            )
    if kind == "base" and last is not None and not rebase:
        raise LedgerError(
            f"base extract {extract_id} of {product} would replace the {product} data this store "
            f"already holds (last applied: {last.extract_type} extract {last.extract_id}, produced "
            f"{_when(last)}); to start again from this base, apply it with --rebase"
        )
    if kind == "change":
        if last is None:
            raise LedgerError(
                f"change extract {extract_id} of {product} cannot be applied: no base extract of "
                f"{product} has been applied to this store; apply the base extract first"
            )
        # Only when the metadata names it (not a documented element): one more check.
        previous = getattr(delivery, "previous_extract_id", None)
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
                f"{_when(last)}); apply {previous} first, or start again from a new base extract "
                f"with --rebase"
            )
    return None


def interval_warning(
    entries: list[LedgerEntry], delivery: Any, max_interval: timedelta | None = DEFAULT_MAX_INTERVAL
) -> str | None:
    """A warning when a change extract comes longer after the last applied one than expected.

    The metadata does not say which extract a change follows, so a missed extract shows only as
    a longer interval between production times. The change is still applied (a subscription may
    be paused, a delivery late), but the operator is told, with both times, and how to recover.

    Parameters
    ----------
    entries
        The store's ledger.
    delivery
        The change about to be applied (its ``product``, ``extract_type``, ``produced_at``).
    max_interval
        The longest expected interval; None (or zero) turns the warning off.

    Returns
    -------
    str or None
        One line, or None when the interval is within the limit, the delivery is a base (which
        replaces everything anyway), or a time is unknown.
    """
    if not max_interval or str(delivery.extract_type) != "change":
        return None
    product = str(delivery.product)
    last = last_extract(entries, product)
    produced = as_utc(delivery.produced_at)
    if last is None or last.produced_at is None or produced is None:
        return None
    gap = produced - last.produced_at
    if gap <= max_interval:
        return None
    return (
        f"change extract {delivery.extract_id} of {product} was produced {produced.isoformat()}, "
        f"{_span(gap)} after the last applied extract {last.extract_id} (produced "
        f"{_when(last)}), more than the expected {_span(max_interval)}: an extract in between "
        f"may have been missed; if one was, start again from a new base extract (--rebase)"
    )


def _span(t: timedelta) -> str:
    """``14 days``, ``8 days 12 h``, ``36 h``: a duration as an operator reads it."""
    days, rest = divmod(int(t.total_seconds()), 86_400)
    hours = rest // 3600
    if days and hours:
        return f"{days} day{'s' * (days != 1)} {hours} h"
    if days:
        return f"{days} day{'s' * (days != 1)}"
    return f"{hours} h" if hours else f"{int(t.total_seconds())} s"
