"""The tasks as a Hive-partitioned Parquet dataset, of any size, written atomically.

:func:`export_parquet` (``todo_data.queries.export_parquet``) streams the tasks in chunks
into ``PATH/created_month=YYYY-MM/part-N.parquet`` files that pyarrow, DuckDB, Polars and
Spark read as one table, with the frame contract's types.

- **Bounded memory**: on PostgreSQL the rows stream through a binary ``COPY`` that waits
  while a chunk is in use (:mod:`todo_data.queries._adhoc`), on SQLite through a server-side
  cursor. A chunk is written while the next one arrives (in a worker thread: Parquet
  encoding releases the GIL). Rows are buffered per month until a row group is full, and
  all buffers together never hold more than two row groups, whatever order the months
  arrive in; at most :data:`MAX_OPEN_FILES` files are open at once.
- **Atomic**: everything is written into a hidden directory beside ``PATH``, renamed to
  ``PATH`` at the end. A failed or interrupted export leaves nothing at ``PATH`` (and
  removes its hidden directory and the parent folders it created, unless the process
  itself is killed).
- **Checked first**: a path that cannot work (a NUL character, a dangling symbolic link,
  a folder holding the working directory or the database itself) is refused before any
  query runs (see :func:`export_parquet`).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections import OrderedDict
from collections.abc import AsyncGenerator, AsyncIterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import aclosing
from pathlib import Path
from typing import TYPE_CHECKING, Final, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from todo_data import _task_sql
from todo_data._args import CountProgress, integer
from todo_data._task_sql import Params, TaskFilter
from todo_data.database import Source, about, driver_errors, operation
from todo_data.errors import ExportError, InvalidArgumentError, TodoDataError, hint
from todo_data.queries import _adhoc
from todo_data.queries._filters import StatusFilter, TimeBound, task_filter
from todo_data.queries._tasks import reading_tasks

if TYPE_CHECKING:
    pass


Progress = CountProgress
"""``progress(done, total)``: rows written so far, and how many match the filters."""
PartitionBy = Literal["month"] | None

#: The files' schema: the ``tasks_frame`` contract in Arrow (the partition column lives in the path).
SCHEMA: Final = pa.schema(
    [
        ("id", pa.large_string()),
        ("user_id", pa.large_string()),
        ("title", pa.large_string()),
        ("description", pa.large_string()),
        ("status", pa.dictionary(pa.int32(), pa.large_string())),
        ("created_at", pa.timestamp("us", tz="UTC")),
        ("updated_at", pa.timestamp("us", tz="UTC")),
    ]
)
#: The Hive partition column for ``partition_by="month"``: the UTC month of ``created_at``.
MONTH_COLUMN: Final = "created_month"
#: Hive's (and pyarrow's, Spark's) directory name for a NULL partition value.
NULL_PARTITION: Final = "__HIVE_DEFAULT_PARTITION__"
#: Columns stored with Parquet's dictionary encoding: the few distinct users and statuses.
#: Ids, titles and descriptions are mostly distinct: a dictionary would only cost memory.
DICTIONARY_COLUMNS: Final = ["user_id", "status"]
#: Parquet files open at once; a partition seen again after its file was closed gets a new file.
MAX_OPEN_FILES: Final = 8


@operation("queries.export_parquet")
async def export_parquet(
    source: Source,
    path: str | os.PathLike[str],
    *,
    partition_by: PartitionBy = "month",
    overwrite: bool = False,
    chunk_size: int = 32_768,
    progress: Progress | None = None,
    user_id: str | None = None,
    status: StatusFilter = None,
    since: TimeBound = None,
    until: TimeBound = None,
) -> int:
    """Write the tasks matching ``filters`` to a Parquet dataset at ``path``; returns the rows written.

    ``partition_by="month"`` (the default) makes one Hive partition per UTC month of
    ``created_at``: ``path/created_month=2025-01/part-0.parquet`` (rows whose
    ``created_at`` is missing go to ``created_month=__HIVE_DEFAULT_PARTITION__``, which
    readers turn into NULL); ``None`` writes the files directly in ``path``. Columns and
    types are :func:`~todo_data.queries.tasks_frame`'s: ids as canonical UUID strings, ``status``
    dictionary-encoded, ``created_at``/``updated_at`` as UTC microsecond timestamps.
    ``filters`` are ``tasks_frame``'s (``user_id``, ``status``, ``since``, ``until``).
    With no matching task the dataset is one empty ``path/part-0.parquet`` that still
    carries the schema.

    ``path`` must not exist unless ``overwrite=True``; the new dataset replaces it only
    once complete. Missing parent folders are created, and removed again if the export
    fails. Refused with :class:`~todo_data.errors.InvalidArgumentError` before any query:
    a NUL character in ``path``, a path ending in ``.`` or ``..``, a symbolic link to
    nothing, and with ``overwrite=True`` a folder that holds the working directory or the
    SQLite database being exported (replacing it would delete them).

    ``chunk_size`` rows are fetched at a time and make a row group of each month's file
    (memory grows with it: with the default the export stays under about 200 MB, whatever
    the size of the table). ``progress(done, total)`` is called
    after each chunk (``total`` is counted first, so only pass it when you want the bar).
    A database failure raises :class:`~todo_data.errors.DatabaseOperationError` (a lost
    connection :class:`~todo_data.errors.DatabaseConnectionError`) saying that nothing
    was written.

    >>> rows = await export_parquet(engine, "exports/tasks", since="2025-01-01")  # doctest: +SKIP
    >>> import pyarrow.dataset as ds
    >>> ds.dataset("exports/tasks", partitioning="hive").to_table().num_rows == rows  # doctest: +SKIP
    True
    """
    filters = task_filter(user_id=user_id, status=status, since=since, until=until)  # before anything is written
    if partition_by not in ("month", None):
        raise InvalidArgumentError(f'partition_by must be "month" or None, not {partition_by!r}')
    integer("chunk_size", chunk_size, least=1)
    target = _checked_target(source, path, overwrite=overwrite)
    created = _make_folders(target.parent)
    try:
        total = await _count(source, filters) if progress is not None else 0
        # The connection dropped, a statement timed out, a replica cancelled the query …
        async with (
            driver_errors(source, "queries.export_parquet", outcome=f"nothing was written to {target}"),
            aclosing(_tables(source, filters, chunk_size=chunk_size)) as tables,
        ):
            return await _write(
                tables,
                target,
                partition_by=partition_by,
                overwrite=overwrite,
                total=total,
                progress=progress,
                row_group_rows=chunk_size,
            )
    except OSError as exc:
        _remove_folders(created)
        if isinstance(exc, TodoDataError):  # a lost connection is one too
            raise
        # What is left is the file system's (driver_errors took the database's).
        raise ExportError(
            f"the export to {target} could not write its files ({exc.strerror or exc}), so nothing was "
            "written there: free some space, or export to another folder"
        ) from exc
    except BaseException:
        _remove_folders(created)
        raise


def _checked_target(source: Source, path: str | os.PathLike[str], *, overwrite: bool) -> Path:
    """``path`` as the dataset's folder, or :class:`InvalidArgumentError` before any query runs.

    Refused: a NUL character (no file name holds one); a path ending in ``.`` or ``..``
    (it names a folder the path itself depends on); a symbolic link whose target does not
    exist (the export would replace the link, not fill what it names); an existing path
    without ``overwrite``; and, with ``overwrite``, a folder holding the working directory
    or the SQLite database being exported, which replacing it would delete.
    """
    text = os.fspath(path)
    if "\0" in text:
        raise InvalidArgumentError(f"path {text!r} holds a NUL character, which no file name can hold")
    target = Path(text)
    if target.name in ("", ".", ".."):
        raise InvalidArgumentError(
            f"path {text!r} names no folder of its own to write the dataset to: give one inside it, such as "
            f"{str(target / 'tasks')!r}"
        )
    if target.is_symlink() and not target.exists():
        raise InvalidArgumentError(
            f"{target} is a symbolic link to {os.readlink(target)}, which does not exist: create what it names, "
            "remove the link, or export elsewhere"
        )
    if not target.exists():
        return target
    if not overwrite:
        raise InvalidArgumentError(
            f"{target} already exists: pass {hint('overwrite=True', '--overwrite')} to replace it"
        )
    replaced = target.resolve()
    database = about(source).location
    held = [("the working directory", Path.cwd())]
    if database is not None and database != ":memory:":
        held.append(("the SQLite database being exported", Path(database)))
    for what, inside in held:
        if inside.resolve().is_relative_to(replaced):
            raise InvalidArgumentError(
                f"{target} holds {what} ({inside}), which {hint('overwrite=True', '--overwrite')} would delete "
                "with it: export to a folder of its own"
            )
    return target


def _make_folders(folder: Path) -> list[Path]:
    """Create ``folder`` and its missing parents; the ones created, outermost first."""
    missing = [folder, *folder.parents]
    missing = [path for path in missing if not path.exists()][::-1]
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InvalidArgumentError(f"could not create the folder {folder}: {exc.strerror}") from None
    return missing


def _remove_folders(created: list[Path]) -> None:
    """Remove the folders an export created, innermost first, as long as they are empty."""
    for folder in reversed(created):
        try:
            folder.rmdir()
        except OSError:
            return  # not empty (someone else wrote there meanwhile), or gone already


async def _tables(source: Source, filters: TaskFilter, *, chunk_size: int) -> AsyncGenerator[pa.Table, None]:
    """The tasks in chunks of at most ``chunk_size`` rows (Arrow tables of the task columns).

    PostgreSQL streams a binary ``COPY`` decoded chunk by chunk (:mod:`todo_data.queries._adhoc`:
    the COPY waits while a chunk is being used, so memory stays bounded), in the order the
    table is scanned: sorting millions of rows would cost the server more than sending
    them, and the writer groups them by month itself. SQLite streams
    its cursor in chunks, as :func:`~todo_data.queries.iter_tasks_frames` does.
    """
    async with _adhoc.reading(source) as conn, reading_tasks(source, filters, conn=conn) as tasks:
        backend = tasks.backend
        if backend == "postgresql":
            params = Params()
            sql = _task_sql.pg_tasks_select(filters, params, ordered=False)
            batches = _adhoc.pg_batches(conn, _adhoc.statement(sql, params.named()), chunk_size)
            async with aclosing(batches):
                async for batch in batches:
                    yield batch
    if backend != "postgresql":
        # Closed with this generator: left to the garbage collector, its connection (and the
        # SIGINT watch around it) would be released after the caller's loop has moved on.
        async with reading_tasks(source, filters) as tasks, aclosing(tasks.frames(chunk_size)) as frames:
            async for frame in frames:
                yield pa.Table.from_pandas(frame, preserve_index=False)


async def _write(
    tables: AsyncIterator[pa.Table],
    target: Path,
    *,
    partition_by: PartitionBy,
    overwrite: bool,
    total: int,
    progress: Progress | None,
    row_group_rows: int,
) -> int:
    """Write the chunks into a staging directory beside ``target``, renamed to it at the end."""
    staging = target.parent / f".{target.name}.{uuid.uuid4().hex[:12]}.partial"
    staging.mkdir()
    writer = _DatasetWriter(staging, partition_by=partition_by, row_group_rows=row_group_rows)
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="todo-data-export")
    try:
        pending: Future[None] | None = None
        done = 0
        if progress is not None:
            progress(0, total)
        async for table in tables:
            if pending is not None:
                await asyncio.wrap_future(pending)
            pending = pool.submit(writer.write, table)
            done += table.num_rows
            if progress is not None:
                progress(done, max(total, done))
        if pending is not None:
            await asyncio.wrap_future(pending)
        writer.close()
        _publish(staging, target, overwrite=overwrite)
    except BaseException:
        # Let a write still running finish before its directory goes.
        pool.shutdown(wait=True, cancel_futures=True)
        writer.close(quietly=True)
        shutil.rmtree(staging, ignore_errors=True)
        raise
    finally:
        pool.shutdown(wait=True)
    return writer.rows


class _DatasetWriter:
    """Parquet files in a directory, written a row group at a time, in bounded memory.

    Rows are buffered per partition and written as one row group when a partition holds
    ``row_group_rows`` of them, or, when all buffers together hold more than twice that,
    the fullest partition is written first: memory holds about two chunks of rows
    whatever the order they arrive in. At most :data:`MAX_OPEN_FILES` files are open; a
    partition written again after its file was closed gets a new file.
    """

    def __init__(self, root: Path, *, partition_by: PartitionBy, row_group_rows: int) -> None:
        self.root = root
        self.partition_by = partition_by
        self.row_group_rows = row_group_rows
        self.rows = 0
        self._buffers: dict[str | None, list[pa.Table]] = {}
        self._buffered: dict[str | None, int] = {}
        self._open: OrderedDict[str | None, pq.ParquetWriter] = OrderedDict()
        self._files: dict[str | None, int] = {}

    def write(self, chunk: pa.Table) -> None:
        """Take a chunk of task rows (written now or later, by :meth:`close` at the latest)."""
        table = _contract(chunk)
        parts = [(None, table)] if self.partition_by is None else _by_month(table)
        for key, part in parts:
            self._buffers.setdefault(key, []).append(part)
            self._buffered[key] = self._buffered.get(key, 0) + part.num_rows
            if self._buffered[key] >= self.row_group_rows:
                self._flush(key)
        while sum(self._buffered.values()) > 2 * self.row_group_rows:
            self._flush(max(self._buffered, key=self._buffered.__getitem__))
        self.rows += table.num_rows

    def close(self, *, quietly: bool = False) -> None:
        """Write what is buffered and close every file; ``quietly`` (after a failure) drops it instead."""
        try:
            if not quietly:
                for key in sorted(self._buffered, key=lambda key: (key is None, key or "")):
                    self._flush(key)
                if not self._files:
                    # No task matched: one empty file (outside any partition, so readers need
                    # not infer a partition column without values) keeps the schema readable.
                    pq.ParquetWriter(self.root / "part-0.parquet", SCHEMA).close()
        finally:
            self._buffers.clear()
            self._buffered.clear()
            while self._open:
                _, writer = self._open.popitem(last=False)
                try:
                    writer.close()
                except Exception:
                    if not quietly:
                        raise

    def _flush(self, key: str | None) -> None:
        table = pa.concat_tables(self._buffers.pop(key))
        del self._buffered[key]
        self._writer(key).write_table(table, row_group_size=table.num_rows)

    def _writer(self, key: str | None) -> pq.ParquetWriter:
        writer = self._open.get(key)
        if writer is not None:
            self._open.move_to_end(key)
            return writer
        if len(self._open) >= MAX_OPEN_FILES:
            _, oldest = self._open.popitem(last=False)
            oldest.close()
        directory = self.root
        if self.partition_by is not None:
            directory = self.root / f"{MONTH_COLUMN}={key if key is not None else NULL_PARTITION}"
            directory.mkdir(exist_ok=True)
        number = self._files.get(key, 0)
        self._files[key] = number + 1
        writer = pq.ParquetWriter(directory / f"part-{number}.parquet", SCHEMA, use_dictionary=DICTIONARY_COLUMNS)
        self._open[key] = writer
        return writer


def _by_month(table: pa.Table) -> list[tuple[str | None, pa.Table]]:
    """The rows of ``table`` per UTC month of ``created_at`` (``None``: no timestamp), as compact copies.

    The months are computed as integers and the rows gathered with one sort, not one scan
    per month; each part is its own copy, so a buffered part never keeps its chunk alive.
    """
    created = table.column("created_at")
    months = pc.add(pc.multiply(pc.year(created), 100), pc.month(created)).to_numpy(zero_copy_only=False)
    if not len(months):
        return []
    # NULL (no readable created_at) reads as NaN here: give it a key past every month.
    keys = np.where(np.isnan(months), np.inf, months) if months.dtype.kind == "f" else months
    if keys.min() == keys.max():
        return [(_month_label(keys[0]), table)]
    order = np.argsort(keys, kind="stable")
    ordered = keys[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    ends = np.r_[starts[1:], len(ordered)]
    return [(_month_label(ordered[a]), table.take(pa.array(order[a:b]))) for a, b in zip(starts, ends, strict=True)]


def _month_label(key: float) -> str | None:
    if not np.isfinite(key):
        return None
    year, month = divmod(int(key), 100)
    return f"{year:04d}-{month:02d}"


def _contract(table: pa.Table) -> pa.Table:
    """Task columns as a table of :data:`SCHEMA` (the status dictionary-encoded)."""
    index = table.schema.get_field_index("status")
    status = table.column(index)
    if not pa.types.is_dictionary(status.type):
        table = table.set_column(index, "status", pc.dictionary_encode(status))
    return table.cast(SCHEMA)


async def _count(source: Source, filters: TaskFilter) -> int:
    async with reading_tasks(source, filters) as tasks:
        return await tasks.count()


def _publish(staging: Path, target: Path, *, overwrite: bool) -> None:
    """Rename the finished dataset to ``target``, replacing what is there only when allowed."""
    if not target.exists() and not target.is_symlink():
        staging.rename(target)
        return
    if not overwrite:
        raise InvalidArgumentError(
            f"{target} appeared during the export: pass {hint('overwrite=True', '--overwrite')} to replace it"
        )
    retired = target.parent / f".{target.name}.{uuid.uuid4().hex[:12]}.old"
    target.rename(retired)
    staging.rename(target)
    if retired.is_dir() and not retired.is_symlink():
        shutil.rmtree(retired, ignore_errors=True)
    else:
        retired.unlink()
