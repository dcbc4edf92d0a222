"""``%%todo_sql`` in a real kernel, as JupyterLab uses it: Tab (complete_request) on SQLite and PostgreSQL.

The kernel's notebook database is ``DATABASE_URL``: a migrated SQLite file or the test
PostgreSQL. The completions come from that database's catalog.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.helpers import PostgresServer
from tests.kernels import Kernel, started_kernel

TASK_COLUMNS = ["id", "user_id", "title", "description", "status", "created_at", "updated_at"]


@pytest.fixture(params=["sqlite", "postgresql"])
def notebook_database(request: pytest.FixtureRequest) -> tuple[str, AsyncEngine]:
    """(DATABASE_URL, an engine of the test's own on it), migrated."""
    if request.param == "sqlite":
        return request.getfixturevalue("sqlite_url"), request.getfixturevalue("sqlite_engine")
    server: PostgresServer = request.getfixturevalue("postgres_server")
    return server.url, request.getfixturevalue("pg_engine")


@pytest.fixture
async def outside_table(notebook_database: tuple[str, AsyncEngine]) -> AsyncIterator[str]:
    """The name of a table the test creates from outside the kernel (dropped afterwards)."""
    _, engine = notebook_database
    yield "task_labels"
    async with engine.begin() as conn:
        await conn.execute(text("DROP TABLE IF EXISTS task_labels"))
        await conn.execute(text("DROP TABLE IF EXISTS task_notes"))


@pytest.fixture
def kernel(notebook_database: tuple[str, AsyncEngine], tmp_path: Path) -> Iterator[Kernel]:
    url, _ = notebook_database
    env = {k: v for k, v in os.environ.items() if not k.startswith("DATABASE_")}
    env["DATABASE_URL"] = url
    with started_kernel(env, tmp_path) as kernel:
        kernel.run("%load_ext todo_data")
        yield kernel


def test_tab_completes_tables_columns_after_an_alias_and_keywords(kernel: Kernel) -> None:
    assert kernel.complete("%%todo_sql\nSELECT * FROM ta") == ("ta", [("tasks", "table")])
    code = "%%todo_sql\nSELECT t.ti\nFROM tasks AS t"
    assert kernel.complete(code, code.index("t.ti") + 4) == ("t.ti", [("t.title", "column")])
    replaced, offered = kernel.complete("%%todo_sql\nSELECT ")  # before any FROM: the columns of every table
    assert replaced == "" and {(c, "column") for c in TASK_COLUMNS} <= set(offered)
    assert ("tasks", "table") in offered
    assert kernel.complete("%%todo_sql\nSELECT id FROM tasks ord")[1] == [("order by", "keyword")]


def test_tab_in_sql_offers_no_python_and_python_cells_are_left_alone(kernel: Kernel) -> None:
    kernel.run("import os\ntitle_words = 3")
    assert kernel.complete("%%todo_sql\nSELECT * FROM tasks WHERE title = 'titl") == (
        "titl",
        [("titl", "sql")],  # the word as typed: no Python name, no file
    )
    assert ("title_words", "instance") in kernel.complete("title_w")[1]


async def test_ddl_through_the_toolkit_is_seen_at_once_and_another_clients_after_a_refresh(
    kernel: Kernel, notebook_database: tuple[str, AsyncEngine], outside_table: str
) -> None:
    assert kernel.complete("%%todo_sql\nSELECT * FROM task_")[1] == [("task_", "sql")]  # the catalog is read: no table
    kernel.run(
        "from sqlalchemy import text\nfrom todo_data import create_engine, session_scope\n"
        "writer = create_engine()\n"
        "async with session_scope(writer) as session:\n"
        "    await session.execute(text('CREATE TABLE task_notes (task_id text, note text)'))\n"
        "await writer.dispose()"
    )
    assert kernel.complete("%%todo_sql\nSELECT * FROM task_") == ("task_", [("task_notes", "table")])
    code = "%%todo_sql\nSELECT n.no FROM task_notes n"
    assert kernel.complete(code, code.index("n.no") + 4) == ("n.no", [("n.note", "column")])

    _, engine = notebook_database
    async with engine.begin() as conn:  # another client: the kernel cannot know
        await conn.execute(text(f"CREATE TABLE {outside_table} (label text)"))
    assert (outside_table, "table") not in kernel.complete("%%todo_sql\nSELECT * FROM task_")[1]
    (said,) = [out for out in kernel.run("%todo_sql_refresh") if "data" in out]
    assert said["data"]["text/plain"].endswith("columns to complete from'")
    assert (outside_table, "table") in kernel.complete("%%todo_sql\nSELECT * FROM task_")[1]


def test_limit_is_applied_by_the_database(kernel: Kernel, notebook_database: tuple[str, AsyncEngine]) -> None:
    cell = "%%todo_sql --limit 2\nWITH v (n) AS (VALUES (1), (2), (3)) SELECT n FROM v ORDER BY n"
    (shown,) = [out for out in kernel.run(cell) if "data" in out]
    assert shown["data"]["text/plain"].splitlines()[0] == "showing 2 of at least 3 rows, 1 column (--limit 2)"
