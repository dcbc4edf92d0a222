"""Values at and past the edges of what a frame holds: ``queries.sql`` never wraps them, never fails.

On PostgreSQL directly and through the pooled endpoint, in each output:

- Arrow keeps every value exactly (``month_day_nano`` intervals, ``date32``,
  ``timestamp[us]``); pandas and Polars read what they cannot hold as NaT / null, and a
  :class:`~todo_data.errors.TodoDataWarning` names the column and the count;
- an interval becomes a timedelta by PostgreSQL's own ``extract(epoch ...)`` rule (a year
  is 365.25 days, a month 30 days);
- a numeric beyond float64 reads as ±inf (0.0 below its smallest), with a warning, never
  a failed query; NaN and ±Infinity are kept;
- every frame prints, and the ``%%todo_sql`` magic shows it.
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from typing import Any

import pandas as pd
import polars as pl
import pyarrow as pa
import pytest
from IPython.core.interactiveshell import InteractiveShell
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.helpers import PostgresServer
from tests.unit.shell import cell, ipython_shell
from todo_data import TodoDataWarning, queries, run
from todo_data.magic import TodoSqlMagics
from todo_data.settings import get_settings

US = timedelta(microseconds=1)


def warned(record: list[warnings.WarningMessage]) -> dict[str, str]:
    """The TodoDataWarnings given, by the column each names."""
    found: dict[str, str] = {}
    for warning in record:
        if issubclass(warning.category, TodoDataWarning):
            match = re.match(r'column "([^"]+)": ', str(warning.message))
            assert match, warning.message
            found[match.group(1)] = str(warning.message)
    return found


async def sql(engine: AsyncEngine, query: str, output: str) -> tuple[Any, dict[str, str]]:
    """The result of ``query`` in ``output``, printed once (which must never fail), and its warnings."""
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        result = await queries.sql(engine, query, output=output)  # type: ignore[arg-type]
    assert repr(result) and str(result)
    return result, warned(record)


# -- intervals -------------------------------------------------------------------------------------

INTERVALS = """
SELECT interval '300000 years' AS huge, interval '1 year' AS year, interval '1 mon' AS month,
       interval '-13 mons 3 days' AS mixed, interval '-1 mon +40 days -00:00:00.000001' AS signs,
       interval '290000 years' AS long, CAST(NULL AS interval) AS missing
"""


async def test_a_long_interval_never_wraps_and_arrow_keeps_its_fields(postgres_engine: AsyncEngine) -> None:
    # Issue 16: interval '300000 years' read as -105,503,983 days (int64 wrap), and a year
    # counted 360 days.
    arrow, warnings_given = await sql(postgres_engine, INTERVALS, "arrow")
    assert warnings_given == {}
    assert set(arrow.schema.types) == {pa.month_day_nano_interval()}
    assert arrow.to_pylist() == [
        {
            "huge": pa.MonthDayNano([3_600_000, 0, 0]),
            "year": pa.MonthDayNano([12, 0, 0]),
            "month": pa.MonthDayNano([1, 0, 0]),
            "mixed": pa.MonthDayNano([-13, 3, 0]),
            "signs": pa.MonthDayNano([-1, 40, -1000]),
            "long": pa.MonthDayNano([3_480_000, 0, 0]),
            "missing": None,
        }
    ]

    frame, warnings_given = await sql(postgres_engine, INTERVALS, "pandas")
    assert set(frame.dtypes.astype(str)) == {"timedelta64[us]"}
    row = frame.iloc[0]
    assert pd.isna(row["huge"]) and pd.isna(row["missing"])
    assert row["year"] == pd.Timedelta(days=365, hours=6)  # PostgreSQL's 365.25 days
    assert row["month"] == pd.Timedelta(days=30)
    assert row["mixed"] == -pd.Timedelta(days=365.25 + 30) + pd.Timedelta(days=3)
    assert row["signs"] == pd.Timedelta(days=10, microseconds=-1)
    assert frame["long"].astype("int64").iloc[0] == 290_000 * 36525 * 864_000_000  # 290,000 years of 365.25 days
    assert list(warnings_given) == ["huge"]
    assert "1 value read as NaT" in warnings_given["huge"] and 'output="arrow"' in warnings_given["huge"]

    polars, warnings_given = await sql(postgres_engine, INTERVALS, "polars")
    assert set(polars.schema.values()) == {pl.Duration("us")}
    assert polars["huge"].to_list() == [None] and list(warnings_given) == ["huge"]
    assert polars["year"].to_list() == [timedelta(days=365, hours=6)]


async def test_intervals_become_timedeltas_by_postgresqls_own_epoch_rule(postgres_engine: AsyncEngine) -> None:
    # extract(epoch FROM interval) is PostgreSQL's own reading of an interval as a length
    # of time: a year of months is 365.25 days, a month 30 days, months truncated toward
    # zero into years. Over many intervals of every sign, the frame agrees with it.
    query = """
    SELECT iv, (extract(epoch FROM iv) * 1000000)::int8 AS micros FROM (
        SELECT make_interval(months => m, days => d) + (s * interval '1 microsecond') AS iv
        FROM generate_series(-40, 40, 3) AS m, generate_series(-70, 70, 23) AS d,
             (VALUES (0::int8), (1), (-1), (86399999999), (-3600000000), (2000000000000000)) AS v(s)
    ) AS ivs
    """
    frame, warnings_given = await sql(postgres_engine, query, "pandas")
    assert warnings_given == {} and len(frame) > 1000
    assert (frame["iv"] == pd.to_timedelta(frame["micros"], unit="us")).all()
    polars, _ = await sql(postgres_engine, query, "polars")
    assert polars["iv"].cast(pl.Int64).to_list() == frame["micros"].tolist()


# -- numeric ---------------------------------------------------------------------------------------

NUMERICS = """
SELECT '1e400'::numeric AS big, '-1e400'::numeric AS small, '1e-400'::numeric AS tiny,
       'NaN'::numeric AS nan, 'Infinity'::numeric AS inf, '-Infinity'::numeric AS ninf,
       12.345::numeric AS plain, '-0'::numeric AS zero, 0.1::numeric(30, 28) AS tenth,
       '9007199254740993'::numeric AS halfway, 123456::numeric(5, -2) AS rounded,
       ('9' || repeat('0', 300))::numeric / 7 AS wide, CAST(NULL AS numeric) AS missing
"""


@pytest.mark.parametrize("output", ["pandas", "arrow", "polars"])
async def test_a_numeric_beyond_float_range_reads_as_inf_never_failing_the_query(
    postgres_engine: AsyncEngine, output: str
) -> None:
    # Issue 16: '1e400'::numeric failed the whole query (cast to float8 on the server),
    # with the 400-digit number in the message.
    result, warnings_given = await sql(postgres_engine, NUMERICS, output)
    if output == "arrow":
        assert set(result.schema.types) == {pa.float64()}
        (row,) = result.to_pylist()
    elif output == "polars":
        assert set(result.schema.values()) == {pl.Float64}
        row = result.row(0, named=True)
    else:
        assert set(result.dtypes.astype(str)) == {"float64"}
        row = result.iloc[0].to_dict()
    assert (row["big"], row["small"], row["tiny"]) == (math.inf, -math.inf, 0.0)
    assert math.isnan(row["nan"]) and (row["inf"], row["ninf"]) == (math.inf, -math.inf)
    assert (row["plain"], row["zero"], row["tenth"], row["halfway"]) == (12.345, 0.0, 0.1, 2.0**53)
    assert row["rounded"] == 123_500.0  # a negative scale
    assert math.isclose(row["wide"], 9e300 / 7, rel_tol=1e-15)  # 300 digits before the point, 20 after
    assert math.copysign(1, row["zero"]) == 1.0
    assert row["missing"] is None or math.isnan(row["missing"])
    assert sorted(warnings_given) == ["big", "small"]
    assert "1 value read as ±inf" in warnings_given["big"]


# -- dates and timestamps --------------------------------------------------------------------------

TIMES = """
SELECT '5874897-12-31'::date AS d_max, '4713-01-01 BC'::date AS d_min, 'infinity'::date AS d_inf,
       '0001-01-01'::date AS d_first, '9999-12-31'::date AS d_last, '10000-01-01'::date AS d_after,
       '0001-01-01 00:00:00+00'::timestamptz AS t_first,
       '0001-01-01 00:00:00+00'::timestamptz - interval '1 microsecond' AS t_before,
       '9999-12-31 23:59:59.999999+00'::timestamptz AS t_last,
       '9999-12-31 23:59:59.999999+00'::timestamptz + interval '1 microsecond' AS t_after,
       '294276-12-31 23:59:59.999999+00'::timestamptz AS t_max, '-infinity'::timestamptz AS t_inf,
       '0001-01-01 00:00:00'::timestamp AS n_first, '10000-01-01 00:00:00'::timestamp AS n_after,
       '262143-01-01'::date AS d_beyond_polars
"""
FIRST = datetime(1, 1, 1)
LAST = datetime(9999, 12, 31, 23, 59, 59, 999_999)


async def test_dates_and_timestamps_outside_pandas_range_read_as_nat_and_the_frame_prints(
    postgres_engine: AsyncEngine,
) -> None:
    # Issue 16: '5874897-12-31'::date made the frame impossible to print (OverflowError in
    # repr); pandas shows dates and times of the years 1 to 9999 only.
    frame, warnings_given = await sql(postgres_engine, TIMES, "pandas")
    row = frame.iloc[0]
    outside = {"d_max", "d_min", "d_after", "t_before", "t_after", "n_after", "d_beyond_polars"}
    assert {name for name in frame.columns if pd.isna(row[name])} == outside | {"d_inf", "t_max", "t_inf"}
    assert row["d_first"] == date(1, 1, 1) and row["d_last"] == date(9999, 12, 31)
    assert row["t_first"] == pd.Timestamp(FIRST, tz="UTC") and row["t_last"] == pd.Timestamp(LAST, tz="UTC")
    assert row["n_first"] == pd.Timestamp(FIRST)
    assert str(frame["d_max"].dtype) == "date32[day][pyarrow]" and str(frame["t_after"].dtype) == "datetime64[us, UTC]"
    # One warning per column that lost a value: outside pandas' range, or no Arrow value at all.
    assert set(warnings_given) == outside | {"d_inf", "t_max", "t_inf"}
    assert "1 value read as NaT" in warnings_given["d_max"] and 'output="arrow"' in warnings_given["d_max"]
    assert "±infinity" in warnings_given["d_inf"] and "294247-01-10" in warnings_given["t_max"]


async def test_arrow_keeps_every_date_and_timestamp_it_can_hold(postgres_engine: AsyncEngine) -> None:
    arrow, warnings_given = await sql(postgres_engine, TIMES, "arrow")
    # What PostgreSQL itself counts: days and microseconds since 1970.
    names = arrow.column_names
    since_1970 = ", ".join(
        f"{name} - date '1970-01-01' AS {name}"
        if name.startswith("d_")
        else f"(extract(epoch FROM {name}) * 1000000)::int8 AS {name}"
        for name in names
        if name not in ("d_inf", "t_max", "t_inf")
    )
    expected = (await queries.sql(postgres_engine, f"SELECT {since_1970} FROM ({TIMES}) AS q")).iloc[0]
    for name in expected.index:
        assert arrow.column(name).cast(pa.int32() if name.startswith("d_") else pa.int64())[0].as_py() == expected[name]
    assert expected["d_max"] == 2_145_042_905  # PostgreSQL's last date
    assert arrow.column("t_after").cast(pa.int64())[0].as_py() == (LAST - datetime(1970, 1, 1)) // US + 1
    assert [arrow.column(name)[0].as_py() for name in ("d_inf", "t_max", "t_inf")] == [None] * 3
    assert set(warnings_given) == {"d_inf", "t_max", "t_inf"}


async def test_polars_output_never_panics_on_dates_it_cannot_show(postgres_engine: AsyncEngine) -> None:
    # Issue 16: output="polars" panicked (a Rust PanicException) printing such a date.
    frame, warnings_given = await sql(postgres_engine, TIMES, "polars")
    beyond = {"d_max", "d_beyond_polars"}  # Polars shows the years -262143 to 262142
    assert {name for name in frame.columns if frame[name].null_count()} == beyond | {"d_inf", "t_max", "t_inf"}
    assert frame["d_after"].cast(pl.Int32).to_list() == [(date(9999, 12, 31) - date(1970, 1, 1)).days + 1]
    assert set(warnings_given) == beyond | {"d_inf", "t_max", "t_inf"}
    assert "read as null" in warnings_given["d_max"]


async def test_arrays_of_odd_values_read_as_postgresqls_text(postgres_engine: AsyncEngine) -> None:
    query = """
    SELECT ARRAY['1e400'::numeric, NULL, 'NaN', '-0'] AS numerics,
           ARRAY[interval '300000 years', NULL, interval '-1 mon +3 days'] AS intervals,
           ARRAY['5874897-12-31'::date, NULL, 'infinity'] AS dates,
           ARRAY['294276-12-31 23:59:59.999999+00'::timestamptz, NULL] AS times
    """
    frame, warnings_given = await sql(postgres_engine, query, "pandas")
    assert warnings_given == {} and set(frame.dtypes.astype(str)) == {"str"}
    texts = await queries.sql(
        postgres_engine, f"SELECT numerics::text, intervals::text, dates::text, times::text FROM ({query}) AS q"
    )
    assert frame.iloc[0].tolist() == texts.iloc[0].tolist()
    assert frame["dates"].iloc[0] == "{5874897-12-31,NULL,infinity}"


async def test_iter_sql_chunks_warn_and_concatenate_to_sql(postgres_engine: AsyncEngine) -> None:
    query = (
        "SELECT i, CASE WHEN i % 3 = 0 THEN '10000-01-01'::date ELSE '2025-01-01'::date + i END AS d,"
        " CASE WHEN i % 4 = 0 THEN '1e400'::numeric ELSE i / 7.0 END AS n FROM generate_series(1, 20) AS i"
    )
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        whole = await queries.sql(postgres_engine, query)
        chunks = [chunk async for chunk in queries.iter_sql(postgres_engine, query, chunk_size=7)]
    pd.testing.assert_frame_equal(pd.concat(chunks, ignore_index=True), whole)
    counts = [re.search(r"(\d+) values? read", str(w.message)) for w in record if w.category is TodoDataWarning]
    assert sum(int(found.group(1)) for found in counts if found) == 2 * (6 + 5)  # once in sql, once in the chunks
    assert whole["d"].isna().sum() == 6 and (whole["n"] == math.inf).sum() == 5


# -- the magic -------------------------------------------------------------------------------------


@pytest.fixture
def pg_shell(
    postgres_server: PostgresServer, pg_engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> Iterator[InteractiveShell]:
    """An IPython shell whose notebook database is the PostgreSQL test database."""
    monkeypatch.setenv("DATABASE_URL", postgres_server.url)
    get_settings.cache_clear()
    ipython = ipython_shell()
    magics = TodoSqlMagics(ipython)
    ipython.register_magics(magics)
    yield ipython
    if magics._engine is not None:
        run(magics._engine.dispose())
    ipython.user_ns.clear()


def test_the_magic_shows_values_past_pandas_range(pg_shell: InteractiveShell) -> None:
    # Issue 16: the cell's display failed with pandas' OverflowError.
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        (shown,) = cell(pg_shell, "SELECT '5874897-12-31'::date AS d, interval '300000 years' AS iv, 1 AS n")
    assert set(warned(record)) == {"d", "iv"}
    caption, header, row = shown["text/plain"].splitlines()
    assert caption == "1 row, 3 columns"  # said once, over the table
    assert header.split() == ["d", "iv", "n"] and row.split() == ["NULL", "NULL", "1"]


async def test_a_task_created_past_9999_reads_as_nat_and_the_frame_prints(engine: AsyncEngine) -> None:
    """The utc_range rule forbids it, but no constraint stops another client writing it."""
    from sqlalchemy import text

    far = "10000-06-01 00:00:00+00" if engine.dialect.name == "postgresql" else "10000-06-01 00:00:00.000000"
    # updated_at too: each column warns for itself.
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO tasks (id, user_id, title, status, created_at, updated_at) "
                f"VALUES ('5d0c9d0e-0000-4000-8000-000000000001', 'u', 't', 'pending', '{far}', '{far}')"
            )
        )
    if engine.dialect.name == "postgresql":
        with warnings.catch_warnings(record=True) as given:
            warnings.simplefilter("always")
            frame = await queries.tasks_frame(engine)
        assert sorted(str(warning.message).split(":")[0] for warning in given) == [
            'column "created_at"',
            'column "updated_at"',
        ]
        assert all(issubclass(warning.category, TodoDataWarning) for warning in given)
    else:  # stored as text, which SQLite's reader cannot take as a time either
        frame = await queries.tasks_frame(engine)
    assert frame["created_at"].isna().all() and repr(frame)
