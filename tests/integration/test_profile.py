"""``queries.profile``: computed by the database, equal to pandas on the loaded frame — on every backend."""

from __future__ import annotations

import contextlib
import uuid
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.helpers import PostgresServer
from tests.integration.scratch import Scratch, scratch, scratch_url
from tests.integration.tasks import insert_raw
from todo_data import Task, TodoDataWarning, create_engine, migrations, queries, sample, session_scope
from todo_data.rules import MAX_DESCRIPTION_LENGTH, MAX_TITLE_LENGTH, MAX_USER_ID_LENGTH
from todo_data.testing import APP_USER

TEXT_COLUMNS = {
    "user_id": MAX_USER_ID_LENGTH,
    "title": MAX_TITLE_LENGTH,
    "description": MAX_DESCRIPTION_LENGTH,
    "status": None,
}
TIMESTAMP_COLUMNS = ("created_at", "updated_at")
__all__ = ["scratch", "scratch_url"]  # fixtures: a migrated scratch database per backend


def nearest_rank(lengths: list[int], percent: int) -> int:
    """The smallest length with at least ``percent`` % of the values no longer: rank ceil(p/100 * n)."""
    ordered = sorted(lengths)
    rank = -(-percent * len(ordered) // 100)
    return ordered[rank - 1]


def pandas_profile(tasks: pd.DataFrame) -> list[dict[str, Any]]:
    """What pandas says about each column of ``tasks_frame``'s frame."""
    rows = []
    for name in tasks.columns:
        values = tasks[name].dropna()
        row: dict[str, Any] = {
            "column": name,
            "rows": len(tasks),
            "nulls": int(tasks[name].isna().sum()),
            "distinct": int(tasks[name].nunique()),
        }
        if values.empty:
            row.update(min=None, max=None)
        elif name in TIMESTAMP_COLUMNS:
            row.update(min=values.min().isoformat(), max=values.max().isoformat())
        else:
            text = values.astype(str)  # status is categorical; pandas orders text by code point
            row.update(min=text.min(), max=text.max())
        lengths = values.astype(str).str.len().tolist() if name in TEXT_COLUMNS else []
        row.update(
            length_p50=nearest_rank(lengths, 50) if lengths else None,
            length_p95=nearest_rank(lengths, 95) if lengths else None,
            length_max=max(lengths) if lengths else None,
            length_limit=TEXT_COLUMNS.get(name),
        )
        rows.append(row)
    return rows


def as_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [{k: (None if pd.isna(v) else v) for k, v in row.items()} for row in frame.to_dict("records")]


async def test_profile_equals_pandas_on_the_loaded_frame(engine: AsyncEngine) -> None:
    await sample.seed(engine, tasks=3_000, users=40, seed=5)
    async with session_scope(engine) as session:
        # Orders a collation and code points disagree on, the longest title allowed, and
        # lengths that sit on percentile boundaries.
        for title in ("Zebra", "apple", "Äpfel", "éclair", "x" * MAX_TITLE_LENGTH):
            session.add(Task(user_id="Ω-user", title=title, description="d" * 7))
    statements: list[str] = []

    def record(*args: Any) -> None:
        statements.append(args[2])

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    profile = await queries.profile(engine)
    event.remove(engine.sync_engine, "before_cursor_execute", record)
    tasks = await queries.tasks_frame(engine)
    assert as_records(profile) == pandas_profile(tasks)
    # In SQL: two statements read the table, whatever the number of rows.
    assert sum("FROM tasks" in statement for statement in statements) == 2
    assert [str(t) for t in profile.dtypes] == ["str", "int64", "int64", "int64", "str", "str"] + ["Int64"] * 4


async def test_profile_of_an_empty_table_counts_zero_and_shows_no_values(engine: AsyncEngine) -> None:
    profile = await queries.profile(engine)
    assert list(profile["column"]) == ["id", "user_id", "title", "description", "status", "created_at", "updated_at"]
    assert (profile[["rows", "nulls", "distinct"]] == 0).all().all()
    assert profile[["min", "max", "length_p50", "length_p95", "length_max"]].isna().all().all()
    assert list(profile["length_limit"].dropna()) == [MAX_USER_ID_LENGTH, MAX_TITLE_LENGTH, MAX_DESCRIPTION_LENGTH]


async def test_profile_as_arrow_is_the_same_table(engine: AsyncEngine) -> None:
    await sample.seed(engine, tasks=50, users=3, seed=2)
    table = await queries.profile(engine, output="arrow")
    assert isinstance(table, pa.Table)
    assert table.to_pylist() == as_records(await queries.profile(engine))


async def test_text_order_is_code_point_order_whatever_the_database_collation(postgres_server: PostgresServer) -> None:
    """A Neon database may sort text by a language's rules; the profile, like pandas, by code point."""
    if postgres_server.cluster is None:
        pytest.skip("needs the throwaway cluster to create a database with an ICU collation")
    name = f"icu_{uuid.uuid4().hex[:12]}"
    postgres_server.cluster.psql(
        f"CREATE DATABASE {name} TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C.UTF-8' "
        f"OWNER {APP_USER}"
    )
    engine = create_engine(postgres_server.cluster.url(name))
    try:
        await migrations.upgrade(engine)
        async with session_scope(engine) as session:
            for title in ("apple", "Zebra", "Äpfel", "éclair"):
                session.add(Task(user_id=title.lower(), title=title))
        async with engine.connect() as conn:  # the database's own order differs
            assert (await conn.execute(text("SELECT min(title) FROM tasks"))).scalar_one() == "Äpfel"
        profile = (await queries.profile(engine)).set_index("column")
        assert (profile.loc["title", "min"], profile.loc["title", "max"]) == ("Zebra", "éclair")
        assert as_records(profile.reset_index()) == pandas_profile(await queries.tasks_frame(engine))
    finally:
        await engine.dispose()
        postgres_server.cluster.psql(f"DROP DATABASE {name} WITH (FORCE)")


async def test_profile_reads_values_other_clients_wrote_as_tasks_frame_does(scratch: Scratch) -> None:
    """±infinity, text in any ISO 8601 form, unreadable text: the profile agrees with pandas on tasks_frame."""
    await insert_raw(scratch, created_at="2025-01-01T10:00:00Z", updated_at="2025-01-01 12:00:00+02:00")
    await insert_raw(scratch, created_at="2024-12-31T23:30:00.5-01:00")
    if scratch.backend == "postgresql":
        await insert_raw(scratch, created_at="infinity", updated_at="-infinity")
    else:
        await insert_raw(scratch, created_at="not a time", updated_at="2025-13-45")
    with pytest.warns(TodoDataWarning) if scratch.backend == "postgresql" else contextlib.nullcontext():
        tasks = await queries.tasks_frame(scratch.engine)  # ±infinity read as missing, and said so
    profiled = await queries.profile(scratch.engine)
    assert as_records(profiled) == pandas_profile(tasks)
    created = profiled.set_index("column").loc["created_at"]
    assert created["max"] == "2025-01-01T10:00:00+00:00" and created["nulls"] == 1
