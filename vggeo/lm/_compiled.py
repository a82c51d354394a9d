"""The compiled path for large provision files: extraction in C (libxml2, and a walk or libxslt), checked per member.

Why
    Reading a provision file member by member with the declarative :class:`~vggeo.lm._records.
    Extractor` costs Python work per element (about 45 per provision), which is most of the time
    on a 50 000-provision file (``benchmarks/lm.md``). No library maps XML to tables by a
    declarative, case-insensitive, alias-tolerant mapping in C, but lxml exposes libxslt: a
    stylesheet *generated from the mapping* does the per-element work in C. The same records
    are written faster by :mod:`vggeo.lm._walk`, a walk in C over the tree lxml parsed, which
    evaluates the stylesheet's expressions directly (libxslt spent ~2 000 instructions per
    XPath evaluation); the stylesheet stays the reference it is checked against, and is used
    where vggeo was installed without a C compiler. lxml releases the GIL while it parses, the
    walk and libxslt while they run, and pyarrow while it splits and converts, so two threads
    share that work on two cores. A hand-written scanner over the bytes would be faster still,
    but XML parsing is exactly what must not be hand-written here (entities, CDATA, encodings,
    hostile input): the walk reads libxml2's tree and parses nothing.

How
    1. The file is split at member boundaries (:func:`vggeo.lm._parallel.split_members`); each
       chunk is a well-formed document parsed with the same safe settings as everything else.
    2. The members of the first chunk are read by the Extractor (the reference reader). Its
       caches then hold every qualified tag it met and what it did with it; from those and the
       mapping, :func:`compile_plan` writes an XSLT stylesheet that emits one text record per
       member: its fields, affected properties, decisions and geometry (as posList texts and a
       structural signature), and the number of elements below the feature; and the same
       expressions as a program for the walk (:class:`vggeo.lm._walk.Program`), which writes
       those records byte for byte (:meth:`Plan.transform`).
    3. Chunks are parsed, transformed and their records decoded column-wise with pyarrow
       (:func:`_prepare`) in a worker thread, which has up to :data:`QUEUED` chunks queued, and
       in the reading thread whenever the oldest chunk is not ready yet — a new chunk, or one
       taken back from the worker's queue (:func:`iter_file`). A member is *exact*
       when the elements its record shows — each non-empty field, container, reference,
       decision field and geometry element once — are all the elements it has: then nothing in
       it is unmapped, duplicated, empty or spelt in a way not yet learnt, and both paths read
       it alike. Every other member is read by the Extractor from the same tree, in its place
       (:func:`_decode`; rows stay in file order). Plain geometry is recognised by running
       :func:`vggeo.lm.gml.simple_polygon_texts` on a skeleton rebuilt from the signature, so
       both paths share one definition of "plain"; other geometry (arcs, curves, 3D) of an exact
       member is parsed from its element by the member-by-member geometry reader.
    4. When the Extractor has learnt new spellings in a chunk, the stylesheet is regenerated.
    5. Every ~:data:`BATCH_ROWS` provisions (at a chunk boundary) the batch is typed and yielded
       as one part (:func:`iter_file`): memory is bounded by a part, not by the file.

    Anything the compiled path cannot vouch for — an error of any kind, a kept geometry error,
    a chunk that does not parse, another encoding, a broken record layout — makes :func:`iter_file`
    give up, and the caller reads the file member by member from the start, yielding only the
    members after the parts already yielded: identical results, and errors that name their
    exact line.
"""

from __future__ import annotations

import re
import sys
import threading
from collections import Counter, defaultdict, deque
from collections.abc import Callable, Generator, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from itertools import chain
from typing import TYPE_CHECKING, Any, Protocol, SupportsInt
from xml.sax.saxutils import quoteattr

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import shapely
from lxml import etree
from shapely import GeometryType

from vggeo.crs import northing_first_by_magnitude
from vggeo.errors import VggeoError
from vggeo.lm._parallel import ChunkingUnsupported, split_members
from vggeo.lm._records import (
    GEOMETRY_ATTRIBUTES,
    MARKUP_NAMESPACES,
    SUBSETS_KEY,
    ColumnRows,
)
from vggeo.lm.gml import GML3, GML32, convert_texts, simple_polygon_texts
from vggeo.lm.provisions import (
    BestammelseData,
    assemble,
    build_geometries,
    to_3006,
    valid_rings,
)
from vggeo.lm.safety import XML_PARSER_OPTIONS

try:  # the stylesheet as a walk in C, when vggeo was installed with its compiled module
    from vggeo.lm import _walk
# ImportError: installed without a C compiler; ValueError: built against an lxml whose element
# type differs from the one installed now (Cython's binary compatibility check)
except (ImportError, ValueError):  # pragma: no cover
    _walk = None  # type: ignore[assignment]

if TYPE_CHECKING:
    from vggeo.lm._records import CompiledRecord, Extractor
    from vggeo.lm.package import DataFile
    from vggeo.lm.provisions import AreaSlot, GeometryCollector

__all__ = [
    "STATS",
    "read_file",
    "iter_file",
    "compile_plan",
    "Plan",
    "MIN_FILE_BYTES",
    "CHUNK_BYTES",
    "LEARN_BYTES",
]

#: Files smaller than this are read member by member (the stylesheet is not worth compiling).
MIN_FILE_BYTES = 8 * 1024 * 1024
#: Bytes per chunk (each is parsed into one tree; two are alive at a time).
CHUNK_BYTES = 2 * 1024 * 1024
#: Bytes of the first chunk, read by the Extractor to learn the file's spellings.
LEARN_BYTES = 512 * 1024

# Separators of the stylesheet's text output: private-use characters, which real deliveries do
# not hold. Should a text hold one anyway, the decoder sees more items than the tree has (that
# member goes to the Extractor) or a broken record layout (the whole file is read member by
# member): never a misread value (tests/lm/test_compiled.py).
FS, RS, LS, DS = "\ue001", "\ue002", "\ue003", "\ue004"
_XSL = "http://www.w3.org/1999/XSL/Transform"


#: What the compiled path did in this process (cheap counters, for tests and benchmarks):
#: ``files`` read by it, ``fallbacks`` (files handed back whole to the member-by-member reader),
#: ``exact`` members read on the compiled path and ``extractor`` members it handed to the Extractor;
#: chunks whose records were written by the tree walk (``walked_chunks``) or the stylesheet
#: (``stylesheet_chunks``), and plans whose walk differed from their stylesheet
#: (``walk_mismatch``; none is expected).
STATS: Counter[str] = Counter()


class Fallback(Exception):
    """The compiled path cannot vouch for this file; read it member by member."""


@dataclass
class Plan:
    """A stylesheet generated for one file's spellings, and how to decode its records."""

    stylesheet: bytes
    walker: Any  # the same records by a walk over the tree (vggeo.lm._walk.Program), or None
    columns: tuple[str, ...]
    feature_types: dict[str, dict[str, str | None]]  # local name → {constant column: value}
    subset_flags: tuple[str | None, ...]  # per flag digit: the subset its container opens
    geometry_tags: tuple[str, ...]  # qualified tags of the geometry property (Yta) learnt
    record_names: tuple[str, ...]  # lower-case local names of top-level records
    decision_columns: tuple[str, ...]
    decision_constants: dict[str, dict[str, str | None]]  # local name → {column: value}
    n_fields: int
    depth: int = 0  # grouping levels between a member and its feature
    checked: bool = False  # the walk's records of a whole chunk found equal to the stylesheet's

    def verify(self, doc: etree._Element) -> None:
        """Compare the walk with the stylesheet on a chunk before any thread uses this plan.

        The reading thread calls this with the chunk the plan was learnt from (the file's first
        chunk, or the chunk that taught it new spellings), so every chunk prepared afterwards is
        walked by a checked walk. Where the walk cannot model that chunk, the first chunk it
        does walk is checked by :meth:`transform` instead.
        """
        if self.walker is None or not WALK:
            return
        out = self.walker.run(doc)
        if out is not None:
            self._compare(out, bytes(_xslt(self.stylesheet)(doc)))

    def _compare(self, out: bytes, reference: bytes) -> bool:
        if out == reference:
            self.checked = True
            return True
        STATS["walk_mismatch"] += 1
        self.walker = None
        return False

    def transform(self, doc: etree._Element) -> bytes:
        """The records of a chunk, UTF-8: written by the walk where it can, else the stylesheet.

        Until the walk has written the same records as the stylesheet for one whole chunk
        (:meth:`verify`), every chunk it walks is transformed both ways and the stylesheet's
        records are the ones used; should the two ever differ, this plan uses the stylesheet
        from then on (``STATS["walk_mismatch"]`` counts it)."""
        walker = self.walker if WALK else None
        out = walker.run(doc) if walker is not None else None
        if out is None:
            STATS["stylesheet_chunks"] += 1
            return bytes(_xslt(self.stylesheet)(doc))
        if not self.checked:
            reference = bytes(_xslt(self.stylesheet)(doc))
            if not self._compare(out, reference):
                return reference
        STATS["walked_chunks"] += 1
        return out


#: Whether plans write their records by the tree walk (when the compiled module is built);
#: False: by the stylesheet alone (the reference the walk is tested against).
WALK = True

_XSLT_CACHE: dict[tuple[int, bytes], etree.XSLT] = {}


def _xslt(stylesheet: bytes) -> etree.XSLT:
    """The compiled stylesheet for this thread (lxml's XSLT objects belong to one thread)."""
    key = (threading.get_ident(), stylesheet)
    xslt = _XSLT_CACHE.get(key)
    if xslt is None:
        if len(_XSLT_CACHE) > 64:
            _XSLT_CACHE.clear()
        xslt = _XSLT_CACHE[key] = etree.XSLT(
            etree.fromstring(stylesheet),
            # lxml has DENY_ALL; lxml-stubs 0.5 do not declare it
            access_control=etree.XSLTAccessControl.DENY_ALL,  # type: ignore[attr-defined]
        )
    return xslt


# --- generating the stylesheet -------------------------------------------------------------------


class _Names:
    """Namespace prefixes for the qualified tags met in the file (``{uri}local`` → ``nK:local``)."""

    def __init__(self) -> None:
        self.prefixes: dict[str, str] = {}

    def q(self, tag: str) -> str:
        if tag[0] != "{":
            return tag
        uri, local = tag[1:].split("}", 1)
        p = self.prefixes.setdefault(uri, f"n{len(self.prefixes)}")
        return f"{p}:{local}"


def _union(exprs: Iterable[str]) -> str:
    return " | ".join(exprs)


def _leaf(exprs: list[str]) -> str:
    """The element a field takes: the first of its aliases (exact members have at most one)."""
    if len(exprs) == 1:  # a step from the feature or one container: the same node, cheaper
        return f"{exprs[0]}[1]"
    return f"({_union(exprs)})[1]"


def _learnt(comp: CompiledRecord) -> dict[str, list[tuple[str, int, Any, str]]]:
    """The Extractor's cache of one record: prefix → [(tag, kind, argument, path)], sorted.

    The argument's type follows the kind (a Field for a leaf, a child record's compiled form for
    a nested record), as the Extractor's action cache holds it."""
    out: dict[str, list] = defaultdict(list)
    for (prefix, tag), (kind, arg, path) in list(comp.actions.items()):
        if kind != 4 and isinstance(tag, str):
            out[prefix].append((tag, kind, arg, path))
    for v in out.values():
        v.sort(key=lambda e: (e[3], e[0]))
    return out


def _flat_fields(comp: CompiledRecord) -> dict[str, list[str]]:
    """A flat child record's learnt leaves: column → alias tags."""
    alts: dict[str, list[str]] = defaultdict(list)
    for tag, kind, arg, _path in _learnt(comp).get("", ()):
        if kind == 1 and arg.kind != "list":
            alts[arg.column].append(tag)
    return alts


def _name(tag: str) -> tuple[str | None, str]:
    """``{uri}local`` (or ``local``) as the walk's (uri or None, local)."""
    if tag[0] != "{":
        return None, tag
    uri, local = tag[1:].split("}", 1)
    return uri, local


def compile_plan(extractor: Extractor) -> Plan | None:
    """The stylesheet for the provision records the Extractor has met so far (None: not possible).

    Every expression is generated from the mapping as the Extractor applied it to this file
    (its action caches), so a member the stylesheet calls exact reads the same either way.
    """
    comps = {id(c): c for c in extractor.top.values()}
    if len(comps) != 1:
        return None
    comp = next(iter(comps.values()))
    rec = comp.rec
    if not comp.names or any(f.kind == "list" for f in rec.fields):
        return None
    names = _Names()
    learnt = _learnt(comp)
    alts: dict[str, list[str]] = defaultdict(list)
    variables: list[tuple[str, str]] = []
    flags: list[tuple[str | None, str]] = []  # (subset or None, count of a container: 0/1)
    refs: tuple[str, dict[str, list[str]]] | None = None
    decisions: tuple[str, Any] | None = None  # (expression, the record's compiled form)
    geometry: str | None = None
    # The same expressions as data for the tree walk (vggeo.lm._walk.Program): a step is
    # (context, uri, local), context -1 for the feature and k for variable k.
    w_alts: dict[str, list[tuple]] = defaultdict(list)
    w_vars: list[list[tuple]] = []
    w_flags: list[tuple[int, list[tuple]]] = []  # (variable, or -1 and the steps counted)
    w_refs: tuple[list[tuple], list[tuple]] | None = None
    w_decisions: list[tuple] = []
    w_geometry: list[tuple] = []

    def walk(prefix: str, ctx: str, cid: int) -> None:
        nonlocal refs, decisions, geometry, w_refs
        groups: dict[tuple[str, int], list] = defaultdict(list)
        for tag, kind, arg, path in learnt.get(prefix, ()):
            groups[(path, kind)].append((tag, arg))
        for (path, kind), members in groups.items():
            exprs = [ctx + names.q(tag) for tag, _ in members]
            steps = [(cid, *_name(tag)) for tag, _ in members]
            arg = members[0][1]
            if kind == 1:
                alts[arg.column].extend(exprs)
                w_alts[arg.column].extend(steps)
            elif kind == 0:
                subset = arg if not prefix else None
                if path in learnt:  # a container
                    var = f"v{len(variables)}"
                    variables.append((var, f"({_union(exprs)})[1]"))
                    flags.append((subset, f"count(${var})"))
                    w_flags.append((len(w_vars), []))
                    w_vars.append(steps)
                    walk(path, f"${var}/", len(w_vars) - 1)
                elif path in comp.ignore:  # known and deliberately not mapped: shown, not read
                    flags.append((None, f"count({_union(exprs)})"))
                    w_flags.append((-1, steps))
                # else: a leaf the mapping does not use — members holding one go to the Extractor
            elif kind == 5 and refs is None:  # one-field child records, read inline
                leaf_alts = _flat_fields(arg)
                if len(leaf_alts) == 1:
                    [a] = leaf_alts.values()
                    refs = (_union(exprs), {arg.rec.fields[0].column: [names.q(t) for t in a]})
                    w_refs = (steps, [_name(t) for t in a])
            elif kind == 2 and not prefix and (decisions is None or decisions[1] is arg):
                if arg.flat and not arg.rec.children:
                    prev = decisions[0] + " | " if decisions else ""
                    decisions = (prev + _union(exprs), arg)
                    w_decisions.extend(_name(tag) for tag, _ in members)
            elif kind == 3 and not prefix and geometry is None:
                geometry = f"({_union(exprs)})[1]"
                w_geometry.extend(steps)

    walk("", "", -1)
    if geometry is not None:
        variables.append(("y", geometry))
        subset = comp.subset_of.get(rec.geometry) if rec.geometry is not None else None
        flags.append((subset, "count($y)"))
        w_flags.append((len(w_vars), []))
        w_vars.append(w_geometry)
    columns = tuple(dict.fromkeys(f.column for f in rec.fields))

    out: list[str] = []
    sep = lambda s: f"<xsl:text>{s}</xsl:text>"  # noqa: E731
    val = lambda e: f"<xsl:value-of select={quoteattr(e)}/>"  # noqa: E731
    if refs is not None:
        rexpr, (ralts,) = refs[0], list(refs[1].values())
    dflat: dict[str, list[str]] = {}
    if decisions is not None:
        dexpr, dcomp = decisions
        dflat = _flat_fields(
            dcomp
        )  # decision column → alias tags (the stylesheet's and the walk's)
        dalts = {c: [names.q(t) for t in a] for c, a in dflat.items()}
    for var, expr in variables:
        out.append(f"<xsl:variable name={quoteattr(var)} select={quoteattr(expr)}/>")
    # Exactness is checked by the decoder: this count must equal the elements the record shows.
    # Attributes that may hold data are counted too: no record shows one, so a member with any
    # goes to the Extractor, which reads them (vggeo.lm._records.data_attributes).
    out.append(val(f"count(descendant::*) + {_data_attributes('descendant-or-self::*')}") + sep(FS))
    out.append(val("local-name()") + sep(FS))
    for col in columns:
        out.append((val(_leaf(alts[col])) if alts.get(col) else "") + sep(FS))
    out.extend(val(expr) for _, expr in flags)
    out.append(sep(FS))
    if refs is not None:
        out.append(
            f"<xsl:for-each select={quoteattr(rexpr)}>{val(_leaf(ralts))}{sep(LS)}</xsl:for-each>"
        )
    out.append(sep(FS))
    decision_columns: tuple[str, ...] = ()
    decision_constants: dict[str, dict[str, str | None]] = {}
    if decisions is not None:
        decision_columns = tuple(dict.fromkeys(f.column for f in dcomp.rec.fields))
        body = val("local-name()") + "".join(
            sep(DS) + (val(_leaf(dalts[c])) if dalts.get(c) else "") for c in decision_columns
        )
        out.append(f"<xsl:for-each select={quoteattr(dexpr)}>{body}{sep(LS)}</xsl:for-each>")
        for _tag, (local, low) in list(dcomp.names.items()):
            decision_constants[local] = {c: v.get(low) for c, v in dcomp.rec.constants.items()}
    out.append(sep(FS))
    if geometry is not None:
        # The nearest srsDimension above the geometry, the srsName that applies to it, its
        # structure (see _skeleton) and its posList texts in document order.
        out.append(
            '<xsl:for-each select="$y/*[1]/ancestor::*[@srsDimension][1]">'
            f"<xsl:text>#</xsl:text>{val('@srsDimension')}</xsl:for-each>"
        )
        out.append(
            sep(FS) + val("$y/*[1]/ancestor-or-self::*[@srsName != ''][1]/@srsName") + sep(FS)
        )
        out.append(
            '<xsl:if test="$y">Y<xsl:apply-templates select="$y/*" mode="s"/></xsl:if>' + sep(FS)
        )
        out.append(
            '<xsl:for-each select="$y//ga:posList | $y//gb:posList">'
            + val(".")
            + sep(LS)
            + "</xsl:for-each>"
        )
    else:
        out.append(sep(FS) * 3)
    # How many references, decisions and posLists the tree holds: a separator character inside
    # a text would make the decoder split off more (see _prepare).
    counted = [
        f"count({rexpr})" if refs is not None else "0",
        f"count({dexpr})" if decisions is not None else "0",
        "count($y//ga:posList | $y//gb:posList)" if geometry is not None else "0",
    ]
    out.append(sep(FS) + val(f"concat({counted[0]}, ':', {counted[1]}, ':', {counted[2]})"))
    n_fields = _COLS + len(columns) + 1 + 1 + 1 + 4 + 1
    feature_types: dict[str, dict[str, str | None]] = {}
    for _tag, (local, low) in list(comp.names.items()):
        feature_types[local] = {c: v.get(low) for c, v in rec.constants.items()}
    # Per member: its local name and element count (the decoder checks it holds one feature
    # and is not itself a record), then the feature's record.
    # Grouping levels between member and feature (Markreglerande bestämmelse, FORMATS.md §7):
    # the chain the Extractor met most often. A member counts as holding one element when each
    # level holds exactly one element; others go to the Extractor.
    wrappers = extractor.wrappers
    chain = max(wrappers, key=lambda c: wrappers[c]) if wrappers else ()
    path = "".join(f"{names.q(t)}/" for t in chain)
    if chain:
        steps = ["count(*) = 1", f"{_data_attributes('self::*')} = 0"]
        for i in range(len(chain)):
            sub = "".join(f"{names.q(t)}/" for t in chain[: i + 1])
            steps.append(f"count({sub[:-1]}) = 1 and count({sub}*) = 1")
            steps.append(f"{_data_attributes(sub[:-1])} = 0")
        one = f"number({' and '.join(steps)})"
    else:
        one = f"count(*) + {_data_attributes('self::*')}"
    member = val("local-name()") + sep(FS) + val(one) + sep(FS)
    empty_record = "-1" + FS * (n_fields - _COLS + 1) + RS  # a member without a feature
    empty = sep(empty_record)
    ns = "".join(f" xmlns:{p}={quoteattr(uri)}" for uri, p in names.prefixes.items())
    sheet = f"""<xsl:stylesheet version="1.0" xmlns:xsl="{_XSL}"{ns} xmlns:ga="{GML32}" xmlns:gb="{GML3}">
<xsl:output method="text" encoding="UTF-8"/>
<xsl:template match="/"><xsl:for-each select="/*/*">{member}<xsl:choose>
<xsl:when test="{path}*"><xsl:for-each select="{path}*[1]">{"".join(out)}{sep(RS)}</xsl:for-each></xsl:when>
<xsl:otherwise>{empty}</xsl:otherwise></xsl:choose></xsl:for-each></xsl:template>
{"".join(_SIGNATURE_TEMPLATE.format(match=m, cls=c) for m, c in (("ga:*", "a"), ("gb:*", "b"), ("*", "c")))}
</xsl:stylesheet>"""
    walker = None
    if _walk is not None:
        try:
            walker = _walk.Program(
                chain=[_name(t) for t in chain],
                variables=w_vars,
                columns=[w_alts.get(c, []) for c in columns],
                flags=w_flags,
                refs=w_refs,
                decisions=w_decisions if decisions is not None else None,
                decision_columns=[[_name(t) for t in dflat.get(c, [])] for c in decision_columns],
                geometry=len(w_vars) - 1 if geometry is not None else None,
                gml=(GML32, GML3),
                separators=(FS, RS, LS, DS),
                empty=empty_record.encode("utf-8"),
            )
        except ValueError:  # expressions the walk does not model: the stylesheet alone
            walker = None
    return Plan(
        stylesheet=sheet.encode("utf-8"),
        walker=walker,
        columns=columns,
        feature_types=feature_types,
        subset_flags=tuple(s for s, _ in flags),
        record_names=tuple(extractor.top),
        geometry_tags=tuple(
            t
            for (p, t), a in list(comp.actions.items())
            if p == "" and a[0] == 3 and isinstance(t, str)
        ),
        decision_columns=decision_columns,
        decision_constants=decision_constants,
        n_fields=n_fields,
        depth=len(chain),
    )


#: Record fields before the feature's columns: member local name, member element count,
#: elements below the feature, feature local name.
_COLS = 4
#: One element of a geometry signature (see :func:`_skeleton`), per namespace class. Its
#: children are always bracketed, "()" for none: testing for children first cost more (≈ 4 % of
#: the stylesheet's instructions on a file of multi-part areas) than the empty brackets.
_SIGNATURE_TEMPLATE = (
    '<xsl:template match="{match}" mode="s">{cls}:<xsl:value-of select="local-name()"/>'
    "<xsl:if test=\"@srsDimension\">#<xsl:value-of select=\"translate(@srsDimension, '(),:#~', 'xxxxxx')\"/>"
    '</xsl:if><xsl:if test="not(text())">~</xsl:if>'
    '(<xsl:apply-templates select="*" mode="s"/>),</xsl:template>'
)


def _learnt_size(extractor: Extractor) -> int:
    """How much the Extractor has learnt (grows when it meets a new spelling)."""
    n = 0
    todo = list({id(c): c for c in extractor.top.values()}.values())
    seen = set()
    while todo:
        c = todo.pop()
        if id(c) in seen:
            continue
        seen.add(id(c))
        n += len(c.actions) + len(c.names)
        todo.extend(c.child_by_name.values())
    return n


# --- geometry signatures -------------------------------------------------------------------------

_TOKEN = re.compile(r"([abc]):([^#~(),]+)(#[^#~(),]*)?(~)?")
_NS = {"a": GML32, "b": GML3}


def _data_attributes(elements: str) -> str:
    """XPath: how many attributes of ``elements`` may hold data — those of non-GML elements
    outside the markup namespaces (:data:`vggeo.lm._records.MARKUP_NAMESPACES`)."""
    markup = [f"namespace-uri() = {quoteattr(u)}" for u in sorted(MARKUP_NAMESPACES)]
    geometry = " or ".join(f"local-name() = {quoteattr(n)}" for n in sorted(GEOMETRY_ATTRIBUTES))
    markup.append(f"(namespace-uri() = '' and ({geometry}))")
    return f"count({elements}[not(self::ga:* or self::gb:*)]/@*[not({' or '.join(markup)})])"


@lru_cache(maxsize=1024)
def _skeleton(signature: str, ancestor_dim: str) -> tuple[tuple[tuple[int, int], ...], ...] | None:
    """Polygons of a plain geometry as ``((posList index, dimension), …)`` per polygon, or None.

    The signature (written by the stylesheet) gives every element under ``Yta``: namespace class,
    local name, its srsDimension, whether it has text, and its children. It is rebuilt as a small
    lxml tree whose posList texts are their indexes, and given to
    :func:`~vggeo.lm.gml.simple_polygon_texts` — the same function the member-by-member reader
    uses — so "plain" and the dimensions mean exactly the same on both paths.
    """
    if not signature.startswith("Y"):
        return None
    holder = etree.Element("holder")
    if ancestor_dim:
        holder.set("srsDimension", ancestor_dim[1:])
    stack = [holder]
    pos, n, k = 1, len(signature), 0
    last = None
    while pos < n:
        ch = signature[pos]
        if ch == "(":
            if last is None:
                return None
            stack.append(last)
            pos += 1
        elif ch == ")":
            if len(stack) < 2:
                return None
            stack.pop()
            pos += 1
        elif ch == ",":
            pos += 1
        else:
            m = _TOKEN.match(signature, pos)
            if m is None:
                return None
            if m.group(1) == "c":  # outside GML: left to the geometry reader of the element
                return None
            last = etree.SubElement(stack[-1], f"{{{_NS[m.group(1)]}}}{m.group(2)}")
            if m.group(3) is not None:
                last.set("srsDimension", m.group(3)[1:])
            if m.group(2) == "posList":
                last.text = None if m.group(4) else str(k)
                k += 1
            elif not m.group(4):
                last.text = "x"
            pos = m.end()
    if len(stack) != 1 or len(holder) != 1:
        return None
    polys = simple_polygon_texts(holder[0])
    if polys is None:
        return None
    return tuple(tuple((int(text), dim) for text, dim, _line in rings) for rings in polys)


# --- reading -------------------------------------------------------------------------------------
#
# Work is split by what releases the GIL: the worker threads (:func:`_prepare`) parse, transform
# and decode with lxml, pyarrow and numpy, which run without it; this thread (:func:`_decode`)
# does what needs Python objects — members for the Extractor, curved geometry — and the typing.


def _items(arr: pa.Array, sep: str) -> tuple[pa.Array, np.ndarray, np.ndarray]:
    """Items of separator-terminated lists, one list per record: (items, parent record, real).

    Each list ends with the separator, so the last item of every list is an empty remainder:
    ``real`` is False there.
    """
    lists = pc.split_pattern(arr, sep)
    offsets = lists.offsets.to_numpy()
    items = lists.flatten()
    parents = pc.list_parent_indices(lists).to_numpy()
    real = np.ones(len(items), dtype=bool)
    real[offsets[1:] - 1] = False
    return items, parents, real


def _nonempty(arr: pa.Array) -> np.ndarray:
    return pc.not_equal(arr, "").to_numpy(zero_copy_only=False)


def _nulled(arr: pa.Array) -> pa.Array:
    """Empty strings as nulls: an exact member's empty field is one it does not have."""
    return pc.if_else(pc.equal(arr, ""), pa.scalar(None, arr.type), arr)


def _mapped(arr: pa.Array, mapping: dict, default: Any = None) -> np.ndarray:
    """Arrow strings mapped through a small dict (per distinct value), as an object array."""
    enc = pc.dictionary_encode(arr)
    values = np.array(
        [mapping.get(v, default) for v in enc.dictionary.to_pylist()] + [default], dtype=object
    )
    idx = enc.indices.fill_null(len(enc.dictionary)).to_numpy()
    return values[idx]


def _fixed_width(arr: pa.Array, width: int) -> np.ndarray | None:
    """The characters of a large_string array whose every value is ``width`` ASCII digits, as
    an ``(n, width)`` uint8 view of its data buffer (no pyarrow call); None for any other."""
    if arr.type != pa.large_string() or arr.null_count or not width:
        return None
    offsets = np.frombuffer(arr.buffers()[1], dtype=np.int64)[
        arr.offset : arr.offset + len(arr) + 1
    ]
    if len(arr) and not (np.diff(offsets) == width).all():
        return None
    data = np.frombuffer(arr.buffers()[2], dtype=np.uint8) if len(arr) else np.zeros(0, np.uint8)
    digits = data[offsets[0] : offsets[-1]]
    if not ((digits >= ord("0")) & (digits <= ord("9"))).all():
        return None
    return digits.reshape(len(arr), width)


@dataclass
class _Prepared:
    """One chunk, parsed, transformed and decoded as far as it goes without Python objects."""

    members: list  # the chunk's member elements
    plan: Plan
    n: int
    exact: np.ndarray  # bool per member
    idx: np.ndarray  # positions of the exact members
    columns: dict  # column → Arrow array over the exact members ("" for absent)
    types: np.ndarray  # provision type per exact member
    flags: list  # (subset, numpy bool array over the exact members)
    affected: tuple  # (exact member position per reference, Arrow register unit ids)
    decisions: tuple | None  # (exact member position per decision, {column: Arrow/object array})
    shapes: list  # per exact member: () no area, rings per polygon of a plain 2D area, None other
    srs: np.ndarray  # srsName per exact member
    rings: tuple | None  # (values, offsets, member per ring) of every posList of the chunk


def _prepare(piece: bytes, plan: Plan) -> _Prepared:
    """Parse a chunk, run the stylesheet and decode its records column-wise (any thread)."""
    doc = _parse(piece)
    out = plan.transform(doc)
    n = len(doc)
    # The stylesheet wrote UTF-8 (libxml2 checked the input's encoding): view it as strings.
    recs = pc.split_pattern(
        pa.array([out], pa.large_binary()).view(pa.large_string()), RS
    ).flatten()
    del out
    if len(recs) != n + 1 or recs[n].as_py() != "":
        raise Fallback("record count")
    fields = pc.split_pattern(recs.slice(0, n), FS)
    if n and (pc.list_value_length(fields).to_numpy() != plan.n_fields).any():
        raise Fallback("field count")
    if not n:
        return _Prepared(
            [],
            plan,
            0,
            np.zeros(0, bool),
            np.zeros(0, np.int64),
            {},
            np.empty(0, object),
            [],
            (np.zeros(0, np.int64), pa.array([], pa.large_string())),
            None,
            [],
            np.empty(0, object),
            None,
        )
    nc, k = len(plan.columns), plan.n_fields
    at = _COLS + nc  # flags, refs, decisions, ancestor dim, srsName, signature, rings
    # Every record has k fields: the flattened fields are an n × k grid, taken column-wise.
    grid = fields.flatten()
    rows_all = np.arange(n, dtype=np.int64) * k

    def columns(js: tuple[int, ...], rows: np.ndarray | None = None) -> dict[int, pa.Array]:
        """Fields ``js`` of the records (all, or ``rows``): one take for all of them, sliced
        (each pyarrow call is a GIL round trip the other thread may make this one wait for)."""
        starts = rows_all if rows is None else rows * k
        m = len(starts)
        taken = grid.take(pa.array((np.array(js, dtype=np.int64)[:, None] + starts).ravel()))
        return {j: taken.slice(i * m, m) for i, j in enumerate(js)}

    col = columns((0, 1, 2, 3, at, at + 1, at + 2, at + 5, at + 6, at + 7))

    # The elements each record shows (see the module docstring, step 3).
    desc = pc.cast(col[2], pa.int64()).to_numpy()
    filled = pc.not_equal(grid, "").to_numpy(zero_copy_only=False).reshape(n, k)
    shown = filled[:, _COLS:at].sum(axis=1, dtype=np.int64)
    shown += pc.count_substring(col[at], "1").to_numpy()
    refs, ref_parent, ref_real = _items(col[at + 1], LS)
    shown += np.bincount(
        ref_parent, weights=ref_real.astype(np.int64) + (ref_real & _nonempty(refs)), minlength=n
    ).astype(np.int64)
    decs, dec_parent, dec_real = _items(col[at + 2], LS)
    dec_fields = pc.split_pattern(decs, DS)
    dec_shown = np.bincount(
        pc.list_parent_indices(dec_fields).to_numpy(),
        weights=_nonempty(dec_fields.flatten()),
        minlength=len(decs),
    )
    shown += np.bincount(dec_parent, weights=dec_shown * dec_real, minlength=n).astype(np.int64)
    shown += pc.count_substring(col[at + 5], ",").to_numpy()

    pid_at = _COLS + plan.columns.index("provision_id")
    exact = (desc >= 0) & (desc == shown) & filled[:, pid_at]
    # Separator characters in the input (they are private-use characters, so real data has
    # none) split off more items than the tree has: such members go to the Extractor.
    counted = pc.split_pattern(pc.if_else(pc.equal(col[at + 7], ""), "0:0:0", col[at + 7]), ":")
    if not (np.diff(counted.offsets.to_numpy()) == 3).all():
        raise Fallback("item counts")
    want = pc.cast(counted.flatten(), pa.int64()).to_numpy().reshape(n, 3)
    ring_items = _items(col[at + 6], LS)
    for j, (parent, real) in enumerate(
        ((ref_parent, ref_real), (dec_parent, dec_real), ring_items[1:])
    ):
        exact &= np.bincount(parent[real], minlength=n) == want[:, j]
    dec_width = pc.list_value_length(dec_fields).to_numpy()
    bad = dec_real & (dec_width != 1 + len(plan.decision_columns))
    exact &= np.bincount(dec_parent[bad], minlength=n) == 0
    # One element in the member, and the member not a record itself (the Extractor compares
    # lower-cased local names; only ASCII names are records, so utf8_lower agrees with str.lower).
    exact &= pc.equal(col[1], "1").to_numpy(zero_copy_only=False)
    exact &= ~pc.is_in(pc.utf8_lower(col[0]), pa.array(plan.record_names)).to_numpy(
        zero_copy_only=False
    )
    types = _mapped(
        col[3], {k: v.get("provision_type") for k, v in plan.feature_types.items()}, default=False
    )
    exact &= types != False  # noqa: E712 - object array: False marks an unlearnt feature name

    idx = np.flatnonzero(exact)
    # Two takes: the columns' slices stay in the batch until it is typed, and keep the whole of
    # their take alive; the rest is dropped with this chunk.
    kept = columns(tuple(range(_COLS, at)), idx)
    by_column = {c: kept[_COLS + j] for j, c in enumerate(plan.columns)}
    meta = columns((at, at + 3, at + 4, at + 5), idx)
    flags_all = meta[at]
    digits = _fixed_width(flags_all, len(plan.subset_flags))
    opened: dict = {}  # subset → whether any of its containers is present (bool per exact member)
    for j, name in enumerate(plan.subset_flags):
        if name:
            if digits is not None:
                hit = digits[:, j] == ord("1")
            else:
                hit = pc.equal(pc.utf8_slice_codeunits(flags_all, j, j + 1), "1").to_numpy(
                    zero_copy_only=False
                )
            opened[name] = opened[name] | hit if name in opened else hit
    flags = list(opened.items())
    pos = np.full(n, -1, dtype=np.int64)  # position of each exact member among the exact ones
    pos[idx] = np.arange(len(idx))
    keep = ref_real & exact[ref_parent]
    affected = (pos[ref_parent[keep]], refs.filter(pa.array(keep)))
    decisions = None
    dkeep = dec_real & exact[dec_parent]
    if dkeep.any():
        dsel = dec_fields.filter(pa.array(dkeep))
        dcols: dict = {}
        kind_names = pc.list_element(dsel, 0)
        for cname in sorted({k for c in plan.decision_constants.values() for k in c}):
            dcols[cname] = _mapped(
                kind_names, {k: v.get(cname) for k, v in plan.decision_constants.items()}
            )
        for j, c in enumerate(plan.decision_columns):
            dcols[c] = pc.list_element(dsel, j + 1)
        decisions = (pos[dec_parent[dkeep]], dcols)
    sigs = meta[at + 5].to_numpy(zero_copy_only=False)
    ancs = meta[at + 3].to_numpy(zero_copy_only=False)
    shapes = [_plain_shape(s_, a_) if s_ else () for s_, a_ in zip(sigs, ancs, strict=True)]
    srs = meta[at + 4].to_numpy(zero_copy_only=False)

    # Every posList text of the chunk to numbers at once (pyarrow's C++ split and cast).
    texts, ring_parent, ring_real = ring_items
    rings = None
    ring_keep = ring_real & exact[ring_parent]
    if ring_keep.any():
        try:
            values, offsets = convert_texts(texts.filter(pa.array(ring_keep)))
        except ValueError:
            raise Fallback("non-numeric coordinates") from None
        rings = (values, offsets, pos[ring_parent[ring_keep]])
    # The tree is kept only when a member of it is read from its element (the Extractor's
    # members, curved areas); otherwise it is freed here, in the preparing thread.
    needed = not exact.all() or any(s_ is None for s_ in shapes)
    return _Prepared(
        list(doc) if needed else [],
        plan,
        n,
        exact,
        idx,
        by_column,
        types[idx],
        flags,
        affected,
        decisions,
        shapes,
        srs,
        rings,
    )


@lru_cache(maxsize=1024)
def _plain_shape(signature: str, ancestor_dim: str) -> tuple[int, ...] | None:
    """Rings per polygon of a plain area in 2D, or None (anything else: the geometry reader's)."""
    skeleton = _skeleton(signature, ancestor_dim)
    if skeleton is None or any(d != 2 for rings in skeleton for _r, d in rings):
        return None
    return tuple(len(rings) for rings in skeleton)


class _MemberReader(Protocol):
    """The member-by-member reader the compiled path hands what it cannot vouch for
    (:class:`vggeo.lm.bestammelse._FileReader`)."""

    ex: Extractor
    collector: GeometryCollector
    parts: list[BestammelseData]

    def feed(self, member: etree._Element) -> None: ...
    def flush(self) -> None: ...


class _Batch:
    """What the compiled path collected from a few chunks, typed together at :func:`_flush`."""

    def __init__(self) -> None:
        self.n = 0  # exact provisions
        self.seq: list = []  # file position of each exact provision
        self.columns: dict[str, list] = defaultdict(list)
        self.types: list = []
        self.flags: dict[str, list] = defaultdict(list)
        self.affected: list[tuple] = []  # (batch row per reference, register unit ids)
        self.decisions: list[tuple] = []  # (batch row per decision, {column: array})
        # Plain areas: per chunk (batch rows, srsName per row, rings per polygon per row,
        # coordinates, ring offsets into them).
        self.plain: list[tuple] = []
        self.other: list[tuple[int, AreaSlot]] = []  # (batch row, collector slot)
        # Members the Extractor read: file position per row of each of its tables.
        self.slow: dict[str, list[int]] = {
            "provisions": [],
            "affected_properties": [],
            "decisions": [],
        }


def _feed(reader: _MemberReader, member: etree._Element, batch: _Batch, seq: int) -> None:
    ex = reader.ex
    before = {t: len(ex.rows[t]) for t in batch.slow}
    reader.feed(member)
    for t, rows in batch.slow.items():
        rows.extend([seq] * (len(ex.rows[t]) - before[t]))


def _decode(p: _Prepared, reader: _MemberReader, batch: _Batch, base: int) -> None:
    """Add a prepared chunk to the batch; members it could not read go to the Extractor, in place."""
    slow = np.flatnonzero(~p.exact)
    STATS["exact"] += len(p.idx)
    STATS["extractor"] += len(slow)
    for i in slow:
        _feed(reader, p.members[i], batch, base + int(i))
    if not len(p.idx):
        return
    first = batch.n
    batch.n += len(p.idx)
    batch.seq.append(base + p.idx)
    for c, a in p.columns.items():
        batch.columns[c].append(a)
    batch.types.append(p.types)
    for name, a in p.flags:
        batch.flags[name].append(a)
    batch.affected.append((first + p.affected[0], p.affected[1]))
    if p.decisions is not None:
        batch.decisions.append((first + p.decisions[0], p.decisions[1]))

    # Geometry: plain polygons in 2D go to the ragged-array build; anything else is parsed from
    # the member's element by the member-by-member geometry reader.
    plain = np.zeros(len(p.idx), dtype=bool)
    polys, srs = [], []
    pids = None
    for k, shape in enumerate(p.shapes):
        if shape is not None:
            if shape:
                plain[k] = True
                polys.append(shape)
                srs.append(p.srs[k] or None)
            continue
        if pids is None:
            pids = p.columns["provision_id"].to_pylist()
        feature = p.members[p.idx[k]][0]
        for _ in range(p.plan.depth):
            feature = feature[0]
        yta = next(el for el in feature if el.tag in p.plan.geometry_tags)
        batch.other.append((first + k, reader.collector(yta, {"provision_id": pids[k]})))
    if plain.any():
        if p.rings is None:
            raise Fallback("plain areas without rings")
        values, offsets, ring_row = p.rings
        take = plain[ring_row]
        if int(take.sum()) != sum(sum(c) for c in polys):
            raise Fallback("ring count")
        starts, stops = offsets[:-1][take], offsets[1:][take]
        sizes = stops - starts
        coords = values[
            np.repeat(starts - np.concatenate([[0], np.cumsum(sizes)[:-1]]), sizes)
            + np.arange(int(sizes.sum()))
        ]
        batch.plain.append(
            (
                first + np.flatnonzero(plain),
                srs,
                polys,
                coords,
                np.concatenate([[0], np.cumsum(sizes)]),
            )
        )


def _plain_geometries(
    batch: _Batch,
    collector: GeometryCollector,
    default_epsg: int | None,
    pid: Callable[[SupportsInt], str],
) -> tuple[np.ndarray, np.ndarray]:
    """Build every plain area of a batch in one go: (batch rows, MultiPolygons)."""
    if not batch.plain:
        return np.zeros(0, dtype=np.int64), np.empty(0, dtype=object)
    rows = np.concatenate([p[0] for p in batch.plain])
    srs = [s for p in batch.plain for s in p[1]]
    polys = [c for p in batch.plain for c in p[2]]
    values = np.concatenate([p[3] for p in batch.plain])
    shift = np.cumsum([0] + [len(p[3]) for p in batch.plain[:-1]])
    offsets = np.concatenate(
        [[0]] + [p[4][1:] + s for p, s in zip(batch.plain, shift, strict=True)]
    )
    # The member-by-member reader's checks; on any failure it reads the file, naming the ring.
    if not valid_rings(values, offsets, 2).all():
        raise Fallback("ring shape")
    xy = values.reshape(-1, 2)
    start = offsets[:-1] // 2
    # A file names a handful of srsNames: each looked up once, then indexed per row.
    names = list(dict.fromkeys(srs))
    which = np.fromiter(
        map({n: i for i, n in enumerate(names)}.__getitem__, srs), dtype=np.int64, count=len(srs)
    )
    known = [collector.srs(n) for n in names]
    if any(c is None for c, _ in known):
        raise Fallback("srsName without an EPSG code")
    polygons = np.fromiter(map(len, polys), dtype=np.int64, count=len(polys))
    poly_sizes = np.fromiter(chain.from_iterable(polys), dtype=np.int64)
    rings_per_row = np.add.reduceat(poly_sizes, np.cumsum(polygons) - polygons)
    ring_row = np.repeat(np.arange(len(rows)), rings_per_row)
    sizes = np.diff(offsets) // 2
    # Axis order: by the srsName form, or (no srsName) by magnitude ring by ring, as the
    # member-by-member reader does.
    swap_row = np.array([s is True for _, s in known])[which]
    magnitude = np.array([s is None for _, s in known])[which]
    ring_swap = swap_row[ring_row] | (
        magnitude[ring_row] & northing_first_by_magnitude(xy[start, 0], xy[start, 1])
    )
    coords = np.where(np.repeat(ring_swap, sizes)[:, None], xy[:, ::-1], xy)
    coord_row = np.repeat(ring_row, sizes)
    epsg = np.array([c or default_epsg or 3006 for c, _ in known])[which]
    to_3006(
        coords,
        epsg[0] if (epsg == epsg[0]).all() else epsg[coord_row],
        lambda i: pid(rows[coord_row[i]]),
    )
    geoms = shapely.from_ragged_array(
        GeometryType.MULTIPOLYGON,
        np.ascontiguousarray(coords),
        (
            np.concatenate([[0], np.cumsum(sizes)]),
            np.concatenate([[0], np.cumsum(poly_sizes)]),
            np.concatenate([[0], np.cumsum(polygons)]),
        ),
    )
    return rows, geoms


def _flush(
    batch: _Batch, reader: _MemberReader, default_epsg: int | None, label: str
) -> BestammelseData | None:
    """Typed frames of a batch: the exact members' and the Extractor's, merged in file order."""
    slow_rows = reader.ex.dict_rows("provisions")
    slow_subset_seq = np.repeat(
        np.array(batch.slow["provisions"], dtype=np.int64),
        [len(r.get(SUBSETS_KEY, ())) for r in slow_rows],
    )
    reader.flush()  # resolves every collector slot too, the exact members' curved areas included
    parts: list[tuple[BestammelseData, dict]] = []
    if reader.parts:
        [slow] = reader.parts
        reader.parts = []
        parts.append(
            (
                slow,
                {
                    "provisions": batch.slow["provisions"],
                    "affected": batch.slow["affected_properties"],
                    "decisions": batch.slow["decisions"],
                    "subsets": slow_subset_seq,
                },
            )
        )
    if reader.collector.errors:
        raise Fallback("kept geometry errors")
    if batch.n:
        seq = np.concatenate(batch.seq)
        prov = ColumnRows(())
        # Raw strings as the stylesheet wrote them; empty means absent (see _nulled).
        prov.columns = {c: _nulled(pa.concat_arrays(v)) for c, v in batch.columns.items()}
        prov.n = batch.n
        pid_arr = prov.columns["provision_id"]

        def pid(i: SupportsInt) -> str:  # the identity that names a provision in an error
            return str(pid_arr[int(i)].as_py()).strip().lower()

        geometry = np.array([shapely.MultiPolygon()] * batch.n, dtype=object)
        rows, plain = _plain_geometries(batch, reader.collector, default_epsg, pid)
        geometry[rows] = plain
        if batch.other:
            at = [r for r, _ in batch.other]
            built = build_geometries(
                [s.area() for _, s in batch.other],
                [pid(r) for r in at],
                default_epsg=default_epsg,
            )
            geometry[at] = built
        aff_rows = np.concatenate([a[0] for a in batch.affected])
        aff = ColumnRows(())
        aff.columns = {
            "provision_id": pid_arr.take(pa.array(aff_rows)),
            "register_unit_id": _nulled(pa.concat_arrays([a[1] for a in batch.affected])),
        }
        aff.n = len(aff_rows)
        dec = ColumnRows(())
        dec_rows = np.zeros(0, dtype=np.int64)
        if batch.decisions:
            dec_rows = np.concatenate([d[0] for d in batch.decisions])
            keys = batch.decisions[0][1].keys()
            dec.columns = {
                k: (
                    _nulled(pa.concat_arrays([d[1][k] for d in batch.decisions]))
                    if isinstance(batch.decisions[0][1][k], pa.Array)
                    else np.concatenate([d[1][k] for d in batch.decisions])
                )
                for k in keys
            }
            dec.columns["provision_id"] = pid_arr.take(pa.array(dec_rows))
            dec.n = len(dec_rows)
        # Subsets: per provision its subset names in sorted order, as the Extractor lists them.
        sub_rows, sub_names = [np.zeros(0, dtype=np.int64)], [np.zeros(0, dtype=object)]
        for name in sorted(batch.flags):
            hit = np.flatnonzero(np.concatenate(batch.flags[name]))
            sub_rows.append(hit)
            sub_names.append(np.full(len(hit), name, dtype=object))
        sub_rows_a = np.concatenate(sub_rows)
        order = np.argsort(sub_rows_a, kind="stable")
        sub_rows_a, sub_names_a = sub_rows_a[order], np.concatenate(sub_names)[order]
        subsets = {
            "provision_id": pid_arr.take(pa.array(sub_rows_a)),
            "subset": pa.array(sub_names_a, pa.large_string()),
        }
        fast = assemble(
            prov,
            np.concatenate(batch.types),
            lambda ids: geometry,
            aff,
            dec,
            subsets,
            files=[label],
        )
        parts.append(
            (
                fast,
                {
                    "provisions": seq,
                    "affected": seq[aff_rows],
                    "decisions": seq[dec_rows],
                    "subsets": seq[sub_rows_a],
                },
            )
        )
    if not parts:
        return None
    if len(parts) == 1:
        return parts[0][0]

    def merged(name: str) -> pd.DataFrame:
        keys = np.concatenate([np.asarray(k[name], dtype=np.int64) for _, k in parts])
        df = pd.concat([getattr(p, name) for p, _ in parts], ignore_index=True)
        return df.take(np.argsort(keys, kind="stable")).reset_index(drop=True)

    prov = gpd.GeoDataFrame(merged("provisions"), geometry="geometry", crs="EPSG:3006")
    return BestammelseData(
        prov, merged("affected"), merged("decisions"), merged("subsets"), files=[label]
    )


def _parse(piece: bytes) -> etree._Element:
    """A chunk's tree; without the whitespace between elements where that cannot matter.

    A pretty-printed file is half whitespace text nodes between elements, which libxml2
    allocates, the walk steps over and freeing walks again (parse 1.1 s against 0.63 s for the
    second writer's pretty file). Neither reader reads them: both read the text of elements
    without element children (libxml2 keeps whitespace that is an element's only content),
    never the text between elements, and the geometry signature's "has text" mark is ignored
    for all but posList, a leaf. libxml2 also drops whitespace before a comment, a processing
    instruction or a CDATA section, which can be a leaf's text: a chunk holding any of those
    (``<!``, ``<?``) keeps its whitespace, as does ``xml:space="preserve"`` (libxml2 honours it).
    """
    # A lone "!" or "?" is rare in these files, and `in` finds one byte by memchr (≈ 50× faster
    # than the two-byte search, which took ≈ 1.6 ms of a 2 MB chunk with the GIL held).
    blanks = (b"!" not in piece or b"<!" not in piece) and (b"?" not in piece or b"<?" not in piece)
    try:
        return etree.fromstring(
            piece, etree.XMLParser(**XML_PARSER_OPTIONS, remove_blank_text=blanks)
        )
    except etree.XMLSyntaxError as err:
        raise Fallback(f"chunk does not parse: {err}") from None


#: Worker threads preparing chunks besides the reading thread (which prepares chunks too
#: whenever the oldest is not ready: see read_file). lxml and pyarrow release the GIL while
#: they work; more threads only contend for it on two cores (benchmarks/lm.md).
WORKERS = 1
#: Provisions per typed part (a part is yielded at the first chunk boundary past this).
BATCH_ROWS = 4000
#: Chunks in flight: prepared or being prepared, not yet decoded (a prepared chunk holds its
#: tree only when some member of it is read from its element: on the generator's file, with
#: its arcs, 8 in flight raised the peak by 10–30 MB against 4; 6 by 10–15 MB).
IN_FLIGHT = 6
#: Chunks the pool works on or has queued. A chunk takes the worker ~20 ms; typing a batch took
#: this thread ~50 ms, during which nobody submits: with two queued the worker idled 0.4–0.5 s
#: of a 1.5 s read, with four 0.1 s (benchmarks/lm.md, "fourth pass").
QUEUED = 4
#: The interpreter's thread switch interval while a file is read (seconds; CPython's default is
#: 0.005). The worker needs the GIL for a moment between its C calls (a chunk's decoding is ~30
#: pyarrow calls); while this thread runs Python (typing a batch) each such moment waited up to
#: the whole interval, stalling the worker for about a fifth of its time (benchmarks/lm.md).
SWITCH_INTERVAL = 0.0005


class _ShortSwitch:
    """The switch interval shortened to :data:`SWITCH_INTERVAL` while the reader works, and the
    caller's restored whenever a part is handed out (:func:`iter_file` is a generator)."""

    def __init__(self) -> None:
        self.saved: float | None = None

    def __enter__(self) -> _ShortSwitch:
        self.saved = sys.getswitchinterval()
        sys.setswitchinterval(min(self.saved, SWITCH_INTERVAL))
        return self

    def __exit__(self, *exc: object) -> None:
        if self.saved is not None:
            sys.setswitchinterval(self.saved)
            self.saved = None


def _busy(pending: Iterable[_Queued | _Ready]) -> int:
    """Chunks the pool is working on or has queued."""
    return sum(1 for p in pending if not p.done())


def _take_back(pending: deque[_Queued | _Ready]) -> bool:
    """Prepare on this thread the oldest chunk the pool has not started; False if none."""
    for i, p in enumerate(pending):
        if isinstance(p, _Queued):
            ready = p.take_back()
            if ready is not None:
                pending[i] = ready
                return True
    return False


class _Ready:
    """A chunk this thread prepared itself, queued among the pool's."""

    def __init__(self, value: _Prepared) -> None:
        self.value = value

    def done(self) -> bool:
        return True

    def result(self) -> _Prepared:
        return self.value


class _Queued:
    """A chunk handed to the pool, with its bytes, so this thread can take it back."""

    def __init__(self, pool: ThreadPoolExecutor, piece: bytes, plan: Plan) -> None:
        self.piece: bytes | None = piece
        self.plan = plan
        self.future: Future[_Prepared] = pool.submit(_prepare, piece, plan)

    def done(self) -> bool:
        return self.future.done()

    def result(self) -> _Prepared:
        self.piece = None
        return self.future.result()

    def take_back(self) -> _Ready | None:
        """Prepare the chunk on this thread if the pool has not started it (else None)."""
        if self.piece is None or not self.future.cancel():
            return None
        piece, self.piece = self.piece, None
        STATS["taken_back"] += 1
        return _Ready(_prepare(piece, self.plan))


def _recompiled(ex: Extractor, taught: _Prepared) -> Plan | None:
    """A plan with the spellings the Extractor has learnt since the last, checked on the chunk
    that taught them (its tree is kept: some of its members were read from their elements)."""
    plan = compile_plan(ex)
    if plan is not None and taught.members:
        plan.verify(taught.members[0].getparent())
    return plan


#: What :func:`iter_file` returns: elements the mapping did not use (by path) and the geometry
#: errors kept — both None when the member-by-member reader must read the file — and how many
#: members the parts yielded hold.
FileEnd = tuple[Counter[str] | None, list[tuple[str, str]] | None, int]


def read_file(
    f: DataFile,
    new_reader: Callable[[], _MemberReader],
    *,
    default_epsg: int | None = None,
    batch_rows: int | None = None,
) -> tuple[list[BestammelseData], Counter[str], list[tuple[str, str]]] | None:
    """Read one data file on the compiled path: ``(parts, unmapped, errors)``, or None to read it
    member by member."""
    parts: list[BestammelseData] = []
    gen = iter_file(f, new_reader, default_epsg=default_epsg, batch_rows=batch_rows)
    while True:
        try:
            parts.append(next(gen))
        except StopIteration as stop:
            unmapped, errors, _done = stop.value
            if unmapped is None or errors is None:
                return None
            return parts, unmapped, errors


def iter_file(
    f: DataFile,
    new_reader: Callable[[], _MemberReader],
    *,
    default_epsg: int | None = None,
    batch_rows: int | None = None,
) -> Generator[BestammelseData, None, FileEnd]:
    """Read one data file on the compiled path, yielding its typed parts as they are complete.

    Returns (as the generator's value) ``(unmapped, errors, members)`` when the whole file was
    read, or ``(None, None, members)`` when the member-by-member reader must read it: the parts
    yielded so far hold exactly the file's first ``members`` members (each part ends at a chunk
    boundary), so that reader can skip them (:func:`vggeo.lm.bestammelse._read_file`).
    """
    batch_rows = batch_rows or BATCH_ROWS
    reader = new_reader()
    done = 0  # members of the parts yielded so far
    try:
        # A DOCTYPE, an empty root or a head that does not parse stops split_members
        # (ChunkingUnsupported): the member-by-member reader then refuses or reads the file.
        with (
            _ShortSwitch() as switch,
            f.open() as stream,
            ThreadPoolExecutor(WORKERS, thread_name_prefix="vggeo-lm") as pool,
        ):
            pieces = split_members(
                stream, chunk_bytes=CHUNK_BYTES, first_chunk_bytes=LEARN_BYTES, count_lines=False
            )
            first = next(pieces, None)
            if first is None:
                return None, None, done
            batch = _Batch()
            doc = _parse(first[0])
            for i, member in enumerate(doc):
                _feed(reader, member, batch, i)
            base = len(doc)
            learnt = _learnt_size(reader.ex)
            plan = compile_plan(reader.ex)
            if plan is None:
                return None, None, done
            plan.verify(doc)
            del doc
            # Chunks are prepared by the pool and, whenever the oldest is not ready yet, by this
            # thread too ("caller runs": a new chunk while fewer than IN_FLIGHT are in flight,
            # else one the pool has queued but not started): no core idles while the other is
            # busy.
            pending: deque[_Queued | _Ready] = deque()
            more = True
            while pending or more:
                # The worker always has chunks waiting in its queue besides the one it works
                # on, so it does not idle while this thread types a batch or prepares a chunk.
                while more and len(pending) < IN_FLIGHT and _busy(pending) < QUEUED:
                    piece = next(pieces, None)
                    if piece is None:
                        more = False
                    else:
                        pending.append(_Queued(pool, piece[0], plan))
                # Caller runs; also when nothing went to the pool (QUEUED or IN_FLIGHT set to
                # 0), so that the file ends only where the split ends.
                if more and (not pending or (not pending[0].done() and len(pending) < IN_FLIGHT)):
                    piece = next(pieces, None)
                    if piece is None:
                        more = False
                    else:
                        pending.append(_Ready(_prepare(piece[0], plan)))
                    continue
                if not pending:
                    break  # the split has ended and every chunk is decoded
                if not pending[0].done() and _take_back(pending):
                    continue  # rather than wait, this thread prepared a chunk the pool had queued
                prepared = pending.popleft().result()
                _decode(prepared, reader, batch, base)
                base += prepared.n
                if batch.n + len(reader.ex.rows["provisions"]) >= batch_rows:
                    part = _flush(batch, reader, default_epsg, f.label)
                    batch = _Batch()
                    if part is not None:
                        switch.__exit__()
                        yield part
                        switch.__enter__()
                    done = base
                size = _learnt_size(reader.ex)
                if size != learnt:  # new spellings met: chunks submitted from now on use them
                    learnt = size
                    plan = _recompiled(reader.ex, prepared) or plan
            part = _flush(batch, reader, default_epsg, f.label)
            switch.__exit__()
            if part is not None:
                yield part
            done = base
        STATS["files"] += 1
        return reader.ex.unmapped, [], done
    except (Fallback, ChunkingUnsupported, VggeoError, pa.ArrowInvalid, etree.XSLTError):
        STATS["fallbacks"] += 1
        # The member-by-member reader decides, and names the exact place of any error.
        return None, None, done
