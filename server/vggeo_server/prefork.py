"""``vggeo serve --workers N`` with the in-memory backend: one index, shared by N processes.

uvicorn's own workers are separate interpreters (``spawn``): each would load the store and
build the Morton index again, N copies of the same arrays. Here the parent loads and warms the
index once, freezes the garbage collector's view of it (``gc.freeze``: a collection in a worker
then never writes to the pages holding it) and ``fork``s the workers, which serve on the socket
the parent opened. The index's numpy arrays stay shared copy-on-write pages: what a worker
adds on its own is its tile cache and the objects of the requests it serves.

The parent is the supervisor: a worker that dies is forked again (from the same shared index),
SIGTERM/SIGINT are passed on (each worker finishes its requests in flight), and when the store's
data version changes the parent loads the new data once, forks a new generation of workers and
only then stops the old ones — the socket never stops accepting, and memory is shared again.

gunicorn's ``--preload`` does the same for WSGI/ASGI apps; it is not used because the reload by
generation needs the parent to own the loaded data (gunicorn's master re-imports the app).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import logging.config
import os
import select
import signal
import socket
import time
from types import FrameType

import uvicorn

from vggeo.tiles.service import TileService
from vggeo_server.app import create_app, open_data, open_service
from vggeo_server.settings import Settings

__all__ = ["serve_preforked"]

log = logging.getLogger("vggeo.serve")
#: In a worker: the parent's store objects, kept from being closed by garbage collection.
_inherited: list = []


#: Seconds a stopping worker keeps the connections it has accepted but not yet read a request
#: from, after it stops accepting: the client's request is already on its way.
_DRAIN_S = 0.5
#: Seconds the supervisor waits for a new generation to accept before stopping the old one.
_READY_TIMEOUT_S = 60.0


class _WorkerServer(uvicorn.Server):
    """uvicorn in a forked worker: says when it accepts, and stops accepting before it drains.

    uvicorn's shutdown closes the listening socket and, at once, every connection that has no
    request in progress. On a socket shared by workers, a connection the kernel handed to this
    worker a moment before the stop has its request still in flight: closing it then leaves the
    client with a connection closed unanswered. So: stop accepting, give such connections
    ``_DRAIN_S`` to deliver their request, then uvicorn's own graceful shutdown (which answers
    requests in progress and closes the idle keep-alive connections)."""

    def __init__(self, config: uvicorn.Config, ready_fd: int) -> None:
        super().__init__(config)
        self._ready_fd = ready_fd

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        # A worker forked as a replacement has nobody waiting: its pipe is already closed.
        with contextlib.suppress(BrokenPipeError):
            if self.started:
                os.write(self._ready_fd, b"1")
        os.close(self._ready_fd)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for server in self.servers:
            server.close()
        await asyncio.sleep(_DRAIN_S)
        await super().shutdown(sockets)


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _load(settings: Settings) -> TileService:
    started = time.perf_counter()
    service = open_service(settings)
    log.info(
        "loaded data version %s in %.1f s (shared by the workers)",
        service.version,
        time.perf_counter() - started,
    )
    return service


def _worker(
    settings: Settings, service: TileService, sock: socket.socket, options: dict, ready_fd: int
) -> None:
    """The body of a forked worker: uvicorn on the inherited socket; never returns."""
    code = 0
    try:
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGCHLD):
            signal.signal(sig, signal.SIG_DFL)
        # A database connection must not be used on both sides of a fork (SQLite's rule): the
        # worker reads the data version (/readyz) through a store of its own. The parent's
        # objects are kept referenced, never closed here: the parent still uses them.
        _inherited.append((service.store, service.source.store))
        service.store = service.source.store = open_data(settings)
        # The parent watches the store; a worker never reloads on its own (it would build a
        # private copy of the index).
        app = create_app(
            settings.model_copy(update={"reload_interval": 0, "listen": False}), service=service
        )
        _WorkerServer(uvicorn.Config(app, **options), ready_fd).run(sockets=[sock])
    except BaseException:  # noqa: BLE001 - a worker reports and exits; the parent forks anew
        log.exception("worker %d failed", os.getpid())
        code = 1
    finally:
        os._exit(code)


def _fork(
    settings: Settings, service: TileService, sock: socket.socket, options: dict
) -> tuple[int, int]:
    """A worker's pid and the read end of the pipe on which it says it accepts."""
    ready_read, ready_write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(ready_read)
        _worker(settings, service, sock, options, ready_write)
    os.close(ready_write)
    return pid, ready_read


def _await_ready(ready: list[int], timeout: float = _READY_TIMEOUT_S) -> bool:
    """Whether every worker of a generation said it accepts within ``timeout`` (closes the
    pipes). A worker that fails before it accepts closes its pipe without a word."""
    deadline = time.monotonic() + timeout
    ok = True
    for fd in ready:
        try:
            left = deadline - time.monotonic()
            if ok and (
                left <= 0 or not select.select([fd], [], [], left)[0] or os.read(fd, 1) != b"1"
            ):
                ok = False
        finally:
            os.close(fd)
    return ok


def _spawn(settings: Settings, service: TileService, sock: socket.socket, options: dict) -> int:
    """Fork one worker without waiting for it (a replacement, or the first generation)."""
    pid, ready = _fork(settings, service, sock, options)
    os.close(ready)
    return pid


def serve_preforked(
    settings: Settings, *, host: str, port: int, workers: int, options: dict
) -> None:
    """Load the store once, fork ``workers`` uvicorn processes on one socket, supervise them.

    ``options`` are uvicorn ``Config`` keywords (log config, graceful shutdown timeout …)."""
    if isinstance(options.get("log_config"), dict):  # the parent logs as its workers do
        logging.config.dictConfig(options["log_config"])
    sock = _listen(host, port)
    service = _load(settings)
    gc.freeze()  # everything loaded so far is left alone by the workers' collections
    generation = {_spawn(settings, service, sock, options) for _ in range(workers)}
    stopping = False

    def stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    next_check = time.monotonic() + settings.reload_interval
    try:
        while not stopping:
            time.sleep(0.2)
            for pid in list(generation):
                done, _ = os.waitpid(pid, os.WNOHANG)
                if done and not stopping:
                    log.warning("worker %d exited; starting another", pid)
                    generation.discard(pid)
                    generation.add(_spawn(settings, service, sock, options))
            if settings.reload_interval > 0 and time.monotonic() >= next_check:
                next_check = time.monotonic() + settings.reload_interval
                service, generation = _maybe_reload(
                    settings, service, generation, sock, options, workers
                )
    finally:
        for pid in generation:
            _signal(pid, signal.SIGTERM)
        for pid in generation:
            _reap(pid)
        service.close()
        sock.close()


def _maybe_reload(
    settings: Settings,
    service: TileService,
    generation: set[int],
    sock: socket.socket,
    options: dict,
    workers: int,
) -> tuple[TileService, set[int]]:
    """A new generation of workers over freshly loaded data when the store changed."""
    try:
        current = service.source.current_version()
    except Exception as err:  # noqa: BLE001 - a store mid-write: try again next time
        log.warning("checking the store's data version failed: %s", err)
        return service, generation
    if current == service.version:
        return service, generation
    log.info(
        "store changed (%s → %s); loading it once for a new generation of workers",
        service.version,
        current,
    )
    gc.unfreeze()
    try:
        fresh = _load(settings)
    except Exception as err:  # noqa: BLE001 - keep serving the old data; retried next time
        log.warning("loading the changed store failed (%s); still serving %s", err, service.version)
        gc.freeze()
        return service, generation
    gc.freeze()
    forked = [_fork(settings, fresh, sock, options) for _ in range(workers)]
    new = {pid for pid, _ in forked}
    # The old generation goes on accepting until the new one does: no gap in which connections
    # wait in the backlog for a worker still starting up.
    if not _await_ready([ready for _, ready in forked]):
        log.warning("a worker of the new generation did not come up; replacing it as it exits")
    for pid in generation:  # the old ones finish their requests in flight and exit
        _signal(pid, signal.SIGTERM)
    for pid in generation:
        _reap(pid)
    service.close()
    return fresh, new


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _reap(pid: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return
        if done:
            return
        time.sleep(0.05)
    _signal(pid, signal.SIGKILL)
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass
