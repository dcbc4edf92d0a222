"""Shared fixtures: SQLite engines, and a real PostgreSQL shaped like Neon.

PostgreSQL comes from ``TEST_DATABASE_URL`` when it is set (e.g. a Neon branch: the
tests truncate its tasks table; ``TEST_DATABASE_POOLED_URL`` names its pooled
endpoint), otherwise from a throwaway cluster with PgBouncer in transaction mode in
front of it, started once for the session (see :mod:`todo_data.testing`). Without
either, PostgreSQL tests are skipped with the reason, except in CI (``CI=true``), where
that is a failure. Schemas are always built by running the migrations.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from todo_data import migrations
from todo_data.database import connect, create_engine
from todo_data.errors import DatabaseConnectionError
from todo_data.settings import get_settings
from todo_data.testing import (
    ClusterUnavailable,
    PgBouncer,
    PostgresCluster,
    Standby,
    start_cluster,
    start_pgbouncer,
    start_standby,
)

REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass
class PostgresServer:
    """The PostgreSQL the integration tests use."""

    url: str
    cluster: PostgresCluster | None = None

    def scratch_url(self) -> str:
        """A new empty database (throwaway cluster only)."""
        if self.cluster is None:
            pytest.skip("scratch databases need the throwaway cluster, not TEST_DATABASE_URL")
        return self.cluster.create_database(f"scratch_{uuid.uuid4().hex[:12]}")


@pytest.fixture(autouse=True)
def _isolated_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """Each test reads settings from its own clean environment, not the developer's .env."""
    for name in ("DATABASE_URL", "DATABASE_POOLED", "DATABASE_DIRECT_URL", "DATABASE_STATEMENT_TIMEOUT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def _unavailable(what: str, exc: Exception) -> None:
    if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
        pytest.fail(f"CI needs {what} for the integration tests: {exc}")
    pytest.skip(f"no {what} for integration tests: {exc}")


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    url = get_settings().test_database_url  # the environment or .env
    if url:
        yield PostgresServer(url=url)
        return
    try:
        cluster = start_cluster()
    except ClusterUnavailable as exc:
        _unavailable("PostgreSQL", exc)
        raise
    try:
        yield PostgresServer(url=cluster.url(), cluster=cluster)
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def pooled_url(postgres_server: PostgresServer) -> Iterator[str]:
    """The pooled endpoint (PgBouncer, transaction mode) in front of the test database."""
    if postgres_server.cluster is None:
        url = get_settings().test_database_pooled_url
        if not url:
            pytest.skip("set TEST_DATABASE_POOLED_URL to test the pooled endpoint of TEST_DATABASE_URL")
        yield url
        return
    bouncer: PgBouncer | None = None
    try:
        bouncer = start_pgbouncer(postgres_server.cluster)
    except ClusterUnavailable as exc:
        _unavailable("PgBouncer", exc)
        raise
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
# A read replica of the test database: TEST_DATABASE_READ_URL (and
# TEST_DATABASE_READ_POOLED_URL) with TEST_DATABASE_URL, else a hot standby of the
# throwaway cluster (pg_basebackup -R, TLS + SCRAM) with PgBouncer in front of it too.
# Without a replica the replica tests skip with the reason, except in CI, where they fail.


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


@pytest.fixture(autouse=True)
def _no_read_replica_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reads the developer's replica settings by accident."""
    for name in ("DATABASE_READ_URL", "DATABASE_READ_POOLED"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session")
def replica_server(postgres_server: PostgresServer) -> Iterator[ReplicaServer]:
    if postgres_server.cluster is None:
        url = get_settings().test_database_read_url
        if not url:
            _unavailable(
                "a read replica", ClusterUnavailable("set TEST_DATABASE_READ_URL to a replica of TEST_DATABASE_URL")
            )
        assert url is not None
        yield ReplicaServer(url=url)
        return
    try:
        standby = start_standby(postgres_server.cluster)
    except ClusterUnavailable as exc:
        _unavailable("a PostgreSQL standby", exc)
        raise
    try:
        yield ReplicaServer(url=standby.url(), standby=standby)
    finally:
        standby.stop()


@pytest.fixture(scope="session")
def replica_pooled_url(replica_server: ReplicaServer) -> Iterator[str]:
    """The replica's pooled endpoint (PgBouncer, transaction mode)."""
    if replica_server.standby is None:
        url = get_settings().test_database_read_pooled_url
        if not url:
            _unavailable(
                "a pooled read replica", ClusterUnavailable("set TEST_DATABASE_READ_POOLED_URL to the replica's pooler")
            )
        assert url is not None
        yield url
        return
    bouncer: PgBouncer | None = None
    try:
        bouncer = start_pgbouncer(replica_server.standby.server)
    except ClusterUnavailable as exc:
        _unavailable("PgBouncer", exc)
        raise
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
