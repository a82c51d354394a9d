"""Random sequences of base and change deliveries, through both backends, against a plain model.

Each example starts an empty store and draws up to eight steps: base extracts (over data the
store holds: refused, or applied as a rebase), change extracts (with deletions, changed subsets of
provisions, owners who become protected or own nothing), replays of earlier deliveries, changes
that skip an extract, and broken deliveries (a failed
integrity check; a file that breaks halfway through reading). After every step the store's tables
and ledger must equal the model's, and a refused or broken delivery must leave them as they were.
"""

from __future__ import annotations

import tempfile
import uuid
from pathlib import Path

import numpy as np
import pytest
from deliveries import (
    KEYS,
    BrokenDelivery,
    Model,
    bestammelse,
    canonical,
    inskrivning,
    pid,
    rows_of,
    schedule,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_apply import residences

from vggeo.errors import IntegrityError, LedgerError, ParseError
from vggeo.store import open_store

PROVISION_POOL = [pid(i) for i in range(8)]
OBJECT_POOL = [f"0f6a{i:04d}-inskr-obj" for i in range(6)]


def assert_same(store, model: Model, step: str) -> None:
    for t in KEYS:
        frame = store.read_table(t)
        cols = sorted(c for c in frame.columns)
        got = canonical(rows_of(frame), cols)
        want = canonical(model.tables[t], cols)
        assert got == want, f"{step}: table {t} differs from the model"
    frame = store.read_table("residences")
    got = canonical(rows_of(frame), sorted(frame.columns))
    assert got == canonical(list(model.residences.values()), sorted(frame.columns)), (
        f"{step}: residences differ from the model"
    )
    ledger = store.ledger()
    ids = ledger[ledger["product"] != "residences"]["extract_id"].tolist()
    assert ids == [i for i in model.applied], f"{step}: ledger differs"


def _open(backend: str, postgis_url: str | None):
    if backend == "gpkg":
        path = Path(tempfile.mkdtemp(prefix="vggeo-prop-")) / "s.gpkg"
        return open_store(path, create=True), lambda: path.unlink()
    schema = "p_" + uuid.uuid4().hex[:10]
    store = open_store(postgis_url, create=True, schema=schema)

    def drop():
        import psycopg

        with psycopg.connect(postgis_url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')

    return store, drop


STEPS = ["base", "change", "change", "change", "change", "replay", "gap", "broken", "residences"]


@pytest.mark.slow
@settings(
    max_examples=20,
    deadline=None,
    derandomize=False,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_random_delivery_sequences_match_the_model(backend, request, data):
    postgis_url = request.getfixturevalue("postgis_url") if backend == "postgis" else None
    store, cleanup = _open(backend, postgis_url)
    model = Model()
    clock = schedule()
    made: list = []
    head: dict[str, str | None] = {}
    try:
        for step in range(data.draw(st.integers(1, 8), label="steps")):
            op = data.draw(st.sampled_from(STEPS), label="op")
            product = data.draw(st.sampled_from(["bestammelse", "inskrivning"]), label="product")
            rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1), label="seed"))
            if op == "residences":
                mode = data.draw(st.sampled_from(["replace", "upsert"]), label="mode")
                ids = sorted(int(i) for i in rng.choice(12, int(rng.integers(0, 6)), replace=False))
                frame = residences(ids, seed=int(rng.integers(0, 1000)))
                version = store.data_version
                store.load_residences(frame, mode=mode)
                if mode == "replace":
                    model.residences = {}
                model.residences.update({r["id"]: r for r in rows_of(frame)})
                assert store.data_version != version
                assert_same(store, model, f"step {step}: residences {mode} {ids}")
                continue
            eid = f"{product[:4]}-{step}-{uuid.uuid4().hex[:6]}"
            last = model.last.get(product, (None,))[0]
            if op == "replay" and made:
                d = made[data.draw(st.integers(0, len(made) - 1), label="which")]
            elif op == "base" or (
                op in ("change", "broken") and last is None and rng.random() < 0.7
            ):
                d = _make(product, eid, "base", next(clock), rng, previous=None)
            else:
                previous = last if op != "gap" else "missing-" + uuid.uuid4().hex[:6]
                if op == "change" and rng.random() < 0.15:
                    previous = None  # metadata without a previous-extract reference
                if op == "change" and rng.random() < 0.1:
                    previous = head.get(product)  # follows whatever came last, applied or not
                d = _make(product, eid, "change", next(clock), rng, previous=previous)
            if op == "broken":
                d = BrokenDelivery(
                    d.product,
                    d.extract_id,
                    d.extract_type,
                    d.produced_at,
                    d.tables,
                    d.removed,
                    d.previous_extract_id,
                    fail=data.draw(st.sampled_from(["verify", "read"])),
                )
            made.append(d)
            head[product] = d.extract_id
            rebase = d.extract_type == "base" and data.draw(st.booleans(), label="rebase")
            label = (
                f"step {step}: {op} {d.extract_type} {d.extract_id} after "
                f"{d.previous_extract_id}{' (rebase)' if rebase else ''}"
            )
            version = store.data_version
            try:
                expected = model.apply(d, rebase)
            except (LedgerError, IntegrityError, ParseError) as err:
                with pytest.raises(type(err)):
                    store.apply(d, rebase=rebase)
                assert store.data_version == version, label
            else:
                result = store.apply(d, rebase=rebase)
                assert result.applied == (expected == "apply"), label
                assert (store.data_version != version) == (expected == "apply"), label
            assert_same(store, model, label)
    finally:
        store.close()
        cleanup()


def _make(product, eid, kind, when, rng, *, previous):
    if product == "bestammelse":
        ids = list(rng.choice(PROVISION_POOL, int(rng.integers(0, 6)), replace=False))
        removed = list(rng.choice(PROVISION_POOL, int(rng.integers(0, 3)), replace=False))
        options = [{"basinformation"}, {"berorkrets"}, {"basinformation", "berorkrets"}]
        subsets = {p: options[int(rng.integers(0, 3))] for p in ids}
        if kind == "base":
            subsets = None
        return bestammelse(
            eid,
            kind,
            when,
            ids,
            rng,
            previous=previous,
            removed=removed,
            subsets=subsets,
            version=int(rng.integers(1, 9)),
        )
    objs = list(rng.choice(OBJECT_POOL, int(rng.integers(0, 5)), replace=False))
    removed = list(rng.choice(OBJECT_POOL, int(rng.integers(0, 3)), replace=False))
    return inskrivning(
        eid,
        kind,
        when,
        objs,
        rng,
        previous=previous,
        removed=removed,
        orphan_persons=int(rng.integers(0, 2)),
    )
