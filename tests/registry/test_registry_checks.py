"""Consistency checks find exactly the problems put in, and measure distances correctly."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyproj

from vggeo.registry.checks import check_registry, coordinate_distances
from vggeo.sample.registry import generate_registry


def test_clean_registry_agrees_to_about_a_metre(small_registry):
    rep = check_registry(small_registry)
    assert rep.ok, rep.to_table()
    assert rep.summary["conflicting_coordinates"] == 0
    assert rep.distance_stats["max"] < 1.5
    assert rep.distance_stats["compared_rows"] == len(small_registry)


def test_injected_defects_are_found_exactly():
    g = generate_registry(3000, seed=5, defects=0.02)
    injected = g.attrs["defects"]
    rep = check_registry(g)
    assert not rep.ok
    for key in ("conflicting_coordinates", "bad_apartment_numbers", "unknown_codes"):
        found = sorted((rep.details[key]["row"] - 1).tolist())
        assert found == sorted(injected[key]), key
    assert (rep.details["unknown_codes"]["field"] == "kitchen_type").all()


def test_distance_is_measured_against_an_independent_oracle(small_registry):
    g = small_registry.copy()
    # Move row 3's WGS 84 pair 100 m north as PROJ (not vggeo) computes it.
    i = 3
    geod = pyproj.Geod(ellps="GRS80")
    lon, lat, _ = geod.fwd(g["wgs84lon"].iloc[i], g["wgs84lat"].iloc[i], 0.0, 100.0)
    g.loc[i, "wgs84lat"], g.loc[i, "wgs84lon"] = lat, lon
    rep = check_registry(g, threshold=5.0)
    row = rep.details["conflicting_coordinates"].iloc[0]
    assert row["row"] == i + 1 and row["id"] == g["id"].iloc[i]
    # Grid distance ≈ ground distance × scale factor (0.9996 near the central meridian, up to
    # ~1.0004 at the edges), plus the rounding of the original pair (≤ ~1 m).
    assert 98.5 < row["distance_m"] < 101.5
    assert row["pairs"] in ("sweref99/wgs84", "rt90/wgs84")
    # A 150 m threshold lets it pass.
    assert check_registry(g, threshold=150.0).summary["conflicting_coordinates"] == 0


def test_rt90_pair_matches_proj_direct_projection(small_registry):
    """RT 90 in the generated rows is Lantmäteriet's direct projection (EPSG:3847), per PROJ."""
    g = small_registry
    tr = pyproj.Transformer.from_crs(3006, 3847, always_xy=True)
    e, n = tr.transform(g["sweref99y"].to_numpy(), g["sweref99x"].to_numpy())
    assert np.abs(np.round(n) - g["rt90x"].to_numpy()).max() == 0
    assert np.abs(np.round(e) - g["rt90y"].to_numpy()).max() == 0
    tr = pyproj.Transformer.from_crs(3006, 4326, always_xy=True)
    lon, lat = tr.transform(g["sweref99y"].to_numpy(), g["sweref99x"].to_numpy())
    assert np.abs(np.round(lat, 6) - g["wgs84lat"].to_numpy()).max() < 1e-9


def test_swapped_and_missing_pairs_are_reported(small_registry):
    g = pd.DataFrame(small_registry.drop(columns="geometry"))
    north, east = float(g.loc[0, "rt90x"]), float(g.loc[0, "rt90y"])
    g.loc[0, "rt90x"], g.loc[0, "rt90y"] = east, north
    g.loc[1, ["sweref99x", "sweref99y", "rt90x", "rt90y", "wgs84lat", "wgs84lon"]] = np.nan
    rep = check_registry(g)
    assert rep.details["swapped_coordinates"]["row"].tolist() == [1]
    assert rep.details["swapped_coordinates"]["pair"].tolist() == ["rt90"]
    assert rep.details["no_coordinates"]["row"].tolist() == [2]
    d = coordinate_distances(g)
    assert np.isnan(d["max_distance"].iloc[1])


def test_report_is_json_and_table(small_registry):
    g = small_registry.copy()
    g["apartment_nr"] = g["apartment_nr"].astype("Int16")
    g.loc[5, "apartment_nr"] = 1100
    rep = check_registry(g)
    doc = json.loads(rep.to_json())
    assert doc["summary"]["bad_apartment_numbers"] == 1
    assert doc["details"]["bad_apartment_numbers"][0]["problem"] == "position_00"
    assert doc["ok"] is False
    text = rep.to_table()
    assert "bad_apartment_numbers" in text and "position_00" in text and "PROBLEMS FOUND" in text


def test_a_registry_without_construction_years_is_checked(tmp_path):
    """An account that cannot see construction_year (or a file without it): no notice rows, no
    crash (it raised KeyError on the notice's missing column)."""
    path = tmp_path / "few.jsonl"
    recs = [
        {"id": i, "sweref99x": 6580661.0 + i, "sweref99y": 677445.0, "rooms": 2} for i in (1, 2, 3)
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in recs))
    from vggeo.registry import read_registry

    rep = check_registry(read_registry(path))
    assert rep.summary["construction_year_placeholder"] == 0
    assert len(rep.details["construction_year_placeholder"]) == 0
