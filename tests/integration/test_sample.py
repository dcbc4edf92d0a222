"""todo_data.sample.seed on PostgreSQL: the same content as on SQLite, written with COPY."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from todo_data import queries, sample


async def test_same_seed_gives_the_same_content_on_sqlite_and_postgresql(
    sqlite_engine: AsyncEngine, pg_engine: AsyncEngine
) -> None:
    for engine in (sqlite_engine, pg_engine):
        assert await sample.seed(engine, tasks=3_000, users=20, seed=7) == 3_000
    content = ["user_id", "title", "description", "status"]
    frames = [await queries.tasks_frame(engine) for engine in (sqlite_engine, pg_engine)]
    ordered = [frame.sort_values(content, ignore_index=True)[content] for frame in frames]
    pd.testing.assert_frame_equal(ordered[0], ordered[1])
    assert np.array_equal(
        frames[0]["status"].value_counts().sort_index().to_numpy(),
        frames[1]["status"].value_counts().sort_index().to_numpy(),
    )


async def test_a_value_rejected_mid_copy_writes_nothing_and_leaves_the_connection_usable(
    pg_engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Rows are generated while COPY streams them, so a rejected value surfaces inside COPY:
    # asyncpg must abort it, the transaction roll back, and the connection stay usable. A
    # title made rare (about one row in 50,000) comes after many rows were already sent.
    validate = sample._validate_field

    def with_a_rare_bad_title(scratch: Any, field: str, value: Any) -> Any:
        if field == "title" and value.endswith(" #4321"):
            value += "\x00"
        return validate(scratch, field, value)

    monkeypatch.setattr(sample, "_validate_field", with_a_rare_bad_title)
    async with pg_engine.connect() as conn:
        with pytest.raises(ValidationError, match="NUL"):
            await sample.seed(conn, tasks=150_000, users=20)
        assert conn.in_transaction()
        await conn.rollback()
        monkeypatch.undo()
        assert await sample.seed(conn, tasks=1_000) == 1_000
        assert await conn.scalar(text("SELECT count(*) FROM tasks")) == 1_000
        await conn.rollback()
    assert (await queries.tasks_frame(pg_engine)).empty
