"""The Parquet dataset writer behind queries.export_parquet, fed crafted chunks."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from todo_data import export
from todo_data.export import MAX_OPEN_FILES, NULL_PARTITION, SCHEMA


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
