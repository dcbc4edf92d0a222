"""todo-data migrate lint / trace / --lock-timeout, run as a user runs them: a subprocess."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.helpers import assert_one_line_failure, todo_data
from tests.helpers import PostgresServer
from tests.migration_scripts import Revision, make_scripts


def test_lint_of_the_projects_revisions_is_clean_and_exits_0(tmp_path: Path) -> None:
    result = todo_data("migrate", "lint", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "2 revisions checked: 0 errors, 0 warnings."


def test_lint_prints_one_line_per_finding_and_exits_1_on_an_error(tmp_path: Path) -> None:
    scripts = make_scripts(
        tmp_path / "scripts",
        Revision("0002", 'op.create_index("ix_tasks_title", "tasks", ["title"])'),
        Revision("0003", 'op.drop_column("tasks", "description")'),
    )
    result = todo_data("migrate", "lint", "--script-location", str(scripts), cwd=tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("0002 error create_index_without_concurrently: CREATE INDEX ix_tasks_title ON tasks")
    assert lines[1].startswith("0003 warning drop_column: ALTER TABLE tasks DROP COLUMN description -- ")
    assert lines[2] == "3 revisions checked: 1 error, 1 warning."
    assert len(lines) == 3


def test_lint_with_warnings_only_exits_0(tmp_path: Path) -> None:
    scripts = make_scripts(tmp_path / "scripts", Revision("0002", 'op.drop_column("tasks", "description")'))
    result = todo_data("migrate", "lint", "--script-location", str(scripts), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[-1] == "2 revisions checked: 0 errors, 1 warning."


def test_lint_of_a_directory_that_is_not_a_script_directory_is_one_line(tmp_path: Path) -> None:
    result = todo_data("migrate", "lint", "--script-location", str(tmp_path), cwd=tmp_path)
    assert_one_line_failure(result, "is not an Alembic script directory")


def test_trace_on_sqlite_says_it_applies_to_postgresql(tmp_path: Path) -> None:
    result = todo_data("migrate", "trace", "--database-url", f"sqlite:///{tmp_path / 'x.db'}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("trace applies to PostgreSQL")


def test_trace_on_postgresql_shows_each_statements_locks(postgres_server: PostgresServer, tmp_path: Path) -> None:
    result = todo_data("migrate", "trace", "--database-url", postgres_server.url, "--rows", "100", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("Locks each statement took, revisions up to head")
    (trigger,) = [line for line in lines if "CREATE TRIGGER" in line]
    assert trigger.startswith("0002") and "tasks: ShareRowExclusiveLock  | CREATE TRIGGER" in trigger


def test_trace_of_an_unknown_revision_is_one_line(postgres_server: PostgresServer, tmp_path: Path) -> None:
    result = todo_data("migrate", "trace", "nope", "--database-url", postgres_server.url, cwd=tmp_path)
    assert_one_line_failure(result, "Unknown revision 'nope'")


def test_migrate_takes_a_lock_timeout_and_refuses_a_negative_one(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    result = todo_data("migrate", "--database-url", url, "--lock-timeout", "2", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Database is at revision 0002." in result.stdout
    refused = todo_data("migrate", "down", "base", "--database-url", url, "--lock-timeout", "-1", cwd=tmp_path)
    assert_one_line_failure(refused, "lock_timeout must be between 0 (no limit)")
