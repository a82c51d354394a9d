"""Consistency checks of a registry frame, with a report for people and one for machines.

What is checked, each vectorised over the whole frame:

* **every documented rule** of the field list (:mod:`vggeo.registry.rules`, each quoted):
  types, code lists (:mod:`vggeo.codes`), ranges, formats (organisation numbers with their check
  digit, postal codes, dates, codes), cross-field rules (``floors`` ≥ ``floor``,
  ``is_meter_address`` ↔ the form of ``number``), impossible lägenhetsnummer
  (:mod:`vggeo.apartment`) and the same apartment number twice at one address;
* **coordinates** — every row's SWEREF 99, RT 90 and WGS 84 pairs are transformed to
  EPSG:3006 and compared; the largest distance between any two of them is reported for rows
  beyond ``threshold`` (default 5 m; real rows agree to about a metre). Swapped or implausible
  pairs and rows without any pair are reported too;
* **notices** — documented quirks that are not errors: ``construction_year`` 1909/1929
  placeholders, ``floor`` estimates that differ from the apartment number's floor code, suspected
  errors and possibly deleted homes as Valueguard marks them …;
* **fields** — unknown fields kept, documented fields absent.

A report is *ok* when no problem (rule violation or coordinate problem) was found; notices never
make it fail. ``vggeo registry check`` exits 0 when ok, 1 when problems were found, 2 when the
input could not be checked.
"""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from vggeo.atomic import atomic_path
from vggeo.crs import Route, detect_axis_problems, transform
from vggeo.errors import CoordinateError
from vggeo.registry.canonical import to_canonical
from vggeo.registry.coordinates import PAIR_LABELS, VALUEGUARD_PAIRS
from vggeo.registry.fields import COORDINATE_FIELDS, FIELD_NAMES
from vggeo.registry.readers import read_registry
from vggeo.registry.rules import RULES, notices
from vggeo.registry.writers import FORMATS

__all__ = ["CheckReport", "check_file", "check_registry", "coordinate_distances"]


def coordinate_distances(frame: pd.DataFrame, *, route: Route = "direct") -> pd.DataFrame:
    """Positions implied by each coordinate pair, and the largest distance between them.

    Returns
    -------
    DataFrame (same index): ``easting_<pair>``, ``northing_<pair>`` in EPSG:3006 for each of
    ``sweref99``, ``rt90``, ``wgs84`` (NaN where the pair is incomplete), ``max_distance``
    (metres, NaN where fewer than two pairs are complete), ``worst_pair`` (e.g.
    ``"sweref99/rt90"``), ``swapped`` and ``implausible`` (the pair names, or missing).
    """
    n = len(frame)
    out: dict[str, Any] = {}
    east = np.full((3, n), np.nan)
    north = np.full((3, n), np.nan)
    swapped = np.full(n, None, dtype=object)
    implausible = np.full(n, None, dtype=object)
    for k, (label, a_col, b_col, code, order) in enumerate(VALUEGUARD_PAIRS):
        if a_col not in frame or b_col not in frame:
            continue
        a = pd.to_numeric(frame[a_col], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        b = pd.to_numeric(frame[b_col], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        sw, fo = detect_axis_problems(a, b, code, order, names=(a_col, b_col))
        swapped = np.where(sw & (swapped == None), label, swapped)  # noqa: E711
        implausible = np.where(fo & (implausible == None), label, implausible)  # noqa: E711
        use = ~np.isnan(a) & ~np.isnan(b) & ~sw & ~fo
        if use.any():
            nn, ee = transform(
                a[use],
                b[use],
                src=code,
                dst=3006,
                in_order=order,
                out_order="ne",
                route=route,
                check="off",
            )
            north[k, use], east[k, use] = nn, ee
    best = np.full(n, np.nan)
    worst = np.full(n, None, dtype=object)
    for i, j in ((0, 1), (0, 2), (1, 2)):
        d = np.hypot(east[i] - east[j], north[i] - north[j])
        better = ~np.isnan(d) & (np.isnan(best) | (d > best))
        best = np.where(better, d, best)
        worst = np.where(better, f"{PAIR_LABELS[i]}/{PAIR_LABELS[j]}", worst)
    for k, label in enumerate(PAIR_LABELS):
        out[f"easting_{label}"] = east[k]
        out[f"northing_{label}"] = north[k]
    out["max_distance"] = best
    out["worst_pair"] = pd.Categorical(
        worst, categories=["sweref99/rt90", "sweref99/wgs84", "rt90/wgs84"]
    )
    out["swapped"] = pd.Categorical(swapped, categories=list(PAIR_LABELS))
    out["implausible"] = pd.Categorical(implausible, categories=list(PAIR_LABELS))
    return pd.DataFrame(out, index=frame.index)


#: Coordinate problems the check measures itself (beside the rules' violations).
COORDINATE_PROBLEMS = (
    "conflicting_coordinates",
    "swapped_coordinates",
    "implausible_coordinates",
    "no_coordinates",
)


@dataclass
class CheckReport:
    """What :func:`check_registry` found.

    ``summary`` holds every count (problems first, then notices); ``problems`` and ``notices``
    name which is which. Each entry of ``details`` is a DataFrame with the rows behind one count
    (``row`` is the row number — the file's line where the frame came from a file — and ``id``
    the residence id).
    """

    n_rows: int
    threshold_m: float
    summary: dict[str, int] = field(default_factory=dict)
    details: dict[str, pd.DataFrame] = field(default_factory=dict)
    fields: dict[str, list[str]] = field(default_factory=dict)
    distance_stats: dict[str, float | None] = field(default_factory=dict)
    problem_keys: tuple[str, ...] = ()
    notice_keys: tuple[str, ...] = ()

    @property
    def PROBLEMS(self) -> tuple[str, ...]:  # noqa: N802 - kept from the earlier class constant
        return self.problem_keys

    @property
    def problems(self) -> dict[str, int]:
        return {k: self.summary.get(k, 0) for k in self.problem_keys}

    @property
    def notices(self) -> dict[str, int]:
        return {k: self.summary.get(k, 0) for k in self.notice_keys}

    @property
    def n_problems(self) -> int:
        return sum(self.problems.values())

    @property
    def ok(self) -> bool:
        return self.n_problems == 0

    @property
    def exit_code(self) -> int:
        """0 clean, 1 problems found (``vggeo registry check``; 2 means it could not check)."""
        return 0 if self.ok else 1

    def to_dict(self, *, max_rows: int | None = 100) -> dict:
        """JSON-ready report; at most ``max_rows`` example rows per finding (None: all)."""

        def rows(df: pd.DataFrame) -> list[dict]:
            d = df if max_rows is None else df.head(max_rows)
            return json.loads(d.to_json(orient="records", date_format="iso"))

        found = [
            k for k in (*self.problem_keys, *self.notice_keys) if self.summary.get(k) and k in RULES
        ]
        return {
            "n_rows": self.n_rows,
            "ok": self.ok,
            "status": "ok" if self.ok else "problems",
            "exit_code": self.exit_code,
            "n_problems": self.n_problems,
            "threshold_m": self.threshold_m,
            "summary": dict(self.summary),
            "problems": self.problems,
            "notices": self.notices,
            "rules": {
                k: {
                    "severity": RULES[k].severity,
                    "action": RULES[k].action,
                    "summary": RULES[k].summary,
                    "source": RULES[k].source,
                    "quotes": dict(RULES[k].quotes),
                }
                for k in found
            },
            "distance_m": dict(self.distance_stats),
            "fields": dict(self.fields),
            "details": {k: rows(v) for k, v in self.details.items()},
        }

    def to_json(self, *, max_rows: int | None = 100) -> str:
        return json.dumps(self.to_dict(max_rows=max_rows), ensure_ascii=False, indent=2)

    def write_json(self, path: str | os.PathLike, *, max_rows: int | None = None) -> Path:
        """Write :meth:`to_json` (every row by default) to ``path``, atomically."""
        with atomic_path(path) as tmp:
            tmp.write_text(self.to_json(max_rows=max_rows), encoding="utf-8")
        return Path(path)

    def to_table(self, *, max_rows: int = 10) -> str:
        """A plain-text report: problems, then notices, then the first rows of each finding."""
        lines = [f"{self.n_rows} rows checked (coordinate threshold {self.threshold_m:g} m)"]
        width = max(len(k) for k in self.summary) if self.summary else 0
        for title, keys in (("problems", self.problem_keys), ("notices", self.notice_keys)):
            lines.append(f"{title}:")
            for k in keys:
                v = self.summary.get(k, 0)
                mark = "!" if (title == "problems" and v) else " "
                lines.append(f" {mark} {k.ljust(width)}  {v:>10}")
        if self.distance_stats.get("max") is not None:
            st = self.distance_stats
            lines.append(
                f"   distance between coordinate pairs: median {st['median']:.3f} m, "
                f"p99 {st['p99']:.3f} m, max {st['max']:.3f} m"
            )
        for k in ("unknown_fields", "absent_fields"):
            if self.fields.get(k):
                lines.append(f"   {k.replace('_', ' ')}: {', '.join(self.fields[k])}")
        for k, df in self.details.items():
            if len(df) and k in self.problem_keys:
                lines.append("")
                lines.append(f"{k} (first {min(max_rows, len(df))} of {len(df)}):")
                lines.append(df.head(max_rows).to_string(index=False))
        lines.append("")
        lines.append("OK" if self.ok else f"PROBLEMS FOUND ({self.n_problems})")
        return "\n".join(lines)


def check_registry(
    gdf: pd.DataFrame,
    *,
    threshold: float = 5.0,
    entrance_floor: float = 0.0,
    route: Route = "direct",
    rejects: pd.DataFrame | None = None,
    endpoint: str = "registry",
    first_row: int = 1,
) -> CheckReport:
    """Check a registry frame (canonical, or raw with Valueguard's columns).

    Parameters
    ----------
    gdf
        The frame to check.
    threshold
        Metres: rows whose coordinate pairs disagree by more are reported with the distance.
    entrance_floor
        The ``floor`` value for the entrance level (see
        :func:`vggeo.apartment.floor_disagreements`).
    route
        RT 90 route used to compare the RT 90 pair (``"direct"`` or ``"helmert"``).
    rejects
        The rejects a reader gave with the frame (``read_registry(..., with_rejects=True)``):
        values it nulled are only there. Without it the rules are applied to the frame itself.
    endpoint
        The endpoint the rows come from (registry-only rules are not applied to markups).
    first_row
        Row number of the frame's first row in its file (2 for a CSV file with its header).
    """
    n = len(gdf)
    rep = CheckReport(n_rows=n, threshold_m=float(threshold))
    pos = np.arange(first_row, n + first_row)
    ids = gdf["id"].to_numpy() if "id" in gdf else np.full(n, None)

    def base(mask: np.ndarray) -> dict:
        return {"row": pos[mask], "id": ids[mask]}

    if rejects is None:
        rejects = _rules_of_frame(gdf, endpoint=endpoint, first_row=first_row)

    # Coordinates (measured here; the rules' own coordinate rejects would count them twice).
    dist = coordinate_distances(gdf, route=route)
    d = dist["max_distance"].to_numpy()
    far = ~np.isnan(d) & (d > threshold)
    rep.summary["conflicting_coordinates"] = int(far.sum())
    rep.details["conflicting_coordinates"] = pd.DataFrame(
        {
            **base(far),
            "distance_m": np.round(d[far], 3),
            "pairs": dist["worst_pair"].to_numpy()[far],
        }
    ).sort_values("distance_m", ascending=False, kind="stable")
    for key, col in (
        ("swapped_coordinates", "swapped"),
        ("implausible_coordinates", "implausible"),
    ):
        m = dist[col].notna().to_numpy()
        rep.summary[key] = int(m.sum())
        rep.details[key] = pd.DataFrame({**base(m), "pair": dist[col].astype(object).to_numpy()[m]})
    complete = ~np.isnan(dist[[f"easting_{p}" for p in PAIR_LABELS]].to_numpy()).all(axis=1)
    rep.summary["no_coordinates"] = int((~complete).sum())
    rep.details["no_coordinates"] = pd.DataFrame(base(~complete))
    valid_d = d[~np.isnan(d)]
    rep.distance_stats = (
        {
            "median": float(np.median(valid_d)),
            "p99": float(np.percentile(valid_d, 99)),
            "max": float(valid_d.max()),
            "compared_rows": int(valid_d.size),
        }
        if valid_d.size
        else {"median": None, "p99": None, "max": None, "compared_rows": 0}
    )

    # Every documented rule, from the rejects.
    violation_ids = [
        k
        for k, r in RULES.items()
        if r.severity == "violation" and r.kind != "coordinates" and endpoint in r.endpoints
    ]
    violation_ids.append("incomplete_coordinates")
    for rule_id in violation_ids:
        sub = rejects[rejects["rule"] == rule_id]
        rep.summary[rule_id] = len(sub)
        rep.details[rule_id] = _detail_of_rejects(rule_id, sub)

    # Notices.
    notice_ids = []
    for finding in notices(gdf, entrance_floor=entrance_floor):
        m = np.asarray(finding.mask, dtype=bool)
        rep.summary[finding.rule] = int(m.sum())
        notice_ids.append(finding.rule)
        # a field the input does not carry has no finding rows; its column in the detail is empty
        values = (
            _as_objects(gdf[finding.field])[m]
            if finding.field in gdf
            else np.full(int(m.sum()), None, dtype=object)
        )
        detail = {**base(m), finding.field: values}
        if finding.rule in ("floor_disagreements", "apartment_above_top_floor"):
            detail["implied_floor"] = np.asarray(finding.detail, dtype=object)[m]
            if finding.rule == "apartment_above_top_floor" and "floors" in gdf:
                detail["floors"] = _as_objects(gdf["floors"])[m]
        rep.details[finding.rule] = pd.DataFrame(detail)

    rep.problem_keys = (*COORDINATE_PROBLEMS, *violation_ids)
    rep.notice_keys = tuple(notice_ids)
    rep.summary = {k: rep.summary.get(k, 0) for k in (*rep.problem_keys, *rep.notice_keys)}
    rep.details = {k: rep.details[k] for k in rep.summary if k in rep.details}

    derived = {"coord_source", "geometry", "kommunkod", "construction_year_placeholder"}
    rep.fields = {
        "unknown_fields": [c for c in gdf.columns if c not in FIELD_NAMES and c not in derived],
        "absent_fields": [c for c in FIELD_NAMES if c not in gdf.columns],
        "coordinate_fields": [c for c in COORDINATE_FIELDS if c in gdf.columns],
    }
    return rep


def _as_objects(s: pd.Series) -> np.ndarray:
    if isinstance(s.dtype, pd.ArrowDtype):
        return np.array(
            s.array._pa_array.to_pylist() if hasattr(s.array, "_pa_array") else list(s),
            dtype=object,
        )
    return s.astype(object).to_numpy()


def _detail_of_rejects(rule_id: str, sub: pd.DataFrame) -> pd.DataFrame:
    """The rows behind one rule's count, from the rejects table."""
    out = pd.DataFrame(
        {"row": sub["row"].to_numpy(dtype=object), "id": sub["id"].to_numpy(dtype=object)}
    )
    if sub["file"].notna().any() and sub["file"].nunique() > 1:
        out.insert(0, "file", sub["file"].to_numpy(dtype=object))
    if rule_id == "bad_apartment_numbers":
        out["apartment_nr"] = sub["value"].to_numpy(dtype=object)
        out["problem"] = sub["detail"].to_numpy(dtype=object)
        return out
    out["field"] = sub["field"].to_numpy(dtype=object)
    out["value"] = sub["value"].to_numpy(dtype=object)
    if sub["detail"].notna().any():
        out["detail"] = sub["detail"].to_numpy(dtype=object)
    out["action"] = sub["action"].to_numpy(dtype=object)
    return out


def _rules_of_frame(gdf: pd.DataFrame, *, endpoint: str, first_row: int) -> pd.DataFrame:
    """The rejects of a frame handed over without its reader's rejects (rules applied anew)."""
    raw = pd.DataFrame(gdf.drop(columns=[c for c in ("geometry",) if c in gdf.columns]))

    def locate(p: int) -> dict:
        return {"file": None, "row": p + first_row}

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            _, rejects = to_canonical(
                raw, locate=locate, endpoint=endpoint, warn=False, with_rejects=True
            )
        except CoordinateError:
            # A whole frame in another axis order: the coordinate checks report it; the rules
            # are applied with the pairs exchanged.
            _, rejects = to_canonical(
                raw, locate=locate, endpoint=endpoint, warn=False, with_rejects=True, swap=True
            )
    return rejects


def check_file(
    source: str | os.PathLike,
    *,
    threshold: float = 5.0,
    entrance_floor: float = 0.0,
    endpoint: str = "registry",
) -> CheckReport:
    """Read a registry file and check it (:func:`check_registry`): ``vggeo registry check``.

    Row numbers in the report are the file's: lines of JSON lines, lines of a CSV (its header
    is line 1), rows of GeoParquet and GeoPackage. Reading's own warnings are not shown: the
    report lists unknown codes, rejects, missing coordinates and unknown fields itself.

    Raises
    ------
    VggeoError
        The file cannot be read as a registry (then it cannot be checked either).
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gdf, rejects = read_registry(source, endpoint=endpoint, with_rejects=True)
    first_row = 2 if FORMATS.get(Path(source).suffix.lower()) == "csv" else 1
    return check_registry(
        gdf,
        threshold=threshold,
        entrance_floor=entrance_floor,
        rejects=rejects,
        endpoint=endpoint,
        first_row=first_row,
    )
