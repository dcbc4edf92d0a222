"""The lock trace: each migration statement run on a scratch database, with the locks it took.

Around every statement Alembic executes, the migration's own backend is asked (in the
same session) which relation locks it holds (``pg_locks``) and which file each relation
lives in (``pg_class.relfilenode``): the locks held after a statement and not before
are the ones it took; a relation whose file changed was rewritten.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import pandas as pd
from alembic.script import ScriptDirectory
from pglast import ast
from pglast.parser import ParseError
from sqlalchemy import event, inspect
from sqlalchemy.engine import URL, Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from alembic import command
from todo_data import _sqlparse, sample
from todo_data.database import connect, create_engine
from todo_data.errors import MigrationError, driver_message
from todo_data.migrations._config import VERSION_TABLE, alembic_config
from todo_data.migrations._scratch import scratch_database
from todo_data.rules import TABLE_NAME
from todo_data.urls import parse_database_url

#: The columns of :func:`todo_data.migrations.trace`'s frame.
TRACE_COLUMNS: Final = ("revision", "statement", "relation", "locks", "held", "rewritten", "duration")
#: What :func:`todo_data.migrations.trace` answers on SQLite.
SQLITE_ANSWER: Final = (
    "trace applies to PostgreSQL: SQLite has no lock modes per table (a writer locks the whole database file "
    "for its transaction), so there is nothing to trace. Run it with a PostgreSQL (Neon) URL."
)
#: PostgreSQL's table lock modes, weakest first.
LOCK_MODES: Final = (
    "AccessShareLock",
    "RowShareLock",
    "RowExclusiveLock",
    "ShareUpdateExclusiveLock",
    "ShareLock",
    "ShareRowExclusiveLock",
    "ExclusiveLock",
    "AccessExclusiveLock",
)
_STRENGTH: Final = {mode: rank for rank, mode in enumerate(LOCK_MODES)}
_CATALOGS: Final = frozenset({"pg_catalog", "information_schema"})

_RELATIONS: Final = """
    SELECT c.oid, c.relname, c.relfilenode FROM pg_class c
    WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'p', 'i', 'I', 'm', 'S')
"""
#: The relation locks this session holds in this database (relation oid, mode).
OWN_LOCKS: Final = """
    SELECT l.relation, l.mode FROM pg_locks l
    WHERE l.pid = pg_backend_pid() AND l.locktype = 'relation' AND l.granted
      AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
"""


@dataclass(frozen=True)
class _Snapshot:
    names: dict[int, str]
    files: dict[int, int]
    locks: set[tuple[int, str]]


@dataclass
class _Tracer:
    """Collects one row per statement and relation while Alembic runs."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    revision: str = ""
    _before: _Snapshot | None = None
    _started: float = 0.0

    def before(self, conn: Connection, _cursor: Any, statement: str, *_: Any) -> None:
        self._before = _snapshot(conn) if _is_migration_statement(statement) else None
        self._started = time.perf_counter()

    def after(self, conn: Connection, _cursor: Any, statement: str, *_: Any) -> None:
        duration = time.perf_counter() - self._started
        before, self._before = self._before, None
        if before is None:
            return
        after = _snapshot(conn)
        names = {**before.names, **after.names}
        taken: dict[int, set[str]] = {}
        for oid, mode in after.locks - before.locks:
            if oid in before.names:  # relations the statement created are nobody else's yet
                taken.setdefault(oid, set()).add(mode)
        rewritten = {oid for oid, file in after.files.items() if before.files.get(oid, file) != file}
        # Locks this session took earlier in the revision are not taken again (or not
        # anew): a relation the statement names that is already locked says so, rather
        # than looking as if the statement locked nothing.
        held: dict[int, set[str]] = {}
        for oid, mode in before.locks:
            held.setdefault(oid, set()).add(mode)
        named = _sqlparse.relations(statement)
        already = {oid for oid, name in before.names.items() if name in named and oid in held}
        common = {
            "revision": self.revision,
            "statement": _sqlparse.one_line(statement),
            "duration": pd.Timedelta(seconds=duration),
        }
        touched = sorted(
            taken.keys() | rewritten | already,
            key=lambda oid: (-_strongest(taken.get(oid) or held.get(oid, set())), names[oid]),
        )
        if not touched:
            self.rows.append({**common, "relation": None, "locks": "", "held": "", "rewritten": False})
        for oid in touched:
            self.rows.append(
                {
                    **common,
                    "relation": names[oid],
                    "locks": _modes(taken.get(oid, set())),
                    "held": _modes(held.get(oid, set())),
                    "rewritten": oid in rewritten,
                }
            )

    def migrate(self, sync: Connection, revision: str, location: str | Path | None) -> None:
        """Upgrade to ``revision`` (one step) with every statement traced, and commit."""
        self.revision = revision
        if sync.in_transaction():
            sync.commit()
        event.listen(sync, "before_cursor_execute", self.before)
        event.listen(sync, "after_cursor_execute", self.after)
        try:
            command.upgrade(alembic_config(sync, location=location), revision)
            if sync.in_transaction():
                sync.commit()
        finally:
            event.remove(sync, "before_cursor_execute", self.before)
            event.remove(sync, "after_cursor_execute", self.after)


def _strongest(modes: set[str]) -> int:
    return max((_STRENGTH.get(mode, -1) for mode in modes), default=-1)


def _modes(modes: set[str]) -> str:
    """Lock modes, strongest first: ``AccessExclusiveLock, ShareLock``."""
    return ", ".join(sorted(modes, key=lambda mode: (-_STRENGTH.get(mode, -1), mode)))


def _snapshot(conn: Connection) -> _Snapshot:
    # The driver's own cursor: the same session and transaction as the statement, and no
    # SQLAlchemy events (which would trace these queries too).
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(_RELATIONS)
        relations = cursor.fetchall()
        cursor.execute(OWN_LOCKS)
        locks = {(int(oid), str(mode)) for oid, mode in cursor.fetchall() if oid is not None}
    finally:
        cursor.close()
    return _Snapshot(
        names={int(oid): str(name) for oid, name, _ in relations},
        files={int(oid): int(file) for oid, _, file in relations},
        locks=locks,
    )


def _is_migration_statement(sql: str) -> bool:
    """False for Alembic's bookkeeping and catalog reads, which are not the revision's."""
    try:
        statements = _sqlparse.statements(sql)
    except ParseError:
        return True
    for statement in statements:
        tables = list(_sqlparse.range_vars(statement.node))
        if any(table.relname == VERSION_TABLE for table in tables):
            return False
        if isinstance(statement.node, ast.VariableShowStmt):
            return False
        reads_catalog_only = all(
            table.schemaname in _CATALOGS or str(table.relname).startswith("pg_") for table in tables
        )
        if isinstance(statement.node, ast.SelectStmt) and reads_catalog_only:
            return False
    return True


async def trace(
    url: URL, revision: str, *, rows: int, script: ScriptDirectory, location: str | Path | None
) -> pd.DataFrame:
    """See :func:`todo_data.migrations.trace`."""
    if parse_database_url(url).backend == "sqlite":
        answer = {
            "revision": None,
            "statement": SQLITE_ANSWER,
            "relation": None,
            "locks": "",
            "held": "",
            "rewritten": False,
        }
        return _frame([{**answer, "duration": None}])
    revisions = [rev.revision for rev in reversed(list(script.iterate_revisions(revision, "base")))]
    tracer = _Tracer()
    async with scratch_database(url, purpose="the lock trace") as scratch:
        engine = create_engine(scratch, poolclass=NullPool)
        try:
            seeded = False
            async with connect(engine) as conn:
                for name in revisions:
                    await _step(conn.run_sync, tracer, name, location)
                    if not seeded and rows and await conn.run_sync(lambda sync: inspect(sync).has_table(TABLE_NAME)):
                        await conn.commit()
                        await sample.seed(engine, tasks=rows)
                        seeded = True
        finally:
            await engine.dispose()
    return _frame(tracer.rows)


async def _step(run_sync: Callable[..., Any], tracer: _Tracer, revision: str, location: str | Path | None) -> None:
    try:
        await run_sync(tracer.migrate, revision, location)
    except DBAPIError as exc:
        raise MigrationError(
            f"Revision {revision} failed on the scratch database: {driver_message(exc)} "
            f"(statement: {_sqlparse.one_line(str(exc.statement))[:200]})"
        ) from None


def _frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=list(TRACE_COLUMNS))
    frame["rewritten"] = frame["rewritten"].astype(bool)
    frame["duration"] = pd.Series([row["duration"] for row in rows], dtype="timedelta64[ns]")
    return frame
