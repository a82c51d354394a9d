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
