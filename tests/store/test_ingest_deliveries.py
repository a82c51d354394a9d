"""``vggeo.store.ingest.ingest_deliveries``: what ``vggeo ingest`` does, from Python."""

from __future__ import annotations

import pytest

from vggeo.errors import VggeoError
from vggeo.sample.delivery import generate_deliveries
from vggeo.store import open_store
from vggeo.store.ingest import ingest_deliveries


@pytest.fixture(scope="module")
def deliveries(tmp_path_factory):
    return generate_deliveries(
        tmp_path_factory.mktemp("d"), product="bestammelse", n=40, changes=2, seed=3
    )


def test_applies_in_production_order_and_reports_each(deliveries, tmp_path):
    store = tmp_path / "s.gpkg"
    seen = []
    done = ingest_deliveries(
        reversed(deliveries), store, on_applied=lambda p, r: seen.append((p.name, r.applied))
    )
    assert [p.name for p, _ in done] == [p.name for p in deliveries]
    assert seen == [(p.name, True) for p in deliveries]
    again = ingest_deliveries(deliveries[:1], store)
    assert not again[0][1].applied  # applied before: skipped
    with open_store(store) as s:
        assert len(s.ledger()) == len(deliveries)


def test_a_refused_first_delivery_leaves_no_store(deliveries, tmp_path):
    store = tmp_path / "s.gpkg"
    with pytest.raises(VggeoError) as err:
        ingest_deliveries(deliveries[1:2], store)  # a change without its base
    assert deliveries[1].name in str(err.value)
    assert not store.exists()
