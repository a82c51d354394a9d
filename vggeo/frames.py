"""Small column conversions every writer needs, in one place.

GDAL's drivers (GeoPackage, CSV) and readers of Parquet other than pandas do not know pandas'
categoricals; writers hand them plain text columns instead.
"""

from __future__ import annotations

from typing import TypeVar

import pandas as pd

__all__ = ["categoricals_as_text"]

Frame = TypeVar("Frame", bound=pd.DataFrame)


def categoricals_as_text(frame: Frame) -> Frame:
    """The frame with every categorical column as a nullable string column (others untouched).

    Returns a new frame (a shallow copy: untouched columns are shared, never modified); a
    GeoDataFrame stays one, with its geometry and CRS.

    Examples
    --------
    >>> df = pd.DataFrame({"kind": pd.Categorical(["plan", None]), "n": [1, 2]})
    >>> categoricals_as_text(df).dtypes.astype(str).tolist()
    ['string', 'int64']
    """
    out = frame.copy(deep=False)
    for col in out.columns:
        if isinstance(out[col].dtype, pd.CategoricalDtype):
            out[col] = out[col].astype("string")
    return out
