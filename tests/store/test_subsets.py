"""Per-subset "delete, then add" (seed 004) and per-set replacement of inskrivning (seed 003),
on hand-made parsed deliveries, both backends."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pandas as pd
from deliveries import BEST_SET, bestammelse, pid

from vggeo.store import MemoryDelivery

T = datetime(2026, 1, 5, 4, 30)
WEEK = timedelta(days=7)


def test_berorkrets_only_in_a_base_writes_no_provision_row(store):
    d = bestammelse(
        "b1",
        "base",
        T,
        [pid(1), pid(2)],
        np.random.default_rng(1),
        subsets={pid(1): {"berorkrets"}, pid(2): {"basinformation", "berorkrets"}},
    )
    store.apply(d)
    assert store.read_table("provisions").provision_id.tolist() == [pid(2)]
    want = set(d.tables[BEST_SET]["affected"].provision_id)
    assert set(store.read_table("affected_properties").provision_id) == want


def test_berorkrets_only_twice_keeps_the_basinformation_and_geometry(store):
    store.apply(bestammelse("b1", "base", T, [pid(1)], np.random.default_rng(1)))
    before = store.read_table("provisions")
    for k in (1, 2):
        store.apply(
            bestammelse(
                f"c{k}",
                "change",
                T + k * WEEK,
                [pid(1)],
                np.random.default_rng(k + 1),
                previous="b1" if k == 1 else "c1",
                subsets={pid(1): {"berorkrets"}},
            )
        )
    after = store.read_table("provisions")
    assert after.drop(columns="geometry").equals(before.drop(columns="geometry"))
    assert after.geometry.iloc[0].equals(before.geometry.iloc[0])


def test_a_member_row_with_values_counts_as_its_subset(store):
    """A reader that missed the subset but delivered Basinformation values: written, not dropped."""
    store.apply(bestammelse("b1", "base", T, [pid(1)], np.random.default_rng(1)))
    d = bestammelse("c1", "change", T + WEEK, [pid(1)], np.random.default_rng(5), previous="b1")
    d.tables[BEST_SET]["subsets"] = d.tables[BEST_SET]["subsets"].query("subset == 'berorkrets'")
    store.apply(d)
    got = store.read_table("provisions").set_index("provision_id")
    want = d.tables[BEST_SET]["provisions"].set_index("provision_id")
    assert got.loc[pid(1), "designation"] == want.loc[pid(1), "designation"]
    assert len(got) == 1


def _insk(eid, kind, when, mortgages, present, previous=None):
    frame = pd.DataFrame(
        {
            "object_id": [o for o, _ in mortgages],
            "property_id": [f"p-{o}" for o, _ in mortgages],
            "diary_number": [n for _, n in mortgages],
        }
    )
    subsets = pd.DataFrame({"object_id": present, "subset": "inteckning"})
    return MemoryDelivery(
        "inskrivning",
        eid,
        kind,
        when,
        {"inteckning": {"inteckning": frame, "subsets": subsets}},
        removed={"inteckning": set()} if kind == "change" else {},
        previous_extract_id=previous,
    )


def test_an_inskrivning_object_sent_without_rows_loses_them(store):
    store.apply(_insk("b1", "base", T, [("o1", "1"), ("o1", "2"), ("o2", "3")], ["o1", "o2"]))
    # o1 re-sent with no mortgage left (all cancelled); o2 not in the change: untouched
    store.apply(_insk("c1", "change", T + WEEK, [], ["o1"], previous="b1"))
    assert store.read_table("inteckning")[["object_id", "diary_number"]].values.tolist() == [
        ["o2", "3"]
    ]
