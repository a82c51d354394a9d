"""Valueguard code lists with Swedish and English labels, and vectorised decoding.

Every code list documented in Valueguard's field list (seed 000) is declared once here. Decoding
maps a whole column at once (a categorical lookup, never a per-row Python call); a value that is
not in its list is **flagged**, never an exception (unless ``strict=True``).

Labels: the English text is Valueguard's own wording; the Swedish text is Lantmäteriet's term
(lägenhetsregistret) where one exists, otherwise a faithful translation.

Examples
--------
>>> out = decode([1, 2, 7], "kitchen_type")
>>> out["label_en"].tolist()[:2], out["label_sv"].tolist()[:2], out["unknown"].tolist()
(['kitchen', 'kitchenette'], ['kök', 'kokvrå'], [False, False, True])
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from vggeo.errors import CodeError

T = TypeVar("T")

__all__ = ["CodeList", "CODE_LISTS", "get_code_list", "decode", "unknown_mask"]


@dataclass(frozen=True)
class CodeList:
    """One documented code list.

    Attributes
    ----------
    name
        The Valueguard field it belongs to.
    codes
        code → (Swedish label, English label). Integer codes for ``tinyint``/``smallint`` fields,
        strings for ``home_type`` and ``ownership_type`` (whose codes *are* Swedish words).
    note
        Anything the source says about the list as a whole.
    quote
        The list as Valueguard's field list documents it, word for word (seed 000): the rule a
        value outside the list breaks (``tests/registry`` checks every quote against the source).
    """

    name: str
    codes: dict[Any, tuple[str, str]]
    note: str = ""
    quote: str = ""

    @property
    def is_numeric(self) -> bool:
        return all(isinstance(k, int) for k in self.codes)

    @property
    def values(self) -> list:
        return list(self.codes)

    def label(self, code: Any, lang: str = "en") -> str | None:
        pair = self.codes.get(code)
        return None if pair is None else pair[0 if lang == "sv" else 1]


def _cl(name: str, pairs: dict, note: str = "", *, quote: str) -> CodeList:
    return CodeList(name, pairs, note, quote)


_BUILDING_TYPE = {
    -1: ("saknas", "missing"),
    1: ("badhus", "bathhouse"),
    2: ("brandstation", "fire station"),
    3: ("busstation", "bus station"),
    4: ("distributionsbyggnad", "distribution building"),
    5: ("djursjukhus", "veterinary"),
    6: ("försvarsbyggnad", "army"),
    7: ("vårdcentral", "health care center"),
    8: ("högskola", "university"),
    9: ("ishall", "ice rink"),
    10: ("järnvägsstation", "railway station"),
    11: ("kommunhus", "municipality building"),
    12: ("kriminalvårdsanstalt", "correctional institution"),
    13: ("kulturbyggnad", "cultural building"),
    14: ("polisstation", "police station"),
    15: ("reningsverk", "treatment plant"),
    16: ("ridhus", "riding area"),
    17: ("samfund", "community"),
    18: ("sjukhus", "hospital"),
    19: ("skola", "school"),
    20: ("sporthall", "sports area"),
    21: ("universitet", "university"),
    22: ("vattenverk", "water treatment plant"),
    24: ("multiarena", "multi arena"),
    30: ("friliggande villa", "detached house"),
    31: ("kedjehus", "terraced house"),
    32: ("radhus", "townhouse"),
    33: ("flerfamiljshus", "block of apartments"),
    35: ("småhus med flera lägenheter", "house with several apartments"),
    40: ("annan tillverkningsindustri", "other production industry"),
    41: ("gasturbinanläggning", "gas turbine facility"),
    42: ("industrihotell", "hotel for industries"),
    43: ("kemisk industri", "chemical industry"),
    44: ("kondenskraftverk", "condensing plant"),
    45: ("kärnkraftverk", "nuclear plant"),
    46: ("livsmedelsindustri", "food industry"),
    47: ("metall- eller maskinindustri", "metal- or machine industry"),
    48: ("textilindustri", "textile industry"),
    49: ("trävaruindustri", "wood industry"),
    50: ("vattenkraftverk", "hydroelectric plant"),
    51: ("vindkraftverk", "windmills"),
    52: ("värmeverk", "heating plant"),
    53: ("övrig industribyggnad", "other industry building"),
    99: ("ospecificerad", "unspecified"),
}

#: All code lists, by field name.
CODE_LISTS: dict[str, CodeList] = {
    c.name: c
    for c in (
        _cl(
            "apartment_category",
            {
                1: ("vanlig lägenhet", "ordinary apartment"),
                2: (
                    "specialbostad för äldre eller funktionshindrade",
                    "special apartment customized for elderly or disabled",
                ),
                3: ("studentbostad", "student residence"),
                4: ("övrig specialbostad", "other special residence"),
                9: ("uppgift saknas", "missing"),
            },
            quote="apartment_category tinyint(2) 1 1 = ordinary apartment 2 = special apartment customized for elderly or disabled 3 = student residence 4 = other special residence 9 = missing",
        ),
        _cl(
            "kitchen_type",
            {
                1: ("kök", "kitchen"),
                2: ("kokvrå", "kitchenette"),
                3: ("kokskåp", "kitchen cabinet"),
                4: ("ingen köksutrustning", "no kitchen equipment"),
                9: ("okänd", "unknown"),
            },
            quote="kitchen_type tinyint(2) 1 1 = kitchen 2 = kitchenette 3 = kitchen cabinet 4 = no kitchen equipment 9 = unknown",
        ),
        _cl(
            "building_purpose",
            {
                1: ("bostad", "home"),
                2: ("industri", "industry"),
                3: ("samhällsfunktion", "society"),
                4: ("verksamhet", "organization"),
                5: ("affärsbyggnad", "business building"),
                6: ("komplementbyggnad", "complement building"),
                7: ("övrig byggnad", "other building"),
            },
            quote="building_purpose tinyint(2) 1 1 = home 2 = industry 3 = society 4 = organization 5 = business building 6 = complement buildning 7 = other buildning",
        ),
        _cl(
            "building_type",
            _BUILDING_TYPE,
            quote="building_type tinyint(2) 33 -1 = missing 1 = bathhouse 2 = fire station",
        ),
        _cl(
            "type_code",
            {
                113: (
                    "lantbruksenhet, byggnadsvärde under 50 000 kr",
                    "farm unit (building value < 50000 SEK)",
                ),
                120: ("lantbruksenhet, bebyggd", "farm unit (built-up)"),
                213: (
                    "småhusenhet, byggnadsvärde under 50 000 kr",
                    "house (building value < 50000 SEK)",
                ),
                220: ("småhusenhet, bebyggd", "house (built-up)"),
                221: ("småhusenhet, fritidshus", "house (cottage)"),
                222: (
                    "småhusenhet, tre eller fler bostadsbyggnader",
                    "house (3 or more residence buildings)",
                ),
                320: ("hyreshusenhet, bostäder", "rental (residences)"),
                321: ("hyreshusenhet, bostäder och lokaler", "rental (residences & local places)"),
                325: ("hyreshusenhet, lokaler", "rental (local places)"),
                823: ("specialenhet", "special unit"),
            },
            note="221 and 222 ended in 2015 but remain in the register (Skatteverket's full list)",
            quote="type_code smallint(3) 320 113 = farm unit (building value < 50000 SEK) 120 = farm unit (built-up) 213 = house (building value < 50000 SEK) 220 = house (built-up) 221* = house (cottege) 222* = house (3 or more residence buildnings) 320 = rental (residences) 321 = rental (residences & local places) 325 = rental (local places) 823 = special unit.",
        ),
        _cl(
            "home_type",
            {
                "radhus": ("radhus", "townhouse"),
                "lägenhet": ("lägenhet", "apartment"),
                "kedjehus": ("kedjehus", "terraced house"),
                "villa": ("villa", "house"),
                "lantbruk": ("lantbruk", "farm"),
                "småhus övriga": ("småhus övriga", "other houses"),
                "lantbruk övriga": ("lantbruk övriga", "other farms"),
                "okänd": ("okänd", "unknown"),
            },
            quote="home_type varchar(20) lägenhet the different types of residence are divided into: radhus (townhouse) lägenhet (apartment) kedjehus (terraced house) villa (house) lantbruk (farm) småhus övriga (other houses) lantbruk övriga (other farms) okänd (unknown)",
        ),
        _cl(
            "ownership_type",
            {
                "äganderätt": ("äganderätt", "property rights"),
                "bostadsrätt": ("bostadsrätt", "co-operative apartment"),
                "hyresrätt": ("hyresrätt", "rented apartment"),
                "tomträtt": ("tomträtt", "site leasehold"),
                "okänd": ("okänd", "unknown (vast majority rentals)"),
            },
            quote="ownership_type varchar(30) bostadsrätt the different types of ownership are divided into: äganderätt (property rights) bostadsrätt (co-operative apartment) hyresrätt (rented apartment) tomträtt (site leasehold) okänd (unknown), vast majority rentals",
        ),
        _cl(
            "is_meter_address",
            {
                0: ("ej metertalsadress", "not a meter address"),
                1: ("metertalsadress", "meter address (number of the form 302-12)"),
            },
            quote='is_meter_address tinyint(1) 1 1 = the address is a meter address (i.e. the number of the address is of type "302-12") 0 = the address is not a meter address',
        ),
        _cl(
            "error_code",
            {
                0: ("inget misstänkt fel", "no suspected error in data"),
                1: ("misstänkt fel", "suspected error in data"),
            },
            quote="error_code tinyint(1) 0 1 = suspected error in data 0 = no suspected error in data",
        ),
        _cl(
            "deleted",
            {
                0: ("ej borttagen", "not deleted"),
                1: ("borttagen", "deleted"),
                2: ("kanske borttagen", "maybe deleted"),
            },
            note="the registry holds only 0 and 2; deleted objects are in markups",
            quote="deleted tinyint(1) 0 0 = not deleted 1 = deleted 2 = maybe deleted",
        ),
        _cl(
            "vacation_like_home",
            {
                0: ("bedöms inte vara fritidsbostad", "estimated to not be a vacation home"),
                1: ("bedöms vara fritidsbostad", "estimated to be a vacation home"),
            },
            quote="vacation_like_home tinyiny(1) 1 1 = Estimated to be a vacation home 0 = Estimated to not be a vacation home",
        ),
        _cl(
            "person_registered",
            {
                0: (
                    "ingen folkbokförd (eller ej matchad)",
                    "no one registered at the address, or not matched",
                ),
                1: ("någon är folkbokförd", "someone is registered at the address"),
            },
            quote="person_registered tinyiny(1) 0 1 = Someone is registered at the address 0 = No one is registered at the address, or we have not been able to match the address.",
        ),
    )
}


def get_code_list(name: str) -> CodeList:
    """The code list of a field; the error lists every field that has one."""
    try:
        return CODE_LISTS[name]
    except KeyError:
        raise CodeError(
            f"no code list named {name!r}; known: {', '.join(sorted(CODE_LISTS))}", field=name
        ) from None


def _normalise(values: pd.Series | ArrayLike, code_list: CodeList) -> pd.Series:
    """Values as a Series comparable with the list's codes (ints or stripped strings)."""
    s = values if isinstance(values, pd.Series) else pd.Series(values)
    if isinstance(s.dtype, pd.CategoricalDtype):
        cats = s.cat.categories
        codes = s.cat.codes.to_numpy()
        if pd.api.types.is_numeric_dtype(cats.dtype):
            # Decode through the category codes: no per-value conversion of a large column.
            vals = np.append(cats.to_numpy(dtype=float), np.nan)[
                np.where(codes < 0, len(cats), codes)
            ]
            s = pd.Series(vals, index=s.index)
        else:
            s = s.astype(object)
    if code_list.is_numeric:
        num = pd.to_numeric(s, errors="coerce")
        # A value like "1.5" or "kök" is not a code: keep it as NaN-with-flag (see unknown_mask).
        return num.astype("Float64")
    return s.astype("string").str.strip()


def unknown_mask(values: pd.Series | ArrayLike, name: str) -> np.ndarray:
    """Boolean mask: present (non-null) values that are not in the code list ``name``."""
    cl = get_code_list(name)
    s = values if isinstance(values, pd.Series) else pd.Series(values)
    present = s.notna().to_numpy()
    norm = _normalise(s, cl)
    known = norm.isin(cl.values).fillna(False).to_numpy(dtype=bool)
    return present & ~known


def decode(values: pd.Series | ArrayLike, name: str, *, strict: bool = False) -> pd.DataFrame:
    """Decode a column of codes.

    Parameters
    ----------
    values
        Codes (array-like or Series; categoricals welcome). Missing values stay missing.
    name
        The field whose code list applies (see :data:`CODE_LISTS`).
    strict
        Raise :class:`~vggeo.errors.CodeError` naming the first unknown code and its row instead
        of flagging it.

    Returns
    -------
    DataFrame (same index) with ``code``, ``label_sv``, ``label_en`` (categoricals) and
    ``unknown`` (bool: present but not in the list).
    """
    cl = get_code_list(name)
    s = values if isinstance(values, pd.Series) else pd.Series(values)
    norm = _normalise(s, cl)
    unknown = unknown_mask(s, name)
    if strict and unknown.any():
        i = int(np.flatnonzero(unknown)[0])
        raise CodeError(
            f"{int(unknown.sum())} value(s) outside the {name} code list "
            f"({', '.join(map(str, cl.values))})",
            field=name,
            row=i + 1,
            value=s.iloc[i],
        )
    codes = list(cl.codes)
    # One hash lookup for the whole column: position of each value in the list (-1: none).
    if cl.is_numeric:
        lookup = norm.to_numpy(dtype=float, na_value=np.nan)
        pos = pd.Index([float(c) for c in codes]).get_indexer(lookup)
    else:
        pos = pd.Index(codes).get_indexer(norm.to_numpy(dtype=object, na_value=None))
    sv_labels = np.array([cl.codes[c][0] for c in codes] + [None], dtype=object)
    en_labels = np.array([cl.codes[c][1] for c in codes] + [None], dtype=object)
    code_vals = np.array(codes + [None], dtype=object)
    take = np.where(pos < 0, len(codes), pos)
    out = pd.DataFrame(
        {
            "code": pd.Categorical(code_vals[take], categories=codes),
            "label_sv": pd.Categorical(sv_labels[take], categories=_dedup(sv_labels[:-1])),
            "label_en": pd.Categorical(en_labels[take], categories=_dedup(en_labels[:-1])),
            "unknown": unknown,
        },
        index=s.index,
    )
    return out


def _dedup(items: Iterable[T]) -> list[T]:
    return list(dict.fromkeys(items))
