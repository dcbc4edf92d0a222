"""Shared fixtures: SQLite engines, and a real PostgreSQL shaped like Neon.

PostgreSQL comes from ``TEST_DATABASE_URL`` when it is set (e.g. a Neon branch: the
tests truncate its tasks table and create scratch databases beside it, which its role
needs CREATEDB for, as a Neon branch owner has), otherwise from a throwaway cluster with
PgBouncer in transaction mode in front of it, started once for the session (see
:mod:`todo_data.testing`). The pooled endpoint is ``TEST_DATABASE_POOLED_URL``, else
derived for a Neon host (``-pooler``). Whatever is missing makes its tests skip with the
reason, except in CI (``CI=true``), where that is a failure. Schemas are always built by
running the migrations.

``TEST_DATABASE_URL`` and ``TEST_DATABASE_POOLED_URL`` are read once, when the session
starts; then every test runs without any ``DATABASE_*``/``TEST_DATABASE_*`` variable, in
its own working directory, with an empty ``.env`` above it, so neither the developer's
environment nor their ``.env`` can change an outcome.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import NoReturn

import pytest
from sqlalchemy import text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import NullPool

from todo_data import migrations, run
from todo_data._scratch import drop_database
from todo_data.database import connect, create_engine
from todo_data.errors import DatabaseConnectionError, SettingsError, driver_message
from todo_data.settings import DEFAULT_DATABASE_URL, get_settings, load_settings
from todo_data.testing import (
    ClusterUnavailable,
    PostgresCluster,
    Standby,
    start_cluster,
    start_pgbouncer,
    start_standby,
)
from todo_data.urls import is_neon_pooler_host

REPO_ROOT = Path(__file__).resolve().parent.parent


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def _unavailable(what: str, reason: object) -> NoReturn:
    """Skip with the reason, or fail in CI: a missing server never passes silently there."""
    if in_ci():
        pytest.fail(f"CI needs {what} for the integration tests: {reason}")
    pytest.skip(f"no {what} for integration tests: {reason}")


@dataclass(frozen=True)
class ServerSettings:
    """``TEST_DATABASE_URL``, ``TEST_DATABASE_POOLED_URL`` and the replica's ``TEST_DATABASE_READ_*``."""

    url: str | None
    pooled_url: str | None
    read_url: str | None = None
    read_pooled_url: str | None = None


@lru_cache(maxsize=1)
def server_settings() -> ServerSettings:
    """Read once, before any test hides the variables (see :func:`_isolated_settings`)."""
    # The DATABASE_* settings are the application's, not the tests': a broken one of the
    # developer's must not stop the test server from being found.
    settings = load_settings(
        database_url=DEFAULT_DATABASE_URL,
        database_pooled=None,
        database_direct_url=None,
        database_statement_timeout=None,
        database_read_url=None,
        database_read_pooled=None,
    )
    return ServerSettings(
        url=settings.test_database_url,
        pooled_url=settings.test_database_pooled_url,
        read_url=settings.test_database_read_url,
        read_pooled_url=settings.test_database_read_pooled_url,
    )


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """``-n auto`` (pyproject's addopts): up to four workers, each with its own cluster.

    A shared ``TEST_DATABASE_URL`` gets one process: workers would truncate the same
    tasks table under each other.
    """
    try:
        shared = server_settings().url is not None
    except SettingsError:
        return 0  # pytest_sessionstart turns it into a usage error
    return 0 if shared else max(1, min(4, os.cpu_count() or 1))


def pytest_sessionstart(session: pytest.Session) -> None:
    try:
        server_settings()
    except SettingsError as exc:
        raise pytest.UsageError(str(exc)) from None


def neon_pooled_url(url: str) -> str | None:
    """The pooled endpoint of a Neon URL (``ep-x`` → ``ep-x-pooler``); None for other hosts."""
    parsed = make_url(url)
    host = parsed.host or ""
    label, _, rest = host.partition(".")
    if not (label.startswith("ep-") and host.endswith(".neon.tech")):
        return None
    pooled = label if is_neon_pooler_host(host) else f"{label}-pooler"
    return parsed.set(host=f"{pooled}.{rest}").render_as_string(hide_password=False)


@dataclass
class PostgresServer:
    """The PostgreSQL the integration tests use."""

    url: str
    cluster: PostgresCluster | None = None
    scratch_databases: list[str] = field(default_factory=list)

    def scratch_url(self) -> str:
        """A new empty database beside ``url``, owned by its role; dropped when the session ends.

        Created by the role itself (which needs CREATEDB), so it works the same on the
        throwaway cluster and on a Neon branch.
        """
        name = f"scratch_{uuid.uuid4().hex[:12]}"
        try:
            run(self._admin(f'CREATE DATABASE "{name}"'))
        except DBAPIError as exc:
            _unavailable("scratch databases", f"{driver_message(exc)} (the role of TEST_DATABASE_URL needs CREATEDB)")
        self.scratch_databases.append(name)
        return make_url(self.url).set(database=name).render_as_string(hide_password=False)

    def drop_scratch_databases(self) -> None:
        run(self._drop_scratch_databases())

    async def _drop_scratch_databases(self) -> None:
        engine = self._admin_engine()
        try:
            while self.scratch_databases:
                # The library's drop: it ends the connections a test left open and waits
                # out the autovacuum workers the role may not end.
                await drop_database(engine, self.scratch_databases.pop())
        finally:
            await engine.dispose()

    def _admin_engine(self) -> AsyncEngine:
        # CREATE/DROP DATABASE cannot run inside a transaction block.
        return create_engine(self.url, poolclass=NullPool, isolation_level="AUTOCOMMIT")

    async def _admin(self, statement: str) -> None:
        engine = self._admin_engine()
        try:
            async with engine.connect() as conn:
                await conn.execute(text(statement))
        finally:
            await engine.dispose()


@pytest.fixture(scope="session", autouse=True)
def _dotenv_boundary(tmp_path_factory: pytest.TempPathFactory) -> None:
    """An empty ``.env`` above every test's directory: the upward search stops there."""
    (tmp_path_factory.getbasetemp() / ".env").write_text("")


@pytest.fixture(autouse=True)
def _isolated_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """Each test reads settings from its own clean environment, not the developer's."""
    for name in list(os.environ):
        if name.startswith(("DATABASE_", "TEST_DATABASE_")):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    url = server_settings().url
    if url:
        server = PostgresServer(url=url)
        try:
            yield server
        finally:
            server.drop_scratch_databases()
        return
    try:
        cluster = start_cluster()
    except ClusterUnavailable as exc:
        _unavailable("PostgreSQL", exc)
    try:
        yield PostgresServer(url=cluster.url(), cluster=cluster)
    finally:
        cluster.stop()  # its scratch databases go with it


@pytest.fixture(scope="session")
def pooled_url(postgres_server: PostgresServer) -> Iterator[str]:
    """The pooled endpoint (PgBouncer, transaction mode) in front of the test database."""
    if postgres_server.cluster is None:
        url = server_settings().pooled_url or neon_pooled_url(postgres_server.url)
        if not url:
            _unavailable(
                "pooled endpoint",
                "set TEST_DATABASE_POOLED_URL to the pooled endpoint of TEST_DATABASE_URL "
                "(derived only for Neon hosts)",
            )
        yield url
        return
    try:
        bouncer = start_pgbouncer(postgres_server.cluster)
    except ClusterUnavailable as exc:
        _unavailable("PgBouncer", exc)
    try:
        yield bouncer.url()
    finally:
        bouncer.stop()


@pytest.fixture(scope="session")
async def _migrated_postgres(postgres_server: PostgresServer) -> str:
    engine = create_engine(postgres_server.url)
    try:
        await migrations.upgrade(engine)
    finally:
        await engine.dispose()
    return postgres_server.url


@pytest.fixture
async def pg_engine(_migrated_postgres: str) -> AsyncIterator[AsyncEngine]:
    """An engine on the migrated test database, with an empty tasks table."""
    engine = create_engine(_migrated_postgres)
    async with engine.begin() as conn:
        await conn.execute(text("TRUNCATE tasks"))
    yield engine
    await engine.dispose()


@pytest.fixture
async def pooled_engine(_migrated_postgres: str, pooled_url: str) -> AsyncIterator[AsyncEngine]:
    """An engine through the pooled endpoint (pooled mode on), on the same empty tasks table."""
    engine = create_engine(pooled_url, pooled=True)
    async with engine.begin() as conn:
        await conn.execute(text("TRUNCATE tasks"))
    yield engine
    await engine.dispose()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'tasks.db'}"


@pytest.fixture
async def sqlite_engine(sqlite_url: str) -> AsyncIterator[AsyncEngine]:
    """An engine on a new SQLite file, migrated to head."""
    engine = create_engine(sqlite_url)
    await migrations.upgrade(engine)
    yield engine
    await engine.dispose()


ENGINE_FIXTURES = {"sqlite": "sqlite_engine", "postgresql": "pg_engine", "pgbouncer": "pooled_engine"}


@pytest.fixture(params=list(ENGINE_FIXTURES))
def engine(request: pytest.FixtureRequest) -> AsyncEngine:
    """The same test on SQLite, on PostgreSQL directly and through the pooled endpoint."""
    result: AsyncEngine = request.getfixturevalue(ENGINE_FIXTURES[request.param])
    return result


@pytest.fixture(params=["postgresql", "pgbouncer"])
def postgres_engine(request: pytest.FixtureRequest) -> AsyncEngine:
    """The same test on PostgreSQL directly and through the pooled endpoint."""
    result: AsyncEngine = request.getfixturevalue(ENGINE_FIXTURES[request.param])
    return result


def with_query(url: str, **params: str) -> str:
    """``url`` with query parameters added or replaced (password kept)."""
    return make_url(url).update_query_dict(params).render_as_string(hide_password=False)


async def connect_failure(url: str | URL) -> DatabaseConnectionError:
    """The error a connect to ``url`` fails with (the test fails if it connects)."""
    engine = create_engine(url)
    try:
        with pytest.raises(DatabaseConnectionError) as exc:
            async with connect(engine):
                pass
    finally:
        await engine.dispose()
    return exc.value


def alembic_cli(*args: str, url: str) -> subprocess.CompletedProcess[str]:
    """The ``alembic`` command run from the repository root on ``url``."""
    return subprocess.run(
        [sys.executable, "-m", "alembic", *args],
        cwd=REPO_ROOT,
        env={**os.environ, "DATABASE_URL": url},
        capture_output=True,
        text=True,
        check=False,
    )


# ---------------------------------------------------------------------------- read replica
# A read replica of the test database: TEST_DATABASE_READ_URL (and its pooled endpoint,
# TEST_DATABASE_READ_POOLED_URL, derived for Neon hosts) with TEST_DATABASE_URL, else a
# hot standby of the throwaway cluster (pg_basebackup -R, TLS + SCRAM) with PgBouncer in
# front of it too. Without a replica the replica tests skip with the reason, except in CI,
# where they fail.


@dataclass
class ReplicaServer:
    """The read replica the replica tests use."""

    url: str
    standby: Standby | None = None

    def superuser(self) -> Standby:
        """The throwaway standby, for what needs its superuser (pausing replay)."""
        if self.standby is None:
            pytest.skip("pausing replay needs the throwaway standby's superuser, not TEST_DATABASE_READ_URL")
        return self.standby


@pytest.fixture(scope="session")
def replica_server(postgres_server: PostgresServer) -> Iterator[ReplicaServer]:
    if postgres_server.cluster is None:
        url = server_settings().read_url
        if not url:
            _unavailable("a read replica", "set TEST_DATABASE_READ_URL to a read replica of TEST_DATABASE_URL")
        yield ReplicaServer(url=url)
        return
    try:
        standby = start_standby(postgres_server.cluster)
    except ClusterUnavailable as exc:
        _unavailable("a PostgreSQL standby", exc)
    try:
        yield ReplicaServer(url=standby.url(), standby=standby)
    finally:
        standby.stop()


@pytest.fixture(scope="session")
def replica_pooled_url(replica_server: ReplicaServer) -> Iterator[str]:
    """The replica's pooled endpoint (PgBouncer, transaction mode)."""
    if replica_server.standby is None:
        url = server_settings().read_pooled_url or neon_pooled_url(replica_server.url)
        if not url:
            _unavailable(
                "a pooled read replica",
                "set TEST_DATABASE_READ_POOLED_URL to the pooled endpoint of TEST_DATABASE_READ_URL "
                "(derived only for Neon hosts)",
            )
        yield url
        return
    try:
        bouncer = start_pgbouncer(replica_server.standby.server)
    except ClusterUnavailable as exc:
        _unavailable("PgBouncer", exc)
    try:
        yield bouncer.url()
    finally:
        bouncer.stop()


@pytest.fixture
async def direct_replica_engine(replica_server: ReplicaServer, pg_engine: AsyncEngine) -> AsyncIterator[AsyncEngine]:
    """An engine on the replica, which has replayed ``pg_engine``'s emptied tasks table."""
    engine = create_engine(replica_server.url)
    await wait_for_replay(pg_engine, engine)
    yield engine
    await engine.dispose()


@pytest.fixture
async def pooled_replica_engine(replica_pooled_url: str, pg_engine: AsyncEngine) -> AsyncIterator[AsyncEngine]:
    """An engine through the replica's pooled endpoint (pooled mode on), caught up."""
    engine = create_engine(replica_pooled_url, pooled=True)
    await wait_for_replay(pg_engine, engine)
    yield engine
    await engine.dispose()


@pytest.fixture(params=["replica", "replica-pgbouncer"])
def replica_engine(request: pytest.FixtureRequest) -> AsyncEngine:
    """The same test on the replica directly and through its pooled endpoint."""
    fixture = {"replica": "direct_replica_engine", "replica-pgbouncer": "pooled_replica_engine"}[request.param]
    result: AsyncEngine = request.getfixturevalue(fixture)
    return result


async def wait_for_replay(primary: AsyncEngine, replica: AsyncEngine, *, timeout: float = 30.0) -> None:
    """Wait until ``replica`` has replayed everything ``primary`` has written so far.

    The primary's WAL insert position, not ``pg_current_wal_lsn()``: with asynchronous
    commit a finished transaction's commit record may not be written out yet.
    """
    async with primary.connect() as conn:
        target = (await conn.execute(text("SELECT pg_current_wal_insert_lsn()::text"))).scalar_one()
    deadline = asyncio.get_running_loop().time() + timeout
    query = text("SELECT coalesce(pg_last_wal_replay_lsn() >= CAST(CAST(:target AS text) AS pg_lsn), false)")
    while True:
        async with replica.connect() as conn:
            if (await conn.execute(query, {"target": target})).scalar_one():
                return
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"the replica did not replay the primary's writes (up to {target}) within {timeout} s")
        await asyncio.sleep(0.05)
