"""The examples in the registry modules' docstrings run and say what they claim."""

from __future__ import annotations

import doctest

import pytest

import vggeo.apartment
import vggeo.codes
import vggeo.registry
import vggeo.registry.coordinates
import vggeo.registry.rules


@pytest.mark.parametrize(
    "module",
    [
        vggeo.codes,
        vggeo.apartment,
        vggeo.registry,
        vggeo.registry.rules,
        vggeo.registry.coordinates,
    ],
)
def test_docstring_examples(module):
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0
    assert result.failed == 0
