"""National-scale reads go in batches; the result must equal a one-piece read, row numbers too."""

from __future__ import annotations

import json

import numpy as np
import pytest
from test_registry_readers import _assert_same

from vggeo.errors import SchemaError
from vggeo.registry import readers
from vggeo.registry.readers import CodeWarning, read_registry, write_registry
from vggeo.sample.registry import generate_registry


@pytest.fixture
def tiny_batches(monkeypatch):
    monkeypatch.setattr(readers, "_STREAM_ROWS", 100)
    monkeypatch.setattr(readers, "_STREAM_BLOCK", 32 << 10)


@pytest.fixture(scope="module")
def defective():
    return generate_registry(1500, seed=21, defects=0.01)


@pytest.mark.parametrize("ext", ["jsonl", "csv"])
def test_batched_read_equals_whole_read(defective, tmp_path, ext, tiny_batches, monkeypatch):
    path = write_registry(defective, tmp_path / f"r.{ext}")
    with pytest.warns(CodeWarning) as rec:
        batched = read_registry(path)
    assert len([w for w in rec if w.category is CodeWarning]) == 1  # one warning, not one per batch
    monkeypatch.setattr(readers, "_STREAM_ROWS", 10**9)
    monkeypatch.setattr(readers, "_STREAM_BLOCK", 1 << 30)
    with pytest.warns(CodeWarning):
        whole = read_registry(path)
    _assert_same(batched, whole)
    assert batched.attrs["unknown_codes"] == whole.attrs["unknown_codes"]
    assert batched.attrs["unknown_codes"]["kitchen_type"]["count"] == len(
        defective.attrs["defects"]["unknown_codes"]
    )


def test_duplicate_ids_across_batches_name_the_later_row(defective, tmp_path, tiny_batches):
    lines = write_registry(defective, tmp_path / "r.jsonl").read_text().splitlines()
    rec = json.loads(lines[1300])
    rec["id"] = json.loads(lines[3])["id"]
    lines[1300] = json.dumps(rec)
    (tmp_path / "d.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(SchemaError, match="not unique") as err:
        read_registry(tmp_path / "d.jsonl")
    assert err.value.row == 1301 and ":4" in str(err.value)


def test_wrong_type_in_a_late_batch_is_found(tmp_path, tiny_batches):
    clean = generate_registry(1500, seed=21)  # strict refuses at the first violation of any kind
    lines = write_registry(clean, tmp_path / "r.jsonl").read_text().splitlines()
    rec = json.loads(lines[1234])
    rec["floor"] = "third"
    lines[1234] = json.dumps(rec)
    (tmp_path / "w.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(SchemaError) as err:
        read_registry(tmp_path / "w.jsonl", strict=True)
    assert (err.value.row, err.value.field, err.value.value) == (1235, "floor", "third")
    # Without strict the file is read again chunk by chunk and only the bad value is lost.
    with pytest.warns(UserWarning):
        g, rejects = read_registry(tmp_path / "w.jsonl", with_rejects=True)
    assert len(g) == len(clean) and np.isnan(g["floor"].iloc[1234])
    typed = rejects[rejects["rule"] == "wrong_type"]
    assert typed[["row", "field", "value"]].values.tolist() == [[1235, "floor", "third"]]


def _record(i: int, **extra) -> dict:
    return {
        "id": i,
        "sweref99x": 6580661.0 + i,
        "sweref99y": 677445.0,
        "county_code": "01",
        "municipality_code": "80",
        **extra,
    }


def test_a_field_first_seen_late_is_kept_with_every_value(tmp_path, monkeypatch):
    """Writers that leave out null keys: ``rooms`` and ``owner_id`` appear from record 101 on,
    after the records the reader samples for keys, and in a later batch than the first. Every
    value is read, the earlier records have them null, and the batches agree with one piece."""
    path = tmp_path / "sparse.jsonl"
    with path.open("w") as fh:
        for i in range(1, 301):
            late = {"rooms": 3, "owner_id": "556036-0793"} if i > 100 else {}
            fh.write(json.dumps(_record(i, **late)) + "\n")
    whole = read_registry(path)
    monkeypatch.setattr(readers, "_STREAM_ROWS", 100)
    monkeypatch.setattr(readers, "_STREAM_BLOCK", 4 << 10)
    batched = read_registry(path)
    for g in (whole, batched):
        assert len(g) == 300
        assert g["rooms"].notna().sum() == 200 and set(g["rooms"].dropna()) == {3}
        assert g["rooms"].iloc[:100].isna().all()
        assert g["owner_id"].notna().sum() == 200
    _assert_same(batched, whole)


def test_a_blank_first_line_loses_nothing(tmp_path):
    path = tmp_path / "blank.jsonl"
    path.write_text("\n" + "".join(json.dumps(_record(i, rooms=2)) + "\n" for i in (1, 2, 3)))
    g = read_registry(path)
    assert g["id"].tolist() == [1, 2, 3] and g["rooms"].tolist() == [2, 2, 2]


def test_an_input_without_an_id_field_is_refused(tmp_path):
    path = tmp_path / "noid.csv"
    path.write_text("sweref99x,sweref99y\n6580661,677445\n")
    with pytest.raises(SchemaError, match="every residence needs an id") as err:
        read_registry(path)
    assert err.value.field == "id" and err.value.row == 2


def test_a_column_named_index_is_dropped_only_when_it_is_one(tmp_path):
    data = tmp_path / "data.csv"
    data.write_text("id,index,sweref99x,sweref99y\n1,A-17,6580661,677445\n2,B-03,6580662,677446\n")
    with pytest.warns(UserWarning, match="index"):
        g = read_registry(data)
    assert g["index"].tolist() == ["A-17", "B-03"]
    saved = tmp_path / "saved.csv"  # pandas' to_csv() with its index: dropped
    saved.write_text(",id,sweref99x,sweref99y\n0,1,6580661,677445\n1,2,6580662,677446\n")
    g = read_registry(saved)
    assert list(g.columns[:3]) == ["id", "sweref99x", "sweref99y"] and "" not in g.columns


def test_csv_columns_outside_the_field_list_are_kept_as_written(tmp_path):
    path = tmp_path / "extra.csv"
    path.write_text(
        "id,sweref99x,sweref99y,customer_ref,fnr\n"
        "1,6580661,677445,000123,0180-1234\n"
        "2,6580662,677446,004567,0180-2345\n"
    )
    with pytest.warns(UserWarning, match="customer_ref"):
        g = read_registry(path)
    assert g["customer_ref"].tolist() == ["000123", "004567"]  # not the numbers 123 and 4567
    assert g["fnr"].tolist() == ["0180-1234", "0180-2345"]
