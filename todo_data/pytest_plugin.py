"""The pytest plugin for the application's tests: a real, migrated PostgreSQL per test, fast.

Installed with ``todo_data`` (entry point group ``pytest11``), so an application's suite
gets it with no ``conftest.py`` and no ``-p``. pytest imports this module in every session
of every project that installs ``todo_data``, so it imports nothing heavy: SQLAlchemy,
the migrations and the server harness are imported by the fixtures that need them, and
no server starts until a test asks for a database.

Fixtures (the async ones run on pytest-asyncio's loop, as any async fixture does):

- ``todo_postgres`` (session): the server the databases are made on, ``TEST_DATABASE_URL``
  (or ``--todo-database-url``) when set, else a throwaway cluster of :mod:`todo_data.testing`.
- ``todo_database_url`` (session): a migrated database of its own on that server.
- ``todo_engine`` (function): an engine on a new database cloned from a migrated template
  (``CREATE DATABASE … TEMPLATE``): migrated, empty, its CHECKs and triggers live.
- ``todo_session`` (function): an ``AsyncSession`` on ``todo_database_url`` inside a
  transaction rolled back at the end, even when the code under test commits.
- ``todo_sqlite_engine`` (function): an engine on a migrated SQLite file of its own.

Every database is named ``todo_test_<worker>_<random>…`` (the pytest-xdist worker, or
``main``), so workers and concurrent runs on one shared server never collide, and every
one is dropped when the session ends. Without a server (no ``TEST_DATABASE_URL`` and no
PostgreSQL server binaries) the tests that need one are skipped with the reason, or fail
under ``CI=true``.

``--todo-migrations`` adds the migration checks: a single head, every revision up, down
and up again carrying rows, no drift between the model and a migrated database (CHECKs
and triggers included), and no lint error in any revision.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import re
import secrets
import shutil
import threading
from collections.abc import AsyncIterator, Callable, Coroutine
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal, NoReturn, TypeVar, cast

import pytest

from todo_data.errors import TodoDataError

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

    from todo_data.testing import PostgresCluster

try:
    from pytest_asyncio import fixture as async_fixture
except ImportError:  # pragma: no cover - pytest itself then says an async fixture needs a plugin
    from pytest import fixture as async_fixture  # type: ignore[no-redef]

T = TypeVar("T")
_Scope = Literal["function", "class", "module", "package", "session"]

#: Every database the plugin creates starts with this.
PREFIX: Final = "todo_test"
#: Rows the migration round trip carries through every step.
ROUNDTRIP_ROWS: Final = 200
_LOOP_SCOPES: Final = ("function", "class", "module", "package", "session")


def in_ci() -> bool:
    """Whether ``CI`` says this is a CI run (``1``, ``true``, ``yes``), where a missing server fails."""
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("todo_data", "todo_data's database fixtures")
    group.addoption(
        "--todo-migrations",
        action="store_true",
        default=False,
        help="add todo_data's migration checks: single head, round trip with rows, no drift, no lint error",
    )
    group.addoption(
        "--todo-database-url",
        default=None,
        help="a PostgreSQL server to create the test databases on (default: TEST_DATABASE_URL, "
        "else a throwaway cluster); its role needs CREATEDB",
    )


_DATABASES = pytest.StashKey["TodoDatabases"]()


def pytest_configure(config: pytest.Config) -> None:
    # Read now: a test's fixtures may hide the environment later (monkeypatch.delenv).
    config.stash[_DATABASES] = TodoDatabases(
        config=config,
        environment_url=os.environ.get("TEST_DATABASE_URL", "").strip() or None,
        worker=os.environ.get("PYTEST_XDIST_WORKER", "main"),
        ci=in_ci(),
    )


def pytest_sessionfinish(session: pytest.Session) -> None:
    databases = session.config.stash.get(_DATABASES, None)
    if databases is not None:
        databases.close()


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    databases = config.stash.get(_DATABASES, None)
    for problem in databases.cleanup_problems if databases is not None else ():
        terminalreporter.write_line(f"todo_data: {problem}", red=True)


def databases_of(config: pytest.Config) -> TodoDatabases:
    """The session's :class:`TodoDatabases` (what the fixtures draw on)."""
    return config.stash[_DATABASES]


@dataclass(frozen=True)
class TodoPostgres:
    """The PostgreSQL server the plugin's databases are created on."""

    #: The server's own database (``TEST_DATABASE_URL``'s, or the cluster's), password included.
    url: str
    #: The throwaway cluster, or ``None`` for ``TEST_DATABASE_URL``.
    cluster: PostgresCluster | None = None

    def database_url(self, name: str) -> str:
        """``url`` with another database name (same role, host and options)."""
        from sqlalchemy.engine import make_url

        if "://" not in self.url:
            # A keyword/value string (``host=… dbname=…``, as libpq and psql take it): a
            # keyword given again wins, in libpq as in todo_data.
            return f"{self.url} dbname='{name}'"
        return make_url(self.url).set(database=name).render_as_string(hide_password=False)


@dataclass
class TodoDatabases:
    """The server, the templates and every database of one pytest process, and their cleanup.

    Database work runs in one thread of its own, on its own event loop, through one
    admin connection: whichever loop (or none) a test runs on, the connection stays
    open from one test to the next, and a ``CREATE DATABASE`` costs one round trip.
    Everything is made on first use; :meth:`close` drops every database it made and
    stops the cluster.
    """

    config: pytest.Config
    environment_url: str | None
    worker: str
    ci: bool
    run_id: str = field(default_factory=lambda: secrets.token_hex(4))
    cleanup_problems: list[str] = field(default_factory=list)
    _server: TodoPostgres | None = None
    _failure: BaseException | None = None
    _executor: ThreadPoolExecutor | None = None
    _admin: AsyncEngine | None = None
    #: Whether clones copy the template's files (the throwaway cluster, fsync off).
    _file_copy: bool = False
    _template: str | None = None
    _session_database: str | None = None
    _sqlite_template: Path | None = None
    _created: list[str] = field(default_factory=list)
    _count: int = 0
    _spare: Future[str] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def name(self) -> str:
        """The prefix of every database of this process: ``todo_test_<worker>_<random>``."""
        return f"{PREFIX}_{self.worker}_{self.run_id}"

    def server_url(self) -> str | None:
        """``--todo-database-url``, else ``TEST_DATABASE_URL`` as it was when pytest started."""
        option: str | None = self.config.getoption("todo_database_url", None)
        return option or self.environment_url

    # ------------------------------------------------------------------ the server

    def server(self) -> TodoPostgres:
        """The server, started (or reached) on first use; skips or fails when there is none."""
        with self._lock:
            if self._failure is not None:
                self._raise_failure()
            if self._server is None:
                try:
                    self._server = self._start()
                except BaseException as exc:
                    self._failure = exc
                    self._raise_failure()
            return self._server

    def _start(self) -> TodoPostgres:
        from todo_data.testing import ClusterUnavailable, start_cluster

        url = self.server_url()
        if url is not None:
            server = TodoPostgres(url=url)
            self._call(self._open_admin, server)
            return server
        try:
            cluster = start_cluster()
        except ClusterUnavailable as exc:
            raise _Unavailable(
                f"no PostgreSQL for todo_data's fixtures: {exc} (or set TEST_DATABASE_URL to a server "
                "whose role has CREATEDB)"
            ) from None
        server = TodoPostgres(url=cluster.url(), cluster=cluster)
        try:
            self._call(self._open_admin, server)
        except BaseException:
            cluster.stop()
            raise
        return server

    def _raise_failure(self) -> NoReturn:
        failure = self._failure
        if isinstance(failure, _Unavailable):
            if self.ci:
                pytest.fail(f"CI needs PostgreSQL: {failure}", pytrace=False)
            pytest.skip(str(failure))
        assert failure is not None
        raise failure

    async def _open_admin(self, server: TodoPostgres) -> None:
        from sqlalchemy import event

        from todo_data.database import create_engine, direct_url

        # CREATE/DROP DATABASE cannot run inside a transaction block, and the advisory
        # lock below needs a session of its own (not PgBouncer's transaction mode): the
        # direct endpoint, one connection kept open, used only from the admin thread.
        self._admin = create_engine(direct_url(server.url), isolation_level="AUTOCOMMIT", pool_size=1, max_overflow=0)
        self._file_copy = server.cluster is not None
        # While this process lives its admin session holds a lock named for its
        # databases; taken again on every new connection (the server may restart).
        event.listen(self._admin.sync_engine, "connect", functools.partial(_hold_lock, name=self.name))
        await self._sweep()

    async def _sweep(self) -> None:
        """Drop the databases of runs that ended without dropping them (a killed worker).

        A run's lock is free only once its admin session has ended: then nobody uses its
        databases. A live run (another CI job on this server) holds its lock, and its
        databases are left alone, as are those this role may not drop.
        """
        from sqlalchemy import text
        from sqlalchemy.exc import DBAPIError

        from todo_data.database import connect
        from todo_data.migrations._scratch import drop_database

        assert self._admin is not None
        runs: dict[str, list[str]] = {}
        # The pool's one connection: the locks taken here are still held by the drops below.
        async with connect(self._admin) as conn:
            for name in (await conn.execute(text("SELECT datname FROM pg_database"))).scalars():
                found = _RUN_NAME.match(name)
                if found and found.group(1) != self.name:
                    runs.setdefault(found.group(1), []).append(name)
            for run in list(runs):
                if not (await conn.execute(text(_TRY_LOCK), {"space": _LOCK_SPACE, "run": run})).scalar_one():
                    del runs[run]  # alive
        for run, databases in runs.items():
            try:
                # Clones before their template, which cannot go while it is being copied.
                for name in sorted(databases, key=lambda name: name.endswith("_tpl")):
                    with contextlib.suppress(DBAPIError, TodoDataError):
                        await drop_database(self._admin, name)
            finally:
                async with connect(self._admin) as conn:
                    unlock = text("SELECT pg_advisory_unlock(:space, hashtext(:run))")
                    await conn.execute(unlock, {"space": _LOCK_SPACE, "run": run})

    def _call(self, function: Callable[..., Coroutine[Any, Any, T]], *args: Any) -> T:
        """``function(*args)`` awaited on the admin thread's loop; its result or its exception."""
        return self._submit(function, *args).result()

    def _submit(self, function: Callable[..., Coroutine[Any, Any, T]], *args: Any) -> Future[T]:
        """``function(*args)`` queued for the admin thread's loop."""
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="todo-data-pytest")

        def work() -> T:
            from todo_data.runner import run

            return run(function(*args))

        return self._executor.submit(work)

    # ------------------------------------------------------------------ databases

    def template(self) -> str:
        """The migrated template every clone is copied from (made once per process)."""
        server = self.server()
        with self._lock:
            if self._failure is not None:
                self._raise_failure()
            if self._template is None:
                name = f"{self.name}_tpl"
                try:
                    self._call(self._create, name, None)
                    self._call(_migrate, server.database_url(name))
                    self._call(self._seal, name, server.database_url(name))
                except BaseException as exc:
                    # Once: no CREATEDB, or a migration that fails, fails every test alike.
                    self._failure = exc
                    self._raise_failure()
                self._template = name
            return self._template

    def session_database(self) -> str:
        """The URL of the process's own migrated database, a clone of the template."""
        template = self.template()
        with self._lock:
            if self._session_database is None:
                self._session_database = f"{self.name}_session"
                self._call(self._create, self._session_database, template)
        return self.server().database_url(self._session_database)

    def clone(self) -> str:
        """A new database copied from the template; returns its name (drop it with :meth:`drop`).

        The next one is copied at once, on the admin thread, while the caller's test
        runs: a test that asks for a clone finds one ready.
        """
        template = self.template()
        with self._lock:
            ready = self._spare or self._submit(self._create_clone, template)
            self._spare = self._submit(self._create_clone, template)
        return ready.result()

    async def _create_clone(self, template: str) -> str:
        self._count += 1  # only ever on the admin thread
        name = f"{self.name}_{self._count}"
        await self._create(name, template)
        return name

    def drop(self, name: str) -> None:
        """Drop a database :meth:`clone` made, whichever sessions are still on it.

        Queued for the admin thread, which drops it while the next test runs; a drop
        that fails is tried again when the session ends, and reported if it fails again.
        """
        self._submit(self._drop, name)

    async def _create(self, name: str, template: str | None) -> None:
        from sqlalchemy import text
        from sqlalchemy.exc import DBAPIError

        from todo_data.database import connect
        from todo_data.errors import DatabaseOperationError, driver_message

        assert self._admin is not None
        # template0, not template1: nobody connects to it, so nothing delays the copy.
        clause = f' TEMPLATE "{template or "template0"}"'
        async with connect(self._admin) as conn:
            if template is not None and self._file_copy and _copies_files(conn):
                # The throwaway cluster runs with fsync off: copying the template's files
                # (two checkpoints, nearly free there) is about five times faster than
                # PostgreSQL 15's default, writing every block to the WAL. A shared
                # server (TEST_DATABASE_URL) keeps its own default.
                clause += " STRATEGY FILE_COPY"
            try:
                await conn.execute(text(f'CREATE DATABASE "{name}"{clause}'))
            except DBAPIError as exc:
                if getattr(exc.orig, "sqlstate", None) == "42501":  # insufficient_privilege
                    raise _Unavailable(
                        f"todo_data's fixtures cannot create databases on {self._admin.url.host} as "
                        f"{self._admin.url.username!r}: {driver_message(exc)}; the role needs CREATEDB "
                        "(ALTER ROLE ... CREATEDB; a Neon branch's owner has it)"
                    ) from None
                raise DatabaseOperationError(
                    f"todo_data's fixtures could not create the test database {name!r} on "
                    f"{self._admin.url.host}: {driver_message(exc)}",
                    sqlstate=getattr(exc.orig, "sqlstate", None),
                ) from None
        self._created.append(name)

    async def _seal(self, name: str, url: str) -> None:
        """Leave autovacuum nothing to do on the template, and no way in.

        ``CREATE DATABASE … TEMPLATE`` must be alone on its template: it stops an
        autovacuum worker it finds there and waits for it to go, a tenth of a second or
        more, and a freshly migrated database draws one after another (its statistics
        are missing). Vacuumed and analyzed, and closed to new connections (autovacuum
        then only enters to prevent wraparound), it draws none.
        """
        from sqlalchemy import text

        from todo_data.database import connect, create_engine

        engine = create_engine(url, isolation_level="AUTOCOMMIT")
        try:
            async with connect(engine) as conn:
                await conn.execute(text("VACUUM (FREEZE, ANALYZE)"))
        finally:
            await engine.dispose()
        assert self._admin is not None
        async with connect(self._admin) as conn:
            await conn.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false'))

    async def _drop(self, name: str) -> None:
        from todo_data.migrations._scratch import drop_database

        assert self._admin is not None
        try:
            await drop_database(self._admin, name)
        except Exception:  # still in _created: the session's end tries again, and reports a failure
            return
        self._created.remove(name)

    def sqlite_template(self) -> Path:
        """A migrated SQLite file, made once per process; each test gets a copy."""
        with self._lock:
            if self._sqlite_template is None:
                factory: pytest.TempPathFactory = self.config._tmp_path_factory  # type: ignore[attr-defined]
                path = factory.mktemp("todo-sqlite-template") / "template.db"
                self._call(_migrate, f"sqlite:///{path}")
                self._sqlite_template = path
            return self._sqlite_template

    # ------------------------------------------------------------------ cleanup

    def close(self) -> None:
        """Drop every database this process made (clones, session, template), stop the cluster."""
        if self._executor is None:
            return
        try:
            if self._admin is not None:
                self._call(self._close_admin)
        except Exception as exc:
            left = ", ".join(self._created) or "none"
            self.cleanup_problems.append(f"could not drop the test databases ({left}): {exc}")
        finally:
            self._executor.shutdown(wait=True)
            self._executor = None
            if self._server is not None and self._server.cluster is not None:
                self._server.cluster.stop()

    async def _close_admin(self) -> None:
        from todo_data.migrations._scratch import drop_database

        assert self._admin is not None
        try:
            # Clones first: a template cannot be dropped while it is being copied.
            for name in sorted(self._created, key=lambda name: name.endswith("_tpl")):
                await drop_database(self._admin, name)
                self._created.remove(name)
        finally:
            await self._admin.dispose()


#: The databases of one run: ``todo_test_<worker>_<8 hex digits>``, then ``_tpl``, ``_session``, ``_<n>``.
_RUN_NAME: Final = re.compile(rf"^({PREFIX}_[A-Za-z0-9]+_[0-9a-f]{{8}})(?:_\w+)?$")


def _copies_files(conn: Any) -> bool:
    """Whether ``CREATE DATABASE`` takes ``STRATEGY`` on this server (PostgreSQL 15 and newer)."""
    version = conn.dialect.server_version_info or (0,)
    return bool(version >= (15,))


#: The first key of the runs' advisory locks (the second is the hash of the run's name).
_LOCK_SPACE: Final = 0x746F646F  # "todo"
_TRY_LOCK: Final = "SELECT pg_try_advisory_lock(:space, hashtext(:run))"


def _hold_lock(dbapi_connection: Any, _record: Any, *, name: str) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"SELECT pg_advisory_lock({_LOCK_SPACE}, hashtext('{name}'))")
    finally:
        cursor.close()


class _Unavailable(Exception):
    """No server (or no CREATEDB): a skip, or a failure under ``CI=true``."""


async def _migrate(url: str) -> None:
    from todo_data import migrations
    from todo_data.database import create_engine

    engine = create_engine(url)
    try:
        await migrations.upgrade(engine, lock_timeout=0)
    finally:
        await engine.dispose()


# ---------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def todo_postgres(request: pytest.FixtureRequest) -> TodoPostgres:
    """The PostgreSQL server the other fixtures create their databases on.

    ``TEST_DATABASE_URL`` (or ``--todo-database-url``) when set: its role needs CREATEDB.
    Otherwise a throwaway cluster shaped like Neon (:func:`todo_data.testing.start_cluster`),
    one per process, stopped at the end. Without either, skipped with the reason (a
    failure under ``CI=true``).
    """
    return databases_of(request.config).server()


@pytest.fixture(scope="session")
def todo_database_url(request: pytest.FixtureRequest, todo_postgres: TodoPostgres) -> str:
    """A migrated PostgreSQL database of this process's own, for the whole session; dropped at the end."""
    return databases_of(request.config).session_database()


@async_fixture
async def todo_engine(request: pytest.FixtureRequest, todo_postgres: TodoPostgres) -> AsyncIterator[AsyncEngine]:
    """An engine on a new database cloned from the migrated template: migrated, empty, its own.

    The database is dropped after the test, whatever the test left connected to it.
    """
    from todo_data.database import create_engine

    databases = databases_of(request.config)
    name = await asyncio.to_thread(databases.clone)
    engine = create_engine(todo_postgres.database_url(name))
    try:
        yield engine
    finally:
        await engine.dispose()
        await asyncio.to_thread(databases.drop, name)


def _loop_scope(fixture_name: str, config: pytest.Config) -> _Scope:
    """The scope of pytest-asyncio's loop for fixtures: the session engine lives as long as it."""
    try:
        scope = config.getini("asyncio_default_fixture_loop_scope")
    except ValueError:  # pragma: no cover - pytest-asyncio is not installed
        return "function"
    return cast("_Scope", scope) if scope in _LOOP_SCOPES else "function"


@async_fixture(scope=_loop_scope)
async def _todo_session_engine(todo_database_url: str) -> AsyncIterator[AsyncEngine]:
    # Its connections belong to the event loop that opened them, so the engine lives
    # exactly as long as that loop: the whole session when the loop is session-scoped
    # (each test then reuses a connection), one test when it is function-scoped.
    from todo_data.database import create_engine

    engine = create_engine(todo_database_url)
    try:
        yield engine
    finally:
        await engine.dispose()


@async_fixture
async def todo_session(_todo_session_engine: AsyncEngine) -> AsyncIterator[AsyncSession]:
    """An ``AsyncSession`` on ``todo_database_url`` whose every change is rolled back after the test.

    The session runs inside an outer transaction; ``commit()`` and ``rollback()`` by the
    code under test only end a savepoint (SQLAlchemy's ``join_transaction_mode=
    "create_savepoint"``), so a test sees its own commits and the next test sees none of
    them. What runs on other connections (another engine, another session) is not inside
    the transaction: use ``todo_engine`` for that.
    """
    from sqlalchemy.ext.asyncio import AsyncSession

    from todo_data.database import is_connection_lost

    async with _todo_session_engine.connect() as conn:
        outer = await conn.begin()
        session = AsyncSession(bind=conn, join_transaction_mode="create_savepoint", expire_on_commit=False)
        try:
            yield session
        finally:
            try:
                await session.close()
                if outer.is_active:
                    await outer.rollback()
            except Exception as exc:
                # The test ended the connection (a terminated backend, a restarted server):
                # the server has rolled the transaction back already.
                if not is_connection_lost(exc):
                    raise
                await conn.invalidate()


@async_fixture
async def todo_sqlite_engine(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    """An engine on a migrated SQLite file of the test's own (a copy of one migrated once)."""
    from todo_data.database import create_engine

    template = await asyncio.to_thread(databases_of(request.config).sqlite_template)
    path = tmp_path / "todo.db"
    shutil.copyfile(template, path)
    engine = create_engine(f"sqlite:///{path}")
    try:
        yield engine
    finally:
        await engine.dispose()


# ---------------------------------------------------------------------------- --todo-migrations


def _single_head(databases: TodoDatabases) -> None:
    from todo_data.migrations import script_directory

    script = script_directory()
    heads = script.get_heads()
    if len(heads) != 1:
        _failed(f"the migrations in {script.dir} have {len(heads)} heads ({', '.join(heads)}): merge them into one")


def _roundtrip(databases: TodoDatabases) -> None:
    from todo_data import migrations

    frame = databases._call(_verify_roundtrip, databases.server().url)
    failed = frame[~frame["ok"]]
    if len(failed):
        lines = [f"{row.step}: {row.detail}" for row in failed.itertuples()]
        _failed("the migration round trip failed:\n" + "\n".join(lines))
    reached = frame["revision"].iloc[-1] if len(frame) else None
    if reached != migrations.head():
        _failed(f"the migration round trip ended at {reached!r}, not at the head {migrations.head()!r}")


async def _verify_roundtrip(url: str) -> Any:
    from todo_data import migrations

    return await migrations.verify_roundtrip(url, rows=ROUNDTRIP_ROWS)


def _no_drift(databases: TodoDatabases) -> None:
    name = databases.clone()
    try:
        frame = databases._call(_drift, databases.server().database_url(name))
    finally:
        databases.drop(name)
    if len(frame):
        lines = [f"{row.operation} {row.table}.{row.name}: {row.detail}" for row in frame.itertuples()]
        _failed("the migrated database does not match the model:\n" + "\n".join(lines))


async def _drift(url: str) -> Any:
    from todo_data import migrations
    from todo_data.database import create_engine

    engine = create_engine(url)
    try:
        return await migrations.drift(engine)
    finally:
        await engine.dispose()


def _lint(databases: TodoDatabases) -> None:
    from todo_data import migrations

    findings = migrations.lint()
    errors = findings[findings["severity"] == "error"]
    if len(errors):
        lines = [f"{row.revision} [{row.rule}] {row.message}" for row in errors.itertuples()]
        _failed("migration lint errors:\n" + "\n".join(lines))


def _failed(message: str) -> NoReturn:
    pytest.fail(message, pytrace=False)


#: The checks ``--todo-migrations`` adds, by name.
MIGRATION_CHECKS: Final[dict[str, Callable[[TodoDatabases], None]]] = {
    "single_head": _single_head,
    "roundtrip": _roundtrip,
    "no_drift": _no_drift,
    "lint": _lint,
}


class MigrationCheck(pytest.Item):
    """One of the ``--todo-migrations`` checks, reported as ``todo-migrations::<name>``."""

    def __init__(self, *, check: Callable[[TodoDatabases], None], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.check = check

    def runtest(self) -> None:
        self.check(databases_of(self.config))

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return Path(__file__), None, f"todo-migrations: {self.name}"


class MigrationChecks(pytest.Collector):
    """The parent of the ``--todo-migrations`` checks (no file holds them)."""

    def collect(self) -> list[MigrationCheck]:
        return [MigrationCheck.from_parent(self, name=name, check=check) for name, check in MIGRATION_CHECKS.items()]


@pytest.hookimpl(tryfirst=True)  # before -k and -m deselect
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    if not config.getoption("todo_migrations"):
        return
    checks = MigrationChecks.from_parent(session, name="todo-migrations", nodeid="todo-migrations")
    items.extend(checks.collect())
