"""Reading the tasks table: the connection opened and checked, then the rows as frames.

What every tasks function of :mod:`todo_data.queries` (and the Parquet export) does
first lives here once: borrow a connection, check that the table exists, bind the
filters. PostgreSQL's rows arrive through the binary ``COPY`` decoder, SQLite's through
its cursor; both end in :func:`todo_data.queries._task_frames.tasks_frame_from`.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence
from contextlib import aclosing, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pandas as pd
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from todo_data import _task_sql
from todo_data._task_sql import TASK_ORDER, Params, TaskFilter
from todo_data.database import Source, connect, located
from todo_data.queries import _adhoc, _task_frames
from todo_data.queries._task_frames import status_dtype
from todo_data.rules import require_tasks_table

#: Builds one statement from the backend's name, the filters and the parameters it binds.
Select = Callable[[str, TaskFilter, Params], str]


@dataclass(frozen=True)
class TasksReader:
    """A connection on which the tasks table is known to exist, and its backend's name."""

    conn: AsyncConnection
    backend: str
    task_filter: TaskFilter

    async def rows(self, select: Select) -> Sequence[Any]:
        """Every row of the statement ``select`` builds, its parameters bound."""
        params = Params()
        sql = select(self.backend, self.task_filter, params)
        return (await self.conn.execute(text(sql), params.named())).all()

    async def frame(self) -> pd.DataFrame:
        """The tasks matching the filters, in the contract's shape and order."""
        params = Params()
        if self.backend == "postgresql":
            # Through the caller's connection, inside its transaction (which the table check
            # has begun): the COPY sees the caller's uncommitted rows and works behind
            # PgBouncer. The server sends the rows as it scans them and the decoder puts
            # them in the contract's order: sorting them on the server would cost it as
            # much as sending them.
            sql = _task_sql.pg_tasks_select(self.task_filter, params, ordered=False)
            table = await _adhoc.pg_table(self.conn, _adhoc.statement(sql, params.named()), order_by=TASK_ORDER)
        else:
            result = await self.conn.execute(
                text(_task_sql.sqlite_tasks_select(self.task_filter, params)), params.named()
            )
            table = _task_frames.sqlite_tasks_table(result.all())
        return _task_frames.tasks_frame_from(table)

    async def frames(self, chunk_size: int) -> AsyncGenerator[pd.DataFrame, None]:
        """:meth:`frame` in chunks of at most ``chunk_size`` rows, all with the same status categories."""
        found = await self.rows(_task_sql.distinct_statuses_select)
        categories = status_dtype(str(value) for (value,) in found)
        params = Params()
        if self.backend == "postgresql":
            sql = _task_sql.pg_tasks_select(self.task_filter, params, ordered=True)
            batches = _adhoc.pg_batches(self.conn, _adhoc.statement(sql, params.named()), chunk_size)
            async with aclosing(batches):
                async for batch in batches:
                    yield _task_frames.tasks_frame_from(batch, categories=categories)
            return
        sql = _task_sql.sqlite_tasks_select(self.task_filter, params)
        result = await self.conn.stream(text(sql).execution_options(yield_per=chunk_size), params.named())
        async for rows in result.partitions(chunk_size):
            yield _task_frames.tasks_frame_from(_task_frames.sqlite_tasks_table(rows), categories=categories)

    async def count(self) -> int:
        """How many tasks match the filters."""
        return sum(int(count) for _, count in await self.rows(_task_sql.status_counts_select))


@asynccontextmanager
async def reading_tasks(
    source: Source, task_filter: TaskFilter, *, conn: AsyncConnection | None = None
) -> AsyncIterator[TasksReader]:
    """A :class:`TasksReader` on ``source`` (or on ``conn``, already borrowed from it).

    A missing table is a :class:`~todo_data.errors.SchemaNotReadyError` that says where.
    """
    if conn is not None:
        yield TasksReader(conn, await require_tasks_table(conn, where=located(source)), task_filter)
        return
    async with connect(source) as borrowed:
        yield TasksReader(borrowed, await require_tasks_table(borrowed, where=located(source)), task_filter)
