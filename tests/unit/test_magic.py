"""``%%todo_sql`` in an IPython shell, on the notebook's database (here a seeded SQLite file)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pandas as pd
import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.unit.shell import cell, ipython_shell
from todo_data import queries, run, sample
from todo_data.magic import MAX_ROWS_SHOWN, TodoSqlMagics
from todo_data.settings import get_settings


@pytest.fixture
def shell(sqlite_url: str, sqlite_engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch) -> Iterator[InteractiveShell]:
    """An IPython shell whose notebook database (``DATABASE_URL``) holds 200 seeded tasks."""
    run(sample.seed(sqlite_engine, tasks=200, users=4, seed=9))
    monkeypatch.setenv("DATABASE_URL", sqlite_url)
    get_settings.cache_clear()
    ipython = ipython_shell()
    magics = TodoSqlMagics(ipython)  # a fresh engine for each test's database
    ipython.register_magics(magics)
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


def test_a_large_result_shows_its_row_count_and_a_truncated_view(shell: InteractiveShell) -> None:
    pd.set_option("display.max_rows", None)  # even when the notebook asked for every row
    try:
        size, table = cell(shell, "SELECT id, title, status FROM tasks", "-o everything")
    finally:
        pd.reset_option("display.max_rows")
    assert size["text/plain"] == "200 rows, 3 columns"
    assert len(shell.user_ns["everything"]) == 200  # -o keeps every row
    shown = table["text/plain"].splitlines()
    assert len(shown) < MAX_ROWS_SHOWN and "..." in table["text/plain"]
    assert "<table" in table["text/html"]


def test_a_small_result_is_shown_whole_and_counted(shell: InteractiveShell) -> None:
    size, table = cell(shell, "SELECT status, count(*) AS n FROM tasks GROUP BY status ORDER BY status")
    assert size["text/plain"] == "3 rows, 2 columns"
    assert "..." not in table["text/plain"]


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
        ("SELECT 1", "-o not-a-name", "usage: %%todo_sql [-o NAME]"),
        ("SELECT 1", "-o", "usage: %%todo_sql [-o NAME]"),
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
