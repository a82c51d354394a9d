"""Exports for other tools: a QGIS-ready GeoPackage and spatially sorted GeoParquet.

* :func:`write_gpkg` — every table as a layer, in a CRS of the caller's choice, with field aliases
  (``gpkg_data_columns``), default QGIS styles (``layer_styles``, QML and SLD) and the relation
  between provisions and their affected properties (a SQLite foreign key GDAL reports as a
  relationship, and a QGIS relation in the styles).
* :func:`export_store_gpkg` — the same, streamed from a store in bounded memory.
* :func:`write_parquet` — GeoParquet 1.1 with a ``bbox`` covering column, Hilbert-sorted.
* :func:`read_store_tables`, :func:`open_store_sources` — the one place exports and joins read a
  store (whole tables, or tables to stream in batches).
"""

from vggeo.exports.gpkg import export_layers, export_store_gpkg, write_gpkg
from vggeo.exports.parquet import write_parquet
from vggeo.exports.source import open_store_sources, read_store_tables

__all__ = [
    "export_layers",
    "export_store_gpkg",
    "open_store_sources",
    "read_store_tables",
    "write_gpkg",
    "write_parquet",
]
