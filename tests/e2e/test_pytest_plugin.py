"""The pytest plugin as an application uses it: its suite (``plugin_tests/app``) run by pytest in a new process.

The application's suite has no conftest and no ``-p``: the installed package brings the
plugin. It runs alone and with ``-n 2``, on a throwaway cluster of its own and on a
shared ``TEST_DATABASE_URL`` server (the test server), where two concurrent runs must
not collide and must leave no database behind.
"""

from __future__ import annotations

import re
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import text

from tests.helpers import PLUGIN_APP, PostgresServer, app_environment, app_pytest, app_pytest_command
from todo_data import create_engine, run
from todo_data.testing import free_port

pytestmark = pytest.mark.postgres

#: The application's tests, and the checks --todo-migrations adds.
APP_TESTS = 10
MIGRATION_CHECKS = 4


def outcome(result: subprocess.CompletedProcess[str]) -> dict[str, int]:
    """pytest's last line as counts: ``{"passed": 9, "skipped": 1}``."""
    lines = result.stdout.strip().splitlines()
    assert lines, result.stderr
    return {word: int(count) for count, word in re.findall(r"(\d+) (\w+)", lines[-1])}


async def plugin_databases(url: str) -> list[str]:
    """The plugin's databases (``todo_test_…``) on the server of ``url``."""
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            query = text(r"SELECT datname FROM pg_database WHERE datname LIKE 'todo\_test\_%' ORDER BY 1")
            return list((await conn.execute(query)).scalars())
    finally:
        await engine.dispose()


def test_the_application_suite_passes_on_a_throwaway_cluster_of_its_own(tmp_path: Path) -> None:
    result = app_pytest(tmp_path, "--todo-migrations")
    assert outcome(result) == {"passed": APP_TESTS + MIGRATION_CHECKS}, result.stdout + result.stderr


async def test_two_concurrent_runs_on_one_server_with_two_workers_each_leave_nothing_behind(
    postgres_server: PostgresServer, tmp_path: Path
) -> None:
    before = await plugin_databases(postgres_server.url)
    env = {"TEST_DATABASE_URL": postgres_server.url}
    command = ["-n", "2", "--todo-migrations"]
    runs = [tmp_path / "one", tmp_path / "two"]
    for folder in runs:
        folder.mkdir()
    # Both at once: the second starts while the first's workers create their databases.
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(lambda where: app_pytest(where, *command, env=env), runs))
    for result in results:
        assert outcome(result) == {"passed": APP_TESTS + MIGRATION_CHECKS}, result.stdout + result.stderr
    assert await plugin_databases(postgres_server.url) == before


def test_the_databases_of_a_killed_run_are_dropped_by_the_next_run_on_the_server(
    postgres_server: PostgresServer, tmp_path: Path
) -> None:
    before = run(plugin_databases(postgres_server.url))
    suite = tmp_path / "killed"
    suite.mkdir()
    (suite / "pytest.ini").write_text("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    ready = tmp_path / "ready"
    (suite / "test_hangs.py").write_text(
        "import pathlib, time\n\n\n"
        "def test_hangs_until_killed(todo_database_url):\n"
        f"    pathlib.Path({str(ready)!r}).write_text(todo_database_url)\n"
        "    time.sleep(600)\n"
    )
    env = app_environment({"TEST_DATABASE_URL": postgres_server.url})
    process = subprocess.Popen(app_pytest_command(suite), cwd=tmp_path, env=env, stdout=subprocess.DEVNULL)
    try:
        while not ready.exists() and process.poll() is None:
            time.sleep(0.1)
    finally:
        process.kill()  # SIGKILL: no teardown, no session end, databases left behind
        process.wait()
    left = set(run(plugin_databases(postgres_server.url))) - set(before)
    assert len(left) == 2, left  # the template and the session database
    # A live run on the same server keeps its databases while the next run sweeps.
    result = app_pytest(tmp_path, "-k", "session_database", env={"TEST_DATABASE_URL": postgres_server.url})
    assert outcome(result) == {"passed": 1, "deselected": APP_TESTS - 1}, result.stdout + result.stderr
    assert run(plugin_databases(postgres_server.url)) == before


def test_the_migration_checks_are_collected_only_when_asked_for(tmp_path: Path) -> None:
    listed = app_pytest(tmp_path, "--collect-only", "--todo-migrations")
    assert [line for line in listed.stdout.splitlines() if line.startswith("todo-migrations::")] == [
        "todo-migrations::single_head",
        "todo-migrations::roundtrip",
        "todo-migrations::no_drift",
        "todo-migrations::lint",
    ]
    assert "todo-migrations" not in app_pytest(tmp_path, "--collect-only").stdout


def test_without_server_binaries_the_postgres_tests_skip_with_the_reason_and_fail_in_ci(tmp_path: Path) -> None:
    # The machine without PostgreSQL: the harness finds no initdb (a plugin of the run says so).
    (tmp_path / "no_postgres.py").write_text(
        "import todo_data.testing as testing\n\n\n"
        "def missing():\n"
        "    raise testing.ClusterUnavailable('PostgreSQL server binaries (initdb, pg_ctl) not found')\n\n\n"
        "testing.postgres_bindir = missing\n"
    )
    env = {"PYTHONPATH": str(tmp_path)}
    skipped = app_pytest(tmp_path, "-p", "no_postgres", env=env)
    assert outcome(skipped) == {"passed": 1, "skipped": APP_TESTS - 1}, skipped.stdout
    assert "no PostgreSQL for todo_data's fixtures: PostgreSQL server binaries (initdb, pg_ctl) not found" in (
        skipped.stdout
    )
    failed = app_pytest(tmp_path, "-p", "no_postgres", env={**env, "CI": "true"})
    assert outcome(failed) == {"passed": 1, "errors": APP_TESTS - 1}, failed.stdout
    assert "CI needs PostgreSQL: no PostgreSQL for todo_data's fixtures" in failed.stdout


def test_a_role_without_createdb_is_a_skip_that_says_so(postgres_server: PostgresServer, tmp_path: Path) -> None:
    if postgres_server.cluster is None:
        pytest.skip("making a role needs the throwaway cluster's superuser")
    postgres_server.cluster.psql("CREATE ROLE todo_nocreatedb LOGIN NOCREATEDB PASSWORD 'pw-without-createdb'")
    cluster = postgres_server.cluster
    try:
        url = (
            f"postgresql://todo_nocreatedb:pw-without-createdb@{cluster.host}:{cluster.port}/todo_test?sslmode=require"
        )
        result = app_pytest(tmp_path, env={"TEST_DATABASE_URL": url})
        assert outcome(result) == {"passed": 1, "skipped": APP_TESTS - 1}, result.stdout + result.stderr
        assert "the role needs CREATEDB" in result.stdout
        assert "pw-without-createdb" not in result.stdout + result.stderr
    finally:
        cluster.psql("DROP ROLE todo_nocreatedb")


def test_an_unreachable_test_server_is_an_error_naming_it_without_its_password(tmp_path: Path) -> None:
    url = f"postgresql://app:s3cret-pw@127.0.0.1:{free_port()}/app?sslmode=disable"
    result = app_pytest(tmp_path, env={"TEST_DATABASE_URL": url})
    assert outcome(result) == {"passed": 1, "errors": APP_TESTS - 1}, result.stdout + result.stderr
    assert "127.0.0.1" in result.stdout
    assert "s3cret-pw" not in result.stdout + result.stderr


def test_the_application_folder_is_outside_the_project_tests() -> None:
    assert not (PLUGIN_APP / "conftest.py").exists()
    assert (PLUGIN_APP / "pytest.ini").is_file()


def test_a_keyword_value_test_database_url_works_as_psql_takes_it(
    postgres_server: PostgresServer, tmp_path: Path
) -> None:
    """``TEST_DATABASE_URL="host=… dbname=…"``: a string libpq takes is one the plugin takes."""
    from sqlalchemy.engine import make_url

    url = make_url(postgres_server.url)
    options = " ".join(f"{key}={value}" for key, value in url.query.items())
    keywords = f"host={url.host} port={url.port} dbname={url.database} user={url.username} password='{url.password}'"
    before = run(plugin_databases(postgres_server.url))
    result = app_pytest(
        tmp_path, "-k", "session_database or engine_has", env={"TEST_DATABASE_URL": f"{keywords} {options}"}
    )
    # The session database, and a clone in each of the two runs of the engine test.
    assert outcome(result) == {"passed": 3, "deselected": APP_TESTS - 3}, result.stdout + result.stderr
    assert run(plugin_databases(postgres_server.url)) == before
