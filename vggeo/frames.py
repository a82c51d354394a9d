"""Small column conversions every writer needs, in one place.

GDAL's drivers (GeoPackage, CSV) and readers of Parquet other than pandas do not know pandas'
categoricals; writers hand them plain text columns instead.
"""

from __future__ import annotations

from typing import TypeVar

import pandas as pd
import pyarrow as pa

__all__ = ["categorical_as_text", "categoricals_as_text"]

Frame = TypeVar("Frame", bound=pd.DataFrame)


def categorical_as_text(s: pd.Series) -> pd.Series:
    """``s.astype("string")`` of a categorical, decoded by Arrow when its categories are text or
    integers, whose text Arrow writes as pandas does (the registry has a dozen such columns:
    pandas' own way is 25 times slower). Missing values stay missing.

    Examples
    --------
    >>> categorical_as_text(pd.Series(pd.Categorical([320, None]))).tolist()
    ['320', <NA>]
    """
    arr = pa.array(s, from_pandas=True)
    kind = arr.type.value_type
    if not (
        pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_integer(kind)
    ):
        return s.astype("string")  # floats, dates …: pandas' text for them
    text = arr.dictionary_decode().cast(pa.large_string())
    return pd.Series(pd.arrays.ArrowStringArray(text), index=s.index, name=s.name)


def categoricals_as_text(frame: Frame) -> Frame:
    """The frame with every categorical column as text (:func:`categorical_as_text`), others
    untouched.

    Returns a new frame (a shallow copy: untouched columns are shared, never modified); a
    GeoDataFrame stays one, with its geometry and CRS.

    Examples
    --------
    >>> df = pd.DataFrame({"kind": pd.Categorical(["plan", None]), "n": [1, 2]})
    >>> categoricals_as_text(df)["kind"].tolist()
    ['plan', <NA>]
    """
    out = frame.copy(deep=False)
    for col in out.columns:
        if isinstance(out[col].dtype, pd.CategoricalDtype):
            out[col] = categorical_as_text(out[col])
    return out
