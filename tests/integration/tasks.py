"""Rows of tasks for the integration tests: the contract's rows, inserted through the model or written raw."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import event, insert
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.integration.scratch import Scratch, rewrite_sqlite_table
from todo_data import TaskStatus
from todo_data.models import Task
from todo_data.rules import MAX_DESCRIPTION_LENGTH, PRIMARY_KEY_NAME, TABLE_NAME

table = Task.__table__  # type: ignore[attr-defined]


HUGE = "😀é" * (MAX_DESCRIPTION_LENGTH // 2)


def literal(value: object) -> str:
    return "NULL" if value is None else "'" + str(value).replace("'", "''") + "'"


T0 = datetime(2025, 3, 30, 22, 30, tzinfo=UTC)  # a Sunday evening, end of a month in some zones


CONTRACT_DTYPES = {
    "id": "str",
    "user_id": "str",
    "title": "str",
    "description": "str",
    "status": "category",
    "created_at": "datetime64[us, UTC]",
    "updated_at": "datetime64[us, UTC]",
}


def task_rows() -> list[dict[str, Any]]:
    """Rows covering the edge cases: ties on created_at, NULLs, huge and non-ASCII text, unknown statuses."""
    ids = [uuid.UUID(int=(i * 0x9E3779B97F4A7C15) % (1 << 128), version=4) for i in range(1, 13)]
    specs = [
        ("alice", "Write the report", "Numbers from Q1", TaskStatus.PENDING, T0),
        ("alice", "Café ☕ order", None, TaskStatus.COMPLETED, T0),  # same created_at: ordered by id
        ("bob", "日本語のタイトル", HUGE, TaskStatus.IN_PROGRESS, T0 + timedelta(minutes=45)),
        ("bob", 'Quote "it", tab\tand\nnewline', "back\\slash, comma", "archived", T0 + timedelta(days=1)),
        ("carol", "x" * 200, "", TaskStatus.COMPLETED, T0 - timedelta(days=40, microseconds=1)),
        ("carol", "Short", "d" * 12, TaskStatus.PENDING, T0 - timedelta(days=3)),
        ("dave", "Thirteen byte", "d" * 13, "blocked", T0 + timedelta(days=70)),
        ("ümit", "Ünïcödé user", "\x01ctrl\x7f", TaskStatus.PENDING, T0 + timedelta(hours=1, microseconds=7)),
    ]
    rows = []
    for i, (user_id, title, description, status, created) in enumerate(specs):
        rows.append(
            {
                "id": ids[i],
                "user_id": user_id,
                "title": title,
                "description": description,
                "status": str(status),
                "created_at": created,
                "updated_at": created + timedelta(seconds=i),
            }
        )
    return rows


async def insert_rows(engine: AsyncEngine, rows: list[dict[str, Any]]) -> None:
    async with engine.begin() as conn:
        await conn.execute(insert(table), rows)


@contextmanager
def statements(engine: AsyncEngine) -> Iterator[list[tuple[str, Any, bool]]]:
    """Every statement the engine sends: (sql, parameters, server-side cursor)."""
    seen: list[tuple[str, Any, bool]] = []

    def record(conn: Any, cursor: Any, sql: str, params: Any, context: Any, executemany: bool) -> None:
        seen.append((sql, params, bool(context is not None and context.execution_options.get("stream_results"))))

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)


async def insert_raw(scratch: Scratch, **values: object) -> str:
    """One row written with SQL literals; returns its id as tasks_frame shows it ("" for NULL)."""
    row: dict[str, object] = {
        "id": uuid.uuid4(),
        "user_id": "raw",
        "title": "written raw",
        "description": None,
        "status": "pending",
        "created_at": "2025-01-01 00:00:00+00:00",
        "updated_at": "2025-01-01 00:00:00+00:00",
        **values,
    }
    task_id = row["id"]
    if isinstance(task_id, uuid.UUID) and scratch.backend == "sqlite":
        row["id"] = task_id.hex  # how SQLAlchemy stores a UUID in SQLite
    names = ", ".join(row)
    insert = f"INSERT INTO {TABLE_NAME} ({names}) VALUES ({', '.join(map(literal, row.values()))})"
    if scratch.backend == "postgresql":
        await scratch.execute("SET LOCAL TimeZone = 'UTC'", insert)  # naive text means UTC, as in SQLite
    else:
        await scratch.execute(insert)
    return "" if task_id is None else str(task_id)


async def drop_not_null(scratch: Scratch, columns: Iterable[str]) -> None:
    """Let the columns hold NULL, as a hand-made schema change would."""
    for column in columns:
        if scratch.backend == "postgresql":
            if column == "id":
                await scratch.execute(f"ALTER TABLE {TABLE_NAME} DROP CONSTRAINT {PRIMARY_KEY_NAME}")
            await scratch.execute(f"ALTER TABLE {TABLE_NAME} ALTER COLUMN {column} DROP NOT NULL")
        else:
            await scratch.engine.dispose()  # SQLite reads the changed schema on the next connect
            path = Path(str(make_url(scratch.url).database))
            rewrite_sqlite_table(path, re.compile(rf"(?m)^(\s*{column} .*?) NOT NULL"), r"\1")
