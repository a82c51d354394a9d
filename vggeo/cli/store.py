"""``vggeo ingest`` and ``vggeo store status``: apply deliveries to a store, and look at it.

Both are thin wrappers over :mod:`vggeo.store`; the summary goes to stdout, progress to stderr.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from vggeo.cli.options import progress_opt, store_opt
from vggeo.errors import VggeoError


def register(group: click.Group) -> None:
    """Add ``ingest`` and the ``store`` group to the main group."""
    group.add_command(ingest)
    group.add_command(store_group)


@click.command("ingest")
@click.argument("deliveries", nargs=-1, required=True, metavar="DELIVERY...",
                type=click.Path(exists=True, path_type=Path))  # fmt: skip
@store_opt
@progress_opt
@click.option("--personal-data", is_flag=True, default=False,
              help="Keep personnummer, names and addresses the delivery carries "
                   "(default: never stored).")  # fmt: skip
@click.option("--schema", default="public", show_default=True,
              help="PostGIS only: the database schema of the store.")  # fmt: skip
def ingest(deliveries: tuple[Path, ...], store: str, progress: bool, personal_data: bool,
           schema: str) -> None:  # fmt: skip
    """Apply Lantmäteriet deliveries (base, then changes) to STORE, one transaction each.

    DELIVERY is an outer ZIP, an unpacked folder, an inner set ZIP or one XML file. Several are
    applied in the order they were produced. The store (a GeoPackage path or a postgresql:// URL)
    is created if absent. A delivery applied before is skipped with a message; one that does not
    follow the ledger (no base, a missing extract) is refused and nothing of it is written.
    """
    from contextlib import ExitStack

    from vggeo.lm import open_delivery
    from vggeo.store import open_store

    with ExitStack() as stack:
        # open (and check the packaging of) every delivery before the store is touched
        opened = []
        for path in deliveries:
            d = open_delivery(path)
            stack.callback(getattr(d, "close", lambda: None))
            opened.append((path, d))
        opened.sort(key=lambda item: _sort_key(item[1]))
        s = stack.enter_context(open_store(store, create=True, schema=schema))
        # A bar only on a terminal: in a log or a pipe it would be lines of carriage returns.
        progress = progress and sys.stderr.isatty()
        applied = False
        try:
            for path, delivery in opened:
                try:
                    result = s.apply(delivery, progress=progress, personal_data=personal_data)
                except VggeoError as err:  # a store's refusal names the delivery it was applying
                    raise err.where(file=path) from err
                applied = applied or result.applied
                click.echo(f"{path.name}: {result.message}")
                for set_name, (deleted, inserted) in result.totals().items():
                    detail = ", ".join(f"{t} -{c['deleted']}/+{c['inserted']}"
                                       for t, c in result.counts[set_name].items())  # fmt: skip
                    click.echo(f"  {set_name}: deleted {deleted}, inserted {inserted} ({detail})")
        except BaseException:
            if not applied:  # a store made for a delivery that was refused: none at all, not an empty one
                s.remove_if_unused()
            raise


def _sort_key(delivery) -> tuple:
    from vggeo.store.ledger import as_utc

    produced = as_utc(getattr(delivery, "produced_at", None))
    return (produced is None, produced.isoformat() if produced else "")


@click.group("store")
def store_group() -> None:
    """Inspect a GeoPackage or PostGIS store."""


@store_group.command("status")
@store_opt
@click.option("--schema", default="public", show_default=True,
              help="PostGIS only: the database schema of the store.")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, default=False, help="Print one JSON document.")
def status(store: str, schema: str, as_json: bool) -> None:
    """Show the ledger, row counts and last extract per product of STORE."""
    from vggeo.store import open_store

    with open_store(store, schema=schema) as s:
        counts = s.counts()
        ledger = s.ledger()
        last = s.last_extracts()
        doc = {
            "store": s.location, "backend": s.backend, "data_version": s.data_version,
            "counts": counts,
            "last_extract": {p: {"extract_id": e.extract_id, "extract_type": e.extract_type,
                                 "produced_at": _iso(e.produced_at),
                                 "applied_at": _iso(e.applied_at)} for p, e in last.items()},
            "ledger": [
                {"seq": int(r.seq), "extract_id": r.extract_id, "product": r.product,
                 "extract_type": r.extract_type, "previous_extract_id": r.previous_extract_id,
                 "produced_at": _iso(r.produced_at), "applied_at": _iso(r.applied_at),
                 "checksum": r.checksum, "counts": r.counts}
                for r in ledger.itertuples()
            ],
        }  # fmt: skip
    if as_json:
        click.echo(json.dumps(doc, indent=2, ensure_ascii=False))
        return
    click.echo(f"store: {doc['store']} ({doc['backend']})")
    click.echo(f"data version: {doc['data_version']}")
    click.echo("last extract:")
    if not last:
        click.echo("  (none applied)")
    for p, e in doc["last_extract"].items():
        click.echo(f"  {p}: {e['extract_type']} {e['extract_id']} produced {e['produced_at']}, "
                   f"applied {e['applied_at']}")  # fmt: skip
    click.echo("rows:")
    width = max(len(t) for t in counts)
    for t, n in counts.items():
        click.echo(f"  {t:<{width}}  {n:>10}")
    click.echo("ledger:")
    if not doc["ledger"]:
        click.echo("  (empty)")
    for r in doc["ledger"]:
        deleted = sum(c["deleted"] for t in r["counts"].values() for c in t.values())
        inserted = sum(c["inserted"] for t in r["counts"].values() for c in t.values())
        click.echo(f"  {r['seq']:>4}  {r['applied_at']}  {r['product']:<12} {r['extract_type']:<7} "
                   f"{r['extract_id']}  -{deleted}/+{inserted}")  # fmt: skip


def _iso(value) -> str | None:
    if value is None:
        return None
    try:
        import pandas as pd

        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    return value.isoformat(timespec="seconds") if hasattr(value, "isoformat") else str(value)
