"""``queries.profile``: what each column of the tasks table holds, measured by the database.

Two statements, whatever the size of the table: one scan computes every count, distinct
count, minimum and maximum; a second groups the text columns by length and finds the
percentiles in the grouped rows (window functions, on both backends). Only one row per
column travels.

The statistics are the ones pandas gives on :func:`~todo_data.queries.tasks_frame`'s
frame: ``nunique()`` for ``distinct``, code point order for the text minimum and
maximum (a database collation may order differently, so the SQL asks for binary/"C"
order), ``str.len()`` for lengths, and **nearest-rank** percentiles — the p-th
percentile is the smallest length ``v`` such that at least p % of the values are no
longer than ``v`` (the value at rank ``ceil(p / 100 * n)`` in ascending order; what
``percentile_disc`` computes).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import pandas as pd
from sqlalchemy import DateTime, Uuid, text

from todo_data._task_sql import TASK_COLUMNS, pg_readable, sqlite_instant
from todo_data.database import Source, connect, located, operation
from todo_data.models import Task
from todo_data.queries._formats import Output, check_output, convert
from todo_data.queries._task_frames import STRING
from todo_data.rules import RULES, TABLE_NAME, require_tasks_table

#: The length each text column may reach, as its rule (and CHECK constraint) says.
LENGTH_LIMITS: Final[Mapping[str, int]] = {
    rule.column: int(rule.json_schema["maxLength"]) for rule in RULES if rule.kind == "max_length"
}
#: The length percentiles reported, in percent.
PERCENTILES: Final = (50, 95)

PROFILE_COLUMNS: Final = (
    "column",
    "rows",
    "nulls",
    "distinct",
    "min",
    "max",
    *(f"length_p{p}" for p in PERCENTILES),
    "length_max",
    "length_limit",
)


@operation("queries.profile")
async def profile(source: Source, *, output: Output = "pandas") -> Any:
    """One row per column of the tasks table, computed by the database in two statements.

    Columns: ``column``; ``rows`` (in the table); ``nulls``; ``distinct`` (non-null
    distinct values); ``min`` and ``max`` as text (ids as canonical UUIDs, timestamps
    as ISO 8601 in UTC, text in code point order; missing when the column holds no
    value); and for text columns ``length_p50``, ``length_p95`` and ``length_max`` (in
    characters; nearest-rank percentiles) next to ``length_limit``, the longest its
    CHECK constraint allows — how close the data runs to each rule. ``output="arrow"``
    or ``"polars"`` returns the same table in that form.

    >>> await queries.profile(engine)  # doctest: +SKIP
            column   rows  nulls  distinct  ...  length_p50  length_p95  length_max  length_limit
    0           id  10000      0     10000  ...        <NA>        <NA>        <NA>          <NA>
    2        title  10000      0      8123  ...          24          41          58           200
    """
    chosen = check_output(output)
    kinds = _kinds()
    async with connect(source) as conn:
        backend = await require_tasks_table(conn, where=located(source))
        summary = (await conn.execute(text(_summary_sql(kinds, backend)))).one()
        lengths = (await conn.execute(text(_lengths_sql(kinds)))).all()
    percentiles = {str(name): [int(value) for value in values] for name, *values in lengths}
    rows = int(summary[0])
    records = []
    for index, name in enumerate(kinds):
        present, distinct, low, high = summary[1 + 4 * index : 5 + 4 * index]
        found = percentiles.get(name, [None] * (len(PERCENTILES) + 1))
        shown = _shown(kinds[name], low, high)
        records.append((name, rows, rows - int(present), int(distinct), *shown, *found, LENGTH_LIMITS.get(name)))
    frame = pd.DataFrame.from_records(records, columns=list(PROFILE_COLUMNS))
    for name in ("column", "min", "max"):
        frame[name] = frame[name].astype(STRING)
    for name in PROFILE_COLUMNS[6:]:
        frame[name] = frame[name].astype(pd.Int64Dtype())
    return convert(frame, chosen)


def _kinds() -> dict[str, str]:
    """Each column of the tasks table, in ``tasks_frame``'s order: "uuid", "timestamp" or "text"."""
    table = Task.__table__.columns  # type: ignore[attr-defined]
    kinds = {}
    for name in TASK_COLUMNS:
        kind = getattr(table[name].type, "impl_instance", table[name].type)
        kinds[name] = "uuid" if isinstance(kind, Uuid) else "timestamp" if isinstance(kind, DateTime) else "text"
    return kinds


def _summary_sql(kinds: Mapping[str, str], backend: str) -> str:
    """One row: the row count, then per column its non-null count, distinct count, min and max."""
    parts = ["count(*)"]
    for name, kind in kinds.items():
        value = _comparable(name, kind, backend)
        parts += [f"count({value})", f"count(DISTINCT {value})", f"min({value})", f"max({value})"]
    return f"SELECT {', '.join(parts)} FROM {TABLE_NAME}"


def _comparable(name: str, kind: str, backend: str) -> str:
    """The column as a value whose database order is pandas' order, NULL where pandas sees a missing value.

    Timestamps that ``tasks_frame`` reads as NaT (PostgreSQL's ``±infinity``, SQLite text
    that is no time) count as missing here too, and SQLite's text in any ISO 8601 form is
    compared by its instant, as ``tasks_frame`` reads it.
    """
    if backend == "postgresql":
        if kind == "uuid":
            return f'CAST({name} AS text) COLLATE "C"'  # canonical text; the uuid type has no min()
        if kind == "timestamp":
            return f"CASE WHEN {pg_readable(name)} THEN {name} END"
        return f'{name} COLLATE "C"' if kind == "text" else name
    if kind == "uuid":
        return f"lower(replace({name}, '-', ''))"  # stored as 32 hex digits
    if kind == "timestamp":
        return sqlite_instant(name)  # integer microseconds since 1970
    return name  # SQLite's default BINARY collation is code point order for UTF-8


def _lengths_sql(kinds: Mapping[str, str]) -> str:
    """Per text column: the nearest-rank length percentiles and the longest length.

    Lengths are grouped first (a text column holds few distinct lengths), then a running
    count per length finds, for each percentile p, the smallest length with
    ``100 * (values no longer) >= p * (values)`` — integer arithmetic, no rounding.
    ``length()`` counts characters on both backends (SQLite's stops at a NUL character,
    which only a raw write can store and :func:`todo_data.checks.violations` reports).
    """
    texts = [name for name, kind in kinds.items() if kind == "text"]
    grouped = " UNION ALL ".join(
        f"SELECT '{name}' AS name, length({name}) AS len, count(*) AS k "
        f"FROM {TABLE_NAME} WHERE {name} IS NOT NULL GROUP BY length({name})"
        for name in texts
    )
    picks = ", ".join(f"min(CASE WHEN 100 * upto >= {p} * total THEN len END)" for p in PERCENTILES)
    return (
        f"WITH grouped AS ({grouped}), running AS ("
        "SELECT name, len, sum(k) OVER (PARTITION BY name ORDER BY len) AS upto, "
        "sum(k) OVER (PARTITION BY name) AS total FROM grouped) "
        f"SELECT name, {picks}, max(len) FROM running GROUP BY name"
    )


def _shown(kind: str, low: Any, high: Any) -> tuple[str | None, str | None]:
    """min and max as the text the profile shows."""
    if low is None:
        return None, None
    if kind == "timestamp":
        return _iso(low), _iso(high)
    if kind == "uuid" and len(str(low)) == 32:
        return _canonical(str(low)), _canonical(str(high))
    return str(low), str(high)


def _iso(value: Any) -> str:
    """A timestamp as ISO 8601 in UTC: PostgreSQL gives a datetime, SQLite microseconds since 1970."""
    if isinstance(value, int):
        return pd.Timestamp(value, unit="us", tz="UTC").isoformat()
    return pd.Timestamp(value).tz_convert("UTC").isoformat()


def _canonical(hex_digits: str) -> str:
    h = hex_digits
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
