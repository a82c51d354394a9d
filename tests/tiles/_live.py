"""A real ``vggeo serve`` process on a free loopback port."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from system import _free_port


@contextlib.contextmanager
def live_server(store: Path | None, *, workers: int = 1, env: dict | None = None):
    """Start ``vggeo serve`` and yield (base_url, pid); stopped (SIGINT, then kill) after."""
    port = _free_port()
    cmd = [
        sys.executable,
        "-m",
        "vggeo",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]
    if store is not None:
        cmd += ["--store", str(store)]
    # The server logs every request: write to a file, never to an unread pipe (it would fill up
    # and block the server).
    log = tempfile.TemporaryFile(mode="w+")
    proc = subprocess.Popen(
        cmd, stdout=log, stderr=subprocess.STDOUT, text=True, env={**os.environ, **(env or {})}
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None:
                log.seek(0)
                raise AssertionError(f"vggeo serve exited {proc.returncode}:\n{log.read()}")
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError("vggeo serve did not come up in 90 s")
            time.sleep(0.2)
        yield base, proc.pid
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
