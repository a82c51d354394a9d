"""Several deliveries applied to a store in the order they were produced:
:func:`ingest_deliveries` (``vggeo ingest``).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterable
from contextlib import ExitStack
from datetime import timedelta
from pathlib import Path

from vggeo.errors import LedgerWarning, VggeoError
from vggeo.lm import open_delivery
from vggeo.store import open_store
from vggeo.store.base import ApplyResult
from vggeo.store.ledger import DEFAULT_MAX_INTERVAL, application_key

__all__ = ["ingest_deliveries"]


def ingest_deliveries(
    deliveries: Iterable[str | os.PathLike],
    store: str | os.PathLike,
    *,
    schema: str = "public",
    personal_data: bool = False,
    rebase: bool = False,
    max_interval: timedelta | None = DEFAULT_MAX_INTERVAL,
    accept_unmapped: Iterable[str] = (),
    progress: bool = False,
    on_applied: Callable[[Path, ApplyResult], None] | None = None,
) -> list[tuple[Path, ApplyResult]]:
    """Apply deliveries to ``store`` (created if absent), one transaction each, oldest first.

    Every delivery is opened, and its packaging checked, before the store is touched; they are
    then applied in the order they were produced (:func:`~vggeo.store.ledger.application_key`)
    with :meth:`Store.apply <vggeo.store.Store.apply>`. A delivery applied before is skipped
    (its result says so); one the ledger refuses stops the run, the deliveries applied before it
    staying applied. A store this call created for a first delivery that was refused is removed
    again: none at all, not an empty one.

    Parameters
    ----------
    deliveries
        Anything :func:`vggeo.lm.open_delivery` accepts, in any order.
    store
        A GeoPackage path or a ``postgresql://`` URL (``schema``: PostGIS only).
    personal_data, rebase, max_interval, progress
        As :meth:`Store.apply <vggeo.store.Store.apply>`. Ledger warnings (a change produced
        more than ``max_interval`` after the last applied extract) are not emitted as Python
        warnings: each result's ``warnings`` holds them.
    accept_unmapped
        Element paths the mapping does not use whose data may be dropped (recorded in the
        ledger); a delivery holding any other is refused (:class:`~vggeo.lm.package.UnmappedError`,
        whose ``paths`` lists them).
    on_applied
        Called with each delivery's path and result as soon as it is applied (for progress).

    Returns
    -------
    list of (path, result), in the order applied.

    Raises
    ------
    VggeoError
        What refused a delivery, naming its file.
    """
    accept = tuple(accept_unmapped)
    done: list[tuple[Path, ApplyResult]] = []
    with ExitStack() as stack:
        # open (and check the packaging of) every delivery before the store is touched
        opened = []
        for path in map(Path, deliveries):
            d = open_delivery(path)
            stack.callback(getattr(d, "close", lambda: None))
            d.accept_unmapped = accept
            opened.append((path, d))
        opened.sort(key=lambda item: application_key(item[1]))
        s = stack.enter_context(open_store(store, create=True, schema=schema))
        applied = False
        try:
            for path, delivery in opened:
                try:
                    with warnings.catch_warnings():
                        # the caller has them, one line each, in the result
                        warnings.simplefilter("ignore", LedgerWarning)
                        result = s.apply(
                            delivery,
                            progress=progress,
                            personal_data=personal_data,
                            rebase=rebase,
                            max_interval=max_interval,
                        )
                except VggeoError as err:  # a store's refusal names the delivery it was applying
                    raise err.where(file=path) from err
                applied = applied or result.applied
                done.append((path, result))
                if on_applied is not None:
                    on_applied(path, result)
        except BaseException:
            if not applied:  # a store made for a delivery that was refused: none, not an empty one
                s.remove_if_unused()
            raise
    return done
