"""The example notebooks: committed without outputs, and executed against every backend."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path
from urllib.parse import quote

import nbformat
import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.e2e.helpers import NOTEBOOKS, execute
from tests.helpers import PostgresServer, ReplicaServer, wait_for_replay
from todo_data import create_engine, demo, queries, sample, show


def test_there_are_four_example_notebooks() -> None:
    assert [n.name for n in NOTEBOOKS] == [
        "01_task_distributions.ipynb",
        "02_verify_constraints.ipynb",
        "03_migrations.ipynb",
        "04_ad_hoc_sql.ipynb",
    ]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_notebooks_carry_no_outputs(path: Path) -> None:
    notebook = json.loads(path.read_text())
    for cell in notebook["cells"]:
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell["execution_count"] is None, cell["source"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebooks_say_what_they_need_first(path: Path) -> None:
    first = nbformat.read(path, as_version=4).cells[0]
    assert first.cell_type == "markdown"
    assert "DATABASE_URL" in first.source and "Neon" in first.source


def all_output_text(notebook: nbformat.NotebookNode) -> str:
    return json.dumps([cell.get("outputs", []) for cell in notebook.cells])


def result_of(notebook: nbformat.NotebookNode, code: str) -> dict[str, str]:
    """The displayed result (mime type -> text) of the one cell whose source contains ``code``."""
    (cell,) = [c for c in notebook.cells if c.cell_type == "code" and code in c.source]
    (result,) = [out for out in cell.outputs if out.get("output_type") == "execute_result"]
    return dict(result["data"])


def column(result: dict[str, str], name: str) -> list[str]:
    """The cells of column ``name`` of a table ``todo_data.show`` displayed, read from its HTML."""
    page = result["text/html"]
    header = [html.unescape(h) for h in re.findall(r"<th(?:\s[^>]*)?>(.*?)</th>", page)]
    rows = [re.findall(r"<td(?:\s[^>]*)?>(.*?)</td>", row, flags=re.S) for row in re.findall(r"<tr>(.*?)</tr>", page)]
    cells = [row[header.index(name)] for row in rows if row]
    return [html.unescape(re.sub(r"<details.*?<summary>(.*?)</summary>.*", r"\1", c, flags=re.S)) for c in cells]


def assert_checks_passed(path: Path, notebook: nbformat.NotebookNode, *, postgresql: bool) -> None:
    """The verification notebooks must not just run: their verdicts must be good."""
    if path.stem.startswith("02"):
        assert "OK: every check passed" in result_of(notebook, "checks.verify(")["text/html"]
        assert set(column(result_of(notebook, "checks.probe("), "rejected")) == {"yes"}
    if path.stem.startswith("03"):
        assert "'up to date': True" in result_of(notebook, "migrations.current(")["text/plain"]
        assert result_of(notebook, "migrations.drift(")["text/plain"].startswith("no rows\n")
        roundtrip = result_of(notebook, "migrations.verify_roundtrip(")
        assert "upgrade 0002 again" in roundtrip["text/html"]
        assert "1,000 rows unchanged (same checksum)" in roundtrip["text/html"]  # the whole detail, a click away
        assert set(column(roundtrip, "ok")) == {"yes"} and "differs" not in roundtrip["text/html"]
        lint = result_of(notebook, "migrations.lint()")["text/plain"]
        assert "'lint applies to': 'PostgreSQL (Neon)'" in lint and "'findings': 0" in lint
        assert result_of(notebook, "show(findings)")["text/plain"].startswith("no rows\n")
        trace = result_of(notebook, "migrations.trace(")["text/html"]
        assert "tex2jax_ignore" in trace and "$" not in trace  # a function body is no formula
        shown = result_of(notebook, "migrations.trace(")
        assert (
            "nan" not in shown["text/plain"] and "NaT" not in shown["text/plain"] and "days" not in shown["text/plain"]
        )
        if postgresql:
            assert all(d.endswith(" ms") for d in column(shown, "duration"))
            assert "nan" not in column(shown, "relation")
        if postgresql:
            assert "CREATE TRIGGER trg_tasks_updated_at" in trace and "ShareRowExclusiveLock" in trace
            assert "AccessExclusiveLock" not in trace.split("CREATE FUNCTION", 1)[1]  # revision 0002's rows
        else:
            assert "trace applies to PostgreSQL" in trace


def first_code_cell_shows(notebook: nbformat.NotebookNode) -> str:
    """What the cell that opens the database (the first code cell) displays."""
    cell = next(c for c in notebook.cells if c.cell_type == "code")
    assert "demo.open_database(" in cell.source
    (result,) = [out for out in cell.outputs if out.get("output_type") == "execute_result"]
    text: str = result["data"]["text/plain"]
    assert "0x" not in text  # a description, not <AsyncEngine object at 0x…>
    return text


def displayed(notebook: nbformat.NotebookNode, code: str) -> list[str]:
    """The plain text of what the one cell whose source contains ``code`` displayed (a magic's output)."""
    (cell,) = [c for c in notebook.cells if c.cell_type == "code" and code in c.source]
    return [out["data"]["text/plain"] for out in cell.outputs if out.get("output_type") == "display_data"]


def assert_ad_hoc_sql_shown(path: Path, notebook: nbformat.NotebookNode, tasks: int) -> None:
    """04: each magic showed its size once and its rows, a large result truncated, a limited one
    honest about it; the profile came."""
    if not path.stem.startswith("04"):
        return
    (table,) = displayed(notebook, "GROUP BY status")
    size, *rows = table.splitlines()
    assert size == "3 rows, 2 columns" and len(rows) == 4 and "completed" in table
    (table,) = displayed(notebook, "-o tasks")
    assert table.splitlines()[0] == f"{tasks:,} rows, 5 columns"
    assert "…" in table and len(table.splitlines()) < 60
    (table,) = displayed(notebook, "--limit 5")
    assert table.splitlines()[0] == "showing 5 of at least 6 rows, 3 columns (--limit 5)"
    assert len(table.splitlines()) == 1 + 1 + 5
    header = result_of(notebook, "by_user.head(")["text/plain"].split()[:4]
    assert header == ["user_id", "tasks", "completed", "completion"]
    assert all(rate.endswith("%") for rate in column(result_of(notebook, "by_user.head("), "completion"))
    profile = result_of(notebook, "queries.profile(")["text/plain"]
    assert "length_p95" in profile and "created_at" in profile


def assert_distributions_read_well(path: Path, notebook: nbformat.NotebookNode) -> None:
    """01: the tables under the charts read like the CLI: no leftover index, dates, shares, ages in days."""
    if not path.stem.startswith("01"):
        return
    text = "\n".join(
        out["data"].get(mime, "")
        for cell in notebook.cells
        for out in cell.get("outputs", [])
        if "data" in out
        for mime in ("text/plain", "text/html")
    )  # what the tables say, not the charts' image bytes
    for raw in ("00:00:00+00:00", "NaN", "<NA>", "NaT", "0 days"):
        assert raw not in text
    assert all(share.endswith("%") for share in column(result_of(notebook, "show(counts)"), "share"))
    per_user = result_of(notebook, "per_user.sort_values(")["text/plain"]
    assert per_user.splitlines()[0].split()[0] == "user_id"  # no index before it
    periods = column(result_of(notebook, "created.tail("), "period")
    assert periods and all(re.fullmatch(r"\d{4}-\d{2}-\d{2}", period) for period in periods)
    ages = dict(line.split(None, 1) for line in result_of(notebook, 'ages["age"]')["text/plain"].splitlines()[1:])
    assert re.fullmatch(r"[\d,]+", ages["count"]) and re.fullmatch(r"[\d,]+ d \d+ h", ages["max"])


def images(notebook: nbformat.NotebookNode) -> int:
    return sum("image/png" in out.get("data", {}) for cell in notebook.cells for out in cell.get("outputs", []))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_on_the_embedded_sqlite_demo_database(path: Path, tmp_path: Path) -> None:
    notebook = execute(path, tmp_path)
    assert (tmp_path / "todo_data.db").is_file()
    shown = first_code_cell_shows(notebook)
    assert shown.startswith("Demo database: sample data, not yours.")
    assert f"SQLite database {tmp_path.resolve() / 'todo_data.db'}" in shown
    assert "set DATABASE_URL" in shown and "DATABASE_URL=postgresql://" in shown
    assert_checks_passed(path, notebook, postgresql=False)
    assert_ad_hoc_sql_shown(path, notebook, tasks=demo.DEMO_TASKS)
    assert_distributions_read_well(path, notebook)
    if path.stem.startswith("01"):
        assert images(notebook) == 4


@pytest.fixture(params=["direct", "pooled"])
async def seeded_postgres(
    request: pytest.FixtureRequest, pg_engine: AsyncEngine, postgres_server: PostgresServer
) -> tuple[str, str, str]:
    """(DATABASE_URL, DATABASE_POOLED, the status counts table the notebook must show)."""
    await sample.seed(pg_engine, tasks=2_000, users=20, seed=1)
    expected = repr(show(await queries.status_counts(pg_engine)))
    if request.param == "direct":
        return postgres_server.url, "", expected
    pooled_url: str = request.getfixturevalue("pooled_url")
    return pooled_url, "true", expected


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_on_postgresql_and_never_shows_the_password(
    path: Path,
    tmp_path: Path,
    seeded_postgres: tuple[str, str, str],
    postgres_server: PostgresServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url, pooled, expected_counts = seeded_postgres
    monkeypatch.setenv("DATABASE_URL", url)
    if pooled:
        monkeypatch.setenv("DATABASE_POOLED", pooled)
        # Migrations (the round trip in 03) need the direct endpoint.
        monkeypatch.setenv("DATABASE_DIRECT_URL", postgres_server.url)
    notebook = execute(path, tmp_path)
    assert not (tmp_path / "todo_data.db").exists()
    opened = make_url(url)
    shown = first_code_cell_shows(notebook)
    assert shown.startswith(
        f'PostgreSQL database "{opened.database}" on {opened.host}:{opened.port} as user "{opened.username}"'
    )
    assert ("pooled endpoint" if pooled else "direct endpoint") in shown
    assert ("read-write" if path.stem.startswith("02") else "read-only") in shown  # 02's probe writes
    assert "DATABASE_URL from the environment." in shown
    assert "demo" not in shown.lower()
    assert_checks_passed(path, notebook, postgresql=True)
    assert_ad_hoc_sql_shown(path, notebook, tasks=2_000)
    assert_distributions_read_well(path, notebook)
    text = all_output_text(notebook)
    password = make_url(url).password
    assert password
    for secret in (password, quote(password, safe="")):
        assert secret not in text
    if path.stem.startswith("01"):
        assert images(notebook) == 4
        shown = [
            out["data"]["text/plain"] for out in notebook.cells[3].outputs if out.get("output_type") == "execute_result"
        ]
        assert shown == [expected_counts]


def test_a_kernel_started_in_notebooks_reads_the_projects_dotenv(
    tmp_path: Path, pg_engine: AsyncEngine, postgres_server: PostgresServer
) -> None:
    """JupyterLab starts kernels in notebooks/: the project's .env above it must be found."""
    project = tmp_path / "project"
    (project / "notebooks").mkdir(parents=True)
    (project / ".env").write_text(f"DATABASE_URL={postgres_server.url}\n")
    opening = execute(NOTEBOOKS[0], project / "notebooks", cells=2)  # up to the cell that opens the database
    assert not (project / "notebooks" / "todo_data.db").exists()  # no silent demo database
    shown = first_code_cell_shows(opening)
    assert shown.startswith('PostgreSQL database "todo_test"') and f"DATABASE_URL from {project / '.env'}." in shown
    password = make_url(postgres_server.url).password or ""
    assert password and password not in all_output_text(opening)


async def seed_and_replay(pg_engine: AsyncEngine, read_url: str, *, pooled: bool) -> str:
    """Seed the primary, wait until the replica at ``read_url`` has it; the status counts to expect."""
    await sample.seed(pg_engine, tasks=2_000, users=20, seed=1)
    reader = create_engine(read_url, pooled=pooled)
    try:
        await wait_for_replay(pg_engine, reader)
    finally:
        await reader.dispose()
    return repr(show(await queries.status_counts(pg_engine)))


@pytest.fixture(params=["replica", "replica-pooled"])
async def seeded_replica(
    request: pytest.FixtureRequest, pg_engine: AsyncEngine, replica_server: ReplicaServer
) -> tuple[str, bool, str]:
    """(DATABASE_READ_URL, whether it is pooled, the status counts the notebook must show), replayed."""
    pooled = request.param == "replica-pooled"
    url: str = request.getfixturevalue("replica_pooled_url") if pooled else replica_server.url
    return url, pooled, await seed_and_replay(pg_engine, url, pooled=pooled)


@pytest.mark.parametrize("path", [NOTEBOOKS[0]], ids=lambda p: p.stem)
def test_the_distributions_notebook_reads_the_read_replica(
    path: Path,
    tmp_path: Path,
    seeded_replica: tuple[str, bool, str],
    postgres_server: PostgresServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    read_url, pooled, expected_counts = seeded_replica
    monkeypatch.setenv("DATABASE_URL", postgres_server.url)
    monkeypatch.setenv("DATABASE_READ_URL", read_url)
    if pooled:
        monkeypatch.setenv("DATABASE_READ_POOLED", "true")
    notebook = execute(path, tmp_path)
    replica = make_url(read_url)
    shown = first_code_cell_shows(notebook)
    assert shown.startswith("Read replica.")
    assert f'PostgreSQL database "{replica.database}" on {replica.host}:{replica.port}' in shown
    assert "read-only" in shown and ("pooled endpoint" if pooled else "direct endpoint") in shown
    assert "DATABASE_READ_URL from the environment" in shown
    assert images(notebook) == 4
    counts = [
        out["data"]["text/plain"] for out in notebook.cells[3].outputs if out.get("output_type") == "execute_result"
    ]
    assert counts == [expected_counts]
    password = replica.password or ""
    assert password and password not in all_output_text(notebook)


async def test_the_verification_notebook_checks_the_primary_and_shows_the_replicas_lag(
    tmp_path: Path,
    pg_engine: AsyncEngine,
    replica_server: ReplicaServer,
    postgres_server: PostgresServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await seed_and_replay(pg_engine, replica_server.url, pooled=False)
    monkeypatch.setenv("DATABASE_URL", postgres_server.url)
    monkeypatch.setenv("DATABASE_READ_URL", replica_server.url)
    path = NOTEBOOKS[1]
    notebook = execute(path, tmp_path)
    primary = make_url(postgres_server.url)
    shown = first_code_cell_shows(notebook)
    assert shown.startswith(f'PostgreSQL database "{primary.database}" on {primary.host}:{primary.port}')
    assert_checks_passed(path, notebook, postgresql=True)  # the probe ran on the primary
    replication = result_of(notebook, "checks.replication(")["text/html"]
    assert "this server" in replication and "caught up" in replication and "not replicated" not in replication
    password = primary.password or ""
    assert password and password not in all_output_text(notebook)
