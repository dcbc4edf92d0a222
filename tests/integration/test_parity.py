"""Property: SQLite and PostgreSQL agree with the Python layer and with each other.

- Whatever the Python layer accepts is stored and read back unchanged on both.
- Every raw write that breaks a database-layer rule is rejected by both alike.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from sqlalchemy import delete, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from todo_data import Task, TaskStatus
from todo_data.database import sessionmaker
from todo_data.rules import MAX_DESCRIPTION_LENGTH, MAX_TITLE_LENGTH, MAX_USER_ID_LENGTH

table = Task.__table__  # type: ignore[attr-defined]
PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

# Any Unicode text, including control characters, emoji, combining marks, NUL and
# lone surrogates: the Python layer must sort out what cannot be stored.
any_text = st.text(st.characters(codec=None), max_size=40)
boundary = st.sampled_from(
    [
        "",
        " ",
        "x" * MAX_TITLE_LENGTH,
        "é" * MAX_TITLE_LENGTH,
        "🚀" * MAX_TITLE_LENGTH,
        "x" * (MAX_TITLE_LENGTH + 1),
        " a ",
        "\u3000a\u3000",
        "\x01ctrl\x7f",
        "a\x00b",
    ]
)
titles = st.one_of(any_text, boundary, st.text(min_size=195, max_size=205))
descriptions = st.one_of(
    st.none(),
    any_text,
    st.sampled_from(["d" * MAX_DESCRIPTION_LENGTH, "😀" * MAX_DESCRIPTION_LENGTH]),
)
user_ids = st.one_of(any_text, st.sampled_from(["u" * MAX_USER_ID_LENGTH, "ü" * (MAX_USER_ID_LENGTH + 1)]))
statuses = st.one_of(st.sampled_from([*TaskStatus, "pending", "bogus"]))


async def stored_copy(engine: AsyncEngine, task: Task) -> Task:
    fresh = Task(
        **{
            name: getattr(task, name)
            for name in (
                "id",
                "user_id",
                "title",
                "description",
                "status",
                "created_at",
                "updated_at",
            )
        }
    )
    async with sessionmaker(engine)() as session:
        session.add(fresh)
        await session.commit()
    async with sessionmaker(engine)() as session:
        loaded = await session.get(Task, task.id)
        assert loaded is not None
        await session.execute(delete(table))
        await session.commit()
    return loaded


@PROPERTY
@given(user_id=user_ids, title=titles, description=descriptions, status=statuses)
async def test_whatever_python_accepts_round_trips_unchanged_on_both(
    sqlite_engine: AsyncEngine,
    pg_engine: AsyncEngine,
    user_id: str,
    title: str,
    description: str | None,
    status: Any,
) -> None:
    try:
        task = Task(user_id=user_id, title=title, description=description, status=status)
    except ValidationError:
        return
    for engine in (sqlite_engine, pg_engine):
        loaded = await stored_copy(engine, task)
        assert (loaded.user_id, loaded.title, loaded.description, loaded.status) == (
            task.user_id,
            task.title,
            task.description,
            task.status,
        )
        assert loaded.created_at == task.created_at and loaded.updated_at == task.updated_at


# Raw values that reach the database unvalidated; NUL and surrogates are excluded since
# PostgreSQL cannot even encode them (the Python layer's job, tested in unit tests).
storable = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=30)
raw_titles = st.one_of(
    storable,
    st.just(""),
    st.text(" ", min_size=1, max_size=5),
    st.integers(MAX_TITLE_LENGTH - 1, MAX_TITLE_LENGTH + 2).map(lambda n: "t" * n),
)
raw_user_ids = st.one_of(
    storable,
    st.just(" "),
    st.integers(MAX_USER_ID_LENGTH - 1, MAX_USER_ID_LENGTH + 1).map(lambda n: "u" * n),
)
raw_descriptions = st.one_of(
    st.none(),
    storable,
    st.integers(MAX_DESCRIPTION_LENGTH - 1, MAX_DESCRIPTION_LENGTH + 1).map(lambda n: "d" * n),
)


async def raw_insert_outcome(engine: AsyncEngine, values: dict[str, Any]) -> str:
    try:
        async with engine.begin() as conn:
            await conn.execute(insert(table).values(**values))
    except IntegrityError:
        return "rejected"
    async with engine.begin() as conn:
        stored = (await conn.execute(select(table.c.user_id, table.c.title, table.c.description))).one()
        await conn.execute(delete(table))
    assert tuple(stored) == (values["user_id"], values["title"], values["description"])
    return "stored"


@PROPERTY
@given(user_id=raw_user_ids, title=raw_titles, description=raw_descriptions)
async def test_raw_writes_are_judged_alike_by_both_databases(
    sqlite_engine: AsyncEngine,
    pg_engine: AsyncEngine,
    user_id: str,
    title: str,
    description: str | None,
) -> None:
    values = {
        "id": uuid.uuid4(),
        "user_id": user_id,
        "title": title,
        "description": description,
        "status": "pending",
    }
    outcomes = {
        name: await raw_insert_outcome(e, values) for name, e in (("sqlite", sqlite_engine), ("postgresql", pg_engine))
    }
    assert outcomes["sqlite"] == outcomes["postgresql"], outcomes
    breaks_a_rule = (
        not user_id.strip(" ")
        or len(user_id) > MAX_USER_ID_LENGTH
        or not title.strip(" ")
        or len(title) > MAX_TITLE_LENGTH
        or (description is not None and len(description) > MAX_DESCRIPTION_LENGTH)
    )
    assert outcomes["sqlite"] == ("rejected" if breaks_a_rule else "stored")


def test_python_layer_rejects_what_postgresql_cannot_store() -> None:
    for title in ("a\x00b", "lone\ud800"):
        with pytest.raises(ValidationError, match="title"):
            Task(user_id="u", title=title)
