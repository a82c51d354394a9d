"""Code lists: every documented code decodes in both languages; unknown codes are flagged."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from vggeo.codes import CODE_LISTS, decode, get_code_list, unknown_mask
from vggeo.errors import CodeError

# Spot values straight from Valueguard's field list (seed 000).
DOCUMENTED = [
    ("kitchen_type", 3, "kitchen cabinet"),
    ("apartment_category", 3, "student residence"),
    ("building_purpose", 5, "business building"),
    ("building_type", 33, "block of apartments"),
    ("building_type", -1, "missing"),
    ("type_code", 320, "rental (residences)"),
    ("type_code", 823, "special unit"),
    ("home_type", "kedjehus", "terraced house"),
    ("ownership_type", "bostadsrätt", "co-operative apartment"),
    ("deleted", 2, "maybe deleted"),
    ("error_code", 1, "suspected error in data"),
]


@pytest.mark.parametrize(("name", "code", "english"), DOCUMENTED)
def test_documented_codes_decode(name, code, english):
    out = decode(pd.Series([code]), name)
    assert out["label_en"].iloc[0] == english
    assert isinstance(out["label_sv"].iloc[0], str) and out["label_sv"].iloc[0]
    assert not out["unknown"].iloc[0]


def test_every_list_has_swedish_and_english_labels():
    for name, cl in CODE_LISTS.items():
        assert cl.codes, name
        for code, (sv, en) in cl.codes.items():
            assert sv and en, (name, code)


def test_unknown_codes_are_flagged_not_raised():
    values = pd.Series([1, 7, None, "kök", 2.0, 2.5])
    out = decode(values, "kitchen_type")
    assert out["unknown"].tolist() == [False, True, False, True, False, True]
    assert out["label_en"].astype(object).tolist()[:1] == ["kitchen"]
    assert out["label_en"].isna().tolist() == [False, True, True, True, False, True]
    assert unknown_mask(values, "kitchen_type").sum() == 3


def test_strict_names_row_and_value():
    with pytest.raises(CodeError) as err:
        decode(pd.Series(["villa", "slott"]), "home_type", strict=True)
    assert err.value.row == 2 and err.value.value == "slott" and err.value.field == "home_type"


def test_decoding_categoricals_and_large_columns_is_vectorised():
    rng = np.random.default_rng(0)
    codes = rng.choice([30, 31, 32, 33, 35, 77], 200_000)
    cat = pd.Series(pd.Categorical(codes))
    out = decode(cat, "building_type")
    assert out["unknown"].sum() == (codes == 77).sum()
    assert (out.loc[codes == 33, "label_en"] == "block of apartments").all()


def test_unknown_list_name_lists_known():
    with pytest.raises(CodeError, match="kitchen_type"):
        get_code_list("kitchen")
