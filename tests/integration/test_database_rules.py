"""The database layer enforces the rules on its own, on SQLite and on PostgreSQL alike.

Each case bypasses the Python layer with raw SQL; the database must refuse it with an
IntegrityError (a constraint violation, never a driver DataError), and accept the
boundary values.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import insert, inspect, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from todo_data import Task, TaskStatus, session_scope
from todo_data.database import sessionmaker
from todo_data.rules import (
    CHECK_RULES,
    MAX_DESCRIPTION_LENGTH,
    MAX_TITLE_LENGTH,
    MAX_USER_ID_LENGTH,
)

table = Task.__table__  # type: ignore[attr-defined]


def row(**overrides: Any) -> dict[str, Any]:
    return {
        "id": uuid.uuid4(),
        "user_id": "u1",
        "title": "t",
        "description": None,
        "status": "pending",
        **overrides,
    }


REJECTED = [
    pytest.param({"user_id": None}, "user_id", id="user_id-null"),
    pytest.param({"user_id": ""}, "ck_tasks_user_id_not_empty", id="user_id-empty"),
    pytest.param({"user_id": "   "}, "ck_tasks_user_id_not_empty", id="user_id-blank"),
    pytest.param(
        {"user_id": "u" * (MAX_USER_ID_LENGTH + 1)},
        "ck_tasks_user_id_max_length",
        id="user_id-long",
    ),
    pytest.param({"title": None}, "title", id="title-null"),
    pytest.param({"title": ""}, "ck_tasks_title_not_empty", id="title-empty"),
    pytest.param({"title": "    "}, "ck_tasks_title_not_empty", id="title-blank"),
    pytest.param({"title": "x" * (MAX_TITLE_LENGTH + 1)}, "ck_tasks_title_max_length", id="title-long"),
    pytest.param(
        {"description": "d" * (MAX_DESCRIPTION_LENGTH + 1)},
        "ck_tasks_description_max_length",
        id="description-long",
    ),
    pytest.param({"status": None}, "status", id="status-null"),
]

ACCEPTED = [
    pytest.param({"user_id": "u" * MAX_USER_ID_LENGTH}, id="user_id-max"),
    pytest.param({"title": "x" * MAX_TITLE_LENGTH}, id="title-max"),
    pytest.param({"title": "a"}, id="title-one-char"),
    pytest.param({"description": "d" * MAX_DESCRIPTION_LENGTH}, id="description-max"),
    pytest.param({"description": None}, id="description-null"),
    pytest.param({"status": "archived"}, id="status-unknown-needs-no-migration"),
]


@pytest.mark.parametrize(("values", "names"), REJECTED)
async def test_raw_insert_breaking_a_rule_is_an_integrity_error(
    engine: AsyncEngine, values: dict[str, Any], names: str
) -> None:
    with pytest.raises(IntegrityError) as exc:
        async with engine.begin() as conn:
            await conn.execute(insert(table).values(**row(**values)))
    assert names in str(exc.value.orig)
    async with engine.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM tasks"))).scalar_one() == 0


@pytest.mark.parametrize(("values", "names"), [p for p in REJECTED if "null" not in str(p.id)])
async def test_raw_update_breaking_a_rule_is_an_integrity_error(
    engine: AsyncEngine, values: dict[str, Any], names: str
) -> None:
    original = row()
    async with engine.begin() as conn:
        await conn.execute(insert(table).values(**original))
    with pytest.raises(IntegrityError):
        async with engine.begin() as conn:
            await conn.execute(update(table).where(table.c.id == original["id"]).values(**values))
    async with engine.connect() as conn:
        stored = (await conn.execute(select(table.c.user_id, table.c.title, table.c.description))).one()
    assert tuple(stored) == ("u1", "t", None)


@pytest.mark.parametrize("values", ACCEPTED)
async def test_raw_insert_of_boundary_values_is_accepted(engine: AsyncEngine, values: dict[str, Any]) -> None:
    async with engine.begin() as conn:
        await conn.execute(insert(table).values(**row(**values)))
    async with engine.connect() as conn:
        stored = (await conn.execute(select(table))).mappings().one()
    for key, value in values.items():
        assert stored[key] == value


async def test_duplicate_primary_key_is_rejected(engine: AsyncEngine) -> None:
    values = row()
    async with engine.begin() as conn:
        await conn.execute(insert(table).values(**values))
    with pytest.raises(IntegrityError, match=r"pk_tasks|UNIQUE"):
        async with engine.begin() as conn:
            await conn.execute(insert(table).values(**values))


async def test_live_schema_has_every_named_constraint_and_index(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        checks, pk, indexes = await conn.run_sync(
            lambda c: (
                {ck["name"] for ck in inspect(c).get_check_constraints("tasks")},
                inspect(c).get_pk_constraint("tasks")["name"],
                {ix["name"] for ix in inspect(c).get_indexes("tasks")},
            )
        )
    assert checks == {rule.name for rule in CHECK_RULES}
    assert pk == "pk_tasks"
    assert indexes == {"ix_tasks_user_id", "ix_tasks_status"}


async def test_orm_round_trip_and_updated_at_refresh(engine: AsyncEngine) -> None:
    task = Task(user_id="ユーザー", title="  Café ☕ 🚀 ", description="línea\nsegunda\ttab")
    async with session_scope(engine) as session:
        session.add(task)
    created = task.created_at
    async with session_scope(engine) as session:
        loaded = await session.get(Task, task.id)
        assert loaded is not None
        loaded.status = TaskStatus.COMPLETED
    async with sessionmaker(engine)() as session:
        loaded = await session.get(Task, task.id)
    assert loaded is not None
    assert (loaded.user_id, loaded.title, loaded.description) == (
        "ユーザー",
        "Café ☕ 🚀",
        "línea\nsegunda\ttab",
    )
    assert loaded.status is TaskStatus.COMPLETED
    assert loaded.created_at == created and loaded.created_at.utcoffset() is not None
    assert loaded.updated_at > created
    assert loaded.updated_at.utcoffset().total_seconds() == 0  # type: ignore[union-attr]


async def test_a_failed_block_joining_a_callers_transaction_undoes_only_its_own_writes(engine: AsyncEngine) -> None:
    from todo_data.database import begin

    async with engine.connect() as conn:
        await conn.execute(insert(table).values(**row(title="the caller's")))
        with pytest.raises(IntegrityError):
            async with begin(conn) as same:
                await same.execute(insert(table).values(**row(title="library write 1")))
                await same.execute(insert(table).values(**row(title="")))  # breaks a CHECK
        await conn.commit()
    async with engine.connect() as conn:
        titles = (await conn.execute(select(table.c.title))).scalars().all()
    assert titles == ["the caller's"]
