"""The synthetic delivery generator: realistic, consistent with its metadata, reproducible."""

from __future__ import annotations

import zipfile

import numpy as np
import shapely

from vggeo.lm import open_delivery, read_bestammelser
from vggeo.sample.delivery import generate_deliveries
from vggeo.sample.towns import swedish_towns

SET = "markreglerandebestammelse"


def _xml_text(path) -> str:
    with zipfile.ZipFile(path) as outer:
        inner_name = next(n for n in outer.namelist() if n.endswith(f"{SET}.zip"))
        import io

        with zipfile.ZipFile(io.BytesIO(outer.read(inner_name))) as inner:
            return "".join(inner.read(n).decode() for n in inner.namelist())


def test_every_delivery_verifies(bestammelse_deliveries, inskrivning_deliveries):
    for p in [*bestammelse_deliveries, *inskrivning_deliveries]:
        with open_delivery(p) as d:
            d.verify()


def test_realistic_provisions(bestammelse_deliveries):
    d = read_bestammelser(bestammelse_deliveries[0])
    p = d.provisions
    g = p.geometry
    assert (shapely.get_num_interior_rings(shapely.get_geometry(g.values, 0)) > 0).any()  # holes
    assert (shapely.get_num_geometries(g.values) > 1).any()  # multipart
    text = _xml_text(bestammelse_deliveries[0])
    assert "<gml:Arc>" in text and "<gml:Circle>" in text and "<gml:Surface" in text
    assert 'srsName="urn:ogc:def:crs:EPSG::3006"' in text
    plans = p[p["provision_type"] == "plan"]
    towns = swedish_towns()
    tree = shapely.STRtree(shapely.points(towns["easting"], towns["northing"]))
    _, dist = tree.query_nearest(plans.geometry.centroid.values, return_distance=True)
    assert np.median(dist) < 3000  # block-scale plans in towns
    assert plans.geometry.area.median() < 100_000
    reserves = p[p["provision_type"] == "naturvardsbestammelse"]
    assert reserves.geometry.area.median() > 500_000  # large nature reserves
    strips = p[(p["provision_type"] == "ovrig_bestammelse") & (p["plan_type"] == "strandskydd")]
    if len(strips):
        a, per = strips.geometry.area, strips.geometry.length
        assert (a / per < 200).all()  # long thin shoreline strips
    assert (d.decisions.groupby("provision_id").size() >= 1).all()


def test_changes_edit_add_delete(bestammelse_deliveries):
    base = read_bestammelser(bestammelse_deliveries[0]).provisions.set_index("provision_id")
    with open_delivery(bestammelse_deliveries[1]) as d:
        ch = read_bestammelser(d).provisions.set_index("provision_id")
        gone = d.deletions(SET)
    edited = ch.index.intersection(base.index)
    added = ch.index.difference(base.index)
    assert len(edited) and len(added) and gone and gone <= set(base.index)
    newer = ch.loc[edited, "object_version"].dropna() > base.loc[ch.loc[edited, "object_version"].dropna().index, "object_version"]
    assert newer.any()
    assert not gone & set(ch.index)


def test_reproducible(tmp_path):
    a = generate_deliveries(tmp_path / "a", product="bestammelse", n=20, changes=1, seed=9)
    b = generate_deliveries(tmp_path / "b", product="bestammelse", n=20, changes=1, seed=9)
    assert [p.name for p in a] == [p.name for p in b]
    assert [open_delivery(p).checksum for p in a] == [open_delivery(p).checksum for p in b]
    c = generate_deliveries(tmp_path / "c", product="bestammelse", n=20, changes=0, seed=10)
    assert open_delivery(c[0]).checksum != open_delivery(a[0]).checksum


def test_sample_data_is_current(sample_data, tmp_path):
    """The shipped sample deliveries verify, and regenerate bit for bit (README's commands)."""
    for product, n in (("bestammelse", 200), ("inskrivning", 100)):
        shipped = sorted((sample_data / "deliveries" / product).glob("*.zip"))
        assert len(shipped) == 3
        fresh = generate_deliveries(tmp_path / product, product=product, n=n, changes=2, seed=1)
        assert [p.name for p in fresh] == [p.name for p in shipped]
        for a, b in zip(shipped, fresh, strict=True):
            with open_delivery(a) as da, open_delivery(b) as db:
                da.verify()
                assert da.checksum == db.checksum
