"""The registry's path into a store: ``vggeo registry load FILE --store STORE [--mode]``.

The residences read back from the store must equal what ``vggeo.registry`` read from the file —
every column, every dtype (nullable integers, categoricals with their categories, strings,
dates, the ``number`` lists) and every point — on both backends; ``upsert`` replaces by ``id``.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from vggeo.cli import cli
from vggeo.registry import read_registry
from vggeo.store import open_store

REPO = Path(__file__).resolve().parents[2]
SLICE = REPO / "sample_data" / "registry" / "registry.parquet"


@pytest.fixture(scope="module")
def registry():
    from vggeo.registry.readers import read_registry

    if not SLICE.exists():
        pytest.skip(f"{SLICE} not present (issue-3's sample slice)")
    return read_registry(SLICE)


def assert_same_residences(got, want) -> None:
    got = got.sort_values("id", ignore_index=True)
    want = want.sort_values("id", ignore_index=True)
    assert list(got.columns) == list(want.columns)
    pd.testing.assert_frame_equal(got.drop(columns="geometry"), want.drop(columns="geometry"))
    assert got.geometry.geom_equals_exact(want.geometry, 0).all()
    assert got.crs.to_epsg() == 3006


def test_registry_load_cli_into_a_geopackage_store(registry, tmp_path):
    # (the CLI has no --schema; PostGIS gets the same frames through the API test below)
    location = str(tmp_path / "store.gpkg")
    runner = CliRunner()
    r = runner.invoke(
        cli,
        ["registry", "load", str(SLICE), "-o", str(tmp_path / "out.parquet"), "--store", location],
    )
    assert r.exit_code == 0, r.output
    with open_store(location) as s:
        assert_same_residences(s.read_table("residences"), registry)
        assert s.ledger().extract_type.tolist() == ["replace"]


def test_registry_load_into_store_as_the_issue_writes_it(tmp_path):
    runner = CliRunner()
    r = runner.invoke(cli, ["registry", "load", str(SLICE), "--store", str(tmp_path / "s.gpkg")])
    assert r.exit_code == 0, r.output
    with open_store(tmp_path / "s.gpkg") as s:
        assert s.counts()["residences"] == len(read_registry(SLICE))
    assert not list(tmp_path.glob("*.parquet"))  # no -o: nothing but the store written
    bad = runner.invoke(cli, ["registry", "load", str(SLICE)])
    assert bad.exit_code == 2 and "--store" in bad.output


def test_load_residences_round_trip_and_upsert(store, registry, monkeypatch):
    import vggeo.store.base

    monkeypatch.setattr(vggeo.store.base, "WRITE_CHUNK", 700)  # several chunks, ragged end
    first = registry.iloc[:3000]
    store.load_residences(first, mode="replace")
    assert_same_residences(store.read_table("residences"), first)
    # an update: 1 000 rows overlap (changed), 1 000 are new
    upd = registry.iloc[2000:4000].copy()
    upd["living_area"] = upd["living_area"] + 1
    result = store.load_residences(upd, mode="upsert")
    assert result.counts["residences"]["residences"] == {"deleted": 1000, "inserted": 2000}
    want = pd.concat([registry.iloc[:2000], upd])
    assert_same_residences(store.read_table("residences"), want)
    # a bounding-box read uses the spatial index and agrees with shapely
    box = tuple(
        want.total_bounds[:2] + (want.total_bounds[2:] - want.total_bounds[:2]) * 0.3
    ) + tuple(want.total_bounds[:2] + (want.total_bounds[2:] - want.total_bounds[:2]) * 0.6)
    near = store.read_table("residences", bbox=box)
    expected = want.cx[box[0] : box[2], box[1] : box[3]]
    assert sorted(near.id) == sorted(expected.id) and len(near) > 0


def test_an_upsert_with_codes_as_plain_values_reads_them_back(store, registry):
    """Residences read back from an export come without categorical dtypes. A code the store has
    not seen yet (a new home type, a building type outside the code list) must be stored and
    read back as written, not as null."""
    first = registry.iloc[:50]
    store.load_residences(first, mode="replace")
    upd = first.iloc[:2].copy()
    upd["home_type"] = pd.Series(["kolonistuga", "villa"], index=upd.index, dtype=object)
    upd["building_type"] = pd.array([77, 30], dtype="Int64")
    store.load_residences(upd, mode="upsert")
    back = store.read_table("residences").set_index("id").loc[upd["id"]]
    assert back["home_type"].astype(object).tolist() == ["kolonistuga", "villa"]
    assert back["building_type"].astype(object).tolist() == [77, 30]
    # the earlier codes are still categories, in their order, the new ones after them
    cats = list(back["home_type"].dtype.categories)
    assert cats[: len(first["home_type"].cat.categories)] == list(first["home_type"].cat.categories)
    assert "kolonistuga" in cats


def test_an_upsert_with_a_code_of_the_wrong_type_is_refused(store, registry):
    from vggeo.errors import SchemaError

    store.load_residences(registry.iloc[:5], mode="replace")
    upd = registry.iloc[:1].copy()
    upd["building_type"] = pd.Series(["tjugo"], index=upd.index, dtype=object)
    with pytest.raises(SchemaError, match="building_type"):
        store.load_residences(upd, mode="upsert")
    assert_same_residences(store.read_table("residences"), registry.iloc[:5])
