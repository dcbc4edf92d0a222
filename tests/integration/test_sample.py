"""todo_data.sample.seed on PostgreSQL: the same content as on SQLite, written with COPY."""

from __future__ import annotations

import numpy as np
import pandas as pd
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
