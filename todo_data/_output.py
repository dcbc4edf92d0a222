"""Frames in the form the caller asked for: pandas (the default), a ``pyarrow.Table`` or Polars.

Ad-hoc results arrive as Arrow tables and become pandas with the DESIGN's dtypes
(:func:`pandas_from_arrow`); the contract frames of :mod:`todo_data.queries` are built in
pandas and become Arrow or Polars through :func:`convert`. Either way the types agree:
``str`` ↔ ``large_string`` ↔ ``String``, UTC timestamps stay UTC, a categorical status is an
Arrow dictionary and a Polars ``Categorical``/``Enum``.
"""

from __future__ import annotations

from typing import Any, Final, Literal

import numpy as np
import pandas as pd
import pyarrow as pa

from todo_data._frames import STRING
from todo_data.errors import InvalidArgumentError, MissingExtraError

Output = Literal["pandas", "arrow", "polars"]
OUTPUTS: Final = ("pandas", "arrow", "polars")

DATE: Final = pd.ArrowDtype(pa.date32())


def check_output(output: object) -> Output:
    """``output`` itself, or :class:`InvalidArgumentError` before any query runs."""
    if output not in OUTPUTS:
        raise InvalidArgumentError(f'output must be "pandas", "arrow" or "polars", not {output!r}')
    if output == "polars":
        _polars()
    return output


def convert(frame: pd.DataFrame, output: Output) -> Any:
    """A contract frame as pandas (itself), a ``pyarrow.Table`` or a Polars DataFrame."""
    if output == "pandas":
        return frame
    table = pa.Table.from_pandas(frame, preserve_index=False).replace_schema_metadata(None)
    return table if output == "arrow" else _polars().from_arrow(table)


def from_arrow(table: pa.Table, output: Output) -> Any:
    """An ad-hoc result (Arrow) in the requested output."""
    if output == "arrow":
        return table
    if output == "polars":
        return _polars().from_arrow(table)
    return pandas_from_arrow(table)


def pandas_from_arrow(table: pa.Table) -> pd.DataFrame:
    """The DESIGN's dtypes: integers ``int64`` (``Int64`` when a value is missing), ``float64``,
    ``bool`` (``boolean`` with missing values), text ``str``, ``datetime64[us, UTC]`` or naive
    ``datetime64[us]``, dates ``date32[pyarrow]``, ``timedelta64[us]``."""
    columns = {index: _series(column) for index, column in enumerate(table.columns)}
    frame = pd.DataFrame(columns, index=pd.RangeIndex(table.num_rows))
    frame.columns = pd.Index(table.column_names, dtype=object)
    return frame


def _series(column: pa.ChunkedArray) -> Any:
    kind = column.type
    nulls = column.null_count > 0
    if pa.types.is_large_string(kind) or pa.types.is_string(kind) or pa.types.is_null(kind):
        return pd.array(column.cast(pa.large_string()), dtype=STRING)
    if pa.types.is_integer(kind):
        values = column.fill_null(0).to_numpy().astype(np.int64, copy=False)
        # Built from values and mask: pandas' own conversion of Arrow goes through Python objects.
        return pd.arrays.IntegerArray(values, column.is_null().to_numpy()) if nulls else values
    if pa.types.is_floating(kind):
        return column.to_numpy().astype(np.float64, copy=False)
    if pa.types.is_boolean(kind):
        flags = column.fill_null(False).to_numpy()
        return pd.arrays.BooleanArray(flags, column.is_null().to_numpy()) if nulls else flags
    if pa.types.is_date32(kind):
        return pd.array(column, dtype=DATE)
    # Timestamps keep their unit and zone, durations become timedelta64[us], anything
    # else (binary) what pyarrow makes of it.
    return column.to_pandas().array


def _polars() -> Any:
    try:
        import polars
    except ImportError:
        raise MissingExtraError(
            'output="polars" needs Polars, which comes with the polars extra: '
            "pip install 'todo-data[polars]' (or uv sync --extra polars)"
        ) from None
    return polars
