"""Helpers the tests import: where the test servers are, and small tools around them.

Fixtures live in ``conftest.py`` (pytest finds them there); everything a test module
imports by name lives here, so no test imports ``conftest``.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
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

from todo_data import migrations, run, sample
from todo_data.database import connect, create_engine
from todo_data.errors import DatabaseConnectionError, driver_message
from todo_data.migrations._scratch import drop_database
from todo_data.settings import DEFAULT_DATABASE_URL, load_settings
from todo_data.testing import PostgresCluster, Standby
from todo_data.urls import is_neon_pooler_host

REPO_ROOT = Path(__file__).resolve().parent.parent


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def unavailable(what: str, reason: object) -> NoReturn:
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
            unavailable("scratch databases", f"{driver_message(exc)} (the role of TEST_DATABASE_URL needs CREATEDB)")
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


def pytest_as_ci_would_run_it(
    tmp_path: Path, *tests: str, options: tuple[str, ...] = (), **env: str
) -> subprocess.CompletedProcess[str]:
    """pytest on ``tests`` in a new process, from a directory of its own (no .env of the developer)."""
    # Variables a developer may have: the run must not depend on them.
    noise = {
        "DATABASE_URL": "postgresql://u:secret@h:port/broken",
        "DATABASE_POOLED": "perhaps",
        "DATABASE_STATEMENT_TIMEOUT": "-1",
        "DATABASE_READ_URL": "mysql://nope",
    }
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--no-cov", "-n", "0", "-rsfE", "-q"]
        + ["--rootdir", str(REPO_ROOT), "-c", str(REPO_ROOT / "pyproject.toml"), *options]
        + [str(REPO_ROOT / test) for test in tests],
        cwd=tmp_path,
        env={**os.environ, **noise, **env},
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )


def live_database(server: PostgresServer, *, tasks: int) -> str:
    """A new database beside the test one, migrated to head, with ``tasks`` sample tasks."""
    url = server.scratch_url()

    async def prepare() -> None:
        engine = create_engine(url)
        try:
            await migrations.upgrade(engine)
            if tasks:
                await sample.seed(engine, tasks=tasks)
        finally:
            await engine.dispose()

    run(prepare())
    return url


#: The application whose suite tests the pytest plugin as an application's would.
PLUGIN_APP = REPO_ROOT / "plugin_tests" / "app"


def app_pytest(
    tmp_path: Path, *options: str, env: dict[str, str] | None = None, tests: Path = PLUGIN_APP
) -> subprocess.CompletedProcess[str]:
    """pytest on an application's suite (``tests``, with its own ``pytest.ini``) in a new process.

    The installed ``todo_data`` brings the plugin (no ``-p``, no conftest of ours); the
    environment is this one without any ``DATABASE_*``/``TEST_DATABASE_*``/``CI``
    variable, plus ``env``.
    """
    return subprocess.run(
        app_pytest_command(tests, *options),
        cwd=tmp_path,
        env=app_environment(env),
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )


def app_pytest_command(tests: Path, *options: str) -> list[str]:
    """The command line of :func:`app_pytest`."""
    pytest = [sys.executable, "-m", "pytest", "-q", "-rsfE", "-p", "no:cacheprovider", "-c", str(tests / "pytest.ini")]
    return [*pytest, "--rootdir", str(tests), *options, str(tests)]


def app_environment(env: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of :func:`app_pytest`: no setting of ours leaks in."""
    clean = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("DATABASE_", "TEST_DATABASE_", "PYTEST_")) and name != "CI"
    }
    return {**clean, **(env or {})}
