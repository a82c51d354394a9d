"""Deliveries in every form, their metadata, verification against it, and deletion files."""

from __future__ import annotations

import re
import shutil
import zipfile
from pathlib import Path

import pandas as pd
import pytest
from geopandas.testing import assert_geodataframe_equal

from vggeo.errors import DeliveryError, IntegrityError
from vggeo.lm import open_delivery

SET = "markreglerandebestammelse"


def _forms(unpack, outer: Path, tmp: Path) -> dict[str, Path]:
    folder = unpack(outer, tmp / "folder")
    half = unpack(outer, tmp / "half", inner_too=False)  # folder holding the set ZIPs
    set_zip = next(half.rglob(f"{SET}.zip"))
    xmls = sorted(folder.rglob(f"{SET}_[0-9]*.xml"))
    return {"zip": outer, "folder": folder, "half": half, "set_zip": set_zip, "xml": xmls[0]}


def test_every_form_gives_the_same_delivery(bestammelse_deliveries, tmp_path, unpack):
    forms = _forms(unpack, bestammelse_deliveries[1], tmp_path)
    ref = open_delivery(forms["zip"])
    assert ref.product == "bestammelse" and ref.extract_type == "change" and ref.crs == 3006
    assert ref.sets == [SET] and ref.form == "zip"
    tables = ref.read(SET)
    for name in ("folder", "half", "set_zip"):
        d = open_delivery(forms[name])
        assert (d.extract_id, d.previous_extract_id, d.extract_type, d.produced_at, d.crs) == (
            ref.extract_id,
            ref.previous_extract_id,
            ref.extract_type,
            ref.produced_at,
            ref.crs,
        )
        assert d.checksum == ref.checksum, name
        assert d.verify() == ref.verify()
        assert d.deletions(SET) == ref.deletions(SET)
        other = d.read(SET)
        assert_geodataframe_equal(other["provisions"], tables["provisions"])
        for t in ("affected_properties", "decisions", "subsets"):
            pd.testing.assert_frame_equal(other[t], tables[t])


def test_single_data_file(bestammelse_deliveries, tmp_path, unpack):
    forms = _forms(unpack, bestammelse_deliveries[0], tmp_path)
    d = open_delivery(forms["xml"])
    assert d.form == "xml" and d.product == "bestammelse" and d.crs == 3006
    assert d.extract_id is None and d.extract_type is None
    assert len(d.read(SET)["provisions"]) == 70
    with pytest.raises(IntegrityError, match="no metadata"):
        d.verify()


def test_metadata_fields(bestammelse_deliveries):
    base, ch1, ch2 = (open_delivery(p) for p in bestammelse_deliveries)
    assert base.extract_type == "base" and ch1.extract_type == ch2.extract_type == "change"
    # Lantmäteriet's metadata does not name the extract a change follows (seeds 003/004)
    assert base.previous_extract_id is ch1.previous_extract_id is ch2.previous_extract_id is None
    assert base.produced_at < ch1.produced_at < ch2.produced_at
    md = base.metadata[SET]
    assert md.subsets == ["Basinformation", "Berörkrets"] and md.selection_type == "kommunkod"
    assert md.total_count == 160 and len(md.files) == 3
    assert md.files["count"].tolist() == [70, 70, 20]
    assert all(len(c) == 4 for c in md.selection)


def test_file_names_sort_in_application_order(bestammelse_deliveries):
    names = [p.name for p in bestammelse_deliveries]
    assert names == sorted(names) and names[0].startswith("000_base_")


def test_deletions_listed_per_set(bestammelse_deliveries):
    base, ch1, _ = (open_delivery(p) for p in bestammelse_deliveries)
    assert base.deletions(SET) == set()
    gone = ch1.deletions(SET)
    assert gone and gone <= set(base.read(SET)["provisions"]["provision_id"])
    with pytest.raises(DeliveryError, match="no information set"):
        ch1.deletions("inteckning")


def _rewrite_deletions(folder: Path, member) -> Path:
    """Rewrite the set's deletion file: each ``<BorttagMember>`` replaced by ``member(id)``."""
    f = next(folder.rglob(f"{SET}_borttag.xml"))
    text = f.read_text()
    ids = re.findall(r"<objektidentitet>([^<]+)</objektidentitet>", text)
    assert ids
    body = re.sub(
        r"<BorttagMember>\s*<objektidentitet>([^<]+)</objektidentitet>\s*</BorttagMember>",
        lambda m: member(m.group(1)),
        text,
    )
    f.write_text(body)
    return f


@pytest.mark.parametrize(
    "member",
    [
        lambda i: f'<BorttagMember objektidentitet="{i}"/>',
        lambda i: f'<BorttagMember objektidentitet=" {i.upper()} "></BorttagMember>',
        # both spellings of one object's identity: one object
        lambda i: (
            f'<BorttagMember objektidentitet="{i}"><objektidentitet>{i}</objektidentitet>'
            "</BorttagMember>"
        ),
        lambda i: f"<lista><Borttag><objektidentitet>{i}</objektidentitet></Borttag></lista>",
    ],
    ids=["attribute", "attribute-spaced", "attribute-and-leaf", "grouped"],
)
def test_deletions_in_other_spellings(bestammelse_deliveries, tmp_path, unpack, member):
    want = open_delivery(bestammelse_deliveries[1]).deletions(SET)
    folder = unpack(bestammelse_deliveries[1], tmp_path / "t")
    _rewrite_deletions(folder, member)
    assert open_delivery(folder).deletions(SET) == want


@pytest.mark.parametrize(
    "member",
    [
        lambda i: "<BorttagMember/>",
        lambda i: f'<BorttagMember id="{i}"/>',
        lambda i: f"<BorttagMember><uuid>{i}</uuid></BorttagMember>",
        lambda i: "<BorttagMember><objektidentitet> </objektidentitet></BorttagMember>",
        lambda i: f"<Borttag><uuid>{i}</uuid></Borttag>",
    ],
    ids=["empty", "other-attribute", "other-leaf", "blank-leaf", "unnamed-member"],
)
def test_deletion_member_without_identity_refused(bestammelse_deliveries, tmp_path, unpack, member):
    folder = unpack(bestammelse_deliveries[1], tmp_path / "t")
    _rewrite_deletions(folder, member)
    with pytest.raises(IntegrityError, match="gives no objektidentitet") as err:
        open_delivery(folder).deletions(SET)
    assert f"{SET}_borttag.xml" in str(err.value)


# --- verification: each discrepancy named ----------------------------------------------------------


def _tamper(unpack, outer: Path, tmp: Path, edit) -> Path:
    folder = unpack(outer, tmp / "t")
    edit(folder)
    return folder


def _meta(folder: Path) -> Path:
    return next(folder.rglob(f"{SET}_metadata.xml"))


def test_missing_file_named(bestammelse_deliveries, tmp_path, unpack):
    folder = _tamper(
        unpack,
        bestammelse_deliveries[0],
        tmp_path,
        lambda f: next(f.rglob(f"{SET}_2.xml")).unlink(),
    )
    with pytest.raises(IntegrityError, match=f"missing: \\['{SET}_2.xml'\\]"):
        open_delivery(folder).verify()


def test_wrong_count_named(bestammelse_deliveries, tmp_path, unpack):
    def edit(f):
        m = _meta(f)
        m.write_text(
            m.read_text().replace(
                "<antalObjekt>70</antalObjekt>", "<antalObjekt>71</antalObjekt>", 1
            )
        )

    folder = _tamper(unpack, bestammelse_deliveries[0], tmp_path, edit)
    with pytest.raises(IntegrityError, match=f"{SET}_1.xml holds 70 objects, the metadata says 71"):
        open_delivery(folder).verify()


def test_unlisted_file_named(bestammelse_deliveries, tmp_path, unpack):
    def edit(f):
        src = next(f.rglob(f"{SET}_3.xml"))
        shutil.copy(src, src.with_name(f"{SET}_4.xml"))

    folder = _tamper(unpack, bestammelse_deliveries[0], tmp_path, edit)
    with pytest.raises(IntegrityError, match="not listed"):
        open_delivery(folder).verify()


def test_size_mismatch_named(bestammelse_deliveries, tmp_path, unpack):
    def edit(f):
        x = next(f.rglob(f"{SET}_3.xml"))
        x.write_bytes(x.read_bytes() + b"\n")

    folder = _tamper(unpack, bestammelse_deliveries[0], tmp_path, edit)
    with pytest.raises(IntegrityError, match="bytes, the metadata says"):
        open_delivery(folder).verify()


def test_change_without_deletion_file(bestammelse_deliveries, tmp_path, unpack):
    def edit(f):
        next(f.rglob(f"{SET}_borttag.xml")).unlink()
        m = _meta(f)
        text = m.read_text()
        start = text.index(f"<Fil><filnamn>{SET}_borttag.xml")
        m.write_text(text[:start] + text[text.index("</Fil>", start) + 6 :])

    folder = _tamper(unpack, bestammelse_deliveries[1], tmp_path, edit)
    with pytest.raises(IntegrityError, match="change extract without a deletion file"):
        open_delivery(folder).verify()


def test_extract_type_contradiction(bestammelse_deliveries, tmp_path, unpack):
    def edit(f):
        m = _meta(f)
        m.write_text(m.read_text().replace("förändringsuttag", "basuttag"))

    folder = _tamper(unpack, bestammelse_deliveries[1], tmp_path, edit)
    with pytest.raises(IntegrityError, match="base extract with a deletion file"):
        open_delivery(folder).verify()


@pytest.mark.parametrize(
    ("attributes", "path"),
    [
        (
            'uttagsidentitet="00000000-0000-4000-8000-000000000000"',
            "uttagsidentitet (another value)",
        ),
        ('filer="1"', "@filer"),
        ('kanal="sftp"', "@kanal"),
    ],
    ids=["contradicting-id", "ignored-wrapper", "unknown"],
)
def test_what_the_metadata_holds_beyond_the_mapping_is_refused(
    bestammelse_deliveries, tmp_path, unpack, attributes, path
):
    """The metadata decides what is applied and what the ledger records: an identity written
    twice with two values (the attribute was taken), or a value nobody maps, is refused like
    data, and applied only when accepted by name."""
    from click.testing import CliRunner

    from vggeo.cli import cli
    from vggeo.lm.package import UnmappedError

    def edit(f):
        m = _meta(f)
        m.write_text(m.read_text().replace("<Metadata ", f"<Metadata {attributes} ", 1))

    folder = _tamper(unpack, bestammelse_deliveries[0], tmp_path, edit)
    with pytest.raises(UnmappedError) as err:
        open_delivery(folder).read(SET)
    assert err.value.paths == {f"Metadata/{path}": 1}
    store = tmp_path / "s.gpkg"
    r = CliRunner().invoke(cli, ["ingest", str(folder), "--store", str(store), "--no-progress"])
    assert r.exit_code == 2 and "refused rather than dropped" in r.stderr, r.output
    assert not store.exists()
    r = CliRunner().invoke(
        cli,
        ["ingest", str(folder), "--store", str(store), "--no-progress"]
        + ["--accept-unmapped", f"Metadata/{path}"],
    )
    assert r.exit_code == 0, r.output


def test_sets_disagreeing_on_extract_id(inskrivning_deliveries, tmp_path, unpack):
    def edit(f):
        m = next(f.rglob("inteckning_metadata.xml"))
        t = m.read_text()
        i = t.index("<uttagsidentitet>") + len("<uttagsidentitet>")
        m.write_text(t[:i] + "00000000-0000-4000-8000-000000000000" + t[i + 36 :])

    folder = _tamper(unpack, inskrivning_deliveries[0], tmp_path, edit)
    with pytest.raises(IntegrityError, match="disagree on extract_id"):
        open_delivery(folder).verify()


def test_two_different_copies_refused(bestammelse_deliveries, tmp_path, unpack):
    folder = unpack(bestammelse_deliveries[0], tmp_path / "f", inner_too=False)
    set_zip = next(folder.rglob(f"{SET}.zip"))
    with zipfile.ZipFile(set_zip) as z:
        z.extractall(set_zip.parent)
    x = next(folder.rglob(f"{SET}_1.xml"))
    x.write_bytes(x.read_bytes() + b" ")
    with pytest.raises(DeliveryError, match="two different copies"):
        open_delivery(folder)


def test_not_a_delivery(tmp_path):
    (tmp_path / "readme.txt").write_text("hello")
    with pytest.raises(DeliveryError):
        open_delivery(tmp_path / "readme.txt")
    with pytest.raises(DeliveryError, match="no Lantmäteriet XML"):
        open_delivery(tmp_path)
    with pytest.raises(FileNotFoundError):
        open_delivery(tmp_path / "absent.zip")


def test_folder_of_deliveries(bestammelse_deliveries, tmp_path):
    one = tmp_path / "one"
    one.mkdir()
    shutil.copy(bestammelse_deliveries[0], one)
    assert open_delivery(one).checksum == open_delivery(bestammelse_deliveries[0]).checksum
    with pytest.raises(DeliveryError, match="holds 3 delivery ZIPs"):
        open_delivery(bestammelse_deliveries[0].parent)


def test_a_named_previous_extract_is_still_read():
    """vggeo once invented ``foregaendeUttagsidentitet``; metadata that has it is still read."""
    import io
    from datetime import UTC, datetime

    from vggeo.lm.package import parse_metadata
    from vggeo.sample.delivery import _metadata_xml

    common = dict(
        set_name=SET,
        info_type="Markreglerande bestämmelse",
        subsets=(),
        extract_id="e2",
        produced=datetime(2026, 1, 12, tzinfo=UTC),
        extract_type="change",
        crs=3006,
        kommuner=["0180"],
        files=[("markreglerandebestammelse_1.xml", 1, 10)],
    )
    named = parse_metadata(
        io.BytesIO(_metadata_xml(**common, previous="e1")), set_name=SET, label="m"
    )
    plain = parse_metadata(io.BytesIO(_metadata_xml(**common)), set_name=SET, label="m")
    assert named.previous_extract_id == "e1" and plain.previous_extract_id is None
    assert b"foregaende" not in _metadata_xml(**common)
