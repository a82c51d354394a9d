"""Consistency checks of a registry frame, with a report for people and one for machines.

What is checked, each vectorised over the whole frame:

* **coordinates** — every row's SWEREF 99, RT 90 and WGS 84 pairs are transformed to
  EPSG:3006 and compared; the largest distance between any two of them is reported for rows
  beyond ``threshold`` (default 5 m; real rows agree to about a metre). Swapped or implausible
  pairs and half pairs are reported too.
* **apartment numbers** — impossible lägenhetsnummer (:mod:`vggeo.apartment`), and rows whose
  number implies a floor other than Valueguard's ``floor`` estimate.
* **codes** — values outside their documented code lists (:mod:`vggeo.codes`).
* **fields** — unknown fields kept, documented fields absent.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["CheckReport", "check_registry", "coordinate_distances"]

PAIR_LABELS = ("sweref99", "rt90", "wgs84")


def coordinate_distances(frame, *, route: str = "direct") -> pd.DataFrame:
    """Positions implied by each coordinate pair, and the largest distance between them.

    Returns
    -------
    DataFrame (same index): ``easting_<pair>``, ``northing_<pair>`` in EPSG:3006 for each of
    ``sweref99``, ``rt90``, ``wgs84`` (NaN where the pair is incomplete), ``max_distance``
    (metres, NaN where fewer than two pairs are complete), ``worst_pair`` (e.g.
    ``"sweref99/rt90"``), ``swapped`` and ``implausible`` (the pair names, or missing).
    """
    from vggeo.crs import VALUEGUARD_PAIRS, detect_axis_problems, transform

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
            nn, ee = transform(a[use], b[use], src=code, dst=3006, in_order=order,
                               out_order="ne", route=route, check="off")  # fmt: skip
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
    out["worst_pair"] = pd.Categorical(worst, categories=[
        "sweref99/rt90", "sweref99/wgs84", "rt90/wgs84"])  # fmt: skip
    out["swapped"] = pd.Categorical(swapped, categories=list(PAIR_LABELS))
    out["implausible"] = pd.Categorical(implausible, categories=list(PAIR_LABELS))
    return pd.DataFrame(out, index=frame.index)


@dataclass
class CheckReport:
    """What :func:`check_registry` found.

    ``summary`` holds counts; each entry of ``details`` is a DataFrame with the rows behind one
    count (``row`` is the 1-based position in the frame, ``id`` the residence id).
    """

    n_rows: int
    threshold_m: float
    summary: dict[str, int] = field(default_factory=dict)
    details: dict[str, pd.DataFrame] = field(default_factory=dict)
    fields: dict[str, list[str]] = field(default_factory=dict)
    distance_stats: dict[str, float | None] = field(default_factory=dict)

    #: Counts that make a registry fail the check (the CLI exits non-zero on them with --fail).
    PROBLEMS = ("conflicting_coordinates", "swapped_coordinates", "implausible_coordinates",
                "no_coordinates", "bad_apartment_numbers", "unknown_codes")  # fmt: skip

    @property
    def ok(self) -> bool:
        return not any(self.summary.get(k, 0) for k in self.PROBLEMS)

    def to_dict(self, *, max_rows: int | None = 100) -> dict:
        """JSON-ready report; at most ``max_rows`` example rows per finding (None: all)."""

        def rows(df: pd.DataFrame) -> list[dict]:
            d = df if max_rows is None else df.head(max_rows)
            return json.loads(d.to_json(orient="records", date_format="iso"))

        return {
            "n_rows": self.n_rows,
            "ok": self.ok,
            "threshold_m": self.threshold_m,
            "summary": dict(self.summary),
            "distance_m": dict(self.distance_stats),
            "fields": dict(self.fields),
            "details": {k: rows(v) for k, v in self.details.items()},
        }

    def to_json(self, **kwargs) -> str:
        return json.dumps(self.to_dict(**kwargs), ensure_ascii=False, indent=2)

    def to_table(self, *, max_rows: int = 10) -> str:
        """A plain-text report: one line per count, then the first rows of each finding."""
        lines = [f"{self.n_rows} rows checked (coordinate threshold {self.threshold_m:g} m)"]
        width = max(len(k) for k in self.summary) if self.summary else 0
        for k, v in self.summary.items():
            mark = "!" if (k in self.PROBLEMS and v) else " "
            lines.append(f" {mark} {k.ljust(width)}  {v:>10}")
        if self.distance_stats.get("max") is not None:
            st = self.distance_stats
            lines.append(f"   distance between coordinate pairs: median {st['median']:.3f} m, "
                         f"p99 {st['p99']:.3f} m, max {st['max']:.3f} m")  # fmt: skip
        for k in ("unknown_fields", "absent_fields"):
            if self.fields.get(k):
                lines.append(f"   {k.replace('_', ' ')}: {', '.join(self.fields[k])}")
        for k, df in self.details.items():
            if len(df):
                lines.append("")
                lines.append(f"{k} (first {min(max_rows, len(df))} of {len(df)}):")
                lines.append(df.head(max_rows).to_string(index=False))
        lines.append("")
        lines.append("OK" if self.ok else "PROBLEMS FOUND")
        return "\n".join(lines)


def check_registry(
    gdf,
    *,
    threshold: float = 5.0,
    entrance_floor: float = 0.0,
    route: str = "direct",
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
    """
    from vggeo.apartment import floor_disagreements, parse_apartment_numbers
    from vggeo.codes import get_code_list, unknown_mask
    from vggeo.registry.fields import COORDINATE_FIELDS, FIELD_NAMES, FIELDS

    n = len(gdf)
    rep = CheckReport(n_rows=n, threshold_m=float(threshold))
    pos = np.arange(1, n + 1)
    ids = gdf["id"].to_numpy() if "id" in gdf else np.full(n, None)

    def base(mask: np.ndarray) -> dict:
        return {"row": pos[mask], "id": ids[mask]}

    # Coordinates.
    dist = coordinate_distances(gdf, route=route)
    d = dist["max_distance"].to_numpy()
    far = ~np.isnan(d) & (d > threshold)
    rep.summary["conflicting_coordinates"] = int(far.sum())
    rep.details["conflicting_coordinates"] = pd.DataFrame(
        {**base(far), "distance_m": np.round(d[far], 3),
         "pairs": dist["worst_pair"].to_numpy()[far]}  # fmt: skip
    ).sort_values("distance_m", ascending=False, kind="stable")
    for key, col in (("swapped_coordinates", "swapped"), ("implausible_coordinates", "implausible")):
        m = dist[col].notna().to_numpy()
        rep.summary[key] = int(m.sum())
        rep.details[key] = pd.DataFrame({**base(m), "pair": dist[col].astype(object).to_numpy()[m]})
    complete = ~np.isnan(dist[[f"easting_{p}" for p in PAIR_LABELS]].to_numpy()).all(axis=1)
    rep.summary["no_coordinates"] = int((~complete).sum())
    rep.details["no_coordinates"] = pd.DataFrame(base(~complete))
    valid_d = d[~np.isnan(d)]
    rep.distance_stats = (
        {"median": float(np.median(valid_d)), "p99": float(np.percentile(valid_d, 99)),
         "max": float(valid_d.max()), "compared_rows": int(valid_d.size)}  # fmt: skip
        if valid_d.size else {"median": None, "p99": None, "max": None, "compared_rows": 0}
    )

    # Apartment numbers.
    if "apartment_nr" in gdf:
        parsed = parse_apartment_numbers(gdf["apartment_nr"])
        bad = ~parsed["valid"].to_numpy(dtype=bool)
        rep.summary["bad_apartment_numbers"] = int(bad.sum())
        rep.details["bad_apartment_numbers"] = pd.DataFrame(
            {**base(bad), "apartment_nr": gdf["apartment_nr"].astype(object).to_numpy()[bad],
             "problem": parsed["problem"].astype(object).to_numpy()[bad]}  # fmt: skip
        )
        if "floor" in gdf:
            fd = floor_disagreements(gdf["apartment_nr"], gdf["floor"],
                                     gdf["floors"] if "floors" in gdf else None,
                                     entrance_floor=entrance_floor)  # fmt: skip
            m = fd["disagrees"].to_numpy()
            rep.summary["floor_disagreements"] = int(m.sum())
            rep.details["floor_disagreements"] = pd.DataFrame(
                {**base(m), "apartment_nr": parsed["apartment_nr"].astype(object).to_numpy()[m],
                 "implied_floor": fd["implied_floor"].astype(object).to_numpy()[m],
                 "floor": fd["floor"].to_numpy()[m]}  # fmt: skip
            )
            a = fd["above_floors"].to_numpy()
            rep.summary["apartment_above_top_floor"] = int(a.sum())
            rep.details["apartment_above_top_floor"] = pd.DataFrame(
                {**base(a), "apartment_nr": parsed["apartment_nr"].astype(object).to_numpy()[a],
                 "floors": pd.to_numeric(gdf["floors"], errors="coerce").to_numpy()[a]}  # fmt: skip
            )

    # Codes.
    frames = []
    for f in FIELDS:
        if f.kind != "code" or f.name not in gdf:
            continue
        m = unknown_mask(gdf[f.name], f.codes or f.name)
        if m.any():
            frames.append(pd.DataFrame({**base(m), "field": f.name,
                                        "value": gdf[f.name].astype(object).to_numpy()[m]}))  # fmt: skip
        get_code_list(f.codes or f.name)
    unk = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        {"row": [], "id": [], "field": [], "value": []})  # fmt: skip
    rep.summary["unknown_codes"] = len(unk)
    rep.details["unknown_codes"] = unk

    derived = {"coord_source", "geometry"}
    rep.fields = {
        "unknown_fields": [c for c in gdf.columns if c not in FIELD_NAMES and c not in derived],
        "absent_fields": [c for c in FIELD_NAMES if c not in gdf.columns],
        "coordinate_fields": [c for c in COORDINATE_FIELDS if c in gdf.columns],
    }
    return rep
