"""The compiled path's tree walk (vggeo/lm/_walk.pyx) writes exactly the stylesheet's records.

The oracle is libxslt evaluating the generated stylesheet's XPath on the same tree: the walk is
our own reading of those expressions, the stylesheet is not. tests/lm/conftest.py compares the
two on every chunk every test of this folder transforms; here, the same comparison on trees
mutated at random far beyond what any writer produces (names from other namespaces and none,
the mapping's names in the wrong places, text, CDATA and non-ASCII everywhere, srsDimension and
srsName on any element, attributes that hold data and markup ones, repeated and missing blocks,
grouping levels), and what happens when the walk cannot model a tree or disagrees with the
stylesheet.
"""

from __future__ import annotations

import copy
import io
import os
import random
import sys
import zipfile
from pathlib import Path

import pytest
from lxml import etree

import vggeo.lm._compiled as C
from vggeo.lm import read_bestammelser
from vggeo.lm.bestammelse import _FileReader
from vggeo.lm.gml import GML3, GML32
from vggeo.sample.delivery import generate_deliveries

sys.path.insert(0, str(Path(__file__).parent))
import foreign_writer as fw  # noqa: E402

needs_walk = pytest.mark.skipif(
    C._walk is None and not os.environ.get("VGGEO_REQUIRE_SYSTEM"),
    reason="vggeo was installed without its compiled module (no C compiler)",
)


def test_the_compiled_module_is_built():
    """Installed from this repository with a C compiler (as CI does), the walk is there."""
    if not os.environ.get("VGGEO_REQUIRE_SYSTEM") and C._walk is None:
        pytest.skip("installed without a C compiler")
    assert C._walk is not None


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, bytes]:
    """The generator's file and two of the second writer's (grouping level; default namespace)."""
    [outer] = generate_deliveries(
        tmp_path_factory.mktemp("walk"), product="bestammelse", n=300, changes=0, seed=4
    )
    with zipfile.ZipFile(outer) as z:
        inner = next(n for n in z.namelist() if n.endswith("markreglerandebestammelse.zip"))
        with zipfile.ZipFile(io.BytesIO(z.read(inner))) as zi:
            name = next(n for n in zi.namelist() if n.endswith(".xml"))
            generated = zi.read(name)
    truth = fw.make_truth(200, seed=9)
    return {
        "generator": generated,
        "wrapped": fw.write_data(truth, fw.Style()),
        "default-ns": fw.write_data(
            truth, fw.Style(prefix=None, wrap=False, pretty=False, crlf=True, reverse_order=True)
        ),
    }


def plan_for(data: bytes) -> tuple[C.Plan, etree._Element]:
    """The plan the compiled path compiles after learning from the file's first 60 members."""
    reader = _FileReader(
        "f", default_srs=None, default_epsg=None, arc_tolerance=0.002, on_geometry_error="raise"
    )
    root = C._parse(data)
    for member in list(root)[:60]:
        reader.feed(member)
    plan = C.compile_plan(reader.ex)
    assert plan is not None
    return plan, root


def reference(plan: C.Plan, root: etree._Element) -> bytes:
    return bytes(C._xslt(plan.stylesheet)(root))


@needs_walk
@pytest.mark.parametrize("name", ["generator", "wrapped", "default-ns"])
def test_every_writers_file_walked_alike(files, name):
    plan, root = plan_for(files[name])
    assert plan.walker is not None
    out = plan.walker.run(root)
    assert out == reference(plan, root)
    assert out.count(C.RS.encode()) == len(root)


def _mutate(rng: random.Random, root: etree._Element) -> None:
    """Random edits all over the members' trees."""
    elements = [e for e in root.iter() if e is not root and isinstance(e.tag, str)]
    names = sorted({etree.QName(e).localname for e in elements})
    uris = sorted({etree.QName(e).namespace or "" for e in elements} | {GML32, GML3, "urn:x"})
    for _ in range(rng.randint(20, 60)):
        e = rng.choice(elements)
        what = rng.randrange(13)
        if what == 0:  # a new element, any name, any namespace (or none), anywhere among siblings
            uri = rng.choice(uris)
            tag = f"{{{uri}}}{rng.choice(names)}" if uri else rng.choice(names)
            new = etree.Element(tag)
            new.text = rng.choice([None, "", "x", " 1 2 3 4 ", "åäö\u00e9"])
            e.insert(rng.randint(0, len(e)), new)
            elements.append(new)
        elif what == 1 and e.getparent() is not None and e.getparent() is not root:
            e.getparent().remove(e)  # a block, field or ring missing
        elif what == 2:  # a copy of the element beside it (repeated field, container, decision)
            parent = e.getparent()
            if parent is not None:
                parent.insert(parent.index(e) + rng.randint(0, 1), copy.deepcopy(e))
        elif what == 3:
            e.set("srsDimension", rng.choice(["2", "3", "", "2)(", "#~,:"]))
        elif what == 4:
            e.set("srsName", rng.choice(["", "urn:ogc:def:crs:EPSG::3006", "EPSG:3010"]))
        elif what == 5:  # text in an element that holds elements, or none where text was
            e.text = rng.choice([None, "", "  ", "t", "\n  "])
        elif what == 6:  # a tail: text between elements
            e.tail = rng.choice([None, "", "\n", "tail"])
        elif what == 7:  # CDATA
            e.text = etree.CDATA(rng.choice(["a&b", "", "<x/>"]))
        elif what == 8 and len(e):  # children in another order
            kids = list(e)
            rng.shuffle(kids)
            for k in kids:
                e.remove(k)
            e.extend(kids)
        elif what == 9:  # the element renamed into another namespace or none
            uri = rng.choice(uris)
            local = etree.QName(e).localname
            e.tag = f"{{{uri}}}{local}" if uri else local
        elif what == 10:  # an attribute in a namespace (not srsName / srsDimension for XPath's @)
            e.set(f"{{{GML32}}}srsName", "urn:ogc:def:crs:EPSG::3006")
        elif what == 11:  # an attribute that may hold data, or markup that holds none
            name = rng.choice(
                ["a", "objektidentitet", "{urn:x}b", "{http://www.w3.org/1999/xlink}href"]
                + [f"{{{GML3}}}id", "{http://www.w3.org/2001/XMLSchema-instance}nil"]
                + ["{http://www.w3.org/XML/1998/namespace}lang"]
            )
            e.set(name, rng.choice(["", "1", "SEK"]))
        else:  # a member that is not one: an element of any name between the members
            new = etree.Element(rng.choice([f"{{{rng.choice(uris)}}}x", "member", "y"]))
            if rng.random() < 0.5:
                new.append(copy.deepcopy(rng.choice(elements)))
            root.insert(rng.randint(0, len(root)), new)


@needs_walk
@pytest.mark.parametrize("seed", range(25))
@pytest.mark.parametrize("name", ["generator", "wrapped", "default-ns"])
def test_random_trees_walked_alike(files, name, seed):
    plan, root = plan_for(files[name])
    rng = random.Random(seed)
    _mutate(rng, root)
    assert plan.walker.run(root) == reference(plan, root)


@needs_walk
def test_non_ascii_names_and_deep_chains(files):
    """Element names outside ASCII, and a member that nests its feature deeper than learnt."""
    plan, root = plan_for(files["wrapped"])
    member = root[5]
    member.insert(0, etree.Element("{urn:x}Bestämmelse"))
    deep = root[7]
    deep[0].insert(0, copy.deepcopy(deep[0]))
    assert plan.walker.run(root) == reference(plan, root)


@needs_walk
def test_entity_reference_is_left_to_the_stylesheet(files):
    """A node the walk does not model (an entity reference): no records from it; the plan then
    applies the stylesheet to that chunk."""
    plan, root = plan_for(files["generator"])
    field = next(e for e in root.iter() if isinstance(e.tag, str) and e.tag.endswith("kommun"))
    field.append(etree.Entity("x"))
    assert plan.walker.run(root) is None
    before = C.STATS["stylesheet_chunks"]
    assert plan.transform(root) == reference(plan, root)
    assert C.STATS["stylesheet_chunks"] == before + 1


@needs_walk
def test_a_walk_that_differs_is_dropped(files):
    """Should the walk ever write other records than the stylesheet for a chunk of a plan not
    yet checked, the plan uses the stylesheet from then on."""
    plan, root = plan_for(files["generator"])

    class Wrong:
        def run(self, doc):
            return b"wrong"

    plan.walker = Wrong()
    before = C.STATS["walk_mismatch"]
    assert plan.transform(root) == reference(plan, root)
    assert plan.walker is None and C.STATS["walk_mismatch"] == before + 1
    assert plan.transform(root) == reference(plan, root)


@needs_walk
def test_a_walk_that_differs_never_reaches_the_tables(files, tmp_path, monkeypatch):
    """A walk that writes other records than the stylesheet (here: digits after a hyphen moved
    on, as in dates) is caught on the chunk its plan was learnt from, before any thread has
    prepared a chunk with it: no chunk is walked, and the file reads as the member-by-member
    reader reads it."""
    path = tmp_path / "markreglerandebestammelse_1.xml"
    path.write_bytes(files["wrapped"])
    monkeypatch.setattr(C, "CHUNK_BYTES", 40_000)
    monkeypatch.setattr(C, "LEARN_BYTES", 12_000)
    monkeypatch.setattr(C, "MIN_FILE_BYTES", 0)
    compile_plan = C.compile_plan

    class Shifted:
        def __init__(self, walker):
            self.walker = walker

        def run(self, doc):
            out = self.walker.run(doc)
            return None if out is None else out.replace(b"-0", b"-1")

    def shifted(ex):
        plan = compile_plan(ex)
        if plan is not None and plan.walker is not None:
            plan.walker = Shifted(plan.walker)
        return plan

    monkeypatch.setattr(C, "compile_plan", shifted)
    before = dict(C.STATS)
    read = read_bestammelser(path)
    assert C.STATS["walk_mismatch"] > before.get("walk_mismatch", 0)
    assert C.STATS["walked_chunks"] == before.get("walked_chunks", 0)
    assert C.STATS["files"] == before.get("files", 0) + 1  # the compiled path read the file
    monkeypatch.setattr(C, "MIN_FILE_BYTES", 10**12)
    slow = read_bestammelser(path)
    assert read.provisions.equals(slow.provisions)
    assert read.affected.equals(slow.affected) and read.decisions.equals(slow.decisions)


@needs_walk
def test_a_large_file_is_walked(files, tmp_path, monkeypatch):
    """A file on the compiled path has its records written by the walk, and reads as the
    member-by-member reader reads it."""
    path = tmp_path / "markreglerandebestammelse_1.xml"
    path.write_bytes(files["wrapped"])
    monkeypatch.setattr(C, "CHUNK_BYTES", 40_000)
    monkeypatch.setattr(C, "LEARN_BYTES", 12_000)
    monkeypatch.setattr(C, "MIN_FILE_BYTES", 0)
    before = dict(C.STATS)
    walked = read_bestammelser(path)
    assert C.STATS["walked_chunks"] > before.get("walked_chunks", 0)
    assert C.STATS["stylesheet_chunks"] == before.get("stylesheet_chunks", 0)
    assert C.STATS["walk_mismatch"] == before.get("walk_mismatch", 0)
    monkeypatch.setattr(C, "MIN_FILE_BYTES", 10**12)
    slow = read_bestammelser(path)
    assert walked.provisions.equals(slow.provisions)
    assert walked.affected.equals(slow.affected) and walked.decisions.equals(slow.decisions)


@needs_walk
def test_srsname_left_empty_defers_to_the_ancestor(files):
    """``srsName=""`` on the geometry does not apply: the nearest ancestor's srsName does."""
    plan, root = plan_for(files["generator"])
    for yta in [e for e in root.iter() if isinstance(e.tag, str) and e.tag.endswith("}Yta")][:20]:
        geometry = yta[0]
        geometry.set("srsName", "")
        yta.getparent().set("srsName", "EPSG:3010")
    assert plan.walker.run(root) == reference(plan, root)


def _program(**changes):
    spec = dict(
        chain=[],
        variables=[[(-1, None, "c")]],
        columns=[[(-1, None, "b"), (0, None, "b")]],
        flags=[(0, [])],
        refs=None,
        decisions=None,
        decision_columns=[],
        geometry=None,
        gml=(GML32, GML3),
        separators=(C.FS, C.RS, C.LS, C.DS),
        empty=b"-",
    )
    spec.update(changes)
    return C._walk.Program(**spec)


@needs_walk
@pytest.mark.parametrize("seed", range(20))
def test_a_field_under_two_contexts_takes_the_first_in_document_order(seed):
    """A column spelt both directly under the feature and inside a container: XPath's
    ``(b | $v0/b)[1]`` is the first in document order, evaluated here by lxml's XPath."""
    program = _program(
        variables=[[(-1, None, "c"), (-1, "urn:x", "c")], [(0, None, "d")]],
        columns=[[(-1, None, "b"), (0, None, "b"), (1, "urn:x", "b")]],
        flags=[(0, []), (1, [])],
    )
    rng = random.Random(seed)

    def children(depth: int) -> list[etree._Element]:
        out = []
        for _ in range(rng.randint(0, 4)):
            tag = rng.choice(["b", "c", "{urn:x}c", "d", "{urn:x}b", "e"])
            e = etree.Element(tag)
            e.text = str(rng.randrange(100))
            if depth < 3:
                e.extend(children(depth + 1))
            out.append(e)
        return out

    root = etree.Element("r")
    for _ in range(30):
        f = etree.SubElement(etree.SubElement(root, "m"), "f")
        f.extend(children(0))
    records = program.run(root).decode().split(C.RS)[:-1]
    ns = {"x": "urn:x"}
    for f, rec in zip(root.iter("f"), records, strict=True):
        v0 = f.xpath("(c | x:c)[1]", namespaces=ns)
        v1 = v0[0].xpath("d[1]") if v0 else []
        first = f.xpath("(b | (c | x:c)[1]/b | (c | x:c)[1]/d[1]/x:b)[1]", namespaces=ns)
        fields = rec.split(C.FS)
        assert fields[4] == (first[0].xpath("string(.)") if first else ""), etree.tostring(f)
        assert fields[5] == f"{int(bool(v0))}{int(bool(v1))}"


@needs_walk
@pytest.mark.parametrize(
    "changes",
    [
        {"columns": [[(3, None, "b")]]},  # no variable 3
        {"variables": [[(0, None, "c")]]},  # a variable in its own context
        {"flags": [(7, [])]},
        {"geometry": 4},
    ],
)
def test_a_malformed_program_is_refused(changes):
    with pytest.raises(ValueError):
        _program(**changes)


@needs_walk
def test_an_uninitialised_program_is_refused():
    with pytest.raises(ValueError):
        C._walk.Program.__new__(C._walk.Program).run(etree.fromstring("<r><m/></r>"))


@needs_walk
def test_deeper_than_the_walk_follows_is_left_to_the_stylesheet():
    """Document order between two candidates below 1 024 levels (grouping levels no parser
    here builds: libxml2 stops at 256) is not told, so the walk writes no records."""

    def member(levels: int) -> etree._Element:
        root = etree.Element("r")
        node = etree.SubElement(root, "m")
        for _ in range(levels):
            node = etree.SubElement(node, "w")
        f = etree.SubElement(node, "f")
        etree.SubElement(etree.SubElement(f, "c"), "b").text = "1"
        etree.SubElement(f, "b").text = "2"
        return root

    deep = _program(chain=[(None, "w")] * 1100)
    assert deep.run(member(1100)) is None
    shallow = _program(chain=[(None, "w")] * 3)
    assert shallow.run(member(3)).split(C.FS.encode())[4] == b"1"
