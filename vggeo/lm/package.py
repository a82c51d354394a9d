"""Open a Lantmäteriet delivery in any of its forms, read its metadata, verify it, list deletions.

Forms accepted by :func:`open_delivery` (FORMATS.md §3):

* the **outer ZIP** named by the order UUID: ``<uuid>.zip`` → ``<Informationstyp>/`` folders →
  ``<set>.zip`` + ``<set>_metadata.xml``;
* the same **unpacked into a folder** (set ZIPs or their unpacked contents inside);
* one **inner set ZIP** ``<set>.zip`` (its ``<set>_metadata.xml`` is used when it lies beside it);
* one **XML file** — a numbered data file ``<set>_<n>.xml``, a deletion file, or any data file
  whose root identifies the product.

Inside a set: numbered data files ``<set>_1.xml``, ``<set>_2.xml`` …, ``<set>_borttag.xml``
deletion files in change extracts, and for persons ``folkbokford_person_organisation.xml``.
Every archive member is checked by :mod:`vggeo.lm.safety` before it is read.
"""

from __future__ import annotations

import fnmatch
import functools
import hashlib
import io
import os
import re
import shutil
import tempfile
import time
import weakref
import zipfile
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any, Self

import pandas as pd
from lxml import etree

from vggeo.crs import epsg_from_code_text, epsg_from_srs_name
from vggeo.errors import (
    DeliveryError,
    InputError,
    IntegrityError,
    ParseError,
    note_input,
    printable,
)
from vggeo.lm import mapping as M
from vggeo.lm._records import Extractor, data_attributes, local, typed_frame
from vggeo.lm.safety import (
    DEFAULT_LIMITS,
    XML_PARSER_OPTIONS,
    ZIP_READ_ERRORS,
    FileWindow,
    ZipLimits,
    check_zip,
    member_data_offset,
    open_member,
    safe_iterparse,
)

__all__ = [
    "open_delivery",
    "Delivery",
    "SetMetadata",
    "DataFile",
    "refuse_unmapped",
    "UnmappedError",
    "unmapped_lines",
]

_PRODUCT_TYPE = {"bestammelse": "Markreglerande bestämmelse", "inskrivning": "Inskrivning"}
_DATA_RE = re.compile(r"^(?P<set>.+?)(?:_(?P<n>\d+))?\.xml$", re.I)
_META_SUFFIX = "_metadata.xml"
_DEL_SUFFIX = "_borttag.xml"


@dataclass
class DataFile:
    """One XML file of a set: data (numbered), deletion or metadata."""

    name: str
    set_name: str
    kind: str  # "data" | "deletion" | "metadata"
    size: int | None
    opener: Callable[[], IO[bytes]]
    label: str  # how errors name it (path!member)

    def open(self) -> IO[bytes]:
        note_input(self.label)
        return self.opener()


@dataclass
class SetMetadata:
    """What a ``<set>_metadata.xml`` says (element names inferred; see :mod:`vggeo.lm.mapping`)."""

    set_name: str
    extract_id: str | None = None
    previous_extract_id: str | None = None
    produced_at: datetime | None = None
    extract_type: str | None = None
    crs: int | None = None
    information_type: str | None = None
    subsets: list[str] = field(default_factory=list)
    selection_type: str | None = None
    list_reference: str | None = None
    selection: list[str] = field(default_factory=list)
    total_count: int | None = None
    file_size: int | None = None
    direct_marketing: bool | None = None
    exclude_personnummer: bool | None = None
    files: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(columns=["file_name", "count", "file_size"])
    )
    unmapped: Counter = field(default_factory=Counter)
    label: str = ""


def parse_metadata(stream: IO[bytes], *, set_name: str, label: str) -> SetMetadata:
    """Read one metadata file (small: parsed whole, with the safe settings)."""
    ex = Extractor((M.METADATA,))
    root = None
    for _, el in safe_iterparse(stream, events=("end",), name=label):
        root = el
    if root is None:  # pragma: no cover - safe_iterparse raises first
        raise ParseError("empty metadata file", file=label)
    ex.extract(root, ex.top.get(local(root).lower()) or next(iter(ex.top.values())), None)
    row = ex.dict_rows("metadata")[0]
    files = typed_frame(ex.dict_rows("files"), M.METADATA.children[0].fields, file=label)
    top = typed_frame(
        [row], tuple(f for f in M.METADATA.fields if f.kind not in ("list", "datetime")), file=label
    ).iloc[0]
    md = SetMetadata(set_name=set_name, files=files, unmapped=ex.unmapped, label=label)
    md.extract_id = _str(top.get("extract_id"))
    md.previous_extract_id = _str(top.get("previous_extract_id"))
    md.information_type = _str(top.get("information_type"))
    md.selection_type = _str(top.get("selection_type"))
    md.list_reference = _str(top.get("list_reference"))
    md.total_count = _int(top.get("total_count"))
    md.file_size = _int(top.get("file_size"))
    md.direct_marketing = (
        None if pd.isna(top.get("direct_marketing")) else bool(top.get("direct_marketing"))
    )
    md.exclude_personnummer = (
        None if pd.isna(top.get("exclude_personnummer")) else bool(top.get("exclude_personnummer"))
    )
    md.subsets = [s.strip() for s in row.get("subsets", []) if s]
    md.selection = [s.strip() for s in row.get("selection", []) if s]
    if row.get("produced_at"):
        try:
            md.produced_at = datetime.fromisoformat(row["produced_at"].strip())
        except ValueError as err:
            raise ParseError(
                "produced time is not an ISO date-time",
                file=label,
                field="produced_at",
                value=row["produced_at"],
            ) from err
    if row.get("extract_type"):
        key = row["extract_type"].strip().lower()
        if key not in M.EXTRACT_TYPES:
            raise ParseError("unknown extract type", file=label, field="extract_type", value=key)
        md.extract_type = M.EXTRACT_TYPES[key]
    if row.get("crs"):
        code = epsg_from_code_text(row["crs"])
        if code is None:
            raise ParseError(
                "coordinate system code not understood", file=label, field="crs", value=row["crs"]
            )
        md.crs = code
    return md


def _str(v: object) -> str | None:
    return None if v is None or pd.isna(v) else str(v)


def _int(v: Any) -> int | None:
    return None if v is None or pd.isna(v) else int(v)


# --- file discovery -------------------------------------------------------------------------------


def _classify(name: str) -> tuple[str, str] | None:
    """(set name, kind) of an XML file name, or None if it is not one."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    low = base.lower()
    if not low.endswith(".xml"):
        return None
    if low.endswith(_META_SUFFIX):
        return base[: -len(_META_SUFFIX)], "metadata"
    if low.endswith(_DEL_SUFFIX):
        return base[: -len(_DEL_SUFFIX)], "deletion"
    m = _DATA_RE.match(base)
    if not m:
        return None
    return m.group("set"), "data"


def _file_sort_key(f: DataFile) -> tuple[int, int, str]:
    m = re.search(r"_(\d+)\.xml$", f.name, re.I)
    return (0 if f.kind == "data" else 1, int(m.group(1)) if m else 0, f.name)


#: The reader of one information set, per product: ``reader(delivery, set_name, *,
#: personal_data, **options)`` → an object with ``unmapped`` and ``tables()``. The product
#: modules (:mod:`vggeo.lm.bestammelse`, :mod:`vggeo.lm.inskrivning`) register theirs when
#: imported, and :mod:`vggeo.lm` imports both: this format layer never imports a product
#: reader, so the package has no import cycle (tests/test_import_graph.py).
SET_READERS: dict[str, Callable[..., Any]] = {}


class Delivery:
    """One Lantmäteriet delivery. Build it with :func:`open_delivery`.

    Attributes
    ----------
    path
        What was opened.
    form
        ``"zip"`` (outer delivery ZIP), ``"folder"``, ``"set_zip"`` or ``"xml"``.
    product
        ``"bestammelse"`` or ``"inskrivning"``.
    sets
        Information-set names present, in a stable order.
    metadata
        ``{set name: SetMetadata}`` for the sets whose metadata file was found.
    """

    #: The owner-key secret drawn for this opened delivery by :mod:`vggeo.lm.inskrivning` when
    #: no store gave one, so that its sets read one by one still link.
    run_owner_secret: bytes | None = None

    def __init__(self, path: Path, form: str, files: list[DataFile], *, closers: list) -> None:
        self.path = path
        self.form = form
        self._files = files
        self._closers = closers
        self._finalizer = weakref.finalize(self, _cleanup, list(closers))
        self.metadata: dict[str, SetMetadata] = {}
        for f in files:
            if f.kind == "metadata":
                with f.open() as s:
                    self.metadata[f.set_name] = parse_metadata(
                        s, set_name=f.set_name, label=f.label
                    )
        names = {f.set_name for f in files if f.kind != "metadata"} | set(self.metadata)
        self.product = self._detect_product(names)
        order = M.PRODUCTS[self.product].sets
        self.sets: list[str] = sorted(
            names, key=lambda n: (order.index(n) if n in order else 99, n)
        )
        self._checksum: str | None = None
        #: Unmapped element paths (patterns, see :func:`refuse_unmapped`) the operator agreed to
        #: drop; and what :meth:`read` dropped under them (path → count), for the ledger.
        self.accept_unmapped: tuple[str, ...] = ()
        self.accepted_unmapped: dict[str, int] = {}

    # -- identity ----------------------------------------------------------------------------

    def _detect_product(self, names: set[str]) -> str:
        found = {name for n in names if (name := M.product_of_set(n)) is not None}
        if len(found) == 1:
            return found.pop()
        if len(found) > 1:
            raise DeliveryError(f"delivery mixes products {sorted(found)}", file=self.path)
        for f in self._files:
            if f.kind != "data":
                continue
            with f.open() as s:
                head = s.read(4096).decode("utf-8", "replace").lower()
            for p in M.PRODUCTS.values():
                if p.namespace_hint in head:
                    return p.product
        raise DeliveryError(
            "cannot tell the product (no known information set, no known namespace); expected "
            f"sets such as {M.BESTAMMELSE.sets + M.INSKRIVNING.sets}",
            file=self.path,
        )

    def _meta_values(self, attr: str) -> set[Any]:
        vals = {getattr(m, attr) for m in self.metadata.values()} - {None}
        return vals

    def _one(self, attr: str) -> Any:
        vals = self._meta_values(attr)
        if len(vals) > 1:
            raise IntegrityError(
                f"information sets disagree on {attr}: {sorted(map(str, vals))}", file=self.path
            )
        return next(iter(vals), None)

    @property
    def extract_id(self) -> str | None:
        """Unique id of the extract (from metadata)."""
        return self._one("extract_id")

    @property
    def previous_extract_id(self) -> str | None:
        """The extract this change follows, where the metadata says so ([inferred] element)."""
        return self._one("previous_extract_id")

    @property
    def extract_type(self) -> str | None:
        """``"base"`` or ``"change"``; from metadata, else inferred from deletion files."""
        t = self._one("extract_type")
        if t is None and self._files:
            t = "change" if any(f.kind == "deletion" for f in self._files) else None
        return t

    @property
    def information_types(self) -> list[str]:
        """Information types (Informationstyp) — from metadata, else the product's own name."""
        types = sorted({m.information_type for m in self.metadata.values() if m.information_type})
        return types or [_PRODUCT_TYPE[self.product]]

    @property
    def produced_at(self) -> datetime | None:
        vals = self._meta_values("produced_at")
        return max(vals) if vals else None

    @property
    def crs(self) -> int | None:
        """EPSG code of the geometries (3006, 3007–3018): metadata, else the first srsName seen."""
        code = self._one("crs")
        if code is None and self.product == "bestammelse":
            code = self._sniff_crs()
        return code

    def _sniff_crs(self) -> int | None:
        for f in self.data_files():
            with f.open() as s:
                head = s.read(1 << 16).decode("utf-8", "replace")
            m = re.search(r'srsName="([^"]+)"', head)
            if m:
                return epsg_from_srs_name(m.group(1))
        return None

    @property
    def checksum(self) -> str:
        """SHA-256 over the delivery's XML files (names and contents), the same for every form."""
        if self._checksum is None:
            h = hashlib.sha256()
            for f in sorted(self._files, key=lambda f: (f.set_name, f.name)):
                fh = hashlib.sha256()
                with f.open() as s:
                    for chunk in iter(functools.partial(s.read, 1 << 20), b""):
                        fh.update(chunk)
                h.update(f"{f.set_name}/{f.name}\0{fh.hexdigest()}\n".encode())
            self._checksum = h.hexdigest()
        return self._checksum

    # -- contents ----------------------------------------------------------------------------

    def files(self, set_name: str | None = None) -> list[DataFile]:
        out = [f for f in self._files if set_name is None or f.set_name == set_name]
        return sorted(out, key=lambda f: (f.set_name, *_file_sort_key(f)))

    def data_files(self, set_name: str | None = None) -> list[DataFile]:
        return [f for f in self.files(set_name) if f.kind == "data"]

    def _check_set(self, set_name: str) -> None:
        if set_name not in self.sets:
            raise DeliveryError(
                f"no information set {set_name!r} in this delivery; it holds {self.sets}",
                file=self.path,
            )

    def deletions(self, set_name: str) -> set[str]:
        """Identities to delete for one information set (from its ``*_borttag.xml`` files)."""
        self._check_set(set_name)
        ids: set[str] = set()
        for f in self.files(set_name):
            if f.kind == "deletion":
                ids |= set(read_deletion_ids(f))
        return ids

    def read(
        self, set_name: str, *, personal_data: bool = False, **options: Any
    ) -> dict[str, pd.DataFrame]:
        """The tables of one information set (contracts.md: Provisions / Inskrivning).

        This is what a store applies, so nothing may be lost on the way: element paths the
        mapping did not use, in the data files or the set's metadata, are refused (:func:`refuse_unmapped`) unless named in
        :attr:`accept_unmapped`; those accepted are kept in :attr:`accepted_unmapped`.
        """
        self._check_set(set_name)
        reader = SET_READERS.get(str(self.product))
        if reader is None:
            raise InputError(
                f"no reader for product {self.product!r}; known: {', '.join(SET_READERS)}",
                file=self.path,
            )
        data = reader(self, set_name, personal_data=personal_data, **options)
        unmapped = Counter(data.unmapped)
        md = self.metadata.get(set_name)
        if md is not None:
            # What the metadata holds beyond the mapping: its counts and identities decide what
            # is applied and what the ledger records, so they are refused like data.
            unmapped.update(md.unmapped)
        accepted = refuse_unmapped(
            unmapped, self.accept_unmapped, set_name=set_name, file=self.path
        )
        for k, v in accepted.items():
            self.accepted_unmapped[k] = self.accepted_unmapped.get(k, 0) + v
        tables = data.tables()
        if getattr(data, "subsets", None) is not None and "subsets" not in tables:
            # inskrivning: the objects present, for the store's "delete, then add"
            tables["subsets"] = data.subsets
        return tables

    def count_objects(self, f: DataFile) -> int:
        """Objects in one data or deletion file (members of its root; identities for deletions)."""
        if f.kind == "deletion":
            return len(read_deletion_ids(f))
        n = 0
        for _ in iter_members(f):
            n += 1
        return n

    # -- integrity ---------------------------------------------------------------------------

    def listed_count(self, f: DataFile) -> int | None:
        """The object count the metadata gives for one file (None: no metadata, or not given)."""
        md = self.metadata.get(f.set_name)
        if md is None or md.files.empty:
            return None
        hit = md.files[md.files["file_name"].astype("string") == f.name]
        if not len(hit) or pd.isna(hit["count"].iloc[0]):
            return None
        return int(hit["count"].iloc[0])

    def check_recognised(
        self, f: DataFile, n: int, unknown: Mapping[str, int] | None = None
    ) -> None:
        """Refuse a data file from which fewer (or more) objects were recognised than it carries.

        The metadata's count for the file is the reference; without metadata, a file whose root
        holds any element must yield at least one object. ``unknown`` (element path → count)
        names what was not understood (:attr:`~vggeo.lm._records.Extractor.unknown_records`).

        Raises
        ------
        IntegrityError
            Naming the file, the counts, and the most frequent element path not understood.
        """
        want = self.listed_count(f)
        if want == n or (want is None and (n > 0 or peek_member_tag(f) is None)):
            return
        where = ""
        if unknown:
            path, k = max(unknown.items(), key=lambda kv: (kv[1], kv[0]))
            where = f"; element {path} not understood ({k}×)"
        said = f"the metadata says {want}" if want is not None else "the file is not empty"
        raise IntegrityError(
            f"{n} objects recognised in {f.name}, {said}{where}; see "
            f"`vggeo inspect {self.path}` for every element",
            file=f.label,
        )

    def check_total(self, set_name: str, n: int) -> None:
        """Refuse a set whose recognised objects differ from the metadata's total."""
        md = self.metadata.get(set_name)
        if md is not None and md.total_count is not None and md.total_count != n:
            raise IntegrityError(
                f"set {set_name!r}: {n} objects recognised in the data files, "
                f"the metadata says {md.total_count} in total",
                file=md.label,
            )

    def verify(self) -> dict[str, dict[str, int]]:
        """Check the delivery against its metadata; return ``{set: {file: count}}``.

        Checks, per set: a metadata file exists; every listed file is present and nothing
        unlisted is; each file's object count (and size, where listed) matches; the total count
        matches; base extracts carry no deletion file and change extracts at least one; all sets
        share one extract id, extract type and coordinate system.

        Raises
        ------
        IntegrityError
            Naming the set, the file and the discrepancy.
        """
        counts: dict[str, dict[str, int]] = {}
        for attr in ("extract_id", "extract_type", "crs", "previous_extract_id"):
            self._one(attr)
        for s in self.sets:
            md = self.metadata.get(s)
            if md is None:
                raise IntegrityError(
                    f"set {s!r} has no metadata file ({s}{_META_SUFFIX}); the "
                    "delivery cannot be verified",
                    file=self.path,
                )
            present = {f.name: f for f in self.files(s) if f.kind != "metadata"}
            listed = {str(r.file_name): r for r in md.files.itertuples()}
            missing = sorted(set(listed) - set(present))
            if missing:
                raise IntegrityError(
                    f"set {s!r}: files listed in the metadata are missing: {missing}", file=md.label
                )
            extra = sorted(set(present) - set(listed))
            if extra:
                raise IntegrityError(
                    f"set {s!r}: files not listed in the metadata: {extra}", file=md.label
                )
            has_del = any(f.kind == "deletion" for f in present.values())
            if md.extract_type == "change" and not has_del and s not in M.SETS_WITHOUT_DELETIONS:
                raise IntegrityError(
                    f"set {s!r}: a change extract without a deletion file ({s}{_DEL_SUFFIX})",
                    file=md.label,
                )
            if md.extract_type == "base" and has_del:
                raise IntegrityError(
                    f"set {s!r}: a base extract with a deletion file", file=md.label
                )
            counts[s] = {}
            total = 0
            for name, r in listed.items():
                f = present[name]
                if pd.notna(r.file_size) and f.size is not None and int(r.file_size) != f.size:
                    raise IntegrityError(
                        f"set {s!r}: file {name} has {f.size} bytes, the metadata says "
                        f"{int(r.file_size)}",
                        file=f.label,
                    )
                n = self.count_objects(f)
                if pd.notna(r.count) and int(r.count) != n:
                    raise IntegrityError(
                        f"set {s!r}: file {name} holds {n} objects, the metadata says "
                        f"{int(r.count)}",
                        file=f.label,
                    )
                counts[s][name] = n
                if f.kind == "data":
                    total += n
            if md.total_count is not None and md.total_count != total:
                raise IntegrityError(
                    f"set {s!r}: {total} objects in the data files, the metadata "
                    f"says {md.total_count} in total",
                    file=md.label,
                )
        return counts

    # -- lifetime ----------------------------------------------------------------------------

    def close(self) -> None:
        self._finalizer()

    def __enter__(self) -> Delivery:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"<Delivery {self.product} {self.extract_type or '?'} {self.extract_id or '?'} "
            f"sets={self.sets} form={self.form}>"
        )


def _cleanup(closers: list) -> None:
    for c in reversed(closers):
        try:
            c.close()
        except Exception:  # noqa: BLE001 - best effort on shutdown
            pass


def unmapped_lines(unmapped: Mapping[str, int]) -> list[str]:
    """One line per unmapped element path: ``path  (count×)``, most frequent first."""
    return [f"{k}  ({v}×)" for k, v in sorted(unmapped.items(), key=lambda kv: (-kv[1], kv[0]))]


def refuse_unmapped(
    unmapped: Mapping[str, int],
    accept: tuple[str, ...] | list[str] = (),
    *,
    set_name: str | None = None,
    file: str | os.PathLike | None = None,
) -> dict[str, int]:
    """Refuse data about to be dropped: every unmapped element path must be accepted by name.

    An element the mapping does not use — a leaf inside a record's blocks, or an element
    outside any record — holds data the tables would not keep. Each such path must match one
    of ``accept`` (case-insensitive; shell-style ``*`` wildcards allowed; a ``set: `` prefix as
    ``vggeo inspect`` shows it may be left out).

    Returns
    -------
    dict
        The accepted paths and their counts (for the ledger).

    Raises
    ------
    UnmappedError
        Naming how many paths were not accepted; ``.paths`` holds them with their counts.
    """
    pats = [a.strip().lower() for a in accept if a.strip()]
    pats = [
        p.split(": ", 1)[1] if set_name and p.startswith(f"{set_name.lower()}: ") else p
        for p in pats
    ]
    accepted: dict[str, int] = {}
    refused: dict[str, int] = {}
    for path, n in unmapped.items():
        low = path.lower()
        if any(low == p or fnmatch.fnmatchcase(low, p) for p in pats):
            accepted[path] = n
        else:
            refused[path] = n
    if refused:
        raise UnmappedError(
            f"{len(refused)} element paths ({sum(refused.values())} elements) hold data the "
            f"mapping does not use{f' in set {set_name!r}' if set_name else ''}; refused rather "
            "than dropped. Name each path to drop with --accept-unmapped PATH (or correct "
            "vggeo/lm/mapping.py); see `vggeo inspect`",
            refused,
            file=file,
        )
    return accepted


class UnmappedError(IntegrityError):
    """Element paths the mapping does not use, not accepted by the operator (data would be lost)."""

    def __init__(
        self, message: str, paths: Mapping[str, int] | None = None, **context: Any
    ) -> None:
        self.paths = dict(paths or {})
        super().__init__(message, **context)

    def where(self, **context: Any) -> Self:
        err = super().where(**context)
        err.paths = self.paths
        return err


def read_deletion_ids(f: DataFile) -> list[str]:
    """Identities listed in a deletion file, lower-cased, one per object in document order.

    An object gives its identity as an ``objektidentitet`` leaf or as an attribute of that
    name (the schema is not public; both spellings occur in GML). Each member — a child of the
    root, or an element named ``…Member`` at any grouping level — must give one: a member
    without any is refused, since the object it was meant to delete would be kept.

    Raises
    ------
    IntegrityError
        Naming the file, line and element of a member that gives no identity.
    """
    ids: list[str] = []
    # One frame per open element: [its own and its leaves' identities, whether any lies below].
    stack: list[tuple[list[str], list[bool]]] = []
    with f.open() as s:
        for event, el in safe_iterparse(s, events=("start", "end"), name=f.label):
            if event == "start":
                stack.append(([], [False]))
                continue
            own, below = stack.pop()
            name = local(el).lower()
            for key, value in data_attributes(el):
                said = value.strip().lower()
                # the attribute and a leaf may both give one object's identity
                if key.lower() in M.DELETION_ID_NAMES and said and said not in own:
                    own.append(said)
            if not stack:  # the root
                ids.extend(own)
                break
            parent_own, parent_below = stack[-1]
            if name in M.DELETION_ID_NAMES and len(el) == 0:
                if el.text and el.text.strip():
                    parent_own.append(el.text.strip().lower())
                    parent_below[0] = True
                continue
            ids.extend(own)
            if own or below[0]:
                parent_below[0] = True
            elif name.endswith("member") or (
                len(stack) == 1 and (len(el) or el.attrib or (el.text or "").strip())
            ):
                raise IntegrityError(
                    f"deletion member <{local(el)}> gives no {M.DELETION_ID_NAMES[0]}; the "
                    "object it lists would be kept",
                    file=f.label,
                    row=getattr(el, "sourceline", None),
                    field=local(el),
                )
            el.clear()
    return ids


# --- opening --------------------------------------------------------------------------------------


def _zip_opener(
    zf: zipfile.ZipFile, info: zipfile.ZipInfo, label: str, limits: ZipLimits
) -> Callable[[], IO[bytes]]:
    return lambda: open_member(zf, info, archive=label, limits=limits)


def _file_opener(path: Path) -> Callable[[], IO[bytes]]:
    return lambda: open(path, "rb")  # noqa: SIM115 - the caller closes it


def _open_zip(source: Path | IO[bytes], label: str, closers: list) -> zipfile.ZipFile:
    """Open a ZIP archive (a path or a seekable stream); its file handle joins ``closers``."""
    try:
        zf = zipfile.ZipFile(source)
    except UnicodeDecodeError as err:
        raise DeliveryError(
            "not a readable ZIP archive: a member name marked as UTF-8 is not "
            f"(byte {err.object[err.start : err.start + 1]!r})",
            file=label,
        ) from None
    except ZIP_READ_ERRORS as err:
        raise DeliveryError(f"not a readable ZIP archive: {printable(err)}", file=label) from None
    closers.append(zf)
    return zf


def _scan_set_zip(zf: zipfile.ZipFile, label: str, depth: int, limits: ZipLimits) -> list[DataFile]:
    out = []
    for info in check_zip(zf, archive=label, depth=depth, limits=limits):
        cls = _classify(info.filename)
        if cls is None:
            continue
        set_name, kind = cls
        out.append(
            DataFile(
                info.filename.rsplit("/", 1)[-1],
                set_name,
                kind,
                info.file_size,
                _zip_opener(zf, info, label, limits),
                f"{label}!{info.filename}",
            )
        )
    return out


def _holds_zips(path: Path) -> bool:
    """Whether a ZIP's members include ZIPs (an outer delivery rather than a set ZIP)."""
    try:
        with zipfile.ZipFile(path) as z:
            return any(n.lower().endswith(".zip") for n in z.namelist())
    except ZIP_READ_ERRORS:
        return False  # read as a set ZIP, which then names what is wrong with it


def _open_inner_zip(
    outer: Path,
    zf: zipfile.ZipFile,
    info: zipfile.ZipInfo,
    label: str,
    closers: list,
    limits: ZipLimits,
) -> zipfile.ZipFile:
    """A set ZIP inside the outer ZIP, opened without a named file on disk.

    Stored (Lantmäteriet's outer ZIPs store the set ZIPs, already compressed): read in place
    through a :class:`~vggeo.lm.safety.FileWindow`, once its CRC-32 has been checked by reading it
    through. Compressed: inflated into an anonymous temporary file (no name, gone when the
    process ends — also by SIGKILL). Either way nothing is left behind.
    """
    where = f"{outer}!{printable(info.filename)}"
    if info.compress_type == zipfile.ZIP_STORED:
        with open_member(zf, info, archive=str(outer), limits=limits) as stream:
            while stream.read(1 << 20):  # the CRC-32 is checked as the member ends
                pass
        source: IO[bytes] = io.BufferedReader(
            FileWindow(outer, member_data_offset(zf, info), info.compress_size, name=where), 1 << 16
        )
    else:
        source = tempfile.TemporaryFile(prefix="vggeo-set-", suffix=".zip")
        with open_member(zf, info, archive=str(outer), limits=limits) as stream:
            shutil.copyfileobj(stream, source, 1 << 20)
        source.seek(0)
    closers.append(source)
    return _open_zip(source, label, closers)


#: Folders older versions of vggeo unpacked set ZIPs into (``tempfile.mkdtemp``), which a killed
#: process left behind for good. Nothing makes them any more; :func:`sweep_legacy_temp` removes
#: those found, once they are old enough that no running older version can still be using them.
LEGACY_TEMP_PREFIX = "vggeo-delivery-"
LEGACY_TEMP_AGE_SECONDS = 6 * 3600


def sweep_legacy_temp(
    root: str | os.PathLike | None = None, *, older_than: float = LEGACY_TEMP_AGE_SECONDS
) -> list[Path]:
    """Remove the ``vggeo-delivery-*`` folders of older versions from the temporary folder.

    Only folders (not symbolic links) of this user, untouched for ``older_than`` seconds, are
    removed; anything that cannot be removed is left. Returns what was removed.
    """
    base = Path(root if root is not None else tempfile.gettempdir())
    removed: list[Path] = []
    try:
        found = list(base.glob(LEGACY_TEMP_PREFIX + "*"))
    except OSError:
        return removed
    now = time.time()
    uid = os.getuid() if hasattr(os, "getuid") else None
    for d in found:
        try:
            st = d.lstat()
            if not os.path.isdir(d) or d.is_symlink() or now - st.st_mtime < older_than:
                continue
            if uid is not None and st.st_uid != uid:
                continue
            shutil.rmtree(d)  # never follows a symbolic link inside (fd-based on Linux)
        except OSError:
            continue
        removed.append(d)
    return removed


_swept = False


def _sweep_once() -> None:
    global _swept
    if not _swept:
        _swept = True
        sweep_legacy_temp()


def _set_name_of_zip(name: str) -> str:
    return name.replace("\\", "/").rsplit("/", 1)[-1][:-4]


def open_delivery(path: str | os.PathLike, *, limits: ZipLimits = DEFAULT_LIMITS) -> Delivery:
    """Open a delivery in any form (outer ZIP, folder, set ZIP, one XML file).

    Raises
    ------
    DeliveryError
        When the path holds no recognisable delivery.
    UnsafeInputError
        For hostile archives (see :mod:`vggeo.lm.safety`).
    """
    p = Path(path)
    note_input(p)
    _sweep_once()
    if not p.exists():
        raise FileNotFoundError(2, "No such file or directory", str(p))
    closers: list = []
    files: list[DataFile] = []
    try:
        if p.is_dir():
            form = "folder"
            outer = [fp for fp in sorted(p.rglob("*.zip")) if fp.is_file() and _holds_zips(fp)]
            if outer:
                # Outer delivery ZIPs in a folder: one is that delivery; several are a queue of
                # deliveries, to be applied one at a time in name order.
                if len(outer) > 1:
                    raise DeliveryError(
                        f"the folder holds {len(outer)} delivery ZIPs "
                        f"({', '.join(o.name for o in outer[:3])}{' …' if len(outer) > 3 else ''}); "
                        "open or apply them one at a time, in name order",
                        file=p,
                    )
                return open_delivery(outer[0], limits=limits)
            for fp in sorted(p.rglob("*")):
                if fp.is_symlink():
                    continue
                if fp.is_file() and fp.suffix.lower() == ".zip":
                    zf = _open_zip(fp, str(fp), closers)
                    files += _scan_set_zip(zf, str(fp), 2, limits)
                elif fp.is_file() and (found := _classify(fp.name)) is not None:
                    set_name, kind = found
                    files.append(
                        DataFile(
                            fp.name, set_name, kind, fp.stat().st_size, _file_opener(fp), str(fp)
                        )
                    )
        elif p.suffix.lower() == ".zip":
            zf = _open_zip(p, str(p), closers)
            infos = check_zip(zf, archive=str(p), depth=1, limits=limits)
            inner = [i for i in infos if i.filename.lower().endswith(".zip")]
            xmls = [i for i in infos if _classify(i.filename)]
            if inner:
                form = "zip"
                for info in inner:
                    label = f"{p}!{info.filename}"
                    izf = _open_inner_zip(p, zf, info, label, closers, limits)
                    files += _scan_set_zip(izf, label, 2, limits)
                for info in xmls:
                    classified = _classify(info.filename)
                    if classified is None:  # xmls holds only classified names
                        continue
                    set_name, kind = classified
                    files.append(
                        DataFile(
                            info.filename.rsplit("/", 1)[-1],
                            set_name,
                            kind,
                            info.file_size,
                            _zip_opener(zf, info, str(p), limits),
                            f"{p}!{info.filename}",
                        )
                    )
            else:
                form = "set_zip"
                files += _scan_set_zip(zf, str(p), 1, limits)
                meta = p.with_name(_set_name_of_zip(p.name) + _META_SUFFIX)
                if meta.is_file() and not any(f.kind == "metadata" for f in files):
                    files.append(
                        DataFile(
                            meta.name,
                            _set_name_of_zip(p.name),
                            "metadata",
                            meta.stat().st_size,
                            _file_opener(meta),
                            str(meta),
                        )
                    )
        elif p.suffix.lower() == ".xml":
            form = "xml"
            cls = _classify(p.name)
            set_name, kind = cls if cls else (p.stem, "data")
            files.append(
                DataFile(p.name, set_name, kind, p.stat().st_size, _file_opener(p), str(p))
            )
        else:
            raise DeliveryError("not a delivery: expected a .zip, a folder or an .xml file", file=p)
        files = _dedupe(files, p)
        if not any(f.kind in ("data", "deletion") for f in files) and not any(
            f.kind == "metadata" for f in files
        ):
            raise DeliveryError(
                "no Lantmäteriet XML files found (expected <set>_1.xml, "
                "<set>_borttag.xml, <set>_metadata.xml …)",
                file=p,
            )
        return Delivery(p, form, files, closers=closers)
    except BaseException:
        _cleanup(closers)
        raise


def peek_member_tag(f: DataFile) -> str | None:
    """The tag of the root's first child (None for an empty root); refuses a DTD on the way."""
    depth = 0
    with f.open() as s:
        for _ev, el in safe_iterparse(s, events=("start",), name=f.label):
            depth += 1
            if depth == 2:
                return el.tag
    return None


def root_attributes(f: DataFile) -> Counter[str]:
    """The data attributes of a file's root element as unmapped paths (``Root/@name``).

    No reader maps the root's attributes (it only wraps the members), so a value written there —
    a count, an identity — is data the tables would not keep: reported like any unmapped
    element (:func:`refuse_unmapped`). Namespace declarations and markup are not data
    (:func:`~vggeo.lm._records.data_attributes`); nor is a blank value.
    """
    with f.open() as s:
        for _ev, root in safe_iterparse(s, events=("start",), name=f.label):
            name = local(root)
            return Counter(f"{name}/@{k}" for k, v in data_attributes(root) if v.strip())
    return Counter()  # pragma: no cover - safe_iterparse raises on an empty document


def _dedupe(files: list[DataFile], path: Path) -> list[DataFile]:
    """One file per (set, name): a folder may hold a set ZIP *and* its unpacked XML files.

    The copies must be the same bytes: which one another tool would read is anyone's guess (as
    with a ZIP member named twice), so two copies that differ are refused, whatever their sizes.
    """
    seen: dict[tuple[str, str], DataFile] = {}
    for f in files:
        key = (f.set_name, f.name)
        other = seen.get(key)
        if other is None:
            seen[key] = f
        elif other.size != f.size or _digest(other) != _digest(f):
            raise DeliveryError(
                f"two different copies of {f.name}: {other.label} and {f.label}", file=path
            )
    return list(seen.values())


def _digest(f: DataFile) -> bytes:
    """SHA-256 of a data file's bytes, read through (only for a file present twice)."""
    h = hashlib.sha256()
    with f.open() as s:
        while chunk := s.read(1 << 20):
            h.update(chunk)
    return h.digest()


def iter_members(f: DataFile) -> Iterator:
    """Stream the members (children of the root) of a data file, clearing each after use.

    The first child's tag is read first; the file is then parsed with lxml's tag filter on that
    tag, so no Python object is made for any other element (the main cost of a naive iterparse).
    A child with another tag is still yielded (once the next member or the end shows it is
    complete), so nothing is skipped. Memory stays bounded: each member is cleared and detached
    from the root after use.
    """
    tag = peek_member_tag(f)
    if tag is None:
        return
    with f.open() as s:
        it = etree.iterparse(s, events=("end",), tag=tag, **XML_PARSER_OPTIONS)
        try:
            for _, el in it:
                parent = el.getparent()
                prev = el.getprevious()
                while prev is not None:  # a foreign sibling between members
                    before = prev.getprevious()
                    yield prev
                    parent.remove(prev)
                    prev = before
                yield el
                el.clear()
                parent.remove(el)
            root = it.root
            if root is not None:
                for rest in list(root):
                    yield rest
                    root.remove(rest)
        except etree.XMLSyntaxError as err:
            raise ParseError(f"malformed XML: {err.msg}", file=f.label, row=err.lineno) from err
