"""Running a migration on PostgreSQL without taking production down.

Each lock is waited for at most ``lock_timeout``; a revision that times out is rolled
back and tried again with growing pauses; the last failure names the session holding
the lock. A pooled endpoint is swapped for the direct one, and a replica is refused
before anything is sent.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from alembic.config import Config
from alembic.util import CommandError
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from todo_data import _sqlparse
from todo_data._args import StepProgress
from todo_data.database import (
    Source,
    connect,
    create_engine,
    describe,
    direct_url,
    engine_of,
    require_primary,
    target_of,
)
from todo_data.errors import InvalidArgumentError, MigrationError, SettingsError, driver_message, hint
from todo_data.migrations._config import alembic_config, revision_of
from todo_data.settings import get_settings

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

#: An Alembic command (``command.upgrade`` bound to its revision) applied to a config.
Command = Callable[[Config], Any]


def lock_timeout_ms(lock_timeout: float | None) -> int:
    """``lock_timeout`` seconds as PostgreSQL's milliseconds (0: no limit); ``None`` reads the setting.

    Refuses what PostgreSQL would not mean: negative, not a number, infinite or longer
    than PostgreSQL's maximum (about 24.8 days).
    """
    if lock_timeout is None:
        lock_timeout = get_settings().database_lock_timeout  # a bad value raises, naming where it came from
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
    connect_args = {} if isinstance(url, str) or url.query else dict(target.connect_args)
    engine = create_engine(url, read_only=read_only, pooled=False, poolclass=NullPool, connect_args=connect_args)
    try:
        yield engine
    finally:
        await engine.dispose()


async def migrate(
    source: Source,
    revision: str,
    verb: Command,
    lock_timeout: float | None,
    *,
    location: str | Path | None = None,
    progress: StepProgress | None = None,
) -> None:
    """Apply ``verb`` towards ``revision``, retrying a lock timeout; ``progress`` hears of each wait."""
    milliseconds = lock_timeout_ms(lock_timeout)
    async with connect(source) as conn:
        await require_primary(conn, source, to="be migrated")
    async with _direct(source) as migrating:
        attempt = 0
        while True:
            try:
                await _migrate_once(migrating, revision, verb, milliseconds, location)
                return
            except _LockTimeout as timeout:
                if attempt >= LOCK_RETRIES:
                    raise await _lock_error(migrating, revision, timeout, milliseconds, attempt + 1) from None
                pause = LOCK_RETRY_DELAY * 2**attempt
                if progress is not None:
                    progress(await _waiting(migrating, timeout, attempt + 1, pause))
            await asyncio.sleep(pause)
            attempt += 1


async def _waiting(source: Source, timeout: _LockTimeout, retry: int, pause: float) -> str:
    """``waiting for a lock on tasks held by pid 3704 (application 'nightly-report', …); retry 1 of 3 in 0.5 s``."""
    wanted = sorted(_sqlparse.relations(timeout.statement or ""))
    holders = await _holders(source, set(wanted))
    on = f" on {', '.join(wanted)}" if wanted else ""
    if holders:
        # Their locks are named unless every one is on the relations the statement wanted.
        named = any(holder["relation"] not in wanted for holder in holders)
        held = "; ".join(_brief(session, with_locks=named) for session in _by_session(holders))
        line = f"waiting for a lock{on} held by {held}"
    else:
        line = f"waiting for a lock{on} (its holder has just let go)"
    return f"{line}; retry {retry} of {LOCK_RETRIES} in {pause:g} s"


async def _holders(source: Source, wanted: set[str]) -> list[dict[str, Any]]:
    """The granted locks other sessions hold on this schema's relations: on ``wanted`` ones when any are."""
    try:
        async with connect(source) as conn:
            holders = [dict(row) for row in (await conn.execute(_LOCK_HOLDERS)).mappings()]
    except (DBAPIError, MigrationError):  # pragma: no cover - the server went away meanwhile
        return []
    if any(holder["relation"] in wanted for holder in holders):
        holders = [holder for holder in holders if holder["relation"] in wanted]
    return holders


class _LockTimeout(Exception):
    def __init__(self, start: str, statement: str | None) -> None:
        super().__init__(start)
        self.start = start
        self.statement = statement


async def _migrate_once(
    source: Source, revision: str, verb: Command, milliseconds: int, location: str | Path | None
) -> None:
    before: list[str | None] = []

    def apply(sync: Connection, *, own: bool) -> None:
        before.append(revision_of(sync))
        if own:
            # End the read's implicit transaction: Alembic runs one per revision.
            sync.rollback()
        with _lock_timeout(sync, milliseconds, own=own):
            verb(alembic_config(sync, location=location))
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
                    await conn.run_sync(lambda sync: apply(sync, own=False))
            else:
                await conn.run_sync(lambda sync: apply(sync, own=True))
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
    holders = await _holders(source, _sqlparse.relations(timeout.statement or ""))
    try:
        async with connect(source) as conn:
            now_at = await conn.run_sync(revision_of)
    except (DBAPIError, MigrationError):  # pragma: no cover - the server went away meanwhile
        now_at = timeout.start
    waited = f"{milliseconds / 1000:g} s" if milliseconds else "without limit"
    setting = hint("lock_timeout=", "--lock-timeout")
    message = (
        f"Migration from {timeout.start} to {revision!r} failed: a lock was not available "
        f"(waited {waited} in each of {attempts} attempts; {setting} or DATABASE_LOCK_TIMEOUT sets the wait). "
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


def _brief(session: dict[str, Any], *, with_locks: bool) -> str:
    """``pid 3704 (application nightly-report, idle in transaction for 12 s)``: one holder, for a progress line."""
    parts = [f"application {session['application_name']}"] if session["application_name"] else []
    state = session["state"] or "state hidden from this role"
    if session["since"] is not None:
        state += f" for {(session['now'] - session['since']).total_seconds():.0f} s"
    parts.append(state)
    held = f"pid {session['pid']} ({', '.join(parts)})"
    return f"{held} with {', '.join(session['locks'])}" if with_locks else held


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
