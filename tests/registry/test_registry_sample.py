"""The synthetic registry looks like the country and is internally consistent."""

from __future__ import annotations

import numpy as np
import pandas as pd

from vggeo.apartment import parse_apartment_numbers
from vggeo.codes import unknown_mask
from vggeo.registry.fields import DERIVED_COLUMNS, FIELDS
from vggeo.sample.registry import generate_registry
from vggeo.sample.towns import swedish_towns


def test_same_seed_same_registry_other_seed_other():
    a, b, c = (generate_registry(500, seed=s) for s in (1, 1, 2))
    pd.testing.assert_frame_equal(
        pd.DataFrame(a.drop(columns="geometry")), pd.DataFrame(b.drop(columns="geometry"))
    )
    assert not a["sweref99x"].equals(c["sweref99x"])


def test_every_field_filled_with_documented_codes():
    g = generate_registry(4000, seed=3)
    assert [f.name for f in FIELDS] == [c for c in g.columns if c not in DERIVED_COLUMNS]
    assert list(g.columns[-4:]) == list(DERIVED_COLUMNS)
    for f in FIELDS:
        assert g[f.name].notna().any(), f.name
        if f.kind == "code":
            assert not unknown_mask(g[f.name], f.codes or f.name).any(), f.name
    assert set(g["deleted"].dropna().unique()) <= {0, 2}
    assert (g["updated_from"] == "public_data").all()
    assert g["owner_id"].dropna().str.fullmatch(r"\d{6}-\d{4}").all()
    assert (g["sweref99x"] % 1 == 0).all() and (g["rt90x"] % 1 == 0).all()
    assert (np.round(g["wgs84lat"], 6) == g["wgs84lat"]).all()
    shares = g["home_type"].value_counts(normalize=True)
    assert 0.44 < shares["lägenhet"] < 0.52 and 0.25 < shares["villa"] < 0.33


def test_apartments_share_addresses_with_unique_valid_numbers():
    g = generate_registry(6000, seed=4)
    apt = g[g["home_type"] == "lägenhet"]
    parsed = parse_apartment_numbers(apt["apartment_nr"])
    assert parsed["valid"].all() and apt["apartment_nr"].notna().all()
    per_address = apt.groupby("address", observed=True).size()
    assert per_address.median() >= 4  # flats share entrances
    assert not apt.duplicated(["address", "apartment_nr"]).any()
    # Houses have their own address and no apartment number.
    houses = g[g["home_type"] == "villa"]
    assert houses["apartment_nr"].isna().all()
    assert not g[g["home_type"] != "lägenhet"].duplicated("address").any()
    # Floors agree with the apartment number for about 97 % of flats (Valueguard's estimate).
    agree = (apt["floor"] == parsed["relative_floor"].astype(float)).mean()
    assert 0.94 < agree < 0.995


def test_homes_cluster_around_real_towns_by_size():
    g = generate_registry(20000, seed=6)
    towns = swedish_towns(1000)
    big = towns.iloc[0]  # Stockholm
    d = np.hypot(g.geometry.x - big["easting"], g.geometry.y - big["northing"])
    share = (d < 25_000).mean()
    expected = towns["population"].iloc[0] / towns["population"].sum()
    assert 0.5 * expected < share < 2.5 * expected
    # Everything lies in Sweden's SWEREF 99 TM envelope.
    assert (
        g.geometry.x.between(250_000, 930_000).all()
        and g.geometry.y.between(6_100_000, 7_700_000).all()
    )
    # County codes come from the towns: the homes near Stockholm are in county 01.
    assert (g.loc[d < 5000, "county_code"] == "01").mean() > 0.95
