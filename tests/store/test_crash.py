"""SIGKILL during a large change: the store is exactly as before; a re-run reaches exactly after.

A worker process applies a change of 5 000 provisions (plus 1 000 deletions) to a store holding
20 000; the test kills it at random moments inside the transaction, checks that every table and
the ledger equal the before-state, then lets it finish and checks the after-state, which is
computed separately by applying the same change to a second store without interruption.
"""

from __future__ import annotations

import random
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from crash_worker import delivery
from deliveries import snapshot

from vggeo.store import open_store

HERE = Path(__file__).parent
KILLS = 3


def _worker(location: str, schema: str, phase: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(HERE / "crash_worker.py"), location, schema, "7", phase],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _rollbacks(url: str) -> int:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT pg_stat_clear_snapshot()")
        return conn.execute(
            "SELECT xact_rollback FROM pg_stat_database WHERE datname = current_database()"
        ).fetchone()[0]


def _server_rolled_back(url: str, before: int) -> bool:
    """Whether the server aborted a transaction since ``before`` (statistics lag a little)."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if _rollbacks(url) > before:
            return True
        time.sleep(0.2)
    return False


@pytest.mark.slow
def test_sigkill_during_change_leaves_before_state_and_rerun_reaches_after(
    store_location, backend, tmp_path
):
    location, schema = store_location
    with open_store(location, create=True, schema=schema) as store:
        store.apply(delivery("base", 7))
        before = snapshot(store)
    # the after-state, from an uninterrupted run on a copy of the before-state
    if backend == "gpkg":
        ref_loc, ref_schema = str(tmp_path / "reference.gpkg"), "public"
        shutil.copy(location, ref_loc)
    else:
        ref_loc, ref_schema = location, "r_" + uuid.uuid4().hex[:10]
    if backend == "postgis":
        with open_store(ref_loc, create=True, schema=ref_schema) as ref:
            ref.apply(delivery("base", 7))
    # The change applied by a worker like the ones killed below, uninterrupted: its write phase
    # (from "writing" to the commit's "done") is the span the kills aim at. Aimed at a share of
    # the whole apply instead, a kill could come after the commit whenever reading the delivery
    # took most of the time, and then no kill landed inside the transaction. The kills come in
    # the first third of that span: a killed worker's writes can run faster than the
    # reference's when the machine's load changes in between.
    proc = _worker(ref_loc, ref_schema, "change")
    assert proc.stdout.readline().strip() == "applying", proc.stderr.read()
    assert proc.stdout.readline().strip() == "writing", proc.stderr.read()
    t0 = time.perf_counter()
    assert proc.stdout.readline().strip() == "done", proc.stderr.read()
    writing = time.perf_counter() - t0
    assert proc.wait(timeout=60) == 0, proc.stderr.read()
    with open_store(ref_loc, schema=ref_schema) as ref:
        after = snapshot(ref)
    assert after != before

    rnd = random.Random()
    killed_inside = 0
    interrupted = 0
    rollbacks = _rollbacks(location) if backend == "postgis" else 0
    for attempt in range(KILLS):
        proc = _worker(location, schema, "change")
        line = proc.stdout.readline()
        assert line.strip() == "applying", proc.stderr.read()
        line = proc.stdout.readline()
        assert line.strip() == "writing", proc.stderr.read()
        delay = rnd.uniform(0.05 * writing, 0.35 * writing)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        if backend == "gpkg":  # a hot journal: the kill interrupted a write transaction
            interrupted += Path(location + "-journal").exists()
        else:  # the server rolled back the dead client's open transaction
            interrupted += _server_rolled_back(location, rollbacks)
            rollbacks = _rollbacks(location)
        with open_store(location, schema=schema) as store:
            state = snapshot(store)
        assert state in (before, after), f"kill {attempt} after {delay:.3f}s left a mixed state"
        if state == after:  # the kill came after the commit: nothing more to show
            break
        killed_inside += 1
    assert killed_inside >= 1, "no kill landed inside the transaction"
    assert interrupted >= 1, "no kill interrupted a write transaction in progress"

    proc = _worker(location, schema, "change")
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    with open_store(location, schema=schema) as store:
        assert snapshot(store) == after
    # and once more: the ledger makes it a no-op
    proc = _worker(location, schema, "change")
    out, err = proc.communicate(timeout=300)
    assert out.split() == ["applying", "noop"], err
    if backend == "postgis":
        import psycopg

        with psycopg.connect(location, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{ref_schema}" CASCADE')


def test_two_writers_at_once_apply_a_delivery_exactly_once(store_location, backend):
    """Two processes create the store and apply the same base at the same moment."""
    location, schema = store_location
    procs = [_worker(location, schema, "base") for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), [e for _, e in outs]
    assert sorted(o.split()[-1] for o, _ in outs) == ["done", "noop"]
    with open_store(location, schema=schema) as store:
        assert store.ledger().extract_id.tolist() == ["crash-base"]
        assert store.counts()["provisions"] == 20_000
