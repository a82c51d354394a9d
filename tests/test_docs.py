"""The examples in docstrings run and say what they claim."""

import doctest

import pytest

import vggeo
import vggeo.crs


def test_public_surface_resolves():
    for name in vggeo.__all__:
        assert getattr(vggeo, name) is not None, name


@pytest.mark.parametrize("module", [vggeo, vggeo.crs])
def test_docstring_examples(module):
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0
    assert result.failed == 0
