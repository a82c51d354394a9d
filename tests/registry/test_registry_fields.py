"""The declared field list matches Valueguard's documented one (fixture derived from seed 000)."""

from __future__ import annotations

from pathlib import Path

from vggeo.codes import CODE_LISTS
from vggeo.registry.fields import FIELDS, SEARCH_CRITERIA, field

DATA = Path(__file__).parent / "data"


def _documented():
    rows = []
    for line in (DATA / "field_list.tsv").read_text().splitlines():
        if line and not line.startswith("#"):
            name, typ = line.split("\t")
            rows.append((name, typ))
    return rows


def test_every_documented_field_is_declared_in_order():
    doc = _documented()
    assert [f.name for f in FIELDS] == [n for n, _ in doc]
    for f, (_, typ) in zip(FIELDS, doc, strict=True):
        assert f.source_type.replace("tinyiny", "tinyint") == typ.replace("tinyiny", "tinyint")


def test_only_id_is_required_and_code_fields_have_lists():
    assert [f.name for f in FIELDS if not f.nullable] == ["id"]
    for f in FIELDS:
        if f.kind == "code":
            assert (f.codes or f.name) in CODE_LISTS, f.name
            assert f.dtype == "category"
    assert field("sweref99x").description.lower().startswith("sweref 99 tm **northing**")


def test_search_criteria_match_the_documented_list():
    doc = [
        ln
        for ln in (DATA / "search_criteria.txt").read_text().splitlines()
        if ln and not ln.startswith("#")
    ]
    assert sorted(SEARCH_CRITERIA) == sorted(doc)
