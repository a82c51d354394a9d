"""Markreglerande bestämmelser: provisions, affected properties (berörkrets), decisions.

:func:`read_bestammelser` streams the numbered data files of a delivery (or one XML file, or the
GeoPackage vector product) into the tables of ``docs/contracts.md`` (Provisions): geometry as
MultiPolygon in EPSG:3006 with x = easting, whatever zone (3006, 3007–3018) and srsName form the
delivery used.
"""

from __future__ import annotations

import dataclasses
import gc
import io
import os
import re
import unicodedata
from collections import Counter
from collections.abc import Generator, Iterator, Mapping
from concurrent.futures.process import BrokenProcessPool
from functools import partial
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Self, TypedDict, TypeGuard, Unpack, cast

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import shapely
from shapely import GeometryType
from tqdm import tqdm

from vggeo.crs import transform_geoseries
from vggeo.errors import InputError, IntegrityError, VggeoError
from vggeo.lm import _compiled, _parallel
from vggeo.lm import mapping as M
from vggeo.lm._records import (
    GEOMETRY_KEY,
    SUBSETS_KEY,
    ColumnRows,
    Extractor,
    PathCounts,
    as_dicts,
)
from vggeo.lm.gml import (
    DEFAULT_ARC_TOLERANCE,
    ArcBudget,
    check_arc_tolerance,
)
from vggeo.lm.package import (
    SET_READERS,
    DataFile,
    Delivery,
    iter_members,
    open_delivery,
    peek_member_tag,
    root_attributes,
)
from vggeo.lm.provisions import (
    PROVISION_COLUMNS,
    PROVISION_TYPES,
    BestammelseData,
    GeometryCollector,
    assemble,
    build_geometries,
)
from vggeo.lm.safety import GeometryLimits, geometry_limits

if TYPE_CHECKING:
    from lxml import etree

__all__ = [
    "BestammelseData",
    "BestammelseParts",
    "iter_bestammelser",
    "read_bestammelser",
    "PROVISION_COLUMNS",
]

BATCH_SIZE = 4000

#: What reading one data file yields as parts and returns: elements the mapping did not use
#: (by path) and the geometry errors kept, ``(provision_id, message)``.
FileEnd = tuple[Counter[str], list[tuple[str, str]]]
#: One data file read whole: its parts, then :data:`FileEnd`.
FileResult = tuple[list[BestammelseData], Counter[str], list[tuple[str, str]]]
#: Source of a read: an opened delivery, a path :func:`open_delivery` accepts, or a GeoPackage.
Source = Delivery | str | os.PathLike[str]


class ReadOptions(TypedDict):
    """The options of :func:`iter_bestammelser`, as :class:`BestammelseParts` keeps them."""

    set_name: str | None
    arc_tolerance: float
    on_geometry_error: str
    progress: bool
    workers: int | None
    limits: GeometryLimits
    check_counts: bool


class ReaderOptions(TypedDict):
    """How the data files of a set are read (:class:`_FileReader`)."""

    default_srs: str | None
    default_epsg: int | None
    arc_tolerance: float
    on_geometry_error: str
    limits: GeometryLimits | None


class _FileReader:
    """Reads the members of one data file into typed frames, batch by batch (bounded memory).

    Members go in one at a time (:meth:`feed`, the declarative :class:`Extractor`) or a chunk at
    a time (:mod:`vggeo.lm._compiled`, which hands back to :meth:`feed` every member it cannot
    read exactly); :meth:`flush` turns what was collected into frames.
    """

    def __init__(
        self,
        label: str,
        *,
        default_srs: str | None,
        default_epsg: int | None,
        arc_tolerance: float,
        on_geometry_error: str,
        limits: GeometryLimits | None = None,
        file_bytes: int | None = None,
    ) -> None:
        self.label = label
        self.default_epsg = default_epsg
        self.on_geometry_error = on_geometry_error
        self.collector = GeometryCollector(
            default_srs=default_srs,
            arc_tolerance=arc_tolerance,
            on_error=on_geometry_error,
            file=label,
            budget=ArcBudget(limits, file_bytes=file_bytes or 0),
        )
        self.ex = Extractor(M.BESTAMMELSE.records[M.BESTAMMELSE_SET], geometry=self.collector)
        self.parts: list[BestammelseData] = []

    def feed(self, member: etree._Element) -> None:
        self.ex.feed_member(member)

    def flush(self) -> None:
        self.collector.resolve()
        rows = self.ex.take_rows()
        for row in as_dicts(rows["provisions"], "provisions"):
            slot = row.get(GEOMETRY_KEY)
            if slot is not None:
                row[GEOMETRY_KEY] = slot.area()
        self.collector.pending = []
        if rows["provisions"]:
            self.parts.append(
                _frames(rows, Counter(), [], default_epsg=self.default_epsg, files=[self.label])
            )

    def result(self) -> FileResult:
        return self.parts, self.ex.unmapped, self.collector.errors


def _read_file(
    f: DataFile,
    *,
    batch_size: int | None = None,
    compiled: bool | None = None,
    **options: Unpack[ReaderOptions],
) -> FileResult:
    """Parse one data file into typed frames: ``(parts, unmapped, errors)``."""
    return _collect(_iter_file(f, batch_size=batch_size, compiled=compiled, **options))


def _collect(gen: Generator[BestammelseData, None, FileEnd]) -> FileResult:
    """The parts a file generator yields, and what it returns: ``(parts, unmapped, errors)``."""
    parts: list[BestammelseData] = []
    while True:
        try:
            parts.append(next(gen))
        except StopIteration as stop:
            return (parts, *stop.value)


class _GcPaused:
    """The cyclic garbage collector paused while a file is parsed (not while the caller works).

    The parse allocates millions of short-lived objects and no reference cycles; the collector
    would only rescan them.
    """

    def __enter__(self) -> Self:
        self.was = gc.isenabled()
        gc.disable()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.was:
            gc.enable()


def _iter_file(
    f: DataFile,
    *,
    batch_size: int | None = None,
    compiled: bool | None = None,
    **options: Unpack[ReaderOptions],
) -> Generator[BestammelseData, None, FileEnd]:
    """Parse one data file, yielding typed parts of a few thousand provisions in file order;
    returns ``(unmapped, errors)``. Memory is bounded by the parts, not the file.

    Large files take the compiled path (:mod:`vggeo.lm._compiled`): same result, C-speed
    extraction. It gives up on anything it cannot vouch for, and the file is then read here,
    member by member, which also names the exact line of any error; the members whose parts the
    compiled path already yielded are read again (same budget, same errors) but not yielded.
    """
    if compiled is None:
        compiled = (f.size or 0) >= _compiled.MIN_FILE_BYTES
    skip = 0
    if compiled:
        gen = _compiled.iter_file(
            f,
            lambda: _FileReader(f.label, file_bytes=f.size, **options),
            default_epsg=options["default_epsg"],
        )
        while True:
            with _GcPaused():
                try:
                    part = next(gen)
                except StopIteration as stop:
                    unmapped, errors, skip = stop.value
                    break
            yield part
        if unmapped is not None:
            return unmapped, errors
    reader = _FileReader(f.label, file_bytes=f.size, **options)
    batch_size = batch_size or BATCH_SIZE
    n = 0
    members = iter_members(f)
    while True:
        with _GcPaused():
            member = next(members, None)
            while member is not None:
                reader.feed(member)
                n += 1
                if n <= skip:
                    if n == skip or n % batch_size == 0:
                        reader.flush()
                        reader.parts.clear()  # yielded already by the compiled path
                elif n % batch_size == 0:
                    reader.flush()
                    break
                member = next(members, None)
            if member is None:
                reader.flush()
        yield from reader.parts
        reader.parts.clear()
        if member is None:
            return reader.ex.unmapped, reader.collector.errors


def _read_chunk(
    chunk: bytes, offset: int, *, label: str, **options: Unpack[ReaderOptions]
) -> FileResult:
    """Worker: read one wrapped chunk of a file (see :mod:`vggeo.lm._parallel`)."""
    f = DataFile(label, M.BESTAMMELSE_SET, "data", len(chunk), lambda: io.BytesIO(chunk), label)
    parts, unmapped, errors = _read_file(f, **options)
    # Line numbers in kept-error messages refer to the chunk; make them the file's.
    rx = re.compile(re.escape(label) + r":(\d+)")
    errors = [
        (i, rx.sub(lambda m: f"{label}:{int(m.group(1)) + offset}", msg)) for i, msg in errors
    ]
    return parts, unmapped, errors


def _read_file_parallel(
    f: DataFile, *, workers: int, **options: Unpack[ReaderOptions]
) -> FileResult | None:
    """Read one large file on several cores; None when it must be read sequentially instead."""
    peek_member_tag(f)  # the DTD check and well-formed head, on the whole file, first
    try:
        with f.open() as stream:
            results = _parallel.map_chunks(
                stream, partial(_read_chunk, label=f.label, **options), workers=workers
            )
    except (_parallel.ChunkingUnsupported, VggeoError, BrokenProcessPool):
        # The sequential reader names the exact line of any error, and reads what cannot be split.
        return None
    parts: list[BestammelseData] = []
    unmapped = PathCounts()
    errors: list[tuple[str, str]] = []
    for p, u, e in results:
        parts.extend(p)
        unmapped.update(u)
        unmapped.unknown.update(getattr(u, "unknown", ()))
        errors.extend(e)
    return parts, unmapped, errors


#: Columns every provision carrying its Basinformation has (Lantmäteriet's example shows them on
#: every provision; FORMATS.md §5, §7). Entirely null over a set, they were spelt otherwise.
REQUIRED_WITH_BASINFORMATION = ("designation", "status", "municipality", "object_version")


def refuse_empty_columns(data: BestammelseData, path: str | os.PathLike[str] | None = None) -> None:
    """Raise IntegrityError when a column that comes with the Basinformation is null for every
    provision that carried it: its element was there under a spelling the mapping did not catch
    (or missing from the whole delivery) — an error, not a warning: nothing is read with values
    silently lost.
    """
    columns = _BasinformationColumns()
    columns.update(data)
    columns.check(path, data.files)


def refuse_repeated_identities(parts: list[BestammelseData]) -> None:
    """Raise IntegrityError when a provision identity occurs more than once in the parts.

    An extract lists each object once (seed 004: a change file holds an object's changed
    subsets, once); two members with one identity would leave the store to pick one of them.
    The error names the identity and every file it occurs in.
    """
    sizes = [len(p.provisions) for p in parts]
    if sum(sizes) < 2:
        return
    ids = pd.concat([p.provisions["provision_id"] for p in parts], ignore_index=True)
    repeated = ids.duplicated(keep=False).to_numpy()
    if not repeated.any():
        return
    labels = np.repeat(
        np.array([p.files[0] if p.files else "?" for p in parts], dtype=object), sizes
    )
    first = ids[repeated].iloc[0]
    at = (ids == first).to_numpy()
    where = list(dict.fromkeys(labels[at]))
    others = ids[repeated].nunique() - 1
    raise IntegrityError(
        f"provision {first} occurs {int(at.sum())} times"
        + (f" (also in {', '.join(where[1:])})" if len(where) > 1 else "")
        + (f", and {others} more identities occur more than once" if others else "")
        + "; an extract lists each object once",
        file=where[0],
        field="objektidentitet",
    )


def _concat(
    parts: list[BestammelseData],
    unmapped: Counter[str],
    errors: list[tuple[str, str]],
    files: list[str],
) -> BestammelseData:
    """One BestammelseData of the parts, which are emptied on the way (``parts`` is cleared).

    Column by column, each part's column dropped once copied: the peak is the output plus one
    column of the parts, not the output twice.
    """
    kept = [p for p in parts if len(p.provisions)] or parts[:1]
    parts.clear()
    if len(kept) == 1:
        d = kept[0]
        return BestammelseData(
            d.provisions, d.affected, d.decisions, d.subsets, unmapped, errors, files
        )

    def cat(name: str) -> pd.DataFrame:
        frames = [getattr(p, name) for p in kept]
        for p in kept:
            setattr(p, name, None)
        columns = list(frames[0].columns)
        # The parts' columns as Series (views, no copies), the frames released: popping a Series
        # releases its column as deleting it from its frame did, without the frame's block
        # bookkeeping (`del frame[c]` on a GeoDataFrame took ≈ 3 ms a column).
        series = [dict(f.items()) for f in frames]
        del frames
        out = {}
        for c in columns:
            pieces = [s.pop(c) for s in series]
            out[c] = pd.concat(pieces, ignore_index=True)
            del pieces
        return pd.DataFrame(out)

    prov = cat("provisions")
    prov = gpd.GeoDataFrame(prov, geometry="geometry", crs="EPSG:3006")
    prov["provision_type"] = pd.Categorical(
        prov["provision_type"], categories=list(PROVISION_TYPES)
    )
    return BestammelseData(
        prov, cat("affected"), cat("decisions"), cat("subsets"), unmapped, errors, files
    )


def read_bestammelser(
    source: Source,
    *,
    set_name: str | None = None,
    arc_tolerance: float = DEFAULT_ARC_TOLERANCE,
    on_geometry_error: str = "raise",
    progress: bool = False,
    workers: int | None = 1,
    limits: GeometryLimits | None = None,
    check_counts: bool = True,
) -> BestammelseData:
    """Read markreglerande bestämmelser into provisions, affected properties and decisions.

    Parameters
    ----------
    source
        A :class:`~vggeo.lm.package.Delivery`, anything :func:`~vggeo.lm.open_delivery` accepts
        (outer ZIP, folder, set ZIP, one XML file), or a GeoPackage of the vector product.
    set_name
        The information set (default: ``markreglerandebestammelse``).
    arc_tolerance
        Maximum deviation of linearised arcs, in metres (default 2 mm).
    on_geometry_error
        ``"raise"`` (default): malformed geometry raises :class:`~vggeo.errors.GeometryError`
        naming the provision and the element. ``"keep"``: keep the provision with an empty
        geometry and list it in ``geometry_errors``.
    progress
        Show a progress bar (stderr) of the bytes read over all data files.
    workers
        Processes reading one large file (split at member boundaries): 1 (default) reads in this
        process; ``None`` uses the cores available (at most 4). Files under 12 MB are always read
        in-process. In this process, a file of 8 MB or more takes the compiled path
        (:mod:`vggeo.lm._compiled`: an XSLT stylesheet generated from the mapping, a worker
        thread, pyarrow), which reads exactly what the member-by-member reader reads, 1.9–2.4
        times as fast as GDAL's GML driver on two cores; see ``benchmarks/lm.md``. Several
        processes pay off only on more, idle cores, and cost memory (each holds its chunk's tree
        and results).
    limits
        Caps on the vertices arcs may be linearised into (default: :func:`~vggeo.lm.safety.
        geometry_limits`, from the environment). A feature beyond the per-arc or per-feature cap
        is a geometry error (kept empty with ``on_geometry_error="keep"``); a file beyond its
        per-file cap is refused whole. With several ``workers`` the per-file cap applies to each
        process's part of the file.
    check_counts
        Refuse (IntegrityError) a data file from which another number of provisions was
        recognised than its metadata lists — or, without metadata, none from a non-empty file —
        and a set whose total differs (default). ``vggeo inspect`` reads with False to show
        what it found.

    Returns
    -------
    BestammelseData

    Raises
    ------
    GeometryError
        Malformed geometry (``on_geometry_error="raise"``), naming the provision and the element.
    LimitError
        Arcs beyond the per-file cap of ``limits``.
    IntegrityError
        A provision identity that occurs more than once in the set (naming it and its files);
        provisions recognised not matching the metadata's counts (``check_counts``), naming the
        element path not understood.
    """

    stream = iter_bestammelser(
        source,
        set_name=set_name,
        arc_tolerance=arc_tolerance,
        on_geometry_error=on_geometry_error,
        progress=progress,
        workers=workers,
        limits=limits,
        check_counts=check_counts,
    )
    parts = list(stream)
    return _concat(parts, stream.unmapped, stream.geometry_errors, stream.files)


def iter_bestammelser(
    source: Source,
    *,
    set_name: str | None = None,
    arc_tolerance: float = DEFAULT_ARC_TOLERANCE,
    on_geometry_error: str = "raise",
    progress: bool = False,
    workers: int | None = 1,
    limits: GeometryLimits | None = None,
    check_counts: bool = True,
) -> BestammelseParts:
    """:func:`read_bestammelser`, part by part: memory bounded by a part, not by the delivery.

    Parameters are those of :func:`read_bestammelser`. The parts (:class:`BestammelseData` of
    a few thousand provisions each, in file order; at least one, maybe empty) come as they are
    read. The checks over the whole set — counts against the metadata, repeated identities,
    columns null throughout — run when the last part has been taken, so a consumer must treat
    what it wrote as provisional until the iteration ends without an exception (``vggeo read``
    writes to a temporary file, renamed at the end).

    Returns
    -------
    BestammelseParts
        Iterable once; ``unmapped``, ``geometry_errors`` and ``files`` are complete after it.
    """
    if on_geometry_error not in ("raise", "keep"):
        raise ValueError("on_geometry_error must be 'raise' or 'keep'")
    check_arc_tolerance(arc_tolerance)
    if limits is None:
        limits = geometry_limits()
    return BestammelseParts(
        source,
        set_name=set_name,
        arc_tolerance=arc_tolerance,
        on_geometry_error=on_geometry_error,
        progress=progress,
        workers=workers,
        limits=limits,
        check_counts=check_counts,
    )


class BestammelseParts:
    """The parts of a read (:func:`iter_bestammelser`); what the whole read found, after it.

    Attributes
    ----------
    unmapped
        ``{element path: count}`` of XML elements the mapping did not use.
    geometry_errors
        ``(provision_id, message)`` of features kept with an empty geometry.
    files
        Labels of the data files read.
    """

    def __init__(self, source: Source, **options: Unpack[ReadOptions]) -> None:
        self.source = source
        self.options = options
        self.unmapped: Counter[str] = Counter()
        self.geometry_errors: list[tuple[str, str]] = []
        self.files: list[str] = []
        self._started = False

    def __iter__(self) -> Iterator[BestammelseData]:
        if self._started:
            raise RuntimeError("the parts of a read can be iterated once")
        self._started = True
        return self._parts(**self.options)

    def _parts(
        self,
        *,
        set_name: str | None,
        arc_tolerance: float,
        on_geometry_error: str,
        progress: bool,
        workers: int | None,
        limits: GeometryLimits,
        check_counts: bool,
    ) -> Iterator[BestammelseData]:
        source = self.source
        if is_vector_product(source):
            data = read_vector_product(source)
            self.files = list(data.files)
            self.unmapped.update(data.unmapped)
            self.geometry_errors.extend(data.geometry_errors)
            yield data
            return
        own = not isinstance(source, Delivery)
        d = source if isinstance(source, Delivery) else open_delivery(source)
        bar = None
        try:
            if d.product != "bestammelse":
                raise InputError(
                    f"{d.path} is an {d.product} delivery, not markreglerande bestämmelse"
                )
            sets = [set_name] if set_name else [s for s in d.sets if d.data_files(s)] or d.sets
            default_srs = f"urn:ogc:def:crs:EPSG::{d.crs}" if d.crs else None
            files = [f for s in sets for f in d.data_files(s)]
            self.files = [f.label for f in files]
            recognised: dict[str, int] = {}
            bar = _ByteProgress(files) if progress else None
            it = [bar.wrap(f) for f in files] if bar else files
            n_workers = _parallel.default_workers() if workers is None else max(1, int(workers))
            options = ReaderOptions(
                default_srs=default_srs,
                default_epsg=d.crs,
                arc_tolerance=arc_tolerance,
                on_geometry_error=on_geometry_error,
                limits=limits,
            )
            ids: list = []  # per part: its identities and file, for the repeated-identity check
            basinformation = _BasinformationColumns()
            yielded = False
            for f in it:
                got = None
                if n_workers > 1 and (f.size or 0) > 2 * _parallel.CHUNK_BYTES:
                    got = _read_file_parallel(f, workers=n_workers, **options)
                gen = iter(got[0]) if got is not None else _iter_file(f, **options)
                n = 0
                while True:
                    try:
                        part = next(gen)
                    except StopIteration as stop:
                        u, e = got[1:] if got is not None else stop.value
                        break
                    n += len(part.provisions)
                    ids.append(_Identities(part))
                    basinformation.update(part)
                    if len(part.provisions):
                        yielded = True
                        yield part
                if check_counts:
                    d.check_recognised(f, n, getattr(u, "unknown", None) or (u if not n else None))
                recognised[f.set_name] = recognised.get(f.set_name, 0) + n
                self.unmapped.update(u)
                self.unmapped.update(root_attributes(f))
                self.geometry_errors.extend(e)
            if check_counts:
                for s in sets:
                    d.check_total(s, recognised.get(s, 0))
            refuse_repeated_identities(ids)
            if check_counts:
                basinformation.check(d.path, self.files)
            if not yielded:
                yield _frames(
                    {"provisions": [], "affected_properties": [], "decisions": []},
                    Counter(),
                    [],
                    default_epsg=d.crs,
                    files=[],
                )
        finally:
            if bar is not None:
                bar.close()
            if own:
                d.close()


class _Identities:
    """What :func:`refuse_repeated_identities` needs of a part, without its data."""

    def __init__(self, part: BestammelseData) -> None:
        self.provisions = pd.DataFrame({"provision_id": part.provisions["provision_id"]})
        self.files = part.files


class _BasinformationColumns:
    """:func:`refuse_empty_columns` over a stream of parts: which columns were ever filled."""

    def __init__(self) -> None:
        self.rows = 0
        self.filled = dict.fromkeys(REQUIRED_WITH_BASINFORMATION, False)

    def update(self, part: BestammelseData) -> None:
        sub = part.subsets
        if not len(sub):
            return
        ids = sub.loc[sub["subset"] == "basinformation", "provision_id"]
        if not len(ids):
            return
        prov = part.provisions
        # pyarrow's hash lookup: pandas' isin on Arrow strings builds a Python list of the values
        # (a third of a second per 50 000 provisions); nulls match nulls, as in pandas.
        hit = pc.is_in(pa.array(prov["provision_id"]), value_set=pa.array(ids), skip_nulls=False)
        rows = prov[hit.to_numpy(zero_copy_only=False)]
        self.rows += len(rows)
        for col in self.filled:
            self.filled[col] = self.filled[col] or bool(rows[col].notna().any())

    def check(self, path: str | os.PathLike[str] | None, files: list[str]) -> None:
        for col, filled in self.filled.items():
            if self.rows and not filled:
                raise IntegrityError(
                    f"{col} is null in all {self.rows} provisions carrying Basinformation: its "
                    "element is spelt in a way vggeo/lm/mapping.py does not know; see "
                    "`vggeo inspect`",
                    file=files[0] if files else path,
                    field=col,
                )


class _ByteProgress:
    """One progress bar (stderr) in bytes read over the data files of a read.

    A file read again (the compiled path handing a file back to the member-by-member reader)
    does not count twice: each file advances the bar only past its own high-water mark.
    """

    def __init__(self, files: list[DataFile]) -> None:
        self.total = sum(f.size or 0 for f in files) or None
        self.done = 0
        self.bar = tqdm(
            total=self.total, desc="provisions", unit="B", unit_scale=True, disable=None
        )
        self.high: dict[str, int] = {}

    def wrap(self, f: DataFile) -> DataFile:
        # The readers call read() and close() of the stream only, which _CountedStream has.
        return dataclasses.replace(
            f, opener=lambda: cast(IO[bytes], _CountedStream(f.open(), self, f.label))
        )

    def advance(self, label: str, pos: int) -> None:
        gain = pos - self.high.get(label, 0)
        if gain > 0:
            self.high[label] = pos
            self.done += gain
            self.bar.update(gain)

    def close(self) -> None:
        self.bar.close()


class _CountedStream:
    """A binary stream that reports how far it has been read."""

    def __init__(self, stream: IO[bytes], progress: _ByteProgress, label: str) -> None:
        self._stream, self._progress, self._label, self._pos = stream, progress, label, 0

    def read(self, n: int = -1) -> bytes:
        data = self._stream.read(n)
        self._pos += len(data)
        self._progress.advance(self._label, self._pos)
        return data

    def readinto(self, buffer: memoryview) -> int:
        """Read into ``buffer`` (what :func:`~vggeo.lm._parallel.split_members` uses)."""
        got = _parallel.read_into(self._stream, buffer)
        self._pos += got
        self._progress.advance(self._label, self._pos)
        return got

    def close(self) -> None:
        self._stream.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _frames(
    rows: Mapping[str, list[dict] | ColumnRows],
    unmapped: Counter,
    errors: list[tuple[str, str]],
    *,
    default_epsg: int | None,
    files: list[str],
) -> BestammelseData:
    """Typed tables from the Extractor's raw rows (one dict per provision)."""
    prov_rows = as_dicts(rows["provisions"], "provisions")
    geoms: list[tuple[list, int | None]] = [r.get(GEOMETRY_KEY) or ([], None) for r in prov_rows]
    return assemble(
        prov_rows,
        [r.get("provision_type") for r in prov_rows],
        lambda ids: build_geometries(geoms, ids, default_epsg=default_epsg),
        rows["affected_properties"],
        rows["decisions"],
        [(r["provision_id"], s) for r in prov_rows for s in sorted(r.get(SUBSETS_KEY, ()))],
        unmapped=unmapped,
        errors=errors,
        files=files,
    )


def _folded(name: str) -> str:
    """A column or type name as the vector product is matched: without case, accents, spaces or
    punctuation (``"Senaste ändring, allmänna delen"`` → ``"senasteandringallmannadelen"``).

    The product's schema is not public (FORMATS.md says only that it exists), so its names are
    matched as loosely as they can be without two names meaning different things.
    """
    decomposed = unicodedata.normalize("NFKD", name.casefold())
    return "".join(c for c in decomposed if c.isascii() and c.isalnum())


#: Vector-product column names, folded (:func:`_folded`) → vggeo's columns: the attribute names
#: the XML mapping reads (:data:`vggeo.lm.mapping.BESTAMMELSE`), a type column, and vggeo's own
#: column names (a GeoPackage vggeo wrote reads back). [inferred]
VECTOR_COLUMNS = {
    **{_folded(c): c for c in PROVISION_COLUMNS},
    "objektidentitet": "provision_id",
    "bestammelsetyp": "provision_type",
    "typ": "provision_type",
    "objektversion": "object_version",
    "kommun": "municipality",
    "kommunkod": "municipality",
    "aktbeteckning": "designation",
    "beteckning": "designation",
    "bestammelsebeteckning": "designation",
    "namn": "name",
    "plannamn": "name",
    "bestammelsenamn": "name",
    "plantyp": "plan_type",
    "naturvardstyp": "plan_type",
    "rattighetstyp": "plan_type",
    "alternativaktbeteckning": "alt_designation",
    "alternativbeteckning": "alt_designation",
    "senasteandringallmannadelen": "last_changed",
    "senastandradallmannadelen": "last_changed",
    "senasteandring": "last_changed",
    "versiongiltigfran": "last_changed",
    "genomforandetidstart": "implementation_start",
    "genomforandetidfrom": "implementation_start",
    "genomforandetidborjar": "implementation_start",
    "genomforandetidslut": "implementation_end",
    "genomforandetidtom": "implementation_end",
    "genomforandetidslutar": "implementation_end",
    "hanvisningstext": "reference_text",
}
#: Provision type names, folded → vggeo's types: the XML element names, vggeo's own names and
#: Lantmäteriet's display names ("Övrig bestämmelse", "Utredning m.m.").
VECTOR_TYPES = {
    **{_folded(k): v for k, v in M.PROVISION_TYPES.items()},
    **{_folded(v): v for v in PROVISION_TYPES},
    "utredningmm": "utredning",
}


def is_vector_product(source: object) -> TypeGuard[str | os.PathLike[str]]:
    """Whether ``source`` names a GeoPackage of the vector product (rather than a delivery)."""
    return isinstance(source, (str, os.PathLike)) and Path(source).suffix.lower() == ".gpkg"


def read_vector_product(path: str | os.PathLike[str]) -> BestammelseData:
    """Read the GeoPackage vector product of provision areas into the same shape.

    Every layer with geometry is read; its columns are matched by :data:`VECTOR_COLUMNS` and typed
    by the same functions as the XML's attributes, so ids join and values read alike. Columns it
    does not match are counted in ``unmapped`` (``layer/column``: values), as the XML's elements
    are. Refused, naming the layer (and row, column and value where there is one): a layer without
    an id column or with two columns for one field, a row without an id, an id twice, a type that
    is no provision type (a layer without a type column takes its name's, if that is one), a
    geometry other than (Multi)Polygon, a value the XML reader would refuse, and a layer lacking a
    column of :data:`REQUIRED_WITH_BASINFORMATION` while holding columns nobody matched (they may
    be it, spelt otherwise). Nothing becomes a silent null.
    """
    import pyogrio.errors  # geopandas reads through pyogrio; imported by it on first use

    name = str(path)
    try:
        layers = gpd.list_layers(path)
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError) as err:
        raise InputError(f"not a readable GeoPackage: {err}", file=name) from None
    parts: list[BestammelseData] = []
    unmapped: Counter = Counter()
    for layer in layers.loc[layers["geometry_type"].notna(), "name"]:  # not attribute tables
        try:
            df = gpd.read_file(path, layer=layer, engine="pyogrio")
        except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError) as err:
            raise InputError(f"layer does not read: {err}", file=name, element=layer) from None
        parts.append(_vector_layer(df, layer, name, unmapped))
    if not parts:
        raise InputError("no geometry layer in the GeoPackage", file=name)
    refuse_repeated_identities(parts)
    return _concat(parts, unmapped, [], [name])


def _vector_layer(
    df: gpd.GeoDataFrame, layer: str, name: str, unmapped: Counter
) -> BestammelseData:
    """One layer of the vector product as provisions (see :func:`read_vector_product`)."""
    if df.crs is None:
        raise InputError("vector product layer has no CRS", file=name, element=layer)
    found = _vector_columns(df, layer, name, unmapped)
    rows = ColumnRows(PROVISION_COLUMNS)
    rows.columns = {c: _raw(df[found[c]]).tolist() for c in found}
    rows.n = len(df)
    ids = rows.column("provision_id")
    blank = [r for r, v in enumerate(ids, start=1) if v is None or not str(v).strip()]
    if blank:
        raise InputError(
            "no objektidentitet",
            file=name,
            element=layer,
            row=blank[0],
            field=found["provision_id"],
        )
    types = _vector_types(rows.column("provision_type"), layer, found, file=name)
    geometry = _vector_geometries(transform_geoseries(df.geometry, 3006), layer, name)
    try:
        return assemble(
            rows,
            types,
            lambda _ids: geometry,
            ColumnRows(("provision_id",)),  # no berörkrets, no decisions in the product
            ColumnRows(("provision_id",)),
            [(i, "basinformation") for i in ids],
            files=[name],
        )
    except InputError as err:  # name the layer and its own column, not vggeo's
        raise type(err)(
            err.message,
            file=name,
            element=layer,
            field=found.get(err.field or "", err.field),
            value=err.value,
        ) from None


def _vector_columns(
    df: gpd.GeoDataFrame, layer: str, file: str, unmapped: Counter
) -> dict[str, str]:
    """vggeo's column → the layer's column; the rest counted in ``unmapped`` by their values."""
    found: dict[str, str] = {}
    unknown = []
    for col in df.columns:
        if col == df.geometry.name:
            continue
        target = VECTOR_COLUMNS.get(_folded(col))
        if target is None:
            values = int(df[col].notna().sum())
            unmapped[f"{layer}/{col}"] += values
            unknown += [col] if values else []
        elif target in found:
            raise InputError(
                f"columns {found[target]!r} and {col!r} both give {target}",
                file=file,
                element=layer,
            )
        else:
            found[target] = col
    if "provision_id" not in found:
        raise InputError("layer has no objektidentitet column", file=file, element=layer)
    absent = [c for c in REQUIRED_WITH_BASINFORMATION if c not in found]
    if absent and unknown:
        raise InputError(
            f"no column for {', '.join(absent)}, and columns that match nothing hold values "
            f"({', '.join(map(repr, unknown))}): one may be it, spelt otherwise",
            file=file,
            element=layer,
        )
    return found


def _raw(values: pd.Series) -> pd.Series:
    """A GeoPackage column as the XML reader's raw values: None for null, dates as ISO text."""
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        values = values.dt.strftime("%Y-%m-%dT%H:%M:%S")  # wall-clock time, as written
    out = values.astype(object)
    return out.where(values.notna(), None)


def _vector_types(values: list, layer: str, found: dict[str, str], *, file: str) -> list[str]:
    """The rows' provision types; a row without one takes the layer's name if that is a type."""
    from_layer = VECTOR_TYPES.get(_folded(layer))
    column = found.get("provision_type")
    out = []
    for row, v in enumerate(values, start=1):
        if v is None or (isinstance(v, str) and not v.strip()):
            if from_layer is None:
                raise InputError(
                    "no provision type, and the layer's name is none",
                    file=file,
                    element=layer,
                    row=row,
                    field=column or "typ",
                )
            out.append(from_layer)
            continue
        t = VECTOR_TYPES.get(_folded(str(v)))
        if t is None:
            raise InputError(
                f"not a provision type (one of {', '.join(PROVISION_TYPES)})",
                file=file,
                element=layer,
                row=row,
                field=column,
                value=str(v),
            )
        out.append(t)
    return out


def _vector_geometries(geoms: gpd.GeoSeries, layer: str, file: str) -> np.ndarray:
    """MultiPolygons in two dimensions (a Polygon is wrapped); anything else is refused."""
    values = shapely.force_2d(np.asarray(geoms.values))
    kinds = shapely.get_type_id(values)  # -1 for a missing geometry, kept as missing
    wrong = ~np.isin(kinds, [-1, GeometryType.POLYGON, GeometryType.MULTIPOLYGON])
    if wrong.any():
        i = int(np.flatnonzero(wrong)[0])
        raise InputError(
            "not an area (Polygon or MultiPolygon)",
            file=file,
            element=layer,
            row=i + 1,
            field="geometry",
            value=values[i].geom_type,
        )
    polygons = kinds == GeometryType.POLYGON
    empty = polygons & shapely.is_empty(values)
    values[empty] = shapely.MultiPolygon()
    polygons &= ~empty
    values[polygons] = shapely.multipolygons(values[polygons][:, None])  # one polygon each
    return values


def _read_set(
    delivery: Delivery, set_name: str, *, personal_data: bool = False, **options: Any
) -> BestammelseData:
    """:attr:`vggeo.lm.package.SET_READERS` entry: provisions hold no personal data."""
    return read_bestammelser(delivery, set_name=set_name, **options)


SET_READERS["bestammelse"] = _read_set
