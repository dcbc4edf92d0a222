"""The lint's measurements: a script replayed on a seeded scratch database, each statement timed.

The lock trace's method, applied to what the lint judged: every statement of the script
runs in order on a scratch database (as psql runs it: autocommit unless ``BEGIN``), and
around each one the session's own view of the catalog says which existing tables it
locked (``pg_locks``), which it rewrote (``relfilenode`` changed), which it read row by
row (``pg_stat_xact_user_tables``: a scan, an index build, a validation) and how big each
table was before it. The scratch database sits on the same server as the database it
stands for, so a statement that could reach past it (roles, databases, other sessions,
server files) is not replayed.
"""

from __future__ import annotations

import fnmatch
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from pglast import ast
from pglast.visitors import Visitor
from sqlalchemy.engine import URL, Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from alembic import command
from todo_data import _sqlparse, sample
from todo_data.database import connect, create_engine, raw_driver
from todo_data.errors import MigrationError, driver_message
from todo_data.migrations._config import alembic_config
from todo_data.migrations._scratch import scratch_database
from todo_data.migrations._trace import LOCK_MODES, OWN_LOCKS
from todo_data.rules import TABLE_NAME

#: Statements replayed on the scratch copy: what a migration does inside its own database.
#: Anything else (roles, databases, tablespaces, subscriptions, COPY with server files,
#: DO and CALL, whose bodies cannot be seen) could act beyond the scratch copy.
_REPLAYED: Final = (
    ast.AlterTableStmt,
    ast.IndexStmt,
    ast.DropStmt,
    ast.TruncateStmt,
    ast.ReindexStmt,
    ast.ClusterStmt,
    ast.VacuumStmt,
    ast.RenameStmt,
    ast.AlterEnumStmt,
    ast.AlterDomainStmt,
    ast.AlterObjectSchemaStmt,
    ast.AlterSeqStmt,
    ast.CreateStmt,
    ast.CreateTableAsStmt,
    ast.CreateDomainStmt,
    ast.CreateEnumStmt,
    ast.CreateSeqStmt,
    ast.CreateFunctionStmt,
    ast.CreateTrigStmt,
    ast.CreateSchemaStmt,
    ast.ViewStmt,
    ast.CommentStmt,
    ast.LockStmt,
    ast.SelectStmt,
    ast.InsertStmt,
    ast.UpdateStmt,
    ast.DeleteStmt,
    ast.VariableSetStmt,
    ast.TransactionStmt,
)
#: Functions that act beyond the session's database, refused wherever they appear.
_BEYOND: Final = tuple(name for name in _sqlparse.REFUSED_FUNCTIONS if name not in ("nextval", "setval", "set_config"))
_STRENGTH: Final = {mode: rank for rank, mode in enumerate(LOCK_MODES)}
# PostgreSQL's "cannot run inside a transaction block" (CREATE INDEX CONCURRENTLY, VACUUM …).
_ACTIVE_SQL_TRANSACTION: Final = "25001"

_STATE: Final = """
    SELECT c.oid, c.relname, c.relfilenode, c.relkind::text,
           CASE WHEN c.relkind IN ('r', 'p', 'm') THEN pg_total_relation_size(c.oid) END,
           coalesce(s.seq_scan, 0) + coalesce(s.idx_scan, 0) + coalesce(s.n_tup_ins, 0)
             + coalesce(s.n_tup_upd, 0) + coalesce(s.n_tup_del, 0),
           i.indrelid
    FROM pg_class c
    LEFT JOIN pg_stat_xact_user_tables s ON s.relid = c.oid
    LEFT JOIN pg_index i ON i.indexrelid = c.oid
    WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'p', 'm', 'i', 'I')
"""


@dataclass(frozen=True)
class TableEffect:
    """What one statement did to one existing table of the scratch copy."""

    lock: str | None  # the strongest lock held on it after the statement (PostgreSQL's name)
    rewritten: bool  # the table (or one of its indexes) got a new file: it was copied
    scanned: bool  # its rows were read or written: the time grows with its size
    bytes: int  # its size before the statement (pg_total_relation_size)


@dataclass(frozen=True)
class Measure:
    """One statement on the scratch copy: how long it took and what it did to each table."""

    seconds: float = 0.0
    tables: dict[str, TableEffect] = field(default_factory=dict)
    error: str | None = None  # why it did not run (or failed) on the scratch copy

    def main_table(self) -> str | None:
        """The table it locked most strongly (a rewritten one first)."""
        ranked = sorted(
            self.tables.items(),
            key=lambda item: (not item[1].rewritten, -_STRENGTH.get(item[1].lock or "", -1), item[0]),
        )
        return ranked[0][0] if ranked else None


@dataclass(frozen=True)
class _State:
    names: dict[int, str]
    files: dict[int, int]
    sizes: dict[int, int]
    touched: dict[int, int]
    owner: dict[int, int]  # index → its table
    locks: dict[int, str]  # relation → the strongest mode held


def replayable(node: Any) -> str | None:
    """Why a statement is not replayed on a scratch copy beside the real database, or None."""
    if not isinstance(node, _REPLAYED):
        kind = type(node).__name__.removesuffix("Stmt")
        return f"{kind} statements are not replayed: they could act beyond the scratch copy"
    if isinstance(node, ast.TransactionStmt) and node.gid:
        return "two-phase commit is not replayed"
    calls: list[str] = []

    class Calls(Visitor):
        def visit_FuncCall(self, _ancestors: Any, call: Any) -> None:
            calls.append(str(call.funcname[-1].sval).lower())

    Calls()(node)
    for name in calls:
        if any(fnmatch.fnmatchcase(name, pattern) for pattern in _BEYOND):
            return f"it calls {name}(), which acts beyond the scratch copy"
    return None


async def replay(
    url: URL,
    scripts: Iterable[tuple[str | None, str]],
    *,
    rows: int,
    base: str | None,
    location: str | Path | None,
) -> dict[tuple[str | None, str], Measure]:
    """Each statement of ``scripts`` (key, SQL) run in order on a scratch database beside ``url``.

    ``base``: the revision the scratch database is upgraded to first (None: it starts
    empty, the scripts build it). ``rows`` sample tasks are seeded as soon as the tasks
    table exists between two scripts. Returns the first measure of each (key, statement).
    """
    measures: dict[tuple[str | None, str], Measure] = {}
    async with scratch_database(url, purpose="the lint's estimate") as scratch:
        engine = create_engine(scratch, poolclass=NullPool)
        try:
            if base is not None:
                async with connect(engine) as conn:
                    await _upgrade(conn.run_sync, base)
            seeded = not rows
            async with connect(engine) as conn, raw_driver(conn) as driver:
                for key, sql in scripts:
                    if not seeded and await driver.fetchval("SELECT to_regclass($1) IS NOT NULL", TABLE_NAME):
                        await sample.seed(engine, tasks=rows)
                        seeded = True
                    statements, _ = _sqlparse.script_statements(sql)
                    for statement in statements:
                        measure = await _replay(driver, statement)
                        measures.setdefault((key, statement.sql), measure)
                    if driver.is_in_transaction():  # psql ends the script's open transaction
                        await driver.execute("ROLLBACK")
        finally:
            await engine.dispose()
    return measures


async def _upgrade(run_sync: Any, revision: str) -> None:
    def upgrade(sync: Connection) -> None:
        command.upgrade(alembic_config(sync), revision)
        if sync.in_transaction():
            sync.commit()

    try:
        await run_sync(upgrade)
    except DBAPIError as exc:
        raise MigrationError(f"The scratch copy could not be migrated to {revision}: {driver_message(exc)}") from None


async def _replay(driver: Any, statement: _sqlparse.Statement) -> Measure:
    if statement.node is None:
        return Measure(error=f"PostgreSQL cannot parse it: {statement.error}")
    refused = replayable(statement.node)
    if refused is not None:
        return Measure(error=refused)
    if isinstance(statement.node, ast.TransactionStmt | ast.VariableSetStmt):
        return await _plain(driver, statement.sql)
    own = not driver.is_in_transaction()
    if own:
        await driver.execute("BEGIN")  # so that pg_stat_xact_* and pg_locks still show the statement's work
    before = await _state(driver)
    started = time.perf_counter()
    try:
        await driver.execute(statement.sql)
    except Exception as exc:  # asyncpg's PostgresError: the statement failed on the scratch copy
        if own:
            await driver.execute("ROLLBACK")
        if own and getattr(exc, "sqlstate", None) == _ACTIVE_SQL_TRANSACTION:
            return await _outside_transaction(driver, statement.sql)
        return Measure(error=f"it failed on the scratch copy: {_message(exc)}")
    seconds = time.perf_counter() - started
    after = await _state(driver)
    if own:
        await driver.execute("COMMIT")
    return Measure(seconds, _effects(before, after))


async def _outside_transaction(driver: Any, sql: str) -> Measure:
    """A statement PostgreSQL refuses in a transaction block: timed alone (its locks end with it)."""
    before = await _state(driver)
    started = time.perf_counter()
    try:
        await driver.execute(sql)
    except Exception as exc:
        return Measure(error=f"it failed on the scratch copy: {_message(exc)}")
    seconds = time.perf_counter() - started
    return Measure(seconds, _effects(before, await _state(driver)))


async def _plain(driver: Any, sql: str) -> Measure:
    try:
        await driver.execute(sql)
    except Exception as exc:
        return Measure(error=f"it failed on the scratch copy: {_message(exc)}")
    return Measure()


async def _state(driver: Any) -> _State:
    relations = await driver.fetch(_STATE)
    locks: dict[int, str] = {}
    for oid, mode in await driver.fetch(OWN_LOCKS):
        if oid is not None and _STRENGTH.get(mode, -1) > _STRENGTH.get(locks.get(int(oid), ""), -1):
            locks[int(oid)] = str(mode)
    return _State(
        names={int(r[0]): str(r[1]) for r in relations if r[3] in ("r", "p", "m")},
        files={int(r[0]): int(r[2]) for r in relations},
        sizes={int(r[0]): int(r[4]) for r in relations if r[4] is not None},
        touched={int(r[0]): int(r[5]) for r in relations},
        owner={int(r[0]): int(r[6]) for r in relations if r[6] is not None},
        locks=locks,
    )


def _effects(before: _State, after: _State) -> dict[str, TableEffect]:
    """Each table that existed before the statement and that it locked, rewrote or read."""
    rewritten = {oid for oid, file in after.files.items() if before.files.get(oid, file) != file}
    rewritten |= {before.owner[oid] for oid in rewritten if oid in before.owner}
    effects = {}
    for oid, name in before.names.items():
        lock = after.locks.get(oid)
        scanned = after.touched.get(oid, 0) > before.touched.get(oid, 0) or oid in rewritten
        # An index built on the table reads every row of it (a new index has no stats row of its own).
        built = any(owner == oid and index not in before.files for index, owner in after.owner.items())
        if lock is None and not scanned and not built:
            continue
        effects[name] = TableEffect(lock, oid in rewritten, scanned or built, before.sizes.get(oid, 0))
    return effects


def _message(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
