"""A realistic synthetic Valueguard registry at national scale, generated with numpy.

Homes cluster around real Swedish towns (:func:`vggeo.sample.towns.swedish_towns`) in
proportion to their populations: apartments in buildings near town centres, sharing addresses
and carrying valid lägenhetsnummer (floor code 10 at the entrance level, positions clockwise
from 01); houses, terraced houses and farms scattered wider. Every documented field is filled
with plausible values and documented codes. The three coordinate pairs agree as in the real
data: SWEREF 99 TM rounded to whole metres, RT 90 2.5 gon V (Lantmäteriet's direct projection
via :mod:`vggeo.crs`) rounded to whole metres, WGS 84 to six decimals — all derived from the
same point, so they agree to about a metre.

Everything is vectorised (no per-row Python): 5.6 million rows take seconds, and a given
``seed`` always gives the same registry.

``defects`` injects a known share of problems for demonstrations and tests of
``vggeo registry check``: conflicting coordinate pairs, impossible apartment numbers and
unknown codes (floor estimates that disagree with the apartment number occur naturally, as in
the real registry).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import ArrayLike

from vggeo.crs import transform
from vggeo.registry.canonical import RuleWarning
from vggeo.registry.readers import CodeWarning, to_canonical
from vggeo.sample.towns import swedish_towns

if TYPE_CHECKING:
    import geopandas as gpd

__all__ = ["generate_registry", "HOME_TYPE_SHARES"]

#: Share of each home type (≈ 2.7 M apartments and ≈ 2.1 M houses of 5.6 M, FORMATS.md §1).
HOME_TYPE_SHARES = {
    "lägenhet": 0.48,
    "villa": 0.29,
    "radhus": 0.08,
    "kedjehus": 0.04,
    "lantbruk": 0.03,
    "småhus övriga": 0.04,
    "lantbruk övriga": 0.02,
    "okänd": 0.02,
}

_STREET_STEMS = (
    "Stor",
    "Kyrk",
    "Skol",
    "Ång",
    "Björk",
    "Ek",
    "Lind",
    "Park",
    "Strand",
    "Sjö",
    "Berg",
    "Back",
    "Tall",
    "Gran",
    "Rosen",
    "Vinter",
    "Sommar",
    "Drottning",
    "Kungs",
    "Prins",
    "Hamn",
    "Järnvägs",
    "Torg",
    "Kvarn",
    "Smedje",
    "Bruks",
    "Mejeri",
    "Stations",
    "Skogs",
    "Äng",
    "Hag",
    "Lärk",
    "Asp",
    "Al",
    "Rönn",
    "Hassel",
    "Sälg",
    "Vide",
    "Syren",
    "Fläder",
    "Klöver",
    "Blåbärs",
    "Lingon",
    "Hjortron",
    "Tranbärs",
    "Uggle",
    "Örn",
    "Falk",
    "Svan",
    "Trast",
)
_STREET_ENDS = ("gatan", "vägen", "stigen", "backen", "gränd", "allén", "torget", "slingan")
_DISTRICTS = ("Centrum", "Norr", "Öster", "Söder", "Väster", "Gamla stan", "Hagen", "Berga")


def _choice(
    rng: np.random.Generator, values: Sequence[Any], p: Sequence[float], size: int
) -> np.ndarray:
    weights = np.asarray(p, dtype=float)
    return np.asarray(values)[rng.choice(len(weights), size=size, p=weights / weights.sum())]


def _org_numbers(rng: np.random.Generator, size: int) -> np.ndarray:
    """Swedish organisation numbers NNNNNN-NNNN with a valid Luhn check digit (76/71/55 …)."""
    prefix = _choice(rng, [716, 769, 556, 702], [0.2, 0.5, 0.2, 0.1], size)
    digits = np.zeros((size, 10), dtype=np.int64)
    digits[:, 0] = prefix // 100
    digits[:, 1] = prefix // 10 % 10
    digits[:, 2] = prefix % 10
    digits[:, 3:9] = rng.integers(0, 10, (size, 6))
    w = np.array([2, 1, 2, 1, 2, 1, 2, 1, 2])
    prod = digits[:, :9] * w
    s = (prod // 10 + prod % 10).sum(axis=1)
    digits[:, 9] = (10 - s % 10) % 10
    text = digits.astype("U1")
    first = np.char.add(
        np.char.add(np.char.add(text[:, 0], text[:, 1]), text[:, 2]),
        np.char.add(np.char.add(text[:, 3], text[:, 4]), text[:, 5]),
    )
    last = np.char.add(np.char.add(text[:, 6], text[:, 7]), np.char.add(text[:, 8], text[:, 9]))
    return np.char.add(np.char.add(first, "-"), last)


def _dates(rng: np.random.Generator, size: int, start: str, end: str) -> np.ndarray:
    lo = np.datetime64(start, "D").astype(np.int64)
    hi = np.datetime64(end, "D").astype(np.int64)
    return rng.integers(lo, hi, size).astype("datetime64[D]")


def generate_registry(n: int, *, seed: int = 0, defects: float = 0.0) -> gpd.GeoDataFrame:
    """Generate ``n`` residences as the canonical GeoDataFrame (EPSG:3006).

    Parameters
    ----------
    n
        Number of homes (5.6 million for the whole country).
    seed
        Random seed; the same seed gives the same registry.
    defects
        Share (0–0.1) of rows given a known problem each: conflicting coordinates, an impossible
        apartment number or an unknown code. ``attrs["defects"]`` lists which rows got which.

    Returns
    -------
    GeoDataFrame with every documented field (see :mod:`vggeo.registry.fields`).
    """
    if n < 0:
        raise ValueError("n must be ≥ 0")
    if not 0 <= defects <= 0.1:
        raise ValueError("defects must be between 0 and 0.1")
    rng = np.random.default_rng(seed)
    towns = swedish_towns(1000)
    pop = towns["population"].to_numpy(dtype=float)
    t_east = towns["easting"].to_numpy()
    t_north = towns["northing"].to_numpy()

    # --- home types, apartments grouped into buildings ----------------------------------------
    types = list(HOME_TYPE_SHARES)
    counts = np.floor(np.array(list(HOME_TYPE_SHARES.values())) * n).astype(int)
    counts[0] += n - counts.sum()
    n_apt = int(counts[0])
    # Buildings: floors × flats per floor, generated with margin and cut at n_apt flats.
    n_b = max(1, int(n_apt / 12) + 16)
    floors_b = rng.choice(
        np.arange(1, 11), n_b, p=np.array([4, 10, 16, 18, 14, 10, 8, 8, 6, 6]) / 100
    )
    per_floor = rng.integers(2, 7, n_b)
    size_b = floors_b * per_floor
    cum = np.cumsum(size_b)
    n_b = int(np.searchsorted(cum, n_apt) + 1) if n_apt else 0
    floors_b, per_floor, size_b = floors_b[:n_b], per_floor[:n_b], size_b[:n_b]
    if n_b:
        size_b[-1] -= int(size_b.sum() - n_apt)
    # Lowest floor code: usually the entrance level; shops at street level push flats to 11;
    # a few buildings have a flat half below ground (09).
    start_code = _choice(rng, [10, 11, 9], [0.76, 0.2, 0.04], n_b)
    b_town = rng.choice(len(towns), n_b, p=pop**1.1 / (pop**1.1).sum())
    spread_b = 150.0 * (pop[b_town] / 1000.0) ** 0.35
    b_east = t_east[b_town] + rng.normal(0, 1, n_b) * spread_b
    b_north = t_north[b_town] + rng.normal(0, 1, n_b) * spread_b

    # Flats: position within the building → floor and place on the floor.
    b_of_flat = np.repeat(np.arange(n_b), size_b)
    starts = np.concatenate([[0], np.cumsum(size_b)[:-1]]) if n_b else np.zeros(0, int)
    k = np.arange(n_apt) - np.repeat(starts, size_b)
    floor_idx = k // per_floor[b_of_flat]
    flat_code = start_code[b_of_flat] + floor_idx
    apt_nr_flat = flat_code * 100 + k % per_floor[b_of_flat] + 1
    top_code = start_code + (np.ceil(size_b / per_floor) - 1).astype(int)

    # Houses: one address each, scattered wider; farms far out.
    n_house = n - n_apt
    house_type = np.repeat(np.arange(1, len(types)), counts[1:])
    h_town = rng.choice(len(towns), n_house, p=pop**0.85 / (pop**0.85).sum())
    farm = np.isin(house_type, [types.index("lantbruk"), types.index("lantbruk övriga")])
    radius = np.where(
        farm,
        rng.uniform(3000, 25000, n_house),
        np.abs(rng.normal(0, 1, n_house)) * 700.0 * (pop[h_town] / 1000.0) ** 0.3
        + rng.exponential(400.0, n_house),
    )
    angle = rng.uniform(0, 2 * np.pi, n_house)
    h_east = t_east[h_town] + radius * np.cos(angle)
    h_north = t_north[h_town] + radius * np.sin(angle)

    # --- addresses: buildings and houses share the street numbering of their town -------------
    a_town = np.concatenate([b_town, h_town])
    a_east = np.concatenate([b_east, h_east])
    a_north = np.concatenate([b_north, h_north])
    n_addr = len(a_town)
    n_streets = np.minimum(4 + pop[a_town] // 400, len(_STREET_STEMS) * len(_STREET_ENDS)).astype(
        int
    )
    street_k = (rng.random(n_addr) * n_streets).astype(int)
    street_id = (a_town * 7919 + street_k * 131) % (len(_STREET_STEMS) * len(_STREET_ENDS))
    order = np.lexsort((street_id, a_town))
    key = a_town[order] * 1000 + street_id[order]
    first = np.r_[True, key[1:] != key[:-1]]
    grp_start = np.maximum.accumulate(np.where(first, np.arange(n_addr), 0))
    number = np.empty(n_addr, dtype=np.int64)
    number[order] = np.arange(n_addr) - grp_start + 1
    letter_pick = _choice(rng, ["", "A", "B", "C"], [0.85, 0.08, 0.05, 0.02], n_addr)
    street_names = np.array([s + e for s in _STREET_STEMS for e in _STREET_ENDS], dtype=object)
    street_names = np.array([s[0] + s[1:].lower() for s in street_names], dtype=object)
    postal_base = 10000 + (np.random.default_rng(seed + 1).permutation(len(towns)) * 97) % 88000
    postal = (postal_base[a_town] + street_k % 40).astype(np.int64)
    district = (
        np.floor(
            np.arctan2(a_north - t_north[a_town], a_east - t_east[a_town]) / (np.pi / 2)
        ).astype(int)
        % 4
        + 1
    )
    central = np.hypot(a_north - t_north[a_town], a_east - t_east[a_town]) < 400
    district = np.where(central, 0, district)
    house_nr_addr = rng.choice([1, 1, 1, 2, 3], n_addr)
    property_key_addr = (
        rng.permutation(np.arange(10_000_000, 10_000_000 + n_addr)) * 7 % 999_999_999
    )
    construction = np.clip(rng.normal(1962, 28, n_addr).round(), 1700, 2024).astype(int)
    construction = np.where(
        rng.random(n_addr) < 0.04, np.where(np.arange(n_addr) < n_b, 1929, 1909), construction
    )

    # Row → address. Rows are shuffled here, before any per-row column exists, so a file does
    # not list all flats first (as a real export would not) without reordering every column.
    perm = rng.permutation(n)
    addr = np.concatenate([b_of_flat, n_b + np.arange(n_house)])[perm]
    is_apt = np.zeros(n, dtype=bool)
    is_apt[:n_apt] = True
    is_apt = is_apt[perm]
    home_type_idx = np.concatenate([np.zeros(n_apt, dtype=int), house_type])[perm]
    apt_nr_row = apt_nr_full(apt_nr_flat, n)[perm]
    # Small jitter within a building footprint; houses are their own address point.
    east = a_east[addr] + np.where(is_apt, rng.normal(0, 4, n), 0)
    north = a_north[addr] + np.where(is_apt, rng.normal(0, 4, n), 0)

    # --- coordinates: SWEREF 99 TM integer metres; RT 90 and WGS 84 derived from them --------
    sweref_n = np.round(north)
    sweref_e = np.round(east)
    lat, lon = transform(sweref_n, sweref_e, src=3006, dst=4326, in_order="ne", out_order="latlon")
    rt_n, rt_e = transform(sweref_n, sweref_e, src=3006, dst=3021, in_order="ne", out_order="ne")

    # --- per-home values ------------------------------------------------------------------------
    rooms = np.where(is_apt, _choice(rng, [1, 2, 3, 4, 5, 6], [14, 33, 30, 15, 6, 2], n), np.nan)
    house_space = np.clip(rng.normal(128, 38, n), 35, 420)
    living_space = np.where(
        is_apt, np.clip(18 + 22 * np.nan_to_num(rooms) + rng.normal(0, 9, n), 15, 300), house_space
    ).round()
    floor_rel = np.where(is_apt, apt_nr_row // 100 - 10, np.nan)
    # Valueguard's floor is an estimate: about 3 % disagree with the apartment number by a floor.
    off = np.where(rng.random(n) < 0.03, rng.choice([-1, 1], n), 0)
    floor_est = floor_rel + off
    top = np.where(
        is_apt,
        np.r_[top_code, np.zeros(n_house, int)][np.minimum(addr, n_addr - 1)] - 10,
        rng.choice([1, 1, 2], n),
    )
    floors = np.maximum(top, np.nan_to_num(floor_est, nan=0)).astype(float)
    own = np.where(
        is_apt,
        _choice(rng, [0, 1, 2, 3], [2, 45, 45, 8], n),
        _choice(rng, [0, 3, 4], [92, 5, 3], n),
    )
    ownership_names = np.array(
        ["äganderätt", "bostadsrätt", "hyresrätt", "okänd", "tomträtt"], dtype=object
    )
    building_type = np.where(
        is_apt,
        _choice(rng, [33, 35], [90, 10], n),
        np.select(
            [home_type_idx == types.index("radhus"), home_type_idx == types.index("kedjehus")],
            [32, 31],
            30,
        ),
    )
    type_code = np.where(
        is_apt,
        _choice(rng, [320, 321], [80, 20], n),
        np.where(
            farm_rows(home_type_idx, types),
            _choice(rng, [120, 113], [90, 10], n),
            _choice(rng, [220, 213, 221, 222], [93, 3, 3, 1], n),
        ),
    )
    org = _org_numbers(rng, n_b) if n_b else np.zeros(0, dtype="U11")
    owner_id = np.where(
        is_apt & (own == 1),
        np.r_[org, np.full(n_house, "", dtype="U11")][np.minimum(addr, n_addr - 1)],
        None,
    )
    deleted = _choice(rng, [0, 2], [99, 1], n)
    prob_del = np.where(deleted == 2, _choice(rng, [0.25, 0.5, 0.75], [1, 1, 1], n), 0.0)
    updated = _dates(rng, n, "2015-01-01", "2024-06-01")
    reg_date = _dates(rng, n, "2020-11-16", "2024-06-01")
    first_reg = reg_date - rng.integers(0, 8000, n).astype("timedelta64[D]")
    person_registered = (rng.random(n) < 0.9).astype(int)
    ids = rng.permutation(np.arange(100_000, 100_000 + n, dtype=np.int64) * 3 + 1)
    entrance = np.where(is_apt & (rng.random(n) < 0.05), "U1", "")
    # Drawn here, in the order the generator always drew it (the same seed gives the same rows).
    meter_draw = _choice(rng, [0, 1], [995, 5], n)

    # Meter addresses (is_meter_address = 1; numbers "302-12", stored as [302, 12]): some
    # houses, never flats (all flats of a building share its address). Their own generator, so
    # every other value stays what the seed gave before meter numbers existed.
    meter_rng = np.random.default_rng([seed, 302])
    meter = (meter_draw == 1) & ~is_apt
    meter_main = number[addr] * 10 + meter_rng.integers(0, 10, n)  # unique along the street
    meter_sub = meter_rng.integers(1, 40, n)

    # --- strings via Arrow compute (C++), not Python loops ---------------------------------------
    town_names = pa.array(towns["name"].to_numpy(dtype=object))
    street_arr = pa.array(street_names[street_id[addr]])
    num_text = pc.if_else(
        pa.array(meter),
        pc.binary_join_element_wise(
            pc.cast(pa.array(meter_main), pa.string()),
            pc.cast(pa.array(meter_sub), pa.string()),
            "-",
        ),
        pc.cast(pa.array(number[addr]), pa.string()),
    )
    letter_arr = pa.array(letter_pick[addr].astype(object))
    postal_text = pc.cast(pa.array(postal[addr]), pa.string())
    address = pc.binary_join_element_wise(
        street_arr, pa.scalar(" "), num_text, letter_arr, pa.scalar(", "), postal_text, ""
    )
    address = pc.replace_substring(address, " ,", ",")
    town_of_row = pa.array(a_town[addr])
    area_name = pc.binary_join_element_wise(
        pc.take(town_names, town_of_row),
        pa.scalar("_"),
        pc.take(pa.array(list(_DISTRICTS)), pa.array(district[addr])),
        "",
    )
    muni = towns["municipality_code"].str[2:].to_numpy(dtype=object)
    county = towns["county_code"].to_numpy(dtype=object)
    parts = 1 + meter
    firsts = np.where(meter, meter_main, number[addr])
    flat_numbers = np.empty(int(parts.sum()), dtype=np.int64)
    starts_n = np.concatenate([[0], np.cumsum(parts)[:-1]])
    flat_numbers[starts_n] = firsts
    flat_numbers[starts_n[meter] + 1] = meter_sub[meter]
    number_list = pa.ListArray.from_arrays(
        pa.array(np.concatenate([[0], np.cumsum(parts)]).astype(np.int32)), pa.array(flat_numbers)
    )
    apt_nr_all = np.where(is_apt, apt_nr_row, -1)

    def s(arr: pa.Array | pa.ChunkedArray | ArrayLike) -> pd.arrays.ArrowStringArray:
        if isinstance(arr, (pa.Array, pa.ChunkedArray)):
            return pd.arrays.ArrowStringArray(pc.cast(arr, pa.large_string()))
        return pd.array(arr, dtype="string")

    def opt_int(values: np.ndarray, mask: np.ndarray) -> pd.arrays.IntegerArray:
        return pd.arrays.IntegerArray(np.where(mask, 0, values).astype(np.int64), np.asarray(mask))

    raw = pd.DataFrame(
        {
            "id": ids,
            "property_key": s(
                pc.utf8_lpad(pc.cast(pa.array(property_key_addr[addr]), pa.string()), 9, "0")
            ),
            "address": s(address),
            "street": s(street_arr),
            "number": pd.arrays.ArrowExtensionArray(number_list),
            "letter": s(letter_arr),
            "entrance": s(entrance.astype(object)),
            "is_meter_address": meter.astype(np.int64),
            "postal_code": s(postal_text),
            "postal_area": s(pc.take(town_names, town_of_row)),
            "house_nr": house_nr_addr[addr],
            "apartment_nr": opt_int(apt_nr_all, ~is_apt),
            "living_space": living_space,
            "apartment_area": opt_int(living_space, np.zeros(n, bool)),
            "rooms": rooms,
            "floor": floor_est,
            "floors": floors,
            "apartment_category": opt_int(
                _choice(rng, [1, 2, 3, 4, 9], [92, 3, 3, 1, 1], n), ~is_apt
            ),
            "kitchen_type": opt_int(_choice(rng, [1, 2, 3, 4, 9], [85, 11, 2, 1, 1], n), ~is_apt),
            "building_purpose": np.ones(n, dtype=np.int64),
            "sweref99x": sweref_n,
            "sweref99y": sweref_e,
            "rt90x": np.round(rt_n),
            "rt90y": np.round(rt_e),
            "wgs84lat": np.round(lat, 6),
            "wgs84lon": np.round(lon, 6),
            "construction_year": construction[addr],
            "owner_id": s(owner_id),
            "building_type": building_type,
            "type_code": type_code,
            "home_type": s(np.array(types, dtype=object)[home_type_idx]),
            "ownership_type": s(ownership_names[own]),
            "living_area": opt_int(living_space, is_apt),
            "ancillary_area": opt_int(rng.integers(0, 80, n), is_apt),
            "standard_points": opt_int(rng.integers(12, 50, n), is_apt & (own == 1)),
            "plot_area": opt_int(
                np.where(
                    farm_rows(home_type_idx, types),
                    rng.integers(5000, 200000, n),
                    rng.integers(250, 2200, n),
                ),
                is_apt,
            ),
            "error_code": _choice(rng, [0, 1], [99, 1], n),
            "deleted": deleted,
            "probability_deleted": prob_del,
            "area_id": 1000 + a_town[addr] * 10 + district[addr],
            "area_name": s(area_name),
            "updated_at": updated.astype("datetime64[ms]"),
            "updated_from": s(np.full(n, "public_data", dtype=object)),
            "county_code": s(county[a_town[addr]]),
            "municipality_code": s(muni[a_town[addr]]),
            "parish_code": s(np.char.zfill(rng.integers(1, 21, n).astype("U2"), 2).astype(object)),
            "vacation_like_home": (rng.random(n) < np.where(is_apt, 0.01, 0.1)).astype(np.int64),
            "person_registered": person_registered,
            "person_registered_date": reg_date.astype("datetime64[ms]"),
            "first_person_registered_date": opt_dates(first_reg, person_registered == 0),
        },
        copy=False,
    )
    # Free the building blocks before converting: at 5.6 M rows each is tens of MB.
    del (
        east,
        north,
        sweref_n,
        sweref_e,
        lat,
        lon,
        rt_n,
        rt_e,
        rooms,
        house_space,
        living_space,
        floor_rel,
        off,
        floor_est,
        top,
        floors,
        own,
        building_type,
        type_code,
        owner_id,
        deleted,
        prob_del,
        updated,
        reg_date,
        first_reg,
        person_registered,
        ids,
        address,
        area_name,
        street_arr,
        num_text,
        letter_arr,
        postal_text,
        town_of_row,
        number_list,
        entrance,
        apt_nr_all,
        addr,
        is_apt,
        home_type_idx,
        apt_nr_row,
        meter,
        meter_draw,
        meter_main,
        meter_sub,
        parts,
        firsts,
        flat_numbers,
        starts_n,
    )
    injected = _inject_defects(raw, rng, defects) if defects else {}
    with warnings.catch_warnings():
        # Injected unknown codes are intended; they are listed in attrs["defects"].
        warnings.simplefilter("ignore", CodeWarning)
        warnings.simplefilter("ignore", RuleWarning)
        gdf = to_canonical(raw, source="generated", consume=True)
    del raw
    gdf.attrs["defects"] = injected
    return gdf


def apt_nr_full(apt_nr_flat: np.ndarray, n: int) -> np.ndarray:
    out = np.zeros(n, dtype=np.int64)
    out[: len(apt_nr_flat)] = apt_nr_flat
    return out


def farm_rows(home_type_idx: np.ndarray, types: list[str]) -> np.ndarray:
    return np.isin(home_type_idx, [types.index("lantbruk"), types.index("lantbruk övriga")])


def opt_dates(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    out = values.astype("datetime64[ms]")
    out[mask] = np.datetime64("NaT")
    return out


def _inject_defects(
    raw: pd.DataFrame, rng: np.random.Generator, rate: float
) -> dict[str, list[int]]:
    """Give a share of rows one known problem each; returns {problem: [row positions]}."""
    n = len(raw)
    k = int(round(n * rate))
    if k == 0:
        return {}
    rows = rng.choice(n, size=min(k, n), replace=False)
    kinds = np.array_split(rows, 3)
    conflict, bad_apt, bad_code = (np.sort(x) for x in kinds)
    # Conflicting coordinates: the RT 90 pair moved 20–500 m (a stale geocode).
    raw.loc[conflict, "rt90x"] = (
        raw.loc[conflict, "rt90x"] + rng.uniform(20, 500, len(conflict)).round()
    )
    # Impossible apartment numbers: position 00 or a floor code 00.
    raw.loc[bad_apt, "apartment_nr"] = rng.choice([1000, 1100, 5, 12], len(bad_apt))
    # Unknown codes: kitchen type 7 does not exist.
    raw.loc[bad_code, "kitchen_type"] = 7
    return {
        "conflicting_coordinates": conflict.tolist(),
        "bad_apartment_numbers": bad_apt.tolist(),
        "unknown_codes": bad_code.tolist(),
    }
