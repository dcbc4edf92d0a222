"""PostgreSQL specifics: connection strings as pasted, TLS and SCRAM, migrations from the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from tests.conftest import PostgresServer
from todo_data import Task, create_engine, migrations, session_scope
from todo_data.database import connect
from todo_data.errors import DatabaseConnectionError

REPO_ROOT = Path(__file__).resolve().parents[2]


def with_query(url: str, **params: str) -> str:
    return make_url(url).update_query_dict(params).render_as_string(hide_password=False)


@pytest.mark.parametrize(
    "params",
    [
        {"sslmode": "require", "channel_binding": "require"},
        {"sslmode": "prefer"},
        {"sslmode": "require", "connect_timeout": "5", "application_name": "todo-tests"},
    ],
)
async def test_neon_style_url_works_as_pasted_over_tls(postgres_server: PostgresServer, params: dict[str, str]) -> None:
    url = with_query(postgres_server.url, **params).replace("postgresql://", "postgres://")
    engine = create_engine(url)
    try:
        async with connect(engine) as conn:
            ssl_on = (await conn.execute(text("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"))).scalar_one()
    finally:
        await engine.dispose()
    assert ssl_on is True


async def test_sslmode_disable_against_tls_only_server_fails_clearly(
    postgres_server: PostgresServer,
) -> None:
    if postgres_server.cluster is None:
        pytest.skip("only the local cluster is known to refuse non-TLS connections")
    engine = create_engine(with_query(postgres_server.url, sslmode="disable"))
    try:
        with pytest.raises(DatabaseConnectionError) as exc:
            async with connect(engine):
                pass
    finally:
        await engine.dispose()
    assert "no encryption" in str(exc.value)
    assert postgres_server.cluster.password not in str(exc.value)


async def test_wrong_password_names_host_and_database_but_not_the_password(
    postgres_server: PostgresServer,
) -> None:
    url = make_url(postgres_server.url).set(password="Wr0ng-p@ss")
    engine = create_engine(url)
    try:
        with pytest.raises(DatabaseConnectionError) as exc:
            async with connect(engine):
                pass
    finally:
        await engine.dispose()
    message = str(exc.value)
    assert "password authentication failed" in message
    assert f"on {url.host}:{url.port}" in message and f'database "{url.database}"' in message
    assert "Wr0ng" not in message


async def test_read_only_engine_refuses_writes_on_postgresql(
    pg_engine: object, postgres_server: PostgresServer
) -> None:
    reader = create_engine(postgres_server.url, read_only=True)
    try:
        with pytest.raises(DBAPIError, match="read-only transaction"):
            async with session_scope(reader) as session:
                session.add(Task(user_id="u", title="nope"))
        async with reader.connect() as conn:
            assert (await conn.execute(text("SELECT count(*) FROM tasks"))).scalar_one() == 0
    finally:
        await reader.dispose()


def alembic(*args: str, url: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": url}
    return subprocess.run(
        [sys.executable, "-m", "alembic", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


async def test_alembic_cli_upgrade_check_downgrade_on_postgresql(
    postgres_server: PostgresServer,
) -> None:
    url = postgres_server.scratch_url()
    for args in (
        ("upgrade", "head"),
        ("check",),
        ("downgrade", "base"),
        ("upgrade", "head"),
        ("check",),
    ):
        result = alembic(*args, url=url)
        assert result.returncode == 0, (args, result.stderr)
    engine = create_engine(url)
    try:
        assert await migrations.current(engine) == migrations.head()
    finally:
        await engine.dispose()
