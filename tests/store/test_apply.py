"""Applying deliveries: the ledger's refusals, "delete then add", subsets, owners — on both backends."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from deliveries import BEST_SET, BrokenDelivery, bestammelse, inskrivning, pid, snapshot

from vggeo.errors import IntegrityError, LedgerError, ParseError, SchemaError, StoreError
from vggeo.store import MemoryDelivery, open_store

T = datetime(2025, 1, 6, 4, 0)
WEEK = timedelta(days=7)


def rng(seed=0):
    return np.random.default_rng(seed)


def fingerprint(store) -> object:
    """Byte-for-byte for a GeoPackage (the file), every row and the ledger for PostGIS."""
    if store.backend == "gpkg":
        return hashlib.sha256(Path(store.location).read_bytes()).hexdigest()
    return snapshot(store)


def base_and_change(seed=0):
    base = bestammelse("b1", "base", T, [pid(i) for i in range(10)], rng(seed))
    change = bestammelse(
        "c1", "change", T + WEEK, [pid(i) for i in (1, 2, 10)], rng(seed + 1), removed=[pid(3)]
    )
    return base, change


# --- the ledger ------------------------------------------------------------------------------


def test_change_without_base_is_refused_and_nothing_written(store):
    _, change = base_and_change()
    before = fingerprint(store)
    with pytest.raises(LedgerError, match="no base extract of bestammelse has been applied"):
        store.apply(change)
    assert fingerprint(store) == before


def test_missing_extract_is_named_when_the_metadata_names_the_previous_one(store):
    """Not in Lantmäteriet's metadata, but when a delivery names the extract it follows, it is
    checked too."""
    base, _ = base_and_change()
    store.apply(base)
    gap = bestammelse("c3", "change", T + 3 * WEEK, [pid(1)], rng(), previous="c2")
    with pytest.raises(
        LedgerError, match=r"follows extract c2, which is missing .*last applied: b1"
    ):
        store.apply(gap)
    assert store.ledger()["extract_id"].tolist() == ["b1"]


def test_out_of_order_and_older_extracts_are_refused(store):
    """The production times decide; a named previous extract is one more check."""
    base, change = base_and_change()
    store.apply(base)
    store.apply(change)
    late = bestammelse("c1b", "change", T + 2 * WEEK, [pid(1)], rng(), previous="b1")
    with pytest.raises(LedgerError, match="out of order: it follows extract b1.*c1"):
        store.apply(late)
    older = bestammelse("c0", "change", T + timedelta(days=3), [pid(1)], rng())
    with pytest.raises(LedgerError, match="not after the last applied extract c1"):
        store.apply(older)
    old_base = bestammelse("b0", "base", T - WEEK, [pid(1)], rng())
    with pytest.raises(LedgerError, match="out of order"):
        store.apply(old_base)


def test_same_delivery_twice_is_a_noop_with_a_message(store):
    base, change = base_and_change()
    store.apply(base)
    first = store.apply(change)
    version, before = store.data_version, fingerprint(store)
    again = store.apply(change)
    assert first.applied and not again.applied
    assert "already applied" in again.message and "c1" in again.message
    assert store.data_version == version and fingerprint(store) == before
    forged = bestammelse("c1", "change", T + WEEK, [pid(4)], rng(9))
    with pytest.raises(LedgerError, match="not the same delivery"):
        store.apply(forged)


def test_delivery_without_extract_id_is_refused(store):
    from vggeo.errors import DeliveryError

    base, _ = base_and_change()
    base.extract_id = None
    with pytest.raises(DeliveryError, match="no extract id"):
        store.apply(base)
    assert store.ledger().empty


def test_chains_are_per_product(store):
    base, _ = base_and_change()
    store.apply(base)
    with pytest.raises(LedgerError, match="no base extract of inskrivning"):
        store.apply(inskrivning("i2", "change", T + WEEK, ["o1"], rng()))
    store.apply(inskrivning("i1", "base", T + WEEK, ["o1"], rng()))
    assert set(store.last_extracts()) == {"bestammelse", "inskrivning"}


# --- integrity and broken input --------------------------------------------------------------


@pytest.mark.parametrize("fail", ["verify", "read"])
def test_broken_delivery_leaves_store_unchanged(store, fail):
    base, change = base_and_change()
    store.apply(base)
    ins = inskrivning("i1", "base", T, ["o1", "o2"], rng())
    broken = BrokenDelivery(
        ins.product, ins.extract_id, ins.extract_type, ins.produced_at, ins.tables, fail=fail
    )
    before, version = fingerprint(store), store.data_version
    err = IntegrityError if fail == "verify" else ParseError
    with pytest.raises(err, match="missing from the delivery|inskrivet_agande_1.xml.*mismatched"):
        store.apply(broken)
    assert fingerprint(store) == before
    assert store.data_version == version
    # nothing is left locked or half-open: the next delivery applies
    assert store.apply(change).applied


def test_ctrl_c_midway_rolls_back(store, monkeypatch):
    base, change = base_and_change()
    store.apply(base)
    before, version = fingerprint(store), store.data_version
    calls = []
    real = type(store)._write_rows

    def interrupted(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:  # after the deletions and the first table's rows
            raise KeyboardInterrupt
        return real(self, *args, **kwargs)

    monkeypatch.setattr(type(store), "_write_rows", interrupted)
    with pytest.raises(KeyboardInterrupt):
        store.apply(change)
    monkeypatch.undo()
    assert len(calls) == 2
    assert fingerprint(store) == before and store.data_version == version
    assert store.apply(change).applied


def test_bad_rows_roll_back_the_whole_delivery(store):
    base, _ = base_and_change()
    store.apply(base)
    before = fingerprint(store)
    bad = bestammelse("c1", "change", T + WEEK, [pid(1), pid(2)], rng())
    prov = bad.tables[BEST_SET]["provisions"]
    prov.loc[1, "provision_id"] = None
    with pytest.raises(SchemaError, match="row 2.*provision_id|provision_id.*row"):
        store.apply(bad)
    assert fingerprint(store) == before


# --- "delete, then add" ---------------------------------------------------------------------


def test_change_deletes_then_adds(store):
    base, change = base_and_change()
    store.apply(base)
    result = store.apply(change)
    prov = store.read_table("provisions").set_index("provision_id")
    want_ids = {pid(i) for i in range(11)} - {pid(3)}
    assert set(prov.index) == want_ids
    new = change.tables[BEST_SET]["provisions"].set_index("provision_id")
    for p in (pid(1), pid(2), pid(10)):
        assert prov.loc[p, "object_version"] == new.loc[p, "object_version"]
        assert prov.loc[p, "geometry"].equals_exact(new.loc[p, "geometry"], 0)
    aff = store.read_table("affected_properties")
    assert pid(3) not in set(aff.provision_id)
    got = aff[aff.provision_id == pid(1)].register_unit_id.tolist()
    want = change.tables[BEST_SET]["affected"]
    assert sorted(got) == sorted(want[want.provision_id == pid(1)].register_unit_id)
    assert result.counts[BEST_SET]["provisions"] == {"deleted": 3, "inserted": 3}


def test_change_replaces_only_the_subsets_it_carries(store):
    base = bestammelse("b1", "base", T, [pid(1), pid(2)], rng(1))
    store.apply(base)
    old = store.read_table("provisions").set_index("provision_id")
    old_aff = store.read_table("affected_properties")
    change = bestammelse(
        "c1",
        "change",
        T + WEEK,
        [pid(1), pid(2)],
        rng(2),
        subsets={pid(1): {"berorkrets"}, pid(2): {"basinformation"}},
    )
    store.apply(change)
    prov = store.read_table("provisions").set_index("provision_id")
    aff = store.read_table("affected_properties")
    c_aff = change.tables[BEST_SET]["affected"]
    c_prov = change.tables[BEST_SET]["provisions"].set_index("provision_id")
    # pid(1): Berörkrets replaced, Basinformation kept
    assert prov.loc[pid(1), "designation"] == old.loc[pid(1), "designation"]
    assert sorted(aff[aff.provision_id == pid(1)].register_unit_id) == sorted(
        c_aff[c_aff.provision_id == pid(1)].register_unit_id
    )
    # pid(2): Basinformation replaced, Berörkrets kept
    assert prov.loc[pid(2), "designation"] == c_prov.loc[pid(2), "designation"]
    assert sorted(aff[aff.provision_id == pid(2)].register_unit_id) == sorted(
        old_aff[old_aff.provision_id == pid(2)].register_unit_id
    )


def test_base_replaces_the_set_on_rebase(store):
    store.apply(bestammelse("b1", "base", T, [pid(i) for i in range(5)], rng()))
    store.apply(bestammelse("b2", "base", T + WEEK, [pid(7)], rng()), rebase=True)
    assert store.read_table("provisions").provision_id.tolist() == [pid(7)]
    assert set(store.read_table("decisions").provision_id) <= {pid(7)}


# --- inskrivning owners ---------------------------------------------------------------------


def _owners_delivery(eid, kind, when, agande, persons, orgs, *, removed=()):
    objects = sorted({o for o, _ in agande} | set(o for o in ("o1", "o2") if kind == "base"))
    tables = {
        "inskrivningsfastighet": {
            "inskrivningsfastighet": pd.DataFrame(
                {"object_id": objects, "property_id": [f"p-{o}" for o in objects]}
            )
        },
        "inskrivet_agande": {
            "agande": pd.DataFrame(
                {
                    "object_id": [o for o, _ in agande],
                    "property_id": [f"p-{o}" for o, _ in agande],
                    "owner_key": [k for _, k in agande],
                }
            )
        },
        "folkbokford_person_organisation": {
            "persons": pd.DataFrame(
                {
                    "owner_key": [k for k, _, _ in persons],
                    "protected": [p for _, p, _ in persons],
                    "personnummer": [n for _, _, n in persons],
                    "first_name": ["Anna"] * len(persons),
                }
            ),
            "organisations": pd.DataFrame(
                {"owner_key": orgs, "organisation_name": [f"AB {k}" for k in orgs]}
            ),
        },
    }
    rem = {"inskrivningsfastighet": set(removed), "inskrivet_agande": set(removed)}
    return MemoryDelivery(
        "inskrivning", eid, kind, when, tables, removed=rem if kind == "change" else {}
    )


def test_protected_and_orphaned_owners_are_removed(store):
    base = _owners_delivery(
        "i1",
        "base",
        T,
        [("o1", "pnr:a"), ("o1", "org:1"), ("o2", "org:2")],
        [("pnr:a", False, "19500101-1234")],
        ["org:1", "org:2"],
    )
    store.apply(base)
    assert store.read_table("persons").owner_key.tolist() == ["pnr:a"]
    assert sorted(store.read_table("organisations").owner_key) == ["org:1", "org:2"]
    # o1's owner gets skyddad personuppgift (key and identity gone); o2 is de-registered
    change = _owners_delivery(
        "i2",
        "change",
        T + WEEK,
        [("o1", None), ("o1", "org:1")],
        [(None, True, None)],
        ["org:1"],
        removed=["o2"],
    )
    result = store.apply(change)
    assert store.read_table("persons").empty
    assert store.read_table("organisations").owner_key.tolist() == ["org:1"]
    assert result.counts["cleanup"]["persons"]["deleted"] == 1
    assert result.counts["cleanup"]["organisations"]["deleted"] == 1
    assert sorted(store.read_table("agande").object_id) == ["o1", "o1"]


def test_personnummer_is_never_stored_unless_asked(store_location):
    location, schema = store_location
    base = _owners_delivery(
        "i1", "base", T, [("o1", "pnr:a")], [("pnr:a", False, "19500101-1234")], []
    )
    with open_store(location, create=True, schema=schema) as store:
        store.apply(base)
        persons = store.read_table("persons")
        assert "personnummer" not in persons.columns and "first_name" not in persons.columns
        assert store.ledger().personal_data.tolist() == [False]
    if not location.startswith("postgresql"):
        assert b"19500101-1234" not in Path(location).read_bytes()


def test_personal_data_kept_when_asked(store):
    base = _owners_delivery(
        "i1", "base", T, [("o1", "pnr:a")], [("pnr:a", False, "19500101-1234")], []
    )
    store.apply(base, personal_data=True)
    assert store.read_table("persons").personnummer.tolist() == ["19500101-1234"]
    assert store.ledger().personal_data.tolist() == [True]


# --- reading, versions, residences ------------------------------------------------------------


def test_data_version_changes_with_content_only(store):
    v0 = store.data_version
    base, change = base_and_change()
    store.apply(base)
    v1 = store.data_version
    store.apply(base)
    assert v0 != v1 == store.data_version
    store.apply(change)
    assert store.data_version != v1


def test_read_table_bbox_columns_where(store):
    base, _ = base_and_change()
    store.apply(base)
    everything = store.read_table("provisions")
    assert everything.crs.to_epsg() == 3006
    g = everything.geometry.iloc[4]
    box = g.buffer(1).bounds
    near = store.read_table("provisions", bbox=box)
    expected = everything[
        everything.geometry.intersects(shapely.box(*box).envelope)
        | everything.geometry.envelope.intersects(shapely.box(*box))
    ]
    assert set(near.provision_id) == set(expected.provision_id)
    assert everything.provision_id.iloc[4] in set(near.provision_id)
    some = store.read_table(
        "provisions", columns=["provision_id", "status"], where="status = 'gällande'"
    )
    assert list(some.columns) == ["provision_id", "status", "geometry"]
    assert set(some.provision_id) == set(everything[everything.status == "gällande"].provision_id)
    with pytest.raises(StoreError, match="no column"):
        store.read_table("provisions", columns=["nope"])
    with pytest.raises(StoreError, match="no table"):
        store.read_table("nope")


def test_round_trip_keeps_dtypes(store):
    base, _ = base_and_change()
    store.apply(base)
    sent = base.tables[BEST_SET]["provisions"]
    got = store.read_table("provisions")
    for col in sent.columns:
        if col == "geometry":
            continue
        assert got[col].dtype == sent[col].dtype or (col == "provision_type"), col
        pd.testing.assert_series_equal(
            got[col].astype(object), sent[col].astype(object), check_names=False, check_dtype=False
        )
    assert all(a.equals_exact(b, 0) for a, b in zip(got.geometry, sent.geometry, strict=True))


def residences(ids, seed=0):
    r = rng(seed)
    n = len(ids)
    return gpd.GeoDataFrame(
        {
            "id": np.asarray(ids, dtype="int64"),
            "municipality_code": pd.array(
                [f"{m:04d}" for m in r.integers(114, 2584, n)], dtype="str"
            ),
            "rooms": pd.array(r.integers(1, 7, n), dtype="Int16"),
            "living_area": r.uniform(20, 200, n).round(1),
            "kitchen_type": pd.Categorical(r.choice(["kök", "kokvrå"], n)),
            "number": [[1, 3, None], [], [7]] * (n // 3) + [[2]] * (n % 3),
            "updated_at": pd.to_datetime(["2024-05-01"] * n).astype("datetime64[ms]"),
            "coord_source": pd.Categorical(
                ["sweref99"] * n, categories=["sweref99", "rt90", "wgs84"]
            ),
        },
        geometry=shapely.points(r.uniform(3e5, 9e5, n), r.uniform(6.2e6, 7.6e6, n)),
        crs=3006,
    )


def test_residences_replace_and_upsert(store):
    first = residences(range(1, 7))
    res = store.load_residences(first, mode="replace")
    assert res.counts["residences"]["residences"] == {"deleted": 0, "inserted": 6}
    got = store.read_table("residences")
    assert got.id.tolist() == list(range(1, 7))
    assert str(got.rooms.dtype) == "Int16" and str(got.kitchen_type.dtype) == "category"
    assert got.number.tolist() == first.number.tolist()
    assert got.updated_at.dtype == "datetime64[ms]"
    assert all(a.equals_exact(b, 0) for a, b in zip(got.geometry, first.geometry, strict=True))
    v = store.data_version
    upd = residences([5, 6, 7, 8], seed=3)
    store.load_residences(upd, mode="upsert")
    got = store.read_table("residences").set_index("id")
    assert sorted(got.index) == list(range(1, 9))
    assert got.loc[7, "living_area"] == upd.set_index("id").loc[7, "living_area"]
    assert got.loc[1, "living_area"] == first.set_index("id").loc[1, "living_area"]
    assert store.data_version != v
    store.load_residences(residences([42]), mode="replace")
    assert store.read_table("residences").id.tolist() == [42]
    with pytest.raises(SchemaError, match="more than once"):
        store.load_residences(residences([1, 1]), mode="upsert")
    assert store.read_table("residences").id.tolist() == [42]
    assert store.ledger().extract_type.tolist() == ["replace", "upsert", "replace"]


def test_local_zone_geometries_are_stored_in_3006(store):
    import pyproj

    base, _ = base_and_change()
    prov = base.tables[BEST_SET]["provisions"]
    local = prov.to_crs(3010)
    d = MemoryDelivery("bestammelse", "z1", "base", T, {BEST_SET: {"provisions": local}}, crs=3010)
    store.apply(d)
    got = store.read_table("provisions")
    tr = pyproj.Transformer.from_crs(3010, 3006, always_xy=True)
    x, y = shapely.get_coordinates(local.geometry.values).T
    want = np.column_stack(tr.transform(x, y))
    np.testing.assert_allclose(shapely.get_coordinates(got.geometry.values), want, atol=1e-6)


def test_open_store_refuses_what_is_not_a_store(tmp_path):
    with pytest.raises(StoreError, match="no store at"):
        open_store(tmp_path / "absent.gpkg")
    text = tmp_path / "notes.gpkg"
    text.write_text("hello")
    with pytest.raises(StoreError, match="not a GeoPackage"):
        open_store(text, create=True)
    with pytest.raises(StoreError, match="directory"):
        open_store(tmp_path, create=True)
