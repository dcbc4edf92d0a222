"""Revision 0002: the database refreshes updated_at; drift and constraints see the trigger."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.helpers import PostgresServer
from tests.integration.scratch import Scratch, scratch, scratch_url
from todo_data import Task, checks, create_engine, migrations, session_scope
from todo_data.database import sessionmaker
from todo_data.triggers import TRIGGERS, UPDATED_AT

__all__ = ["scratch", "scratch_url"]  # fixtures used by the tests below

LONG_AGO = datetime(2020, 1, 1, tzinfo=UTC)


async def add_old_task(engine: AsyncEngine) -> Task:
    task = Task(user_id="u1", title="old", created_at=LONG_AGO, updated_at=LONG_AGO)
    async with session_scope(engine) as session:
        session.add(task)
    return task


async def stored(engine: AsyncEngine, task_id: uuid.UUID) -> Task:
    async with sessionmaker(engine)() as session:
        loaded = await session.get(Task, task_id)
    assert loaded is not None
    return loaded


async def test_a_raw_update_by_another_client_refreshes_updated_at(engine: AsyncEngine) -> None:
    task = await add_old_task(engine)
    before = datetime.now(UTC)
    async with engine.begin() as conn:
        await conn.execute(text("UPDATE tasks SET title = 'renamed'"))
    loaded = await stored(engine, task.id)
    assert loaded.title == "renamed"
    assert loaded.updated_at.tzinfo is UTC
    # SQLite's clock has milliseconds: allow the instant to round down by one.
    assert before - timedelta(milliseconds=1) <= loaded.updated_at <= datetime.now(UTC)
    assert loaded.created_at == LONG_AGO


async def test_the_orm_path_keeps_the_instant_it_wrote_and_the_object_holds(engine: AsyncEngine) -> None:
    task = await add_old_task(engine)
    async with session_scope(engine) as session:
        loaded = await session.get(Task, task.id)
        assert loaded is not None
        loaded.title = "done"
    assert loaded.updated_at > LONG_AGO
    assert (await stored(engine, task.id)).updated_at == loaded.updated_at


async def test_an_update_that_sets_updated_at_itself_is_kept(engine: AsyncEngine) -> None:
    task = await add_old_task(engine)
    chosen = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)
    async with sessionmaker(engine)() as session:
        loaded = await session.get(Task, task.id)
        assert loaded is not None
        loaded.updated_at = chosen
        await session.commit()
    assert (await stored(engine, task.id)).updated_at == chosen


async def test_sqlite_trigger_writes_canonical_text_and_never_recurses(sqlite_engine: AsyncEngine) -> None:
    await add_old_task(sqlite_engine)
    async with sqlite_engine.begin() as conn:
        await conn.execute(text("PRAGMA recursive_triggers = ON"))
        for title in ("a", "b", "c"):  # within the same millisecond, often
            await conn.execute(text("UPDATE tasks SET title = :title"), {"title": title})
        value = (await conn.execute(text("SELECT updated_at FROM tasks"))).scalar_one()
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}", value), value


async def test_constraints_list_the_trigger(engine: AsyncEngine) -> None:
    frame = await checks.constraints(engine)
    row = frame.set_index("name").loc[UPDATED_AT.name]
    assert row["kind"] == "trigger"
    assert row["columns"] == "updated_at"
    assert "UPDATE ON" in row["definition"] and "tasks" in row["definition"]
    assert frame["kind"].tolist()[-1] == "trigger"


async def test_drift_reports_a_missing_trigger(scratch: Scratch) -> None:
    on = " ON tasks" if scratch.backend == "postgresql" else ""
    await scratch.execute(f"DROP TRIGGER {UPDATED_AT.name}{on}")
    frame = await migrations.drift(scratch.engine)
    assert frame[["operation", "table", "name"]].values.tolist() == [["add_trigger", "tasks", UPDATED_AT.name]]
    assert "in the model, not in the database" in frame["detail"].iloc[0]


async def test_drift_reports_an_extra_trigger(scratch: Scratch) -> None:
    if scratch.backend == "postgresql":
        await scratch.execute(
            "CREATE TRIGGER trg_tasks_audit AFTER DELETE ON tasks FOR EACH ROW EXECUTE FUNCTION tasks_set_updated_at()"
        )
    else:
        await scratch.execute("CREATE TRIGGER trg_tasks_audit AFTER DELETE ON tasks BEGIN SELECT 1; END")
    frame = await migrations.drift(scratch.engine)
    assert frame[["operation", "name"]].values.tolist() == [["remove_trigger", "trg_tasks_audit"]]


async def test_drift_reports_an_altered_trigger(scratch: Scratch) -> None:
    if scratch.backend == "postgresql":
        await scratch.execute(
            f"DROP TRIGGER {UPDATED_AT.name} ON tasks",
            f"CREATE TRIGGER {UPDATED_AT.name} BEFORE INSERT OR UPDATE ON tasks "
            "FOR EACH ROW EXECUTE FUNCTION tasks_set_updated_at()",
        )
    else:
        await scratch.execute(
            f"DROP TRIGGER {UPDATED_AT.name}",
            f"CREATE TRIGGER {UPDATED_AT.name} AFTER UPDATE ON tasks BEGIN "
            "UPDATE tasks SET updated_at = CURRENT_TIMESTAMP WHERE rowid = NEW.rowid; END",
        )
    frame = await migrations.drift(scratch.engine)
    assert frame[["operation", "name"]].values.tolist() == [["modify_trigger", UPDATED_AT.name]]
    assert "database has" in frame["detail"].iloc[0]


async def test_drift_reports_another_function_body_and_a_disabled_trigger_on_postgresql(
    postgres_server: PostgresServer,
) -> None:
    url = postgres_server.scratch_url()
    engine = create_engine(url)
    try:
        await migrations.upgrade(engine)
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "CREATE OR REPLACE FUNCTION tasks_set_updated_at() RETURNS trigger LANGUAGE plpgsql "
                    "AS $$ BEGIN RETURN NEW; END $$"
                )
            )
            await conn.execute(text(f"ALTER TABLE tasks DISABLE TRIGGER {UPDATED_AT.name}"))
        frame = await migrations.drift(engine)
    finally:
        await engine.dispose()
    assert frame[["operation", "name"]].values.tolist() == [["modify_trigger", UPDATED_AT.name]]
    detail = frame["detail"].iloc[0]
    assert "body of tasks_set_updated_at() differs" in detail and "disabled" in detail


def test_every_declared_trigger_has_a_definition_for_each_backend() -> None:
    for trigger in TRIGGERS:
        assert trigger.name in trigger.definition("postgresql") and trigger.name in trigger.definition("sqlite")
