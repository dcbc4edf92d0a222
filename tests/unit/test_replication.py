"""checks.replication and the replica guard on SQLite, which has no replication."""

from __future__ import annotations

import pandas as pd
from sqlalchemy.ext.asyncio import AsyncEngine

from todo_data import checks
from todo_data.database import connect, in_recovery, require_primary
from todo_data.replication import REPLICATION_COLUMNS


async def test_sqlite_is_one_not_replicated_row(sqlite_engine: AsyncEngine) -> None:
    frame = await checks.replication(sqlite_engine)
    assert list(frame.columns) == list(REPLICATION_COLUMNS)
    (row,) = frame.itertuples(index=False)
    assert row.role == "not replicated" and "SQLite has no replication" in row.detail
    assert pd.isna(row.lag_bytes) and pd.isna(row.caught_up) and pd.isna(row.replay_paused)
    assert str(frame["lag_bytes"].dtype) == "Int64" and str(frame["last_replayed_at"].dtype) == "datetime64[us, UTC]"


async def test_sqlite_is_never_a_replica_so_writers_may_write(sqlite_engine: AsyncEngine) -> None:
    async with connect(sqlite_engine) as conn:
        assert await in_recovery(conn) is False
        await require_primary(conn, sqlite_engine, to="be seeded")
