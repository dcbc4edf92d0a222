"""queries.sql and iter_sql on SQLite, PostgreSQL and PgBouncer; output= on every frame function."""

from __future__ import annotations

import asyncio
import math
import sys
import uuid
from contextlib import aclosing
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest
from sqlalchemy import insert, text
from sqlalchemy.ext.asyncio import AsyncEngine

from todo_data import Task, queries
from todo_data.database import sessionmaker
from todo_data.errors import InvalidArgumentError, MissingExtraError, QueryError, TodoDataWarning

table = Task.__table__  # type: ignore[attr-defined]
T0 = datetime(2025, 5, 1, 12, 0, tzinfo=UTC)

MIXED = """
SELECT 1::int2 AS i2, 2::int4 AS i4, 3::int8 AS i8, CAST(NULL AS bigint) AS i8_null,
       1.5::float4 AS f4, 0.1::float8 AS f8, 12.345::numeric AS num, CAST(NULL AS numeric) AS num_null,
       true AS b, CAST(NULL AS boolean) AS b_null,
       'héllo 🚀'::text AS t, 'v'::varchar(5) AS v, 'c'::char(3) AS c, CAST(NULL AS text) AS t_null,
       'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11'::uuid AS u, CAST(NULL AS uuid) AS u_null,
       '2024-02-29 23:59:59.999999+00'::timestamptz AS tz, 'infinity'::timestamptz AS tz_inf,
       '2024-02-29 23:59:59.5'::timestamp AS ts, '-infinity'::timestamp AS ts_inf,
       '2024-02-29'::date AS d, 'infinity'::date AS d_inf,
       '1 day 02:00:00.25'::interval AS iv, '{"a": [1, 2]}'::jsonb AS jb, '{"b":2}'::json AS j,
       ARRAY[1, 2] AS arr
"""
MIXED_DTYPES = {
    "i2": "int64",
    "i4": "int64",
    "i8": "int64",
    "i8_null": "Int64",
    "f4": "float64",
    "f8": "float64",
    "num": "float64",
    "num_null": "float64",
    "b": "bool",
    "b_null": "boolean",
    "t": "str",
    "v": "str",
    "c": "str",
    "t_null": "str",
    "u": "str",
    "u_null": "str",
    "tz": "datetime64[us, UTC]",
    "tz_inf": "datetime64[us, UTC]",
    "ts": "datetime64[us]",
    "ts_inf": "datetime64[us]",
    "d": "date32[day][pyarrow]",
    "d_inf": "date32[day][pyarrow]",
    "iv": "timedelta64[us]",
    "jb": "str",
    "j": "str",
    "arr": "str",
}


async def add_tasks(engine: AsyncEngine, count: int = 5) -> list[dict[str, Any]]:
    rows = [
        {
            "id": uuid.UUID(int=i + 1, version=4),
            "user_id": f"user{i % 2}",
            "title": f"Invoice {i}" if i % 2 else f"Call {i}",
            "description": None if i % 3 == 0 else f"about {i}",
            "status": "pending",
            "created_at": T0 + timedelta(hours=i),
            "updated_at": T0 + timedelta(hours=i),
        }
        for i in range(count)
    ]
    async with engine.begin() as conn:
        await conn.execute(insert(table), rows)
    return rows


async def task_count(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(text("SELECT count(*) FROM tasks"))).scalar_one())


# -- types ---------------------------------------------------------------------------------------


async def test_postgresql_types_follow_the_result_columns(postgres_engine: AsyncEngine) -> None:
    with pytest.warns(TodoDataWarning) as given:
        frame = await queries.sql(postgres_engine, MIXED)
    # ±infinity has no value in any frame: read as missing, each column named.
    assert sorted(str(warning.message).split('"')[1] for warning in given) == ["d_inf", "ts_inf", "tz_inf"]
    assert {name: str(dtype) for name, dtype in frame.dtypes.items()} == MIXED_DTYPES
    row = frame.iloc[0]
    assert (row["i2"], row["i4"], row["i8"]) == (1, 2, 3) and pd.isna(row["i8_null"])
    assert row["f4"] == 1.5 and row["f8"] == 0.1 and row["num"] == 12.345 and math.isnan(row["num_null"])
    assert row["b"] is np.True_ and pd.isna(row["b_null"])
    assert (row["t"], row["v"], row["c"]) == ("héllo 🚀", "v", "c  ") and pd.isna(row["t_null"])
    assert row["u"] == "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11" and pd.isna(row["u_null"])
    assert row["tz"] == pd.Timestamp("2024-02-29 23:59:59.999999", tz="UTC")
    assert row["ts"] == pd.Timestamp("2024-02-29 23:59:59.5")
    assert pd.isna(row["tz_inf"]) and pd.isna(row["ts_inf"]) and pd.isna(row["d_inf"])  # never a wrapped date
    assert row["d"] == date(2024, 2, 29)
    assert row["iv"] == pd.Timedelta(days=1, hours=2, milliseconds=250)
    assert row["jb"] == '{"a": [1, 2]}' and row["j"] == '{"b":2}' and row["arr"] == "{1,2}"


async def test_types_that_exist_on_both_backends_give_the_same_dtypes(engine: AsyncEngine) -> None:
    await add_tasks(engine)
    query = (
        "SELECT user_id, count(*) AS n, avg(length(title)) * 1.0 AS mean_title, max(description) AS last"
        " FROM tasks GROUP BY user_id ORDER BY user_id"
    )
    frame = await queries.sql(engine, query)
    assert list(frame.columns) == ["user_id", "n", "mean_title", "last"]
    assert [str(dtype) for dtype in frame.dtypes] == ["str", "int64", "float64", "str"]
    assert frame["user_id"].tolist() == ["user0", "user1"]
    assert frame["n"].tolist() == [3, 2]


async def test_null_values_of_each_kind_read_as_missing(engine: AsyncEngine) -> None:
    await add_tasks(engine)
    frame = await queries.sql(engine, "SELECT description, length(description) AS size FROM tasks ORDER BY id")
    assert frame["description"].isna().tolist() == [True, False, False, True, False]
    assert str(frame["size"].dtype) == "Int64"
    assert frame["size"].isna().tolist() == [True, False, False, True, False]


async def test_an_empty_result_keeps_its_columns(engine: AsyncEngine) -> None:
    frame = await queries.sql(engine, "SELECT id, title FROM tasks WHERE title = :t", {"t": "nothing"})
    assert list(frame.columns) == ["id", "title"] and len(frame) == 0


# -- parameters --------------------------------------------------------------------------------


async def test_parameters_are_bound_whatever_they_contain(engine: AsyncEngine) -> None:
    rows = await add_tasks(engine)
    hostile = "O'Brien'); DROP TABLE tasks; -- $1 :x \\"
    frame = await queries.sql(engine, "SELECT :value AS value, :value AS again", {"value": hostile})
    assert frame["value"].tolist() == [hostile] and frame["again"].tolist() == [hostile]
    found = await queries.sql(
        engine,
        "SELECT title FROM tasks WHERE user_id = :user AND created_at >= :since AND title LIKE :pattern ORDER BY title",
        {"user": "user1", "since": T0 + timedelta(hours=1), "pattern": "Invoice%"},
    )
    assert found["title"].tolist() == sorted(row["title"] for row in rows if row["user_id"] == "user1")
    assert await task_count(engine) == len(rows)


async def test_postgresql_parameters_take_lists_nulls_and_text_for_any_type(postgres_engine: AsyncEngine) -> None:
    rows = await add_tasks(postgres_engine)
    wanted = [rows[0]["id"], rows[3]["id"]]
    frame = await queries.sql(postgres_engine, "SELECT id FROM tasks WHERE id = ANY(:ids) ORDER BY id", {"ids": wanted})
    assert frame["id"].tolist() == [str(value) for value in wanted]
    frame = await queries.sql(
        postgres_engine,
        "SELECT count(*) AS n FROM tasks"
        " WHERE created_at < :until AND (CAST(:user AS text) IS NULL OR user_id = :user)",
        {"until": "2025-05-01T14:00:00Z", "user": None},
    )
    assert frame["n"].tolist() == [2]


async def test_postgresql_reports_which_parameter_has_a_bad_value(postgres_engine: AsyncEngine) -> None:
    with pytest.raises(InvalidArgumentError, match=":since"):
        await queries.sql(postgres_engine, "SELECT count(*) FROM tasks WHERE created_at >= :since", {"since": 12})


@pytest.mark.parametrize(
    ("query", "params", "message"),
    [
        ("SELECT :a, :b", {"a": 1}, "no value for :b"),
        ("SELECT 1", {"a": 1}, "params has 'a', which the query does not use"),
        ("SELECT :a", [1], "params must be a mapping"),
        ("   ", None, "query must be SQL text"),
        (None, None, "query must be SQL text"),
    ],
)
async def test_bad_arguments_fail_before_any_query(query: Any, params: Any, message: str) -> None:
    with pytest.raises(InvalidArgumentError, match=message):
        await queries.sql(None, query, params)  # type: ignore[arg-type]


async def test_a_literal_is_kept_as_written_and_an_escaped_colon_is_a_colon(engine: AsyncEngine) -> None:
    frame = await queries.sql(engine, "SELECT 'a:b' AS text, 'a\\:b' AS escaped, :c AS c", {"c": "d"})
    assert frame.iloc[0].tolist() == ["a:b", "a\\:b", "d"]
    if engine.dialect.name == "postgresql":  # outside a literal, \: is a colon that is no parameter
        frame = await queries.sql(engine, "SELECT (ARRAY[1, 2, 3])[:lo\\:3] AS part", {"lo": 2})
        assert frame["part"].tolist() == ["{2,3}"]


# -- transactions and errors -----------------------------------------------------------------


async def test_with_an_engine_a_write_is_refused_and_nothing_changes(engine: AsyncEngine) -> None:
    await add_tasks(engine, 2)
    with pytest.raises(InvalidArgumentError, match="DELETE"):
        await queries.sql(engine, "DELETE FROM tasks")
    assert await task_count(engine) == 2
    # The engine itself is not left read-only.
    async with engine.begin() as conn:
        await conn.execute(text("DELETE FROM tasks"))
    assert await task_count(engine) == 0


async def test_a_connection_or_session_runs_in_the_callers_transaction(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        await conn.execute(insert(table), [{"id": uuid.uuid4(), "user_id": "u", "title": "uncommitted"}])
        frame = await queries.sql(conn, "SELECT title FROM tasks")
        assert frame["title"].tolist() == ["uncommitted"]
        # One read statement on a connection too: a write belongs to the caller's own code.
        with pytest.raises(InvalidArgumentError, match="UPDATE"):
            await queries.sql(conn, "UPDATE tasks SET title = :title RETURNING title", {"title": "changed"})
        assert (await queries.sql(conn, "SELECT title FROM tasks"))["title"].tolist() == ["uncommitted"]
        assert conn.in_transaction()
        await conn.rollback()
    assert await task_count(engine) == 0
    async with sessionmaker(engine)() as session:
        session.add(Task(user_id="u", title="pending in the session"))
        await session.flush()
        frame = await queries.sql(session, "SELECT title FROM tasks")
        assert frame["title"].tolist() == ["pending in the session"]


async def test_a_failing_query_raises_query_error_with_the_databases_message(engine: AsyncEngine) -> None:
    with pytest.raises(QueryError) as failed:
        await queries.sql(engine, "SELECT no_such_column FROM tasks")
    message = str(failed.value)
    assert "no_such_column" in message
    assert ("does not exist" in message) if engine.dialect.name == "postgresql" else ("no such column" in message)
    # The engine is fine afterwards.
    assert (await queries.sql(engine, "SELECT count(*) AS n FROM tasks"))["n"].tolist() == [0]


async def test_statements_copy_cannot_wrap_still_answer(postgres_engine: AsyncEngine) -> None:
    plan = await queries.sql(postgres_engine, "EXPLAIN SELECT * FROM tasks WHERE user_id = :u", {"u": "x"})
    assert list(plan.columns) == ["QUERY PLAN"] and plan["QUERY PLAN"].str.contains("tasks").any()
    shown = await queries.sql(postgres_engine, "SHOW TimeZone")
    assert str(shown.dtypes.iloc[0]) == "str" and len(shown) == 1


# -- iter_sql ----------------------------------------------------------------------------------


async def test_iter_sql_chunks_concatenate_to_sql(engine: AsyncEngine) -> None:
    await add_tasks(engine, 7)
    query = "SELECT id, title, description, created_at FROM tasks WHERE user_id <> :nobody ORDER BY created_at"
    whole = await queries.sql(engine, query, {"nobody": "x"})
    chunks = [chunk async for chunk in queries.iter_sql(engine, query, {"nobody": "x"}, chunk_size=3)]
    assert [len(chunk) for chunk in chunks] == [3, 3, 1]
    pd.testing.assert_frame_equal(pd.concat(chunks, ignore_index=True), whole)


async def test_iter_sql_stops_early_and_the_engine_still_answers(engine: AsyncEngine) -> None:
    await add_tasks(engine, 7)
    async with aclosing(queries.iter_sql(engine, "SELECT * FROM tasks", chunk_size=2)) as chunks:
        async for chunk in chunks:
            assert len(chunk) == 2
            break
    assert (await queries.sql(engine, "SELECT count(*) AS n FROM tasks"))["n"].tolist() == [7]


async def test_iter_sql_failure_is_a_query_error(engine: AsyncEngine) -> None:
    with pytest.raises(QueryError, match="nope"):
        async for _ in queries.iter_sql(engine, "SELECT nope FROM tasks"):
            pass
    with pytest.raises(InvalidArgumentError, match="chunk_size"):
        async for _ in queries.iter_sql(engine, "SELECT 1", chunk_size=0):
            pass


# -- output= -------------------------------------------------------------------------------------


async def test_sql_output_arrow_and_polars_keep_the_types(postgres_engine: AsyncEngine) -> None:
    with pytest.warns(TodoDataWarning):
        arrow = await queries.sql(postgres_engine, MIXED, output="arrow")
    assert isinstance(arrow, pa.Table)
    types = dict(zip(arrow.column_names, arrow.schema.types, strict=True))
    assert types["tz"] == pa.timestamp("us", tz="UTC") and types["ts"] == pa.timestamp("us")
    assert types["u"] == pa.large_string() and types["d"] == pa.date32() and types["num"] == pa.float64()
    with pytest.warns(TodoDataWarning):
        polars = await queries.sql(postgres_engine, MIXED, output="polars")
    assert isinstance(polars, pl.DataFrame)
    assert polars.schema["tz"] == pl.Datetime("us", "UTC") and polars.schema["u"] == pl.String
    assert polars["tz_inf"].null_count() == 1


FRAME_FUNCTIONS = {
    "tasks_frame": queries.tasks_frame,
    "status_counts": queries.status_counts,
    "tasks_per_user": queries.tasks_per_user,
    "created_over_time": queries.created_over_time,
    "open_task_ages": queries.open_task_ages,
}


@pytest.mark.parametrize("name", list(FRAME_FUNCTIONS))
async def test_every_frame_function_gives_arrow_and_polars_with_the_same_content(
    engine: AsyncEngine, name: str
) -> None:
    await add_tasks(engine)
    function: Any = FRAME_FUNCTIONS[name]
    options = {"now": T0 + timedelta(days=30)} if name == "open_task_ages" else {}
    frame = await function(engine, **options)
    arrow = await function(engine, output="arrow", **options)
    polars = await function(engine, output="polars", **options)
    assert isinstance(arrow, pa.Table) and isinstance(polars, pl.DataFrame)
    assert arrow.column_names == list(frame.columns) == polars.columns
    assert arrow.num_rows == len(frame) == polars.height
    for column, dtype in frame.dtypes.items():
        arrow_type = arrow.schema.field(column).type
        if isinstance(dtype, pd.CategoricalDtype):
            assert pa.types.is_dictionary(arrow_type)
            assert arrow.column(column).combine_chunks().dictionary.to_pylist() == list(dtype.categories)
            assert polars.schema[column] == pl.Categorical
        elif isinstance(dtype, pd.DatetimeTZDtype):
            assert arrow_type == pa.timestamp("us", tz="UTC")
            assert polars.schema[column] == pl.Datetime("us", "UTC")
        elif str(dtype) == "str":
            assert arrow_type == pa.large_string() and polars.schema[column] == pl.String
    # Values agree: the Arrow table read back is the pandas frame.
    back = arrow.to_pandas(types_mapper={pa.large_string(): pd.StringDtype("pyarrow", na_value=np.nan)}.get)
    for column in frame.columns:
        assert back[column].astype(object).where(back[column].notna(), None).tolist() == (
            frame[column].astype(object).where(frame[column].notna(), None).tolist()
        )


async def test_a_bad_output_fails_before_any_query(sqlite_engine: AsyncEngine) -> None:
    with pytest.raises(InvalidArgumentError, match='output must be "pandas", "arrow" or "polars"'):
        await queries.status_counts(sqlite_engine, output="excel")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="output must be"):
        await queries.sql(sqlite_engine, "SELECT 1", output="numpy")  # type: ignore[arg-type]


async def test_polars_output_without_polars_names_the_extra(
    sqlite_engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "polars", None)  # as if the extra were not installed
    with pytest.raises(MissingExtraError, match=r"todo-data\[polars\]"):
        await queries.tasks_frame(sqlite_engine, output="polars")
    with pytest.raises(ImportError):  # MissingExtraError is an ImportError too
        await queries.sql(sqlite_engine, "SELECT 1", output="polars")


async def test_tasks_frame_ordering_and_timestamps_survive_arrow(engine: AsyncEngine) -> None:
    rows = await add_tasks(engine)
    arrow = await queries.tasks_frame(engine, output="arrow")
    assert arrow.column("id").to_pylist() == [str(row["id"]) for row in rows]
    assert arrow.column("created_at").to_pylist() == [row["created_at"] for row in rows]


async def test_many_queries_through_pgbouncer_leave_no_prepared_statement_behind(pooled_engine: AsyncEngine) -> None:
    # PgBouncer's transaction mode hands each transaction any server connection: a named
    # prepared statement left on one would collide or go missing in the next.
    await add_tasks(pooled_engine)

    async def ask(i: int) -> list[Any]:
        frame = await queries.sql(pooled_engine, "SELECT count(*) AS n FROM tasks WHERE title <> :t", {"t": f"x{i}"})
        return list(frame["n"])

    assert await asyncio.gather(*(ask(i) for i in range(20))) == [[5]] * 20
    left = await queries.sql(
        pooled_engine, "SELECT count(*) AS n FROM pg_prepared_statements WHERE name LIKE :p", {"p": "__todo_data_%"}
    )
    assert left["n"].tolist() == [0]
