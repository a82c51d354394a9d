"""Several real ``vggeo serve`` processes on loopback over one store, started at once."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from system import _free_port


@dataclass
class Replica:
    base: str
    proc: subprocess.Popen
    log: Path
    extra: dict = field(default_factory=dict)

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@contextlib.contextmanager
def replicas(
    n: int,
    store: str,
    *,
    schema: str = "public",
    env: dict | None = None,
    workers: int = 1,
    ready_within: float = 120,
):
    """Start ``n`` ``vggeo serve`` processes at the same moment; yield them once every one
    answers ``/readyz`` with 200. Each is stopped with SIGINT (then killed) afterwards."""
    tmp = Path(tempfile.mkdtemp(prefix="vggeo-replicas-"))
    started: list[Replica] = []
    try:
        for i in range(n):
            port = _free_port()
            log = tmp / f"replica{i}.log"
            cmd = [
                sys.executable,
                "-m",
                "vggeo",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--store",
                store,
                "--schema",
                schema,
                "--workers",
                str(workers),
            ]
            with log.open("w") as out:
                proc = subprocess.Popen(
                    cmd, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}
                )
            started.append(Replica(f"http://127.0.0.1:{port}", proc, log))
        deadline = time.monotonic() + ready_within
        waiting = list(started)
        while waiting:
            for r in list(waiting):
                if r.proc.poll() is not None:
                    raise AssertionError(f"vggeo serve exited {r.proc.returncode}:\n{r.output()}")
                try:
                    if httpx.get(f"{r.base}/readyz", timeout=2).status_code == 200:
                        waiting.remove(r)
                except httpx.TransportError:
                    pass
            if time.monotonic() > deadline:
                raise AssertionError(
                    "not ready in time:\n" + "\n".join(r.output() for r in waiting)
                )
            time.sleep(0.2)
        yield started
    finally:
        for r in started:
            if r.proc.poll() is None:
                r.proc.send_signal(signal.SIGINT)
        for r in started:
            try:
                r.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                r.proc.kill()
                r.proc.wait()
        for f in tmp.iterdir():
            f.unlink()
        tmp.rmdir()
