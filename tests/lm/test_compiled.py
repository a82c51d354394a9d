"""The compiled path (vggeo.lm._compiled) reads exactly what the member-by-member reader reads.

The oracle is the declarative Extractor itself: every test reads the same file both ways and
compares every table, every dtype, every geometry, the unmapped report, and errors (type and
message). Files are forced onto the compiled path with small chunks, so learning, relearning,
chunk boundaries and the hand-back of members to the Extractor all happen in a small file.
"""

from __future__ import annotations

import hashlib
import io
import random
import re
import uuid
import zipfile

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from geopandas.testing import assert_geodataframe_equal

import vggeo.lm._compiled as C
from vggeo.errors import UnsafeInputError, VggeoError
from vggeo.lm import read_bestammelser
from vggeo.sample.delivery import generate_deliveries

MEMBER = re.compile(r"<MarkreglerandeBestammelseMember>.*?</MarkreglerandeBestammelseMember>", re.S)


@pytest.fixture(scope="module")
def xml_text(tmp_path_factory) -> str:
    """One data file of 700 provisions of every type (arcs, holes, multipart areas) as text."""
    [outer] = generate_deliveries(
        tmp_path_factory.mktemp("compiled"),
        product="bestammelse",
        n=700,
        changes=0,
        seed=21,
        per_file=700,
    )
    with zipfile.ZipFile(outer) as z:
        inner = next(n for n in z.namelist() if n.endswith("markreglerandebestammelse.zip"))
        with zipfile.ZipFile(io.BytesIO(z.read(inner))) as zi:
            return zi.read("markreglerandebestammelse_1.xml").decode("utf-8")


class Counted:
    """How many members the compiled path read itself / handed to the Extractor."""

    def __init__(self, monkeypatch) -> None:
        self.exact = self.fed = 0
        decode = C._decode

        def spy(p, reader, batch, base):
            self.exact += len(p.idx)
            self.fed += p.n - len(p.idx)
            return decode(p, reader, batch, base)

        monkeypatch.setattr(C, "_decode", spy)


def read_both(text: str, tmp_path, monkeypatch, **options):
    """(compiled result or exception, member-by-member result or exception, counts)."""
    path = tmp_path / "markreglerandebestammelse_1.xml"
    path.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
    monkeypatch.setattr(C, "CHUNK_BYTES", 40_000)
    monkeypatch.setattr(C, "LEARN_BYTES", 12_000)
    counted = Counted(monkeypatch)
    out = []
    for threshold in (0, 10**12):  # compiled, then member by member
        monkeypatch.setattr(C, "MIN_FILE_BYTES", threshold)
        try:
            out.append(read_bestammelser(path, **options))
        except VggeoError as err:
            out.append(err)
    return out[0], out[1], counted


def assert_same(a, b) -> None:
    if isinstance(b, Exception):
        assert type(a) is type(b) and str(a) == str(b)
        return
    assert not isinstance(a, Exception), a
    assert_geodataframe_equal(a.provisions, b.provisions, check_less_precise=False)
    for table in ("affected", "decisions", "subsets"):
        pd.testing.assert_frame_equal(getattr(a, table), getattr(b, table))
    assert a.unmapped == b.unmapped
    assert a.geometry_errors == b.geometry_errors


def test_same_tables_as_the_member_by_member_reader(xml_text, tmp_path, monkeypatch):
    a, b, counted = read_both(xml_text, tmp_path, monkeypatch)
    assert_same(a, b)
    assert len(b.provisions) == 700 and len(b.affected) > 5000
    # The compiled path did read the file: all but the learning chunk's members.
    assert counted.exact > 600 and counted.exact + counted.fed < 700


def _two_features(member: str) -> str:
    """The member's feature twice; the copy under another identity (one identity is one object)."""
    m = re.fullmatch(
        r"(<MarkreglerandeBestammelseMember>)(.*)(</MarkreglerandeBestammelseMember>)", member, re.S
    )
    if m is None:
        return member
    # identities of its own, drawn from the member's text: applied to a member that already
    # holds two features, the copy's features (and references) get new ones again
    seen = iter(range(10**6))

    def fresh(_: re.Match) -> str:
        digest = hashlib.md5(f"{member}{next(seen)}".encode()).hexdigest()
        return "<objektidentitet>" + str(uuid.UUID(digest))

    copy = re.sub(r"<objektidentitet>[^<]*", fresh, m.group(2))
    return m.group(1) + m.group(2) + copy + m.group(3)


def _mutations():
    """Edits of one member each; every one must either be read alike or handed to the Extractor."""
    return [
        (
            "unknown element",
            lambda m: m.replace("</objektidentitet>", "</objektidentitet><okand>x</okand>", 1),
        ),
        ("duplicate field", lambda m: re.sub(r"(<kommun>\d+</kommun>)", r"\1\1", m, count=1)),
        (
            "a field twice, two values",
            lambda m: re.sub(r"(<kommun>(\d+)</kommun>)", r"\1<kommun>9\2</kommun>", m, count=1),
        ),
        (
            "empty field",
            lambda m: re.sub(r"<aktbeteckning>[^<]*</aktbeteckning>", "<aktbeteckning/>", m),
        ),
        (
            "other case",
            lambda m: m.replace("<kommun>", "<Kommun>").replace("</kommun>", "</Kommun>"),
        ),
        ("comment in a value", lambda m: m.replace("<status>g", "<status>g<!-- c -->", 1)),
        (
            "CDATA and entities",
            lambda m: re.sub(r"<aktbeteckning>", "<aktbeteckning><![CDATA[A&B]]>&amp;", m),
        ),
        (
            "reference without child",
            lambda m: m.replace("<Beror>", "<Beror><Registerenhetsreferens/>", 1),
        ),
        (
            "reference with two ids",
            lambda m: re.sub(
                r"(<objektidentitet>[^<]*</objektidentitet>)(</Registerenhetsreferens>)",
                r"\1\1\2",
                m,
                count=1,
            ),
        ),
        (
            "decision with unknown child",
            lambda m: m.replace("</Bildandebeslut>", "<x>1</x></Bildandebeslut>", 1),
        ),
        (
            "decision without fields",
            lambda m: re.sub(
                r"<Bildandebeslut>.*?</Bildandebeslut>", "<Bildandebeslut/>", m, count=1, flags=re.S
            ),
        ),
        ("two features in a member", _two_features),
        (
            "containers reordered",
            lambda m: re.sub(
                r"(<\w+attribut>.*?</\w+attribut>)(<Beror>.*?</Beror>)",
                r"\2\1",
                m,
                count=1,
                flags=re.S,
            ),
        ),
        ("non-GML element in Yta", lambda m: m.replace("<Yta>", "<Yta><annat/>", 1)),
        (
            "srsDimension on the ring",
            lambda m: m.replace("<gml:LinearRing>", '<gml:LinearRing srsDimension="2">', 1),
        ),
        ("no srsName", lambda m: re.sub(r' srsName="[^"]*"', "", m)),
        ("attributes ignored", lambda m: m.replace("<Beror>", '<Beror a="1">', 1)),
        ("whitespace between elements", lambda m: m.replace("><", ">\n  <")),
        (
            "pretty-printed posList",
            lambda m: re.sub(
                r"<gml:posList>([^<]*)</gml:posList>", r"<gml:posList>\n  \1\n</gml:posList>", m
            ),
        ),
        ("text in a container", lambda m: m.replace("<Beror>", "<Beror>text", 1)),
        # Whitespace the compiled path's parser drops between elements (see _compiled._parse)
        # must not be a value either reader reads.
        ("whitespace-only value", lambda m: re.sub(r"<namn>[^<]*</namn>", "<namn>  </namn>", m)),
        (
            "whitespace before a comment in a value",
            lambda m: re.sub(r"<namn>[^<]*</namn>", "<namn>\n  <!-- c --></namn>", m),
        ),
        (
            "whitespace before CDATA in a value",
            lambda m: m.replace("<aktbeteckning>", "<aktbeteckning>\n <![CDATA[ A ]]>", 1),
        ),
        (
            "whitespace and an element in a value",
            lambda m: re.sub(r"<namn>[^<]*</namn>", "<namn>  <b/>  </namn>", m),
        ),
        (
            "xml:space preserve",
            lambda m: m.replace("<Beror>", '<Beror xml:space="preserve">\n  ', 1),
        ),
    ]


def test_unusual_members_read_alike(xml_text, tmp_path, monkeypatch):
    """Every mutation on its own member (some in the learning chunk, most after it)."""
    members = MEMBER.findall(xml_text)
    rng = random.Random(5)
    order = rng.sample(range(len(members)), len(members))
    text, used = xml_text, set()
    for name, edit in _mutations():
        # Three members each (one may fall in the learning chunk) that the edit applies to.
        hits = [i for i in order if i not in used and edit(members[i]) != members[i]][:3]
        assert len(hits) == 3, name
        for i in hits:
            used.add(i)
            text = text.replace(members[i], edit(members[i]), 1)
    # A foreign element between members, and one more member spelt in another case late on.
    text = text.replace(members[-5], "<Annat><x>1</x></Annat>" + members[-5], 1)
    a, b, counted = read_both(text, tmp_path, monkeypatch)
    assert_same(a, b)
    assert b.unmapped  # the unknown elements are reported, by both
    assert counted.fed > len(_mutations()) and counted.exact > 500


def test_separator_characters_in_texts(xml_text, tmp_path, monkeypatch):
    """The stylesheet's separators (private-use characters) inside texts: never misread.

    An item separator splits off more items than the tree has, so that member is handed to the
    Extractor; a record or field separator breaks the chunk's layout, so the whole file is read
    member by member. Either way the result is the Extractor's.
    """
    members = MEMBER.findall(xml_text)
    cases = {
        C.LS: lambda m: re.sub(
            r"(<Registerenhetsreferens><objektidentitet>)", rf"\1{C.LS}", m, count=1
        ),
        C.DS: lambda m: re.sub(
            r"(<Bildandebeslut>.*?<objektidentitet>)", rf"\1{C.DS}", m, count=1, flags=re.S
        ),
        C.FS + C.RS: lambda m: m.replace("<aktbeteckning>", f"<aktbeteckning>{C.FS}{C.RS}", 1),
    }
    for sep, edit in cases.items():
        i = next(i for i in range(500, 700) if edit(members[i]) != members[i])
        a, b, counted = read_both(
            xml_text.replace(members[i], edit(members[i]), 1), tmp_path, monkeypatch
        )
        assert not isinstance(b, Exception), b
        assert_same(a, b)
        if sep in (C.LS, C.DS):
            assert counted.exact > 600  # only that member went to the Extractor


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_mutations(xml_text, tmp_path, monkeypatch, seed):
    """Random combinations of mutations in random members, compared with the Extractor."""
    rng = random.Random(seed)
    members = MEMBER.findall(xml_text)
    text = xml_text
    for i in rng.sample(range(len(members)), 40):
        m = members[i]
        for _ in range(rng.randint(1, 3)):
            m = rng.choice(_mutations())[1](m)
        text = text.replace(members[i], m, 1)
    a, b, counted = read_both(text, tmp_path, monkeypatch)
    assert not isinstance(b, Exception), b
    assert_same(a, b)
    assert counted.exact > 500


FAULTS = [
    (
        "not closed",
        lambda m: re.sub(
            r"(<gml:posList>[^<]*?) [\d.]+ [\d.]+</gml:posList>",
            r"\1 1 2</gml:posList>",
            m,
            count=1,
        ),
    ),
    ("non-numeric", lambda m: m.replace("<gml:posList>", "<gml:posList>\ue003", 1)),
    (
        "srsDimension",
        lambda m: re.sub(r"<Yta><gml:(\w+) ", r'<Yta><gml:\1 srsDimension="2)(" ', m, count=1),
    ),
    (
        "at least 4 positions",
        lambda m: re.sub(
            r"<gml:posList>[^<]*</gml:posList>", "<gml:posList> \n </gml:posList>", m, count=1
        ),
    ),
]


@pytest.mark.parametrize("expected, fault", FAULTS, ids=[f[0] for f in FAULTS])
def test_errors_are_the_member_by_member_errors(xml_text, tmp_path, monkeypatch, expected, fault):
    """A malformed area late in the file: the same error naming the same line, or kept alike."""
    members = MEMBER.findall(xml_text)
    i = next(i for i in range(600, 700) if fault(members[i]) != members[i])
    text = xml_text.replace(members[i], fault(members[i]), 1)
    a, b, _ = read_both(text, tmp_path, monkeypatch)
    assert isinstance(b, VggeoError) and expected in str(b) and ":" in str(b)
    assert_same(a, b)
    a, b, _ = read_both(text, tmp_path, monkeypatch, on_geometry_error="keep")
    assert len(b.geometry_errors) == 1
    assert_same(a, b)


def test_malformed_xml_late_in_the_file(xml_text, tmp_path, monkeypatch):
    members = MEMBER.findall(xml_text)
    text = xml_text.replace(members[650], members[650].replace("</Yta>", "</Ytta>", 1), 1)
    a, b, _ = read_both(text, tmp_path, monkeypatch)
    assert isinstance(b, VggeoError) and "malformed XML" in str(b)
    assert_same(a, b)


def test_hostile_prolog_refused_alike(xml_text, tmp_path, monkeypatch):
    """An entity-expansion DTD: refused with the same error, whichever path the file starts on."""
    dtd = '<!DOCTYPE r [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]>\n'
    text = xml_text.replace("?>\n", "?>\n" + dtd, 1)
    assert dtd in text
    a, b, counted = read_both(text, tmp_path, monkeypatch)
    assert isinstance(b, UnsafeInputError)
    assert_same(a, b)
    assert counted.exact == 0


def test_other_encoding_is_read_member_by_member(xml_text, tmp_path, monkeypatch):
    latin = xml_text.replace('encoding="UTF-8"', 'encoding="ISO-8859-1"', 1).encode("latin-1")
    a, b, counted = read_both(latin, tmp_path, monkeypatch)
    assert_same(a, b)
    assert counted.exact == 0  # not split: read by the Extractor alone


def test_stylesheet_is_generated_from_the_mapping(xml_text, tmp_path, monkeypatch):
    """The plan names the file's own spellings, learnt by the Extractor, and denies file access."""
    from vggeo.lm.bestammelse import _FileReader

    reader = _FileReader(
        "f", default_srs=None, default_epsg=None, arc_tolerance=0.002, on_geometry_error="raise"
    )
    root = C._parse(xml_text.encode())
    for member in list(root)[:50]:
        reader.feed(member)
    plan = C.compile_plan(reader.ex)
    sheet = plan.stylesheet.decode()
    assert "n0:senasteAndringAllmannaDelen" in sheet and "n0:Registerenhetsreferens" in sheet
    assert set(plan.feature_types) <= {
        "Plan",
        "Naturvardsbestammelse",
        "OvrigBestammelse",
        "Mineralrattighet",
        "Utredning",
        "Fornlamning",
    }
    assert plan.columns[0] == "provision_id"
    # Its text output for a whole chunk splits into one record per member.
    out = plan.transform(root)
    assert out.count(C.RS.encode()) == len(root)


def test_progress_counts_each_byte_once(xml_text, tmp_path, monkeypatch):
    """The bar advances in bytes; a file handed back and read again does not count twice."""
    from vggeo.lm.bestammelse import _ByteProgress
    from vggeo.lm.package import DataFile

    data = xml_text.encode()
    f = DataFile(
        "a.xml", "markreglerandebestammelse", "data", len(data), lambda: io.BytesIO(data), "a.xml"
    )
    progress = _ByteProgress([f])
    wrapped = progress.wrap(f)
    for _ in range(2):
        with wrapped.open() as s:
            while s.read(4096):
                pass
    assert progress.total == progress.done == len(data)
    progress.close()
    # And a whole read with progress on the compiled path gives the same tables.
    a, b, counted = read_both(xml_text, tmp_path, monkeypatch, progress=True)
    assert_same(a, b)
    assert counted.exact > 600


def test_handed_back_after_parts_were_yielded(xml_text, tmp_path, monkeypatch):
    """The compiled path gives up after it has yielded parts (small parts, a broken record
    layout or a kept geometry error late in the file): the member-by-member reader reads the
    file again and yields only the members not yielded yet — the result is still the Extractor's,
    each provision once."""
    monkeypatch.setattr(C, "BATCH_ROWS", 60)
    members = MEMBER.findall(xml_text)
    broken = next(
        i for i in range(600, 700) if "<aktbeteckning>" in members[i]
    )  # a record separator in a text breaks the chunk's layout
    layout = xml_text.replace(
        members[broken],
        members[broken].replace("<aktbeteckning>", f"<aktbeteckning>{C.FS}{C.RS}", 1),
        1,
    )
    expected, fault = FAULTS[0]
    i = next(i for i in range(600, 700) if fault(members[i]) != members[i])
    kept = xml_text.replace(members[i], fault(members[i]), 1)
    for text, options in ((layout, {}), (kept, {"on_geometry_error": "keep"})):
        before = C.STATS["fallbacks"]
        a, b, counted = read_both(text, tmp_path, monkeypatch, **options)
        assert C.STATS["fallbacks"] == before + 1  # the compiled path did give up
        assert counted.exact > 300  # … after reading (and yielding) several parts
        assert not isinstance(b, Exception), b
        assert_same(a, b)
        assert a.provisions["provision_id"].is_unique and len(a.provisions) == 700


def test_chunks_taken_back_from_a_slow_pool(xml_text, tmp_path, monkeypatch):
    """When the pool falls behind, the reading thread prepares chunks the pool has queued but
    not started (rather than wait): the tables are still the member-by-member reader's."""
    import threading
    import time

    prepare = C._prepare

    def slow_in_the_pool(piece, plan):
        if threading.current_thread() is not threading.main_thread():
            time.sleep(0.05)
        return prepare(piece, plan)

    monkeypatch.setattr(C, "_prepare", slow_in_the_pool)
    before = C.STATS["taken_back"]
    a, b, counted = read_both(xml_text, tmp_path, monkeypatch)
    assert_same(a, b)
    assert counted.exact > 600
    assert C.STATS["taken_back"] > before


@pytest.mark.parametrize(("queued", "in_flight"), [(0, 0), (0, 1), (1, 1), (0, 6)])
def test_no_chunk_lost_whatever_the_pool_is_given(
    xml_text, tmp_path, monkeypatch, queued, in_flight
):
    """With no chunk queued for the pool, or none in flight, the reading thread prepares every
    chunk itself; the file is never cut short (with QUEUED = 0 it once ended after the first
    chunk, as if that were all)."""
    monkeypatch.setattr(C, "QUEUED", queued)
    monkeypatch.setattr(C, "IN_FLIGHT", in_flight)
    a, b, counted = read_both(xml_text, tmp_path, monkeypatch)
    assert_same(a, b)
    assert counted.exact > 600


def test_parts_are_the_whole_read(xml_text, tmp_path, monkeypatch):
    """iter_bestammelser's parts, concatenated, are read_bestammelser's tables; each part is
    small."""
    from vggeo.lm import iter_bestammelser

    monkeypatch.setattr(C, "BATCH_ROWS", 100)
    a, _b, _ = read_both(xml_text, tmp_path, monkeypatch)
    monkeypatch.setattr(C, "MIN_FILE_BYTES", 0)
    stream = iter_bestammelser(tmp_path / "markreglerandebestammelse_1.xml")
    parts = list(stream)
    assert len(parts) > 3 and max(len(p.provisions) for p in parts) < 300
    provisions = pd.concat([p.provisions for p in parts], ignore_index=True)
    assert_geodataframe_equal(provisions, a.provisions, check_less_precise=False)
    for table in ("affected", "decisions", "subsets"):
        whole = pd.concat([getattr(p, table) for p in parts], ignore_index=True)
        pd.testing.assert_frame_equal(whole, getattr(a, table))
    assert stream.unmapped == a.unmapped and stream.files == a.files


def test_flag_digits_read_from_the_buffer_are_what_arrow_reads():
    """The subset flags read from a column's bytes agree with pyarrow's own slicing (the route
    they replace), on whole, sliced and taken arrays; anything but fixed-width ASCII digits is
    left to that route."""
    arr = pa.array(["0101", "1100", "0011", "1111", "0000"] * 3, pa.large_string())
    for a in (arr, arr.slice(3, 7), arr.take(pa.array([4, 0, 2, 9])).slice(1, 2)):
        digits = C._fixed_width(a, 4)
        assert digits is not None and digits.shape == (len(a), 4)
        for j in range(4):
            arrow = pc.equal(pc.utf8_slice_codeunits(a, j, j + 1), "1")
            assert (digits[:, j] == ord("1")).tolist() == arrow.to_pylist()
    assert C._fixed_width(pa.array(["01", "011"], pa.large_string()), 2) is None
    assert C._fixed_width(pa.array(["01", None], pa.large_string()), 2) is None
    assert C._fixed_width(pa.array(["0a"], pa.large_string()), 2) is None
    # two Arabic-Indic digits are four bytes: the width matches, the characters are not ASCII
    assert C._fixed_width(pa.array(["\u0661\u0660"], pa.large_string()), 4) is None
    assert C._fixed_width(pa.array(["01"], pa.string()), 2) is None
    assert C._fixed_width(pa.array([], pa.large_string()), 2).shape == (0, 2)


def test_a_leaf_with_text_between_members_is_reported_by_both(xml_text, tmp_path, monkeypatch):
    members = MEMBER.findall(xml_text)
    text = xml_text.replace(members[300], "<anmarkning>Uppgift</anmarkning>" + members[300], 1)
    a, b, _ = read_both(text, tmp_path, monkeypatch)
    assert_same(a, b)
    assert b.unmapped["anmarkning"] == 1


def _as_attributes(member: str) -> str:
    """A member with its values written as attributes: the feature's identity, the attribute
    block's municipality, every reference's identity."""
    member = re.sub(
        r'(<\w+ gml:id="[^"]*")><objektidentitet>([^<]*)</objektidentitet>',
        r'\1 objektidentitet="\2">',
        member,
        count=1,
    )
    member = re.sub(
        r"<(\w+attribut)>(.*?)<kommun>([^<]*)</kommun>", r'<\1 kommun="\3">\2', member, count=1
    )
    return re.sub(
        r"<Registerenhetsreferens><objektidentitet>([^<]*)</objektidentitet>"
        r"</Registerenhetsreferens>",
        r'<Registerenhetsreferens objektidentitet="\1"/>',
        member,
    )


def test_values_written_as_attributes_read_as_their_elements(xml_text, tmp_path, monkeypatch):
    """Every third member with its values as attributes: the compiled path hands those members
    to the Extractor (no record shows an attribute), which reads each attribute as the element
    of its name. Both read the tables of the element form, and report nothing."""
    members = MEMBER.findall(xml_text)
    text = xml_text
    for m in members[::3]:
        assert _as_attributes(m).count("objektidentitet=") > 1
        text = text.replace(m, _as_attributes(m), 1)
    a, b, counted = read_both(text, tmp_path, monkeypatch)
    assert_same(a, b)
    (tmp_path / "plain").mkdir()
    plain, _, _ = read_both(xml_text, tmp_path / "plain", monkeypatch)
    assert_same(a, plain)
    assert not a.unmapped
    assert counted.fed >= len(members) // 3 and counted.exact > 300


def test_an_attribute_nobody_maps_is_reported_by_both(xml_text, tmp_path, monkeypatch):
    """An unknown attribute anywhere in a member — on a field, a block, a reference, the
    geometry property, the feature or the member — is reported alike on both paths; ``gml:id``,
    ``srsName`` on the feature, ``xsi:nil`` and ``xml:lang`` are markup."""
    members = MEMBER.findall(xml_text)
    edits = [
        lambda m: m.replace("<namn>", '<namn sprak="sv">', 1),
        lambda m: m.replace(
            "<Beror>", '<Beror xmlns:xl="http://www.w3.org/1999/xlink" xl:href="#b">', 1
        ),
        lambda m: m.replace(
            "<Registerenhetsreferens>", '<Registerenhetsreferens typ="fastighet">', 1
        ),
        lambda m: m.replace("<Yta>", '<Yta nilReason="x">', 1),
        lambda m: m.replace(
            "<MarkreglerandeBestammelseMember>", '<MarkreglerandeBestammelseMember n="1">', 1
        ),
        lambda m: re.sub(r'(<\w+ gml:id="[^"]*")', r'\1 kalla="LM"', m, count=1),
        lambda m: re.sub(r'(<\w+ gml:id="[^"]*")', r'\1 srsName="EPSG:3006"', m, count=1),
        lambda m: m.replace(
            "<status>",
            '<status xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:nil="false"'
            ' xml:lang="sv">',
            1,
        ),
    ]
    text = xml_text
    for i, edit in enumerate(edits):
        m = members[100 + 50 * i]
        assert edit(m) != m
        text = text.replace(m, edit(m), 1)
    a, b, counted = read_both(text, tmp_path, monkeypatch)
    assert_same(a, b)
    assert sorted(k.split("/", 1)[1] for k in b.unmapped) == sorted(
        ["attribut/namn/@sprak", "beror/@href", "@typ", "yta/@nilReason", "@n", "@kalla"]
    ), b.unmapped


def test_blank_attributes_hold_no_value_on_both_paths(xml_text, tmp_path, monkeypatch):
    """A blank attribute is no value, as an empty element is none: the element form's tables,
    nothing reported (it was read as ``''``, the element's value reported as another value)."""
    members = MEMBER.findall(xml_text)
    text = xml_text
    for m in members[::5]:
        edited = re.sub(r'(<\w+ gml:id="[^"]*")', r'\1 objektidentitet=" "', m, count=1)
        edited = edited.replace("<namn>", '<namn sprak="">', 1)
        assert edited != m
        text = text.replace(m, edited, 1)
    a, b, _ = read_both(text, tmp_path, monkeypatch)
    assert_same(a, b)
    (tmp_path / "plain").mkdir()
    plain, _, _ = read_both(xml_text, tmp_path / "plain", monkeypatch)
    assert_same(a, plain)


def test_root_and_ignored_path_attributes_are_reported_by_both(xml_text, tmp_path, monkeypatch):
    """The root's data attributes are reported (it only wraps the members), and so is an
    attribute named like an element the mapping deliberately passes over (``beror`` is a
    wrapper; a value in ``beror="…"`` is not)."""
    head = re.search(r"<MarkreglerandeBestammelseResponse[^>]*>", xml_text).group(0)
    text = xml_text.replace(
        head,
        head[:-1] + ' antal="700" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"'
        ' xsi:schemaLocation="a b" tom="">',
        1,
    )
    m = MEMBER.findall(text)[200]
    text = text.replace(m, re.sub(r'(<\w+ gml:id="[^"]*")', r'\1 beror="X"', m, count=1), 1)
    a, b, _ = read_both(text, tmp_path, monkeypatch)
    assert_same(a, b)
    assert sorted(k.rsplit("/", 1)[1] for k in b.unmapped) == ["@antal", "@beror"], b.unmapped
    assert b.unmapped["MarkreglerandeBestammelseResponse/@antal"] == 1
