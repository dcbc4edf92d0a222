"""DataFrames in the contract's shape, assembled from Arrow columns: dtypes, status categories.

Both backends end in :func:`tasks_frame_from`: PostgreSQL's columns come from the binary
COPY decoder (:mod:`todo_data.queries._pgcopy`), SQLite's from its rows
(:func:`sqlite_tasks_table`), so the DataFrames are identical: same columns, dtypes,
categories, order and values. No Python object is made per value on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any, Final

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from todo_data._task_sql import TASK_COLUMNS
from todo_data.errors import warn_values
from todo_data.models import TaskStatus

KNOWN_STATUSES: Final = tuple(status.value for status in TaskStatus)

#: pandas' default string dtype (``str``), Arrow-backed, missing values as NaN.
STRING: Final = pd.StringDtype("pyarrow", na_value=np.nan)
#: Timestamps: microseconds (the precision both databases store), in UTC.
TIMESTAMP: Final = pd.DatetimeTZDtype(unit="us", tz="UTC")
TIMEDELTA: Final = np.dtype("m8[us]")
ARROW_TIMESTAMP: Final = pa.timestamp("us", tz="UTC")


_EPOCH: Final = datetime(1970, 1, 1)
_US: Final = timedelta(microseconds=1)
#: Days and microseconds since 1970 of the first and last date and time pandas shows
#: (its repr goes through Python's datetime: the years 1 to 9999).
PANDAS_DAYS: Final = ((datetime.min - _EPOCH).days, (datetime.max - _EPOCH).days)
PANDAS_MICROS: Final = ((datetime.min - _EPOCH) // _US, (datetime.max - _EPOCH) // _US)
PANDAS_SHOWN: Final = 'NaT (outside what pandas can show, the years 1 to 9999; output="arrow" keeps it)'


def within(
    name: str, column: pa.ChunkedArray, integer: pa.DataType, bounds: tuple[int, int], read_as: str
) -> pa.ChunkedArray:
    """``column`` with its values outside ``bounds`` (as ``integer``: days or microseconds) missing."""
    values = column.cast(integer)
    outside = pc.or_(pc.less(values, bounds[0]), pc.greater(values, bounds[1]))
    count = pc.sum(outside).as_py() or 0
    if not count:
        return column
    warn_values(name, count, read_as)
    return pc.if_else(outside, pa.scalar(None, column.type), column)


def status_dtype(found: Iterable[str] = ()) -> pd.CategoricalDtype:
    """Every :class:`TaskStatus` in declared order, then unknown values found (sorted)."""
    unknown = sorted(set(found).difference(KNOWN_STATUSES))
    return pd.CategoricalDtype(pd.Index([*KNOWN_STATUSES, *unknown], dtype=STRING), ordered=False)


def utc_from_seconds(seconds: Sequence[int | None]) -> pd.DatetimeIndex:
    """Seconds since 1970 (None for missing) as a ``datetime64[us, UTC]`` index."""
    micros = pc.multiply(pa.array(seconds, type=pa.int64()), 1_000_000)
    return pd.DatetimeIndex(pd.array(micros.cast(ARROW_TIMESTAMP).to_pandas(), dtype=TIMESTAMP))


def sqlite_tasks_table(rows: Sequence[Sequence[Any]]) -> pa.Table:
    """The task columns from the rows of :func:`~todo_data._task_sql.sqlite_tasks_select`
    (texts, then microseconds since 1970), typed as PostgreSQL's decoded ones."""
    values = list(zip(*rows, strict=True)) if rows else [() for _ in TASK_COLUMNS]
    texts = [pa.array(column, type=pa.large_string()) for column in values[:5]]
    times = [pa.array(column, type=pa.int64()).cast(ARROW_TIMESTAMP) for column in values[5:]]
    return pa.Table.from_arrays([*texts, *times], names=list(TASK_COLUMNS))


def tasks_frame_from(table: pa.Table, *, categories: pd.CategoricalDtype | None = None) -> pd.DataFrame:
    """The ``tasks_frame`` contract from the task columns (the same code for both backends)."""
    return pd.DataFrame(
        {
            "id": pd.array(table.column("id"), dtype=STRING),
            "user_id": pd.array(table.column("user_id"), dtype=STRING),
            "title": pd.array(table.column("title"), dtype=STRING),
            "description": pd.array(table.column("description"), dtype=STRING),
            "status": status_categorical(table.column("status"), categories),
            "created_at": pd.array(_shown("created_at", table).to_pandas(), dtype=TIMESTAMP),
            "updated_at": pd.array(_shown("updated_at", table).to_pandas(), dtype=TIMESTAMP),
        }
    )


def _shown(name: str, table: pa.Table) -> pa.ChunkedArray:
    # A time past 9999 (the utc_range rule forbids it, no constraint stops it) would make
    # the frame impossible to print: NaT, with a warning, as queries.sql reads it.
    column = table.column(name)
    if not pa.types.is_timestamp(column.type):
        return column
    return within(name, column.cast(pa.timestamp("us", tz=column.type.tz)), pa.int64(), PANDAS_MICROS, PANDAS_SHOWN)


def status_categorical(statuses: pa.ChunkedArray, dtype: pd.CategoricalDtype | None = None) -> pd.Categorical:
    """Status text as the contract's categorical, without a Python object per row."""
    encoded = pc.dictionary_encode(statuses.combine_chunks())
    found = [str(value) for value in encoded.dictionary.to_pylist()]
    if dtype is None or not set(found) <= set(dtype.categories):
        # A status another writer added after the categories were fixed is appended,
        # never turned into NaN.
        existing = [] if dtype is None else list(dtype.categories)
        dtype = status_dtype([*existing, *found])
    position = {value: code for code, value in enumerate(dtype.categories)}
    # A NULL status (its index -1 here) picks the last entry: code -1, pandas' missing value.
    mapping = np.array([*(position[value] for value in found), -1], dtype=np.int32)
    indices = pc.fill_null(encoded.indices, -1).to_numpy(zero_copy_only=False)
    return pd.Categorical.from_codes(mapping[indices], dtype=dtype)
