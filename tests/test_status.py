"""vggeo.status: ``vggeo store status`` and ``vggeo ingest``'s lines, as library calls.

Oracle: the GeoPackage read with sqlite3 directly (row counts, ledger rows).
"""

from __future__ import annotations

import sqlite3

from vggeo.lm import open_delivery
from vggeo.status import applied_lines, store_status
from vggeo.store import open_store


def test_status_counts_and_ledger_match_the_file(tmp_path, sample_data):
    base = sorted((sample_data / "deliveries" / "bestammelse").glob("000_base_*.zip"))[0]
    path = tmp_path / "s.gpkg"
    with open_store(path, create=True) as store, open_delivery(base) as delivery:
        result = store.apply(delivery)
    lines = applied_lines(base.name, result)
    assert lines[0] == f"{base.name}: {result.message}"
    assert any("provisions -0/+" in line for line in lines[1:])

    report = store_status(path)
    doc = report.to_dict()
    with sqlite3.connect(path) as conn:
        for table, n in doc["counts"].items():
            assert conn.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0] == n
        ledger_rows = conn.execute("SELECT count(*) FROM vggeo_ledger").fetchone()[0]
    assert len(doc["ledger"]) == ledger_rows == 1
    assert list(doc["last_extract"]) == [doc["ledger"][0]["product"]]
    text = report.to_text()
    assert text.splitlines()[0] == f"store: {doc['store']} ({doc['backend']})"
    assert f"data version: {doc['data_version']}" in text
    assert doc["ledger"][0]["extract_id"] in text
