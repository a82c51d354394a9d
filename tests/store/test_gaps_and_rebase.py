"""Gaps judged from what real metadata carries, and the way back: a new base applied as a rebase.

Lantmäteriet's metadata gives an extract's identity, its production time and its type, not the
extract it follows (seeds 003/004, "Metadatafil"); change extracts should be fetched "minst 1
gång/vecka" (seed 004), and a missed one is recovered from by a new base extract. The deliveries
here carry no previous-extract reference unless a test says so. Every refusal leaves the store
as it was (byte for byte for a GeoPackage, every row and the ledger for PostGIS).
"""

from __future__ import annotations

import uuid
import warnings
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from deliveries import BEST_SET, KEYS, BrokenDelivery, bestammelse, inskrivning, pid, snapshot
from test_apply import fingerprint

from vggeo.errors import LedgerError, LedgerWarning, ParseError
from vggeo.store import open_store

T = datetime(2025, 1, 6, 4, 0)
WEEK = timedelta(days=7)
T_ISO = "2025-01-06T04:00:00+00:00"


def rng(seed=0):
    return np.random.default_rng(seed)


# --- gaps without the invented element ------------------------------------------------------


def test_a_skipped_change_is_applied_with_a_warning_giving_both_dates(store):
    store.apply(bestammelse("b1", "base", T, [pid(i) for i in range(5)], rng()))
    # c1 (T + 1 week) was never applied; c2 carries no reference to it
    c2 = bestammelse("c2", "change", T + 2 * WEEK, [pid(1)], rng(1))
    assert c2.previous_extract_id is None
    with pytest.warns(LedgerWarning) as caught:
        result = store.apply(c2)
    assert result.applied
    (line,) = result.warnings
    assert [str(w.message) for w in caught] == [line]
    assert "\n" not in line
    assert "2025-01-20T04:00:00+00:00" in line and T_ISO in line
    assert "14 days" in line and "8 days" in line and "b1" in line and "--rebase" in line


def test_weekly_changes_give_no_warning(store):
    store.apply(bestammelse("b1", "base", T, [pid(i) for i in range(5)], rng()))
    with warnings.catch_warnings():
        warnings.simplefilter("error", LedgerWarning)
        for k in (1, 2):
            r = store.apply(
                bestammelse(f"c{k}", "change", T + k * WEEK + timedelta(hours=20), [pid(k)], rng(k))
            )
            assert r.applied and r.warnings == []


@pytest.mark.parametrize(
    ("after", "limit", "warns"),
    [
        (2 * WEEK, timedelta(days=15), False),
        (2 * WEEK, None, False),
        (WEEK, timedelta(days=3), True),
    ],
)
def test_the_interval_limit_is_configurable(store, after, limit, warns):
    store.apply(bestammelse("b1", "base", T, [pid(0)], rng()))
    change = bestammelse("c2", "change", T + after, [pid(1)], rng(1))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", LedgerWarning)
        result = store.apply(change, max_interval=limit)
    assert bool(result.warnings) == warns == bool(caught)
    if warns:
        assert "more than the expected 3 days" in result.warnings[0]


def test_a_base_after_a_long_pause_gives_no_interval_warning(store):
    store.apply(bestammelse("b1", "base", T, [pid(0)], rng()))
    with warnings.catch_warnings():
        warnings.simplefilter("error", LedgerWarning)
        assert (
            store.apply(
                bestammelse("b2", "base", T + 9 * WEEK, [pid(1)], rng()), rebase=True
            ).warnings
            == []
        )


@pytest.mark.parametrize("offset", [timedelta(days=3), WEEK], ids=["earlier", "same-time"])
def test_a_change_produced_no_later_than_the_last_applied_is_refused(store, offset):
    store.apply(bestammelse("b1", "base", T, [pid(i) for i in range(5)], rng()))
    store.apply(bestammelse("c1", "change", T + WEEK, [pid(1)], rng(1)))
    before, version = fingerprint(store), store.data_version
    older = bestammelse("c0", "change", T + offset, [pid(2)], rng(2))
    with pytest.raises(LedgerError) as err:
        store.apply(older)
    msg = str(err.value)
    assert "\n" not in msg and "c0" in msg and "c1" in msg and "out of order" in msg
    assert (T + offset).isoformat() + "+00:00" in msg  # this delivery's time …
    assert "2025-01-13T04:00:00+00:00" in msg  # … and the last applied one's
    assert fingerprint(store) == before and store.data_version == version
    assert store.ledger().extract_id.tolist() == ["b1", "c1"]


def test_a_named_previous_extract_is_still_checked(store):
    """Read when present (older vggeo samples wrote it): one more check, never required."""
    store.apply(bestammelse("b1", "base", T, [pid(0)], rng()))
    before = fingerprint(store)
    with pytest.raises(LedgerError, match="follows extract c1, which is missing"):
        store.apply(bestammelse("c2", "change", T + WEEK, [pid(1)], rng(), previous="c1"))
    assert fingerprint(store) == before
    assert store.apply(
        bestammelse("c1", "change", T + WEEK, [pid(1)], rng(), previous="b1")
    ).applied


# --- a base over data the store holds --------------------------------------------------------


def test_a_base_over_held_data_is_refused_without_rebase(store):
    base = bestammelse("b1", "base", T, [pid(i) for i in range(5)], rng())
    store.apply(base)
    store.apply(bestammelse("c1", "change", T + WEEK, [pid(1)], rng(1)))
    before, version = fingerprint(store), store.data_version
    with pytest.raises(LedgerError) as err:
        store.apply(bestammelse("b2", "base", T + 3 * WEEK, [pid(7)], rng(2)))
    msg = str(err.value)
    assert "\n" not in msg and "--rebase" in msg and "b2" in msg and "c1" in msg
    assert fingerprint(store) == before and store.data_version == version
    # the same base again is still a no-op, not a refusal
    assert not store.apply(base).applied
    # a base of the other product is its own chain
    assert store.apply(inskrivning("i1", "base", T, ["o1"], rng())).applied


def test_a_rebase_older_than_the_store_or_broken_leaves_it_untouched(store):
    store.apply(bestammelse("b1", "base", T, [pid(i) for i in range(5)], rng()))
    store.apply(bestammelse("c1", "change", T + WEEK, [pid(1)], rng(1)))
    before, version = fingerprint(store), store.data_version
    with pytest.raises(LedgerError, match="out of order"):
        store.apply(bestammelse("b0", "base", T + timedelta(days=2), [pid(7)], rng()), rebase=True)
    b2 = bestammelse("b2", "base", T + 3 * WEEK, [pid(7), pid(8)], rng(3))
    broken = BrokenDelivery(
        b2.product,
        b2.extract_id,
        b2.extract_type,
        b2.produced_at,
        {**b2.tables, "extra": b2.tables[BEST_SET]},
        fail="read",
    )
    with pytest.raises(ParseError):
        store.apply(broken, rebase=True)
    assert fingerprint(store) == before and store.data_version == version


# --- the rebase itself ----------------------------------------------------------------------


@pytest.fixture
def other_store(store_location, tmp_path, request):
    """A second empty store on the same backend: the fresh store a rebase must equal."""
    location, _ = store_location
    if not location.startswith("postgresql"):
        s = open_store(tmp_path / "fresh.gpkg", create=True)
        yield s
        s.close()
        return
    schema = "f_" + uuid.uuid4().hex[:12]
    s = open_store(location, create=True, schema=schema)
    yield s
    s.close()
    import psycopg

    with psycopg.connect(location, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def _by_identity(store, table: str) -> dict[str, list]:
    """identity → its rows as sorted tuples of text: a plain reading, nothing shared with the store."""
    frame = store.read_table(table)
    key = KEYS[table]
    cols = sorted(frame.columns)
    out: dict[str, list] = {}
    for row in frame[cols].astype(object).itertuples(index=False):
        values = dict(zip(cols, row, strict=True))
        cells = tuple(
            (c, None if _missing(v) else (v.wkt if hasattr(v, "wkt") else str(v)))
            for c, v in values.items()
        )
        out.setdefault(str(values[key]), []).append(cells)
    return {k: sorted(v) for k, v in out.items()}


def _missing(v) -> bool:
    try:
        return bool(v is None or v != v)
    except (TypeError, ValueError):
        return False


def _expected_report(before: dict, after: dict) -> dict:
    return {
        "added": len(after.keys() - before.keys()),
        "removed": len(before.keys() - after.keys()),
        "changed": sum(before[k] != after[k] for k in before.keys() & after.keys()),
    }


def _tables_of(store, like=None) -> dict:
    """Every content table's rows. With ``like``, the columns ``like`` lacks are left out — after
    checking they are empty: a column once added to a store stays, without values, after a rebase."""
    snap = snapshot(store)
    snap.pop("_ledger")
    if like is None:
        return snap
    ref = _tables_of(like)
    for t, (cols, rows) in list(snap.items()):
        keep = [i for i, c in enumerate(cols) if c in ref[t][0]]
        extra = [i for i, c in enumerate(cols) if c not in ref[t][0]]
        assert all(row[i] == "None" for row in rows for i in extra), f"{t}: values in {extra}"
        snap[t] = [
            [cols[i] for i in keep],
            sorted(([row[i] for i in keep] for row in rows), key=repr),
        ]
    return snap


def test_rebase_equals_a_fresh_store_of_that_base_and_reports_the_differences(store, other_store):
    b1 = bestammelse("b1", "base", T, [pid(i) for i in range(10)], rng(1))
    store.apply(b1)
    store.apply(
        bestammelse(
            "c1", "change", T + WEEK, [pid(i) for i in (1, 2, 10)], rng(2), removed=[pid(3)]
        )
    )
    # the store now holds 0–2 and 4–10 (3 deleted, 10 added by c1). c2 was missed; the new base
    # holds 4–6 unchanged (the very rows of b1), 7–10 with new content and 11–13 new
    b2 = bestammelse("b2", "base", T + 4 * WEEK, [pid(i) for i in range(4, 14)], rng(3))
    for name, frame in b2.tables[BEST_SET].items():
        old = b1.tables[BEST_SET][name]
        keep = old[old.provision_id.isin([pid(i) for i in (4, 5, 6)])]
        rest = frame[~frame.provision_id.isin([pid(i) for i in (4, 5, 6)])]
        b2.tables[BEST_SET][name] = type(frame)(pd.concat([keep, rest], ignore_index=True))
    b2.checksum = ""
    b2.__post_init__()
    tables = ["provisions", "affected_properties", "decisions"]
    before = {t: _by_identity(store, t) for t in tables}
    result = store.apply(b2, rebase=True)
    assert result.applied and "rebased bestammelse" in result.message and "c1" in result.message
    other_store.apply(b2)
    assert _tables_of(store, like=other_store) == _tables_of(other_store, like=other_store)
    after = {t: _by_identity(store, t) for t in tables}
    want = {t: _expected_report(before[t], after[t]) for t in tables}
    assert {t: result.rebase[t] for t in tables} == want
    assert want["provisions"] == {"added": 3, "removed": 3, "changed": 4}
    # the ledger records it
    ledger = store.ledger()
    assert ledger.extract_id.tolist() == ["b1", "c1", "b2"]
    last = ledger.iloc[-1]
    assert last.extract_type == "base"
    assert last.counts["rebase"]["replaces"] == "c1"
    assert last.counts["rebase"]["tables"] == result.rebase
    assert last.counts["replaced"]["provisions"]["deleted"] == len(before["provisions"])
    assert store.last_extracts()["bestammelse"].extract_id == "b2"
    # the chain goes on from the new base
    assert store.apply(bestammelse("c3", "change", T + 5 * WEEK, [pid(4)], rng(4))).applied


def test_rebase_replaces_every_table_of_the_product_and_only_that_product(store, other_store):
    store.apply(bestammelse("b1", "base", T, [pid(i) for i in range(4)], rng(1)))
    store.apply(inskrivning("i1", "base", T, ["o1", "o2", "o3"], rng(2), orphan_persons=1))
    provisions = _by_identity(store, "provisions")
    # the new base lacks the owners' set: a fresh store of it has no persons or organisations
    i2 = inskrivning("i2", "base", T + 3 * WEEK, ["o2", "o4"], rng(3))
    del i2.tables["folkbokford_person_organisation"]
    i2.checksum = ""
    i2.__post_init__()
    result = store.apply(i2, rebase=True)
    other_store.apply(i2)
    other_store.apply(bestammelse("b1", "base", T, [pid(i) for i in range(4)], rng(1)))
    assert _tables_of(store, like=other_store) == _tables_of(other_store, like=other_store)
    assert store.counts()["persons"] == 0 and store.counts()["organisations"] == 0
    assert _by_identity(store, "provisions") == provisions
    assert set(result.rebase) >= {"inskrivningsfastighet", "agande", "persons", "organisations"}
    assert "provisions" not in result.rebase
    assert result.rebase["inskrivningsfastighet"]["removed"] == 2  # o1, o3
    assert result.rebase["inskrivningsfastighet"]["added"] == 1  # o4


def test_rebase_on_a_store_without_the_product_is_a_plain_base(store):
    result = store.apply(bestammelse("b1", "base", T, [pid(0)], rng()), rebase=True)
    assert result.applied and result.rebase is None and "replaced" not in result.counts


# --- the command line -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def chain(tmp_path_factory) -> list[Path]:
    from vggeo.sample.delivery import generate_deliveries

    return generate_deliveries(
        tmp_path_factory.mktemp("chain"), product="bestammelse", n=40, changes=2, seed=21
    )


@pytest.fixture(scope="module")
def later_base(tmp_path_factory) -> Path:
    from vggeo.sample.delivery import generate_deliveries

    start = datetime(2026, 3, 2, 4, 30, tzinfo=timezone(timedelta(hours=1)))
    return generate_deliveries(
        tmp_path_factory.mktemp("later"), product="bestammelse", n=30, seed=22, start=start
    )[0]


def _ingest(*args):
    from vggeo.cli import cli

    return CliRunner().invoke(cli, ["ingest", *map(str, args)])


def test_cli_skipped_change_warns_and_earlier_change_is_refused(chain, tmp_path):
    from vggeo.lm import open_delivery

    with open_delivery(chain[0]) as d:
        assert d.previous_extract_id is None  # the generator writes no invented element
    db = tmp_path / "s.gpkg"
    assert _ingest(chain[0], "--store", db).exit_code == 0
    r = _ingest(chain[2], "--store", db)  # change 1 skipped
    assert r.exit_code == 0, r.output
    (warning,) = [line for line in r.stderr.splitlines() if "warning" in line]
    assert "14 days" in warning and "2026-01-05T03:30:00+00:00" in warning
    assert "2026-01-19T03:30:00+00:00" in warning and chain[2].name in warning
    before = db.read_bytes()
    r = _ingest(chain[1], "--store", db)  # produced before change 2
    assert r.exit_code == 2 and r.stderr.count("\n") == 1, r.stderr
    assert "2026-01-12T03:30:00+00:00" in r.stderr and "2026-01-19T03:30:00+00:00" in r.stderr
    assert db.read_bytes() == before
    r = _ingest(chain[2], "--store", tmp_path / "t.gpkg", "--max-interval", "0")
    assert r.exit_code == 2  # no base: refused, and no store left behind
    assert not (tmp_path / "t.gpkg").exists()


def test_cli_rebase(chain, later_base, tmp_path):
    db = tmp_path / "s.gpkg"
    assert _ingest(*chain[:2], "--store", db).exit_code == 0
    before = db.read_bytes()
    r = _ingest(later_base, "--store", db)
    assert r.exit_code == 2 and r.stderr.count("\n") == 1 and "--rebase" in r.stderr, r.stderr
    assert db.read_bytes() == before
    r = _ingest(later_base, "--store", db, "--rebase")
    assert r.exit_code == 0, r.output
    assert "rebased bestammelse" in r.stdout and "rebase, by identity: provisions +30 -" in r.stdout
    fresh = tmp_path / "fresh.gpkg"
    assert _ingest(later_base, "--store", fresh).exit_code == 0
    with open_store(db) as a, open_store(fresh) as b:
        assert _tables_of(a, like=b) == _tables_of(b, like=b)
        removed = a.ledger().iloc[-1].counts["rebase"]["tables"]["provisions"]["removed"]
    assert removed > 0
    from vggeo.status import store_status

    assert "rebase of" in store_status(db).to_text()
