"""``vggeo.tiles.basemap.basemap_spec``: the spec ``vggeo tiles basemap`` builds from its options."""

from vggeo.tiles.basemap import DEFAULT_SPEC, basemap_spec


def test_defaults_are_the_default_spec():
    assert basemap_spec() == DEFAULT_SPEC


def test_context_is_never_finer_nor_deeper_than_the_detail():
    spec = basemap_spec(resolution="f", maxzoom=6, country="no", detail_bbox=(10, 58, 12, 60))
    assert (spec.resolution, spec.context_resolution) == ("f", "h")
    assert spec.context_maxzoom == 5 and spec.country == "NO"
    assert spec.detail_bbox == (10, 58, 12, 60) and spec.context_bbox == DEFAULT_SPEC.context_bbox
    coarse = basemap_spec(resolution="l", maxzoom=12)
    assert (
        coarse.context_resolution == "l" and coarse.context_maxzoom == DEFAULT_SPEC.context_maxzoom
    )
    coarse.check()
