"""Valueguard's residential registry: field list, readers, checks and the API client.

>>> from vggeo.registry import read_registry, check_registry
"""

from vggeo.registry.checks import CheckReport, check_registry
from vggeo.registry.fields import FIELD_NAMES, FIELDS, Field
from vggeo.registry.readers import read_registry, to_canonical, write_registry

__all__ = ["FIELDS", "FIELD_NAMES", "Field", "read_registry", "to_canonical", "write_registry",
           "check_registry", "CheckReport"]  # fmt: skip
