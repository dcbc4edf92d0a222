"""Hostile data written raw by another client never crashes a query or a check.

With every CHECK constraint dropped (a hand-made schema change, or rows older than a
constraint), another client stores what the Python layer would refuse. Each bad input
is either rejected by the driver/database with a clear error, or stored and then read,
aggregated and reported by todo_data without crashing.
"""

from __future__ import annotations

import sqlite3
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, StatementError

from tests.integration.scratch import Scratch, scratch, scratch_url
from todo_data import Task, checks, migrations, queries
from todo_data.rules import CHECK_RULES, MAX_DESCRIPTION_LENGTH, MAX_TITLE_LENGTH

__all__ = ["scratch", "scratch_url"]  # fixtures used below

table = Task.__table__  # type: ignore[attr-defined]
TEN_MB = "x" * 10_000_000
SQL_TITLE = "'); DROP TABLE tasks; --"

HOSTILE: dict[str, dict[str, Any]] = {
    "ten-megabyte-description": {"description": TEN_MB},
    "sql-looking-title": {"title": SQL_TITLE},
    "sql-looking-user": {"user_id": "x' OR '1'='1"},
    "unknown-status": {"status": "archived"},
    "status-named-like-a-column": {"status": "total"},
    "blank-title": {"title": "   "},
    "long-title": {"title": "t" * (MAX_TITLE_LENGTH + 1)},
    "long-description": {"description": "d" * (MAX_DESCRIPTION_LENGTH + 1)},
    "emoji-and-controls": {"title": "🚀\x01\x7f\u200b", "description": "\t\n\r"},
}


def raw_row(**overrides: Any) -> dict[str, Any]:
    return {
        "id": uuid.uuid4(),
        "user_id": "intruder",
        "title": "t",
        "description": None,
        "status": "pending",
        **overrides,
    }


async def test_hostile_rows_are_rejected_clearly_or_reported_never_crash(scratch: Scratch) -> None:
    for rule in CHECK_RULES:
        await scratch.drop_check(rule.name)
    stored: dict[str, uuid.UUID] = {}
    for name, values in HOSTILE.items():
        row = raw_row(**values)
        async with scratch.engine.begin() as conn:
            await conn.execute(insert(table).values(**row))
        stored[name] = row["id"]

    # What PostgreSQL cannot store is refused by the driver or the server, cleanly.
    for unstorable in ("nul\x00inside", "lone\ud800surrogate"):
        if scratch.backend == "sqlite" and "\x00" in unstorable:
            continue  # SQLite stores NULs: written below by a raw client instead
        with pytest.raises((DBAPIError, StatementError, UnicodeEncodeError)):
            async with scratch.engine.begin() as conn:
                await conn.execute(insert(table).values(**raw_row(title=unstorable)))
    if scratch.backend == "sqlite":
        await scratch.engine.dispose()
        con = sqlite3.connect(Path(str(make_url(scratch.url).database)))
        nul_id = uuid.uuid4()
        con.execute(
            "INSERT INTO tasks (id, user_id, title, status, created_at, updated_at) "
            "VALUES (?, 'intruder', ?, 'pending', '2026-01-01 00:00:00.000000', '2026-01-01 00:00:00.000000')",
            (nul_id.hex, "nul\x00inside"),
        )
        con.commit()
        con.close()
        stored["nul-character"] = nul_id

    async with scratch.engine.connect() as conn:
        assert (await conn.execute(select(func.count()).select_from(table))).scalar_one() == len(stored)

    frame = await queries.tasks_frame(scratch.engine)
    by_id = frame.set_index("id")
    assert by_id.loc[str(stored["ten-megabyte-description"]), "description"] == TEN_MB
    assert by_id.loc[str(stored["sql-looking-title"]), "title"] == SQL_TITLE
    assert {"archived", "total"} <= set(frame["status"].cat.categories)
    chunks = [chunk async for chunk in queries.iter_tasks_frames(scratch.engine, chunk_size=3)]
    assert sum(len(chunk) for chunk in chunks) == len(frame)
    counts = await queries.status_counts(scratch.engine)
    assert counts.set_index("status").loc["archived", "count"] == 1
    per_user = await queries.tasks_per_user(scratch.engine)
    assert per_user["total"].sum() == len(stored)
    assert per_user["total (status)"].sum() == 1  # a status named "total" keeps its own column
    assert not (await queries.created_over_time(scratch.engine)).empty
    assert len(await queries.open_task_ages(scratch.engine)) == len(stored)

    found = await checks.violations(scratch.engine)
    flagged = {(row.id, row.column) for row in found.itertuples()}
    for name, column in [
        ("unknown-status", "status"),
        ("status-named-like-a-column", "status"),
        ("blank-title", "title"),
        ("long-title", "title"),
        ("long-description", "description"),
        ("ten-megabyte-description", "description"),
    ] + ([("nul-character", "title")] if scratch.backend == "sqlite" else []):
        assert (str(stored[name]), column) in flagged, name
    assert found["value"].str.len().max() < 200  # long values are shortened for display

    probe = await checks.probe(scratch.engine)
    assert not probe["rejected"].all()  # the dropped constraints show
    drift = await migrations.drift(scratch.engine)
    assert set(drift["operation"]) == {"add_check"}
    verdict = await checks.verify(scratch.engine)
    assert not verdict.ok and {"drift", "probe", "violations"} <= set(verdict.failures)
    async with scratch.engine.connect() as conn:  # nothing the checks did was kept
        assert (await conn.execute(select(func.count()).select_from(table))).scalar_one() == len(stored)
