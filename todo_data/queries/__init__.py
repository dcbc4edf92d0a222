"""The tasks as pandas DataFrames: the whole table, streamed chunks, and distributions.

Every function takes a *source* (an ``AsyncEngine``, ``AsyncConnection`` or
``AsyncSession``), never commits or closes it, and returns the same frame on SQLite and
PostgreSQL: same columns, dtypes, order and values. Every function takes the filters
``user_id``, ``status``, ``since`` and ``until`` (see :func:`tasks_frame`), applied by the
database (``WHERE``); distributions are computed by it too (``GROUP BY``), so only the
aggregated rows travel. ``output="arrow"`` or ``"polars"`` gives the same frame as a
``pyarrow.Table`` or a Polars DataFrame (the ``polars`` extra), with the same types.
:func:`sql` and :func:`iter_sql` answer any other read question, typed from the result's
columns.

>>> from todo_data import create_engine, queries
>>> engine = create_engine()
>>> tasks = await queries.tasks_frame(engine, status="pending", since="2025-01-01")  # doctest: +SKIP
>>> (await queries.status_counts(engine, user_id="alice")).plot.bar(x="status", y="count")  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import aclosing
from dataclasses import replace
from datetime import UTC, datetime
from functools import partial
from typing import Any, Final, Literal, TypeAlias

import numpy as np
import pandas as pd
from sqlalchemy.ext.asyncio import AsyncEngine

from todo_data import _task_sql
from todo_data._args import integer
from todo_data.database import Source, operation
from todo_data.errors import InvalidArgumentError, QueryError
from todo_data.models import TaskStatus
from todo_data.queries import _adhoc, _task_frames
from todo_data.queries._export import export_parquet as export_parquet
from todo_data.queries._filters import StatusFilter as StatusFilter
from todo_data.queries._filters import TimeBound as TimeBound
from todo_data.queries._filters import task_filter, time_bound
from todo_data.queries._formats import Output, check_output, convert, from_arrow, pandas_from_arrow
from todo_data.queries._profile import profile as profile
from todo_data.queries._task_frames import STRING, TIMEDELTA, status_dtype
from todo_data.queries._tasks import reading_tasks

__all__ = [
    "created_over_time",
    "export_parquet",
    "iter_sql",
    "iter_tasks_frames",
    "open_task_ages",
    "profile",
    "sql",
    "status_counts",
    "tasks_frame",
    "tasks_per_user",
]

Freq = Literal["D", "W", "M"]
#: What the frame functions return: a ``pandas.DataFrame`` (``output="pandas"``, the
#: default), a ``pyarrow.Table`` (``"arrow"``) or a ``polars.DataFrame`` (``"polars"``).
Frame: TypeAlias = Any


@operation("queries.tasks_frame")
async def tasks_frame(
    source: Source,
    *,
    user_id: str | None = None,
    status: StatusFilter = None,
    since: TimeBound = None,
    until: TimeBound = None,
    output: Output = "pandas",
) -> Frame:
    """Every task matching the filters, one row each, ordered by ``created_at`` then ``id``.

    Columns: ``id`` (canonical UUID text), ``user_id``, ``title``, ``description`` (NaN
    when NULL), ``status`` (categorical: every :class:`TaskStatus` in declared order, then
    any unknown stored value), ``created_at`` and ``updated_at`` (``datetime64[us, UTC]``).

    Filters combine, and every function of this module takes them with the same meaning:
    ``user_id``; ``status``, a status or any other non-blank text (so statuses the code
    doesn't know can be picked too), or a list of them; ``since`` (inclusive) and
    ``until`` (exclusive) bound ``created_at`` and take datetimes (naive ones are UTC),
    dates or ISO 8601 text. Bad values raise :class:`~todo_data.errors.InvalidArgumentError`
    before any query runs.

    Values another client wrote never stop the read: a NULL reads as missing (NaN, NaT);
    a timestamp that is no time (PostgreSQL's ``'infinity'``, SQLite text that is no ISO
    8601 time) reads as NaT. Rows whose ``created_at`` is NaT come last and fall outside
    every ``since``/``until``. SQLite text such as ``2025-01-01T12:00:00+02:00`` reads,
    sorts and filters as its UTC instant.

    On PostgreSQL the rows arrive through a binary ``COPY`` decoded column-wise (see
    :mod:`todo_data.queries._pgcopy`), faster than the fastest DataFrame loaders.

    >>> late = await tasks_frame(engine, status=["pending", "in_progress"], until="2025-06-01")  # doctest: +SKIP
    >>> late.groupby("user_id").size().nlargest(5)  # doctest: +SKIP
    """
    filters = task_filter(user_id=user_id, status=status, since=since, until=until)
    chosen = check_output(output)
    async with reading_tasks(source, filters) as tasks:
        return convert(await tasks.frame(), chosen)


@operation("queries.iter_tasks_frames")
async def iter_tasks_frames(
    source: Source,
    *,
    chunk_size: int = 100_000,
    user_id: str | None = None,
    status: StatusFilter = None,
    since: TimeBound = None,
    until: TimeBound = None,
) -> AsyncIterator[pd.DataFrame]:
    """:func:`tasks_frame` in chunks of at most ``chunk_size`` rows, for tables that don't fit in memory.

    On PostgreSQL the rows stream through the binary ``COPY`` of :func:`tasks_frame`, in
    the contract's order, paused while a chunk is being used (the server waits), so memory
    holds about two chunks whatever the size of the table; it works through PgBouncer's
    transaction mode too. Every chunk has the same columns, dtypes and status categories,
    so ``pd.concat`` of the chunks equals :func:`tasks_frame`. No rows, no chunks.

    Break out early with :func:`contextlib.aclosing` to stop the query at once: with an
    engine the connection is released; a connection or session you passed is closed and
    replaced, as after a lost connection (roll it back before using it again).

    >>> async for chunk in iter_tasks_frames(engine, chunk_size=50_000, status="completed"):  # doctest: +SKIP
    ...     totals = totals.add(chunk.groupby("user_id").size(), fill_value=0)
    """
    _check_chunk_size(chunk_size)
    filters = task_filter(user_id=user_id, status=status, since=since, until=until)
    async with reading_tasks(source, filters) as tasks, aclosing(tasks.frames(chunk_size)) as frames:
        async for frame in frames:
            yield frame


@operation("queries.status_counts")
async def status_counts(
    source: Source,
    *,
    user_id: str | None = None,
    status: StatusFilter = None,
    since: TimeBound = None,
    until: TimeBound = None,
    output: Output = "pandas",
) -> Frame:
    """Tasks per status, counted in the database: ``status``, ``count``, ``share``.

    One row per known status (zeros included) and per unknown stored status; ``share``
    sums to 1.0 (0.0 everywhere when there are no tasks). Tasks whose status is missing
    (NULL, written by another client) get one more row, last, with ``status`` NaN.
    Filters as in :func:`tasks_frame`, applied in the ``WHERE`` clause.

    >>> (await status_counts(engine, since="2025-01-01")).plot.pie(y="count", labels=...)  # doctest: +SKIP
    """
    filters = task_filter(user_id=user_id, status=status, since=since, until=until)
    chosen = check_output(output)
    async with reading_tasks(source, filters) as tasks:
        counts = {value: int(count) for value, count in await tasks.rows(_task_sql.status_counts_select)}
    missing = counts.pop(None, 0)
    dtype = status_dtype(str(value) for value in counts)
    statuses: list[str | None] = [*dtype.categories, *([None] if missing else [])]
    count = np.array([counts.get(value, 0) for value in dtype.categories] + ([missing] if missing else []))
    total = int(count.sum())
    frame = pd.DataFrame(
        {
            "status": pd.Categorical(statuses, dtype=dtype),
            "count": count.astype(np.int64),
            "share": count / total if total else np.zeros(len(count)),
        }
    )
    return convert(frame, chosen)


PER_USER_FIXED_COLUMNS: Final = frozenset({"user_id", "total", "completion_rate"})


@operation("queries.tasks_per_user")
async def tasks_per_user(
    source: Source,
    *,
    user_id: str | None = None,
    status: StatusFilter = None,
    since: TimeBound = None,
    until: TimeBound = None,
    output: Output = "pandas",
) -> Frame:
    """One row per user: ``user_id``, ``total``, one integer column per status, ``completion_rate``.

    An unknown stored status named like a fixed column (``total``, say) gets the column
    ``"total (status)"``. A task whose status is missing (NULL) counts in ``total`` only;
    tasks whose ``user_id`` is missing share one last row with ``user_id`` NaN.

    Counted in the database (``GROUP BY user_id, status``); ordered by ``user_id``;
    ``completion_rate`` is completed / total (0.0 to 1.0). Filters as in :func:`tasks_frame`.

    >>> (await tasks_per_user(engine, since="2025-01-01")).nlargest(10, "total")  # doctest: +SKIP
    """
    filters = task_filter(user_id=user_id, status=status, since=since, until=until)
    chosen = check_output(output)
    async with reading_tasks(source, filters) as tasks:
        rows = [(user, value, int(count)) for user, value, count in await tasks.rows(_task_sql.per_user_select)]
    dtype = status_dtype(str(value) for _, value, _ in rows if value is not None)
    # Sorted in Python: database collations differ, code point order doesn't.
    named = sorted({str(user) for user, _, _ in rows if user is not None})
    users: list[str | None] = [*named, *([None] if any(user is None for user, _, _ in rows) else [])]
    row_of = {user: i for i, user in enumerate(users)}
    column_of = {value: j for j, value in enumerate(dtype.categories)}
    counts = np.zeros((len(users), len(column_of)), dtype=np.int64)
    total = np.zeros(len(users), dtype=np.int64)
    for user, value, count in rows:
        total[row_of[user]] += count
        if value is not None:
            counts[row_of[user], column_of[value]] = count
    completed = counts[:, column_of[TaskStatus.COMPLETED.value]]
    frame = pd.DataFrame({"user_id": pd.array(users, dtype=STRING), "total": total})
    for value, j in column_of.items():
        # A stored status may be any text, even "total": never let it replace a fixed column.
        frame[f"{value} (status)" if value in PER_USER_FIXED_COLUMNS else value] = counts[:, j]
    frame["completion_rate"] = np.divide(completed, total, out=np.zeros(len(users)), where=total > 0)
    return convert(frame, chosen)


@operation("queries.created_over_time")
async def created_over_time(
    source: Source,
    *,
    freq: Freq = "D",
    user_id: str | None = None,
    status: StatusFilter = None,
    since: TimeBound = None,
    until: TimeBound = None,
    output: Output = "pandas",
) -> Frame:
    """Tasks created per UTC day (``"D"``), week starting Monday (``"W"``) or month (``"M"``), per status.

    Columns ``period`` (bucket start, ``datetime64[us, UTC]``), ``status``, ``count``;
    only non-empty buckets, ordered by period then status. Buckets are computed by the
    database, in UTC even when the session's ``TimeZone`` is another one. Tasks whose
    ``created_at`` reads as missing (see :func:`tasks_frame`) are counted under a NaT
    period, last. Filters as in :func:`tasks_frame`.

    >>> weekly = await created_over_time(engine, freq="W", user_id="alice")  # doctest: +SKIP
    >>> weekly.pivot(index="period", columns="status", values="count").plot.area()  # doctest: +SKIP
    """
    if freq not in ("D", "W", "M"):
        raise InvalidArgumentError(f'freq must be "D" (day), "W" (week) or "M" (month), not {freq!r}')
    filters = task_filter(user_id=user_id, status=status, since=since, until=until)
    chosen = check_output(output)
    by_period = partial(_by_period, freq=freq)
    async with reading_tasks(source, filters) as tasks:
        rows = await tasks.rows(by_period)
    dtype = status_dtype(str(value) for _, value, _ in rows if value is not None)
    frame = pd.DataFrame(
        {
            "period": _task_frames.utc_from_seconds([period for period, _, _ in rows]),
            "status": pd.Categorical([value for _, value, _ in rows], dtype=dtype),
            "count": np.array([int(count) for _, _, count in rows], dtype=np.int64),
        }
    )
    return convert(frame.sort_values(["period", "status"], ignore_index=True), chosen)


@operation("queries.open_task_ages")
async def open_task_ages(
    source: Source,
    *,
    now: datetime | None = None,
    user_id: str | None = None,
    status: StatusFilter = None,
    since: TimeBound = None,
    until: TimeBound = None,
    output: Output = "pandas",
) -> Frame:
    """Every task not completed (unknown and missing statuses count as open), oldest first, with its age.

    Columns ``id``, ``user_id``, ``title``, ``status``, ``created_at`` and ``age``
    (``timedelta64[us]``: ``now`` minus ``created_at``, NaT when ``created_at`` is; ``now``
    defaults to the current time). Filters as in :func:`tasks_frame`, applied in SQL.

    >>> ages = await open_task_ages(engine, user_id="alice")  # doctest: +SKIP
    >>> ages.groupby("status", observed=True)["age"].median()  # doctest: +SKIP
    """
    filters = replace(task_filter(user_id=user_id, status=status, since=since, until=until), open_only=True)
    reference = pd.Timestamp(time_bound("now", now) if now is not None else datetime.now(UTC)).as_unit("us")
    chosen = check_output(output)
    async with reading_tasks(source, filters) as tasks:
        frame = (await tasks.frame())[["id", "user_id", "title", "status", "created_at"]].copy()
    frame["age"] = (reference - frame["created_at"]).astype(TIMEDELTA)
    return convert(frame, chosen)


# -- ad-hoc SQL ------------------------------------------------------------------------------------


@operation("queries.sql", error=QueryError)
async def sql(
    source: Source, query: str, params: Mapping[str, Any] | None = None, *, output: Output = "pandas"
) -> Frame:
    """Any read query as a typed DataFrame (or ``pyarrow.Table``, or Polars DataFrame).

    ``query`` is exactly one read statement (``SELECT``, ``WITH … SELECT``, ``VALUES``,
    ``TABLE``, ``SHOW``, ``EXPLAIN`` without ``ANALYZE``; trailing semicolons and comments
    are fine), checked by PostgreSQL's own parser (SQLite's own compiler) before anything
    is sent: anything else, and the lock and signal functions of
    :data:`todo_data._sqlparse.REFUSED_FUNCTIONS`, is an
    :class:`~todo_data.errors.InvalidArgumentError` naming what was found. ``:name`` is a
    parameter only outside string literals, quoted identifiers, dollar quotes and
    comments (unlike SQLAlchemy's ``text()``); ``params`` maps each name to its value.
    Values are always bound, never formatted into the SQL. With an engine the query runs
    in a READ ONLY transaction that is rolled back, leaving the connection as it found it;
    with a connection or session it runs in the caller's transaction.

    Column types follow the result's: integers ``int64`` (``Int64`` when a value is
    missing), ``float``/``double`` ``float64``, ``numeric`` ``float64`` (the nearest
    double, decoded in the client: NaN and ±Infinity kept, ±inf beyond float64's range,
    0.0 below it), ``boolean`` ``bool`` (``boolean`` with missing values), text, varchar,
    json and jsonb ``str``, ``uuid`` canonical ``str``, ``timestamptz``
    ``datetime64[us, UTC]``, ``timestamp`` ``datetime64[us]``, ``date``
    ``date32[pyarrow]``, ``interval`` ``timedelta64[us]`` by PostgreSQL's own
    ``extract(epoch FROM interval)`` (a year of months is 365.25 days, a month 30 days;
    ``output="arrow"`` keeps months, days and time apart as ``month_day_nano``); other
    types arrive as their PostgreSQL text. Values are never wrapped: what a frame cannot
    hold (±infinity; dates and timestamps outside the years 1 to 9999 in pandas, -262143
    to 262142 in Polars; intervals beyond ±292,000 years) reads as NaT or null, with a
    :class:`~todo_data.errors.TodoDataWarning` naming the column and the count.
    SQLite has no column types: integers, floats and text come back as such, everything
    else (its dates and times are text) as ``str``.

    On PostgreSQL the rows stream through a binary ``COPY`` decoded column by column. A
    failing query raises :class:`~todo_data.errors.QueryError` with the database's message;
    bad arguments raise :class:`~todo_data.errors.InvalidArgumentError` before any query.

    >>> await sql(engine, "SELECT user_id, count(*) AS n FROM tasks WHERE title ILIKE :p GROUP BY 1",
    ...           {"p": "%invoice%"})  # doctest: +SKIP
    """
    stmt = _adhoc.statement(query, params)
    chosen = check_output(output)
    stmt = _adhoc.checked(source, stmt)
    read_only = isinstance(source, AsyncEngine)
    async with _adhoc.reading(source) as conn:
        if conn.dialect.name == "postgresql":
            result = await _adhoc.pg_table(conn, stmt, read_only=read_only)
        else:
            result = await _adhoc.sqlite_table(conn, stmt)
    return from_arrow(result, chosen)


@operation("queries.iter_sql", error=QueryError)
async def iter_sql(
    source: Source,
    query: str,
    params: Mapping[str, Any] | None = None,
    *,
    chunk_size: int = 100_000,
) -> AsyncIterator[pd.DataFrame]:
    """:func:`sql` in DataFrames of at most ``chunk_size`` rows, in bounded memory.

    On PostgreSQL the binary ``COPY`` is paused while a chunk is being used (the server
    waits), so memory holds about two chunks whatever the size of the result. Break out
    early with :func:`contextlib.aclosing` to stop the query at once: with an engine the
    connection is released; a connection or session you passed is closed and replaced,
    as after a lost connection (roll it back before using it again).

    >>> async for chunk in iter_sql(engine, "SELECT * FROM tasks", chunk_size=50_000):  # doctest: +SKIP
    ...     chunk.to_parquet(...)
    """
    _check_chunk_size(chunk_size)
    stmt = _adhoc.checked(source, _adhoc.statement(query, params))
    read_only = isinstance(source, AsyncEngine)
    async with _adhoc.reading(source) as conn:
        if conn.dialect.name == "postgresql":
            batches = _adhoc.pg_batches(conn, stmt, chunk_size, read_only=read_only)
        else:
            batches = _adhoc.sqlite_batches(conn, stmt, chunk_size)
        async with aclosing(batches):
            async for batch in batches:
                yield pandas_from_arrow(batch)


def _by_period(backend: str, task_filter: _task_sql.TaskFilter, params: _task_sql.Params, *, freq: str) -> str:
    return _task_sql.created_over_time_select(backend, freq, task_filter, params)


def _check_chunk_size(chunk_size: object) -> None:
    integer("chunk_size", chunk_size, least=1)
