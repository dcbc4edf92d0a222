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
import uuid
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeAlias

from sqlalchemy import event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.engine import Engine as SyncEngine
from sqlalchemy.exc import DBAPIError
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
    SchemaNotReadyError,
    SettingsError,
    driver_message,
)
from todo_data.rules import TABLE_NAME
from todo_data.settings import Settings, get_settings, statement_timeout_seconds
from todo_data.urls import DatabaseTarget, is_neon_pooler_host, parse_database_url, scrub

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

    def __str__(self) -> str:
        lines = [self.title, self.database, " · ".join(self.traits), self.note]
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
    if target.backend == "postgresql":
        event.listen(engine.sync_engine, "do_connect", functools.partial(_connect_with_one_retry, pooled=target.pooled))
    if timeout is not None and target.backend == "postgresql":
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
        # where a transient failure is still retried.
        try:
            connection.ping()
        except Exception:
            connection.close()
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


def direct_url(url: str | URL | None = None, *, pooled: bool | None = None) -> URL:
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
    cause = getattr(exc, "orig", None) or exc
    reason = scrub(driver_message(exc), engine_of(source).url.password)
    if isinstance(cause, TimeoutError) and not str(cause).strip():
        reason = "timed out (the server did not answer; a suspended Neon compute may still be starting)"
    return DatabaseConnectionError(f"Could not connect to {describe(source)}: {reason}")


# Anything raised while opening a connection means the database could not be used.
_CONNECT_ERRORS = (OSError, TimeoutError, DBAPIError)


@asynccontextmanager
async def connect(source: Source) -> AsyncIterator[AsyncConnection]:
    """Borrow a connection from a source without committing or closing the caller's.

    An engine gives a new connection (closed afterwards, its transaction rolled back
    unless the caller committed); a connection is used as it is; a session gives the
    connection of its current transaction. Interrupting the kernel (Stop) cancels the
    statement on the server (see :mod:`todo_data._interrupt`).
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
    finally:
        await conn.close()


@asynccontextmanager
async def begin(source: Source) -> AsyncIterator[AsyncConnection]:
    """A connection in a transaction for writing; a failure leaves no partial write.

    With an engine, the transaction is committed on success and rolled back on error.
    With a connection or session, the writes join the caller's transaction (which the
    caller commits) inside a savepoint, so an error rolls back this block's writes only.
    """
    if isinstance(source, AsyncEngine):
        async with connect(source) as conn, conn.begin():
            yield conn
        return
    async with connect(source) as conn:
        if not conn.in_transaction():
            await conn.begin()
        async with conn.begin_nested():
            yield conn


async def require_tasks_table(conn: AsyncConnection, source: Source) -> str:
    """The backend's name, after checking that the tasks table exists (a cheap catalogue query).

    Checking first, rather than catching the failed query, leaves the caller's transaction
    usable. The error says where (host and database, the URL with its password masked)
    and what to do.
    """
    backend = conn.dialect.name
    if backend == "postgresql":
        query = text("SELECT to_regclass(:name) IS NOT NULL")
    else:
        query = text("SELECT count(*) FROM sqlite_master WHERE type IN ('table', 'view') AND name = :name")
    if not (await conn.execute(query, {"name": TABLE_NAME})).scalar():
        raise SchemaNotReadyError(
            f'The "{TABLE_NAME}" table does not exist in {describe(source)} ({target_of(source).masked}): '
            "run migrations first (`todo-data migrate`, or `await todo_data.migrations.upgrade(engine)`)."
        )
    return backend


@asynccontextmanager
async def raw_driver_errors(source: Source) -> AsyncIterator[None]:
    """Turn errors of asyncpg used directly (COPY) into :class:`DatabaseOperationError`.

    SQLAlchemy wraps driver errors of the statements it runs; a raw COPY would otherwise
    surface asyncpg's own exception types, unlike every other failure of the library.
    """
    import asyncpg

    try:
        yield
    except (asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        message = scrub(driver_message(exc), engine_of(source).url.password)
        raise DatabaseOperationError(f"{describe(source)}: {message}") from exc


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
            await session.rollback()
            raise
