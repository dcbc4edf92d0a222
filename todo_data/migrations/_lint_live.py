"""The lint against a live database: each finding's table as its catalog sees it, and what it would cost.

The live database is only read, through a read-only engine: its catalog gives each
table's rows (``pg_class.reltuples``, counted when the table is small or was never
analyzed) and size (``pg_total_relation_size``), which a read-only role and a read replica
both answer. The cost comes from the lock trace's method (``_lint_replay``): the script
runs on a scratch copy seeded with sample rows, each statement is timed there, and a
statement that read or rewrote the table is extrapolated linearly by size to the live
table; one that only changed the catalog takes the same time whatever the size.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import pandas as pd
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from pglast import ast
from pglast.parser import ParseError
from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from todo_data import _sqlparse
from todo_data.database import connect, create_read_engine, describe, in_recovery
from todo_data.errors import MigrationError
from todo_data.migrations._config import revision_of
from todo_data.migrations._lint_replay import Measure, replay

#: The columns a finding gains when a database is given.
LIVE_COLUMNS: Final = ("rows", "bytes", "lock", "rewritten", "estimate", "impact")
#: Sample tasks seeded on the scratch copy before its statements are timed.
DEFAULT_SCRATCH_ROWS: Final = 50_000
#: The impact of every finding when the database is SQLite.
SQLITE_IMPACT: Final = (
    "The estimate applies to PostgreSQL: SQLite has no lock per table (a migration locks the whole database "
    "file until it commits)"
)
# Counted rather than estimated below this size (and when the table was never analyzed).
_COUNT_BELOW_BYTES: Final = 16 * 1024 * 1024
_COUNT_NEVER_ANALYZED_BELOW_BYTES: Final = 256 * 1024 * 1024
_LOCK_WORDS: Final = {
    "AccessShareLock": "ACCESS SHARE",
    "RowShareLock": "ROW SHARE",
    "RowExclusiveLock": "ROW EXCLUSIVE",
    "ShareUpdateExclusiveLock": "SHARE UPDATE EXCLUSIVE",
    "ShareLock": "SHARE",
    "ShareRowExclusiveLock": "SHARE ROW EXCLUSIVE",
    "ExclusiveLock": "EXCLUSIVE",
    "AccessExclusiveLock": "ACCESS EXCLUSIVE",
}

_TABLES: Final = text("""
    SELECT c.relname, c.reltuples::float8, pg_total_relation_size(c.oid), pg_relation_size(c.oid)
    FROM pg_class c
    WHERE c.relname = ANY(:names) AND c.relkind IN ('r', 'p', 'm') AND pg_table_is_visible(c.oid)
""")
_INDEXES: Final = text("""
    SELECT i.relname, t.relname FROM pg_index x
    JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid
    WHERE i.relname = ANY(:names) AND pg_table_is_visible(i.oid)
""")


@dataclass(frozen=True)
class LiveTable:
    """One table of the live database: its rows (None when unknown) and its size in bytes."""

    rows: int | None
    bytes: int | None


@dataclass(frozen=True)
class Live:
    """What the live database says: its tables, its index owners, its revision, whether it is a replica."""

    backend: str
    where: str
    tables: dict[str, LiveTable]
    index_tables: dict[str, str]
    revision: str | None
    replica: bool


async def read_live(url: str | URL, *, tables: set[str], indexes: set[str]) -> Live:
    """The catalog of the live database for these tables and indexes, read-only."""
    engine = create_read_engine(url, poolclass=NullPool)
    try:
        where = describe(engine)
        async with connect(engine) as conn:
            backend = conn.dialect.name
            revision = await conn.run_sync(revision_of)
            if backend != "postgresql":
                found = await _sqlite_tables(conn, tables)
                return Live(backend, where, found, {}, revision, replica=False)
            replica = await in_recovery(conn)
            owners = {str(i): str(t) for i, t in await conn.execute(_INDEXES, {"names": sorted(indexes)})}
            wanted = sorted(tables | set(owners.values()))
            found = {}
            for name, reltuples, total, heap in (await conn.execute(_TABLES, {"names": wanted})).all():
                found[str(name)] = LiveTable(await _rows(conn, str(name), reltuples, int(heap)), int(total))
        return Live(backend, where, found, owners, revision, replica)
    finally:
        await engine.dispose()


async def _rows(conn: Any, name: str, reltuples: float, heap: int) -> int | None:
    """``reltuples`` (PostgreSQL's estimate); counted when small or never analyzed (-1)."""
    small = heap < _COUNT_BELOW_BYTES or (reltuples < 0 and heap < _COUNT_NEVER_ANALYZED_BELOW_BYTES)
    if small:
        quoted = '"' + name.replace('"', '""') + '"'
        try:
            async with conn.begin_nested():  # a role without SELECT on it still gets the estimate
                return int((await conn.execute(text(f"SELECT count(*) FROM {quoted}"))).scalar_one())
        except DBAPIError:  # permission denied: the catalog's estimate will do
            pass
    return None if reltuples < 0 else round(reltuples)


async def _sqlite_tables(conn: Any, tables: set[str]) -> dict[str, LiveTable]:
    found = {}
    for (name,) in (await conn.execute(text("SELECT name FROM sqlite_master WHERE type = 'table'"))).all():
        if name in tables:
            quoted = '"' + str(name).replace('"', '""') + '"'
            count = (await conn.execute(text(f"SELECT count(*) FROM {quoted}"))).scalar_one()
            found[str(name)] = LiveTable(int(count), None)
    return found


async def annotate(
    findings: pd.DataFrame,
    scripts: list[tuple[str | None, str]],
    *,
    url: str | URL,
    scratch: URL | None,
    scratch_given: bool,
    rows: int,
    script: ScriptDirectory,
    revisions: bool,
    location: str | Path | None,
) -> pd.DataFrame:
    """``findings`` with :data:`LIVE_COLUMNS`: the live table's rows and size, the lock and its estimate.

    ``scripts`` (key, SQL) are what the findings were judged on (key: the revision, or
    None for one script); ``revisions`` says they are the revisions from the first, so the
    scratch copy starts empty, else it is upgraded to the live database's revision first.
    ``scratch``: where the scratch copy is made (None: it cannot be, the live database
    being a keyword/value string); ``scratch_given``: the caller chose it, else it is the
    live database's server, which a read replica cannot be (the impact says so).
    """
    records = [
        {"table": _text(r["table"]), "revision": _text(r["revision"]), "statement": str(r["statement"])}
        for r in findings.to_dict("records")
    ]
    indexes = {name for record in records if record["table"] is None for name in _dropped_indexes(record)}
    live = await read_live(url, tables={r["table"] for r in records if r["table"]}, indexes=indexes)
    tables = [_table_of(record, live) for record in records]
    if live.backend != "postgresql":
        return _frame(findings, [_sqlite_row(live, table) for table in tables])
    measures: dict[tuple[str | None, str], Measure] = {}
    reason = None
    if any(table in live.tables for table in tables):
        if live.replica and not scratch_given:
            reason = (
                f"{live.where} is a read replica, where no scratch copy can be made: give a scratch URL "
                "(the primary, or any server where the role may CREATE DATABASE)"
            )
        elif scratch is None:
            reason = "the scratch copy is made beside a URI (postgresql://…): give the scratch URL as one"
        else:
            base = None if revisions else _base_revision(script, live.revision)
            try:
                measures = await replay(scratch, scripts, rows=rows, base=base, location=location)
            except MigrationError as exc:
                reason = str(exc)
    rows_out = []
    for record, table in zip(records, tables, strict=True):
        measure = measures.get((record["revision"], str(record["statement"])))
        rows_out.append(_live_row(table, live, measure, reason))
    return _frame(findings, rows_out)


def _text(value: object) -> str | None:
    """A text cell, None for pandas' missing values."""
    return value if isinstance(value, str) else None


def _base_revision(script: ScriptDirectory, revision: str | None) -> str:
    """The live database's revision when the scripts know it, else head."""
    if revision is None:
        return "head"
    try:
        return revision if script.get_revisions(revision) else "head"
    except CommandError:
        return "head"


def _dropped_indexes(record: dict[str, Any]) -> list[str]:
    try:
        found = _sqlparse.statements(str(record["statement"]))
    except ParseError:  # not parsable: no index to resolve
        return []
    names = []
    for statement in found:
        node = statement.node
        if isinstance(node, ast.DropStmt):
            for name in node.objects or ():
                parts = name if isinstance(name, tuple | list) else (name,)
                names.append(str(getattr(parts[-1], "sval", parts[-1])))
    return names


def _table_of(record: dict[str, Any], live: Live) -> str | None:
    if record["table"]:
        return str(record["table"])
    owners = [live.index_tables[name] for name in _dropped_indexes(record) if name in live.index_tables]
    return owners[0] if owners else None


def _sqlite_row(live: Live, table: str | None) -> dict[str, Any]:
    found = live.tables.get(table or "")
    return _empty(rows=None if found is None else found.rows, impact=SQLITE_IMPACT)


def _empty(**values: Any) -> dict[str, Any]:
    return {"rows": None, "bytes": None, "lock": None, "rewritten": None, "estimate": None, "impact": None, **values}


def _live_row(table: str | None, live: Live, measure: Measure | None, reason: str | None) -> dict[str, Any]:
    found = live.tables.get(table or "")
    if table is None or found is None:
        impact = None if table is None else f"{table} does not exist in {live.where}: no live table to lock"
        return _empty(impact=impact)
    amount = f"{_rows_text(found.rows)} / {_bytes_text(found.bytes)}"
    size = f"{table}, {amount}"
    if measure is None or measure.error:
        why = reason or (measure.error if measure is not None else "the statement was not timed on the scratch copy")
        return _empty(rows=found.rows, bytes=found.bytes, impact=f"{size}; no estimate: {why}")
    effect = measure.tables.get(table)
    seconds = measure.seconds
    if effect is not None and effect.scanned and effect.bytes and found.bytes:
        seconds = measure.seconds * found.bytes / effect.bytes
    lock = None if effect is None else effect.lock
    rewritten = effect is not None and effect.rewritten
    held = f"{_LOCK_WORDS.get(lock, lock)} on " if lock else ""
    copied = " while it is rewritten" if rewritten else ""
    sentence = f"{held}{table}{copied}, {amount}: roughly {_seconds_text(seconds)}"
    if effect is None or not effect.scanned:
        sentence += " whatever its size (the catalog only: the danger is the queue behind the lock)"
    return {
        "rows": found.rows,
        "bytes": found.bytes,
        "lock": lock,
        "rewritten": rewritten,
        "estimate": pd.Timedelta(seconds=seconds),
        "impact": sentence,
    }


def _frame(findings: pd.DataFrame, rows: list[dict[str, Any]]) -> pd.DataFrame:
    result = findings.copy()
    live = pd.DataFrame(rows, columns=list(LIVE_COLUMNS), index=findings.index)
    result["rows"] = live["rows"].astype("Int64")
    result["bytes"] = live["bytes"].astype("Int64")
    result["lock"] = live["lock"].astype(object)
    result["rewritten"] = live["rewritten"].astype("boolean")
    result["estimate"] = pd.to_timedelta(live["estimate"])
    result["impact"] = live["impact"].astype(object)
    return result


def _rows_text(rows: int | None) -> str:
    if rows is None:
        return "rows unknown (never analyzed)"
    if rows < 10_000:
        return f"{rows:,} row{'' if rows == 1 else 's'}"
    for limit, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if rows >= limit:
            return f"about {_significant(rows / limit)}{suffix} rows"
    return f"about {rows:,} rows"  # pragma: no cover - every count from 10,000 up has a suffix


def _bytes_text(size: int | None) -> str:
    if size is None:
        return "size unknown"
    for limit, unit in ((1024**4, "TB"), (1024**3, "GB"), (1024**2, "MB"), (1024, "kB")):
        if size >= limit:
            return f"{_significant(size / limit)} {unit}"
    return f"{size} bytes"


def _seconds_text(seconds: float) -> str:
    if seconds < 1:
        return f"{_significant(max(1.0, seconds * 1000))} ms"
    if seconds < 120:
        return f"{_significant(seconds)} s"
    if seconds < 7200:
        return f"{_significant(seconds / 60)} min"
    return f"{_significant(seconds / 3600)} h"


def _significant(value: float) -> str:
    """Two significant digits (1.2, 12, 310 → 310, 1,234 → 1,200), as an estimate deserves."""
    if value >= 10:
        digits = len(str(int(value))) - 2
        return f"{round(value, -digits):,.0f}"
    return f"{value:.1f}".removesuffix(".0")
