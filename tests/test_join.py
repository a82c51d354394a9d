"""vggeo.join.residences_in: equal to PostGIS ST_Within / ST_Intersects / ST_DWithin."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import shapely
from exports import frames

from vggeo.errors import CRSError, InputError, SchemaError
from vggeo.join import residences_in


def _load_postgis(url: str, res, prov) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS j_res, j_prov")
        conn.execute("CREATE TABLE j_res (id bigint PRIMARY KEY, geom geometry(Point, 3006))")
        conn.execute(
            "CREATE TABLE j_prov (provision_id text PRIMARY KEY, provision_type text, "
            "status text, geom geometry(MultiPolygon, 3006))"
        )
        # WKB hex through COPY: the exact doubles we hold, no text rounding on the way.
        with conn.cursor() as cur:
            with cur.copy("COPY j_res (id, geom) FROM STDIN") as cp:
                wkb = shapely.to_wkb(res.geometry.array, hex=True, include_srid=False)
                for i, g in zip(res["id"].tolist(), wkb, strict=True):
                    cp.write_row((i, None if g is None else f"SRID=3006;{g}"))
            with cur.copy(
                "COPY j_prov (provision_id, provision_type, status, geom) FROM STDIN"
            ) as cp:
                wkb = shapely.to_wkb(prov.geometry.array, hex=True)
                for row in zip(
                    prov["provision_id"],
                    prov["provision_type"].astype(str),
                    prov["status"],
                    wkb,
                    strict=True,
                ):
                    cp.write_row((*row[:3], f"SRID=3006;{row[3]}"))
        conn.execute("CREATE INDEX ON j_res USING gist (geom)")
        conn.execute("ANALYZE j_res; ANALYZE j_prov")


def _postgis_pairs(url: str, condition: str) -> set[tuple[int, str]]:
    import psycopg

    with psycopg.connect(url) as conn:
        rows = conn.execute(
            f"SELECT r.id, p.provision_id FROM j_res r JOIN j_prov p ON {condition}"
        ).fetchall()
    return {(int(a), str(b)) for a, b in rows}


def _pairs(result) -> set[tuple[int, str]]:
    p = result.pairs
    return set(
        zip(
            p["residence_id"].astype(int).tolist(),
            p["provision_id"].astype(str).tolist(),
            strict=True,
        )
    )


DATASETS = {
    "towns": lambda: (frames.residences(4000), frames.provisions(150)),
    "edges": frames.edge_cases,
}
CASES = [
    ("within", None, "ST_Within(r.geom, p.geom)"),
    ("intersects", None, "ST_Intersects(r.geom, p.geom)"),
    ("dwithin", 25.0, "ST_DWithin(r.geom, p.geom, 25.0)"),
    ("dwithin", 3.0, "ST_DWithin(r.geom, p.geom, 3.0)"),
    ("dwithin", 0.0, "ST_DWithin(r.geom, p.geom, 0.0)"),
]


@pytest.mark.postgis
@pytest.mark.parametrize("dataset", sorted(DATASETS))
def test_equals_postgis(postgis_url, dataset):
    res, prov = DATASETS[dataset]()
    _load_postgis(postgis_url, res, prov)
    for predicate, distance, condition in CASES:
        ours = residences_in(res, prov, predicate=predicate, distance=distance, chunk_size=17)
        theirs = _postgis_pairs(postgis_url, condition)
        assert _pairs(ours) == theirs, (predicate, distance)
        assert len(ours.pairs) == len(theirs)  # one row per pair, no duplicates
    if dataset == "edges":
        # The oracle agrees and the edge cases really are edge cases.
        within = _pairs(residences_in(res, prov))
        inter = _pairs(residences_in(res, prov, predicate="intersects"))
        assert (2, "aaaaaaaa") in inter - within  # on the outer edge
        assert (5, "aaaaaaaa") in inter - within  # on the hole's edge
        assert not any(r == 4 for r, _ in inter)  # inside the hole
        assert (6, "bbbbbbbb") in within  # second part of a multipolygon
        assert (8, "cccccccc") in inter - within  # on a diagonal edge


@pytest.mark.postgis
def test_dwithin_distances_equal_postgis(postgis_url):
    import psycopg

    res, prov = frames.edge_cases()
    _load_postgis(postgis_url, res, prov)
    ours = residences_in(res, prov, predicate="dwithin", distance=30).pairs
    with psycopg.connect(postgis_url) as conn:
        rows = conn.execute(
            "SELECT r.id, p.provision_id, ST_Distance(r.geom, p.geom) FROM j_res r "
            "JOIN j_prov p ON ST_DWithin(r.geom, p.geom, 30)"
        ).fetchall()
    theirs = {(int(a), b): d for a, b, d in rows}
    got = {
        (int(a), b): d
        for a, b, d in ours[["residence_id", "provision_id", "distance"]].itertuples(index=False)
    }
    assert got.keys() == theirs.keys()
    for k, d in theirs.items():
        assert got[k] == pytest.approx(d, abs=1e-9)
    assert got[(7, "b" * 8)] == 25.0


def test_pairs_and_summary_shape():
    res, prov = frames.residences(2000), frames.provisions(80)
    result = residences_in(res, prov)
    pairs, summary = result
    assert list(pairs.columns) == [
        "residence_id",
        "provision_id",
        "provision_type",
        "status",
        "designation",
    ]
    assert not pairs.duplicated(["residence_id", "provision_id"]).any()
    # Sorted by residence id, then provision id.
    key = pairs[["residence_id", "provision_id"]].astype({"provision_id": str})
    assert key.equals(key.sort_values(["residence_id", "provision_id"], ignore_index=True))
    # Provision attributes travel with the id.
    merged = pairs.merge(
        prov[["provision_id", "designation", "status"]], on="provision_id", suffixes=("", "_p")
    )
    assert (merged["designation"] == merged["designation_p"]).all()
    assert (merged["status"] == merged["status_p"]).all()
    # Summary: every provision once; counts agree with the pairs, by home type too.
    assert len(summary) == len(prov) and set(summary["provision_id"]) == set(prov["provision_id"])
    counts = pairs.groupby("provision_id").size()
    s = summary.set_index("provision_id")
    assert (s.loc[counts.index, "homes"].to_numpy() == counts.to_numpy()).all()
    assert s["homes"].sum() == len(pairs) and (s["homes"] > 0).sum() == len(counts)
    with_type = pairs.merge(res[["id", "home_type"]], left_on="residence_id", right_on="id")
    by_type = with_type.groupby(["provision_id", "home_type"], observed=True).size()
    for (pid, ht), n in by_type.items():
        assert s.loc[pid, f"homes_{'_'.join(ht.split())}"] == n
    type_cols = [c for c in s.columns if c.startswith("homes_")]
    assert (s[type_cols].sum(axis=1) == s["homes"]).all()


def test_filters_types_and_status():
    res, prov = frames.residences(2000), frames.provisions(100)
    everything = residences_in(res, prov).pairs
    plans = residences_in(res, prov, types=["plan"], status="Gällande").pairs
    expect = everything[
        (everything["provision_type"] == "plan") & (everything["status"] == "gällande")
    ]
    assert len(plans) > 0 and len(plans) < len(everything)
    assert _pairs_df(plans) == _pairs_df(expect)
    summary = residences_in(res, prov, types="plan").summary
    assert set(summary["provision_type"].astype(str)) == {"plan"}


def _pairs_df(df: pd.DataFrame) -> set:
    return set(zip(df["residence_id"], df["provision_id"], strict=True))


def test_input_order_and_crs_do_not_change_result():
    res, prov = frames.residences(1500), frames.provisions(60)
    a = residences_in(res, prov).pairs
    shuffled = res.sample(frac=1, random_state=4)
    prov_wgs = prov.sample(frac=1, random_state=5).to_crs(4326)
    b = residences_in(shuffled, prov_wgs, chunk_size=7).pairs
    # Reprojection moves vertices by < 1 µm; homes are metres away from edges here.
    assert a[["residence_id", "provision_id"]].equals(b[["residence_id", "provision_id"]])


def test_empty_inputs():
    res, prov = frames.edge_cases()
    r = residences_in(res.iloc[:0], prov)
    assert len(r.pairs) == 0 and (r.summary["homes"] == 0).all() and len(r.summary) == 3
    r = residences_in(res, prov.iloc[:0])
    assert len(r.pairs) == 0 and len(r.summary) == 0
    r = residences_in(res, prov, predicate="dwithin", distance=1, types=["utredning"])
    assert len(r.pairs) == 0 and "distance" in r.pairs.columns


@pytest.mark.parametrize(
    "kwargs, error, text",
    [
        ({"predicate": "touches"}, InputError, "unknown predicate"),
        ({"predicate": "dwithin"}, InputError, "needs a distance"),
        ({"predicate": "dwithin", "distance": -1}, InputError, "≥ 0"),
        ({"predicate": "dwithin", "distance": np.nan}, InputError, "≥ 0"),
        ({"distance": 5}, InputError, "only to predicate 'dwithin'"),
        ({"types": ["detaljplan"]}, InputError, "unknown provision type"),
    ],
)
def test_bad_requests(kwargs, error, text):
    res, prov = frames.edge_cases()
    with pytest.raises(error, match=text):
        residences_in(res, prov, **kwargs)


def test_missing_columns_and_crs():
    res, prov = frames.edge_cases()
    with pytest.raises(SchemaError, match="designation"):
        residences_in(res, prov.drop(columns="designation"))
    with pytest.raises(SchemaError, match="'id'"):
        residences_in(res.rename(columns={"id": "rid"}), prov)
    with pytest.raises(CRSError, match="no CRS"):
        residences_in(res.set_crs(None, allow_override=True), prov)
    with pytest.raises(CRSError, match="metres"):
        residences_in(res.to_crs(4326), prov, predicate="dwithin", distance=5)


def test_home_types_that_differ_only_in_spaces_share_a_summary_column():
    """Two labels with one column name ("småhus övriga", and with a no-break space): the column
    counts both, so the counts by type still add up to the homes."""
    res, prov = frames.residences(300), frames.provisions(20)
    pairs = residences_in(res, prov).pairs
    inside = res["id"].isin(pairs["residence_id"]).to_numpy()
    assert inside.sum() >= 3
    labels = np.where(np.arange(len(res)) % 2, "småhus övriga", "småhus\u00a0övriga")
    res = res.assign(home_type=pd.Series(labels, index=res.index, dtype=object))
    s = residences_in(res, prov).summary.set_index("provision_id")
    type_cols = [c for c in s.columns if c.startswith("homes_")]
    assert type_cols == ["homes_småhus_övriga"]
    assert (s["homes_småhus_övriga"] == s["homes"]).all() and s["homes"].sum() == len(pairs)
