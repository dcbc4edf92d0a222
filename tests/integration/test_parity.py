"""Property: SQLite and PostgreSQL judge raw writes alike, as the CHECK constraints say.

Every raw write that breaks a database-layer rule is rejected by both alike. (That
whatever the Python layer accepts is stored unchanged on both is in test_rules.py.)
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

from todo_data import Task
from todo_data.rules import MAX_DESCRIPTION_LENGTH, MAX_TITLE_LENGTH, MAX_USER_ID_LENGTH

table = Task.__table__  # type: ignore[attr-defined]
PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

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
