"""Frames in the form the caller asked for: pandas (the default), a ``pyarrow.Table`` or Polars.

Ad-hoc results arrive as Arrow tables and become pandas with the DESIGN's dtypes
(:func:`pandas_from_arrow`); the contract frames of :mod:`todo_data.queries` are built in
pandas and become Arrow or Polars through :func:`convert`. Either way the types agree:
``str`` ↔ ``large_string`` ↔ ``String``, UTC timestamps stay UTC, a categorical status is an
Arrow dictionary and a Polars ``Categorical``/``Enum``.

Arrow holds every value exactly; pandas and Polars hold less, and a value they cannot
hold is read as NaT (pandas) or null (Polars), with a
:class:`~todo_data.errors.TodoDataWarning` naming the column and the count, so that the
frame always prints:

- pandas shows dates and times of the years 1 to 9999 only (Python's ``datetime``);
  Polars those of the years -262143 to 262142 (Rust's ``chrono``);
- an interval (Arrow ``month_day_nano``) becomes a length of time by PostgreSQL's own
  ``extract(epoch FROM interval)`` rule: months are truncated toward zero into years of
  365.25 days, the rest count 30 days each; beyond int64 microseconds (±292,000 years) it
  is NaT / null.
"""

from __future__ import annotations

from typing import Any, Final, Literal

import numpy as np
import pandas as pd
import pyarrow as pa

from todo_data.errors import InvalidArgumentError, MissingExtraError, warn_values
from todo_data.queries._pgcopy import MONTH_DAY_NANO
from todo_data.queries._task_frames import PANDAS_DAYS, PANDAS_MICROS, PANDAS_SHOWN, STRING, within

Output = Literal["pandas", "arrow", "polars"]
OUTPUTS: Final = ("pandas", "arrow", "polars")

DATE: Final = pd.ArrowDtype(pa.date32())

#: The same for Polars: -262143-01-01 to 262142-12-31 23:59:59.999999.
POLARS_DAYS: Final = (-96_465_292, 95_026_236)
POLARS_MICROS: Final = (POLARS_DAYS[0] * 86_400_000_000, (POLARS_DAYS[1] + 1) * 86_400_000_000 - 1)
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


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
    return table if output == "arrow" else polars_from_arrow(table)


def from_arrow(table: pa.Table, output: Output) -> Any:
    """An ad-hoc result (Arrow) in the requested output."""
    if output == "arrow":
        return table
    if output == "polars":
        return polars_from_arrow(table)
    return pandas_from_arrow(table)


def polars_from_arrow(table: pa.Table) -> Any:
    """A Polars DataFrame of ``table``: intervals as ``Duration("us")``, dates and times
    Polars cannot show as null (with a warning)."""
    columns = [_polars_column(name, column) for name, column in zip(table.column_names, table.columns, strict=True)]
    return _polars().from_arrow(pa.Table.from_arrays(columns, names=table.column_names))


def _polars_column(name: str, column: pa.ChunkedArray) -> pa.ChunkedArray:
    kind = column.type
    shown = 'null (outside what Polars can show, the years -262143 to 262142; output="arrow" keeps it)'
    if pa.types.is_date32(kind):
        return within(name, column, pa.int32(), POLARS_DAYS, shown)
    if pa.types.is_timestamp(kind) and kind.unit == "us":
        return within(name, column, pa.int64(), POLARS_MICROS, shown)
    if pa.types.is_interval(kind):
        return _interval_micros(name, column, "null")
    return column


def pandas_from_arrow(table: pa.Table) -> pd.DataFrame:
    """The DESIGN's dtypes: integers ``int64`` (``Int64`` when a value is missing), ``float64``,
    ``bool`` (``boolean`` with missing values), text ``str``, ``datetime64[us, UTC]`` or naive
    ``datetime64[us]``, dates ``date32[pyarrow]``, ``timedelta64[us]``."""
    names = table.column_names
    columns = {index: _series(names[index], column) for index, column in enumerate(table.columns)}
    frame = pd.DataFrame(columns, index=pd.RangeIndex(table.num_rows))
    frame.columns = pd.Index(table.column_names, dtype=object)
    return frame


def _series(name: str, column: pa.ChunkedArray) -> Any:
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
    shown = PANDAS_SHOWN
    if pa.types.is_date32(kind):
        return pd.array(within(name, column, pa.int32(), PANDAS_DAYS, shown), dtype=DATE)
    if pa.types.is_timestamp(kind) and kind.unit == "us":
        column = within(name, column, pa.int64(), PANDAS_MICROS, shown)
    elif pa.types.is_interval(kind):
        column = _interval_micros(name, column, "NaT")
    # Timestamps keep their unit and zone, durations become timedelta64[us], anything
    # else (binary) what pyarrow makes of it.
    return column.to_pandas().array


def _interval_micros(name: str, column: pa.ChunkedArray, missing: str) -> pa.ChunkedArray:
    """Arrow intervals as ``duration[us]``, by PostgreSQL's ``extract(epoch FROM interval)``.

    PostgreSQL (``interval_part_common``) counts ``month / 12`` years of 365.25 days and
    ``month % 12`` months of 30 days, C's division truncating toward zero, then the days,
    then the time; in exact integers here, in quarter days as PostgreSQL does. Past int64
    microseconds the value is missing (``missing``, with a warning).
    """
    chunks = []
    lost = 0
    for chunk in column.chunks:
        if not len(chunk):
            continue
        fields = np.frombuffer(chunk.buffers()[1], dtype=MONTH_DAY_NANO)[chunk.offset : chunk.offset + len(chunk)]
        months = fields["months"].astype(np.int64)
        years = np.sign(months) * (np.abs(months) // 12)
        quarter_days = 1461 * years + 120 * (months - 12 * years) + 4 * fields["days"].astype(np.int64)
        seconds = quarter_days * 21_600  # exact: at most 2.6e12 quarter days
        fits = np.abs(seconds) <= _INT64_MAX // 1_000_000
        day_part = np.where(fits, seconds, 0) * 1_000_000
        time_part = fields["nanoseconds"] // 1000
        total = day_part + time_part  # wraps where it overflows, detected from the signs
        fits &= (((day_part ^ total) & (time_part ^ total)) >= 0) & (total != _INT64_MIN)
        valid = chunk.is_valid().to_numpy(zero_copy_only=False)
        lost += int(np.count_nonzero(valid & ~fits))
        valid &= fits
        bitmap = pa.py_buffer(np.packbits(valid, bitorder="little"))
        chunks.append(
            pa.Array.from_buffers(pa.duration("us"), len(chunk), [bitmap, pa.py_buffer(np.where(valid, total, 0))])
        )
    if lost:
        warn_values(
            name, lost, f'{missing} (an interval beyond ±292,000 years of 365.25 days; output="arrow" keeps it)'
        )
    return pa.chunked_array(chunks, type=pa.duration("us"))


def _polars() -> Any:
    try:
        import polars
    except ImportError:
        raise MissingExtraError(
            'output="polars" needs Polars, which comes with the polars extra: '
            "pip install 'todo-data[polars]' (or uv sync --extra polars)"
        ) from None
    return polars
