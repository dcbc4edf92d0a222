"""DataFrames in the contract's shape, assembled from Arrow columns: dtypes, status categories.

Both backends end in :func:`tasks_frame_from`: PostgreSQL's columns come from the binary
COPY decoder (:mod:`todo_data._pgcopy`), SQLite's from its rows
(:func:`sqlite_tasks_table`), so the DataFrames are identical: same columns, dtypes,
categories, order and values. No Python object is made per value on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Final

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from todo_data._task_sql import TASK_COLUMNS
from todo_data.models import TaskStatus

KNOWN_STATUSES: Final = tuple(status.value for status in TaskStatus)

#: pandas' default string dtype (``str``), Arrow-backed, missing values as NaN.
STRING: Final = pd.StringDtype("pyarrow", na_value=np.nan)
#: Timestamps: microseconds (the precision both databases store), in UTC.
TIMESTAMP: Final = pd.DatetimeTZDtype(unit="us", tz="UTC")
TIMEDELTA: Final = np.dtype("m8[us]")
ARROW_TIMESTAMP: Final = pa.timestamp("us", tz="UTC")


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
            "created_at": pd.array(table.column("created_at").to_pandas(), dtype=TIMESTAMP),
            "updated_at": pd.array(table.column("updated_at").to_pandas(), dtype=TIMESTAMP),
        }
    )


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
