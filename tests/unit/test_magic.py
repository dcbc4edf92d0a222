"""``%%todo_sql`` in an IPython shell, on the notebook's database (here a seeded SQLite file).

Its output, its ``--limit``, and its completion (through IPython's completer, as a kernel's
``complete_request`` calls it; tests/e2e/test_magic.py asks a real kernel).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pandas as pd
import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.unit.shell import cell, completions, ipython_shell
from todo_data import queries, run, sample
from todo_data._display import MAX_ROWS_SHOWN
from todo_data.magic import load_ipython_extension
from todo_data.settings import get_settings


@pytest.fixture
def shell(sqlite_url: str, sqlite_engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch) -> Iterator[InteractiveShell]:
    """An IPython shell whose notebook database (``DATABASE_URL``) holds 200 seeded tasks."""
    run(sample.seed(sqlite_engine, tasks=200, users=4, seed=9))
    monkeypatch.setenv("DATABASE_URL", sqlite_url)
    get_settings.cache_clear()
    ipython = ipython_shell()
    load_ipython_extension(ipython)  # a fresh engine for each test's database
    magics = ipython.magics_manager.registry["TodoSqlMagics"]
    yield ipython
    if magics._engine is not None:
        run(magics._engine.dispose())
    ipython.user_ns.clear()


def test_load_ext_registers_the_cell_magic() -> None:
    ipython = ipython_shell()
    ipython.run_line_magic("load_ext", "todo_data")
    assert "todo_sql" in ipython.magics_manager.magics["cell"]


def test_parameters_come_from_notebook_variables_and_are_only_bound(
    shell: InteractiveShell, sqlite_engine: AsyncEngine
) -> None:
    query = "SELECT id, title FROM tasks WHERE user_id = :who ORDER BY id"
    who = str(run(queries.tasks_frame(sqlite_engine))["user_id"].iloc[0])
    shell.user_ns["who"] = who
    cell(shell, query, "-o mine")
    expected = run(queries.sql(sqlite_engine, query, {"who": who}))
    pd.testing.assert_frame_equal(shell.user_ns["mine"], expected)
    assert len(expected) > 0
    shell.user_ns["who"] = f"{who}' OR '1'='1"  # text, not SQL: it matches no user
    cell(shell, query, "--out injected")
    assert shell.user_ns["injected"].empty


def test_a_large_result_shows_its_size_once_and_a_truncated_view(shell: InteractiveShell) -> None:
    pd.set_option("display.max_rows", None)  # even when the notebook asked for every row
    try:
        (shown,) = cell(shell, "SELECT id, title, status FROM tasks", "-o everything")
    finally:
        pd.reset_option("display.max_rows")
    text = shown["text/plain"]
    assert text.splitlines()[0] == "200 rows, 3 columns"
    assert "rows \u00d7" not in shown["text/html"]  # said once: no pandas footer
    assert len(shell.user_ns["everything"]) == 200  # -o keeps every row
    assert len(text.splitlines()) < MAX_ROWS_SHOWN and "…" in text
    assert "<table" in shown["text/html"]


def test_a_small_result_is_shown_whole_and_counted(shell: InteractiveShell) -> None:
    (shown,) = cell(shell, "SELECT status, count(*) AS n FROM tasks GROUP BY status ORDER BY status")
    lines = shown["text/plain"].splitlines()
    assert lines[0] == "3 rows, 2 columns" and len(lines) == 5
    assert "…" not in shown["text/plain"]


def test_null_reads_as_null(shell: InteractiveShell) -> None:
    (shown,) = cell(shell, "SELECT NULL AS absent, 1.5 AS x UNION ALL SELECT 'a', NULL")
    assert [line.split() for line in shown["text/plain"].splitlines()[2:]] == [["NULL", "1.5"], ["a", "NULL"]]


def test_limit_stops_the_database_after_the_rows_asked_and_says_there_are_more(
    shell: InteractiveShell, sqlite_engine: AsyncEngine
) -> None:
    (shown,) = cell(shell, "SELECT id FROM tasks ORDER BY created_at, id -- newest last", "--limit 7 -o some")
    assert shown["text/plain"].splitlines()[0] == "showing 7 of at least 8 rows, 1 column (--limit 7)"
    assert len(shell.user_ns["some"]) == 7
    everything = run(queries.sql(sqlite_engine, "SELECT id FROM tasks ORDER BY created_at, id"))
    assert shell.user_ns["some"]["id"].tolist() == everything["id"].tolist()[:7]  # the order kept


def test_limit_above_the_result_size_counts_exactly(shell: InteractiveShell) -> None:
    (shown,) = cell(shell, "SELECT status FROM tasks GROUP BY status;", "--limit=3")
    assert shown["text/plain"].splitlines()[0] == "3 rows, 1 column"


def test_limit_as_the_shells_default_and_a_cells_own_wins(shell: InteractiveShell) -> None:
    shell.run_line_magic("config", "TodoSqlMagics.limit = 5")
    (shown,) = cell(shell, "SELECT id FROM tasks")
    assert shown["text/plain"].startswith("showing 5 of at least 6 rows")
    (shown,) = cell(shell, "SELECT id FROM tasks", "--limit 2")
    assert shown["text/plain"].startswith("showing 2 of at least 3 rows")


@pytest.mark.parametrize(
    "sql",
    [
        "WITH t AS (SELECT id FROM tasks) SELECT * FROM t",
        "VALUES (1), (2), (3), (4)",
        "SELECT id FROM tasks WHERE title <> ':limit' /* ) LIMIT 1 */",
        "SELECT id FROM tasks\n-- a comment on the last line",
    ],
)
def test_limit_wraps_any_query_as_analysts_type_it(shell: InteractiveShell, sql: str) -> None:
    (shown,) = cell(shell, sql.replace("\\n", "\n"), "--limit 2")
    assert shown["text/plain"].startswith("showing 2 of at least 3 rows")


def test_the_database_is_opened_once_and_reused(shell: InteractiveShell) -> None:
    cell(shell, "SELECT 1 AS one")
    magics = shell.magics_manager.registry["TodoSqlMagics"]
    engine = magics._engine
    cell(shell, "SELECT 2 AS two")
    assert magics._engine is engine is not None


@pytest.mark.parametrize(
    ("sql", "line", "message"),
    [
        ("SELECT * FROM tasks WHERE user_id = :nobody", "", "no notebook variable for :nobody"),
        ("SELECT * FROM no_such_table", "", "QueryError: "),
        ("DELETE FROM tasks", "", "InvalidArgumentError: the query must be one read statement"),
        ("SELECT ':x", "", "InvalidArgumentError: the string literal opened at line 1, column 8 is not closed"),
        ("SELECT 1", "-o not-a-name", "usage: %%todo_sql [-o NAME] [--limit N]"),
        ("SELECT 1", "-o", "usage: %%todo_sql [-o NAME]"),
        ("SELECT 1", "-o a -o b", "usage: %%todo_sql [-o NAME]"),
        ("SELECT 1", "--lmit 3", "usage: %%todo_sql [-o NAME]"),
        ("SELECT 1", "--limit 0", "--limit takes a whole number of rows ≥ 1, not '0'"),
        ("SELECT 1", "--limit ten", "--limit takes a whole number of rows ≥ 1, not 'ten'"),
        ("SELECT 1", "--limit -1", "--limit takes a whole number of rows ≥ 1, not '-1'"),
        ("SELECT 1", "-o 'unclosed", "%%todo_sql -o 'unclosed"),
    ],
)
def test_mistakes_are_one_line_usage_errors(shell: InteractiveShell, sql: str, line: str, message: str) -> None:
    with pytest.raises(UsageError) as raised:
        cell(shell, sql, line)
    assert message in str(raised.value)
    assert "\n" not in str(raised.value)


def test_the_no_such_table_error_is_the_databases_message(shell: InteractiveShell) -> None:
    with pytest.raises(UsageError, match="no such table: no_such_table"):
        cell(shell, "SELECT * FROM no_such_table")


def test_import_todo_data_does_not_load_ipython() -> None:
    code = "import sys, todo_data; todo_data.load_ipython_extension; print('IPython' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_a_cell_as_analysts_type_it_runs(shell: InteractiveShell) -> None:
    """A trailing semicolon, a comment, and a :name inside a literal that is no parameter."""
    shell.user_ns["wanted"] = "pending"
    cell(
        shell,
        "-- open tasks per status\nSELECT ':wanted' AS literal, count(*) AS n FROM tasks\n"
        "WHERE status = :wanted;  -- done\n",
        "-o counted",
    )
    frame = shell.user_ns["counted"]
    assert frame["literal"].tolist() == [":wanted"] and int(frame["n"].iloc[0]) > 0


def complete(shell: InteractiveShell, sql: str, at: str | None = None) -> list[tuple[str, str]]:
    """What Tab offers in ``%%todo_sql`` with ``sql`` (the cursor at its end, or after ``at``)."""
    code = f"%%todo_sql\n{sql}"
    cursor = len(code) if at is None else code.index(at) + len(at)
    return completions(shell, code, cursor)


def texts(offered: list[tuple[str, str]], kind: str) -> list[str]:
    return [text for text, type_ in offered if type_ == kind]


def test_tab_completes_table_names(shell: InteractiveShell) -> None:
    assert complete(shell, "SELECT * FROM ta") == [("tasks", "table")]  # a table is expected: no column, no keyword
    assert "alembic_version" in texts(complete(shell, "SELECT * FROM "), "table")


def test_tab_completes_columns_of_the_named_table_and_after_its_alias(shell: InteractiveShell) -> None:
    assert texts(complete(shell, "SELECT ti FROM tasks", at="SELECT ti"), "column") == ["title"]
    assert complete(shell, "SELECT t.st FROM tasks AS t", at="t.st") == [("t.status", "column")]
    assert complete(shell, "SELECT x.u FROM tasks x JOIN tasks y ON x.id = y.id", at="x.u") == [
        ("x.updated_at", "column"),
        ("x.user_id", "column"),
    ]
    every = texts(complete(shell, "SELECT tasks. FROM tasks", at="tasks."), "column")
    columns = ["id", "user_id", "title", "description", "status", "created_at", "updated_at"]
    assert sorted(every) == sorted(f"tasks.{c}" for c in columns)


def test_tab_completes_keywords_in_the_case_being_typed(shell: InteractiveShell) -> None:
    assert ("SELECT", "keyword") in complete(shell, "SEL")
    assert ("group by", "keyword") in complete(shell, "SELECT 1 FROM tasks gro")


def test_tab_offers_no_python_in_sql_and_nothing_inside_a_literal(shell: InteractiveShell) -> None:
    shell.user_ns["status_wanted"] = "pending"
    offered = complete(shell, "SELECT * FROM tasks WHERE status = 'stat")
    assert offered == [("stat", "sql")]  # the word as typed: no Python name, no file
    assert all(type_ in {"table", "column", "keyword"} for _, type_ in complete(shell, "SELECT stat"))


def test_tab_outside_the_sql_is_left_to_python(shell: InteractiveShell) -> None:
    shell.user_ns["tasks_wanted"] = 3
    assert "tasks_wanted" in [text for text, _ in completions(shell, "tasks_w", 7)]
    line = "%%todo_sql -o ta"  # the magic's own line is no SQL
    assert "tasks" not in [text for text, _ in completions(shell, line, len(line))]


def test_odd_identifiers_are_completed_quoted(shell: InteractiveShell, sqlite_engine: AsyncEngine) -> None:
    async def create() -> None:
        from sqlalchemy import text

        async with sqlite_engine.begin() as conn:
            await conn.execute(text('CREATE TABLE "Odd Table" ("Mixed Case" int, "order" int, "say ""hi""" int)'))

    run(create())  # DDL through the toolkit's engine: the catalog is read again
    assert ('"Odd Table"', "table") in complete(shell, "SELECT * FROM Od")
    offered = texts(complete(shell, 'SELECT o. FROM "Odd Table" o', at="o."), "column")
    assert offered == ['o."Mixed Case"', 'o."order"', 'o."say ""hi"""']


def test_the_catalog_is_read_once_and_again_on_refresh(shell: InteractiveShell, sqlite_url: str) -> None:
    assert ("tasks", "table") in complete(shell, "SELECT * FROM ta")
    import sqlite3

    with sqlite3.connect(sqlite_url.removeprefix("sqlite:///")) as other:  # another client: no DDL seen here
        other.execute("CREATE TABLE task_notes (note text)")
    assert ("task_notes", "table") not in complete(shell, "SELECT * FROM ta")  # cached
    with capture_output() as captured:
        shell.run_line_magic("todo_sql_refresh", "")
    assert "tables" in captured.outputs[0].data["text/plain"]
    assert ("task_notes", "table") in complete(shell, "SELECT * FROM ta")
