"""``residences_in_postgis`` (the join run inside PostGIS) returns what the in-memory join returns
on the same store, and ``vggeo join --store postgresql://…`` uses it."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import geopandas as gpd
import numpy as np
import pandas as pd
import psycopg
import pytest
import shapely
from click.testing import CliRunner
from exports import frames

from vggeo.cli import cli
from vggeo.errors import InputError
from vggeo.join import residences_in
from vggeo.join.postgis import residences_in_postgis
from vggeo.store import MemoryDelivery, open_store

pytestmark = pytest.mark.postgis

CASES = [("within", None), ("intersects", None), ("dwithin", 25.0), ("dwithin", 0.0)]


@pytest.fixture(scope="module")
def pg_store(postgis_url):
    """A PostGIS store of generated homes and provisions, and the same tables read back."""
    schema = "j_" + uuid.uuid4().hex[:10]
    res, prov = frames.residences(5000), frames.provisions(160)
    with open_store(postgis_url, create=True, schema=schema) as s:
        s.load_residences(res)
        s.apply(
            MemoryDelivery(
                "bestammelse",
                "e1",
                "base",
                datetime(2026, 1, 5, tzinfo=UTC),
                {"bestammelse": {"provisions": prov}},
            )
        )
        tables = {t: s.read_table(t) for t in ("residences", "provisions")}
    yield postgis_url, schema, tables
    with psycopg.connect(postgis_url, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def _frame(df: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame(
        {
            c: (
                df[c].astype("string")
                if c not in ("residence_id", "distance", "homes") and not c.startswith("homes_")
                else df[c]
            )
            for c in df.columns
        }
    )


@pytest.mark.parametrize(("predicate", "distance"), CASES)
def test_same_pairs_and_summary_as_the_in_memory_join(pg_store, predicate, distance):
    url, schema, t = pg_store
    ours = residences_in_postgis(url, schema=schema, predicate=predicate, distance=distance)
    mem = residences_in(t["residences"], t["provisions"], predicate=predicate, distance=distance)
    assert len(ours.pairs) == len(mem.pairs) > 0
    cols = ["residence_id", "provision_id", "provision_type", "status", "designation"]
    pd.testing.assert_frame_equal(_frame(ours.pairs[cols]), _frame(mem.pairs[cols]))
    if predicate == "dwithin":
        assert ours.pairs["distance"].to_numpy() == pytest.approx(
            mem.pairs["distance"].to_numpy(), abs=1e-9
        )
    assert list(ours.summary.columns) == list(mem.summary.columns)
    pd.testing.assert_frame_equal(_frame(ours.summary), _frame(mem.summary))


def test_filters_are_the_in_memory_joins(pg_store):
    url, schema, t = pg_store
    kw = {"types": ["plan", "naturvardsbestammelse"], "status": "GÄLLANDE"}
    ours = residences_in_postgis(url, schema=schema, **kw)
    mem = residences_in(t["residences"], t["provisions"], **kw)
    assert len(ours.pairs) == len(mem.pairs) > 0
    assert len(ours.summary) == len(mem.summary)
    with pytest.raises(InputError, match="unknown provision type"):
        residences_in_postgis(url, schema=schema, types="plans")
    with pytest.raises(InputError, match="distance"):
        residences_in_postgis(url, schema=schema, predicate="dwithin")


def test_cli_join_on_a_postgis_store(pg_store, tmp_path):
    url, schema, t = pg_store
    out = tmp_path / "pairs.parquet"
    r = CliRunner().invoke(
        cli, ["join", "--store", url, "--schema", schema, "-o", str(out), "--no-progress"]
    )
    assert r.exit_code == 0, r.output
    got = gpd.read_parquet(out)
    mem = residences_in(t["residences"], t["provisions"]).pairs
    assert set(zip(got["residence_id"], got["provision_id"], strict=True)) == set(
        zip(mem["residence_id"], mem["provision_id"].astype(str), strict=True)
    )
    homes = t["residences"].set_index("id").geometry
    expect = np.asarray(homes.loc[got["residence_id"]].array)
    assert shapely.equals_exact(np.asarray(got.geometry.array), expect, 0).all()
