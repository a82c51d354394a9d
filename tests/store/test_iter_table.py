"""``Store.iter_table``: a table in batches is the table ``read_table`` returns, cut into pieces.

On GeoPackage the batches come through GDAL's Arrow reader and ``read_table`` through SQLite
itself: two independent readings of the same file, which must agree value for value and dtype for
dtype. On PostGIS they are a server-side cursor and a plain query.
"""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from vggeo.errors import StoreError
from vggeo.sample.registry import generate_registry
from vggeo.store import MemoryDelivery


def _odd_columns(reg: pd.DataFrame) -> pd.DataFrame:
    """The registry with extra columns of every kind the store restores, missing values in each."""
    n = len(reg)
    rng = np.random.default_rng(5)
    missing = rng.random(n) < 0.2
    out = reg.copy()
    out["flag"] = pd.array(np.where(missing, None, rng.random(n) < 0.5), dtype="boolean")
    out["small"] = pd.array(np.where(missing, None, rng.integers(-100, 100, n)), dtype="Int8")
    when = pd.Timestamp("2024-03-31 00:30", tz="Europe/Stockholm") + pd.to_timedelta(
        rng.integers(0, 10**6, n), unit="s"
    )
    out["seen_at"] = pd.Series(when).where(~missing).to_numpy()
    out["tags"] = [None if m else ["a", {"k": int(i)}] for i, m in enumerate(missing)]
    out["grade"] = pd.Categorical(rng.choice([3, 1, 2], n))
    out.loc[out.index[::40], "geometry"] = None
    return out


def _whole(batches) -> pd.DataFrame:
    return pd.concat(list(batches), ignore_index=True)


@pytest.fixture
def filled(store):
    reg = _odd_columns(generate_registry(300, seed=5))
    store.load_residences(reg)
    from exports.frames import affected, provisions

    prov = provisions(40)
    store.apply(
        MemoryDelivery(
            product="bestammelse",
            extract_id="it-1",
            extract_type="base",
            produced_at=datetime(2025, 1, 6, tzinfo=UTC),
            tables={
                "markreglerandebestammelse": {
                    "provisions": prov,
                    "affected_properties": affected(prov),
                }
            },
        )
    )
    return store


@pytest.mark.parametrize("table", ["residences", "provisions", "affected_properties"])
@pytest.mark.parametrize("batch_size", [1, 37, 10**9])
def test_batches_make_up_the_table(filled, table, batch_size):
    whole = filled.read_table(table)
    batches = list(filled.iter_table(table, batch_size=batch_size))
    assert all(0 < len(b) <= batch_size for b in batches)
    assert sum(len(b) for b in batches) == len(whole)
    pd.testing.assert_frame_equal(_whole(batches), whole)


def test_columns_and_filters_as_read_table(filled):
    cols = ["id", "home_type", "flag", "tags"]
    where = "\"home_type\" = 'villa'"
    got = _whole(filled.iter_table("residences", batch_size=25, columns=cols, where=where))
    pd.testing.assert_frame_equal(got, filled.read_table("residences", columns=cols, where=where))
    assert len(got) and list(got.columns) == [*cols, "geometry"]
    bbox = tuple(filled.read_table("residences").geometry.dropna().iloc[0].buffer(5000).bounds)
    got = _whole(filled.iter_table("residences", batch_size=10, bbox=bbox, columns=["id"]))
    pd.testing.assert_frame_equal(got, filled.read_table("residences", bbox=bbox, columns=["id"]))


def test_an_empty_result_gives_no_batch(filled):
    assert list(filled.iter_table("residences", where="1 = 0")) == []


def test_bad_requests_are_refused(filled):
    with pytest.raises(StoreError, match="no column"):
        list(filled.iter_table("residences", columns=["nope"]))
    with pytest.raises(StoreError, match="at least 1"):
        list(filled.iter_table("residences", batch_size=0))
