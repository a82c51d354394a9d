"""Plain tables to a file the user picked by its extension: GeoParquet, CSV or GeoPackage layers.

What ``vggeo join`` and ``vggeo read`` write (the styled, QGIS-ready export of a whole store is
:func:`vggeo.exports.write_gpkg`). Every file appears complete or not at all
(:func:`vggeo.atomic.atomic_path`); categoricals reach GDAL as text
(:func:`vggeo.frames.categoricals_as_text`); GeoPackages are version 1.3 with DATETIMEs in the
standard's one form.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import pyogrio

from vggeo.atomic import atomic_path
from vggeo.errors import InputError
from vggeo.exports.gpkg import normalise_datetimes
from vggeo.exports.parquet import write_parquet
from vggeo.frames import categoricals_as_text

__all__ = ["TABLE_SUFFIXES", "GpkgLayers", "write_gpkg_layers", "write_table"]

#: The extensions :func:`write_table` knows.
TABLE_SUFFIXES = (".parquet", ".csv", ".gpkg")


def _geometry_name(frame: pd.DataFrame) -> str | None:
    """The active geometry column of a GeoDataFrame that has one, else None."""
    name = getattr(frame, "_geometry_column_name", None)
    return name if name is not None and name in frame.columns else None


def write_gpkg_layers(
    layers: Mapping[str, pd.DataFrame],
    path: str | os.PathLike,
    *,
    geometry_type: str | None = None,
    overwrite: bool = True,
) -> dict[str, int]:
    """Write each table as a layer of one GeoPackage 1.3, atomically.

    Parameters
    ----------
    layers
        Layer name → (Geo)DataFrame; attribute tables become layers without geometry.
    path
        The ``.gpkg`` to write.
    geometry_type
        Declared geometry type of every spatial layer (e.g. ``"MultiPolygon"``; single parts are
        promoted). By default GDAL's choice, with polygons and lines promoted to multi-parts
        whenever a layer holds anything but points.
    overwrite
        Replace an existing file (otherwise it is refused before anything is written).

    Returns
    -------
    dict of layer name → rows written.
    """
    with GpkgLayers(path, geometry_type=geometry_type, overwrite=overwrite) as out:
        for name, frame in layers.items():
            out.append(name, frame)
    return out.rows


#: GDAL's block cache while vggeo writes a GeoPackage, unless the user set GDAL_CACHEMAX: GDAL's
#: default (5 % of RAM, 1.2 GB on a 24 GB machine) fills with the written file's pages, so a
#: streamed write of 200 000 provisions peaked at 926 MB instead of 352 MB, no faster
#: (benchmarks/lm.md).
GDAL_CACHE_MB = 64


def _cap_gdal_cache() -> None:
    """Cap GDAL's block cache at :data:`GDAL_CACHE_MB` unless GDAL_CACHEMAX is set already."""
    if os.environ.get("GDAL_CACHEMAX") or pyogrio.get_gdal_config_option("GDAL_CACHEMAX"):
        return
    pyogrio.set_gdal_config_options({"GDAL_CACHEMAX": str(GDAL_CACHE_MB)})


class GpkgLayers:
    """A GeoPackage 1.3 written layer by layer and part by part, atomically (a context manager).

    :func:`write_gpkg_layers` for data that comes in parts (``vggeo read`` streams a delivery:
    memory bounded by a part): :meth:`append` adds rows to a layer, creating it on first use.
    The file appears at ``path`` only when the ``with`` block ends without an exception.
    Parameters as :func:`write_gpkg_layers`; ``rows`` counts the rows written per layer.
    """

    def __init__(
        self, path: str | os.PathLike, *, geometry_type: str | None = None, overwrite: bool = True
    ) -> None:
        self.path = path
        self.geometry_type = geometry_type
        self.overwrite = overwrite
        self.rows: dict[str, int] = {}

    def __enter__(self) -> GpkgLayers:
        _cap_gdal_cache()
        self._atomic = atomic_path(self.path, overwrite=self.overwrite)
        self.tmp = self._atomic.__enter__()
        return self

    def append(self, name: str, frame: pd.DataFrame) -> None:
        """Add ``frame``'s rows to layer ``name`` (the first call creates the layer)."""
        out = categoricals_as_text(frame)
        options: dict = {}
        if _geometry_name(out) is not None:
            kinds = set(out.geometry.geom_type.dropna())
            options["promote_to_multi"] = self.geometry_type is not None or bool(kinds - {"Point"})
            if self.geometry_type is not None:
                options["geometry_type"] = self.geometry_type
        # GeoPackage 1.3: what GDAL 3.6 (Debian 12, its QGIS and validate_gpkg.py) reads fully.
        # append: the file exists after the first layer; a new layer name creates that layer.
        pyogrio.write_dataframe(
            out,
            self.tmp,
            layer=name,
            driver="GPKG",
            append=self.tmp.exists(),
            dataset_options={"VERSION": "1.3"},
            **options,
        )
        self.rows[name] = self.rows.get(name, 0) + len(frame)

    def __exit__(self, *exc: Any) -> bool | None:
        if exc[0] is None:
            try:
                normalise_datetimes(self.tmp)
            except BaseException as err:
                self._atomic.__exit__(type(err), err, err.__traceback__)
                raise
        return self._atomic.__exit__(*exc)


def write_table(
    frame: pd.DataFrame,
    path: str | os.PathLike,
    *,
    layer: str = "data",
    extra_layers: Mapping[str, pd.DataFrame] | None = None,
    overwrite: bool = True,
) -> Path:
    """Write a table in the format its extension names, atomically.

    ``.parquet``: GeoParquet 1.1 for a GeoDataFrame (:func:`vggeo.exports.write_parquet`),
    plain Parquet otherwise. ``.csv``: the attributes only, without the index. ``.gpkg``: the
    table as layer ``layer`` plus ``extra_layers`` (:func:`write_gpkg_layers`).

    Raises
    ------
    InputError
        For any other extension, or an existing file without ``overwrite``.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in TABLE_SUFFIXES:
        raise InputError(f"choose the format by extension: {', '.join(TABLE_SUFFIXES)}", file=path)
    if suffix == ".gpkg":
        write_gpkg_layers({layer: frame, **(extra_layers or {})}, path, overwrite=overwrite)
        return path
    if suffix == ".parquet" and _geometry_name(frame) is not None:
        write_parquet(frame, path, overwrite=overwrite)
        return path
    with atomic_path(path, overwrite=overwrite) as tmp:
        geometry = _geometry_name(frame)
        plain = pd.DataFrame(frame.drop(columns=geometry) if geometry else frame)
        if suffix == ".csv":
            plain.to_csv(tmp, index=False)
        else:
            plain.to_parquet(tmp, index=False)
    return path
