"""Valueguard's residential registry: field list, readers, writers, checks and the API client.

=====================  ===========================================================
module                 what
=====================  ===========================================================
``fields``             the field list and search criteria, declared once
``canonical``          raw frame → canonical GeoDataFrame (types, codes, geometry)
``readers``            API pages, JSON lines, CSV, GeoParquet, GeoPackage → canonical
``writers``            canonical → GeoParquet, GeoPackage, CSV, JSON lines (atomic)
``checks``             coordinate, apartment-number, code and field checks + report
``client``             httpx client: tokens, paging, retries, resumable fetch
=====================  ===========================================================

>>> from vggeo.registry import read_registry, check_registry
"""

from vggeo.registry.checks import CheckReport, check_registry
from vggeo.registry.fields import FIELD_NAMES, FIELDS, Field
from vggeo.registry.readers import read_api_pages, read_registry, to_canonical
from vggeo.registry.writers import write_registry

__all__ = ["FIELDS", "FIELD_NAMES", "Field", "read_registry", "read_api_pages", "to_canonical",
           "write_registry", "check_registry", "CheckReport"]  # fmt: skip
