"""Valueguard's residential registry: field list, readers, writers, checks and the API client.

=====================  ===========================================================
module                 what
=====================  ===========================================================
``fields``             the field list and search criteria, declared once
``rules``              every documented rule of the field list, quoted, checked vectorised
``coordinates``        Valueguard's three coordinate pairs → EPSG:3006 points and their source
``canonical``          raw frame → canonical GeoDataFrame (types, codes, rules, rejects,
                       kommunkod, geometry)
``readers``            API pages, JSON lines, CSV, GeoParquet, GeoPackage → canonical
``writers``            canonical → GeoParquet, GeoPackage, CSV, JSON lines (atomic); rejects
``checks``             rules, coordinates, apartment numbers, notices → report + exit code
``client``             httpx client: tokens (httpx.Auth), paging, retries, resumable fetch
=====================  ===========================================================

>>> from vggeo.registry import read_registry, check_registry
"""

from vggeo.registry.checks import CheckReport, check_registry
from vggeo.registry.coordinates import VALUEGUARD_PAIRS, valueguard_points
from vggeo.registry.fields import FIELD_NAMES, FIELDS, Field
from vggeo.registry.readers import read_api_pages, read_registry, to_canonical
from vggeo.registry.rules import RULES, Rule
from vggeo.registry.writers import write_registry, write_rejects

__all__ = [
    "FIELDS",
    "FIELD_NAMES",
    "Field",
    "RULES",
    "Rule",
    "read_registry",
    "read_api_pages",
    "to_canonical",
    "write_registry",
    "write_rejects",
    "check_registry",
    "CheckReport",
    "valueguard_points",
    "VALUEGUARD_PAIRS",
]
