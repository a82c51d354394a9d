"""``vggeo join``: defaults (within, all types and statuses, one row per pair), formats, errors."""

from __future__ import annotations

import pandas as pd
import pyogrio
import pytest
from click.testing import CliRunner

from vggeo.cli import cli
from vggeo.join import residences_in


def run(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def _key(df: pd.DataFrame) -> set[tuple[int, str]]:
    return set(zip(df["residence_id"].astype(int), df["provision_id"].astype(str), strict=True))


def test_defaults_are_within_all_types_all_statuses(tmp_path, store_gpkg, contract_tables):
    out = tmp_path / "pairs.csv"
    r = run("join", "--store", str(store_gpkg), "-o", str(out), "--no-progress")
    assert r.exit_code == 0, r.output
    got = pd.read_csv(out)
    expect = residences_in(contract_tables["residences"], contract_tables["provisions"]).pairs
    assert len(got) == len(expect) > 0
    assert _key(got) == _key(expect)
    assert not got.duplicated(["residence_id", "provision_id"]).any()
    # Every type and status present in the data occurs: no default filter.
    assert set(got["provision_type"]) == set(expect["provision_type"].astype(str))
    assert set(got["status"]) == set(expect["status"])
    assert list(got.columns) == [
        "residence_id",
        "provision_id",
        "provision_type",
        "status",
        "designation",
    ]


def test_parquet_and_gpkg_outputs_with_filters(tmp_path, store_gpkg, contract_tables):
    out = tmp_path / "p.parquet"
    summary = tmp_path / "s.csv"
    r = run(
        "join",
        "--store",
        str(store_gpkg),
        "-o",
        str(out),
        "--predicate",
        "dwithin",
        "--distance",
        "50",
        "--types",
        "plan,naturvardsbestammelse",
        "--status",
        "gällande",
        "--summary",
        str(summary),
    )
    assert r.exit_code == 0, r.output
    got = pd.read_parquet(out)
    expect = residences_in(
        contract_tables["residences"],
        contract_tables["provisions"],
        predicate="dwithin",
        distance=50,
        types=["plan", "naturvardsbestammelse"],
        status="gällande",
    ).pairs
    assert _key(got) == _key(expect) and len(got) > 0
    assert set(got["provision_type"]) <= {"plan", "naturvardsbestammelse"}
    assert (got["distance"] <= 50).all()
    s = pd.read_csv(summary)
    assert s["homes"].sum() == len(got)

    gp = tmp_path / "p.gpkg"
    r = run("join", "--store", str(store_gpkg), "-o", str(gp), "--predicate", "intersects")
    assert r.exit_code == 0, r.output
    layers = {n for n, _ in pyogrio.list_layers(gp)}
    assert layers == {"pairs", "summary"}
    pairs = pyogrio.read_dataframe(gp, layer="pairs")
    expect = residences_in(
        contract_tables["residences"], contract_tables["provisions"], predicate="intersects"
    ).pairs
    assert _key(pairs) == _key(expect)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--predicate", "dwithin"], "needs --distance"),
        (["--distance", "5"], "only to --predicate dwithin"),
        (["--types", "detaljplan"], "unknown provision type(s) detaljplan"),
        (["--predicate", "touches"], "Invalid value for '--predicate'"),
    ],
)
def test_bad_requests_write_nothing(tmp_path, store_gpkg, args, message):
    out = tmp_path / "j.csv"
    r = run("join", "--store", str(store_gpkg), "-o", str(out), *args)
    assert r.exit_code == 2, r.output
    assert message in r.output
    assert list(tmp_path.iterdir()) == []


def test_unknown_output_format(tmp_path, store_gpkg):
    r = run("join", "--store", str(store_gpkg), "-o", str(tmp_path / "j.xlsx"))
    assert r.exit_code == 2 and ".parquet, .csv, .gpkg" in r.output


@pytest.mark.postgis
def test_postgis_store_join_and_export(tmp_path, postgis_url, contract_tables):
    """The same commands on a PostGIS store (vggeo.store's other backend) give the same answers."""
    import psycopg
    from exports.frames import write_store

    # A database of its own in the session's cluster: a fresh store, nobody else's tables touched.
    with psycopg.connect(postgis_url, autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS vggeo_export_test")
        conn.execute("CREATE DATABASE vggeo_export_test")
    url = postgis_url.rsplit("/", 1)[0] + "/vggeo_export_test"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION postgis")
    postgis_url = url
    write_store(postgis_url, contract_tables)
    out = tmp_path / "pairs.parquet"
    r = run("join", "--store", postgis_url, "-o", str(out), "--no-progress")
    assert r.exit_code == 0, r.output
    expect = residences_in(contract_tables["residences"], contract_tables["provisions"]).pairs
    assert _key(pd.read_parquet(out)) == _key(expect)
    gp = tmp_path / "pg.gpkg"
    r = run(
        "export",
        "gpkg",
        "--store",
        postgis_url,
        "-o",
        str(gp),
        "--layers",
        "residences,provisions,affected_properties",
        "--no-progress",
    )
    assert r.exit_code == 0, r.output
    counts = dict(line.split("\t") for line in r.stdout.strip().splitlines())
    assert int(counts["provisions"]) == len(contract_tables["provisions"])
    assert int(counts["affected_properties"]) == len(contract_tables["affected_properties"])
