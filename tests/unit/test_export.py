"""The Parquet dataset writer behind queries.export_parquet, fed crafted chunks; its path checks."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from todo_data import create_engine, queries
from todo_data.errors import DatabaseConnectionError, InvalidArgumentError
from todo_data.queries import _export as export
from todo_data.queries._export import MAX_OPEN_FILES, NULL_PARTITION, SCHEMA


def chunk(*months: int | None) -> pa.Table:
    """One row per month given (of 2025; None: no created_at)."""
    created = [None if m is None else datetime(2025, m, 1, tzinfo=UTC) for m in months]
    n = len(months)
    return pa.table(
        {
            "id": pa.array([f"00000000-0000-4000-8000-{i:012d}" for i in range(n)], pa.large_string()),
            "user_id": pa.array(["u"] * n, pa.large_string()),
            "title": pa.array(["t"] * n, pa.large_string()),
            "description": pa.array([None] * n, pa.large_string()),
            "status": pa.array(["pending"] * n, pa.large_string())
            .dictionary_encode()
            .cast(SCHEMA.field("status").type),
            "created_at": pa.array(created, pa.timestamp("us", tz="UTC")),
            "updated_at": pa.array(created, pa.timestamp("us", tz="UTC")),
        },
        schema=SCHEMA,
    )


def read(root: Path) -> pa.Table:
    return ds.dataset(root, format="parquet", partitioning="hive").to_table()


def row_groups(path: Path) -> list[int]:
    metadata = pq.ParquetFile(path).metadata
    return [metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)]


def test_rows_arriving_interleaved_are_written_one_row_group_per_month(tmp_path: Path) -> None:
    writer = export._DatasetWriter(tmp_path, partition_by="month", row_group_rows=100)
    for _ in range(10):
        writer.write(chunk(1, 2, 1, 2, 3))
    assert list(tmp_path.iterdir()) == []  # still buffered: nothing is written piecemeal
    writer.close()
    assert row_groups(tmp_path / "created_month=2025-01" / "part-0.parquet") == [20]
    assert row_groups(tmp_path / "created_month=2025-03" / "part-0.parquet") == [10]
    assert writer.rows == read(tmp_path).num_rows == 50


def test_buffers_never_hold_more_than_two_row_groups(tmp_path: Path) -> None:
    writer = export._DatasetWriter(tmp_path, partition_by="month", row_group_rows=4)
    for months in ([1, 2, 3, 4, 5, 6], [7, 8, 9, 10, 11, 12], [1, 1, 1, 1, 2]):
        writer.write(chunk(*months))
        assert sum(writer._buffered.values()) <= 8
    writer.close()
    assert writer.rows == read(tmp_path).num_rows == 17


def test_a_month_written_again_after_its_file_closed_gets_a_new_file(tmp_path: Path) -> None:
    writer = export._DatasetWriter(tmp_path, partition_by="month", row_group_rows=1)  # every row written at once
    months = list(range(1, MAX_OPEN_FILES + 2))  # one more month than files may be open
    writer.write(chunk(*months))
    writer.write(chunk(1, months[-1]))  # January's file was closed to open the last month's
    writer.close()
    assert sorted(p.name for p in (tmp_path / "created_month=2025-01").iterdir()) == [
        "part-0.parquet",
        "part-1.parquet",
    ]
    last = tmp_path / f"created_month=2025-{months[-1]:02d}"
    assert [p.name for p in last.iterdir()] == ["part-0.parquet"]  # still open: the same file
    assert writer.rows == read(tmp_path).num_rows == len(months) + 2


def test_rows_without_created_at_go_to_hives_null_partition(tmp_path: Path) -> None:
    writer = export._DatasetWriter(tmp_path, partition_by="month", row_group_rows=10)
    writer.write(chunk(3, None, 3))
    writer.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["created_month=2025-03", f"created_month={NULL_PARTITION}"]
    assert sorted(read(tmp_path).column("created_month").to_pylist(), key=str) == ["2025-03", "2025-03", None]


def test_a_failed_export_drops_what_was_buffered(tmp_path: Path) -> None:
    writer = export._DatasetWriter(tmp_path, partition_by=None, row_group_rows=10)
    writer.write(chunk(1, 2))
    writer.close(quietly=True)
    assert list(tmp_path.iterdir()) == []


# -- the path, checked before any query -------------------------------------------------------
# A server that is not there: any query would fail with DatabaseConnectionError, so an
# InvalidArgumentError proves that the path was judged first.
NOWHERE = "postgresql://todo_app:secret@127.0.0.1:1/todo"


@pytest.fixture
async def nowhere() -> AsyncIterator[AsyncEngine]:
    engine = create_engine(NOWHERE)
    yield engine
    await engine.dispose()


async def test_a_nul_in_the_path_is_refused_before_any_query(nowhere: AsyncEngine, tmp_path: Path) -> None:
    with pytest.raises(InvalidArgumentError, match="NUL character"):
        await queries.export_parquet(nowhere, f"{tmp_path}/ta\0sks")
    assert os.listdir(tmp_path) == []


async def test_a_dangling_symlink_at_the_path_is_refused_before_any_query(nowhere: AsyncEngine, tmp_path: Path) -> None:
    (tmp_path / "tasks").symlink_to(tmp_path / "mounted" / "exports")
    for overwrite in (False, True):
        with pytest.raises(InvalidArgumentError, match=r"symbolic link to .*mounted/exports, which does not exist"):
            await queries.export_parquet(nowhere, tmp_path / "tasks", overwrite=overwrite)
    assert os.listdir(tmp_path) == ["tasks"]


@pytest.mark.parametrize("path", [".", "..", "exports/.."])
async def test_a_path_that_names_no_folder_of_its_own_is_refused(
    nowhere: AsyncEngine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, path: str
) -> None:
    (tmp_path / "work" / "exports").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "work")
    with pytest.raises(InvalidArgumentError, match="no folder of its own"):
        await queries.export_parquet(nowhere, path, overwrite=True)
    assert os.listdir(tmp_path / "work") == ["exports"]


async def test_overwrite_never_replaces_a_folder_holding_the_working_directory(
    nowhere: AsyncEngine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "project" / "notebooks").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "project" / "notebooks")
    for path in (tmp_path / "project", tmp_path / "project" / "notebooks", Path("../../project")):
        with pytest.raises(InvalidArgumentError, match="holds the working directory"):
            await queries.export_parquet(nowhere, path, overwrite=True)
    assert (tmp_path / "project" / "notebooks").is_dir()


async def test_overwrite_never_replaces_a_folder_holding_the_sqlite_database_exported(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    engine = create_engine(f"sqlite:///{tmp_path / 'data' / 'tasks.db'}")
    try:
        with pytest.raises(InvalidArgumentError, match="holds the SQLite database being exported"):
            await queries.export_parquet(engine, tmp_path / "data", overwrite=True)
    finally:
        await engine.dispose()
    assert os.listdir(tmp_path / "data") == []  # the check ran before the engine opened the file


async def test_a_failed_export_removes_the_folders_it_created(nowhere: AsyncEngine, tmp_path: Path) -> None:
    (tmp_path / "exports").mkdir()
    with pytest.raises(DatabaseConnectionError, match="Could not connect"):
        await queries.export_parquet(nowhere, tmp_path / "exports" / "2025" / "june" / "tasks")
    assert os.listdir(tmp_path) == ["exports"]  # the one that was there stays
    assert os.listdir(tmp_path / "exports") == []


async def test_a_folder_that_cannot_be_created_is_refused_before_any_query(
    nowhere: AsyncEngine, tmp_path: Path
) -> None:
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(InvalidArgumentError, match=r"could not create the folder .*file"):
        await queries.export_parquet(nowhere, tmp_path / "file" / "tasks")
