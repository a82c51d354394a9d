"""Tiles rendered a few at a time, in the order they were asked for.

Rendering a tile is CPU-bound Python (the embedded backend) or a wait on PostgreSQL followed by
Python (the PostGIS backend). Sent to the default thread pool (40 threads), eight concurrent
misses render in eight threads that take turns holding the GIL every 5 ms: each tile takes as
long as all of them together, the event loop waits for the GIL between every step of every
response, and the densest tile of the batch (30 000 homes, tens of milliseconds alone) finishes
last, several hundred milliseconds later — the p99 at 8 clients was 2.7× tipg's for this reason
(benchmarks/tiles.md). A :class:`anyio.CapacityLimiter` sized to the cores lets as many tiles
render as there are cores to run them; the others wait, first come first served (the limiter's
queue is FIFO), so a request waits for the renders ahead of it and not for every render there is.
A PostGIS tile spends most of its time waiting for the database (the GIL released), so with that
backend twice as many render at once: the database and the Python side both stay busy (with as
many as the cores, 8 clients got 35 % fewer tiles per second from it than with the pool).

A backend that renders on the event loop (PostGIS: :meth:`~vggeo.tiles.TileSource.tile_async`)
takes the same places (:meth:`RenderQueue.run_on_loop`): unbounded, 8 concurrent misses made 8
concurrent statements on 2 cores, and the p99 at 8 clients doubled (benchmarks/tiles.md). Such a
render has no Python work to overlap with its wait (the loop does it between statements), so at
most as many as the cores run at once: with twice that, 8 clients of the z14–z16 list got about
as many tiles per second and a p99 twice as long (131 ms, 190 with parallel workers, against
67–77 ms: the densest tiles' statements shared the cores with three others); filtered tiles, in
threads, keep twice the cores (a third more tiles per second than with the cores).
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any, TypeVar

from anyio import CapacityLimiter, to_thread

T = TypeVar("T")


def default_threads() -> int:
    """The cores this process may run on (at least 2: one can wait on PostgreSQL while the other
    encodes)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 2
    return max(2, cores)


class RenderQueue:
    """Runs rendering calls in worker threads, at most ``threads`` at once, FIFO beyond.

    Parameters
    ----------
    threads
        Calls running at once; default :func:`default_threads` (see :meth:`fit`).
    """

    def __init__(self, threads: int | None = None) -> None:
        self.chosen = threads is not None
        self.threads = threads or default_threads()
        #: Of the ``threads`` places, how many renders on the event loop may hold at once.
        self.loop_threads = self.threads
        self._limiter: CapacityLimiter | None = None
        self._loop_limiter: CapacityLimiter | None = None

    def fit(self, source: object) -> None:
        """Size the queue for the backend (unless ``threads`` was given): twice the cores for a
        backend that renders in a database (PostGIS), the cores otherwise; renders on the event
        loop (:meth:`run_on_loop`) at most the cores."""
        if not self.chosen and self._limiter is None:
            waits = getattr(source, "kind", None) == "postgis"
            self.threads = default_threads() * (2 if waits else 1)
            self.loop_threads = default_threads()

    @property
    def limiter(self) -> CapacityLimiter:
        # Made on first use: an anyio limiter belongs to the event loop that runs it.
        if self._limiter is None:
            self._limiter = CapacityLimiter(self.threads)
        return self._limiter

    @property
    def loop_limiter(self) -> CapacityLimiter:
        if self._loop_limiter is None:
            self._loop_limiter = CapacityLimiter(min(self.loop_threads, self.threads))
        return self._loop_limiter

    async def run(self, fn: Callable[..., T], /, *args: object, **kwargs: object) -> T:
        """``fn(*args, **kwargs)`` in a worker thread, once one of the ``threads`` places is free."""
        return await to_thread.run_sync(partial(fn, *args, **kwargs), limiter=self.limiter)

    async def run_on_loop(
        self, fn: Callable[..., Awaitable[T]], /, *args: object, **kwargs: object
    ) -> T:
        """``await fn(*args, **kwargs)`` on the event loop, once one of the same ``threads``
        places is free (a render that waits on the database takes a place as in :meth:`run`)
        and fewer than ``loop_threads`` other renders run on the loop. The place is taken first,
        so renders start in the order they were asked for whichever way they run."""
        async with self.limiter, self.loop_limiter:
            return await fn(*args, **kwargs)


def render_queue(state: Any) -> RenderQueue:
    """The application's render queue (``app.state.render``; one is made there for an application
    built without one)."""
    queue = getattr(state, "render", None)
    if queue is None:
        queue = state.render = RenderQueue()
    return queue
