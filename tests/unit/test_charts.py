"""The charts draw every frame the queries can return: empty, one task, odd statuses, missing times."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import matplotlib
import pandas as pd
import pytest
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from todo_data import Task, charts, queries

matplotlib.use("Agg")
import matplotlib.pyplot as plt

T0 = datetime(2025, 3, 30, 22, 30, tzinfo=UTC)
CHARTS = ("status_counts", "tasks_per_user", "created_over_time", "open_task_ages")


@pytest.fixture(autouse=True)
def _close_figures() -> Iterator[None]:
    yield
    plt.close("all")


def rows(statuses: list[str]) -> list[dict[str, Any]]:
    return [
        {
            "id": uuid.uuid4(),
            "user_id": f"user{i % 3}",
            "title": f"task {i}",
            "status": status,
            "created_at": T0 - timedelta(days=i),
            "updated_at": T0,
        }
        for i, status in enumerate(statuses)
    ]


async def frames(engine: AsyncEngine) -> dict[str, pd.DataFrame]:
    return {
        "status_counts": await queries.status_counts(engine),
        "tasks_per_user": await queries.tasks_per_user(engine),
        "created_over_time": await queries.created_over_time(engine, freq="W"),
        "open_task_ages": await queries.open_task_ages(engine, now=T0 + timedelta(days=1)),
    }


def words(ax: Any) -> str:
    """Every text the chart shows: title, annotations, tick labels, legend."""
    texts = [ax.get_title(), *(t.get_text() for t in ax.texts)]
    texts += [label.get_text() for label in ax.get_xticklabels()]
    legend = ax.get_legend()
    if legend is not None:
        texts += [t.get_text() for t in legend.get_texts()]
    return " | ".join(texts)


async def test_every_chart_says_no_tasks_on_an_empty_table(sqlite_engine: AsyncEngine) -> None:
    for name, frame in (await frames(sqlite_engine)).items():
        ax = getattr(charts, name)(frame)
        assert "no tasks" in words(ax), name
        _, given = plt.subplots()
        assert getattr(charts, name)(frame, ax=given) is given  # draws where it is told to


@pytest.mark.parametrize(
    "statuses",
    [["pending"], ["completed"], ["archived", "blocked", "archived"], ["pending", "completed", "total", "archived"]],
    ids=["one-open-task", "one-completed-task", "only-unknown-statuses", "mixed"],
)
async def test_every_chart_draws_what_there_is(sqlite_engine: AsyncEngine, statuses: list[str]) -> None:
    async with sqlite_engine.begin() as conn:
        await conn.execute(insert(Task.__table__), rows(statuses))  # type: ignore[attr-defined]
    for name, frame in (await frames(sqlite_engine)).items():
        ax = getattr(charts, name)(frame)
        shown = words(ax)
        if name == "open_task_ages" and set(statuses) == {"completed"}:
            assert "no tasks" in shown  # under the title "Age of open tasks"
            continue
        assert "no tasks" not in shown, name
        for status in set(statuses) - ({"completed"} if name == "open_task_ages" else set()):
            assert status in shown, (name, status, shown)


def test_charts_of_tasks_without_a_known_time_or_status_say_so() -> None:
    status = pd.CategoricalDtype(["pending", "in_progress", "completed"])
    created = pd.DataFrame(
        {
            "period": pd.DatetimeIndex([pd.NaT], tz="UTC").as_unit("us"),
            "status": pd.Categorical(["pending"], dtype=status),
            "count": [3],
        }
    )
    assert "no tasks with a known creation time" in words(charts.created_over_time(created))
    ages = pd.DataFrame(
        {
            "id": ["a", "b"],
            "user_id": ["u", "u"],
            "title": ["t", "t"],
            "status": pd.Categorical(["pending", None], dtype=status),
            "created_at": pd.DatetimeIndex([pd.NaT, pd.NaT], tz="UTC").as_unit("us"),
            "age": pd.to_timedelta([pd.NaT, pd.NaT]).as_unit("us"),
        }
    )
    assert "no tasks with a known age" in words(charts.open_task_ages(ages))
    counts = pd.DataFrame(
        {"status": pd.Categorical(["pending", None], dtype=status), "count": [2, 1], "share": [2 / 3, 1 / 3]}
    )
    assert "missing" in words(charts.status_counts(counts))


def test_without_matplotlib_a_chart_is_one_error_naming_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from todo_data.errors import MissingExtraError

    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if the notebooks extra were not installed
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    frame = pd.DataFrame({"status": ["pending"], "count": [1], "share": [1.0]})
    with pytest.raises(MissingExtraError) as exc:
        charts.status_counts(frame)
    assert "todo-data[notebooks]" in str(exc.value) and "\n" not in str(exc.value)
