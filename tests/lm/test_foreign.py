"""Deliveries written by another hand are read whole: every provision, value, geometry and Berör
reference equals what the independent writer (tests/lm/foreign_writer.py) put in, on both the
member-by-member reader and the compiled path — which must engage on such files.

Also: a grouping level nobody told vggeo about, unknown members, unmapped leaves and counts
that disagree with the metadata are refused (read and ingest), never read as fewer objects.
"""

from __future__ import annotations

import re
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import shapely
from click.testing import CliRunner

import vggeo.lm._compiled as C
from vggeo.cli import cli as main
from vggeo.errors import IntegrityError
from vggeo.lm.bestammelse import read_bestammelser

sys.path.insert(0, str(Path(__file__).parent))
import foreign_writer as fw  # noqa: E402

STYLES = {
    "prefixed-wrapped-pretty": fw.Style(),
    "default-ns-flat-crlf-reordered": fw.Style(
        prefix=None,
        pretty=False,
        crlf=True,
        wrap=False,
        reverse_order=True,
        bounded_by=False,
        srs_dimension=False,
    ),
    "other-prefixes-crlf": fw.Style(gml_prefix="g", geo_prefix="geo", crlf=True, prefix="x"),
}


def _date(v) -> str | None:
    import pandas as pd

    return None if pd.isna(v) else pd.Timestamp(v).strftime("%Y-%m-%d")


def _check(data, truth: list[fw.Truth]) -> None:
    prov = data.provisions.set_index("provision_id")
    assert len(prov) == len(truth)
    for t in truth:
        r = prov.loc[t.provision_id]
        assert str(r["provision_type"]) == t.provision_type
        assert (
            r["designation"],
            r["name"],
            r["status"],
            r["municipality"],
            r["plan_type"],
            r["alt_designation"],
        ) == (t.designation, t.name, t.status, t.municipality, t.plan_type, t.alt_designation)
        assert int(r["object_version"]) == t.object_version
        assert _date(r["last_changed"]) == t.last_changed
        assert _date(r["implementation_start"]) == t.implementation_start
        assert _date(r["implementation_end"]) == t.implementation_end
        g = r["geometry"]
        assert g.geom_type == "MultiPolygon" and len(g.geoms) == len(t.polygons)
        for poly, want in zip(g.geoms, t.polygons, strict=True):
            np.testing.assert_allclose(
                np.asarray(poly.exterior.coords), np.asarray(want[0]), atol=1e-6
            )
            assert len(poly.interiors) == len(want) - 1
            for got_i, want_i in zip(poly.interiors, want[1:], strict=True):
                np.testing.assert_allclose(np.asarray(got_i.coords), np.asarray(want_i), atol=1e-6)
    aff = data.affected
    got_aff = sorted(zip(aff["provision_id"], aff["register_unit_id"], strict=True))
    assert got_aff == sorted((t.provision_id, a) for t in truth for a in t.affected)
    dec = data.decisions
    got_dec = sorted(
        (p, k, int(v), _date(f), _date(d), i)
        for p, k, v, f, d, i in zip(
            dec["provision_id"],
            dec["kind"],
            dec["object_version"],
            dec["valid_from"],
            dec["decision_date"],
            dec["decision_id"],
            strict=True,
        )
    )
    want_dec = sorted(
        (
            t.provision_id,
            d["kind"],
            d["object_version"],
            d["valid_from"],
            f"{d['decision_date'][:4]}-{d['decision_date'][4:6]}-{d['decision_date'][6:]}",
            d["decision_id"],
        )
        for t in truth
        for d in t.decisions
    )
    assert got_dec == want_dec
    assert not data.unmapped
    assert shapely.is_valid(data.provisions.geometry.values).all()


@pytest.fixture(scope="module", params=list(STYLES))
def foreign(request, tmp_path_factory):
    path = tmp_path_factory.mktemp("foreign") / f"{request.param}.zip"
    truth = fw.write_delivery(path, 1200, seed=len(request.param), style=STYLES[request.param])
    return path, truth


def test_member_by_member_reads_what_was_written(foreign, monkeypatch):
    path, truth = foreign
    monkeypatch.setattr(C, "MIN_FILE_BYTES", 10**12)
    C.STATS.clear()
    _check(read_bestammelser(path), truth)
    assert not C.STATS["files"]


def test_compiled_path_engages_and_reads_what_was_written(foreign, monkeypatch):
    path, truth = foreign
    monkeypatch.setattr(C, "MIN_FILE_BYTES", 0)
    monkeypatch.setattr(C, "LEARN_BYTES", 64 * 1024)
    monkeypatch.setattr(C, "CHUNK_BYTES", 128 * 1024)
    C.STATS.clear()
    _check(read_bestammelser(path), truth)
    assert C.STATS["files"] == 1 and not C.STATS["fallbacks"]
    # all but the learning chunk's members were read by the stylesheet itself
    assert C.STATS["exact"] > 0.8 * len(truth)
    assert C.STATS["extractor"] == 0


def test_ingest_applies_a_foreign_delivery_whole(foreign, tmp_path):
    path, truth = foreign
    r = CliRunner().invoke(main, ["ingest", str(path), "--store", str(tmp_path / "s.gpkg")])
    assert r.exit_code == 0, r.output
    assert f"provisions -0/+{len(truth)}" in r.output


# --- refusals -------------------------------------------------------------------------------


def _rewrite(src: Path, dst: Path, edit) -> None:
    """A copy of a foreign delivery with its data file edited and the metadata's size fixed."""
    with zipfile.ZipFile(src) as z:
        names = z.namelist()
        inner_name = next(n for n in names if n.endswith(".zip"))
        meta_name = next(n for n in names if n.endswith("_metadata.xml"))
        with zipfile.ZipFile(z.open(inner_name)) as iz:
            [data_name] = iz.namelist()
            data = edit(iz.read(data_name).decode())
        meta = z.read(meta_name).decode()
    data_b = data.encode()
    meta = re.sub(
        r"<md:filstorlek>\d+</md:filstorlek>", f"<md:filstorlek>{len(data_b)}</md:filstorlek>", meta
    )
    import io

    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as iz:
        iz.writestr(data_name, data_b)
    with zipfile.ZipFile(dst, "w") as z:
        z.writestr(inner_name, inner.getvalue())
        z.writestr(meta_name, meta)


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    path = tmp_path_factory.mktemp("small") / "small.zip"
    return path, fw.write_delivery(path, 40, seed=3, style=fw.Style())


def test_unknown_feature_elements_are_refused_naming_the_path(small, tmp_path):
    src, _ = small
    bad = tmp_path / "bad.zip"
    _rewrite(src, bad, lambda d: re.sub(r"<(/?)mb:(Plan|Fornlamning)\b", r"<\1mb:Okand\2", d))
    with pytest.raises(
        IntegrityError,
        match=r"recognised in .*the metadata says 40.*"
        r"member/MarkreglerandeBestammelse.*vggeo inspect",
    ):
        read_bestammelser(bad)
    store = tmp_path / "s.gpkg"
    r = CliRunner().invoke(main, ["ingest", str(bad), "--store", str(store)])
    assert r.exit_code == 2 and "not understood" in r.output
    assert not store.exists()
    r = CliRunner().invoke(main, ["read", str(bad), "-o", str(tmp_path / "o.parquet")])
    assert r.exit_code == 2
    r = CliRunner().invoke(main, ["inspect", str(bad)])
    assert r.exit_code == 2 and "FAILED" in r.output


def test_a_bare_file_yielding_nothing_exits_non_zero(small, tmp_path):
    src, _ = small
    with (
        zipfile.ZipFile(src) as z,
        zipfile.ZipFile(z.open(next(n for n in z.namelist() if n.endswith(".zip")))) as iz,
    ):
        data = iz.read(iz.namelist()[0]).decode()
    bare = tmp_path / "markreglerandebestammelse_1.xml"
    bare.write_text(
        re.sub(
            r"<(/?)mb:(Plan|Naturvardsbestammelse|OvrigBestammelse|Fornlamning)\b",
            r"<\1mb:X\2",
            data,
        ),
        encoding="utf-8",
    )
    r = CliRunner().invoke(main, ["read", str(bare), "-o", str(tmp_path / "o.parquet")])
    assert r.exit_code == 2 and "0 objects recognised" in r.output


def test_unmapped_leaves_refuse_ingest_unless_accepted(small, tmp_path):
    src, truth = small
    bad = tmp_path / "extra.zip"
    _rewrite(
        src,
        bad,
        lambda d: d.replace("</mb:PlanAttribut>", "<mb:nyttFalt>v</mb:nyttFalt></mb:PlanAttribut>"),
    )
    store = tmp_path / "s.gpkg"
    r = CliRunner().invoke(main, ["ingest", str(bad), "--store", str(store)])
    assert r.exit_code == 2
    assert "Plan/attribut/nyttfalt  (10×)" in r.output and "--accept-unmapped" in r.output
    assert not store.exists()
    # read lists the path too (and writes what it could read)
    r = CliRunner().invoke(main, ["read", str(bad), "-o", str(tmp_path / "o.parquet")])
    assert r.exit_code == 0 and "Plan/attribut/nyttfalt  (10×)" in r.output
    r = CliRunner().invoke(
        main,
        ["ingest", str(bad), "--store", str(store), "--accept-unmapped", "Plan/attribut/nyttFalt"],
    )
    assert r.exit_code == 0, r.output
    from vggeo.store import open_store

    with open_store(str(store)) as s:
        [entry] = s._read_ledger()
    assert entry.accepted_unmapped == {"Plan/attribut/nyttfalt": 10}
    assert "_accepted_unmapped" not in entry.counts
    r = CliRunner().invoke(main, ["store", "status", "--store", str(store)])
    assert r.exit_code == 0, r.output


def test_count_differing_from_metadata_is_refused(small, tmp_path):
    src, truth = small
    bad = tmp_path / "more.zip"

    def edit(d: str) -> str:  # one member holds a second feature: 40 members, 41 provisions
        m = re.search(r"<mb:MarkreglerandeBestammelse>.*?</mb:MarkreglerandeBestammelse>", d, re.S)
        twin = m.group(0).replace(truth[0].provision_id, "00000000-0000-4000-8000-000000000001")
        return d.replace(m.group(0), m.group(0) + twin, 1)

    _rewrite(src, bad, edit)
    with pytest.raises(IntegrityError, match="41 objects recognised in .*the metadata says 40"):
        read_bestammelser(bad)
    r = CliRunner().invoke(main, ["ingest", str(bad), "--store", str(tmp_path / "s.gpkg")])
    assert r.exit_code == 2 and not (tmp_path / "s.gpkg").exists()


def test_a_required_column_entirely_null_is_an_error(small, tmp_path):
    src, _ = small
    bad = tmp_path / "renamed.zip"
    # every designation spelt in a way no mapping knows, and that path accepted as "dropped"
    _rewrite(src, bad, lambda d: d.replace("bestammelsebeteckning>", "beteckningX>"))
    with pytest.raises(IntegrityError, match="designation is null in all 40 provisions"):
        read_bestammelser(bad)
    r = CliRunner().invoke(
        main,
        [
            "ingest",
            str(bad),
            "--store",
            str(tmp_path / "s.gpkg"),
            "--accept-unmapped",
            "*/attribut/beteckningx",
        ],
    )
    assert r.exit_code == 2 and "designation is null" in r.output


def test_ledger_rows_without_the_accepted_field_still_read():
    import json
    from datetime import UTC, datetime

    from vggeo.store.ledger import LedgerEntry

    now = datetime(2026, 1, 1, tzinfo=UTC)
    old = {
        "seq": 1,
        "extract_id": "x",
        "product": "bestammelse",
        "extract_type": "base",
        "applied_at": now,
        "counts": json.dumps({"s": {"t": {"inserted": 1}}}),
    }
    e = LedgerEntry.from_row(old)
    assert e.accepted_unmapped == {} and e.counts == {"s": {"t": {"inserted": 1}}}
    e2 = LedgerEntry(
        1,
        "x",
        "bestammelse",
        "base",
        None,
        None,
        now,
        None,
        e.counts,
        accepted_unmapped={"Plan/attribut/a": 3},
    )
    back = LedgerEntry.from_row(e2.as_row())
    assert back.accepted_unmapped == {"Plan/attribut/a": 3} and back.counts == e.counts


def test_read_to_geopackage_in_parts_as_gdal_reads_it(foreign, tmp_path, monkeypatch):
    """``vggeo read -o x.gpkg`` writes part by part (here parts of ~100 provisions on the
    compiled path): GDAL reads back what the independent writer wrote, each provision once."""
    from types import SimpleNamespace

    import pyogrio

    path, truth = foreign
    monkeypatch.setattr(C, "MIN_FILE_BYTES", 0)
    monkeypatch.setattr(C, "LEARN_BYTES", 64 * 1024)
    monkeypatch.setattr(C, "CHUNK_BYTES", 64 * 1024)
    monkeypatch.setattr(C, "BATCH_ROWS", 100)
    out = tmp_path / "parts.gpkg"
    r = CliRunner().invoke(main, ["read", str(path), "-o", str(out)])
    assert r.exit_code == 0, r.output
    assert f"provisions\t{len(truth)}" in r.output
    layers = {name: pyogrio.read_dataframe(out, layer=name) for name, _ in pyogrio.list_layers(out)}
    _check(
        SimpleNamespace(
            provisions=layers["provisions"],
            affected=layers["affected_properties"],
            decisions=layers["decisions"],
            unmapped={},
        ),
        truth,
    )
