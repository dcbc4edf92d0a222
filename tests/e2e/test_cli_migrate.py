"""todo-data migrate lint / trace / --lock-timeout, run as a user runs them: a subprocess."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from tests.e2e.helpers import assert_one_line_failure, assert_usage_error, todo_data
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
    for bad in ("-1", "nan", "inf", "soon"):
        refused = todo_data("migrate", "down", "base", "--database-url", url, "--lock-timeout", bad, cwd=tmp_path)
        assert_usage_error(refused, "--lock-timeout")
        assert "lock_timeout" not in refused.stderr
    assert "current: 0002" in todo_data("migrate", "current", "--database-url", url, cwd=tmp_path).stdout


def test_trace_says_already_held_rather_than_no_lock(postgres_server: PostgresServer, tmp_path: Path) -> None:
    scripts = make_scripts(
        tmp_path / "scripts",
        Revision(
            "0002",
            """
            op.add_column("tasks", sa.Column("priority", sa.Integer()))
            op.create_index("ix_tasks_priority", "tasks", ["priority"])
            op.create_index("ix_tasks_priority_title", "tasks", ["priority", "title"])
            """,
        ),
    )
    url = ["--database-url", postgres_server.url, "--script-location", str(scripts), "--rows", "10"]
    result = todo_data("migrate", "trace", *url, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    (second,) = [line for line in result.stdout.splitlines() if "ix_tasks_priority_title" in line]
    assert "tasks: already held: AccessExclusiveLock, ShareLock  | CREATE INDEX" in second
    (first,) = [line for line in result.stdout.splitlines() if "INDEX ix_tasks_priority ON" in line]
    assert "tasks: ShareLock (already held: AccessExclusiveLock)" in first


async def test_migrate_says_which_lock_it_waits_for_on_each_attempt(
    postgres_server: PostgresServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy import text

    from tests.helpers import with_query
    from todo_data import create_engine, migrations
    from todo_data.migrations import _locks

    monkeypatch.setattr(_locks, "LOCK_RETRY_DELAY", 0.01)
    url = postgres_server.scratch_url()
    assert todo_data("migrate", "up", "0001", "--database-url", url, cwd=tmp_path).returncode == 0
    engine = create_engine(with_query(url, application_name="nightly-report"))
    conn = await engine.connect()
    try:
        await conn.begin()
        await conn.execute(text("LOCK TABLE tasks IN ROW EXCLUSIVE MODE"))
        pid = int((await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one())
        result = todo_data("migrate", "--database-url", url, "--lock-timeout", "0.2", cwd=tmp_path)
    finally:
        await conn.close()
        await engine.dispose()
    assert_one_line_failure(result, "a lock was not available", "--lock-timeout or DATABASE_LOCK_TIMEOUT")
    assert "lock_timeout=" not in result.stderr
    waits = result.stdout.splitlines()
    assert len(waits) == migrations.LOCK_RETRIES, result.stdout
    assert waits[0].startswith(f"waiting for a lock on tasks held by pid {pid} (application nightly-report, ")
    assert waits[0].endswith("; retry 1 of 3 in 0.01 s") and waits[2].endswith("; retry 3 of 3 in 0.04 s")
    assert todo_data("migrate", "--database-url", url, cwd=tmp_path).stdout == "Database is at revision 0002.\n"


def test_migrate_up_takes_the_revision_as_an_argument(tmp_path: Path) -> None:
    url = ["--database-url", f"sqlite:///{tmp_path / 'x.db'}"]
    assert todo_data("migrate", "up", "0001", *url, cwd=tmp_path).stdout == "Database is at revision 0001.\n"
    assert todo_data("migrate", "up", *url, cwd=tmp_path).stdout == "Database is at revision 0002.\n"
    assert todo_data("migrate", "down", "0001", *url, cwd=tmp_path).stdout == "Database is at revision 0001.\n"


def test_new_writes_the_next_numbered_revision_from_the_model_and_lints_it(tmp_path: Path) -> None:
    # The scripts lack the status index the model declares: the new revision must create it.
    scripts = make_scripts(
        tmp_path / "scripts",
        Revision(
            "0002",
            'op.drop_index("ix_tasks_status", "tasks")',
            'op.create_index("ix_tasks_status", "tasks", ["status"])',
        ),
    )
    url = ["--database-url", f"sqlite:///{tmp_path / 'never.db'}", "--script-location", str(scripts)]
    result = todo_data("migrate", "new", "restore the status index", *url, cwd=tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr  # the lint found an error in it
    written = scripts / "versions" / "0003_restore_the_status_index.py"
    lines = result.stdout.splitlines()
    assert lines[0] == f"Wrote 0003 ({written.relative_to(tmp_path)}) from the model's changes."
    assert lines[1] == (
        "trigger trg_tasks_updated_at on tasks: autogenerate does not write it: add it to "
        "0003_restore_the_status_index.py by hand"
    )
    assert any(
        line.startswith("0003 error create_index_without_concurrently: CREATE INDEX ix_tasks_status") for line in lines
    )
    assert lines[-1] == "Lint of 0003: 1 error, 0 warnings."
    source = written.read_text()
    assert 'revision: str = "0003"' in source and 'down_revision: str | None = "0002"' in source
    assert '.create_index(batch_op.f("ix_tasks_status"), ["status"], unique=False)' in source  # SQLite: batch mode
    assert not (tmp_path / "never.db").exists()  # the model was compared on a scratch database
    again = todo_data("migrate", "new", "and another", *url, cwd=tmp_path)
    assert "Wrote 0004 (" in again.stdout and "upgrade() is empty: write it by hand" in again.stdout


def test_new_refuses_a_message_that_would_change_the_script_and_a_directory_without_a_template(tmp_path: Path) -> None:
    scripts = make_scripts(tmp_path / "scripts")
    url = ["--database-url", f"sqlite:///{tmp_path / 'x.db'}", "--script-location", str(scripts)]
    for message in ("  ", 'say """hi"""', "two\nlines", "back\\slash"):
        assert_usage_error(todo_data("migrate", "new", message, *url, cwd=tmp_path), "MESSAGE", "must be")
    (scripts / "script.py.mako").unlink()
    assert_one_line_failure(todo_data("migrate", "new", "x", *url, cwd=tmp_path), "has no script.py.mako")
    assert sorted(path.name for path in (scripts / "versions").glob("*.py")) == ["0001_create_tasks.py"]


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
