"""Streaming replication: the harness's hot standby, and checks.replication on every kind of database."""

from __future__ import annotations

import uuid

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import wait_for_replay
from todo_data import Task, session_scope


async def test_a_write_on_the_primary_becomes_visible_on_the_replica(
    pg_engine: AsyncEngine, replica_engine: AsyncEngine
) -> None:
    task = Task(user_id="replicated", title=f"written on the primary {uuid.uuid4()}")
    async with session_scope(pg_engine) as session:
        session.add(task)
    await wait_for_replay(pg_engine, replica_engine)
    async with replica_engine.connect() as conn:
        rows = (await conn.execute(text("SELECT id, title FROM tasks"))).all()
        in_recovery = (await conn.execute(text("SELECT pg_is_in_recovery()"))).scalar_one()
    assert in_recovery is True
    assert [(str(row.id), row.title) for row in rows] == [(str(task.id), task.title)]
