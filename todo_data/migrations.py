"""Alembic migrations, run from code or a notebook over any source, checked and made safe.

The verbs are thin: each builds an Alembic config, hands a connection to
``alembic/env.py`` through ``config.attributes["connection"]`` (no second connection,
no second event loop) and runs the Alembic command inside ``run_sync``. Sync code calls
them through :func:`todo_data.run`.

- :func:`upgrade`, :func:`downgrade`, :func:`current`, :func:`head`, :func:`history`
- :func:`drift`: what ``alembic check`` sees, plus the CHECK constraints and triggers it ignores
- :func:`verify_roundtrip`: every revision up, down and up again on a scratch database, with rows
- :func:`lint`: the PostgreSQL lock and rewrite hazards of each revision, read from its SQL
- :func:`trace`: the locks and rewrites each statement really causes, on a scratch database

On PostgreSQL, ``upgrade`` and ``downgrade`` wait at most ``lock_timeout`` for each lock
(so a migration queued behind a long transaction cannot block every query queued behind
it) and retry a few times before giving up with a :class:`MigrationError` that names the
session holding the lock.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import re
import warnings
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import pandas as pd
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import CheckConstraint, Table, inspect, text
from sqlalchemy.engine import URL, Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

import todo_data
from alembic import command
from todo_data import triggers
from todo_data._args import StepProgress, integer
from todo_data.database import Source, connect, create_engine, describe, direct_url, engine_of, operation, target_of
from todo_data.errors import InvalidArgumentError, MigrationError, SettingsError, driver_message
from todo_data.models import metadata
from todo_data.replication import require_primary
from todo_data.settings import get_settings

#: The columns of :func:`drift`'s frame.
DRIFT_COLUMNS: Final = ("operation", "table", "name", "detail")
#: Alembic's bookkeeping table: part of every migrated schema, never of the model.
VERSION_TABLE: Final = "alembic_version"

#: Seconds a migration waits for a lock when neither ``lock_timeout=`` nor
#: ``DATABASE_LOCK_TIMEOUT`` says otherwise.
DEFAULT_LOCK_TIMEOUT: Final = 5.0
#: How many times a migration that timed out waiting for a lock is tried again.
LOCK_RETRIES = 3
#: Seconds before the first retry; each further retry waits twice as long.
LOCK_RETRY_DELAY = 0.5
# PostgreSQL's lock_timeout is an int of milliseconds.
_MAX_LOCK_TIMEOUT_MS: Final = 2_147_483_647
# SQLSTATEs: lock_not_available (lock_timeout, NOWAIT), insufficient_privilege,
# read_only_sql_transaction.
_LOCK_NOT_AVAILABLE: Final = "55P03"
_NOT_ALLOWED: Final = ("42501", "25006")

Progress = StepProgress


def script_location() -> Path:
    """The migration scripts: shipped inside the wheel, or ``alembic/`` in a checkout."""
    package = Path(todo_data.__file__).resolve().parent
    for candidate in (package / "_alembic", package.parent / "alembic"):
        if (candidate / "env.py").is_file():
            return candidate
    raise MigrationError(f"Migration scripts not found next to {package}")  # pragma: no cover


def alembic_config(connection: Connection | None = None, *, location: str | Path | None = None) -> Config:
    """An Alembic config for the project's migrations (or those in ``location``), optionally bound to a connection."""
    config = Config()
    config.set_main_option("script_location", str(location or script_location()))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def offline_config(location: str | Path | None, output: Any) -> Config:
    """A config whose ``upgrade --sql`` writes PostgreSQL's SQL to ``output``, connecting nowhere.

    The URL is a placeholder that only names the dialect: ``-x url=`` for this project's
    ``env.py``, ``sqlalchemy.url`` for Alembic's stock one.
    """
    placeholder = "postgresql://offline@localhost/offline"
    config = Config(output_buffer=output)
    config.set_main_option("script_location", str(location or script_location()))
    config.set_main_option("sqlalchemy.url", placeholder)
    config.cmd_opts = argparse.Namespace(x=[f"url={placeholder}"])
    return config


def environment_options(dialect_name: str) -> dict[str, Any]:
    """The options ``alembic/env.py`` configures Alembic with; :func:`drift` compares with them too."""
    return {
        "target_metadata": metadata,
        "compare_type": True,
        # SQLite cannot ALTER constraints: batch mode rebuilds the table instead.
        "render_as_batch": dialect_name == "sqlite",
        # One transaction per revision: locks are held for one revision's statements
        # only, a lock timeout retries from the revision that failed, and a revision
        # may leave its transaction (autocommit_block, e.g. CREATE INDEX CONCURRENTLY).
        "transaction_per_migration": True,
    }


def script_directory(location: str | Path | None = None) -> ScriptDirectory:
    """The Alembic scripts in ``location`` (default: the project's); a clear error when it is not one."""
    where = Path(location) if location is not None else script_location()
    if not (where / "env.py").is_file():
        raise MigrationError(f"{where} is not an Alembic script directory: it has no env.py")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Alembic warns, then raises KeyError, for a missing parent
            script = ScriptDirectory.from_config(alembic_config(location=where))
            script.revision_map.heads  # noqa: B018  (loads every script: a broken chain fails here)
    except CommandError as exc:
        raise MigrationError(f"{where} is not a usable Alembic script directory: {exc}") from None
    except KeyError as exc:
        raise MigrationError(
            f"{where} is not a usable Alembic script directory: a revision names {exc} as its parent, "
            "and no script has that revision"
        ) from None
    return script


def head() -> str:
    """The newest revision of the migration scripts."""
    revision = script_directory().get_current_head()
    assert revision is not None
    return revision


@operation("migrations.upgrade")
async def upgrade(source: Source, revision: str = "head", *, lock_timeout: float | None = None) -> str | None:
    """Upgrade the database to ``revision`` (default: the newest); returns the new revision.

    Each revision runs in its own transaction. On PostgreSQL each lock is waited for at
    most ``lock_timeout`` seconds (default: ``DATABASE_LOCK_TIMEOUT``, else 5; ``0``
    waits as long as it takes, as in PostgreSQL); a revision that times out is rolled
    back and tried again :data:`LOCK_RETRIES` times with growing pauses, then
    :class:`MigrationError` says which session holds the lock. On a pooled endpoint
    (PgBouncer transaction mode, Neon ``-pooler`` hosts) the migration runs on the
    direct endpoint instead (see :func:`todo_data.database.direct_url`).

    >>> await upgrade(engine)      # doctest: +SKIP
    '0002'
    """
    await _run_command(source, revision, lambda config: command.upgrade(config, revision), lock_timeout)
    return await current(source)


@operation("migrations.downgrade")
async def downgrade(source: Source, revision: str, *, lock_timeout: float | None = None) -> str | None:
    """Downgrade the database to ``revision`` (``"base"`` removes every table).

    ``lock_timeout`` and the retries work as in :func:`upgrade`.
    """
    await _run_command(source, revision, lambda config: command.downgrade(config, revision), lock_timeout)
    return await current(source)


@operation("migrations.current")
async def current(source: Source) -> str | None:
    """The database's current revision, or ``None`` when it was never migrated."""
    async with connect(source) as conn:
        return await conn.run_sync(lambda sync: MigrationContext.configure(sync).get_current_revision())


def history() -> pd.DataFrame:
    """The migration scripts from the first to the newest: revision, down_revision, message, is_head.

    Reads the scripts only (no database), so it is a plain function.
    """
    script = script_directory()
    heads = set(script.get_heads())
    rows = [
        {
            "revision": rev.revision,
            "down_revision": _revision_text(rev.down_revision),
            "message": (rev.doc or "").strip(),
            "is_head": rev.revision in heads,
        }
        for rev in reversed(list(script.walk_revisions()))
    ]
    return pd.DataFrame(rows, columns=["revision", "down_revision", "message", "is_head"])


@operation("migrations.drift")
async def drift(source: Source) -> pd.DataFrame:
    """Differences between the model and the live schema; empty when they agree.

    One row per difference: operation (what a migration would have to do, in Alembic's
    words, e.g. ``add_index``: in the model, missing from the database), table, name and
    a readable detail. It is what ``alembic check`` compares (tables, columns, types,
    nullability, indexes, unique and foreign keys) plus what Alembic's autogenerate
    ignores: the named CHECK constraints (``add_check``, ``remove_check``,
    ``modify_check``) and the triggers declared in :mod:`todo_data.triggers`
    (``add_trigger``, ``remove_trigger``, ``modify_trigger``: another definition, another
    function body, or disabled).

    >>> await drift(engine)     # doctest: +SKIP
    Empty DataFrame
    """
    async with connect(source) as conn:
        rows = await conn.run_sync(_drift_rows)
    return pd.DataFrame(rows, columns=list(DRIFT_COLUMNS))


async def verify_roundtrip(
    url: str | URL,
    *,
    rows: int = 1_000,
    script_location: str | Path | None = None,
    progress: Progress | None = None,
) -> pd.DataFrame:
    """Every revision upgraded, downgraded and upgraded again, with rows, on a scratch database.

    The scratch database is created next to the one ``url`` names (PostgreSQL: ``CREATE
    DATABASE`` as the URL's own role, which needs CREATEDB; SQLite: a temporary file) and
    dropped afterwards, even on failure. The URL's own database is never migrated or
    written. For each revision, oldest first: upgrade, downgrade, upgrade again. As soon
    as the tasks table exists, ``rows`` sample rows are seeded (:func:`todo_data.sample.seed`),
    so every later step carries data. A downgrade must leave the schema exactly as it
    was before its upgrade (columns, keys, indexes, CHECKs, triggers, functions) and the
    data unchanged (every row, compared by checksum); the second upgrade must rebuild
    the first one's schema and data; at head the schema must match the model (no
    :func:`drift`). ``script_location`` runs another Alembic script directory instead
    (the model comparison is then skipped).

    One row per step: step, revision (after the step), ok and detail. A step that fails
    is reported in its row and the remaining steps are skipped. ``progress``, when
    given, is called with each step's name before it runs.

    >>> await verify_roundtrip(os.environ["DATABASE_URL"], rows=10_000)   # doctest: +SKIP
    """
    from todo_data import _roundtrip

    _require_count("rows", rows)
    script = script_directory(script_location)
    return await _roundtrip.verify(
        _direct_url(url), rows=rows, script=script, location=script_location, progress=progress
    )


def lint(*, script_location: str | Path | None = None) -> pd.DataFrame:
    """The PostgreSQL lock and rewrite hazards of each revision, from its offline SQL.

    Each revision's ``alembic upgrade --sql`` (PostgreSQL dialect, one revision at a
    time) is parsed with PostgreSQL's own parser (libpg_query, through pglast) and
    checked statement by statement. Errors, on a table that already exists: ``CREATE
    INDEX`` without ``CONCURRENTLY``, ``ADD CONSTRAINT`` (CHECK, FOREIGN KEY) without
    ``NOT VALID``, UNIQUE or PRIMARY KEY added without ``USING INDEX``, ``ALTER COLUMN …
    TYPE``, ``ADD COLUMN`` with a volatile default (or serial, identity, stored
    generated) or ``NOT NULL`` without a default; also SQL PostgreSQL cannot parse and
    ``CONCURRENTLY`` inside a transaction block. Warnings: ``SET NOT NULL``, ``DROP
    COLUMN``/``TABLE``, renames. Statements on a table created by the same revision are
    exempt. Reads scripts only (no database), so it is a plain function.

    Columns: revision, statement, rule, severity (``error``/``warning``), message (what
    it locks or breaks, and the safe way). Empty when every revision is safe.

    >>> migrations.lint()           # doctest: +SKIP
    Empty DataFrame
    """
    from todo_data import _lint

    findings: pd.DataFrame = _lint.lint(script_directory(script_location), location=script_location)
    return findings


async def trace(
    url: str | URL,
    revision: str = "head",
    *,
    rows: int = 10_000,
    script_location: str | Path | None = None,
) -> pd.DataFrame:
    """The locks and table rewrites each migration statement causes, measured on a scratch database.

    A new database is created beside ``url``'s (as :func:`verify_roundtrip` does, never
    ``url``'s own), every revision from the first up to ``revision`` runs there one
    statement at a time, with ``rows`` sample rows seeded as soon as the tasks table
    exists. One row per statement and relation it locked or rewrote: revision,
    statement, relation, locks (the modes the statement newly took, PostgreSQL's names
    from ``pg_locks``, strongest first: ``AccessExclusiveLock`` blocks even reads until
    the revision commits), rewritten (its ``relfilenode`` changed: the whole table or
    index was copied) and duration. A statement that took no lock on an existing
    relation has one row with no relation. Relations the statement itself created are
    left out (nobody else can see them yet); statements run outside a transaction
    (Alembic's ``autocommit_block``, e.g. ``CREATE INDEX CONCURRENTLY``) release their
    locks when they end, so none outlast them.

    On SQLite, which has no per-table lock modes, the frame has one row saying that the
    trace applies to PostgreSQL.

    >>> await trace(os.environ["DATABASE_URL"])       # doctest: +SKIP
    """
    from todo_data import _trace

    _require_count("rows", rows)
    script = script_directory(script_location)
    _resolve(script, revision)
    frame: pd.DataFrame = await _trace.trace(
        _direct_url(url), revision, rows=rows, script=script, location=script_location
    )
    return frame


def _direct_url(url: str | URL) -> URL:
    try:
        return direct_url(url)
    except SettingsError as exc:
        raise MigrationError(str(exc)) from None


def _resolve(script: ScriptDirectory, revision: str) -> None:
    """Refuse an unknown revision before anything is created."""
    try:
        found = script.get_revisions(revision)
    except CommandError as exc:
        raise MigrationError(f"Unknown revision {revision!r} in {script.dir}: {exc}") from None
    if not found and revision not in {"base", "heads", "head"}:
        raise MigrationError(f"Unknown revision {revision!r} in {script.dir}")


def _require_count(name: str, value: object) -> None:
    integer(name, value, least=0)


# --------------------------------------------------------------------- running them


def lock_timeout_ms(lock_timeout: float | None) -> int:
    """``lock_timeout`` seconds as PostgreSQL's milliseconds (0: no limit); ``None`` reads the setting.

    Refuses what PostgreSQL would not mean: negative, not a number, infinite or longer
    than PostgreSQL's maximum (about 24.8 days).
    """
    if lock_timeout is None:
        try:
            lock_timeout = get_settings().database_lock_timeout
        except SettingsError as exc:
            if "DATABASE_LOCK_TIMEOUT" in str(exc):
                raise
            lock_timeout = DEFAULT_LOCK_TIMEOUT  # another setting is broken, not this one
    if isinstance(lock_timeout, bool) or not isinstance(lock_timeout, int | float):
        raise InvalidArgumentError(f"lock_timeout must be a number of seconds, not {lock_timeout!r}")
    if math.isnan(lock_timeout) or lock_timeout < 0 or lock_timeout * 1000 > _MAX_LOCK_TIMEOUT_MS:
        raise InvalidArgumentError(
            f"lock_timeout must be between 0 (no limit) and {_MAX_LOCK_TIMEOUT_MS // 1000} seconds, "
            f"not {lock_timeout!r}"
        )
    return 0 if lock_timeout == 0 else max(1, round(lock_timeout * 1000))


@asynccontextmanager
async def _direct(source: Source) -> AsyncIterator[Source]:
    """The source itself, or an engine on its direct endpoint when it is a pooled one."""
    target = target_of(source)
    if not target.pooled:
        yield source
        return
    try:
        url = direct_url(engine_of(source).url, pooled=True)
    except SettingsError as exc:
        raise MigrationError(str(exc)) from None
    read_only = bool(engine_of(source).get_execution_options().get("postgresql_readonly"))
    # A URL derived from the pooled one has lost its query (sslmode …): carry the pooled
    # engine's connect settings over; DATABASE_DIRECT_URL's own parameters win otherwise.
    connect_args = {} if url.query else dict(target.connect_args)
    engine = create_engine(url, read_only=read_only, pooled=False, poolclass=NullPool, connect_args=connect_args)
    try:
        yield engine
    finally:
        await engine.dispose()


async def _run_command(
    source: Source,
    revision: str,
    run: Callable[[Config], Any],
    lock_timeout: float | None,
    *,
    location: str | Path | None = None,
) -> None:
    milliseconds = lock_timeout_ms(lock_timeout)
    async with connect(source) as conn:
        await require_primary(conn, source, to="be migrated")
    async with _direct(source) as migrating:
        attempt = 0
        while True:
            try:
                await _run_on(migrating, revision, run, milliseconds, location)
                return
            except _LockTimeout as timeout:
                if attempt >= LOCK_RETRIES:
                    raise await _lock_error(migrating, revision, timeout, milliseconds, attempt + 1) from None
            await asyncio.sleep(LOCK_RETRY_DELAY * 2**attempt)
            attempt += 1


class _LockTimeout(Exception):
    def __init__(self, start: str, statement: str | None) -> None:
        super().__init__(start)
        self.start = start
        self.statement = statement


async def _run_on(
    source: Source, revision: str, run: Callable[[Config], Any], milliseconds: int, location: str | Path | None
) -> None:
    before: list[str | None] = []

    def migrate(sync: Connection, *, own: bool) -> None:
        before.append(MigrationContext.configure(sync).get_current_revision())
        if own:
            # End the read's implicit transaction: Alembic runs one per revision.
            sync.rollback()
        with _lock_timeout(sync, milliseconds, own=own):
            run(alembic_config(sync, location=location))
        if own and sync.in_transaction():
            sync.commit()

    def failed(cause: str) -> MigrationError:
        return MigrationError(f"Migration from {_start(before)} to {revision!r} failed: {cause}")

    try:
        async with connect(source) as conn:
            if conn.in_transaction():
                # The caller's transaction (a session, a connection in use): join it in a
                # savepoint, so a failure undoes the migration's writes only.
                async with conn.begin_nested():
                    await conn.run_sync(lambda sync: migrate(sync, own=False))
            else:
                await conn.run_sync(lambda sync: migrate(sync, own=True))
    except CommandError as exc:
        raise failed(str(exc)) from exc
    except DBAPIError as exc:
        code = getattr(exc.orig, "sqlstate", None)
        if code == _LOCK_NOT_AVAILABLE:
            raise _LockTimeout(_start(before), exc.statement) from exc
        reason = f"the database refused it: {driver_message(exc)}"
        if code in _NOT_ALLOWED:
            reason += (
                f". Migrations change the schema: they need a role that owns the tables "
                f"(not a read-only one), on {describe(source)}"
            )
        raise failed(reason) from exc


def _start(before: list[str | None]) -> str:
    return before[0] if before and before[0] else "base"


@contextmanager
def _lock_timeout(sync: Connection, milliseconds: int, *, own: bool) -> Iterator[None]:
    """``lock_timeout`` for everything the migration runs, then the connection's own value again.

    On a connection of its own the migration sets it for the session, so it holds in each
    revision's transaction and in autocommit blocks alike; in a caller's transaction it is
    set for that transaction only (a failure rolls the savepoint, and the setting, back).
    """
    if sync.dialect.name != "postgresql":
        yield
        return
    saved = str(sync.exec_driver_sql("SHOW lock_timeout").scalar())
    set_config = text("SELECT set_config('lock_timeout', :value, :local)")
    sync.execute(set_config, {"value": f"{milliseconds}ms", "local": not own})
    if own:
        sync.commit()
    try:
        yield
    except BaseException:
        if own:
            _restore(sync, saved)
        raise
    if own:
        _restore(sync, saved)
    else:
        sync.execute(set_config, {"value": saved, "local": True})


def _restore(sync: Connection, saved: str) -> None:
    try:
        if sync.in_transaction():
            sync.rollback()
        sync.execute(text("SELECT set_config('lock_timeout', :value, false)"), {"value": saved})
        sync.commit()
    except DBAPIError:
        # A connection that cannot even be reset goes, rather than back into the pool
        # with the migration's lock_timeout.
        sync.invalidate()


async def _lock_error(
    source: Source, revision: str, timeout: _LockTimeout, milliseconds: int, attempts: int
) -> MigrationError:
    from todo_data import _sqlparse

    wanted = _sqlparse.relations(timeout.statement or "")
    try:
        async with connect(source) as conn:
            holders = [dict(row) for row in (await conn.execute(_LOCK_HOLDERS)).mappings()]
            now_at = await conn.run_sync(lambda sync: MigrationContext.configure(sync).get_current_revision())
    except (DBAPIError, MigrationError):  # pragma: no cover - the server went away meanwhile
        holders, now_at = [], timeout.start
    if any(holder["relation"] in wanted for holder in holders):
        holders = [holder for holder in holders if holder["relation"] in wanted]
    waited = f"{milliseconds / 1000:g} s" if milliseconds else "without limit"
    message = (
        f"Migration from {timeout.start} to {revision!r} failed: a lock was not available "
        f"(waited {waited} in each of {attempts} attempts; lock_timeout= or DATABASE_LOCK_TIMEOUT sets the wait). "
    )
    if holders:
        message += "Held by " + "; by ".join(_holder(holder) for holder in _by_session(holders)) + ". "
    else:
        message += "The catalog no longer shows which session held it. "
    message += f"The database is still at {now_at or 'base'}: end or wait for that transaction, then run it again."
    return MigrationError(message)


def _by_session(holders: list[dict[str, Any]]) -> list[dict[str, Any]]:
    sessions: dict[int, dict[str, Any]] = {}
    for holder in holders:
        session = sessions.setdefault(holder["pid"], {**holder, "locks": []})
        session["locks"].append(f"{holder['mode']} on {holder['relation']}")
    return list(sessions.values())


def _holder(session: dict[str, Any]) -> str:
    # pid, application and state only: never the query text, which may carry data.
    parts = [f"application {session['application_name']!r}"] if session["application_name"] else []
    state = session["state"] or "state hidden from this role"
    since: datetime | None = session["since"]
    if since is not None:
        age = (session["now"] - since).total_seconds()
        state += f" since {since.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC ({age:.0f} s)"
    parts.append(state)
    return f"session pid {session['pid']} ({', '.join(parts)}) with {', '.join(session['locks'])}"


_LOCK_HOLDERS: Final = text(
    """
    SELECT l.pid, c.relname AS relation, l.mode, a.application_name, a.state,
           coalesce(a.xact_start, a.state_change, a.backend_start) AS since, now() AS now
    FROM pg_locks l
    JOIN pg_class c ON c.oid = l.relation
    LEFT JOIN pg_stat_activity a ON a.pid = l.pid
    WHERE l.granted AND l.pid <> pg_backend_pid()
      AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
      AND c.relnamespace = current_schema()::regnamespace
    ORDER BY since NULLS LAST, l.pid, c.relname
    """
)


def _revision_text(revision: str | Sequence[str] | None) -> str | None:
    if revision is None or isinstance(revision, str):
        return revision
    return ", ".join(revision)


# ---------------------------------------------------------------------------- drift


def _drift_rows(connection: Connection) -> list[dict[str, Any]]:
    context = MigrationContext.configure(connection, opts=environment_options(connection.dialect.name))
    rows = [_diff_row(diff) for diff in _flatten(compare_metadata(context, metadata))]
    return rows + _check_drift(connection) + _trigger_drift(connection)


def _flatten(diffs: list[Any]) -> list[tuple[Any, ...]]:
    # Column modifications come grouped in a list per column; everything else is a tuple.
    flat: list[tuple[Any, ...]] = []
    for diff in diffs:
        flat.extend(diff if isinstance(diff, list) else [diff])
    return flat


def _diff_row(diff: tuple[Any, ...]) -> dict[str, Any]:
    operation = diff[0]
    if operation in {"add_table", "remove_table"}:
        table = diff[1]
        return _row(operation, table.name, table.name, _where(operation, "table"))
    if operation in {"add_column", "remove_column"}:
        _, _, table_name, column = diff
        return _row(operation, table_name, column.name, _where(operation, f"column {column.name} ({column.type})"))
    if operation.startswith("modify_"):
        _, _, table_name, column_name, _, database, model = diff
        what = operation.removeprefix("modify_")
        return _row(operation, table_name, column_name, f"{what}: database has {database}, the model {model}")
    # add_/remove_ index, constraint (unique) and fk: a schema item bound to a table.
    item = diff[1]
    columns = ", ".join(column.name for column in getattr(item, "columns", []))
    kind = operation.split("_", 1)[1].replace("fk", "foreign key").replace("constraint", "unique constraint")
    return _row(operation, item.table.name, str(item.name), _where(operation, f"{kind} {item.name} ({columns})"))


def _where(operation: str, what: str) -> str:
    if operation.startswith("add_"):
        return f"{what} is in the model but missing from the database"
    return f"{what} is in the database but not in the model"


def _row(operation: str, table: str, name: str, detail: str) -> dict[str, Any]:
    return {"operation": operation, "table": table, "name": name, "detail": detail}


def _check_drift(connection: Connection) -> list[dict[str, Any]]:
    inspector = inspect(connection)
    live_tables = set(inspector.get_table_names())
    rows: list[dict[str, Any]] = []
    for table in metadata.sorted_tables:
        if table.name not in live_tables:
            continue  # compare_metadata already reports the whole table as missing
        model = _model_checks(table)
        live = {
            str(check["name"] or "(unnamed)"): str(check["sqltext"])
            for check in inspector.get_check_constraints(table.name)
        }
        for name in sorted(model.keys() - live.keys()):
            rows.append(_row("add_check", table.name, name, _where("add_", f"CHECK {name} ({model[name]})")))
        for name in sorted(live.keys() - model.keys()):
            rows.append(_row("remove_check", table.name, name, _where("remove_", f"CHECK {name} ({live[name]})")))
        for name in sorted(model.keys() & live.keys()):
            if _normalized_sql(model[name]) != _normalized_sql(live[name]):
                detail = f"CHECK {name}: database has ({live[name]}), the model ({model[name]})"
                rows.append(_row("modify_check", table.name, name, detail))
    return rows


def _model_checks(table: Table) -> dict[str, str]:
    return {
        str(constraint.name): str(constraint.sqltext)
        for constraint in table.constraints
        if isinstance(constraint, CheckConstraint)
    }


def _normalized_sql(sql: str) -> str:
    """A CHECK expression with PostgreSQL's rewriting undone, for comparison.

    PostgreSQL stores ``length(trim(title)) > 0`` as ``(length(TRIM(BOTH FROM title)) > 0)``
    and adds casts such as ``::text``; SQLite keeps the text as written.
    """
    sql = sql.lower()
    sql = re.sub(r"\bboth\s+from\s+", "", sql)
    sql = re.sub(r"::\w+(\s+varying)?(\[\])?", "", sql)
    return re.sub(r"[\s()]", "", sql)


def _trigger_drift(connection: Connection) -> list[dict[str, Any]]:
    backend = connection.dialect.name
    model_tables = {table.name for table in metadata.sorted_tables}
    live_tables = set(inspect(connection).get_table_names()) & model_tables
    live = {trigger.name: trigger for trigger in triggers.live_triggers(connection) if trigger.table in live_tables}
    expected = {trigger.name: trigger for trigger in triggers.TRIGGERS if trigger.table in live_tables}
    rows: list[dict[str, Any]] = []
    for name in sorted(expected.keys() - live.keys()):
        what = f"trigger {name} ({expected[name].definition(backend)})"
        rows.append(_row("add_trigger", expected[name].table, name, _where("add_", what)))
    for name in sorted(live.keys() - expected.keys()):
        what = f"trigger {name} ({live[name].definition})"
        rows.append(_row("remove_trigger", live[name].table, name, _where("remove_", what)))
    for name in sorted(expected.keys() & live.keys()):
        found = triggers.differences(expected[name], live[name], backend)
        if found:
            rows.append(_row("modify_trigger", live[name].table, name, f"trigger {name}: {'; '.join(found)}"))
    return rows
