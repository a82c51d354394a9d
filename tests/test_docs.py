"""The examples in docstrings run and say what they claim."""

import doctest

import pytest

import vggeo.crs


@pytest.mark.parametrize("module", [vggeo.crs])
def test_docstring_examples(module):
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0
    assert result.failed == 0
