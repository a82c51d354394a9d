"""The version, in one place: ``pyproject.toml`` reads it from here (``[tool.setuptools.dynamic]``).

A literal rather than ``importlib.metadata.version("vggeo")``, which scans the installed
distributions and costs ~30 ms on every ``import vggeo``.
"""

__version__ = "0.1.0"
