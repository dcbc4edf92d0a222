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
its own working directory, with an empty ``.env`` above it, without PG* variables and
with libpq's password and service files pointed at nothing, so neither the developer's
environment, their ``.env``, ``~/.pgpass`` nor ``~/.pg_service.conf`` can change an outcome.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.helpers import (
    PostgresServer,
    ReplicaServer,
    neon_pooled_url,
    server_settings,
    unavailable,
    wait_for_replay,
)
from todo_data import migrations
from todo_data.database import create_engine
from todo_data.errors import SettingsError
from todo_data.pytest_plugin import TodoPostgres
from todo_data.settings import get_settings
from todo_data.testing import (
    ClusterUnavailable,
    start_pgbouncer,
    start_standby,
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
        url = server_settings().url
    except SettingsError as exc:
        raise pytest.UsageError(str(exc)) from None
    # The plugin's fixtures (todo_postgres …) use the same server, from .env too.
    session.config.option.todo_database_url = session.config.option.todo_database_url or url


@pytest.fixture(scope="session", autouse=True)
def _dotenv_boundary(tmp_path_factory: pytest.TempPathFactory) -> None:
    """An empty ``.env`` above every test's directory: the upward search stops there."""
    (tmp_path_factory.getbasetemp() / ".env").write_text("")


@pytest.fixture(autouse=True)
def _isolated_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """Each test reads settings from its own clean environment, not the developer's."""
    for name in list(os.environ):
        if name.startswith(("DATABASE_", "TEST_DATABASE_", "PG")):
            monkeypatch.delenv(name)
    # libpq's files too: no ~/.pgpass or service file of the developer's is read.
    monkeypatch.setenv("PGPASSFILE", str(tmp_path / "no.pgpass"))
    monkeypatch.setenv("PGSERVICEFILE", str(tmp_path / "no_pg_service.conf"))
    monkeypatch.setenv("PGSYSCONFDIR", str(tmp_path / "no-sysconfdir"))
    monkeypatch.chdir(tmp_path)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture(scope="session")
def postgres_server(request: pytest.FixtureRequest) -> Iterator[PostgresServer]:
    """``TEST_DATABASE_URL``, else the throwaway cluster of the plugin's ``todo_postgres``.

    One cluster per process serves both these fixtures and the plugin's (``todo_engine``
    clones its databases there); the plugin stops it when the session ends.
    """
    url = server_settings().url
    if url:
        server = PostgresServer(url=url)
        try:
            yield server
        finally:
            server.drop_scratch_databases()
        return
    postgres: TodoPostgres = request.getfixturevalue("todo_postgres")
    yield PostgresServer(url=postgres.url, cluster=postgres.cluster)  # its scratch databases go with it


@pytest.fixture(scope="session")
def pooled_url(postgres_server: PostgresServer) -> Iterator[str]:
    """The pooled endpoint (PgBouncer, transaction mode) in front of the test database."""
    if postgres_server.cluster is None:
        url = server_settings().pooled_url or neon_pooled_url(postgres_server.url)
        if not url:
            unavailable(
                "pooled endpoint",
                "set TEST_DATABASE_POOLED_URL to the pooled endpoint of TEST_DATABASE_URL "
                "(derived only for Neon hosts)",
            )
        yield url
        return
    try:
        bouncer = start_pgbouncer(postgres_server.cluster)
    except ClusterUnavailable as exc:
        unavailable("PgBouncer", exc)
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


# ---------------------------------------------------------------------------- read replica
# A read replica of the test database: TEST_DATABASE_READ_URL (and its pooled endpoint,
# TEST_DATABASE_READ_POOLED_URL, derived for Neon hosts) with TEST_DATABASE_URL, else a
# hot standby of the throwaway cluster (pg_basebackup -R, TLS + SCRAM) with PgBouncer in
# front of it too. Without a replica the replica tests skip with the reason, except in CI,
# where they fail.


@pytest.fixture(scope="session")
def replica_server(postgres_server: PostgresServer) -> Iterator[ReplicaServer]:
    if postgres_server.cluster is None:
        url = server_settings().read_url
        if not url:
            unavailable("a read replica", "set TEST_DATABASE_READ_URL to a read replica of TEST_DATABASE_URL")
        yield ReplicaServer(url=url)
        return
    try:
        standby = start_standby(postgres_server.cluster)
    except ClusterUnavailable as exc:
        unavailable("a PostgreSQL standby", exc)
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
            unavailable(
                "a pooled read replica",
                "set TEST_DATABASE_READ_POOLED_URL to the pooled endpoint of TEST_DATABASE_READ_URL "
                "(derived only for Neon hosts)",
            )
        yield url
        return
    try:
        bouncer = start_pgbouncer(replica_server.standby.server)
    except ClusterUnavailable as exc:
        unavailable("PgBouncer", exc)
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
