"""Migrations wait a bounded time for locks, retry a few times, then name the session in the way."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import event, text
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from tests.helpers import PostgresServer, with_query
from todo_data import create_engine, migrations
from todo_data.database import target_of
from todo_data.errors import MigrationError
from todo_data.migrations import _locks
from todo_data.settings import get_settings


@pytest.fixture
async def at_first_revision(postgres_server: PostgresServer) -> str:
    """A new database migrated to 0001: the next upgrade (0002) needs a lock on tasks."""
    url = postgres_server.scratch_url()
    engine = create_engine(url)
    try:
        assert await migrations.upgrade(engine, "0001") == "0001"
    finally:
        await engine.dispose()
    return url


@pytest.fixture
async def blocker(at_first_revision: str) -> AsyncIterator[tuple[AsyncConnection, int]]:
    """Another client in the middle of a write transaction on tasks (it holds RowExclusiveLock)."""
    engine = create_engine(with_query(at_first_revision, application_name="blocker"))
    conn = await engine.connect()
    await conn.begin()
    await conn.execute(text("INSERT INTO tasks (id, user_id, title, status) VALUES (gen_random_uuid(), 'u', 't', 'x')"))
    pid = int((await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one())
    yield conn, pid
    await conn.close()
    await engine.dispose()


@pytest.fixture(params=["direct", "pooled"])
async def migrating(
    request: pytest.FixtureRequest, at_first_revision: str, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[AsyncEngine]:
    """An engine on the database at 0001: directly, or through PgBouncer with DATABASE_DIRECT_URL set."""
    url = at_first_revision
    if request.param == "pooled":
        pooled: str = request.getfixturevalue("pooled_url")
        url = make_url(pooled).set(database=make_url(url).database).render_as_string(hide_password=False)
        monkeypatch.setenv("DATABASE_URL", url)
        monkeypatch.setenv("DATABASE_POOLED", "true")
        monkeypatch.setenv("DATABASE_DIRECT_URL", at_first_revision)
        get_settings.cache_clear()
    engine = create_engine(url)
    assert target_of(engine).pooled == (request.param == "pooled")
    yield engine
    await engine.dispose()


@contextmanager
def trigger_attempts(url: str) -> Iterator[list[str]]:
    """Every CREATE TRIGGER sent to the database ``url`` names, by any engine, while the block runs."""
    attempts: list[str] = []
    database = make_url(url).database

    def seen(conn: Connection, _cursor: object, statement: str, *_: object) -> None:
        if statement.lstrip().startswith("CREATE TRIGGER") and conn.engine.url.database == database:
            attempts.append(statement)

    event.listen(Engine, "before_cursor_execute", seen)
    try:
        yield attempts
    finally:
        event.remove(Engine, "before_cursor_execute", seen)


async def test_a_held_lock_fails_after_bounded_retries_naming_the_holder_then_succeeds_once_released(
    migrating: AsyncEngine,
    blocker: tuple[AsyncConnection, int],
    at_first_revision: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_locks, "LOCK_RETRY_DELAY", 0.01)
    conn, pid = blocker
    with trigger_attempts(at_first_revision) as attempts, pytest.raises(MigrationError) as exc:
        await migrations.upgrade(migrating, lock_timeout=0.2)
    message = str(exc.value)
    assert len(attempts) == migrations.LOCK_RETRIES + 1
    assert "a lock was not available" in message
    assert f"session pid {pid}" in message and "'blocker'" in message
    assert "idle in transaction since" in message and "RowExclusiveLock on tasks" in message
    assert "The database is still at 0001" in message
    assert "\n" not in message and str(make_url(at_first_revision).password) not in message
    assert await migrations.current(migrating) == "0001"

    await conn.rollback()
    assert await migrations.upgrade(migrating, lock_timeout=0.2) == "0002"


async def test_the_migration_leaves_the_connections_lock_timeout_as_it_was(at_first_revision: str) -> None:
    engine = create_engine(at_first_revision, pool_size=1)
    try:
        await migrations.upgrade(engine, lock_timeout=3)
        async with engine.connect() as conn:
            assert (await conn.execute(text("SHOW lock_timeout"))).scalar_one() == "0"
    finally:
        await engine.dispose()


async def test_lock_timeout_zero_waits_as_long_as_it_takes(at_first_revision: str) -> None:
    engine = create_engine(at_first_revision)
    seen: list[str] = []

    def show(conn: Connection, _cursor: object, statement: str, *_: object) -> None:
        if statement.lstrip().startswith("CREATE TRIGGER"):
            seen.append(str(conn.exec_driver_sql("SHOW lock_timeout").scalar()))

    event.listen(engine.sync_engine, "after_cursor_execute", show)
    try:
        assert await migrations.upgrade(engine, lock_timeout=0) == "0002"
    finally:
        await engine.dispose()
    assert seen == ["0"]


async def test_a_read_only_role_gets_one_line_saying_migrations_need_an_owner(
    postgres_server: PostgresServer, at_first_revision: str
) -> None:
    cluster = postgres_server.cluster
    if cluster is None:
        pytest.skip("creating a role needs the throwaway cluster")
    database = make_url(at_first_revision).database
    password = cluster.password.replace("'", "''")
    cluster.psql(f"CREATE ROLE reader_{database} LOGIN PASSWORD '{password}'")
    cluster.psql(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO reader_{database}", database=str(database))
    reader = create_engine(cluster.url(str(database), user=f"reader_{database}"))
    try:
        with pytest.raises(MigrationError) as exc:
            await migrations.upgrade(reader)
        assert await migrations.current(reader) == "0001"
    finally:
        await reader.dispose()
    message = str(exc.value)
    assert "permission denied" in message and "need a role that owns the tables" in message
    assert "\n" not in message and cluster.password not in message


async def test_each_wait_for_a_lock_is_reported_with_its_holder_and_the_next_retry(
    at_first_revision: str, blocker: tuple[AsyncConnection, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_locks, "LOCK_RETRY_DELAY", 0.01)
    _conn, pid = blocker
    said: list[str] = []
    engine = create_engine(at_first_revision)
    try:
        with pytest.raises(MigrationError) as exc:
            await migrations.upgrade(engine, lock_timeout=0.2, progress=said.append)
    finally:
        await engine.dispose()
    assert len(said) == migrations.LOCK_RETRIES  # one per retry; the last attempt ends in the error
    for retry, line in enumerate(said, start=1):
        assert line.startswith(
            f"waiting for a lock on tasks held by pid {pid} (application blocker, idle in transaction"
        )
        assert line.endswith(f"; retry {retry} of {migrations.LOCK_RETRIES} in {0.01 * 2 ** (retry - 1):g} s")
    # In Python, the hint names the argument; the command names its option (tests/e2e/test_cli_migrate.py).
    assert "lock_timeout= or DATABASE_LOCK_TIMEOUT" in str(exc.value) and "--lock-timeout" not in str(exc.value)
