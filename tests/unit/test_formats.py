"""Arrow as pandas and Polars at the edges of what each holds: NaT or null, a warning, a frame that prints."""

from __future__ import annotations

import warnings
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

from todo_data import TodoDataWarning
from todo_data.queries._formats import convert, from_arrow, pandas_from_arrow

EPOCH = datetime(1970, 1, 1)
US = timedelta(microseconds=1)
FIRST_US = (datetime.min - EPOCH) // US
LAST_US = (datetime.max - EPOCH) // US
FIRST_DAY = (date.min - date(1970, 1, 1)).days
LAST_DAY = (date.max - date(1970, 1, 1)).days
INT64_MAX = 2**63 - 1
DAYS, REST = divmod(INT64_MAX, 86_400_000_000)  # int64's greatest microseconds, as days and the rest


def converted(table: pa.Table, output: str) -> tuple[Any, list[str]]:
    """``table`` in ``output``, printed once (which must never fail), and the warnings given."""
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        result = from_arrow(table, output)  # type: ignore[arg-type]
        assert repr(result) and str(result)
    return result, [str(w.message) for w in record if w.category is TodoDataWarning]


def test_pandas_holds_dates_and_times_of_the_years_1_to_9999_exactly_and_the_rest_as_nat() -> None:
    micros = [FIRST_US - 1, FIRST_US, LAST_US, LAST_US + 1, None]
    days = [FIRST_DAY - 1, FIRST_DAY, LAST_DAY, LAST_DAY + 1, None]
    table = pa.table(
        {
            "aware": pa.array(micros, pa.timestamp("us", tz="UTC")),
            "naive": pa.array(micros, pa.timestamp("us")),
            "day": pa.array(days, pa.date32()),
        }
    )
    frame, given = converted(table, "pandas")
    assert [str(dtype) for dtype in frame.dtypes] == ["datetime64[us, UTC]", "datetime64[us]", "date32[day][pyarrow]"]
    assert frame["aware"].tolist()[1:3] == [pd.Timestamp(datetime.min, tz=UTC), pd.Timestamp(datetime.max, tz=UTC)]
    assert frame["naive"].tolist()[1:3] == [pd.Timestamp(datetime.min), pd.Timestamp(datetime.max)]
    assert frame["day"].tolist()[1:3] == [date.min, date.max]
    assert frame.isna().sum().tolist() == [3, 3, 3]
    assert given == [
        f'column "{name}": 2 values read as NaT (outside what pandas can show, the years 1 to 9999; '
        'output="arrow" keeps it)'
        for name in ("aware", "naive", "day")
    ]


def test_polars_holds_dates_and_times_of_the_years_minus_262143_to_262142() -> None:
    first, last = -96_465_292, 95_026_236  # -262143-01-01 and 262142-12-31
    day = 86_400_000_000
    table = pa.table(
        {
            "day": pa.array([first - 1, first, last, last + 1], pa.date32()),
            "aware": pa.array(
                [first * day - 1, first * day, (last + 1) * day - 1, (last + 1) * day], pa.timestamp("us", tz="UTC")
            ),
        }
    )
    frame, given = converted(table, "polars")
    assert frame.schema == pl.Schema({"day": pl.Date, "aware": pl.Datetime("us", "UTC")})
    assert frame["day"].cast(pl.Int32).to_list() == [None, first, last, None]
    assert frame["aware"].cast(pl.Int64).to_list() == [None, first * day, (last + 1) * day - 1, None]
    assert len(given) == 2 and all("2 values read as null" in message for message in given)


def month_day_nano(*values: tuple[int, int, int] | None) -> pa.Array:
    return pa.array(
        [None if value is None else pa.MonthDayNano(list(value)) for value in values], pa.month_day_nano_interval()
    )


def test_intervals_count_years_of_365_25_days_and_months_of_30_truncating_toward_zero() -> None:
    day = 86_400_000_000
    table = pa.table(
        {
            "interval": month_day_nano(
                (12, 0, 0),  # a year: 365.25 days
                (13, 0, 0),  # a year and a month
                (-13, 0, 0),  # -1 year, -1 month: C's division truncates toward zero
                (-1, 40, -1000),  # -30 days + 40 days - 1 µs
                (11, -5, 5000),
                (0, -DAYS, -(REST + 1) * 1000 + 1000),  # the least µs (-2**63 + 1) ...
                (0, DAYS, REST * 1000),  # ... and the greatest
                None,
            )
        }
    )
    for output in ("pandas", "polars"):
        frame, given = converted(table, output)
        micros = (
            [None if pd.isna(v) else v // US for v in frame["interval"]]
            if output == "pandas"
            else frame["interval"].cast(pl.Int64).to_list()
        )
        assert micros == [
            365 * day + day // 4,
            365 * day + day // 4 + 30 * day,
            -(365 * day + day // 4 + 30 * day),
            10 * day - 1,
            330 * day - 5 * day + 5,
            -(2**63) + 1,
            2**63 - 1,
            None,
        ]
        assert given == []


def test_an_interval_beyond_int64_microseconds_is_nat_never_wrapped() -> None:
    # 300000 years of 365.25 days is 9.5e18 µs: past int64, which wrapped it to -105,503,983 days.
    table = pa.table(
        {
            "iv": month_day_nano(
                (3_600_000, 0, 0),
                (-3_600_000, 0, 0),
                (0, DAYS, (REST + 1) * 1000),  # one µs past the greatest...
                (0, -DAYS, -(REST + 1) * 1000),  # ... and -2**63 µs itself: pandas' NaT
                (2**31 - 1, 2**31 - 1, 2**63 - 1),
                (3_480_000, 0, 0),  # 290000 years: fits
            )
        }
    )
    frame, given = converted(table, "pandas")
    assert frame["iv"].isna().tolist() == [True] * 5 + [False]
    assert frame["iv"].iloc[5] == pd.Timedelta(microseconds=290_000 * 36525 * 864_000_000)
    assert given == [
        'column "iv": 5 values read as NaT (an interval beyond ±292,000 years of 365.25 days; output="arrow" keeps it)'
    ]
    polars, given = converted(table, "polars")
    assert polars["iv"].null_count() == 5 and given[0].startswith('column "iv": 5 values read as null')


def test_sliced_and_chunked_columns_convert_value_by_value() -> None:
    chunks = [month_day_nano((1, 2, 3000), (12, 0, 0), None, (0, 1, 0)).slice(1, 3), month_day_nano((1, 0, 0))]
    table = pa.table({"iv": pa.chunked_array(chunks)})
    frame = pandas_from_arrow(table)
    assert frame["iv"].tolist()[0] == pd.Timedelta(days=365.25)
    assert pd.isna(frame["iv"].iloc[1]) and frame["iv"].tolist()[2:] == [pd.Timedelta(days=1), pd.Timedelta(days=30)]
    empty = pa.table({"iv": pa.chunked_array([], pa.month_day_nano_interval()), "d": pa.chunked_array([], pa.date32())})
    assert [str(dtype) for dtype in pandas_from_arrow(empty).dtypes] == ["timedelta64[us]", "date32[day][pyarrow]"]


def test_a_contract_frame_as_polars_never_panics_on_a_far_timestamp() -> None:
    # tasks_frame reads created_at up to the year 294247; Polars panicked printing past 262142.
    far = pd.Series(pd.array([pd.Timestamp("2025-01-01", tz="UTC"), None], dtype="datetime64[us, UTC]"))
    far.iloc[1] = pd.Timestamp(0, tz="UTC").as_unit("us") + pd.Timedelta(days=100_000_000).as_unit("us")
    frame = pd.DataFrame({"created_at": far})
    with pytest.warns(TodoDataWarning, match='column "created_at": 1 value read as null'):
        polars = convert(frame, "polars")
    assert repr(polars) and polars["created_at"].null_count() == 1
