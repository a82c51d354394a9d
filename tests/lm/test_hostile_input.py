"""Hostile provision files: geometry bounded and refused by name, never shifting a neighbour;
one identity, one object.

Every file is read both ways — the compiled path (forced with small chunks) and member by member —
and the two must agree (``test_compiled.read_both``); the truth they are held to is the square
each provision was written with, not either reader.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import shapely
from hostile import (
    SQUARE,
    circle_by_centre,
    data_file,
    delivery,
    ident,
    one_file_delivery,
    polygon,
    provision,
)
from test_compiled import assert_same, read_both

from vggeo.errors import GeometryError, GeometryLimitError, IntegrityError, LimitError
from vggeo.lm import read_bestammelser


def _square(i: int) -> tuple[str, shapely.Polygon]:
    """Provision i's own square (northing first in the text), and the polygon it must become."""
    n, e = 6_500_000 + 1000 * i, 600_000 + 500 * (i % 7)
    text = f"{n} {e} {n} {e + 100} {n + 100} {e + 100} {n + 100} {e} {n} {e}"
    return text, shapely.Polygon([(e, n), (e + 100, n), (e + 100, n + 100), (e, n + 100)])


def _plain_file(n: int, bad: dict[int, str]) -> tuple[str, dict[str, shapely.Polygon]]:
    """n provisions with distinct squares; member i's posList replaced by ``bad[i]`` where given."""
    members, truth = [], {}
    for i in range(n):
        text, poly = _square(i)
        members.append(provision(ident(i), polygon(bad.get(i, text))))
        truth[ident(i)] = poly
    return data_file(members).decode(), truth


@pytest.mark.parametrize("extra", ["6500000", "6500000 600000 1"], ids=["odd", "three-extra"])
def test_odd_poslist_refused_naming_the_feature_in_both_readers(extra, tmp_path, monkeypatch):
    text, _ = _plain_file(300, {200: _square(200)[0] + " " + extra})
    a, b, _ = read_both(text, tmp_path, monkeypatch)
    assert_same(a, b)
    assert isinstance(b, GeometryError)
    assert ident(200) in str(b) and "is not a multiple of the dimension 2" in str(b)


def test_kept_bad_geometry_never_shifts_a_neighbour(tmp_path, monkeypatch):
    """Odd rings before, between and after good ones; the good ones are exactly what was written."""
    bad = {i: _square(i)[0] + " 6500000" for i in (0, 1, 57, 150, 151, 299)}
    text, truth = _plain_file(300, bad)
    a, b, _ = read_both(text, tmp_path, monkeypatch, on_geometry_error="keep")
    assert_same(a, b)
    got = b.provisions.set_index("provision_id").geometry
    assert sorted(i for i, _ in b.geometry_errors) == sorted(ident(i) for i in bad)
    for i in range(300):
        g = got[ident(i)]
        if i in bad:
            assert g.is_empty
        else:
            assert shapely.equals_exact(g, shapely.MultiPolygon([truth[ident(i)]]), tolerance=0), i


def test_three_d_ring_with_a_missing_value_kept_alone(tmp_path, monkeypatch):
    v = SQUARE.split()
    pos = " ".join(f"{n} {e} 7" for n, e in zip(v[::2], v[1::2], strict=True))  # 15 values
    in_3d = '<gml:posList srsDimension="3">'
    members = [
        provision(ident(0), polygon(pos).replace("<gml:posList>", in_3d)),
        provision(ident(1), polygon(pos.removesuffix(" 7")).replace("<gml:posList>", in_3d)),
        provision(ident(2), polygon()),
    ]
    a, b, _ = read_both(
        data_file(members).decode(), tmp_path, monkeypatch, on_geometry_error="keep"
    )
    assert_same(a, b)
    [(who, msg)] = b.geometry_errors
    assert who == ident(1) and "not a multiple of the dimension 3" in msg
    got = b.provisions.set_index("provision_id").geometry
    assert got[ident(0)].equals(got[ident(2)]) and not got[ident(0)].is_empty


def _circles(radius, n: int = 1000) -> str:
    return data_file(
        [provision(ident(i), circle_by_centre(6_580_000 + i, 674_000, radius)) for i in range(n)]
    ).decode()


def test_thousand_huge_circles_refused_by_the_arc_cap(tmp_path, monkeypatch):
    a, b, _ = read_both(_circles(300_000), tmp_path, monkeypatch)
    assert_same(a, b)
    assert (
        isinstance(b, GeometryLimitError)
        and ident(0) in str(b)
        and "VGGEO_MAX_ARC_VERTICES" in str(b)
    )
    a, b, _ = read_both(_circles(300_000), tmp_path, monkeypatch, on_geometry_error="keep")
    assert_same(a, b)
    assert len(b.geometry_errors) == 1000 and b.provisions.geometry.is_empty.all()


@pytest.mark.parametrize("radius", ["1e15", "1e308", "0", "-1", "nan", "1e-300"])
def test_no_radius_crashes_either_reader(radius, tmp_path, monkeypatch):
    a, b, _ = read_both(_circles(radius, 50), tmp_path, monkeypatch, on_geometry_error="keep")
    assert a.geometry_errors == b.geometry_errors
    # Byte for byte: a collapsed 1e-300 m circle is not 'equal' to itself by shapely's rules.
    assert list(a.provisions.geometry.to_wkb()) == list(b.provisions.geometry.to_wkb())
    coords = shapely.get_coordinates(b.provisions.geometry.values)
    assert np.isfinite(coords).all() and len(coords) < 50 * 10


def test_many_circles_under_the_arc_cap_meet_the_file_cap(tmp_path, monkeypatch):
    """39 km circles pass the per-arc cap one by one; together they are refused — kept or not."""
    for keep in ("raise", "keep"):
        a, b, _ = read_both(_circles(39_000), tmp_path, monkeypatch, on_geometry_error=keep)
        assert_same(a, b)
        assert isinstance(b, LimitError) and not isinstance(b, GeometryError)
        assert "VGGEO_MAX_ARC_VERTICES_PER_KIB" in str(b)


def test_small_circles_are_read_whole(tmp_path, monkeypatch):
    """Fornlämning-sized circles (80 m) in every member: far inside every cap, each to 2 mm."""
    a, b, _ = read_both(_circles(80), tmp_path, monkeypatch)
    assert_same(a, b)
    g = b.provisions.geometry
    assert not g.is_empty.any() and not b.geometry_errors
    assert np.allclose(g.area, np.pi * 80**2, rtol=1e-4)


def test_file_cap_is_a_setting(tmp_path, monkeypatch):
    monkeypatch.setenv("VGGEO_MAX_ARC_VERTICES_PER_KIB", "20000")
    a, b, _ = read_both(_circles(39_000, 200), tmp_path, monkeypatch)
    assert_same(a, b)
    assert len(b.provisions) == 200 and not b.provisions.geometry.is_empty.any()


# The peak of this process's own memory: VmHWM belongs to the address space exec made (getrusage's
# ru_maxrss would carry the pytest process's peak over the fork and exec).
_PEAK = """
import sys
from pathlib import Path
from vggeo.cli import main
sys.argv = ["vggeo", *sys.argv[1:]]
try:
    main()
except SystemExit as e:
    code = e.code
hwm = next(line.split()[1] for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print("PEAK", hwm, code)
"""


@pytest.mark.slow
def test_peak_memory_of_the_thousand_circle_delivery_stays_small(tmp_path):
    """The issue's case: 1 000 circles of 300 km, a 10 KB delivery. Was a 2.2 GiB peak."""
    members = [
        provision(ident(i), circle_by_centre(6_580_000, 674_000, 300_000)) for i in range(1000)
    ]
    zipped = one_file_delivery(tmp_path / "circles.zip", members)
    assert zipped.stat().st_size < 20_000
    store = tmp_path / "store.gpkg"
    r = subprocess.run(
        [
            sys.executable,
            "-c",
            _PEAK,
            "ingest",
            str(zipped),
            "--store",
            str(store),
            "--no-progress",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    peak_kib, code = r.stdout.split("PEAK")[1].split()
    assert code == "2" and "VGGEO_MAX_ARC_VERTICES" in r.stderr, r.stderr
    assert int(peak_kib) < 400 * 1024, f"peak {int(peak_kib) // 1024} MiB"


def test_file_with_one_huge_circle_names_the_file(tmp_path):
    f = tmp_path / "markreglerandebestammelse_1.xml"
    f.write_bytes(
        data_file(
            [
                provision(ident(0), polygon()),
                provision(ident(1), circle_by_centre(6_580_000, 674_000, "1e15")),
            ]
        )
    )
    with pytest.raises(GeometryLimitError) as info:
        read_bestammelser(f)
    assert str(f) in str(info.value) and ident(1) in str(info.value)


# --- one identity, one object ---------------------------------------------------------------------


def test_identity_twice_in_a_file_refused_naming_it(tmp_path, monkeypatch):
    text, _ = _plain_file(300, {})
    twin = provision(ident(17), polygon(_square(250)[0]))
    text = text.replace(
        "</MarkreglerandeBestammelseResponse>", twin + "</MarkreglerandeBestammelseResponse>"
    )
    a, b, _ = read_both(text, tmp_path, monkeypatch)
    assert_same(a, b)
    assert isinstance(b, IntegrityError)
    assert f"provision {ident(17)} occurs 2 times" in str(
        b
    ) and "markreglerandebestammelse_1.xml" in str(b)


def test_identity_in_two_files_of_a_set_names_both(tmp_path):
    first = data_file([provision(ident(i), polygon(_square(i)[0])) for i in range(3)])
    second = data_file([provision(ident(i), polygon(_square(i)[0])) for i in (3, 1)])
    zipped = delivery(
        tmp_path / "d.zip",
        [
            ("markreglerandebestammelse_1.xml", first, 3),
            ("markreglerandebestammelse_2.xml", second, 2),
        ],
    )
    with pytest.raises(IntegrityError) as info:
        read_bestammelser(zipped)
    msg = str(info.value)
    assert (
        ident(1) in msg
        and "markreglerandebestammelse_1.xml" in msg
        and "markreglerandebestammelse_2.xml" in msg
    )


# --- inskrivning: one inskrivningsfastighet, one object per set --------------------------------------


def _with_member_twice(unpacked: Path, set_name: str, *, second_file: bool) -> Path:
    """The unpacked delivery with the first member of ``set_name`` written again, either at the end
    of its own file or as a second file of the set; the metadata's counts and sizes made true."""
    data = unpacked / f"{set_name}_1.xml"
    text = data.read_text(encoding="utf-8")
    start = text.index("<InskrivningMember>")
    member = text[start : text.index("</InskrivningMember>", start) + len("</InskrivningMember>")]
    end = text.rindex("</")
    files = {data.name: None}
    if second_file:
        other = unpacked / f"{set_name}_2.xml"
        other.write_text(text[:start] + member + "\n" + text[end:], encoding="utf-8")
        files[other.name] = 1
    else:
        data.write_text(text[:end] + member + "\n" + text[end:], encoding="utf-8")
    meta = unpacked / f"{set_name}_metadata.xml"
    m = meta.read_text(encoding="utf-8")
    (n,) = re.findall(r"<antalObjekt>(\d+)</antalObjekt>", m)
    fil = re.search(r"<Fil>.*?</Fil>", m).group(0)
    entries = []
    for name, count in files.items():
        count = count if count is not None else int(n) + (0 if second_file else 1)
        size = (unpacked / name).stat().st_size
        entries.append(
            re.sub(
                r"<filstorlek>\d+</filstorlek>",
                f"<filstorlek>{size}</filstorlek>",
                fil.replace(data.name, name).replace(
                    f"<antalObjekt>{n}<", f"<antalObjekt>{count}<"
                ),
            )
        )
    total = int(n) + 1
    total_size = sum((unpacked / name).stat().st_size for name in files)
    m = m.replace(fil, "".join(entries)).replace(
        f"<totaltAntalObjekt>{n}<", f"<totaltAntalObjekt>{total}<"
    )
    m = re.sub(r"(</totaltAntalObjekt><filstorlek>)\d+", rf"\g<1>{total_size}", m)
    meta.write_text(m, encoding="utf-8")
    return unpacked


@pytest.mark.parametrize("second_file", [False, True], ids=["same-file", "second-file"])
@pytest.mark.parametrize("set_name", ["inskrivningsfastighet", "inskrivet_agande", "inteckning"])
@pytest.mark.parametrize("form", ["element", "attribute"])
def test_inskrivning_object_twice_in_a_set_refused_naming_it(
    set_name, second_file, form, tmp_path, inskrivning_deliveries, unpack
):
    """Seed 003: a set's files hold its information per inskrivningsfastighet, counted per file;
    the same one twice was applied twice (its rows doubled in the store, exit 0). The object's
    identity may be written as an attribute of its element too."""
    from click.testing import CliRunner

    from vggeo.cli import cli
    from vggeo.lm import read_inskrivning
    from vggeo.lm.package import open_delivery

    folder = unpack(inskrivning_deliveries[0], tmp_path / "d")
    unpacked = next(p.parent for p in folder.rglob(f"{set_name}_1.xml"))
    data = unpacked / f"{set_name}_1.xml"
    ident_ = data.read_text().split("<objektidentitet>")[1].split("<")[0]
    if form == "attribute":
        data.write_text(
            re.sub(
                r"<Inskrivningsfastighet><objektidentitet>([^<]+)</objektidentitet>",
                r'<Inskrivningsfastighet objektidentitet="\1">',
                data.read_text(encoding="utf-8"),
            ),
            encoding="utf-8",
        )
        assert f'objektidentitet="{ident_}"' in data.read_text()
    _with_member_twice(unpacked, set_name, second_file=second_file)
    with open_delivery(folder) as d:
        d.verify()  # the metadata is true: the refusal is the repeated object's, not the counts'
        with pytest.raises(IntegrityError) as info:
            read_inskrivning(d, sets=[set_name])
    msg = str(info.value)
    assert ident_ in msg and f"{set_name}_1.xml" in msg
    assert (f"{set_name}_2.xml" in msg) == second_file
    store = tmp_path / "s.gpkg"
    r = CliRunner().invoke(cli, ["ingest", str(folder), "--store", str(store), "--no-progress"])
    assert r.exit_code == 2 and ident_ in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not store.exists()
