"""Weeks of a subscription through the store, checked against the independent reference model.

The deliveries come from vggeo's generator with ``variety=True``: Berörkrets-only and
Basinformation-only changes, provisions re-sent unchanged, deletions of identities never
delivered, empty extracts, and properties whose mortgages and rights are all cancelled. After
every delivery the store (GeoPackage and PostGIS) must hold exactly what ``reference.py`` —
lxml over the ZIP files and the seeds' rules, no vggeo code — says.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import reference
import shapely
from click.testing import CliRunner

from vggeo.cli import cli
from vggeo.errors import IntegrityError
from vggeo.lm import open_delivery
from vggeo.sample.delivery import generate_deliveries
from vggeo.store import MemoryDelivery, open_store


@pytest.fixture(scope="module")
def bestammelse_weeks(tmp_path_factory) -> list[Path]:
    return generate_deliveries(
        tmp_path_factory.mktemp("refb"),
        product="bestammelse",
        n=150,
        changes=4,
        seed=21,
        variety=True,
    )


@pytest.fixture(scope="module")
def inskrivning_weeks(tmp_path_factory) -> list[Path]:
    return generate_deliveries(
        tmp_path_factory.mktemp("refi"),
        product="inskrivning",
        n=100,
        changes=4,
        seed=22,
        variety=True,
    )


def _none(v):
    return None if v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v)) else v


def assert_bestammelse(store, want: dict, step: str) -> None:
    prov = store.read_table("provisions")
    base = {i: e for i, e in want.items() if "basinformation" in e}
    assert sorted(prov["provision_id"]) == sorted(base), f"{step}: provision identities"
    for row in prov.itertuples():
        e = base[row.provision_id]
        b = e["basinformation"]
        got = {k: _none(getattr(row, k)) for k in ("status", "designation", "name", "municipality")}
        assert got == {k: b[k] for k in got}, f"{step}: {row.provision_id} attributes"
        assert _none(row.object_version) == b["object_version"], (
            f"{step}: {row.provision_id} version"
        )
        assert str(row.provision_type).replace("_", "") == e["type"], (
            f"{step}: {row.provision_id} type"
        )
        g = row.geometry
        assert (g is not None and not g.is_empty) == bool(b["points"]), (
            f"{step}: {row.provision_id} geometry"
        )
        if b["points"]:
            pts = shapely.points(np.asarray(b["points"]))
            far = shapely.distance(g.boundary, pts).max()
            assert far < 0.01, f"{step}: {row.provision_id} geometry is {far:.3f} m off its posList"
    dec = store.read_table("decisions")
    got = defaultdict(list)
    for p, d in zip(dec["provision_id"], dec["decision_id"], strict=True):
        got[p].append(d)
    assert {p: sorted(v) for p, v in got.items()} == {
        i: b["basinformation"]["decisions"]
        for i, b in base.items()
        if b["basinformation"]["decisions"]
    }, f"{step}: decisions"
    aff = store.read_table("affected_properties")
    got = defaultdict(list)
    for p, r in zip(aff["provision_id"], aff["register_unit_id"], strict=True):
        got[p].append(r)
    assert {p: sorted(v) for p, v in got.items()} == {
        i: e["berorkrets"] for i, e in want.items() if e.get("berorkrets")
    }, f"{step}: berörkrets"


_TABLE = {
    "agande": "agande",
    "fastighetsagandeforandring": "forvarv",
    "inteckning": "inteckning",
    "avtalsrattighet": "avtalsrattighet",
    "anteckning": "anteckning",
    "tomtrattsupplatelse": "tomtrattsupplatelse",
}
_COLUMN = {
    "agande": "diary_number",
    "forvarv": "act_number",
    "inteckning": "diary_number",
    "avtalsrattighet": "act_number",
    "anteckning": "registered_on",
    "tomtrattsupplatelse": "granted_on",
}


def _as_text(v) -> str:
    v = _none(v)
    if v is None or v is pd.NaT:
        return ""
    return v.date().isoformat() if isinstance(v, pd.Timestamp) else str(v)


def assert_inskrivning(store, want: dict, step: str) -> None:
    fast = store.read_table("inskrivningsfastighet")
    assert sorted(fast["object_id"]) == sorted(want.get("inskrivningsfastighet", {})), (
        f"{step}: properties"
    )
    for s, objs in want.items():
        for child, table in ((c, _TABLE[c]) for c in reference.INSKRIVNING_CHILDREN[s]):
            frame = store.read_table(table)
            got = defaultdict(list)
            for o, v in zip(frame["object_id"], frame[_COLUMN[table]], strict=True):
                got[o].append(_as_text(v))
            expect = {o: v[child] for o, v in objs.items() if v[child]}
            assert {o: sorted(v) for o, v in got.items()} == expect, f"{step}: {table}"


def test_generated_weeks_have_the_cases(bestammelse_weeks, inskrivning_weeks):
    """The sequences hold every case the rules distinguish (else the comparison proves less)."""
    seen = set()
    for path in bestammelse_weeks[1:]:
        (s,) = reference.read_zip(path)
        if not s["members"]:
            seen.add("empty change")
        for m in s["members"]:
            seen.add("+".join(sorted(reference.provision(m)[2])))
    state: dict = {}
    for path in bestammelse_weeks:
        (s,) = reference.read_zip(path)
        if set(s["deleted"]) - set(state):
            seen.add("unknown deletion")
        before = state
        state = reference.apply_bestammelse(state, path)
        if any(
            before.get(i) == state.get(i) for i in (reference.provision(m)[0] for m in s["members"])
        ):
            seen.add("unchanged re-sent")
    assert {
        "berorkrets",
        "basinformation",
        "basinformation+berorkrets",
        "empty change",
        "unknown deletion",
        "unchanged re-sent",
    } <= seen
    state = {}
    emptied = False
    for path in inskrivning_weeks:
        before = state
        state = reference.apply_inskrivning(state, path)
        emptied |= any(
            before.get("inteckning", {}).get(o, {}).get("inteckning") and not v["inteckning"]
            for o, v in state.get("inteckning", {}).items()
        )
    assert emptied, "no property lost all its mortgages"


def test_bestammelse_weeks_match_the_reference(store, bestammelse_weeks):
    want: dict = {}
    for path in bestammelse_weeks:
        want = reference.apply_bestammelse(want, path)
        with open_delivery(path) as d:
            assert store.apply(d).applied
        assert_bestammelse(store, want, path.name)


def test_inskrivning_weeks_match_the_reference(store, inskrivning_weeks):
    want: dict = {}
    for path in inskrivning_weeks:
        want = reference.apply_inskrivning(want, path)
        with open_delivery(path) as d:
            assert store.apply(d).applied
        assert_inskrivning(store, want, path.name)


def test_ingest_of_the_weeks_matches_the_reference(tmp_path, bestammelse_weeks):
    """The same through the command line, one ingest per week; no provision left hollow."""
    location = tmp_path / "weeks.gpkg"
    want: dict = {}
    for path in bestammelse_weeks:
        want = reference.apply_bestammelse(want, path)
        r = CliRunner().invoke(cli, ["ingest", str(path), "--store", str(location)])
        assert r.exit_code == 0, r.output
        with open_store(location) as store:
            assert_bestammelse(store, want, path.name)
            prov = store.read_table("provisions")
            assert not (prov["status"].isna() | prov.geometry.is_empty).any()


def test_bundled_sample_keeps_every_provision_whole(sample_data, tmp_path):
    """The three bundled bestämmelse deliveries: no provision with an empty geometry or no status
    (a Berörkrets-only change used to leave 48 of them)."""
    paths = sorted((sample_data / "deliveries" / "bestammelse").glob("*.zip"))
    want: dict = {}
    with open_store(tmp_path / "s.gpkg", create=True) as store:
        for path in paths:
            want = reference.apply_bestammelse(want, path)
            with open_delivery(path) as d:
                store.apply(d)
        assert_bestammelse(store, want, "sample")
        prov = store.read_table("provisions")
        assert len(prov) == 1546
        assert int((prov["status"].isna() | prov.geometry.is_empty).sum()) == 0


def test_a_repeated_identity_is_named_with_its_file(store):
    """Two rows of one owner key in the persons file: one line naming the file and the identity."""
    persons = pd.DataFrame(
        {
            "owner_key": pd.array(["pnr:aa", "pnr:bb", "pnr:aa"], dtype="string"),
            "protected": [False, False, False],
        }
    )

    class Named(MemoryDelivery):
        def data_files(self, set_name):
            return [type("F", (), {"label": "x.zip!folkbokford_person_organisation.xml"})()]

    d = Named(
        "inskrivning",
        "e1",
        "base",
        pd.Timestamp("2026-01-05", tz="UTC").to_pydatetime(),
        {"folkbokford_person_organisation": {"persons": persons}},
    )
    with pytest.raises(IntegrityError) as err:
        store.apply(d)
    msg = str(err.value)
    assert "folkbokford_person_organisation.xml" in msg and "pnr:aa" in msg and "\n" not in msg
    assert store.counts()["persons"] == 0 and store.ledger().empty
