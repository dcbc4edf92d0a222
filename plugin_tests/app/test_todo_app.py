"""The application's tests: no conftest.py, no -p; todo_data's plugin provides the database."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
import todo_app
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from todo_data import Task, create_engine, get_async_session, migrations
from todo_data.database import target_of


@pytest.fixture
def app_session(todo_session: AsyncSession) -> AsyncIterator[None]:
    async def override() -> AsyncIterator[AsyncSession]:
        yield todo_session

    todo_app.dependency_overrides[get_async_session] = override
    yield
    todo_app.dependency_overrides.clear()


@pytest.mark.asyncio
@pytest.mark.parametrize("run", [1, 2])
async def test_a_committed_task_is_read_back_and_gone_for_the_next_test(app_session: None, run: int) -> None:
    assert await todo_app.list_tasks("alice") == []  # the other run's commit was rolled back
    task = await todo_app.create_task("alice", f"Write the report {run}")
    assert task.id is not None
    assert [t.title for t in await todo_app.list_tasks("alice")] == [f"Write the report {run}"]


@pytest.mark.asyncio
async def test_the_check_refuses_a_title_of_spaces(todo_session: AsyncSession) -> None:
    # Past the model's validation, straight to the table: the database's CHECK refuses it.
    with pytest.raises(IntegrityError, match="ck_tasks_title_not_empty"):
        await todo_session.execute(
            text("INSERT INTO tasks (id, user_id, title, status) VALUES (gen_random_uuid(), 'bob', '   ', 'pending')")
        )
    await todo_session.rollback()
    assert (await todo_session.execute(text("SELECT count(*) FROM tasks"))).scalar_one() == 0


@pytest.mark.asyncio
@pytest.mark.parametrize("run", [1, 2])
async def test_each_engine_has_a_migrated_empty_database_of_its_own(todo_engine: AsyncEngine, run: int) -> None:
    async with todo_engine.begin() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM tasks"))).scalar_one() == 0
        await conn.execute(
            text(
                "INSERT INTO tasks (id, user_id, title, status) VALUES (gen_random_uuid(), 'carol', 'Plan', 'pending')"
            )
        )
        name = (await conn.execute(text("SELECT current_database()"))).scalar_one()
    assert name.startswith("todo_test_")


@pytest.mark.asyncio
async def test_the_updated_at_trigger_is_live(todo_engine: AsyncEngine) -> None:
    async with todo_engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO tasks (id, user_id, title, status, updated_at) "
                "VALUES (gen_random_uuid(), 'dave', 'Old', 'pending', now() - interval '1 day')"
            )
        )
        await conn.execute(text("UPDATE tasks SET title = 'New'"))
        fresh = (await conn.execute(text("SELECT updated_at > now() - interval '1 hour' FROM tasks"))).scalar_one()
    assert fresh


@pytest.mark.asyncio
async def test_the_session_database_is_migrated_and_named_for_this_process(todo_database_url: str) -> None:
    # A URI, or keyword/value when TEST_DATABASE_URL is one: todo_data reads both.
    engine = create_engine(todo_database_url)
    try:
        assert str(target_of(engine).url.database).startswith("todo_test_")
        assert await migrations.current(engine) == migrations.head()
    finally:
        await engine.dispose()


@pytest.mark.asyncio
async def test_sqlite_file_is_migrated(todo_sqlite_engine: AsyncEngine) -> None:
    async with todo_sqlite_engine.begin() as conn:
        await conn.execute(
            text("INSERT INTO tasks (id, user_id, title, status) VALUES (:id, 'erin', 'On SQLite', 'pending')"),
            {"id": uuid.uuid4().hex},
        )
        assert (await conn.execute(text("SELECT count(*) FROM tasks"))).scalar_one() == 1


@pytest.mark.asyncio
async def test_a_model_task_round_trips_through_the_session(todo_session: AsyncSession) -> None:
    todo_session.add(Task(user_id="frank", title="Buy milk"))
    await todo_session.commit()
    assert (await todo_session.execute(text("SELECT title FROM tasks"))).scalar_one() == "Buy milk"


@pytest.mark.asyncio
async def test_a_session_whose_backend_is_terminated_ends_cleanly(
    todo_session: AsyncSession, todo_engine: AsyncEngine
) -> None:
    # The server ends the session's connection (an admin, a restart): the test sees the loss,
    # and the fixture's teardown has nothing left to roll back.
    pid = (await todo_session.execute(text("SELECT pg_backend_pid()"))).scalar_one()
    async with todo_engine.connect() as other:
        assert (await other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})).scalar_one()
    with pytest.raises(DBAPIError):
        await todo_session.execute(text("SELECT 1"))
