"""The SQL that reads the tasks table, for SQLite and PostgreSQL: filters, rows, buckets.

Every value is a bound ``:name`` parameter (see :class:`Params`). What a timestamp written
by another client reads as is decided here for the database side, the same on both
backends: it is *missing* (NaT) when it is NULL, PostgreSQL's ±infinity or an instant
beyond ``datetime64[us]``, or, in SQLite, text that is no ISO 8601 time. Such rows sort
after every other row (by id among themselves) and fall outside every ``since``/``until``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal

from todo_data.models import TaskStatus
from todo_data.rules import TABLE_NAME

TASK_COLUMNS: Final = ("id", "user_id", "title", "description", "status", "created_at", "updated_at")
#: The contract's row order: by created_at (missing last), then id (as PostgreSQL orders uuids: byte by byte).
TASK_ORDER: Final = ("created_at", "id")

_UNIX_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
#: The last instant ``datetime64[us]`` holds (int64 microseconds from 1970). PostgreSQL
#: accepts later ones (up to the year 294276): they would wrap like ``'infinity'`` does.
_PG_LAST_READABLE: Final = "'294247-01-10 04:00:54.775807+00'::timestamptz"
_PG_BUCKETS: Final = {"D": "day", "W": "week", "M": "month"}
# SQLite date-function modifiers giving the start of the UTC day, Monday-based week, month.
_SQLITE_BUCKETS: Final = {
    "D": "'start of day'",
    "W": "'start of day', 'weekday 0', '-6 days'",
    "M": "'start of month'",
}


def pg_readable(column: str) -> str:
    """True when a PostgreSQL ``timestamptz`` reads as a time (see above), else false or NULL."""
    return f"({column} > '-infinity' AND {column} <= {_PG_LAST_READABLE})"


def sqlite_instant(column: str, *, unit: Literal["us", "s"] = "us") -> str:
    """The UTC instant of SQLite timestamp text: integer microseconds (or whole seconds) since 1970, or NULL.

    Reads the ISO 8601 forms SQLite's date functions know: a date, or a date and a time
    (``T`` or space between; minutes, seconds and any number of fractional digits;
    ``Z``, ``+HH:MM`` or ``-HH:MM``, naive meaning UTC). Everything else is NULL: numbers,
    words such as ``'now'`` (which SQLite would read as the current time) and dates that
    don't exist (``2025-02-30``, which SQLite would roll into March).

    SQLite's date functions keep milliseconds and round them, so the fraction is cut out
    of the text before they see it and added back as an integer, rounded to microseconds
    as PostgreSQL rounds its input.
    """
    c = column
    fraction = f"substr({c}, 21)"  # what follows "YYYY-MM-DDTHH:MM:SS.": digits, then the zone
    zone = f"ltrim({fraction}, '0123456789')"
    whole = f"CASE instr({c}, '.') WHEN 0 THEN {c} WHEN 20 THEN substr({c}, 1, 19) || {zone} END"
    digits = f"CASE instr({c}, '.') WHEN 20 THEN substr({fraction}, 1, length({fraction}) - length({zone})) ELSE '' END"
    seconds = f"CAST(strftime('%s', {whole}) AS INTEGER)"
    micros = f"(CAST(substr(({digits}) || '0000000', 1, 7) AS INTEGER) + 5) / 10"
    value = f"{seconds} * 1000000 + {micros}" if unit == "us" else f"{seconds} + ({micros}) / 1000000"
    return (
        f"(CASE WHEN typeof({c}) = 'text' AND {c} GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]*'"
        f" AND date(substr({c}, 1, 10), '+0 days') = substr({c}, 1, 10) THEN {value} END)"
    )


# -- filters -------------------------------------------------------------------------------


@dataclass
class Params:
    """Bound parameters of one statement, named ``:p0``, ``:p1``… in order of use."""

    values: list[Any] = field(default_factory=list)

    def add(self, value: Any) -> str:
        self.values.append(value)
        return f":p{len(self.values) - 1}"

    def named(self) -> dict[str, Any]:
        return {f"p{i}": value for i, value in enumerate(self.values)}


@dataclass(frozen=True)
class TaskFilter:
    """Validated filters; renders a WHERE clause for either backend."""

    user_id: str | None = None
    statuses: tuple[str, ...] | None = None
    since: datetime | None = None
    until: datetime | None = None
    open_only: bool = False

    def where(self, backend: str, params: Params) -> str:
        clauses: list[str] = []
        if self.user_id is not None:
            clauses.append(f"user_id = {params.add(self.user_id)}")
        if self.statuses is not None:
            clauses.append(f"status IN ({', '.join(params.add(s) for s in self.statuses)})")
        if self.open_only:
            # A missing status is not "completed": the task counts as open.
            clauses.append(f"(status <> {params.add(TaskStatus.COMPLETED.value)} OR status IS NULL)")
        if backend == "sqlite":
            created = sqlite_instant("created_at")
            for bound, op in ((self.since, ">="), (self.until, "<")):
                if bound is not None:
                    clauses.append(f"{created} {op} {params.add(_micros(bound))}")
        else:
            # Plain comparisons on the column (an index on created_at would serve them),
            # each closed on its open side so that ±infinity stays outside like NaT.
            if self.since is not None:
                clauses.append(f"created_at >= {params.add(self.since)} AND created_at <= {_PG_LAST_READABLE}")
            if self.until is not None:
                clauses.append(f"created_at < {params.add(self.until)} AND created_at > '-infinity'")
        return f" WHERE {' AND '.join(clauses)}" if clauses else ""


def _micros(value: datetime) -> int:
    return (value - _UNIX_EPOCH) // timedelta(microseconds=1)


# -- statements ----------------------------------------------------------------------------


def pg_tasks_select(task_filter: TaskFilter, params: Params, *, ordered: bool) -> str:
    """The task columns as stored; with ``ordered``, in the contract's order (:data:`TASK_ORDER`).

    Unordered, the rows come as the table is scanned, for a caller that sorts them itself
    (sorting them costs the server about as much as sending them).
    """
    select = f"SELECT {', '.join(TASK_COLUMNS)} FROM {TABLE_NAME}{task_filter.where('postgresql', params)}"
    # A created_at that reads as missing is NULL here, and NULLs sort last.
    return f"{select} ORDER BY CASE WHEN {pg_readable('created_at')} THEN created_at END, id" if ordered else select


def sqlite_tasks_select(task_filter: TaskFilter, params: Params) -> str:
    """The task columns in the contract's order: canonical UUID text, plain text, timestamps
    as integer microseconds since 1970 (NULL when missing)."""
    hex_id = "lower(replace(id, '-', ''))"
    canonical_id = " || '-' || ".join(
        f"substr({hex_id}, {start}, {size})" for start, size in ((1, 8), (9, 4), (13, 4), (17, 4), (21, 12))
    )
    return (
        f"SELECT {canonical_id}, user_id, title, description, status,"
        f" {sqlite_instant('created_at')}, {sqlite_instant('updated_at')}"
        # By created_at's instant (the 6th column), NaT last, as on PostgreSQL.
        f" FROM {TABLE_NAME}{task_filter.where('sqlite', params)} ORDER BY 6 NULLS LAST, id NULLS LAST"
    )


def created_over_time_select(backend: str, freq: str, task_filter: TaskFilter, params: Params) -> str:
    """Rows of (period, status, count): the start of each ``created_at``'s UTC day, week
    (from Monday) or month as seconds since 1970 (NULL when it reads as missing).

    Seconds rather than a timestamp: the driver never builds a Python datetime, which
    stops at the year 9999. PostgreSQL groups by the truncated timestamp and converts
    only the groups.
    """
    where = task_filter.where(backend, params)
    if backend == "sqlite":
        seconds = sqlite_instant("created_at", unit="s")
        period = f"CAST(strftime('%s', {seconds}, 'unixepoch', {_SQLITE_BUCKETS[freq]}) AS INTEGER)"
        return f"SELECT {period}, status, count(*) FROM {TABLE_NAME}{where} GROUP BY 1, 2"
    bucket = f"date_trunc('{_PG_BUCKETS[freq]}', created_at AT TIME ZONE 'UTC')"
    grouped = (
        f"SELECT CASE WHEN {pg_readable('created_at')} THEN {bucket} END AS period, status, count(*) AS count"
        f" FROM {TABLE_NAME}{where} GROUP BY 1, 2"
    )
    return f"SELECT CAST(extract(epoch FROM period) AS bigint), status, count FROM ({grouped}) AS buckets"


def status_counts_select(backend: str, task_filter: TaskFilter, params: Params) -> str:
    return f"SELECT status, count(*) FROM {TABLE_NAME}{task_filter.where(backend, params)} GROUP BY status"


def per_user_select(backend: str, task_filter: TaskFilter, params: Params) -> str:
    where = task_filter.where(backend, params)
    return f"SELECT user_id, status, count(*) FROM {TABLE_NAME}{where} GROUP BY user_id, status"


def distinct_statuses_select(backend: str, task_filter: TaskFilter, params: Params) -> str:
    where = task_filter.where(backend, params)
    return f"SELECT DISTINCT status FROM {TABLE_NAME}{where}{' AND' if where else ' WHERE'} status IS NOT NULL"
