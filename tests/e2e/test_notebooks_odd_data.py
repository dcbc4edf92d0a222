"""The example notebooks on the databases an analyst meets first: empty, or with statuses the code doesn't know.

The kernel renders figures as SVG with text kept as text (an IPython profile in the test's
own IPYTHONDIR), so the test reads what each chart says.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import nbformat
import pytest
from sqlalchemy import insert

from tests.e2e.helpers import NOTEBOOKS, execute
from todo_data import Task, create_engine, migrations

KERNEL_CONFIG = """
c.InlineBackend.figure_formats = {"svg"}
c.InlineBackend.rc = {"svg.fonttype": "none"}
"""


@pytest.fixture
def svg_charts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    profile = tmp_path / "ipython" / "profile_default"
    profile.mkdir(parents=True)
    (profile / "ipython_kernel_config.py").write_text(KERNEL_CONFIG)
    monkeypatch.setenv("IPYTHONDIR", str(profile.parent))


async def migrated_sqlite(path: Path, statuses: list[str]) -> str:
    url = f"sqlite:///{path}"
    engine = create_engine(url)
    try:
        await migrations.upgrade(engine)
        now = datetime(2025, 6, 1, tzinfo=UTC)
        rows = [
            {
                "id": uuid.uuid4(),
                "user_id": f"user{i % 2}",
                "title": f"task {i}",
                "status": status,
                "created_at": now - timedelta(days=3 * i),
                "updated_at": now,
            }
            for i, status in enumerate(statuses)
        ]
        if rows:
            async with engine.begin() as conn:
                await conn.execute(insert(Task.__table__), rows)  # type: ignore[attr-defined]
    finally:
        await engine.dispose()
    return url


def chart_texts(notebook: nbformat.NotebookNode) -> list[str]:
    """The words of each chart the notebook drew, in order."""
    charts = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            svg = output.get("data", {}).get("image/svg+xml")
            if svg:
                charts.append(" ".join(re.findall(r"<text[^>]*>([^<]*)</text>", svg)))
    return charts


@pytest.fixture(params=[[], ["archived", "blocked", "archived", "on hold"]], ids=["empty", "only-unknown-statuses"])
async def statuses(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """DATABASE_URL names a migrated SQLite database holding tasks with these statuses."""
    monkeypatch.setenv("DATABASE_URL", await migrated_sqlite(tmp_path / "tasks.db", request.param))
    return list(request.param)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_finishes_on_an_empty_table_and_on_unknown_statuses_only(
    path: Path, statuses: list[str], tmp_path: Path, svg_charts: None
) -> None:
    notebook = execute(path, tmp_path)  # raises when a cell fails
    errors = [out for cell in notebook.cells for out in cell.get("outputs", []) if out.get("output_type") == "error"]
    assert errors == []
    if not path.stem.startswith("01"):
        return
    charts = chart_texts(notebook)
    assert len(charts) == 4
    if statuses:
        for text in charts:
            assert "no tasks" not in text
            assert "archived" in text and "on hold" in text, text
    else:
        for text in charts:
            assert "no tasks" in text, text
