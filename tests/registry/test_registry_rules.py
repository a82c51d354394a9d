"""Every documented rule of the field list: quoted from its source, checked, and one bad row never
sinks a load (the value is nulled or kept flagged, listed as a reject, counted; strict refuses).

The expectations below are written from Valueguard's field list (seed 000) and Lantmäteriet's
description of the dwelling register (seed 001), value by value; none is computed with vggeo.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from vggeo.codes import CODE_LISTS
from vggeo.errors import CodeError, RuleError, SchemaError
from vggeo.registry.checks import check_registry
from vggeo.registry.readers import read_api_pages, read_registry
from vggeo.registry.rules import RULES

DATA = Path(__file__).parent / "data"


def _norm(text: str) -> str:
    # The seed spells tinyint "tinyiny" twice; the field list corrects it.
    return " ".join(text.replace("tinyiny", "tinyint").split())


def test_every_rule_quotes_its_source_word_for_word():
    source = _norm(DATA.joinpath("documented_rules.txt").read_text(encoding="utf-8"))
    for r in RULES.values():
        assert r.quotes, r.id
        for field_name, quote in r.quotes.items():
            assert _norm(quote) in source, (r.id, field_name, quote)
    for name, cl in CODE_LISTS.items():
        assert _norm(cl.quote) in source, name


def _page(records):
    return {
        "residences": records,
        "meta_data": {"offset": 0, "response_rows": len(records), "total_nr_records": len(records)},
    }


def _load(records, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return read_api_pages([_page(records)], with_rejects=True, **kw)


def _flat(raw_records, i=None):
    """A flat (home_type lägenhet) to edit, and its position."""
    recs = [dict(r) for r in raw_records[:40]]
    if i is None:
        i = next(k for k, r in enumerate(recs) if r["home_type"] == "lägenhet" and k > 2)
    return recs, i


# (rule, field, value written into one row, action, the value the canonical frame then holds)
CASES = [
    ("deleted_in_registry", "deleted", 1, "kept", 1),
    ("updated_from_public_data", "updated_from", "ads", "kept", "ads"),
    ("probability_deleted_range", "probability_deleted", 1.5, "nulled", None),
    ("probability_deleted_range", "probability_deleted", -0.25, "nulled", None),
    ("probability_deleted_range", "probability_deleted", 0.755, "nulled", None),
    ("standard_points_range", "standard_points", 70, "nulled", None),
    ("standard_points_range", "standard_points", -1, "nulled", None),
    ("owner_id_format", "owner_id", "769613-3376", "nulled", None),  # check digit 5, not 6
    ("owner_id_format", "owner_id", "76961-33375", "nulled", None),
    ("owner_id_format", "owner_id", "brf solen", "nulled", None),
    ("postal_code_format", "postal_code", "6534", "nulled", None),
    ("postal_code_format", "postal_code", "SE-65341", "nulled", None),
    ("code_format", "county_code", "5A", "nulled", None),
    ("code_format", "municipality_code", "131", "nulled", None),
    ("code_format", "parish_code", "x2", "nulled", None),
    ("code_format", "property_key", "1700537491234", "nulled", None),
    ("county_code_known", "county_code", "02", "kept", "02"),
    ("county_code_known", "county_code", "99", "kept", "99"),
    ("text_length", "letter", "ABCDEF", "kept", "ABCDEF"),
    ("text_length", "entrance", "U1-BAK", "kept", "U1-BAK"),
    ("text_length", "postal_area", "K" * 41, "kept", "K" * 41),
    ("house_nr_min", "house_nr", 0, "nulled", None),
    ("non_negative", "living_space", -5.0, "nulled", None),
    ("non_negative", "apartment_area", -5, "nulled", None),
    ("non_negative", "rooms", -1.0, "nulled", None),
    ("non_negative", "plot_area", -896, "nulled", None),
    ("bad_apartment_numbers", "apartment_nr", 1100, "kept", 1100),  # position 00
    ("bad_apartment_numbers", "apartment_nr", 12, "kept", 12),  # floor code 00
    ("unknown_codes", "kitchen_type", 7, "kept", 7),
    ("unknown_codes", "home_type", "slott", "kept", "slott"),
    ("wrong_type", "rooms", "three", "nulled", None),
    ("wrong_type", "construction_year", 1962.5, "nulled", None),
    ("wrong_type", "updated_at", "2016-13-45", "nulled", None),
    ("wrong_type", "number", "7 B", "nulled", None),
    ("wrong_type", "apartment_area", 40000, "nulled", None),  # beyond smallint
]


@pytest.mark.parametrize(
    ("rule_id", "field", "value", "action", "held"),
    CASES,
    ids=[f"{c[0]}-{c[1]}-{c[2]!r}"[:60] for c in CASES],
)
def test_a_broken_rule_is_a_reject_not_a_failure(raw_records, rule_id, field, value, action, held):
    recs, i = _flat(raw_records)
    recs[i][field] = value
    g, rejects = _load(recs)
    assert len(g) == len(recs)  # every row kept
    mine = rejects[(rejects["rule"] == rule_id) & (rejects["field"] == field)]
    assert mine["row"].tolist() == [i + 1] and mine["id"].tolist() == [recs[i]["id"]]
    assert mine["action"].tolist() == [action]
    assert mine["reason"].iloc[0] == RULES[rule_id].summary
    got = g[field].iloc[i]
    if held is None:
        assert got is None or pd.isna(got)
    elif isinstance(held, str):
        assert str(got) == held
    else:
        assert float(got) == float(held)
    # The original value is in the rejects, as text.
    assert mine["value"].iloc[0].strip('[]"') == str(value).strip() or float(
        mine["value"].iloc[0]
    ) == float(value)
    # check counts it as a problem; strict refuses naming the row and field.
    rep = check_registry(g, rejects=rejects)
    assert rep.summary[rule_id] >= 1 and not rep.ok and rep.exit_code == 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises((RuleError, SchemaError, CodeError)) as err:
            read_api_pages([_page(recs)], strict=True)
    assert err.value.field == field and err.value.row == i + 1


def test_the_clean_rows_around_a_reject_are_untouched(raw_records, small_registry):
    recs, i = _flat(raw_records)
    recs[i]["probability_deleted"] = 1.5
    g, _ = _load(recs)
    clean = small_registry.iloc[:40]
    others = np.arange(len(recs)) != i
    assert (
        g["probability_deleted"].to_numpy()[others].tolist()
        == clean["probability_deleted"].to_numpy()[others].tolist()
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("769613-3375", "769613-3375"),  # seed 000's example
        ("7696133375", "769613-3375"),
        ("16769613-3375", "769613-3375"),
        ("782600-0312", "782600-0312"),  # the search-criteria example
    ],
)
def test_organisation_numbers_take_the_documented_form(raw_records, value, expected):
    recs, i = _flat(raw_records)
    recs[i]["owner_id"] = value
    g, rejects = _load(recs)
    assert g["owner_id"].iloc[i] == expected and "owner_id_format" not in set(rejects["rule"])


def _luhn_ok(ten_digits: str) -> bool:
    """The check digit rule as Skatteverket publishes it, written out for the test."""
    total = 0
    for k, ch in enumerate(ten_digits[:9]):
        p = int(ch) * (2 if k % 2 == 0 else 1)
        total += p // 10 + p % 10
    return (10 - total % 10) % 10 == int(ten_digits[9])


def test_every_single_digit_slip_in_an_organisation_number_is_caught(raw_records):
    base = "7696133375"
    variants = sorted({base[:k] + str(d) + base[k + 1 :] for k in range(10) for d in range(10)})
    recs = [
        dict(raw_records[0], id=10_000_000 + j, owner_id=f"{v[:6]}-{v[6:]}")
        for j, v in enumerate(variants)
    ]
    g, rejects = _load(recs)
    bad_rows = set(rejects.loc[rejects["rule"] == "owner_id_format", "row"].tolist())
    for j, v in enumerate(variants):
        assert (j + 1 not in bad_rows) == _luhn_ok(v), v


def test_postal_codes_written_with_a_space_are_the_same_code(raw_records):
    recs, i = _flat(raw_records)
    recs[i]["postal_code"] = "653 41"
    g, rejects = _load(recs)
    assert g["postal_code"].iloc[i] == "65341" and not len(rejects)


def test_registry_only_rules_do_not_apply_to_markups(raw_records):
    recs, i = _flat(raw_records)
    recs[i]["deleted"] = 1
    recs[i]["updated_from"] = "sales"
    _, rejects = _load(recs, endpoint="markups")
    assert not len(rejects)
    _, rejects = _load(recs, endpoint="registry")
    assert sorted(rejects["rule"]) == ["deleted_in_registry", "updated_from_public_data"]


def test_floors_below_floor_is_flagged_and_both_kept(raw_records):
    recs, i = _flat(raw_records)
    recs[i]["floor"], recs[i]["floors"] = 5.0, 3.0
    g, rejects = _load(recs)
    r = rejects[rejects["rule"] == "floor_above_floors"]
    assert r["row"].tolist() == [i + 1] and r["action"].tolist() == ["kept"]
    assert (g["floor"].iloc[i], g["floors"].iloc[i]) == (5.0, 3.0)


def test_the_same_apartment_number_twice_at_an_address(raw_records):
    recs, i = _flat(raw_records)
    j = next(k for k, r in enumerate(recs) if k != i and r["home_type"] == "lägenhet")
    recs[j]["address"], recs[j]["apartment_nr"] = recs[i]["address"], recs[i]["apartment_nr"]
    _, rejects = _load(recs)
    r = rejects[rejects["rule"] == "apartment_nr_unique"]
    assert sorted(r["row"].tolist()) == sorted([i + 1, j + 1])


def test_a_lone_swapped_pair_is_not_used_and_not_fatal(raw_records):
    recs, i = _flat(raw_records)
    recs[i]["sweref99x"], recs[i]["sweref99y"] = recs[i]["sweref99y"], recs[i]["sweref99x"]
    g, rejects = _load(recs)
    r = rejects[rejects["rule"] == "swapped_coordinates"]
    assert r["row"].tolist() == [i + 1] and r["field"].tolist() == ["sweref99x"]
    assert g["coord_source"].iloc[i] == "rt90"
    assert abs(g.geometry.y.iloc[i] - recs[i]["sweref99y"]) < 2  # the RT 90 pair, ≈ the true spot


# --- meter addresses ------------------------------------------------------------------------------


@pytest.mark.parametrize("number", ["302-12", ["302-12"], "[302-12]", "['302-12']", [302, 12]])
def test_a_meter_address_number_is_parsed_not_fatal(raw_records, number):
    recs, i = _flat(raw_records)
    recs[i]["number"], recs[i]["is_meter_address"] = number, 1
    g, rejects = _load(recs)
    assert list(g["number"].iloc[i]) == [302, 12] and not len(rejects)
    g_strict = read_api_pages([_page(recs)], strict=True)  # legal: strict accepts it too
    assert list(g_strict["number"].iloc[i]) == [302, 12]


def test_meter_flag_and_number_form_must_agree(raw_records):
    recs, i = _flat(raw_records)
    k = i + 1
    recs[i]["number"], recs[i]["is_meter_address"] = "302-12", 0
    recs[k]["number"], recs[k]["is_meter_address"] = [7], 1
    _, rejects = _load(recs)
    r = rejects[rejects["rule"] == "meter_number_form"].sort_values("row")
    assert r["row"].tolist() == [i + 1, k + 1] and set(r["action"]) == {"kept"}


def test_meter_numbers_in_a_national_style_file(raw_records, tmp_path):
    """JSON lines where a few rows carry "302-12" among integer lists: read, not refused."""
    import json

    recs = [dict(r) for r in raw_records]
    for k in (5, 150, 299):
        recs[k]["number"], recs[k]["is_meter_address"] = f"{300 + k}-{k % 40 + 1}", 1
    p = tmp_path / "m.jsonl"
    p.write_text("".join(json.dumps(r) + "\n" for r in recs))
    g, rejects = read_registry(p, with_rejects=True)
    assert len(g) == len(recs) and not len(rejects)
    assert [list(g["number"].iloc[k]) for k in (5, 150, 299)] == [[305, 6], [450, 31], [599, 20]]
    # Written and read again, the parts stay parts.
    from vggeo.registry.readers import write_registry

    for ext in ("csv", "jsonl", "parquet", "gpkg"):
        back = read_registry(write_registry(g, tmp_path / f"m2.{ext}"))
        number = back.loc[back["id"] == recs[150]["id"], "number"].iloc[0]
        assert list(number) == [450, 31], ext


# --- placeholders and notices ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("home_type", "year", "placeholder"),
    [
        ("villa", 1909, True),
        ("radhus", 1909, True),
        ("lantbruk", 1909, True),
        ("lägenhet", 1929, True),
        ("lägenhet", 1909, False),
        ("villa", 1929, False),
        ("okänd", 1909, True),
        ("okänd", 1929, True),
        ("villa", 1910, False),
        ("villa", None, False),
    ],
)
def test_construction_year_placeholders(raw_records, home_type, year, placeholder):
    recs, i = _flat(raw_records)
    recs[i]["home_type"], recs[i]["construction_year"] = home_type, year
    for r in recs:
        if r is not recs[i] and r["construction_year"] in (1909, 1929):
            r["construction_year"] = 1950
    g, rejects = _load(recs)
    assert g["construction_year_placeholder"].dtype == bool
    assert g["construction_year_placeholder"].tolist() == [
        k == i and placeholder for k in range(len(recs))
    ]
    assert "construction_year_placeholder" not in set(rejects["rule"])  # a notice, not an error
    rep = check_registry(g, rejects=rejects)
    assert rep.summary["construction_year_placeholder"] == int(placeholder)
    assert "construction_year_placeholder" in rep.notice_keys


def test_notices_are_counted_but_never_problems(raw_records):
    recs = [dict(r) for r in raw_records[:60]]
    flats = [k for k, r in enumerate(recs) if r["home_type"] == "lägenhet"]
    houses = [k for k, r in enumerate(recs) if r["home_type"] == "villa"]
    recs[flats[0]]["floor"] = (
        recs[flats[0]]["apartment_nr"] // 100 - 10
    ) + 1  # estimate off by one
    recs[flats[1]]["ownership_type"], recs[flats[1]]["standard_points"] = "bostadsrätt", 30
    recs[houses[0]]["rooms"] = 4.0
    recs[houses[1]]["person_registered_date"] = "2019-01-01"
    recs[houses[2]]["person_registered"] = 0
    recs[houses[2]]["first_person_registered_date"] = "2018-05-05"
    for r in recs:
        r["error_code"], r["deleted"], r["probability_deleted"] = 0, 0, 0.0
    recs[houses[3]]["error_code"] = 1
    recs[houses[4]]["deleted"], recs[houses[4]]["probability_deleted"] = 2, 0.75
    recs[flats[0]]["floors"] = max(recs[flats[0]]["floors"], recs[flats[0]]["floor"])
    g, rejects = _load(recs)
    rep = check_registry(g, rejects=rejects)
    assert rep.ok, rep.to_table()
    expected = {
        "floor_disagreements": [flats[0]],
        "standard_points_cooperative": [flats[1]],
        "rooms_for_house": [houses[0]],
        "person_registered_date_early": [houses[1]],
        "first_registered_without_person": [houses[2]],
        "suspected_errors": [houses[3]],
        "maybe_deleted": [houses[4]],
    }
    for key, rows in expected.items():
        assert (rep.details[key]["row"] - 1).tolist() == rows, key


# --- kommunkod ------------------------------------------------------------------------------------------


def test_kommunkod_is_county_and_municipality_code(raw_records):
    recs = [dict(r) for r in raw_records[:30]]
    recs[0]["county_code"], recs[0]["municipality_code"] = "05", "13"
    recs[1]["county_code"], recs[1]["municipality_code"] = 1, 80  # leading zero lost
    recs[2]["municipality_code"] = None
    g, _ = _load(recs)
    assert g["kommunkod"].iloc[0] == "0513" and g["kommunkod"].iloc[1] == "0180"
    assert pd.isna(g["kommunkod"].iloc[2])
    assert all(
        k == c + m
        for k, c, m in zip(
            g["kommunkod"].iloc[3:],
            g["county_code"].iloc[3:],
            g["municipality_code"].iloc[3:],
            strict=True,
        )
    )


def test_kommunkod_joins_registry_rows_to_provisions(sample_data):
    import vggeo

    homes = read_registry(sample_data / "registry" / "registry.parquet")
    base = sorted((sample_data / "deliveries" / "bestammelse").glob("000_base_*.zip"))[0]
    provisions = vggeo.read_bestammelser(base).provisions
    assert provisions["municipality"].str.fullmatch(r"\d{4}").all()
    joined = homes.merge(
        pd.DataFrame(provisions[["municipality"]]).drop_duplicates(),
        left_on="kommunkod",
        right_on="municipality",
    )
    assert len(joined) > 0
    # The two-digit municipality_code alone matches nothing: it is the code within the county.
    assert not set(homes["municipality_code"]) & set(provisions["municipality"])


# --- strictness of the key ------------------------------------------------------------------------------


def test_a_row_without_id_is_refused_even_without_strict(raw_records):
    recs = [dict(r) for r in raw_records[:10]]
    recs[4]["id"] = None
    with pytest.raises(SchemaError, match="needs an id"):
        _load(recs)


def test_rejects_table_shape(raw_records):
    from vggeo.registry.canonical import REJECT_COLUMNS

    recs, i = _flat(raw_records)
    recs[i]["standard_points"] = 99
    _, rejects = _load(recs)
    assert tuple(rejects.columns) == REJECT_COLUMNS
    assert re.fullmatch(r"Int64", str(rejects["row"].dtype))


def test_rejects_name_the_page_and_its_row_across_pages(raw_records):
    a = [dict(r) for r in raw_records[:30]]
    b = [dict(r) for r in raw_records[30:60]]
    a[4]["standard_points"], b[2]["standard_points"], b[20]["standard_points"] = 80, 81, 82
    pages = [
        {"residences": a, "meta_data": {"offset": 0, "response_rows": 30, "total_nr_records": 60}},
        {"residences": b, "meta_data": {"offset": 30, "response_rows": 30, "total_nr_records": 60}},
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, rejects = read_api_pages(pages, with_rejects=True)
    assert rejects[["file", "row", "value"]].values.tolist() == [
        ["page 1 (offset 0)", 5, "80"],
        ["page 2 (offset 30)", 3, "81"],
        ["page 2 (offset 30)", 21, "82"],
    ]
