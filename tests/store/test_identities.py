"""One identity, one row: the store names an identity that would occur twice, on both backends.

The readers refuse a provision identity twice in a delivery already (``tests/lm``); the store
checks again for any caller that builds its tables itself, and names the identity instead of the
database's "UNIQUE constraint failed".
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pandas as pd
import pytest
from hostile import data_file, ident, polygon, provision

from vggeo.errors import IntegrityError, StoreError
from vggeo.lm import read_bestammelser
from vggeo.store import MemoryDelivery


def _tables(tmp_path: Path, n: int = 5) -> dict[str, pd.DataFrame]:
    f = tmp_path / "markreglerandebestammelse_1.xml"
    f.write_bytes(data_file([provision(ident(i), polygon()) for i in range(n)]))
    return read_bestammelser(f).tables()


def _delivery(tables, extract_id: str, kind: str = "base", day: int = 5) -> MemoryDelivery:
    return MemoryDelivery(
        product="bestammelse",
        extract_id=extract_id,
        extract_type=kind,
        produced_at=datetime(2026, 1, day, 4),
        tables={"markreglerandebestammelse": tables},
    )


def test_identity_twice_in_the_tables_is_named_and_nothing_written(store, tmp_path):
    tables = _tables(tmp_path)
    store.apply(_delivery(tables, "b1"))
    before = (store.counts(), store.data_version)
    twice = dict(tables)
    twice["provisions"] = pd.concat(
        [tables["provisions"], tables["provisions"].iloc[[2]]], ignore_index=True
    )
    with pytest.raises(IntegrityError, match=f"identity {ident(2)} occurs more than once"):
        store.apply(_delivery(twice, "c1", "change", 12))
    assert (store.counts(), store.data_version) == before


def test_a_row_the_store_holds_already_is_named(store, tmp_path):
    tables = _tables(tmp_path)
    store.apply(_delivery(tables, "b1"))
    with pytest.raises(StoreError, match=ident(3)), store._transaction():
        store._insert("provisions", tables["provisions"].iloc[[3]])
    assert store.counts()["provisions"] == 5
