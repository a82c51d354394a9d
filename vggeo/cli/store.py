"""``vggeo ingest`` and ``vggeo store status``: apply deliveries to a store, and look at it.

Both are thin wrappers over :mod:`vggeo.store` and :mod:`vggeo.status`; the summary goes to
stdout, progress to stderr.
"""

from __future__ import annotations

import json
import sys
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import click

from vggeo.cli.options import progress_opt, store_opt
from vggeo.errors import VggeoError

if TYPE_CHECKING:
    from vggeo.store.base import ApplyResult


def register(group: click.Group) -> None:
    """Add ``ingest`` and the ``store`` group to the main group."""
    group.add_command(ingest)
    group.add_command(store_group)


@click.command("ingest")
@click.argument(
    "deliveries",
    nargs=-1,
    required=True,
    metavar="DELIVERY...",
    type=click.Path(exists=True, path_type=Path),
)
@store_opt
@progress_opt
@click.option(
    "--personal-data",
    is_flag=True,
    default=False,
    help="Keep personnummer, names and addresses the delivery carries (default: never stored).",
)
@click.option(
    "--schema",
    default="public",
    show_default=True,
    help="PostGIS only: the database schema of the store.",
)
@click.option(
    "--rebase",
    is_flag=True,
    default=False,
    help="Let a base extract replace the data of a product the store already holds "
    "(the way back from a missed change extract); reports what it added, "
    "removed and changed.",
)
@click.option(
    "--max-interval",
    "max_interval",
    type=click.FloatRange(min=0),
    default=8.0,
    show_default=True,
    envvar="VGGEO_MAX_INTERVAL",
    metavar="DAYS",
    help="Warn when a change extract was produced more than DAYS after the last "
    "applied extract of its product (an extract may be missing); 0 turns the "
    "warning off. Env: VGGEO_MAX_INTERVAL.",
)
@click.option(
    "--accept-unmapped",
    "accept_unmapped",
    multiple=True,
    metavar="PATH",
    help="An element path the mapping does not use whose data may be dropped (as "
    "listed by `vggeo inspect`; * wildcards allowed; repeatable). Recorded in "
    "the ledger. Without it such a delivery is refused.",
)
def ingest(
    deliveries: tuple[Path, ...],
    store: str,
    progress: bool,
    personal_data: bool,
    schema: str,
    rebase: bool,
    max_interval: float,
    accept_unmapped: tuple[str, ...],
) -> None:
    """Apply Lantmäteriet deliveries (base, then changes) to STORE, one transaction each.

    DELIVERY is an outer ZIP, an unpacked folder, an inner set ZIP or one XML file. Several are
    applied in the order they were produced. The store (a GeoPackage path or a postgresql:// URL)
    is created if absent. A delivery applied before is skipped with a message; one that does not
    follow the ledger (no base, produced no later than the last applied extract) is refused and
    nothing of it is written. A change produced more than --max-interval days after the last
    applied extract is applied with a warning: one in between may have been missed. The way back
    is a new base extract: applied to a store that holds its product it is refused unless
    --rebase is given, and then replaces that product's data in one transaction.
    """
    # lazy: keeps vggeo --help fast
    from vggeo.lm.package import unmapped_lines
    from vggeo.status import applied_lines
    from vggeo.store.ingest import ingest_deliveries

    def report(path: Path, result: ApplyResult) -> None:
        for line in result.warnings:
            click.echo(f"vggeo: warning: {path.name}: {line}", err=True)
        for line in applied_lines(path.name, result):
            click.echo(line)

    try:
        ingest_deliveries(
            deliveries,
            store,
            schema=schema,
            personal_data=personal_data,
            rebase=rebase,
            max_interval=timedelta(days=max_interval),
            accept_unmapped=accept_unmapped,
            # A bar only on a terminal: in a log or a pipe it would be lines of carriage returns.
            progress=progress and sys.stderr.isatty(),
            on_applied=report,
        )
    except VggeoError as err:
        lines = unmapped_lines(getattr(err, "paths", None) or {})
        if lines:  # every path not accepted, then the error's one line
            click.echo(
                "vggeo: element paths not mapped (--accept-unmapped PATH to drop one):", err=True
            )
        for line in lines:
            click.echo(f"  {line}", err=True)
        raise


@click.group("store")
def store_group() -> None:
    """Inspect a GeoPackage or PostGIS store."""


@store_group.command("status")
@store_opt
@click.option(
    "--schema",
    default="public",
    show_default=True,
    help="PostGIS only: the database schema of the store.",
)
@click.option("--json", "as_json", is_flag=True, default=False, help="Print one JSON document.")
def status(store: str, schema: str, as_json: bool) -> None:
    """Show the ledger, row counts and last extract per product of STORE."""
    # lazy: keeps vggeo --help fast
    from vggeo.status import store_status

    report = store_status(store, schema=schema)
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2, ensure_ascii=False))
    else:
        click.echo(report.to_text())
