"""todo-data migrate lint / trace / --lock-timeout, run as a user runs them: a subprocess."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema

from tests.e2e.helpers import assert_one_line_failure, todo_data
from tests.helpers import PostgresServer, live_database
from tests.lint_fixtures_data import fixture_sql, sarif_schema
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


def test_lint_of_sql_files_names_file_line_and_column_and_exits_1_on_an_error(tmp_path: Path) -> None:
    script = tmp_path / "0007_add_index.sql"
    script.write_text(
        "SET lock_timeout = '2s';\nSET statement_timeout = '1min';\n\nCREATE INDEX ix ON tasks (title);\n"
    )
    result = todo_data("migrate", "lint", str(script), cwd=tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"{script}:4:1 error create_index_without_concurrently: CREATE INDEX ix ON tasks")
    assert lines[-1] == "1 file checked: 1 error, 0 warnings."


def test_lint_github_format_annotates_file_and_line(tmp_path: Path) -> None:
    script = tmp_path / "drop.sql"
    script.write_text("SET lock_timeout = '2s';\nSET statement_timeout = '1min';\nDROP TABLE projects;\n")
    result = todo_data("migrate", "lint", "drop.sql", "--format", "github", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    (line,) = result.stdout.splitlines()
    assert line.startswith("::warning file=drop.sql,line=3,col=1,title=drop_table (todo-data lint)::deletes the table")


def test_lint_json_format_has_every_column(tmp_path: Path) -> None:
    scripts = make_scripts(
        tmp_path / "scripts", Revision("0002", 'op.create_index("ix_tasks_title", "tasks", ["title"])')
    )
    result = todo_data("migrate", "lint", "--script-location", str(scripts), "--format", "json", cwd=tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    (finding,) = json.loads(result.stdout)
    assert finding["revision"] == "0002" and finding["file"] == "scripts/versions/0002_fixture.py"
    assert finding["line"] == 14 and finding["squawk"] == "require-concurrent-index-creation"


def test_lint_sarif_validates_against_the_sarif_2_1_0_schema(tmp_path: Path) -> None:
    for rule in ("drop_table", "create_index_without_concurrently", "invalid_suppression"):
        (tmp_path / f"{rule}.sql").write_text(fixture_sql(rule, "bad"))
    result = todo_data(
        "migrate", "lint", *sorted(p.name for p in tmp_path.glob("*.sql")), "--format", "sarif", cwd=tmp_path
    )
    assert result.returncode == 1, result.stdout + result.stderr
    log = json.loads(result.stdout)
    jsonschema.Draft4Validator(sarif_schema()).validate(log)
    results = log["runs"][0]["results"]
    assert {r["ruleId"] for r in results} == {"drop_table", "create_index_without_concurrently", "invalid_suppression"}
    first = next(r for r in results if r["ruleId"] == "create_index_without_concurrently")
    location = first["locations"][0]["physicalLocation"]
    assert location["artifactLocation"]["uri"] == "create_index_without_concurrently.sql"
    assert location["region"]["startLine"] == 3


def test_lint_refuses_an_unknown_format_rule_or_file_in_one_line(tmp_path: Path) -> None:
    assert_one_line_failure(todo_data("migrate", "lint", "--format", "xml", cwd=tmp_path), "--format must be one of")
    assert_one_line_failure(todo_data("migrate", "lint", "--select", "nope", cwd=tmp_path), "unknown lint rule 'nope'")
    assert_one_line_failure(todo_data("migrate", "lint", "missing.sql", cwd=tmp_path), "Cannot read missing.sql")


def test_lint_with_a_database_appends_each_live_tables_size_and_estimate(
    postgres_server: PostgresServer, tmp_path: Path
) -> None:
    url = live_database(postgres_server, tasks=200)
    script = tmp_path / "index.sql"
    script.write_text("SET lock_timeout = '2s';\nSET statement_timeout = '1min';\nCREATE INDEX ix ON tasks (title);\n")
    result = todo_data("migrate", "lint", "index.sql", "--database-url", url, "--scratch-rows", "300", cwd=tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    first = result.stdout.splitlines()[0]
    assert first.startswith("index.sql:3:1 error create_index_without_concurrently: CREATE INDEX ix ON tasks")
    assert ". SHARE on tasks, 200 rows / " in first and ": roughly " in first
    report = todo_data("migrate", "lint", "index.sql", "--database-url", url, "--format", "json", cwd=tmp_path)
    (finding,) = json.loads(report.stdout)
    assert finding["rows"] == 200 and finding["bytes"] > 0 and finding["estimate"] > 0
    assert finding["lock"] == "ShareLock" and finding["rewritten"] is False
    assert finding["impact"].startswith("SHARE on tasks, 200 rows / ")


def test_lint_with_an_unreachable_database_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "index.sql").write_text("CREATE INDEX ix ON tasks (title);\n")
    url = "postgresql://someone:hunter2-secret@127.0.0.1:9/live"
    result = todo_data("migrate", "lint", "index.sql", "--database-url", url, cwd=tmp_path)
    assert_one_line_failure(result, "127.0.0.1:9", secret="hunter2-secret")
