"""A Lantmäteriet delivery written to one file: :func:`write_delivery` (``vggeo read``).

A bestämmelse delivery bound for a GeoPackage is streamed part by part
(:func:`vggeo.lm.iter_bestammelser` into :class:`~vggeo.exports.tables.GpkgLayers`): memory is
bounded by a part, not by the delivery. Anything else is read whole
(:func:`vggeo.lm.read_delivery`) and written with :func:`~vggeo.exports.tables.write_gpkg_layers`
or, for one table, :func:`~vggeo.exports.tables.write_table` (GeoParquet 1.1). Either way the file
appears only if the whole read, its final checks included, succeeded.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from vggeo.errors import InputError
from vggeo.exports.tables import GpkgLayers, write_gpkg_layers, write_table
from vggeo.frames import categoricals_as_text
from vggeo.lm import open_delivery, read_delivery
from vggeo.lm.bestammelse import is_vector_product, iter_bestammelser, read_bestammelser
from vggeo.lm.dispatch import DEFAULT_TABLE, deletions_table
from vggeo.lm.package import Delivery

__all__ = ["DELIVERY_SUFFIXES", "DeliveryWritten", "write_delivery"]

#: The outputs :func:`write_delivery` writes: every table as a layer, or one table as GeoParquet.
DELIVERY_SUFFIXES = (".gpkg", ".parquet")


@dataclass
class DeliveryWritten:
    """What :func:`write_delivery` read and wrote.

    Attributes
    ----------
    product
        ``"bestammelse"`` or ``"inskrivning"``.
    rows
        ``{table: rows}`` of every table read (in a GeoPackage: every layer written).
    unmapped
        ``{element path: occurrences}`` the mapping did not use: data the output does not hold.
    geometry_errors
        ``(provision id, message)`` of provisions kept with an empty geometry.
    """

    product: str
    rows: dict[str, int] = field(default_factory=dict)
    unmapped: Mapping[str, int] = field(default_factory=dict)
    geometry_errors: list[tuple[str, str]] = field(default_factory=list)


def write_delivery(
    source: str | os.PathLike | Delivery,
    output: str | os.PathLike,
    *,
    table: str | None = None,
    personal_data: bool = False,
    on_geometry_error: str = "raise",
    workers: int | None = 1,
    progress: bool = False,
    overwrite: bool = True,
    on_read: Callable[[DeliveryWritten], None] | None = None,
) -> DeliveryWritten:
    """Read a delivery into ``output``: a GeoPackage (one layer per table) or a GeoParquet file
    (one table).

    Parameters
    ----------
    source
        A :class:`~vggeo.lm.package.Delivery` (left open), anything
        :func:`~vggeo.lm.open_delivery` accepts, or a ``.gpkg`` of the vector product of
        provision areas (:func:`vggeo.lm.bestammelse.read_vector_product`).
    output
        ``.gpkg``: every table as a layer, provisions as MultiPolygon in EPSG:3006, plus
        ``deletions`` of a change extract. ``.parquet``: the table ``table``.
    table
        Parquet only: the table to write (default: the product's main table, ``provisions`` or
        ``agande``).
    personal_data, on_geometry_error, workers, progress
        As :func:`vggeo.lm.read_delivery`.
    overwrite
        Replace an existing file (otherwise it is refused before anything is written).
    on_read
        Called with what was read (``rows`` not yet filled) once the delivery is read and before
        the file is written — after it for a streamed GeoPackage, which is written as it is read.

    Raises
    ------
    InputError
        An extension other than ``.gpkg`` or ``.parquet``, an existing file without
        ``overwrite``, or a ``table`` the delivery does not have.
    """
    suffix = Path(output).suffix.lower()
    if suffix not in DELIVERY_SUFFIXES:
        raise InputError(f"choose the format by extension: {', '.join(DELIVERY_SUFFIXES)}")
    if Path(output).exists() and not overwrite:
        raise InputError(f"{output} exists; pass overwrite=True to replace it", file=str(output))
    if is_vector_product(source):
        # Lantmäteriet's vector product: one GeoPackage of provision areas, read whole (it holds
        # no more than its own layers) and written like a delivery's tables.
        product = read_bestammelser(source)
        done = DeliveryWritten("bestammelse", unmapped=product.unmapped)
        if on_read is not None:
            on_read(done)
        done.rows = _write_tables(dict(product.tables()), output, done.product, table, overwrite)
        return done
    opened = nullcontext(source) if isinstance(source, Delivery) else open_delivery(source)
    tables: dict[str, pd.DataFrame] = {}
    with opened as d:
        done = DeliveryWritten(str(d.product))
        if done.product == "bestammelse" and suffix == ".gpkg":
            # Part by part into the GeoPackage: memory bounded by a part, not by the delivery.
            # The file appears only if the whole read (its final checks included) succeeds.
            stream = iter_bestammelser(
                d, progress=progress, workers=workers, on_geometry_error=on_geometry_error
            )
            with GpkgLayers(output, geometry_type="MultiPolygon", overwrite=overwrite) as gpkg:
                for part in stream:
                    for name, frame in part.tables().items():
                        gpkg.append(name, frame)
                dels = deletions_table(d)
                if dels is not None:
                    gpkg.append("deletions", dels)
            done.rows = dict(gpkg.rows)
            done.unmapped = stream.unmapped
            done.geometry_errors = list(stream.geometry_errors)
            if on_read is not None:
                on_read(done)
            return done
        data = read_delivery(
            d,
            personal_data=personal_data,
            on_geometry_error=on_geometry_error,
            workers=workers,
            progress=progress,
        )
        tables = data.tables
        done.unmapped = data.unmapped
        done.geometry_errors = data.geometry_errors
    if on_read is not None:
        on_read(done)
    done.rows = _write_tables(tables, output, done.product, table, overwrite)
    return done


def _write_tables(
    tables: dict[str, pd.DataFrame],
    output: str | os.PathLike,
    product: str,
    table: str | None,
    overwrite: bool,
) -> dict[str, int]:
    """Every table as a GeoPackage layer, or one as GeoParquet; the rows of every table read."""
    if Path(output).suffix.lower() == ".gpkg":
        write_gpkg_layers(tables, output, geometry_type="MultiPolygon", overwrite=overwrite)
    else:
        name = table or DEFAULT_TABLE[product]
        if name not in tables:
            raise InputError(f"no table {name!r}; this delivery has {sorted(tables)}")
        # GeoParquet 1.1 for the provisions, as every vggeo output; categoricals as text.
        write_table(categoricals_as_text(tables[name]), output, overwrite=overwrite)
    return {name: len(frame) for name, frame in tables.items()}
