"""The test servers themselves: with TEST_DATABASE_URL set (a Neon branch) and CI=true,
nothing PostgreSQL-related skips; scratch databases come from the role's CREATEDB.

The mode switch is tested as it is used: pytest run in a subprocess on a few tests,
pointed at this session's server through TEST_DATABASE_URL, as CI would point it at Neon.
"""

from __future__ import annotations

import re
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.helpers import PostgresServer, neon_pooled_url, pytest_as_ci_would_run_it
from todo_data import create_engine

NEON = "postgresql://u:pw@ep-cool-darkness-123456.us-east-2.aws.neon.tech/neondb?sslmode=require"


def test_the_pooled_endpoint_of_a_neon_branch_is_derived() -> None:
    pooled = neon_pooled_url(NEON)
    assert pooled == NEON.replace("ep-cool-darkness-123456.", "ep-cool-darkness-123456-pooler.")
    assert neon_pooled_url(pooled) == pooled
    assert neon_pooled_url("postgresql://u:pw@db.example.com/app") is None
    assert neon_pooled_url("postgresql://u:pw@127.0.0.1:5432/app") is None


async def test_a_scratch_database_belongs_to_the_role_and_is_empty(postgres_server: PostgresServer) -> None:
    url = postgres_server.scratch_url()
    name = make_url(url).database
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            owner = "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = current_database()"
            assert (await conn.execute(text(owner))).scalar_one() == make_url(postgres_server.url).username
            assert (await conn.execute(text("SELECT current_database()"))).scalar_one() == name
            assert (await conn.execute(text("SELECT to_regclass('tasks')"))).scalar_one() is None
    finally:
        await engine.dispose()
    assert name in postgres_server.scratch_databases  # dropped when the session ends


async def test_the_pooled_endpoint_answers(pooled_engine: AsyncEngine) -> None:
    async with pooled_engine.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM tasks"))).scalar_one() == 0


async def scratch_databases(server: PostgresServer) -> set[str]:
    engine = create_engine(server.url)
    try:
        async with engine.connect() as conn:
            query = text("SELECT datname FROM pg_database WHERE datname LIKE 'scratch%'")
            return set((await conn.execute(query)).scalars())
    finally:
        await engine.dispose()


HARNESS = "tests/integration/test_testing.py"


async def test_as_ci_with_test_database_url_nothing_skips(
    postgres_server: PostgresServer, pooled_url: str, tmp_path: Path
) -> None:
    before = await scratch_databases(postgres_server)
    run = pytest_as_ci_would_run_it(
        tmp_path,
        HARNESS,
        "tests/unit/test_settings.py",
        options=("-k", "not as_ci", "-rA"),  # not the tests that start subprocesses; list every outcome
        TEST_DATABASE_URL=postgres_server.url,
        TEST_DATABASE_POOLED_URL=pooled_url,
        CI="true",
    )
    summary = run.stdout.strip().splitlines()[-1]
    assert run.returncode == 0, run.stdout + run.stderr
    assert re.fullmatch(r"\d+ passed, 2 deselected in .*", summary), summary  # no skip, no error
    for test in (
        "scratch_database_belongs_to_the_role",
        "pooled_endpoint_answers",
        "see_no_database_or_test_variables",
    ):
        assert re.search(rf"^PASSED .*{test}", run.stdout, re.M), test
    assert await scratch_databases(postgres_server) == before  # the subprocess dropped its own


def test_as_ci_a_missing_pooled_endpoint_is_a_failure_not_a_skip(
    postgres_server: PostgresServer, tmp_path: Path
) -> None:
    test = f"{HARNESS}::test_the_pooled_endpoint_answers"
    in_ci = pytest_as_ci_would_run_it(tmp_path, test, TEST_DATABASE_URL=postgres_server.url, CI="true")
    assert in_ci.returncode == 1 and "1 error" in in_ci.stdout.splitlines()[-1], in_ci.stdout
    assert "CI needs pooled endpoint" in in_ci.stdout and "set TEST_DATABASE_POOLED_URL" in in_ci.stdout
    locally = pytest_as_ci_would_run_it(tmp_path, test, TEST_DATABASE_URL=postgres_server.url, CI="")
    assert locally.returncode == 0 and "1 skipped" in locally.stdout.splitlines()[-1], locally.stdout
    assert "set TEST_DATABASE_POOLED_URL" in locally.stdout  # the reason is shown
    for run in (in_ci, locally):
        assert make_url(postgres_server.url).password not in run.stdout + run.stderr
