"""Engines and sessions on SQLite; the PostgreSQL side is in tests/integration."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC
from pathlib import Path

import IPython.lib.pretty
import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from tests.helpers import connect_failure
from todo_data import (
    Task,
    TaskStatus,
    create_engine,
    create_read_engine,
    get_async_session,
    get_settings,
    migrations,
    session_scope,
)
from todo_data.database import (
    about,
    add_note,
    begin,
    connect,
    default_engine,
    direct_url,
    engine_of,
    reset_default_engine,
    sessionmaker,
)
from todo_data.errors import DatabaseConnectionError, InvalidArgumentError, SchemaNotReadyError, SettingsError
from todo_data.testing import free_port


async def count(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(text("SELECT count(*) FROM tasks"))).scalar_one())


async def test_session_scope_commits_on_success(sqlite_engine: AsyncEngine) -> None:
    async with session_scope(sqlite_engine) as session:
        session.add(Task(user_id="u1", title="a"))
    assert await count(sqlite_engine) == 1


async def test_session_scope_rolls_back_on_error_leaving_nothing(
    sqlite_engine: AsyncEngine,
) -> None:
    with pytest.raises(RuntimeError):
        async with session_scope(sqlite_engine) as session:
            session.add(Task(user_id="u1", title="a"))
            await session.flush()
            raise RuntimeError("boom")
    assert await count(sqlite_engine) == 0


async def test_failed_batch_stores_none_of_it(sqlite_engine: AsyncEngine) -> None:
    good = [Task(user_id="u1", title=f"t{i}") for i in range(5)]
    bad = Task(user_id="u1", title="ok")
    with pytest.raises(IntegrityError):
        async with session_scope(sqlite_engine) as session:
            session.add_all(good)
            await session.flush()
            # Bypass the Python layer to reach the database's CHECK.
            await session.execute(text("UPDATE tasks SET title = '' WHERE id = :id"), {"id": good[0].id.hex})
            session.add(bad)
    assert await count(sqlite_engine) == 0


async def test_objects_stay_readable_after_commit(sqlite_engine: AsyncEngine) -> None:
    async with session_scope(sqlite_engine) as session:
        task = Task(user_id="u1", title="kept")
        session.add(task)
    assert task.title == "kept" and task.created_at.tzinfo is UTC


async def test_timestamps_read_back_aware_utc_and_updated_at_moves_sub_second(
    sqlite_engine: AsyncEngine,
) -> None:
    async with session_scope(sqlite_engine) as session:
        task = Task(user_id="u1", title="first")
        session.add(task)
    stamps = []
    for title in ("second", "third"):
        async with session_scope(sqlite_engine) as session:
            loaded = await session.get(Task, task.id)
            assert loaded is not None
            loaded.title = title
        async with sessionmaker(sqlite_engine)() as session:
            loaded = await session.get(Task, task.id)
            assert loaded is not None
            assert loaded.updated_at.tzinfo is UTC and loaded.created_at.tzinfo is UTC
            stamps.append(loaded.updated_at)
    assert stamps[0] < stamps[1]
    assert stamps[0] > task.created_at
    assert (stamps[1] - stamps[0]).total_seconds() < 1  # sub-second precision survives storage


async def test_server_default_timestamps_for_raw_inserts_read_back_aware(
    sqlite_engine: AsyncEngine,
) -> None:
    async with sqlite_engine.begin() as conn:
        await conn.execute(
            text("INSERT INTO tasks (id, user_id, title, status) VALUES (:id, 'u', 't', 'pending')"),
            {"id": uuid.uuid4().hex},
        )
    async with sessionmaker(sqlite_engine)() as session:
        (task,) = (await session.execute(select(Task))).scalars().all()
    assert task.created_at.tzinfo is UTC and task.status is TaskStatus.PENDING


async def test_unknown_status_written_by_another_client_is_read_as_text(
    sqlite_engine: AsyncEngine,
) -> None:
    async with sqlite_engine.begin() as conn:
        await conn.execute(
            text("INSERT INTO tasks (id, user_id, title, status) VALUES (:id, 'u', 't', 'archived')"),
            {"id": uuid.uuid4().hex},
        )
    async with sessionmaker(sqlite_engine)() as session:
        (task,) = (await session.execute(select(Task))).scalars().all()
    assert task.status == "archived" and not isinstance(task.status, TaskStatus)


async def test_read_only_sqlite_engine_refuses_writes(sqlite_engine: AsyncEngine, sqlite_url: str) -> None:
    reader = create_engine(sqlite_url, read_only=True)
    try:
        with pytest.raises(OperationalError, match="readonly"):
            async with session_scope(reader) as session:
                session.add(Task(user_id="u", title="nope"))
        assert await count(reader) == 0
    finally:
        await reader.dispose()


async def test_in_memory_sqlite_shares_one_database_across_connections() -> None:
    engine = create_engine("sqlite://")
    from todo_data import migrations

    await migrations.upgrade(engine)
    assert await count(engine) == 0
    await engine.dispose()


async def test_get_async_session_is_a_dependency_on_the_default_engine(
    monkeypatch: pytest.MonkeyPatch, sqlite_engine: AsyncEngine, sqlite_url: str
) -> None:
    monkeypatch.setenv("DATABASE_URL", sqlite_url)
    get_settings.cache_clear()
    await reset_default_engine()
    try:
        dependency = get_async_session()
        session = await anext(dependency)
        assert engine_of(session) is default_engine()
        session.add(Task(user_id="u", title="via dependency"))
        await session.commit()
        with pytest.raises(StopAsyncIteration):
            await anext(dependency)
        assert await count(sqlite_engine) == 1
        # An exception thrown into the dependency (a failed request) rolls back.
        dependency = get_async_session()
        session = await anext(dependency)
        session.add(Task(user_id="u", title="rolled back"))
        with pytest.raises(ValueError):
            await dependency.athrow(ValueError("request failed"))
        assert await count(sqlite_engine) == 1
    finally:
        await reset_default_engine()


async def test_connect_and_begin_never_commit_or_close_a_callers_connection(
    sqlite_engine: AsyncEngine,
) -> None:
    async with sqlite_engine.connect() as conn:
        async with begin(conn) as same:
            assert same is conn
            await same.execute(text("INSERT INTO tasks (id, user_id, title, status) VALUES ('x', 'u', 't', 'pending')"))
        async with connect(conn) as same:
            assert same is conn and conn.in_transaction()
        await conn.rollback()
    assert await count(sqlite_engine) == 0


async def test_session_source_gives_its_connection(sqlite_engine: AsyncEngine) -> None:
    async with sessionmaker(sqlite_engine)() as session:
        async with connect(session) as conn:
            assert engine_of(conn) is sqlite_engine
        assert engine_of(session) is sqlite_engine


async def test_unreachable_host_fails_fast_naming_host_and_database_without_password() -> None:
    port = free_port()  # nothing listens there
    url = f"postgresql://analyst:hunter2@127.0.0.1:{port}/neondb?connect_timeout=2"
    message = str(await connect_failure(url))
    assert f'database "neondb" on 127.0.0.1:{port} as user "analyst"' in message
    assert "hunter2" not in message


async def test_connect_timeout_bounds_a_server_that_never_answers() -> None:
    # A listening socket that never completes the PostgreSQL handshake. Its writers are
    # kept: Python 3.13 closes a StreamWriter that is garbage-collected, which would end
    # the connection (a reset, not a silence) before the timeout is reached.
    writers: list[asyncio.StreamWriter] = []
    server = await asyncio.start_server(lambda r, w: writers.append(w), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    engine = create_engine(f"postgresql://u:pw@127.0.0.1:{port}/db?connect_timeout=1&sslmode=disable")
    try:
        with pytest.raises(DatabaseConnectionError, match="timed out"):
            async with connect(engine):
                pass
    finally:
        await engine.dispose()
        for writer in writers:
            writer.close()
        server.close()


def test_direct_url_of_a_neon_pooler_host_drops_pooler() -> None:
    pooled = "postgresql://u:pw@ep-cool-123-pooler.eu-central-1.aws.neon.tech/neondb?sslmode=require"
    direct = direct_url(pooled)
    assert direct.host == "ep-cool-123.eu-central-1.aws.neon.tech"
    assert (direct.username, direct.password, direct.database) == ("u", "pw", "neondb")
    assert dict(direct.query) == {"sslmode": "require"}


def test_direct_url_of_an_unpooled_url_is_itself() -> None:
    url = "postgresql://u:pw@ep-cool-123.eu-central-1.aws.neon.tech/neondb"
    assert direct_url(url).render_as_string(hide_password=False) == url


def test_direct_url_of_another_pooled_host_needs_database_direct_url(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(SettingsError, match="set DATABASE_DIRECT_URL") as exc:
        direct_url("postgresql://u:secret@127.0.0.1:6432/app", pooled=True)
    assert "secret" not in str(exc.value)
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:secret@127.0.0.1:6432/app")
    monkeypatch.setenv("DATABASE_POOLED", "true")
    monkeypatch.setenv("DATABASE_DIRECT_URL", "postgresql://u:secret@127.0.0.1:5432/app")
    get_settings.cache_clear()
    assert direct_url().port == 5432
    assert direct_url("postgresql://u:secret@127.0.0.1:6432/app").port == 5432


# --- statement_timeout: 0 is "no limit", nonsense is refused -------------------------------


def statement_timeout_of(engine: AsyncEngine) -> float | None:
    return about(engine).statement_timeout


@pytest.mark.parametrize("value", [None, 0, 0.0])
def test_statement_timeout_none_or_zero_means_no_limit(value: float | None) -> None:
    assert statement_timeout_of(create_engine("postgresql://u:p@h/db", statement_timeout=value)) is None


def test_statement_timeout_argument_zero_overrides_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:p@h/db")
    monkeypatch.setenv("DATABASE_STATEMENT_TIMEOUT", "30")
    assert statement_timeout_of(create_engine()) == 30
    assert statement_timeout_of(create_engine(statement_timeout=0)) is None


@pytest.mark.parametrize("value", [-1, -0.5, float("nan"), float("inf"), float("-inf"), "30", True])
def test_statement_timeout_nonsense_is_an_invalid_argument(value: object) -> None:
    with pytest.raises(InvalidArgumentError, match="statement_timeout") as exc:
        create_engine("postgresql://u:p@h/db", statement_timeout=value)  # type: ignore[arg-type]
    assert "seconds" in str(exc.value)


# --- a broken environment never breaks an explicit URL --------------------------------------

BROKEN_SETTINGS = {
    "DATABASE_URL": "postgresql://u:secret@h/db?sslmode=verify-full&sslrootcert=/nonexistent/root.crt",
    "DATABASE_POOLED": "perhaps",
    "DATABASE_STATEMENT_TIMEOUT": "-1",
    "DATABASE_DIRECT_URL": "mysql://u:secret@h/db",
    "TEST_DATABASE_URL": "postgresql://u:secret@h:port/db",
}


@pytest.mark.parametrize(("name", "value"), BROKEN_SETTINGS.items(), ids=list(BROKEN_SETTINGS))
async def test_a_broken_setting_never_breaks_an_explicit_url(
    name: str, value: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError, match=name):
        getattr(get_settings(), name.lower())
    engine = create_engine(f"sqlite:///{tmp_path / 'other.db'}")
    try:
        assert about(engine).statement_timeout is None and not about(engine).target.pooled
        await migrations.upgrade(engine)
        assert await count(engine) == 0
    finally:
        await engine.dispose()
    assert direct_url("postgresql://u:p@ep-x-1-pooler.eu-central-1.aws.neon.tech/db").host == (
        "ep-x-1.eu-central-1.aws.neon.tech"
    )
    pg = create_engine("postgresql://u:p@h/db")
    assert about(pg).statement_timeout is None
    await pg.dispose()


async def test_a_broken_setting_still_breaks_the_default_engine_with_a_settings_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DATABASE_URL", BROKEN_SETTINGS["DATABASE_URL"])
    with pytest.raises(SettingsError, match="sslrootcert") as exc:
        create_engine()
    assert "secret" not in str(exc.value)


# --- an engine says what it opens ------------------------------------------------------------


def test_an_engine_says_what_it_opens_never_the_password() -> None:
    url = "postgresql://analyst:hunter2@ep-x-1-pooler.eu-central-1.aws.neon.tech/neondb?sslrootcert=system"
    engine = create_engine(url, read_only=True, statement_timeout=30)
    shown = (repr(engine), str(about(engine)), IPython.lib.pretty.pretty(engine))
    assert shown[0] == (
        '<AsyncEngine: PostgreSQL database "neondb" on ep-x-1-pooler.eu-central-1.aws.neon.tech as user "analyst" '
        "(read-only, pooled endpoint (PgBouncer transaction mode), sslmode=verify-full, sslrootcert=system, "
        "statement timeout 30 s)>"
    )
    assert (
        shown[1]
        == shown[2]
        == (
            'PostgreSQL database "neondb" on ep-x-1-pooler.eu-central-1.aws.neon.tech as user "analyst"\n'
            "read-only · pooled endpoint (PgBouncer transaction mode) · sslmode=verify-full, sslrootcert=system"
            " · statement timeout 30 s"
        )
    )
    assert not any("hunter2" in text for text in shown)


async def test_the_described_engine_is_the_one_its_connections_and_sessions_give_back(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'x.db'}")
    try:
        assert str(about(engine)) == f"SQLite database {tmp_path / 'x.db'}\nread-write"
        async with engine.connect() as conn:
            assert conn.engine is engine and engine_of(conn) is engine
    finally:
        await engine.dispose()


def test_a_note_and_a_title_frame_the_description() -> None:
    engine = create_engine("sqlite://")
    add_note(engine, "How to open another.", title="Demo database.")
    assert str(about(engine)) == "Demo database.\nSQLite database :memory:\nread-write\nHow to open another."
    assert repr(engine) == "<AsyncEngine: Demo database. SQLite database :memory: (read-write)>"


def test_engines_made_elsewhere_are_described_too() -> None:
    plain = create_async_engine("postgresql+asyncpg://u:secret@h:5433/db").execution_options(postgresql_readonly=True)
    assert about(plain).summary == (
        'PostgreSQL database "db" on h:5433 as user "u" (read-only, direct endpoint, sslmode=prefer (the default))'
    )


# -- the read replica for analysis (DATABASE_READ_URL) ----------------------------------------


def test_read_engines_read_database_url_when_no_replica_is_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:p@primary.example/app")
    monkeypatch.setenv("DATABASE_POOLED", "true")
    info = about(create_read_engine())
    assert (info.target.url.host, info.read_only, info.target.pooled) == ("primary.example", True, True)


def test_read_engines_read_the_replica_with_its_own_pooled_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:p@primary.example/app")
    monkeypatch.setenv("DATABASE_POOLED", "true")
    monkeypatch.setenv("DATABASE_READ_URL", "postgresql://u:p@replica.example/app")
    monkeypatch.setenv("DATABASE_READ_POOLED", "false")
    monkeypatch.setenv("DATABASE_STATEMENT_TIMEOUT", "30")
    reader = about(create_read_engine())
    assert (reader.target.url.host, reader.read_only, reader.target.pooled) == ("replica.example", True, False)
    assert reader.statement_timeout == 30
    # The same URL given explicitly gets the replica's settings too; writers stay on the primary.
    assert about(create_engine("postgresql://u:p@replica.example/app")).target.pooled is False
    writer = about(create_engine())
    assert (writer.target.url.host, writer.read_only, writer.target.pooled) == ("primary.example", False, True)


def test_a_neon_replica_pooler_is_detected(monkeypatch: pytest.MonkeyPatch) -> None:
    host = "ep-cool-replica-123456-pooler.us-east-2.aws.neon.tech"
    monkeypatch.setenv("DATABASE_READ_URL", f"postgresql://u:p@{host}/neondb?sslmode=require")
    assert about(create_read_engine()).target.pooled is True


async def test_a_read_engine_refuses_writes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{tmp_path / 'replica.db'}"
    monkeypatch.setenv("DATABASE_READ_URL", url)
    writer = create_engine(url)
    await migrations.upgrade(writer)
    await writer.dispose()
    reader = create_read_engine()
    try:
        with pytest.raises(OperationalError, match="readonly"):
            async with session_scope(reader) as session:
                session.add(Task(user_id="u", title="never stored"))
    finally:
        await reader.dispose()


def test_a_bad_database_read_url_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_READ_URL", "mysql://u:hunter2@h/db")
    with pytest.raises(SettingsError, match="DATABASE_READ_URL") as refused:
        _ = get_settings().database_read_url
    assert "hunter2" not in str(refused.value)


async def test_a_read_only_engine_never_creates_a_missing_sqlite_file(tmp_path: Path) -> None:
    missing = tmp_path / "typo.db"
    engine = create_engine(f"sqlite:///{missing}", read_only=True)
    try:
        with pytest.raises(
            SchemaNotReadyError, match=r"typo\.db' does not exist, and a read-only engine creates nothing"
        ):
            async with connect(engine):
                pass
        assert not missing.exists()
    finally:
        await engine.dispose()
    # A read-write engine still creates it: that is how a new database begins.
    writer = create_engine(f"sqlite:///{missing}")
    async with connect(writer):
        pass
    await writer.dispose()
    assert missing.exists()
