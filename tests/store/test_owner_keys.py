"""Owner keys hold against an attacker with vggeo's source, and stay stable within one store.

The attacker's side below uses only what is public: the source (every constant in it, the old
salted-hash scheme) and the plausible personnummer. It is even handed the true personnummer of
the sample's owners (read with ``personal_data=True``) — more than an attacker would have — and
must still recover none: without the store's secret no key can be recomputed.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import date, timedelta

import pytest

from vggeo.lm import open_delivery, read_inskrivning
from vggeo.lm.inskrivning import owner_key
from vggeo.sample.delivery import generate_deliveries
from vggeo.store import open_store
from vggeo.store.base import OWNER_SECRET_META
from vggeo.store.secret import OWNER_SECRET_ENV


@pytest.fixture(scope="module")
def deliveries(tmp_path_factory):
    return generate_deliveries(
        tmp_path_factory.mktemp("insk-keys"), product="inskrivning", n=60, changes=2, seed=23
    )


def _apply(store, paths, **kw):
    for p in paths:
        with open_delivery(p) as d:
            store.apply(d, **kw)


def _keys(store) -> set[str]:
    out: set[str] = set()
    for t in ("persons", "agande", "forvarv"):
        out |= set(store.read_table(t)["owner_key"].dropna())
    return {k for k in out if not k.startswith("org:")}


def _true_numbers(paths) -> set[str]:
    nums: set[str] = set()
    for p in paths:
        nums |= set(read_inskrivning(p, personal_data=True).persons["personnummer"].dropna())
    return nums


# --- the attacker: public code and constants only -----------------------------------------------
_GUESSED_SECRETS = (
    b"",
    b"\0" * 32,
    b"vggeo owner key v1\0",
    b"vggeo",
    OWNER_SECRET_ENV.encode(),
    b"0" * 64,
    b"secret",
)


def _forms(num: str) -> set[str]:
    d = "".join(ch for ch in num if ch.isdigit())
    return {num, d, d[-10:], f"{d[:8]}-{d[8:]}", f"{d[2:8]}-{d[8:]}"}


def _attacker_keys(num: str) -> set[str]:
    """Every key the public source could make of ``num`` without the store's secret."""
    out = set()
    old_salt = b"vggeo owner key v1\0"
    for f in _forms(num):
        raw = f.encode()
        for n in (24, 32, 64):
            out.add("pnr:" + hashlib.sha256(old_salt + raw).hexdigest()[:n])  # the old scheme
            out.add("pnr:" + hashlib.sha256(raw).hexdigest()[:n])
            for s in _GUESSED_SECRETS:
                for prefix in (b"", b"pnr\0"):
                    out.add("pnr:" + hmac.new(s, prefix + raw, hashlib.sha256).hexdigest()[:n])
    for s in _GUESSED_SECRETS:
        out.add(owner_key(num, s))
    return out


def _luhn(core: str) -> int:
    s = 0
    for i, ch in enumerate(core):
        d = int(ch) * (2 - i % 2)
        s += d - 9 if d > 9 else d
    return (10 - s % 10) % 10


def _plausible(born: date) -> list[str]:
    """All valid personnummer of one birth date (every serial with its check digit)."""
    yymmdd = born.strftime("%y%m%d")
    return [f"{born:%Y%m%d}-{k:03d}{_luhn(yymmdd + f'{k:03d}')}" for k in range(1000)]


def test_brute_force_with_the_source_recovers_no_key(tmp_path, deliveries):
    with open_store(tmp_path / "store.gpkg", create=True) as store:
        _apply(store, deliveries)
        stored = _keys(store)
        secret = store._get_meta(OWNER_SECRET_META)
    assert len(stored) > 20
    assert secret and len(secret) >= 32
    truth = _true_numbers(deliveries)
    # 1. the true numbers themselves, in every form, under every key the source could guess
    guessed = set().union(*(_attacker_keys(n) for n in truth))
    assert not guessed & stored
    # 2. a brute force over birth dates around the true ones (every valid serial)
    births = sorted({date(int(n[:4]), int(n[4:6]), int(n[6:8])) for n in truth})[:3]
    cands = [c for b in births for dd in (-1, 0, 1) for c in _plausible(b + timedelta(days=dd))]
    hits = {
        c
        for c in cands
        if owner_key(c, b"vggeo owner key v1\0") in stored
        or "pnr:"
        + hashlib.sha256(b"vggeo owner key v1\0" + c.replace("-", "")[-10:].encode()).hexdigest()[
            :24
        ]
        in stored
    }
    assert not hits


def test_keys_stable_within_a_store_and_differ_between_stores(store_location, tmp_path, deliveries):
    location, schema = store_location
    with open_store(location, create=True, schema=schema) as a:
        _apply(a, deliveries[:1], personal_data=True)
        first = dict(a.read_table("persons")[["personnummer", "owner_key"]].itertuples(index=False))
        _apply(a, deliveries[1:], personal_data=True)
        later = dict(a.read_table("persons")[["personnummer", "owner_key"]].itertuples(index=False))
        secret_a = a._get_meta(OWNER_SECRET_META)
        # every ownership row points at a person or organisation of the same store
        owners = set(a.read_table("agande")["owner_key"].dropna())
        known = set(a.read_table("persons")["owner_key"]) | set(
            a.read_table("organisations")["owner_key"]
        )
        assert owners <= known
    common = set(first) & set(later)
    assert len(common) > 10
    assert all(first[n] == later[n] for n in common)  # stable across deliveries
    with open_store(tmp_path / "other.gpkg", create=True) as b:
        _apply(b, deliveries[:1], personal_data=True)
        other = dict(b.read_table("persons")[["personnummer", "owner_key"]].itertuples(index=False))
        assert b._get_meta(OWNER_SECRET_META) != secret_a
    assert all(other[n] != first[n] for n in set(other) & set(first))  # differ between stores


def test_operator_secret_and_its_mismatch(tmp_path, deliveries, monkeypatch):
    from vggeo.errors import StoreError

    monkeypatch.setenv(OWNER_SECRET_ENV, "an operator's secret, 32+ chars long")
    with open_store(tmp_path / "a.gpkg", create=True) as a:
        _apply(a, deliveries[:1], personal_data=True)
        p = a.read_table("persons")
    assert (
        p["owner_key"]
        == [owner_key(n, "an operator's secret, 32+ chars long") for n in p["personnummer"]]
    ).all()
    monkeypatch.delenv(OWNER_SECRET_ENV)
    with open_store(tmp_path / "b.gpkg", create=True) as b:
        monkeypatch.setenv(OWNER_SECRET_ENV, "a different secret, also long enough")
        with open_delivery(deliveries[0]) as d, pytest.raises(StoreError, match=OWNER_SECRET_ENV):
            b.apply(d)


def test_secret_never_exported(tmp_path, deliveries):
    from vggeo.exports import export_store_gpkg

    path = tmp_path / "store.gpkg"
    with open_store(path, create=True) as store:
        _apply(store, deliveries[:1])
        secret = store._get_meta(OWNER_SECRET_META)
    out = tmp_path / "export.gpkg"
    export_store_gpkg(path, out)
    data = out.read_bytes()
    assert secret.encode() not in data and b"owner_key_secret" not in data
    import sqlite3

    with sqlite3.connect(out) as conn:
        layers = {r[0] for r in conn.execute("SELECT table_name FROM gpkg_contents")}
        assert {
            "agande",
            "forvarv",
            "fang",
            "persons",
        } <= layers  # (overlatelse: none in the sample)
        assert conn.execute("SELECT count(*) FROM fang").fetchone()[0] > 0
        for t in ("agande", "persons", "fang"):
            cols = {r[1] for r in conn.execute(f'PRAGMA table_info("{t}")')}
            assert "personnummer" not in cols
            assert (
                not conn.execute(
                    f"SELECT count(*) FROM \"{t}\" WHERE owner_key LIKE '%19%-%'"
                ).fetchone()[0]
                if "owner_key" in cols
                else True
            )


# --- an order "utan personnummer" (seed 003) and Ägare – Alla -----------------------------------


@pytest.fixture(scope="module")
def without_pnr(tmp_path_factory):
    return generate_deliveries(
        tmp_path_factory.mktemp("insk-nopnr"),
        product="inskrivning",
        n=60,
        changes=2,
        seed=23,
        personnummer=False,
        owners="all",
    )


def test_delivery_without_personnummer_ingests(store_location, without_pnr):
    import xml.etree.ElementTree as ET
    import zipfile

    # the delivery really carries no personnummer: no idnummer of 12 digits anywhere
    with zipfile.ZipFile(without_pnr[0]) as outer:
        inner = next(
            n for n in outer.namelist() if n.endswith("folkbokford_person_organisation.zip")
        )
        import io

        with zipfile.ZipFile(io.BytesIO(outer.read(inner))) as z:
            xml = z.read(next(n for n in z.namelist() if n.endswith(".xml")))
    ids = [e.text for e in ET.fromstring(xml).iter() if e.tag.endswith("idnummer")]
    assert not any(len((t or "").replace("-", "")) == 12 for t in ids)
    location, schema = store_location
    with open_store(location, create=True, schema=schema) as store:
        for i, p in enumerate(without_pnr):
            with open_delivery(p) as d:
                assert store.apply(d).applied
            persons = store.read_table("persons")
            agande = store.read_table("agande")
            assert len(persons) > 20 and persons["owner_key"].str.startswith("own:").all()
            owned = set(agande["owner_key"].dropna())
            # orphans removed: every person and organisation owns (or owned) something here
            assert set(persons["owner_key"]) <= owned
            assert set(store.read_table("organisations")["owner_key"]) <= owned
            # every natural-person owner links to a person of the person file
            own = {k for k in owned if k.startswith("own:")}
            assert own <= set(persons["owner_key"]), p.name
            if i >= 1:  # owners who sold in a change stay as former owners (Ägare – Alla)
                assert (~agande["current"].astype(bool)).sum() >= 1
            assert agande["current"].notna().all()


def test_current_and_former_owners(without_pnr):
    with open_delivery(without_pnr[1]) as d:
        a = read_inskrivning(d, sets=["inskrivet_agande"]).agande
    former = a[~a["current"].astype(bool)]
    assert len(former) >= 1 and a["current"].sum() >= 1
    # a property whose owners sold: its former owners are not among its current ones
    for oid, rows in a.groupby("object_id"):
        now = set(rows.loc[rows["current"].astype(bool), "owner_key"].dropna())
        was = set(rows.loc[~rows["current"].astype(bool), "owner_key"].dropna())
        assert not (now & was), oid


def _drop_new_tables(location: str, schema: str) -> None:
    """Make the store look like one an older vggeo created: no fang, no overlatelse."""
    names = ("fang", "overlatelse")
    if location.startswith("postgresql://"):
        import psycopg

        with psycopg.connect(location, autocommit=True) as conn:
            for n in names:
                conn.execute(f'DROP TABLE "{schema}"."{n}"')
                conn.execute(f'DELETE FROM "{schema}".vggeo_columns WHERE table_name = %s', [n])
        return
    import sqlite3
    from contextlib import closing

    with closing(sqlite3.connect(location)) as conn, conn:
        for n in names:
            conn.execute(f'DROP TABLE "{n}"')
            for t in ("gpkg_contents", "vggeo_columns"):
                conn.execute(f"DELETE FROM {t} WHERE table_name = ?", [n])


def test_a_store_from_before_the_new_tables_gets_them_with_its_next_delivery(
    store_location, deliveries
):
    location, schema = store_location
    open_store(location, create=True, schema=schema).close()
    _drop_new_tables(location, schema)
    store = open_store(location, schema=schema)
    try:
        _apply(store, deliveries)
        assert len(store.read_table("fang")) > 0
        assert len(store.ledger()) == len(deliveries)
    finally:
        store.close()
