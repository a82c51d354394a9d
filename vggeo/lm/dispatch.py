"""A whole delivery, whatever its product: what it holds (:func:`inspect`) and its tables
(:func:`read_delivery`).

This module sits above both product readers (:mod:`vggeo.lm.bestammelse`,
:mod:`vggeo.lm.inskrivning`) and the format layer (:mod:`vggeo.lm.package`), and chooses between
the readers by the delivery's product. ``vggeo inspect`` and ``vggeo read`` only print what these
return and write it with :mod:`vggeo.exports.tables`.

Examples
--------
::

    report = inspect("000_base_….zip")
    report.integrity                 # "ok", or "FAILED: …" with report.problem the error
    report.sets["markreglerandebestammelse"].tables     # {"provisions": 1500, …}
    tables = read_delivery("000_base_….zip").tables      # {"provisions": GeoDataFrame, …}
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pandas as pd

from vggeo.errors import IntegrityError
from vggeo.lm.bestammelse import read_bestammelser
from vggeo.lm.inskrivning import read_inskrivning
from vggeo.lm.package import Delivery, SetMetadata, open_delivery

__all__ = [
    "FileReport",
    "SetReport",
    "InspectReport",
    "inspect",
    "DeliveryTables",
    "read_delivery",
]

#: The table ``vggeo read -o OUT.parquet`` writes when none is named, per product.
DEFAULT_TABLE = {"bestammelse": "provisions", "inskrivning": "agande"}


# --- inspect ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class FileReport:
    """One data or deletion file of a set.

    Attributes
    ----------
    kind
        ``"data"`` or ``"deletion"``.
    objects
        Objects in the file: the count the metadata vouched for once verified, else counted.
    bytes
        Size of the file (None when the container does not say).
    """

    kind: str
    objects: int
    bytes: int | None


@dataclass(frozen=True)
class SetReport:
    """One information set of a delivery.

    Attributes
    ----------
    files
        ``{file name: FileReport}`` for its data and deletion files, in delivery order.
    deletions
        Object identities its deletion files list.
    metadata
        What its ``<set>_metadata.xml`` says, or None when the delivery has none for it.
    tables
        ``{table: rows}`` as the product's reader builds them (None: no data files).
    geometry_errors
        Provisions whose geometry is malformed, ``"<provision id>: <message>"`` (bestämmelser
        only; None for inskrivning and for sets without data files).
    """

    files: dict[str, FileReport]
    deletions: int
    metadata: SetMetadata | None = None
    tables: dict[str, int] | None = None
    geometry_errors: list[str] | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready form ``vggeo inspect --json`` prints for a set."""
        out: dict[str, Any] = {
            "files": {
                name: {"kind": f.kind, "objects": f.objects, "bytes": f.bytes}
                for name, f in self.files.items()
            },
            "deletions": self.deletions,
        }
        md = self.metadata
        if md is not None:
            out["metadata"] = {
                "subsets": md.subsets,
                "selection_type": md.selection_type,
                "selection": md.selection,
                "total_count": md.total_count,
                "direct_marketing": md.direct_marketing,
                "exclude_personnummer": md.exclude_personnummer,
            }
        if self.tables is not None:
            out["tables"] = self.tables
        if self.geometry_errors is not None:
            out["geometry_errors"] = self.geometry_errors
        return out


@dataclass(frozen=True)
class InspectReport:
    """What a delivery holds, checked against its metadata: the report of ``vggeo inspect``.

    Attributes
    ----------
    path
        The delivery as it was given.
    form, product, information_types, extract_type, extract_id, previous_extract_id, \
produced_at, crs, checksum
        As :class:`~vggeo.lm.package.Delivery` reports them (``crs``: the EPSG code).
    sets
        ``{set name: SetReport}``.
    integrity
        ``"ok"``, ``"FAILED: <reason>"`` or ``"not checked: no metadata file in this delivery"``.
    unmapped_elements
        ``{"<file or set>: <element path>": occurrences}`` for every XML element path the
        mapping did not use, sorted (the metadata's and the data's).
    problem
        The :class:`~vggeo.errors.IntegrityError` behind a failed integrity check, else None.
    """

    path: str
    form: str
    product: str
    information_types: list[str]
    extract_type: str | None
    extract_id: str | None
    previous_extract_id: str | None
    produced_at: datetime | None
    crs: int | None
    checksum: str
    sets: dict[str, SetReport]
    integrity: str
    unmapped_elements: dict[str, int]
    problem: IntegrityError | None = field(default=None, compare=False)

    @property
    def ok(self) -> bool:
        """True unless the delivery does not match its metadata."""
        return self.problem is None

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready document ``vggeo inspect --json`` prints."""
        return {
            "path": self.path,
            "form": self.form,
            "product": self.product,
            "information_types": self.information_types,
            "extract_type": self.extract_type,
            "extract_id": self.extract_id,
            "previous_extract_id": self.previous_extract_id,
            "produced_at": self.produced_at.isoformat() if self.produced_at else None,
            "crs": f"EPSG:{self.crs}" if self.crs else None,
            "checksum": self.checksum,
            "sets": {s: e.to_dict() for s, e in self.sets.items()},
            "integrity": self.integrity,
            "unmapped_elements": self.unmapped_elements,
        }

    def to_text(self) -> str:
        """The plain-text report ``vggeo inspect`` prints."""
        info = self.to_dict()
        lines = [
            f"delivery:      {info['path']} ({info['form']})",
            f"product:       {info['product']}",
            f"types:         {', '.join(info['information_types'])}",
            f"extract type:  {info['extract_type'] or 'unknown'}",
            f"extract id:    {info['extract_id'] or '-'}",
            f"follows:       {info['previous_extract_id'] or '-'}",
            f"produced at:   {info['produced_at'] or '-'}",
            f"crs:           {info['crs'] or '-'}",
            f"checksum:      sha256:{info['checksum']}",
            f"integrity:     {info['integrity']}",
            "sets:",
        ]
        for s, e in info["sets"].items():
            lines.append(f"  {s}:")
            for name, f in e["files"].items():
                lines.append(
                    f"    {name:45s} {f['kind']:9s} {f['objects']:>8} objects "
                    f"{f['bytes'] or 0:>12} bytes"
                )
            if "metadata" in e:
                m = e["metadata"]
                lines.append(
                    f"    subsets: {', '.join(m['subsets']) or '-'}; "
                    f"selection: {m['selection_type'] or '-'} ({len(m['selection'])} values)"
                )
            lines.append(f"    deletions: {e['deletions']}")
            lines += [f"    table {t}: {n} rows" for t, n in e.get("tables", {}).items()]
            lines += [f"    geometry error: {g}" for g in e.get("geometry_errors", [])]
        un = info["unmapped_elements"]
        lines.append(f"unmapped elements: {'none' if not un else ''}")
        lines += [f"  {k}  ({v}×)" for k, v in un.items()]
        return "\n".join(lines)


def inspect(source: str | os.PathLike | Delivery) -> InspectReport:
    """What a delivery holds: product, extract, sets, files with their object counts, CRS,
    the integrity check against the metadata, the tables its reader builds, and every XML
    element path the mapping did not use.

    Parameters
    ----------
    source
        A :class:`~vggeo.lm.package.Delivery` (left open) or anything
        :func:`~vggeo.lm.open_delivery` accepts: outer ZIP, folder, set ZIP, one XML file.

    Returns
    -------
    InspectReport
        A delivery that does not match its metadata is reported, not raised: ``integrity``
        says ``FAILED: …`` and ``problem`` holds the error (``vggeo inspect`` raises it after
        printing). Malformed geometry is listed per set, not raised.

    Raises
    ------
    VggeoError
        Anything that stops the delivery from being read at all (unsafe or unreadable input).
    """
    if isinstance(source, Delivery):
        return _inspect(source, str(source.path))
    with open_delivery(source) as d:
        return _inspect(d, str(source))


def _inspect(d: Delivery, path: str) -> InspectReport:
    problem: IntegrityError | None = None
    counts: dict = {}
    if not d.metadata:
        # A bare data file or set ZIP: nothing to verify against, which is not a failure.
        integrity = "not checked: no metadata file in this delivery"
    else:
        try:
            counts = d.verify()
            integrity = "ok"
        except IntegrityError as err:
            problem = err
            integrity = f"FAILED: {err}"
    unmapped: Counter = Counter()
    sets: dict[str, SetReport] = {}
    for s in d.sets:
        md = d.metadata.get(s)
        files = {}
        for f in d.files(s):
            if f.kind == "metadata":
                continue
            n = counts.get(s, {}).get(f.name)
            files[f.name] = FileReport(f.kind, n if n is not None else d.count_objects(f), f.size)
        if md is not None:
            unmapped.update({f"{s}_metadata.xml: {k}": v for k, v in md.unmapped.items()})
        tables = geometry_errors = None
        if d.data_files(s):
            data: Any
            if d.product == "bestammelse":
                try:  # objects recognised against the metadata's counts
                    data = read_bestammelser(d, set_name=s, on_geometry_error="keep")
                except IntegrityError as err:
                    problem = problem or err
                    integrity = f"FAILED: {err}"
                    data = read_bestammelser(
                        d, set_name=s, on_geometry_error="keep", check_counts=False
                    )
                geometry_errors = [f"{i}: {m}" for i, m in data.geometry_errors]
            else:
                data = read_inskrivning(d, sets=[s])
            tables = {k: len(v) for k, v in data.tables().items()}
            unmapped.update({f"{s}: {k}": v for k, v in data.unmapped.items()})
        sets[s] = SetReport(files, len(d.deletions(s)), md, tables, geometry_errors)
    return InspectReport(
        path=path,
        form=d.form,
        product=str(d.product),
        information_types=d.information_types,
        extract_type=d.extract_type,
        extract_id=d.extract_id,
        previous_extract_id=d.previous_extract_id,
        produced_at=d.produced_at,
        crs=d.crs,
        checksum=d.checksum,
        sets=sets,
        integrity=integrity,
        unmapped_elements=dict(sorted(unmapped.items())),
        problem=problem,
    )


# --- read -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeliveryTables:
    """Every table of a delivery, read by its product's reader (``vggeo read``).

    Attributes
    ----------
    product
        ``"bestammelse"`` or ``"inskrivning"``.
    tables
        ``{table: frame}``: the reader's tables, plus ``deletions`` (``set``, ``object_id``) for
        a change extract or any delivery that lists deletions.
    unmapped
        ``{element path: occurrences}`` the mapping did not use: data the tables do not hold.
    geometry_errors
        ``(provision id, message)`` of provisions kept with an empty geometry
        (``on_geometry_error="keep"``).
    """

    product: str
    tables: dict[str, pd.DataFrame]
    unmapped: Mapping[str, int]
    geometry_errors: list[tuple[str, str]] = field(default_factory=list)

    @property
    def default_table(self) -> str:
        """The product's main table: ``provisions`` or ``agande``."""
        return DEFAULT_TABLE[self.product]


def read_delivery(
    source: str | os.PathLike | Delivery,
    *,
    personal_data: bool = False,
    on_geometry_error: str = "raise",
    workers: int | None = 1,
    progress: bool = False,
) -> DeliveryTables:
    """Read every set of a delivery with its product's reader.

    Unlike :meth:`Delivery.read <vggeo.lm.package.Delivery.read>` (what a store applies) element
    paths the mapping did not use are reported in ``unmapped``, not refused.

    Parameters
    ----------
    source
        A :class:`~vggeo.lm.package.Delivery` (left open) or anything
        :func:`~vggeo.lm.open_delivery` accepts.
    personal_data
        Inskrivning: keep personnummer, names and addresses (default: redacted).
    on_geometry_error, workers
        Bestämmelser: as :func:`~vggeo.lm.read_bestammelser`.
    progress
        Show a progress bar on stderr.
    """
    if isinstance(source, Delivery):
        return _read(source, personal_data, on_geometry_error, workers, progress)
    with open_delivery(source) as d:
        return _read(d, personal_data, on_geometry_error, workers, progress)


def _read(
    d: Delivery, personal_data: bool, on_geometry_error: str, workers: int | None, progress: bool
) -> DeliveryTables:
    data: Any
    errors: list[tuple[str, str]] = []
    if d.product == "bestammelse":
        data = read_bestammelser(
            d, progress=progress, workers=workers, on_geometry_error=on_geometry_error
        )
        errors = list(data.geometry_errors)
    else:
        data = read_inskrivning(d, personal_data=personal_data, progress=progress)
    tables = dict(data.tables())
    dels = deletions_table(d)
    if dels is not None:
        tables["deletions"] = dels
    return DeliveryTables(str(d.product), tables, data.unmapped, errors)


def deletions_table(d: Delivery) -> pd.DataFrame | None:
    """The ``deletions`` table (``set``, ``object_id``) of a change extract or of any delivery
    that lists deletions; None otherwise."""
    dels = [(s, i) for s in d.sets for i in sorted(d.deletions(s))]
    if d.extract_type == "change" or dels:
        return pd.DataFrame(dels, columns=["set", "object_id"]).astype("string")
    return None
