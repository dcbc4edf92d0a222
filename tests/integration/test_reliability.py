"""Neon-grade reliability, proven against the Neon-like harness (TLS, SCRAM, PgBouncer).

Covers the pooled endpoint, dropped connections and restarts, read-only analysis with a
statement timeout, concurrency, and connection strings as users paste them.
"""

from __future__ import annotations

import asyncio
import ssl
import uuid

import pytest
from sqlalchemy import func, select, text, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.helpers import PostgresServer, connect_failure, with_query
from todo_data import Task, TaskStatus, create_engine, get_settings, migrations, sample, session_scope
from todo_data.database import connect, is_transient_connect_error, sessionmaker, target_of
from todo_data.errors import DatabaseOperationError, MigrationError

table = Task.__table__  # type: ignore[attr-defined]
CONCURRENT_SESSIONS = 50
ROWS_PER_SESSION = 20


async def count(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(text("SELECT count(*) FROM tasks"))).scalar_one())


async def repeated_and_concurrent_queries(engine: AsyncEngine) -> list[int]:
    async def one(i: int) -> int:
        async with engine.connect() as conn:
            result = await conn.execute(select(func.count()).select_from(table).where(table.c.title != str(i)))
            return int(result.scalar_one())

    results: list[int] = []
    for _ in range(3):
        results += await asyncio.gather(*(one(i) for i in range(30)))
    return results


async def test_pooled_mode_makes_repeated_and_concurrent_queries_work_through_pgbouncer(
    pooled_engine: AsyncEngine,
) -> None:
    assert await repeated_and_concurrent_queries(pooled_engine) == [0] * 90


async def test_without_pooled_mode_pgbouncer_breaks_prepared_statements(
    pooled_engine: AsyncEngine, pooled_url: str
) -> None:
    # The harness reproduces the bug that pooled mode fixes.
    naive = create_engine(pooled_url, pooled=False)
    try:
        with pytest.raises(DBAPIError, match=r"prepared statement .* (does not exist|already exists)"):
            await repeated_and_concurrent_queries(naive)
    finally:
        await naive.dispose()


async def test_fifty_concurrent_sessions_lose_and_corrupt_nothing(postgres_engine: AsyncEngine) -> None:
    engine = postgres_engine

    async def worker(n: int) -> None:
        ids = []
        async with session_scope(engine) as session:
            tasks = [
                Task(user_id=f"user-{n}", title=f"task {n}-{i}", description="é" * i) for i in range(ROWS_PER_SESSION)
            ]
            session.add_all(tasks)
            ids = [t.id for t in tasks]
        async with session_scope(engine) as session:
            for task_id in ids[::2]:
                task = await session.get(Task, task_id)
                assert task is not None
                task.status = TaskStatus.COMPLETED
                task.title = task.title + " (done)"

    await asyncio.gather(*(worker(n) for n in range(CONCURRENT_SESSIONS)))
    async with sessionmaker(engine)() as session:
        tasks = (await session.execute(select(Task))).scalars().all()
    assert len(tasks) == CONCURRENT_SESSIONS * ROWS_PER_SESSION
    for task in tasks:
        n, i = map(int, task.title.split()[1].split("-"))
        assert task.user_id == f"user-{n}" and task.description == "é" * i
        done = i % 2 == 0
        assert task.status == (TaskStatus.COMPLETED if done else TaskStatus.PENDING)
        assert task.title.endswith(" (done)") == done
        assert task.updated_at >= task.created_at


async def test_a_batch_with_one_invalid_row_stores_none_of_it(postgres_engine: AsyncEngine) -> None:
    engine = postgres_engine
    rows = [{"id": uuid.uuid4(), "user_id": "u", "title": f"t{i}", "status": "pending"} for i in range(100)]
    rows[57]["title"] = "   "
    with pytest.raises(IntegrityError, match="ck_tasks_title_not_empty"):
        async with engine.begin() as conn:
            await conn.execute(table.insert(), rows)
    assert await count(engine) == 0


async def terminate_all_backends(server: PostgresServer) -> int:
    assert server.cluster is not None
    killed = server.cluster.psql(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
        "WHERE datname IS NOT NULL AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
    )
    return int(killed)


async def test_next_call_works_after_every_backend_is_terminated(
    postgres_engine: AsyncEngine, postgres_server: PostgresServer
) -> None:
    if postgres_server.cluster is None:
        pytest.skip("needs the local cluster's superuser")
    engine = postgres_engine
    await asyncio.gather(*(count(engine) for _ in range(5)))  # fill the pool
    assert await terminate_all_backends(postgres_server) >= 1
    assert await count(engine) == 0
    async with session_scope(engine) as session:
        session.add(Task(user_id="u", title="after the suspend"))
    assert await count(engine) == 1


async def test_next_call_works_after_a_server_restart(
    pg_engine: AsyncEngine, pooled_engine: AsyncEngine, postgres_server: PostgresServer
) -> None:
    if postgres_server.cluster is None:
        pytest.skip("needs the local cluster")
    for engine in (pg_engine, pooled_engine):
        await asyncio.gather(*(count(engine) for _ in range(3)))
    postgres_server.cluster.restart()
    for engine in (pg_engine, pooled_engine):
        assert await count(engine) == 0


async def test_constraint_errors_are_not_retried(pg_engine: AsyncEngine) -> None:
    attempts = 0

    async def insert_blank() -> None:
        nonlocal attempts
        attempts += 1
        async with session_scope(pg_engine) as session:
            await session.execute(table.insert().values(id=uuid.uuid4(), user_id="u", title=" ", status="pending"))

    with pytest.raises(IntegrityError):
        await insert_blank()
    assert attempts == 1 and await count(pg_engine) == 0


@pytest.mark.parametrize("endpoint_url", ["direct", "pooled"])
async def test_read_only_engine_refuses_every_write_and_reads_fine(
    pg_engine: AsyncEngine, postgres_server: PostgresServer, pooled_url: str, endpoint_url: str
) -> None:
    url = postgres_server.url if endpoint_url == "direct" else pooled_url
    reader = create_engine(url, read_only=True, pooled=endpoint_url == "pooled")
    writes = [
        table.insert().values(id=uuid.uuid4(), user_id="u", title="t", status="pending"),
        update(table).values(title="x"),
        table.delete(),
        text("CREATE TABLE sneaky (id int)"),
    ]
    try:
        for statement in writes:
            with pytest.raises(DBAPIError, match="read-only transaction"):
                async with reader.begin() as conn:
                    await conn.execute(statement)
        assert await repeated_and_concurrent_queries(reader) == [0] * 90
    finally:
        await reader.dispose()


@pytest.mark.parametrize("endpoint_url", ["direct", "pooled"])
async def test_statement_timeout_cancels_a_runaway_query(
    pg_engine: AsyncEngine, postgres_server: PostgresServer, pooled_url: str, endpoint_url: str
) -> None:
    url = postgres_server.url if endpoint_url == "direct" else pooled_url
    reader = create_engine(url, read_only=True, pooled=endpoint_url == "pooled", statement_timeout=0.2)
    try:
        with pytest.raises(DBAPIError, match="canceling statement due to statement timeout"):
            async with reader.connect() as conn:
                await conn.execute(text("SELECT pg_sleep(30)"))
        assert await count(reader) == 0  # the engine is still usable
    finally:
        await reader.dispose()


async def test_statement_timeout_comes_from_the_settings_for_the_default_engine(
    pg_engine: AsyncEngine, postgres_server: PostgresServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", postgres_server.url)
    monkeypatch.setenv("DATABASE_STATEMENT_TIMEOUT", "0.1")
    get_settings.cache_clear()
    engine = create_engine()
    try:
        with pytest.raises(DBAPIError, match="statement timeout"):
            async with engine.connect() as conn:
                await conn.execute(text("SELECT pg_sleep(30)"))
    finally:
        await engine.dispose()


@pytest.mark.parametrize(
    "params",
    [
        {"sslmode": "require", "channel_binding": "require"},
        {"sslmode": "prefer"},
        {"sslmode": "require", "options": "endpoint=ep-cool-darkness-123456"},
        {"sslmode": "require", "connect_timeout": "5"},
        {"sslmode": "verify-full", "sslrootcert": "CERT"},
        {"sslmode": "verify-ca", "sslrootcert": "CERT"},
        {"sslmode": "require", "sslrootcert": "CERT"},
        {"ssl": "require"},
        {"ssl": "verify-full", "sslrootcert": "CERT"},
        {"ssl": "true", "sslrootcert": "CERT"},
    ],
    ids=[
        "channel-binding",
        "prefer",
        "options-endpoint",
        "connect-timeout",
        "verify-full",
        "verify-ca",
        "require-with-root-cert",
        "ssl-require",
        "ssl-verify-full",
        "ssl-true",
    ],
)
@pytest.mark.parametrize("scheme", ["postgresql", "postgres", "postgresql+asyncpg"])
async def test_connection_strings_as_pasted_work(
    pg_engine: AsyncEngine, postgres_server: PostgresServer, params: dict[str, str], scheme: str
) -> None:
    if postgres_server.cluster is None:
        pytest.skip("uses the local cluster's certificate")
    params = {k: str(postgres_server.cluster.root / "server.crt") if v == "CERT" else v for k, v in params.items()}
    url = with_query(postgres_server.cluster.url(sslmode=""), **params).replace("postgresql://", f"{scheme}://", 1)
    assert "%40" in url  # the password's @ : / ? # are percent-encoded
    engine = create_engine(url)
    try:
        async with connect(engine) as conn:
            assert (await conn.execute(text("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"))).scalar_one()
    finally:
        await engine.dispose()


@pytest.mark.parametrize(
    ("params", "reason"),
    [
        ({"sslmode": "disable"}, "no encryption"),
        ({"sslmode": "verify-full"}, "root certificate file"),
        ({"sslmode": "verify-full", "sslrootcert": "SYSTEM"}, "certificate verify failed"),
        ({"sslrootcert": "system"}, "certificate verify failed: self-signed certificate"),
        ({"ssl": "true"}, "certificate verify failed: self-signed certificate"),
        ({"ssl": "disable"}, "no encryption"),
    ],
    ids=[
        "disable-against-tls-only",
        "verify-full-without-root-cert",
        "verify-full-self-signed",
        "system-store-self-signed",
        "ssl-true-self-signed",
        "ssl-disable-against-tls-only",
    ],
)
async def test_connection_strings_that_cannot_work_fail_with_one_clear_sentence(
    postgres_server: PostgresServer, params: dict[str, str], reason: str
) -> None:
    if postgres_server.cluster is None:
        pytest.skip("uses the local cluster")
    system_ca = ssl.get_default_verify_paths().openssl_cafile
    params = {k: system_ca if v == "SYSTEM" else v for k, v in params.items()}
    message = str(await connect_failure(with_query(postgres_server.cluster.url(sslmode=""), **params)))
    assert reason in message and "\n" not in message
    assert message.startswith('Could not connect to database "todo_test" on 127.0.0.1:')
    assert postgres_server.cluster.password not in message


async def test_sslrootcert_system_is_the_trust_store_the_system_configures(
    postgres_server: PostgresServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The self-signed harness fails against the real store (above) and passes once the
    store holds its certificate (OpenSSL's SSL_CERT_FILE, as libpq documents for system)."""
    if postgres_server.cluster is None:
        pytest.skip("uses the local cluster's certificate")
    monkeypatch.setenv("SSL_CERT_FILE", str(postgres_server.cluster.root / "server.crt"))
    engine = create_engine(with_query(postgres_server.cluster.url(sslmode=""), sslrootcert="system"))
    try:
        async with connect(engine) as conn:
            assert (await conn.execute(text("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"))).scalar_one()
    finally:
        await engine.dispose()


async def test_a_connect_dropped_once_is_retried_once(pg_engine: AsyncEngine, postgres_server: PostgresServer) -> None:
    """A loopback forwarder drops the first connection (a compute going away), then forwards."""
    if postgres_server.cluster is None:
        pytest.skip("forwards to the local cluster")
    target = make_url(postgres_server.url)
    accepted = 0

    async def forward(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal accepted
        accepted += 1
        if accepted == 1:
            writer.transport.abort()  # reset: the server went away mid-handshake
            return
        up_reader, up_writer = await asyncio.open_connection(target.host, target.port)

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except ConnectionError:
                pass
            finally:
                dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    server = await asyncio.start_server(forward, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    engine = create_engine(target.set(port=port))
    try:
        assert await count(engine) == 0
    finally:
        await engine.dispose()
        server.close()
    assert accepted == 2


def test_which_connect_errors_are_transient() -> None:
    import asyncpg

    assert is_transient_connect_error(ConnectionRefusedError())
    assert is_transient_connect_error(asyncpg.exceptions.CannotConnectNowError("starting up"))
    assert is_transient_connect_error(asyncpg.exceptions.ConnectionDoesNotExistError("closed"))
    assert not is_transient_connect_error(TimeoutError())
    assert not is_transient_connect_error(asyncpg.exceptions.InvalidPasswordError("bad password"))
    assert not is_transient_connect_error(asyncpg.exceptions.CheckViolationError("ck_tasks_title_not_empty"))


async def test_migrations_on_a_pooled_endpoint_refuse_without_a_direct_one(pooled_engine: AsyncEngine) -> None:
    with pytest.raises(MigrationError, match=r"pooled endpoint .* set DATABASE_DIRECT_URL"):
        await migrations.upgrade(pooled_engine)


@pytest.fixture
def pooled_scratch_settings(postgres_server: PostgresServer, pooled_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings for a new empty database: DATABASE_URL its pooled endpoint, DATABASE_DIRECT_URL its direct one."""
    scratch = postgres_server.scratch_url()
    scratch_pooled = make_url(pooled_url).set(database=make_url(scratch).database)
    monkeypatch.setenv("DATABASE_URL", scratch_pooled.render_as_string(hide_password=False))
    monkeypatch.setenv("DATABASE_POOLED", "true")
    monkeypatch.setenv("DATABASE_DIRECT_URL", scratch)
    get_settings.cache_clear()


async def test_migrations_on_the_configured_pooled_endpoint_run_on_database_direct_url(
    pooled_scratch_settings: None,
) -> None:
    engine = create_engine()
    try:
        assert target_of(engine).pooled
        assert await migrations.upgrade(engine) == migrations.head()
        assert await migrations.current(engine) == migrations.head()
        steps = await migrations.verify_roundtrip(get_settings().database_url)
        assert steps["ok"].all()
    finally:
        await engine.dispose()


async def test_a_read_only_engine_on_a_pooled_endpoint_cannot_migrate_through_its_direct_one(
    pooled_scratch_settings: None,
) -> None:
    reader = create_engine(read_only=True)
    try:
        with pytest.raises(MigrationError, match="read-only transaction"):
            await migrations.upgrade(reader)
        assert await migrations.current(reader) is None
    finally:
        await reader.dispose()


async def test_driver_errors_of_a_raw_copy_are_todo_data_errors(
    pg_engine: AsyncEngine, postgres_server: PostgresServer
) -> None:
    reader = create_engine(postgres_server.url, read_only=True)
    try:
        with pytest.raises(DatabaseOperationError, match="read-only transaction") as exc:
            await sample.seed(reader, tasks=10)
        assert 'database "todo_test"' in str(exc.value)
    finally:
        await reader.dispose()
    assert await count(pg_engine) == 0
