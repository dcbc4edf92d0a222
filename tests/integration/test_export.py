"""queries.export_parquet on every backend: every row read back equals tasks_frame, atomically written."""

from __future__ import annotations

import asyncio
import contextlib
import os
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.integration.scratch import Scratch, scratch, scratch_url
from tests.integration.tasks import drop_not_null, insert_raw, insert_rows, task_rows
from todo_data import TodoDataWarning, queries, sample
from todo_data.errors import ExportError, InvalidArgumentError
from todo_data.queries._export import NULL_PARTITION

__all__ = ["scratch", "scratch_url"]  # fixtures used below


def read_back(path: Path) -> pd.DataFrame:
    """The dataset as pyarrow reads it (Hive partitions), as a frame ordered like tasks_frame."""
    table = ds.dataset(path, format="parquet", partitioning="hive").to_table()
    frame = table.to_pandas(types_mapper=pd.ArrowDtype).drop(columns="created_month", errors="ignore")
    return frame.sort_values(["created_at", "id"], ignore_index=True)


def assert_same_rows(exported: pd.DataFrame, expected: pd.DataFrame) -> None:
    """Every row and value of ``expected`` (a tasks_frame) is in ``exported``, and nothing else."""
    assert list(exported.columns) == list(expected.columns)
    assert len(exported) == len(expected)
    for column in expected.columns:
        got = exported[column].astype(object).where(exported[column].notna(), None).tolist()
        want = expected[column].astype(object).where(expected[column].notna(), None).tolist()
        assert got == want, column


def nothing_left_beside(path: Path) -> list[str]:
    """What an export left in ``path``'s directory (its staging directory would be hidden)."""
    return sorted(os.listdir(path.parent))


async def test_every_row_reads_back_equal_to_tasks_frame(engine: AsyncEngine, tmp_path: Path) -> None:
    await sample.seed(engine, tasks=3_000, users=20, seed=5)
    await insert_rows(engine, task_rows())  # unknown statuses, NULL and huge descriptions, ties
    expected = await queries.tasks_frame(engine)
    path = tmp_path / "exports" / "tasks"

    written = await queries.export_parquet(engine, path, chunk_size=700)

    assert written == len(expected) == 3_000 + len(task_rows())
    assert_same_rows(read_back(path), expected)
    dataset = ds.dataset(path, format="parquet", partitioning="hive")
    schema = dataset.schema
    assert schema.field("id").type == pa.large_string()
    assert schema.field("created_at").type == pa.timestamp("us", tz="UTC")
    assert pa.types.is_dictionary(schema.field("status").type)
    # One directory per UTC month, and each holds only its month's rows.
    months = sorted(p.name for p in path.iterdir())
    assert months == sorted({f"created_month={m}" for m in expected["created_at"].dt.strftime("%Y-%m")})
    for fragment in dataset.get_fragments():
        month = Path(fragment.path).parent.name.removeprefix("created_month=")
        created = fragment.to_table(columns=["created_at"]).column("created_at").to_pandas()
        assert (created.dt.strftime("%Y-%m") == month).all()


async def test_values_other_clients_wrote_read_back_as_tasks_frame_reads_them(scratch: Scratch, tmp_path: Path) -> None:
    await drop_not_null(scratch, ["status", "created_at", "updated_at"])
    await insert_raw(scratch, created_at="infinity", updated_at="-infinity")
    await insert_raw(scratch, created_at=None, status=None, description="no time, no status")
    await insert_raw(scratch, created_at="2025-02-28 23:59:59.999999+00:00", status="archived")
    path = tmp_path / "odd"
    # PostgreSQL's ±infinity is beyond Arrow's timestamps: read as missing, and said so.
    with pytest.warns(TodoDataWarning) if scratch.backend == "postgresql" else contextlib.nullcontext():
        expected = await queries.tasks_frame(scratch.engine)
        assert await queries.export_parquet(scratch.engine, path) == 3
    assert_same_rows(read_back(path), expected)
    # Rows without a readable created_at (NULL, ±infinity read as NaT) go to Hive's NULL partition.
    assert sorted(p.name for p in path.iterdir()) == ["created_month=2025-02", f"created_month={NULL_PARTITION}"]


async def test_filters_select_the_rows_tasks_frame_selects(engine: AsyncEngine, tmp_path: Path) -> None:
    await sample.seed(engine, tasks=1_500, users=5, seed=2)
    filters: dict[str, Any] = {"status": ["pending", "in_progress"], "since": "2000-01-01", "user_id": None}
    expected = await queries.tasks_frame(engine, **filters)
    written = await queries.export_parquet(engine, tmp_path / "open", **filters)
    assert 0 < written == len(expected) < 1_500
    assert_same_rows(read_back(tmp_path / "open"), expected)


async def test_unpartitioned_export_writes_plain_files(engine: AsyncEngine, tmp_path: Path) -> None:
    await sample.seed(engine, tasks=500, seed=3)
    written = await queries.export_parquet(engine, tmp_path / "flat", partition_by=None, chunk_size=200)
    assert written == 500
    assert {p.suffix for p in (tmp_path / "flat").iterdir()} == {".parquet"}
    assert_same_rows(read_back(tmp_path / "flat"), await queries.tasks_frame(engine))


async def test_an_empty_table_gives_an_empty_dataset_with_the_schema(engine: AsyncEngine, tmp_path: Path) -> None:
    assert await queries.export_parquet(engine, tmp_path / "empty") == 0
    table = ds.dataset(tmp_path / "empty", format="parquet", partitioning="hive").to_table()
    assert table.num_rows == 0 and table.column_names[:7] == list((await queries.tasks_frame(engine)).columns)


async def test_progress_counts_up_to_the_rows_written(engine: AsyncEngine, tmp_path: Path) -> None:
    await sample.seed(engine, tasks=1_000, seed=4)
    calls: list[tuple[int, int]] = []
    written = await queries.export_parquet(
        engine, tmp_path / "p", chunk_size=300, progress=lambda done, total: calls.append((done, total))
    )
    assert calls[0] == (0, 1_000) and calls[-1] == (written, 1_000) == (1_000, 1_000)
    assert [done for done, _ in calls] == sorted(done for done, _ in calls) and len(calls) == 5


async def test_an_existing_path_is_refused_unless_overwrite(engine: AsyncEngine, tmp_path: Path) -> None:
    await sample.seed(engine, tasks=100, seed=6)
    path = tmp_path / "exports" / "tasks"
    path.mkdir(parents=True)
    (path / "keep.txt").write_text("someone else's file")
    with pytest.raises(InvalidArgumentError, match=r"already exists.*overwrite=True"):
        await queries.export_parquet(engine, path)
    assert (path / "keep.txt").read_text() == "someone else's file"
    assert await queries.export_parquet(engine, path, overwrite=True) == 100
    assert not (path / "keep.txt").exists() and read_back(path).shape[0] == 100
    assert nothing_left_beside(path) == ["tasks"]


class Interrupted(Exception):
    pass


async def test_an_interrupted_export_leaves_nothing_at_path(engine: AsyncEngine, tmp_path: Path) -> None:
    await sample.seed(engine, tasks=1_000, seed=7)
    path = tmp_path / "exports" / "tasks"

    def stop_after_first_chunk(done: int, total: int) -> None:
        if done >= 200:
            raise Interrupted

    with pytest.raises(Interrupted):
        await queries.export_parquet(engine, path, chunk_size=200, progress=stop_after_first_chunk)
    assert not path.parent.exists()  # nor the parent folder it created


async def test_a_cancelled_export_leaves_the_previous_dataset_untouched(engine: AsyncEngine, tmp_path: Path) -> None:
    await sample.seed(engine, tasks=1_000, seed=8)
    path = tmp_path / "exports" / "tasks"
    await queries.export_parquet(engine, path, user_id=None, status="completed")
    before = read_back(path)
    first_chunk = asyncio.Event()

    def report(done: int, total: int) -> None:
        if done:
            first_chunk.set()

    export = asyncio.create_task(queries.export_parquet(engine, path, overwrite=True, chunk_size=100, progress=report))
    await first_chunk.wait()
    export.cancel()
    with pytest.raises(asyncio.CancelledError):
        await export
    assert nothing_left_beside(path) == ["tasks"]
    pd.testing.assert_frame_equal(read_back(path), before)


async def test_bad_arguments_fail_before_anything_is_written(sqlite_engine: AsyncEngine, tmp_path: Path) -> None:
    with pytest.raises(InvalidArgumentError, match="partition_by"):
        await queries.export_parquet(sqlite_engine, tmp_path / "x", partition_by="year")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="status"):
        await queries.export_parquet(sqlite_engine, tmp_path / "x", status="   ")
    with pytest.raises(InvalidArgumentError, match="chunk_size"):
        await queries.export_parquet(sqlite_engine, tmp_path / "x", chunk_size=0)
    assert os.listdir(tmp_path) == ["tasks.db"]


async def test_a_file_system_that_refuses_the_write_is_an_export_error_leaving_nothing(
    sqlite_engine: AsyncEngine, tmp_path: Path
) -> None:
    """A full disk, as a file size limit gives it (EFBIG, the signal ignored): one TodoDataError."""
    import resource
    import signal

    await sample.seed(sqlite_engine, tasks=3_000, seed=4)
    path = tmp_path / "new" / "tasks"
    previous_signal = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    previous_limit = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, previous_limit[1]))
    try:
        with pytest.raises(ExportError, match=r"could not write its files .*nothing was written there"):
            await queries.export_parquet(sqlite_engine, path, partition_by=None)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, previous_limit)
        signal.signal(signal.SIGXFSZ, previous_signal)
    assert not (tmp_path / "new").exists()
