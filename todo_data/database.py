"""The async engine, sessions, and the *source* every database function accepts.

A source is an :class:`~sqlalchemy.ext.asyncio.AsyncEngine`, an
:class:`~sqlalchemy.ext.asyncio.AsyncConnection` or an
:class:`~sqlalchemy.ext.asyncio.AsyncSession`. Functions borrow a connection from it with
:func:`connect` and never commit or close what they were given.

Engines made by :func:`create_engine` say what they open: ``repr(engine)`` and a
notebook cell ending in ``engine`` show the backend, host, database, user, read-only and
pooled (never the password), and :func:`about` gives the same as a :class:`DatabaseInfo`.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import sqlite3
import ssl
import uuid
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import aclosing, asynccontextmanager, suppress
from contextvars import ContextVar
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Final, ParamSpec, TypeAlias, TypeVar, overload

from sqlalchemy import event, text
from sqlalchemy.engine import URL, ExceptionContext, make_url
from sqlalchemy.engine import Engine as SyncEngine
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import StaticPool
from sqlalchemy.util import await_

from todo_data import _sqlparse
from todo_data._interrupt import stoppable
from todo_data._sqliteauth import read_only_authorizer
from todo_data.errors import (
    DatabaseConnectionError,
    DatabaseOperationError,
    InvalidArgumentError,
    QueryError,
    ReadReplicaError,
    SchemaNotReadyError,
    SettingsError,
    TodoDataError,
    driver_message,
)
from todo_data.settings import Settings, get_settings, statement_timeout_seconds
from todo_data.urls import DEFAULT_CONNECT_TIMEOUT, DatabaseTarget, is_neon_pooler_host, parse_database_url, scrub

Source: TypeAlias = AsyncEngine | AsyncConnection | AsyncSession
"""Anything a ``todo_data`` database function accepts."""


@dataclass(frozen=True)
class DatabaseInfo:
    """What an engine opens, said for people; never contains the password.

    ``str()`` is a few lines (what a notebook shows for an engine), :attr:`summary` one.
    """

    target: DatabaseTarget
    """The parsed URL: backend, host, database, user, TLS, pooled."""
    read_only: bool = False
    statement_timeout: float | None = None
    """Seconds; None when statements are not limited."""
    location: str | None = None
    """For SQLite, the database file's absolute path (":memory:" in memory)."""
    title: str | None = None
    """Said first, e.g. that this is the embedded demo database."""
    note: str | None = None
    """Said last, e.g. how to open another database, or where the URL came from."""

    @property
    def database(self) -> str:
        """``PostgreSQL database "neondb" on host:5432 as user "u"`` or ``SQLite database /path``."""
        if self.target.backend == "sqlite":
            return f"SQLite database {self.location}"
        return f"PostgreSQL {self.target.describe()}"

    @property
    def traits(self) -> list[str]:
        """read-only or read-write, pooled or direct, TLS, statement timeout."""
        traits = ["read-only" if self.read_only else "read-write"]
        if self.target.backend == "postgresql":
            traits.append("pooled endpoint (PgBouncer transaction mode)" if self.target.pooled else "direct endpoint")
            if self.target.tls:
                traits.append(self.target.tls)
        if self.statement_timeout is not None:
            traits.append(f"statement timeout {self.statement_timeout:g} s")
        return traits

    @property
    def summary(self) -> str:
        """One line: the title, the database, its traits."""
        line = f"{self.database} ({', '.join(self.traits)})"
        return f"{self.title} {line}" if self.title else line

    @property
    def origins(self) -> str | None:
        """Where the parts the URL did not give came from: ``host from PGHOST · password from ~/.pgpass``."""
        return " · ".join(self.target.origins) or None

    def __str__(self) -> str:
        lines = [self.title, self.database, " · ".join(self.traits), self.origins, self.note]
        return "\n".join(line for line in lines if line)


class _DescribedEngine(AsyncEngine):
    """An :class:`AsyncEngine` whose ``repr`` (and notebook display) says what it opens."""

    # A proxy with no state of its own, as SQLAlchemy requires of AsyncEngine: what it
    # shows is looked up by its sync engine.
    __slots__ = ()

    def __repr__(self) -> str:
        return f"<AsyncEngine: {about(self).summary}>"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        # IPython's (and Jupyter's) text display: the whole description, several lines.
        printer.text(str(about(self)))


# What each engine opens (parsed URL, read-only, timeout), by its sync engine.
_INFO: weakref.WeakKeyDictionary[SyncEngine, DatabaseInfo] = weakref.WeakKeyDictionary()


def create_engine(
    url: str | URL | None = None,
    *,
    read_only: bool = False,
    pooled: bool | None = None,
    statement_timeout: float | None = None,
    **kwargs: Any,
) -> AsyncEngine:
    """An async engine for a SQLite or PostgreSQL (Neon) URL; ``None`` means the settings' URL.

    - ``postgresql://``/``postgres://`` URLs use asyncpg; libpq parameters such as
      ``sslmode`` and ``channel_binding`` are translated (see :mod:`todo_data.urls`).
    - ``pooled`` (default: detect Neon ``-pooler`` hosts, or the ``DATABASE_POOLED``
      setting for the default URL) makes asyncpg safe behind PgBouncer's transaction mode.
    - ``read_only=True`` makes every transaction read-only (``BEGIN READ ONLY`` on
      PostgreSQL, ``PRAGMA query_only`` on SQLite).
    - ``statement_timeout`` (seconds; PostgreSQL) makes the server cancel any statement
      that runs longer, so a runaway analysis query cannot hold a Neon compute. ``None``
      (the ``DATABASE_STATEMENT_TIMEOUT`` setting for the default URL) or ``0``: no limit.
      It bounds the client's wait too: a server that stops answering (a suspended
      compute, a silent network) is given up :data:`DEADLINE_GRACE` seconds after the
      timeout, with the operation's error (:class:`~todo_data.errors.QueryError` for
      ``queries.sql``); the statement is cancelled on the server when it answers again,
      and the connection is closed rather than reused.

    Connections are pre-pinged (a suspended Neon compute drops them) and connects time out
    after ``connect_timeout`` seconds (10 by default). Extra keyword arguments go to
    :func:`sqlalchemy.ext.asyncio.create_async_engine`.

    >>> engine = create_engine("sqlite:///demo.db", read_only=True)
    >>> engine.url.drivername
    'sqlite+aiosqlite'
    >>> about(engine).traits
    ['read-only']
    """
    try:
        timeout = statement_timeout_seconds(statement_timeout)
    except ValueError as exc:
        raise InvalidArgumentError(f"statement_timeout={exc}") from None
    settings = _settings_for(url)
    if settings is not None:
        url = settings.database_url
        if pooled is None:
            pooled = settings.database_pooled
        if statement_timeout is None:  # not given; 0 given means "no limit", whatever the setting
            timeout = settings.database_statement_timeout
    elif (reading := _read_settings_for(url)) is not None:
        # The configured read replica: DATABASE_READ_POOLED, and the same statement timeout.
        if pooled is None:
            pooled = reading.database_read_pooled
        if statement_timeout is None:
            timeout = reading.database_statement_timeout
    assert url is not None
    target = parse_database_url(url, pooled=pooled)
    connect_args = {**target.connect_args, **kwargs.pop("connect_args", {})}
    options: dict[str, Any] = {"pool_pre_ping": True}
    if target.backend == "sqlite":
        if target.url.database in (None, "", ":memory:"):
            # One shared connection, or every connection would see its own empty database.
            options["poolclass"] = StaticPool
    elif target.pooled:
        # PgBouncer in transaction mode hands each transaction to any server connection,
        # so asyncpg's named prepared statements collide ("__asyncpg_stmt_1__ already
        # exists" / "does not exist"). Disable both statement caches and give every
        # prepared statement a unique name.
        connect_args["statement_cache_size"] = 0
        connect_args["prepared_statement_cache_size"] = 0
        connect_args["prepared_statement_name_func"] = _unique_statement_name
    if timeout is not None and target.backend == "postgresql":
        # asyncpg's per-call deadline (every statement, COPY and transaction command):
        # past it the driver sends PostgreSQL's cancel request and raises TimeoutError.
        connect_args.setdefault("command_timeout", timeout + DEADLINE_GRACE)
    execution_options = dict(kwargs.pop("execution_options", {}))
    if read_only:
        _refuse_read_write(None, kwargs)
        _refuse_read_write(None, execution_options)
    if read_only and target.backend == "postgresql":
        execution_options["postgresql_readonly"] = True
    if execution_options:
        options["execution_options"] = execution_options
    options.update(kwargs)
    engine = create_async_engine(target.url, connect_args=connect_args, **options)
    # SQLAlchemy registers the proxy it returns as *the* AsyncEngine of its sync engine
    # (AsyncConnection.engine finds it there); a second proxy would drop out of that
    # registry when the first is collected. So this very object gets the readable repr.
    engine.__class__ = _DescribedEngine
    _INFO[engine.sync_engine] = DatabaseInfo(
        target=target,
        read_only=read_only,
        statement_timeout=timeout if target.backend == "postgresql" else None,
        location=_sqlite_location(target),
    )
    if target.backend == "sqlite":
        # The sqlite3 driver begins transactions lazily, before the first DML, so a
        # SAVEPOINT opened first becomes the outer transaction and its RELEASE commits.
        # SQLAlchemy's documented fix: driver autocommit, and an explicit BEGIN.
        event.listen(engine.sync_engine, "connect", _sqlite_autocommit_driver)
        event.listen(engine.sync_engine, "begin", lambda conn: conn.exec_driver_sql("BEGIN"))
    if read_only:
        # Options applied later (engine.execution_options(...), conn.execution_options(...))
        # must not switch the transactions off: autocommit would begin none to be read-only,
        # postgresql_readonly=False would begin them read-write.
        event.listen(engine.sync_engine, "set_engine_execution_options", _refuse_read_write)
        event.listen(engine.sync_engine, "set_connection_execution_options", _refuse_read_write)
    if read_only and target.backend == "postgresql":
        event.listen(engine.sync_engine, "before_cursor_execute", _refuse_leaving_read_only)
        event.listen(engine.sync_engine, "after_cursor_execute", _still_in_the_read_only_transaction)
    if read_only and target.backend == "sqlite":
        # query_only on every checkout (a statement run on the connection may have turned
        # it off), and an authorizer that refuses turning it off, other writing pragmas
        # and ATTACH (which would create a file and open a database that is not read-only).
        event.listen(engine.sync_engine, "connect", _sqlite_read_only_connection)
        event.listen(engine.sync_engine.pool, "checkout", _sqlite_query_only_on_checkout)
        # sqlite3 creates a missing file when it opens it: a read must create nothing.
        location = _sqlite_location(target)
        if location is not None and location != ":memory:":
            event.listen(engine.sync_engine, "do_connect", functools.partial(_refuse_a_missing_file, Path(location)))
    if target.backend == "postgresql":
        event.listen(engine.sync_engine, "do_connect", functools.partial(_connect_with_one_retry, pooled=target.pooled))
        event.listen(engine.sync_engine, "handle_error", _abandon_after_deadline)
    if timeout is not None and target.backend == "postgresql":
        watchdog = functools.partial(_arm_watchdog, seconds=timeout + DEADLINE_GRACE + WATCHDOG_SLACK)
        event.listen(engine.sync_engine, "before_cursor_execute", watchdog)
        event.listen(engine.sync_engine, "after_cursor_execute", _disarm_watchdog)
        # Per transaction (SET LOCAL), not as a startup parameter or session SET:
        # PgBouncer in transaction mode rejects the first and would leak the second.
        # At least 1 ms: PostgreSQL reads 0 as "no limit", which a positive value never means.
        milliseconds = max(1, round(timeout * 1000))
        event.listen(
            engine.sync_engine,
            "begin",
            lambda conn: conn.exec_driver_sql(f"SET LOCAL statement_timeout = {milliseconds}"),
        )
    return engine


#: Seconds the client waits for a statement past ``statement_timeout`` before giving up:
#: long enough for the server's own timeout (and its message) to arrive first.
DEADLINE_GRACE: Final = 0.25
#: Seconds a given-up statement's cancel request may take to leave before its connection closes.
CANCEL_SEND_WAIT: Final = 0.2

#: Seconds to wait before the one retry of a connect that failed transiently.
CONNECT_RETRY_DELAY = 1.0
# SQLSTATEs of a server that is going away or not there yet: connection exceptions
# (class 08), admin/crash shutdown and "cannot connect now" (starting up).
_TRANSIENT_SQLSTATES = ("08", "57P01", "57P02", "57P03")


def is_transient_connect_error(exc: BaseException) -> bool:
    """Whether a failed connect is worth one retry (a restart or a Neon compute waking up).

    Refused or reset connections and server shutdown/startup states are; timeouts
    (the bounded wait already happened), bad passwords and TLS failures are not.
    """
    if isinstance(exc, TimeoutError):
        return False
    if isinstance(exc, (ConnectionRefusedError, ConnectionResetError, ConnectionAbortedError)):
        return True
    sqlstate = getattr(exc, "sqlstate", None)
    return isinstance(sqlstate, str) and sqlstate.startswith(_TRANSIENT_SQLSTATES)


def _connect_with_one_retry(dialect: Any, _record: Any, cargs: Any, cparams: Any, *, pooled: bool) -> Any:
    # Runs inside SQLAlchemy's greenlet bridge, so the async sleep must go through await_.
    try:
        return _connect(dialect, cargs, cparams, pooled=pooled)
    except Exception as exc:
        if not is_transient_connect_error(exc):
            raise
    await_(asyncio.sleep(CONNECT_RETRY_DELAY))
    return _connect(dialect, cargs, cparams, pooled=pooled)


def _connect(dialect: Any, cargs: Any, cparams: Any, *, pooled: bool) -> Any:
    connection = dialect.connect(*cargs, **cparams)
    if pooled:
        # PgBouncer accepts the client before it has a server connection: a restarting
        # or waking server only shows on the first statement, so ask for one here,
        # where a transient failure is still retried. Within the connect timeout: with
        # no server, PgBouncer would hold the client for its query_wait_timeout (120 s).
        try:
            await_(
                connection.driver_connection.execute(
                    "SELECT 1", timeout=cparams.get("timeout", DEFAULT_CONNECT_TIMEOUT)
                )
            )
        except BaseException:
            connection.terminate()
            raise
    return connection


def _settings_for(url: str | URL | None) -> Settings | None:
    """The settings when ``url`` is the configured ``DATABASE_URL`` (or None), else None.

    So ``create_engine(get_settings().database_url)`` honours ``DATABASE_POOLED`` too.
    """
    if url is None:
        return get_settings()
    try:
        settings = get_settings()
    except SettingsError:
        return None  # the environment is broken, but an explicit URL was given
    try:
        same = parse_database_url(url).url == parse_database_url(settings.database_url).url
    except SettingsError:
        return None
    return settings if same else None


def _read_settings_for(url: str | URL | None) -> Settings | None:
    """The settings when ``url`` is the configured ``DATABASE_READ_URL``, else None."""
    if url is None:
        return None
    try:
        settings = get_settings()
        if settings.database_read_url is None:
            return None
        same = parse_database_url(url).url == parse_database_url(settings.database_read_url).url
    except SettingsError:
        return None
    return settings if same else None


def create_read_engine(
    url: str | URL | None = None,
    *,
    pooled: bool | None = None,
    statement_timeout: float | None = None,
    **kwargs: Any,
) -> AsyncEngine:
    """A read-only engine for analysis: ``url``, else the read replica, else the primary.

    Without ``url``: ``DATABASE_READ_URL`` when it is set (a read replica, so analysis
    does not load the primary; ``DATABASE_READ_POOLED`` plays ``DATABASE_POOLED``'s part
    for it), else ``DATABASE_URL``. Every transaction is read-only (see
    :func:`create_engine`, which takes the other arguments). Writes belong on the
    primary: :func:`create_engine` without a URL.

    >>> tasks = await queries.tasks_frame(create_read_engine())  # doctest: +SKIP
    """
    if url is None:
        settings = get_settings()
        url = settings.database_read_url or settings.database_url
    return create_engine(url, read_only=True, pooled=pooled, statement_timeout=statement_timeout, **kwargs)


def direct_url(url: str | URL | None = None, *, pooled: bool | None = None) -> str | URL:
    """The direct (unpooled) endpoint to run migrations on, for a database URL.

    Migrations need a session of their own, which PgBouncer's transaction mode does not
    give. A URL that isn't pooled is its own direct endpoint. For a pooled one:
    ``DATABASE_DIRECT_URL`` when ``url`` is the configured ``DATABASE_URL``, else, for a
    Neon ``-pooler`` host, the same host without ``-pooler``. Otherwise
    :class:`SettingsError` says what to set.

    >>> direct_url("postgresql://u:p@ep-x-123-pooler.eu-central-1.aws.neon.tech/neondb").host
    'ep-x-123.eu-central-1.aws.neon.tech'
    """
    settings = _settings_for(url)
    raw = url if url is not None else settings.database_url if settings is not None else None
    assert raw is not None
    if pooled is None and settings is not None:
        pooled = settings.database_pooled
    target = parse_database_url(raw, pooled=pooled)
    if isinstance(raw, str) and "://" not in raw:
        if not target.pooled:
            return raw
        original = target.url  # a keyword/value string: its parts, as libpq resolved them
    else:
        original = make_url(raw) if isinstance(raw, str) else raw
    if not target.pooled:
        return original
    if settings is not None and settings.database_direct_url:
        return make_url(settings.database_direct_url)
    host = target.url.host or ""
    if is_neon_pooler_host(host):
        label, _, rest = host.partition(".")
        return original.set(host=f"{label.replace('-pooler', '')}.{rest}" if rest else label.replace("-pooler", ""))
    raise SettingsError(
        f"{target.describe()} is a pooled endpoint (PgBouncer transaction mode), which cannot run "
        "migrations: set DATABASE_DIRECT_URL to its direct endpoint."
    )


def _unique_statement_name() -> str:
    return f"__asyncpg_{uuid.uuid4().hex}__"


def _sqlite_autocommit_driver(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None


_READ_ONLY_AUTOCOMMIT = (
    "read_only=True cannot be combined with isolation_level='AUTOCOMMIT': autocommit begins no "
    "transaction to make read-only. Leave isolation_level out, or make an engine that may write "
    "(read_only=False)."
)
_READ_ONLY_OPTION = (
    "read_only=True cannot be combined with postgresql_readonly={!r}: a read-only engine begins every "
    "transaction read-only. Leave the option out, or make an engine that may write (read_only=False)."
)


def _refuse_read_write(_target: Any, options: dict[str, Any]) -> None:
    """Refuse the options that would let a read-only engine's connection write."""
    level = options.get("isolation_level")
    # SQLAlchemy reads the level as level.replace("_", " ").upper(): "autocommit" is AUTOCOMMIT.
    if isinstance(level, str) and level.replace("_", " ").upper() == "AUTOCOMMIT":
        raise InvalidArgumentError(_READ_ONLY_AUTOCOMMIT)
    if "postgresql_readonly" in options and not options["postgresql_readonly"]:
        raise InvalidArgumentError(_READ_ONLY_OPTION.format(options["postgresql_readonly"]))


def _described(sync_engine: Any) -> str:
    """What a sync engine opens, for messages: also for ``engine.execution_options(...)``'s
    proxy of it (an ``OptionEngine``), which the hooks receive as it is."""
    while sync_engine not in _INFO and hasattr(sync_engine, "_proxied"):
        sync_engine = sync_engine._proxied
    return _INFO[sync_engine].target.describe()


def _refuse_leaving_read_only(conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
    """Refuse, before it is sent, a statement that would end the READ ONLY transaction or make one
    read-write (see :func:`todo_data._sqlparse.leaves_read_only`)."""
    found = _sqlparse.leaves_read_only(statement)
    if found is None:
        return
    where = _described(conn.engine)
    raise InvalidArgumentError(
        f"{found} is refused on a read-only engine ({where}): it runs every statement in a READ ONLY "
        "transaction, which no statement may end or make read-write; leave the transaction to the "
        "session, or use an engine that may write (read_only=False)"
    )


def _still_in_the_read_only_transaction(conn: Any, *_args: Any) -> None:
    """Refuse to go on once a statement ended the READ ONLY transaction.

    SQLAlchemy begins the transaction and believes it open; a ``COMMIT``, ``ROLLBACK`` or
    ``PREPARE TRANSACTION`` sent as a statement ends it on the server, and asyncpg would
    then run the next statement outside any transaction, where it may write.
    :func:`_refuse_leaving_read_only` refuses those before they are sent; whatever else
    ended it (text the parser could not read), the server says so (``is_in_transaction``),
    and the connection is dropped.
    """
    driver = conn.connection.driver_connection
    if driver is None or driver.is_in_transaction():
        return
    conn.invalidate()
    where = _described(conn.engine)
    raise InvalidArgumentError(
        f"a statement ended the read-only transaction on {where}: a read-only engine runs every statement "
        "in a READ ONLY transaction, so COMMIT, ROLLBACK and END are refused; "
        "leave the transaction to the session, or use an engine that may write (read_only=False)"
    )


def _sqlite_query_only(dbapi_connection: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA query_only = ON")
    cursor.close()


def _sqlite_read_only_connection(dbapi_connection: Any, _record: Any) -> None:
    _sqlite_query_only(dbapi_connection)
    await_(dbapi_connection._connection.set_authorizer(read_only_authorizer))


def _refuse_a_missing_file(location: Path, *_args: Any) -> None:
    if not location.exists():
        raise SchemaNotReadyError(
            f"SQLite database {str(location)!r} does not exist, and a read-only engine creates nothing: "
            "check the path, or create and migrate it (`todo-data migrate`)"
        )


def _sqlite_query_only_on_checkout(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    _sqlite_query_only(dbapi_connection)


def engine_of(source: Source) -> AsyncEngine:
    """The engine behind a source."""
    if isinstance(source, AsyncEngine):
        return source
    if isinstance(source, AsyncConnection):
        return source.engine
    bind = source.bind
    if isinstance(bind, AsyncEngine):
        return bind
    if isinstance(bind, AsyncConnection):
        return bind.engine
    raise TypeError("the AsyncSession is not bound to an engine or connection")


def about(source: Source) -> DatabaseInfo:
    """What the source's engine opens: backend, host, database, user, read-only, pooled, TLS.

    ``str(about(engine))`` is what a notebook shows for an engine made by
    :func:`create_engine`; it never contains the password.
    """
    engine = engine_of(source)
    info = _INFO.get(engine.sync_engine)
    if info is None:  # an engine made elsewhere
        target = parse_database_url(engine.url)
        read_only = bool(engine.get_execution_options().get("postgresql_readonly"))
        info = _INFO[engine.sync_engine] = DatabaseInfo(target, read_only, location=_sqlite_location(target))
    return info


def add_note(engine: AsyncEngine, note: str, *, title: str | None = None) -> None:
    """Say ``title`` first and ``note`` last wherever the engine describes itself (repr, :func:`about`)."""
    _INFO[engine.sync_engine] = replace(about(engine), title=title, note=note)


def _sqlite_location(target: DatabaseTarget) -> str | None:
    if target.backend != "sqlite":
        return None
    database = target.url.database
    return str(Path(database).resolve()) if database and database != ":memory:" else ":memory:"


def target_of(source: Source) -> DatabaseTarget:
    """What the source's engine connects to (parsed URL, backend, pooled)."""
    return about(source).target


def describe(source: Source) -> str:
    """``database "db" on host:port as user "u"``: for messages, never with the password."""
    return target_of(source).describe()


def connection_error(source: Source, exc: BaseException) -> DatabaseConnectionError:
    """A readable :class:`DatabaseConnectionError` for a failed connect, password scrubbed."""
    cause = _driver_cause(exc)
    password = engine_of(source).url.password
    reason = scrub(driver_message(exc), password)
    if isinstance(cause, TimeoutError) and not str(cause).strip():
        reason = "timed out (the server did not answer; a suspended Neon compute may still be starting)"
    elif not isinstance(cause, OSError) and is_connection_lost(exc):
        reason = f"the connection was lost while it was being opened ({_lost_reason(cause, password)})"
    given = target_of(source).password_source
    if given is not None and getattr(cause, "sqlstate", None) == _AUTH_FAILED_SQLSTATE:
        reason += f" (the password was read from {given})"  # as libpq says "password retrieved from file"
    return DatabaseConnectionError(f"Could not connect to {describe(source)}: {reason}")


_AUTH_FAILED_SQLSTATE: Final = "28P01"


# Anything raised while opening a connection means the database could not be used.
_CONNECT_ERRORS = (OSError, TimeoutError, DBAPIError)


# -- driver errors ---------------------------------------------------------------------------
# One translation of what SQLAlchemy, asyncpg and sqlite3 raise into TodoDataError, used by
# every public operation (:func:`operation`): a lost connection, a statement given up at the
# client's deadline, and everything else the database said.

# SQLSTATEs of a backend that is going away: administrator command (pg_terminate_backend,
# a fast shutdown), crash shutdown, starting up. Class 08 is asyncpg's PostgresConnectionError.
_GONE_SQLSTATES: Final = frozenset({"57P01", "57P02", "57P03"})
_READ_ONLY_SQLSTATE: Final = "25006"
_READ_ONLY_HINT: Final = (
    " (queries.sql reads in a READ ONLY transaction when given an engine: to write, use a"
    " session of your own, todo_data.session_scope, and commit it)"
)
# The operation the outermost public call is running, for messages (set by coroutines only:
# an async generator's steps run in its caller's context).
_RUNNING: ContextVar[str | None] = ContextVar("todo_data_operation", default=None)


def driver_errors_types() -> tuple[type[BaseException], ...]:
    """What the database layers raise: SQLAlchemy, asyncpg and sqlite3 errors, socket failures.

    :class:`TimeoutError` is asyncpg's deadline (see :data:`DEADLINE_GRACE`). Other
    :class:`OSError` (a file that cannot be written) is no database error.
    """
    import asyncpg

    return (
        SQLAlchemyError,
        asyncpg.PostgresError,
        asyncpg.InterfaceError,
        asyncpg.InternalClientError,
        sqlite3.Error,
        ConnectionError,
        ssl.SSLError,
        TimeoutError,
    )


def _driver_cause(exc: BaseException) -> BaseException:
    """The driver's own exception under SQLAlchemy's wrapping (and its asyncpg adapter's)."""
    cause = getattr(exc, "orig", None) or exc
    inner = cause.__cause__
    return inner if inner is not None and type(cause).__module__.startswith("sqlalchemy") else cause


def is_connection_lost(exc: BaseException) -> bool:
    """Whether ``exc`` says the connection is gone: its backend terminated, the server or
    PgBouncer stopped, the socket closed (as opposed to a statement the database refused)."""
    import asyncpg

    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    cause = _driver_cause(exc)
    if isinstance(cause, asyncpg.PostgresConnectionError) or getattr(cause, "sqlstate", None) in _GONE_SQLSTATES:
        return True
    if isinstance(cause, asyncpg.InterfaceError) and "connection is closed" in str(cause):
        return True  # also "cannot call Transaction.rollback(): the underlying connection is closed"
    return isinstance(cause, ConnectionError | ssl.SSLError)


def _lost_reason(cause: BaseException, password: str | None) -> str:
    """What the server said as it went, or that it closed the connection (not asyncpg's own
    complaint about using the closed connection, "cannot switch to state …")."""
    import asyncpg

    if isinstance(cause, asyncpg.InternalClientError | asyncpg.InterfaceError):
        return "the server closed the connection"
    return scrub(driver_message(cause), password)


def is_deadline(exc: BaseException) -> bool:
    """Whether ``exc`` is asyncpg giving up on a statement at the client's deadline."""
    return isinstance(_driver_cause(exc), TimeoutError)


def driver_error(
    source: Source,
    exc: BaseException,
    *,
    operation: str | None = None,
    error: type[DatabaseOperationError] = DatabaseOperationError,
    outcome: str | None = None,
) -> TodoDataError:
    """The :class:`TodoDataError` for a driver error raised while ``operation`` ran on ``source``.

    - A lost connection is a :class:`DatabaseConnectionError` naming host, database and
      the operation.
    - A statement given up at the client's deadline (a suspended or silent server) is an
      ``error`` saying so.
    - Anything else is an ``error`` with the database's message, its detail and hint, and
      its SQLSTATE.

    ``operation`` defaults to the public call running (see :func:`operation`); ``outcome``
    says what became of the work (``nothing was written to …``). Passwords are masked.
    """
    running = _RUNNING.get() or operation or "a statement"
    where = describe(source)
    after = f"; {outcome}" if outcome else ""
    cause = _driver_cause(exc)
    password = engine_of(source).url.password
    if is_connection_lost(exc):
        reason = _lost_reason(cause, password)
        return DatabaseConnectionError(
            f"The connection to {where} was lost while {running} was running ({reason}){after}. "
            "The engine opens a new connection for the next call."
        )
    if is_deadline(exc):
        timeout = about(source).statement_timeout
        limit = f"the statement timeout ({timeout:g} s)" if timeout is not None else "its timeout"
        waited = (
            f" the client stopped waiting after about {timeout + DEADLINE_GRACE:g} s:" if timeout is not None else ""
        )
        return error(
            f"{running} got no answer from {where} within {limit};{waited} the server may be suspended "
            f"or unreachable{after}. The statement is cancelled on the server when it answers again; "
            "the connection was closed and the engine opens a new one for the next call."
        )
    sqlstate = getattr(cause, "sqlstate", None)
    message = driver_message(cause)
    for label in ("detail", "hint"):
        extra = getattr(cause, label, None)
        if isinstance(extra, str) and extra:
            message += f" ({label}: {extra.strip()})"
    if issubclass(error, QueryError) and (sqlstate == _READ_ONLY_SQLSTATE or "readonly database" in message):
        message += _READ_ONLY_HINT
    subject = "The query" if issubclass(error, QueryError) else running
    return error(f"{subject} failed on {where}: {scrub(message, password)}{after}", sqlstate=sqlstate)


@asynccontextmanager
async def driver_errors(
    source: Source,
    operation: str,
    *,
    error: type[DatabaseOperationError] = DatabaseOperationError,
    outcome: str | None = None,
) -> AsyncIterator[None]:
    """Inside the block, driver errors are raised as :func:`driver_error` makes them."""
    try:
        yield
    except TodoDataError:
        raise
    except driver_errors_types() as exc:
        raise driver_error(source, exc, operation=operation, error=error, outcome=outcome) from exc


_P = ParamSpec("_P")
_R = TypeVar("_R")
_T = TypeVar("_T")


class operation:
    """Declares a public database operation: no driver error leaves it, only TodoDataErrors.

    ``@operation("queries.tasks_frame")`` on a coroutine function or an async generator
    function whose first argument is the source. Errors are translated by
    :func:`driver_error`; failures of other kinds pass unchanged. Nested operations are
    named by the outermost (``checks.verify``, not the ``migrations.drift`` it calls).
    """

    def __init__(self, name: str, *, error: type[DatabaseOperationError] = DatabaseOperationError) -> None:
        self.name = name
        self.error = error

    @overload
    def __call__(self, function: Callable[_P, Coroutine[Any, Any, _R]]) -> Callable[_P, Coroutine[Any, Any, _R]]: ...
    @overload
    def __call__(self, function: Callable[_P, AsyncIterator[_T]]) -> Callable[_P, AsyncIterator[_T]]: ...
    def __call__(self, function: Callable[..., Any]) -> Callable[..., Any]:
        name, error = self.name, self.error
        if inspect.isasyncgenfunction(function):

            @functools.wraps(function)
            async def stream(source: Source, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
                async with (
                    driver_errors(source, name, error=error),
                    aclosing(function(source, *args, **kwargs)) as items,
                ):
                    async for item in items:
                        yield item

            return stream

        @functools.wraps(function)
        async def call(source: Source, *args: Any, **kwargs: Any) -> Any:
            token = _RUNNING.set(_RUNNING.get() or name)
            try:
                async with driver_errors(source, name, error=error):
                    return await function(source, *args, **kwargs)
            finally:
                _RUNNING.reset(token)

        return call


async def abandon(driver: Any) -> None:
    """Close an asyncpg connection at once, once its pending cancel requests have left.

    After its deadline asyncpg sends PostgreSQL's cancel request from a task of its own,
    which ``terminate()`` would cancel before it is sent; it gets :data:`CANCEL_SEND_WAIT`
    seconds. A graceful close would wait for a server that does not answer.
    """
    pending = [task for task in getattr(driver, "_cancellations", ()) if not task.done()]
    if pending:
        await asyncio.wait(pending, timeout=CANCEL_SEND_WAIT)
    driver.terminate()


def _abandon_after_deadline(context: ExceptionContext) -> BaseException | None:
    """A statement run by SQLAlchemy passed its deadline: its connection is closed now.

    SQLAlchemy's invalidation would first try a graceful close for two seconds. A statement
    the watchdog stopped (its connection closed under it) is reported as the deadline it is.
    """
    connection = context.connection
    if connection is None:
        return None
    watched = connection.info.pop(_WATCHDOG, None)
    if watched is not None:
        watched.cancel()
    if connection.info.pop(_WATCHDOG_FIRED, False):
        context.is_disconnect = True
        context.invalidate_pool_on_disconnect = False
        return TimeoutError("the watchdog closed the connection at the statement's deadline")
    if not isinstance(context.original_exception, TimeoutError):
        return None
    if not connection.invalidated:
        await_(abandon(connection.connection.driver_connection))
    context.is_disconnect = True
    context.invalidate_pool_on_disconnect = False
    return None


#: Seconds past asyncpg's own deadline after which the watchdog closes the connection itself.
WATCHDOG_SLACK: Final = 0.1
_WATCHDOG: Final = "todo_data_watchdog"
_WATCHDOG_FIRED: Final = "todo_data_watchdog_fired"


def _arm_watchdog(
    conn: Any, _cursor: Any, _statement: Any, _parameters: Any, _context: Any, _many: Any, *, seconds: float
) -> None:
    # asyncpg's per-call timeout misses some protocol states (a prepare answered in part
    # through PgBouncer waits forever): a timer of our own closes the connection shortly after.
    driver = conn.connection.driver_connection

    def fire() -> None:
        conn.info[_WATCHDOG_FIRED] = True
        driver.terminate()

    conn.info[_WATCHDOG] = asyncio.get_running_loop().call_later(seconds, fire)


def _disarm_watchdog(conn: Any, *_args: Any) -> None:
    watched = conn.info.pop(_WATCHDOG, None)
    if watched is not None:
        watched.cancel()


def connection_gone(conn: AsyncConnection) -> bool:
    """Whether ``conn`` can no longer be used: closed, invalidated, or its driver's connection closed."""
    sync = conn.sync_connection
    if sync is None or sync.closed or sync.invalidated:
        return True
    is_closed = getattr(sync.connection.driver_connection, "is_closed", None)
    return bool(is_closed()) if callable(is_closed) else False


async def bounded(driver: Any, call: Awaitable[_T]) -> _T:
    """``call`` on asyncpg's connection, given up :data:`WATCHDOG_SLACK` after its deadline.

    asyncpg's own per-call timeout misses some protocol states (a prepare answered in
    part through PgBouncer waits forever). The deadline is the connection's
    ``command_timeout`` (see :func:`create_engine`); without one the call is unbounded.
    """
    deadline = getattr(getattr(driver, "_config", None), "command_timeout", None)
    if deadline is None:
        return await call
    return await asyncio.wait_for(call, deadline + WATCHDOG_SLACK)


@asynccontextmanager
async def raw_driver(conn: AsyncConnection) -> AsyncIterator[Any]:
    """asyncpg's connection under ``conn``, for what SQLAlchemy cannot do (``COPY``).

    A statement given up at its deadline leaves the connection waiting for a server that
    may never answer, so it is abandoned at once (:func:`abandon`); SQLAlchemy then sees it
    closed and replaces it.
    """
    driver = (await conn.get_raw_connection()).driver_connection
    assert driver is not None
    try:
        yield driver
    except BaseException as exc:
        if is_deadline(exc) and not driver.is_closed():
            await abandon(driver)
        raise


@asynccontextmanager
async def connect(source: Source) -> AsyncIterator[AsyncConnection]:
    """Borrow a connection from a source without committing or closing the caller's.

    An engine gives a new connection (closed afterwards, its transaction rolled back
    unless the caller committed); a connection is used as it is; a session gives the
    connection of its current transaction. Interrupting the kernel (Stop) cancels the
    statement on the server (see :mod:`todo_data._interrupt`). After a failure that left
    the connection unusable (lost, or given up at its deadline) it is invalidated, not
    returned to the pool, and cleaning up never replaces the failure.
    """
    async with stoppable(_borrow(source), owned=isinstance(source, AsyncEngine)) as conn:
        yield conn


@asynccontextmanager
async def _borrow(source: Source) -> AsyncIterator[AsyncConnection]:
    if isinstance(source, AsyncConnection):
        yield source
        return
    if isinstance(source, AsyncSession):
        conn = await _open(source, source.connection())
        yield conn
        return
    conn = await _open(source, source.connect())
    try:
        yield conn
    except BaseException:
        await _release(conn, failed=True)
        raise
    await _release(conn, failed=False)


async def _release(conn: AsyncConnection, *, failed: bool) -> None:
    """Return the connection to the pool (rolled back), or invalidate it when it is broken.

    Never raises: a connection that cannot even be rolled back is thrown away instead,
    and the work it did (or the failure being raised) stands.
    """
    if not (failed and connection_gone(conn)):
        try:
            await conn.close()
            return
        except Exception:  # the rollback on the way back to the pool failed: the connection is broken
            pass
    with suppress(Exception):
        await conn.invalidate()


@asynccontextmanager
async def begin(source: Source) -> AsyncIterator[AsyncConnection]:
    """A connection in a transaction for writing; a failure leaves no partial write.

    With an engine, the transaction is committed on success and rolled back on error.
    With a connection or session, the writes join the caller's transaction (which the
    caller commits) inside a savepoint, so an error rolls back this block's writes only.
    A connection lost while committing is a :class:`DatabaseConnectionError` saying that
    the changes may or may not have been stored.
    """
    async with connect(source) as conn:
        if isinstance(source, AsyncEngine):
            transaction = await conn.begin()
        else:
            if not conn.in_transaction():
                await conn.begin()
            transaction = await conn.begin_nested()
        try:
            yield conn
        except BaseException:
            if not connection_gone(conn):
                with suppress(Exception):  # cleanup never replaces the cause
                    await transaction.rollback()
            raise
        try:
            await transaction.commit()
        except driver_errors_types() as exc:
            if not is_connection_lost(exc):
                raise
            outcome = "it was lost during COMMIT, so the changes may or may not have been stored: check before retrying"
            raise driver_error(source, exc, outcome=outcome) from exc


async def in_recovery(conn: AsyncConnection) -> bool:
    """Whether the connection's server is a hot standby (a read replica); False on SQLite."""
    if conn.dialect.name != "postgresql":
        return False
    return bool((await conn.execute(text("SELECT pg_is_in_recovery()"))).scalar())


async def require_primary(conn: AsyncConnection, source: Source, *, to: str) -> None:
    """The write guard: :class:`ReadReplicaError` when ``conn`` is on a read replica, before any write.

    What every writer of the library (seeding, the constraint probe, migrations) calls
    first. A hot standby refuses each write with SQLSTATE 25006, ``cannot execute INSERT
    in a read-only transaction``, which does not say why; this says why and where to
    write instead. ``to`` completes "it cannot …", e.g. ``"be seeded"``.
    """
    if await in_recovery(conn):
        raise ReadReplicaError(
            f"{describe(source)} is a read replica (a hot standby, which refuses every write), so it cannot {to}: "
            "write through the primary (DATABASE_URL), not the replica (DATABASE_READ_URL)."
        )


def located(source: Source) -> str:
    """Where ``source`` points, for a message: its description and its URL, the password masked."""
    return f"{describe(source)} ({target_of(source).masked})"


async def _open(source: Source, opening: Any) -> AsyncConnection:
    try:
        conn = await opening
    except _CONNECT_ERRORS as exc:
        raise connection_error(source, exc) from None
    assert isinstance(conn, AsyncConnection)
    return conn


def sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """A session factory with ``expire_on_commit=False`` (objects stay readable after commit)."""
    return async_sessionmaker(engine, expire_on_commit=False)


@asynccontextmanager
async def session_scope(engine: AsyncEngine) -> AsyncIterator[AsyncSession]:
    """A session that commits when the block succeeds and rolls back when it raises.

    >>> async with session_scope(engine) as session:   # doctest: +SKIP
    ...     session.add(Task(user_id="u1", title="Write the report"))
    """
    async with sessionmaker(engine)() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            with suppress(Exception):  # a lost connection cannot roll back: the cause stands
                await session.rollback()
            raise


_default_engine: AsyncEngine | None = None


def default_engine() -> AsyncEngine:
    """The engine for the settings' ``DATABASE_URL``, built on first use and cached."""
    global _default_engine
    if _default_engine is None:
        _default_engine = create_engine()
    return _default_engine


async def reset_default_engine() -> None:
    """Dispose of the cached default engine (after changing settings, in tests)."""
    global _default_engine
    engine, _default_engine = _default_engine, None
    if engine is not None:
        await engine.dispose()


async def get_async_session() -> AsyncIterator[AsyncSession]:
    """Yield one session on the default engine: a FastAPI-style dependency.

    The caller commits; an exception inside the request rolls the session back.
    """
    async with sessionmaker(default_engine())() as session:
        try:
            yield session
        except BaseException:
            with suppress(Exception):  # a lost connection cannot roll back: the cause stands
                await session.rollback()
            raise
