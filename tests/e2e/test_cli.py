"""The todo-data command, on SQLite and PostgreSQL.

Run in this process by typer's runner, with the working directory and environment a
user's shell would give it: the same code from the command line on, without paying
Python's start-up and the imports on each of the forty-odd runs. The console script
itself, as users run it, is a subprocess in ``test_the_console_script_is_the_command``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.e2e.helpers import assert_one_line_failure, assert_usage_error, todo_data
from tests.helpers import PostgresServer, ReplicaServer, wait_for_replay
from tests.integration.scratch import scratch_url
from todo_data import create_engine, migrations, queries, run, sample
from todo_data.testing import free_port


def test_the_console_script_is_the_command(tmp_path: Path) -> None:
    """The installed ``todo-data`` script and ``python -m todo_data.cli``, as a user's shell runs them."""
    script = Path(sys.executable).with_name("todo-data")
    url = f"sqlite:///{tmp_path / 'missing.db'}"
    for command in ([str(script)], [sys.executable, "-m", "todo_data.cli"]):
        result = subprocess.run(
            [*command, "report", "--database-url", url],
            cwd=tmp_path,
            env={**os.environ, "COLUMNS": "200"},
            capture_output=True,
            text=True,
            check=False,
            timeout=300,
        )
        assert_one_line_failure(result, "migrat", "missing.db")
        assert result.stdout == ""


T = TypeVar("T")

__all__ = ["scratch_url"]  # a fixture: an empty SQLite file or PostgreSQL database


def run_on(url: str, query: Callable[[AsyncEngine], Awaitable[T]]) -> T:
    """What the library itself answers, to compare with the command's output."""

    async def body() -> T:
        engine = create_engine(url)
        try:
            return await query(engine)
        finally:
            await engine.dispose()

    return run(body())


def test_demo_on_the_embedded_sqlite_default_migrates_seeds_and_reports(tmp_path: Path) -> None:
    result = todo_data("demo", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "todo_data.db").is_file()
    assert 'SQLite database "todo_data.db": added 10,000 sample tasks.' in result.stdout
    assert "Tasks by status" in result.stdout and "Tasks per user" in result.stdout
    again = todo_data("demo", cwd=tmp_path)
    # Seeds only an empty database, and then shows no empty progress bar.
    assert 'SQLite database "todo_data.db" already has tasks: nothing added.' in again.stdout
    assert "Seeding" not in again.stdout
    # The values read as the notebooks show them (todo_data.show): shares as percentages.
    shares = re.findall(r"│ (pending|in_progress|completed) +│ +[\d,]+ │ +([\d.]+%) │", again.stdout)
    assert [status for status, _ in shares] == ["pending", "in_progress", "completed"]
    assert all(0 < float(share.rstrip("%")) < 100 for _, share in shares)
    history = todo_data("migrate", "history", cwd=tmp_path)
    assert re.search(r"│ 0001 +│ base +│", history.stdout), history.stdout


def test_help_lists_every_command_with_examples(tmp_path: Path) -> None:
    result = todo_data("--help", cwd=tmp_path)
    for command in ("demo", "migrate", "seed", "report", "verify", "export", "notebooks"):
        assert command in result.stdout
    for command in ("demo", "seed", "report", "verify", "migrate", "export", "notebooks"):
        assert "Example" in todo_data(command, "--help", cwd=tmp_path).stdout


def test_migrate_seed_report_verify_round(scratch_url: str, tmp_path: Path) -> None:
    database_url = scratch_url
    url = ["--database-url", database_url]
    password = make_url(database_url).password or ""

    current = todo_data("migrate", "current", *url, cwd=tmp_path)
    assert current.returncode == 0 and "current: none (" in current.stdout, current.stderr

    seeded = todo_data("seed", "--tasks", "1500", "--users", "7", "--seed", "3", *url, cwd=tmp_path)
    assert seeded.returncode == 0, seeded.stderr
    assert "Added 1,500 tasks." in seeded.stdout

    report = todo_data("report", *url, cwd=tmp_path)
    assert report.returncode == 0, report.stderr
    assert report.stdout.index("Tasks by status") < report.stdout.index("Tasks per user")
    counts = run_on(database_url, queries.status_counts)
    assert counts["count"].sum() == 1500
    status_table = report.stdout[: report.stdout.index("Tasks per user")]
    for status, count in zip(counts["status"], counts["count"], strict=True):
        assert re.search(rf"{status}\s+│\s+{count:,}\s+│", status_table), (status, count, status_table)

    verify = todo_data("verify", *url, cwd=tmp_path)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "All checks passed." in verify.stdout

    history = todo_data("migrate", "history", cwd=tmp_path)
    assert migrations.head() in history.stdout

    down = todo_data("migrate", "down", "base", *url, cwd=tmp_path)
    assert down.returncode == 0 and "base" in down.stdout
    wrong_revision = todo_data("verify", *url, cwd=tmp_path)
    assert_one_line_failure(wrong_revision, "verification failed: revision", secret=password)
    assert make_url(database_url).database in wrong_revision.stderr
    up = todo_data("migrate", *url, cwd=tmp_path)
    assert up.returncode == 0 and migrations.head() in up.stdout
    for result in (current, seeded, report, verify, history, down, up):
        assert not password or password not in result.stdout + result.stderr


def test_report_on_a_database_that_was_never_migrated_says_run_migrations(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    assert_one_line_failure(todo_data("report", "--database-url", url, cwd=tmp_path), "migrat", "empty.db")


def test_unknown_revision_is_one_line(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    assert todo_data("migrate", "up", "0001", "--database-url", url, cwd=tmp_path).returncode == 0
    result = todo_data("migrate", "down", "nope", "--database-url", url, cwd=tmp_path)
    assert_one_line_failure(result, "'nope'", 'SQLite database "')


def test_unreachable_host_is_one_line_naming_host_and_database(tmp_path: Path) -> None:
    url = f"postgresql://analyst:hunter2@127.0.0.1:{free_port()}/neondb?connect_timeout=2"
    result = todo_data("report", "--database-url", url, cwd=tmp_path)
    assert_one_line_failure(result, 'database "neondb" on 127.0.0.1', secret="hunter2")


def test_bad_password_is_one_line_without_the_password(postgres_server: PostgresServer, tmp_path: Path) -> None:
    url = make_url(postgres_server.url).set(password="Wr0ngPassw0rd").render_as_string(hide_password=False)
    result = todo_data("verify", "--database-url", url, cwd=tmp_path)
    assert_one_line_failure(result, "password authentication failed", "todo_test", secret="Wr0ngPassw0rd")


def test_a_seed_that_cannot_connect_prints_the_error_and_no_progress_bar(tmp_path: Path) -> None:
    url = f"postgresql://analyst:hunter2@127.0.0.1:{free_port()}/neondb?connect_timeout=2"
    result = todo_data("seed", "--tasks", "10", "--database-url", url, cwd=tmp_path)
    assert_one_line_failure(result, 'database "neondb" on 127.0.0.1', secret="hunter2")
    assert result.stdout == ""


def test_malformed_url_from_the_environment_is_reported(tmp_path: Path) -> None:
    result = todo_data("report", cwd=tmp_path, env={"DATABASE_URL": "postgresql://u:hunter2@h:port/db"})
    assert_one_line_failure(result, 'invalid integer value "port" for connection option "port"', secret="hunter2")


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    result = todo_data("--debug", "report", "--database-url", "mysql://u:p@h/db", cwd=tmp_path)
    assert result.returncode == 1
    assert "Traceback" in result.stderr and "SettingsError" in result.stderr


async def test_verify_lists_what_failed_when_a_constraint_is_missing(
    postgres_server: PostgresServer, tmp_path: Path
) -> None:
    url = postgres_server.scratch_url()
    assert todo_data("migrate", "up", "--database-url", url, cwd=tmp_path).returncode == 0
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:  # the role owns the table, as a Neon branch owner does
            await conn.execute(text("ALTER TABLE tasks DROP CONSTRAINT ck_tasks_title_max_length"))
    finally:
        await engine.dispose()
    result = todo_data("verify", "--database-url", url, cwd=tmp_path)
    assert_one_line_failure(result, "verification failed", secret=make_url(url).password or "")
    assert "ck_tasks_title_max_length" in result.stdout
    assert "verification failed: drift, probe" in result.stderr


def test_demo_never_writes_to_database_url(tmp_path: Path) -> None:
    neon = f"postgresql://analyst:hunter2@127.0.0.1:{free_port()}/neondb"
    result = todo_data("demo", "--tasks", "50", cwd=tmp_path, env={"DATABASE_URL": neon})
    assert result.returncode == 0, result.stderr
    assert 'SQLite database "todo_data.db": added 50 sample tasks.' in result.stdout


def test_a_missing_sslrootcert_is_one_line_naming_it(tmp_path: Path) -> None:
    url = f"postgresql://analyst:hunter2@127.0.0.1:{free_port()}/neondb?sslmode=verify-full&sslrootcert=/nope/root.crt"
    for result in (
        todo_data("report", "--database-url", url, cwd=tmp_path),
        todo_data("report", cwd=tmp_path, env={"DATABASE_URL": url}),
    ):
        assert_one_line_failure(result, "sslrootcert='/nope/root.crt'", "does not exist", secret="hunter2")
        assert "Errno" not in result.stderr


def test_a_broken_database_url_does_not_stop_an_explicit_one(tmp_path: Path) -> None:
    broken = {"DATABASE_URL": "postgresql://u:hunter2@h/db?sslrootcert=/nope/root.crt", "DATABASE_POOLED": "perhaps"}
    url = f"sqlite:///{tmp_path / 'other.db'}"
    result = todo_data("migrate", "up", "--database-url", url, cwd=tmp_path, env=broken)
    assert result.returncode == 0, result.stderr
    assert migrations.head() in result.stdout


def test_export_writes_the_dataset_with_a_progress_bar_and_refuses_an_existing_path(
    scratch_url: str, tmp_path: Path
) -> None:
    import pyarrow.dataset as ds

    url = ["--database-url", scratch_url]
    assert todo_data("seed", "--tasks", "2000", "--users", "5", *url, cwd=tmp_path).returncode == 0
    completed = run_on(scratch_url, lambda engine: queries.tasks_frame(engine, status="completed"))

    result = todo_data("export", "out/tasks", "--status", "completed", *url, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"Exported {len(completed):,} tasks to out/tasks." in result.stdout
    assert "Exporting" in result.stdout  # the progress bar
    dataset = ds.dataset(tmp_path / "out" / "tasks", format="parquet", partitioning="hive").to_table()
    assert sorted(dataset.column("id").to_pylist()) == sorted(completed["id"])

    again = todo_data("export", "out/tasks", *url, cwd=tmp_path)
    assert_one_line_failure(again, "already exists", "--overwrite")
    replaced = todo_data("export", "out/tasks", "--overwrite", "--partition-by", "none", *url, cwd=tmp_path)
    assert replaced.returncode == 0 and "Exported 2,000 tasks" in replaced.stdout
    assert {p.suffix for p in (tmp_path / "out" / "tasks").iterdir()} == {".parquet"}
    wrong = todo_data("export", "elsewhere", "--partition-by", "year", *url, cwd=tmp_path)
    assert_usage_error(wrong, "--partition-by", '"month" or "none"')
    assert not (tmp_path / "elsewhere").exists()


async def test_report_and_export_read_the_replica_and_writes_there_are_refused_in_one_line(
    pg_engine: AsyncEngine, replica_server: ReplicaServer, tmp_path: Path
) -> None:
    await sample.seed(pg_engine, tasks=300, users=3, seed=2)
    replica = create_engine(replica_server.url)
    try:
        await wait_for_replay(pg_engine, replica)
    finally:
        await replica.dispose()
    # A primary nobody can reach: reading must not need it.
    env = {"DATABASE_URL": f"postgresql://u:p@127.0.0.1:{free_port()}/gone", "DATABASE_READ_URL": replica_server.url}
    report = todo_data("report", cwd=tmp_path, env=env)
    assert report.returncode == 0, report.stderr
    assert re.search(r"Tasks per user \(top 3 of 3\)", report.stdout)
    export = todo_data("export", "tasks", cwd=tmp_path, env=env)
    assert export.returncode == 0 and "Exported 300 tasks to tasks." in export.stdout, export.stderr

    password = make_url(replica_server.url).password or ""
    on_replica = ["--database-url", replica_server.url]
    for command in (["seed", "--tasks", "10"], ["migrate", "down", "base"], ["demo", "--tasks", "10"]):
        refused = todo_data(*command, *on_replica, cwd=tmp_path)
        assert_one_line_failure(refused, "is a read replica", "DATABASE_URL", secret=password)
    verify = todo_data("verify", *on_replica, cwd=tmp_path)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "skipped on a read replica" in verify.stdout and "All checks passed." in verify.stdout


def test_report_names_its_database_first_and_says_when_there_is_no_task(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    assert todo_data("migrate", "--database-url", url, cwd=tmp_path).returncode == 0
    report = todo_data("report", "--database-url", url, cwd=tmp_path)
    assert report.returncode == 0, report.stderr
    first = report.stdout.splitlines()[0]
    assert first == f"Report of SQLite database {tmp_path / 'empty.db'} (read-only)"
    assert "No tasks yet" in report.stdout


def test_a_read_never_creates_a_sqlite_file(tmp_path: Path) -> None:
    missing = tmp_path / "typo.db"
    url = ["--database-url", f"sqlite:///{missing}"]
    for command in (["report"], ["verify"], ["export", "out"], ["migrate", "down", "base"]):
        result = todo_data(*command, *url, cwd=tmp_path)
        assert_one_line_failure(result, "does not exist", str(missing), "todo-data migrate")
        assert not missing.exists(), command
    current = todo_data("migrate", "current", *url, cwd=tmp_path)
    assert current.returncode == 0 and "current: none (the SQLite file does not exist yet)" in current.stdout
    assert not missing.exists() and not (tmp_path / "out").exists()


def test_bad_option_values_are_usage_errors_naming_the_option(tmp_path: Path) -> None:
    url = ["--database-url", f"sqlite:///{tmp_path / 'x.db'}"]
    assert_usage_error(todo_data("export", "out", "--since", "yesterday", *url, cwd=tmp_path), "--since", "ISO 8601")
    assert_usage_error(todo_data("export", "out", "--until", "2025-13-01", *url, cwd=tmp_path), "--until")
    assert_usage_error(todo_data("export", "out", "--status", " ", *url, cwd=tmp_path), "--status", "non-blank")
    assert_usage_error(todo_data("export", "out", "--user-id", "", *url, cwd=tmp_path), "--user-id")
    assert_usage_error(todo_data("seed", "--tasks", "0", *url, cwd=tmp_path), "--tasks")  # Typer's own, alike
    assert not (tmp_path / "x.db").exists() and not (tmp_path / "out").exists()


def test_help_shows_plain_metavars(tmp_path: Path) -> None:
    shown = "".join(
        todo_data(*command, "--help", cwd=tmp_path).stdout
        for command in (["export"], ["seed"], ["migrate", "up"], ["migrate", "trace"], ["migrate", "new"])
    )
    options = [line for line in shown.splitlines() if line.lstrip().startswith("--")]
    for python_type in ("<str>", "<int", "<float>", "<list"):  # Typer's default: Python's names
        assert not any(python_type in line for line in options), shown
    for metavar in ("--database-url TEXT", "--tasks INTEGER", "--since DATE", "--lock-timeout SECONDS", "PATH"):
        assert metavar in shown


def test_export_that_matches_nothing_says_so(scratch_url: str, tmp_path: Path) -> None:
    url = ["--database-url", scratch_url]
    assert todo_data("seed", "--tasks", "50", "--users", "2", *url, cwd=tmp_path).returncode == 0
    result = todo_data("export", "out", "--since", "2999-01-01", "--status", "completed", *url, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "No task matched --status completed --since 2999-01-01: out holds an empty dataset" in result.stdout
    again = todo_data("export", "out", *url, cwd=tmp_path)
    assert_one_line_failure(again, "already exists: pass --overwrite to replace it")
    assert "overwrite=True" not in again.stderr


def test_a_bad_setting_stops_only_the_commands_that_use_it(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    (tmp_path / ".env").write_text(f"DATABASE_URL={url}\nDATABASE_LOCK_TIMEOUT=soon\n")
    current = todo_data("migrate", "current", cwd=tmp_path)
    assert current.returncode == 0, current.stderr
    refused = todo_data("migrate", "up", cwd=tmp_path)
    assert_one_line_failure(refused, f"DATABASE_LOCK_TIMEOUT (from {tmp_path / '.env'})")
    overridden = todo_data("migrate", "up", "--lock-timeout", "2", cwd=tmp_path)
    assert overridden.returncode == 0 and "Database is at revision" in overridden.stdout, overridden.stderr
    broken_url = todo_data("report", cwd=tmp_path, env={"DATABASE_URL": "postgresql://u:hunter2@h:port/db"})
    assert_one_line_failure(
        broken_url, "DATABASE_URL (from the environment)", 'invalid integer value "port"', secret="hunter2"
    )


def test_notebooks_are_copied_out_of_the_package(tmp_path: Path) -> None:
    from todo_data.demo import example_notebooks

    names = [path.name for path in example_notebooks()]
    assert len(names) >= 4
    result = todo_data("notebooks", "mine", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert sorted(path.name for path in (tmp_path / "mine").iterdir()) == names
    assert "todo-data[notebooks]" in result.stdout and "jupyter lab mine" in result.stdout
    (tmp_path / "mine" / names[0]).write_text("{}")
    again = todo_data("notebooks", "mine", cwd=tmp_path)
    assert f"kept {Path('mine') / names[0]}: already there" in again.stdout
    assert (tmp_path / "mine" / names[0]).read_text() == "{}"
    assert todo_data("notebooks", "mine", "--overwrite", cwd=tmp_path).returncode == 0
    assert (tmp_path / "mine" / names[0]).read_bytes() == example_notebooks()[0].read_bytes()
    (tmp_path / "file").write_text("")
    assert_one_line_failure(todo_data("notebooks", "file", cwd=tmp_path), "is a file, not a folder")
