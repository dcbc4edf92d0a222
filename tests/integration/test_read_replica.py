"""Analysis on a read replica (directly and through its pooler): the same frames as the primary."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow.dataset as ds
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.helpers import wait_for_replay
from todo_data import queries, sample


async def test_frames_and_distributions_on_the_replica_equal_the_primarys(
    pg_engine: AsyncEngine, replica_engine: AsyncEngine
) -> None:
    await sample.seed(pg_engine, tasks=3_000, users=15, seed=11)
    await wait_for_replay(pg_engine, replica_engine)
    pd.testing.assert_frame_equal(await queries.tasks_frame(replica_engine), await queries.tasks_frame(pg_engine))
    chunks = [chunk async for chunk in queries.iter_tasks_frames(replica_engine, chunk_size=1_000)]
    pd.testing.assert_frame_equal(pd.concat(chunks, ignore_index=True), await queries.tasks_frame(pg_engine))
    for distribution in (queries.status_counts, queries.tasks_per_user, queries.created_over_time):
        pd.testing.assert_frame_equal(await distribution(replica_engine), await distribution(pg_engine))
    now = pd.Timestamp("2030-01-01", tz="UTC").to_pydatetime()
    pd.testing.assert_frame_equal(
        await queries.open_task_ages(replica_engine, now=now), await queries.open_task_ages(pg_engine, now=now)
    )


async def test_an_export_from_the_replica_holds_every_row_of_the_primary(
    pg_engine: AsyncEngine, replica_engine: AsyncEngine, tmp_path: Path
) -> None:
    await sample.seed(pg_engine, tasks=2_000, users=10, seed=12)
    await wait_for_replay(pg_engine, replica_engine)
    written = await queries.export_parquet(replica_engine, tmp_path / "tasks", chunk_size=500)
    exported = ds.dataset(tmp_path / "tasks", format="parquet", partitioning="hive").to_table().to_pandas()
    expected = await queries.tasks_frame(pg_engine)
    assert written == len(expected) == 2_000
    assert sorted(exported["id"]) == sorted(expected["id"])
