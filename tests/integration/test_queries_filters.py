"""Filters everywhere: every distribution takes tasks_frame's filters and applies them in SQL.

The reference is pandas: each distribution, filtered, must equal the same aggregation of
``tasks_frame`` with the same filters, on SQLite, PostgreSQL and behind PgBouncer.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.integration.tasks import T0, insert_rows, statements, task_rows
from todo_data import TaskStatus, create_engine, queries
from todo_data.errors import InvalidArgumentError

FILTERS: list[dict[str, Any]] = [
    {},
    {"user_id": "bob"},
    {"status": "archived"},  # an unknown stored status
    {"status": ["blocked", TaskStatus.PENDING]},
    {"status": "never stored"},
    {"since": T0},
    {"until": T0 + timedelta(minutes=45)},
    {"since": "2025-03-01", "until": "2025-04-01T00:00:00+02:00", "user_id": "carol"},
    {"since": T0, "until": T0 + timedelta(days=2), "status": ["completed", "archived", "in_progress"]},
    {"user_id": "nobody"},
]
NOW = T0 + timedelta(days=400)


def expected_status_counts(tasks: pd.DataFrame) -> pd.DataFrame:
    counts = tasks["status"].value_counts(sort=False)
    total = int(counts.sum())
    return pd.DataFrame(
        {
            "status": pd.Categorical(list(counts.index), dtype=tasks["status"].dtype),
            "count": counts.to_numpy(dtype=np.int64),
            "share": counts.to_numpy(dtype=np.int64) / total if total else np.zeros(len(counts)),
        }
    )


def expected_tasks_per_user(tasks: pd.DataFrame) -> pd.DataFrame:
    wide = tasks.groupby(["user_id", "status"], observed=False).size().unstack("status", fill_value=0)
    wide = wide.reindex(columns=tasks["status"].cat.categories, fill_value=0)
    frame = pd.DataFrame({"user_id": pd.array(wide.index, dtype="str"), "total": wide.sum(axis=1).to_numpy()})
    for status in wide.columns:
        frame[str(status)] = wide[status].to_numpy(dtype=np.int64)
    completed = frame["completed"].to_numpy(dtype=float)
    total = frame["total"].to_numpy()
    frame["completion_rate"] = np.divide(completed, total, out=np.zeros(len(frame)), where=total > 0)
    return frame


def expected_created_over_time(tasks: pd.DataFrame, freq: str) -> pd.DataFrame:
    naive = tasks["created_at"].dt.tz_localize(None)
    period = naive.dt.to_period(freq).dt.start_time.dt.tz_localize("UTC").astype("datetime64[us, UTC]")
    counts = tasks.assign(period=period).groupby(["period", "status"], observed=True).size()
    counts = counts[counts > 0].reset_index(name="count")
    counts["count"] = counts["count"].astype(np.int64)
    return counts.sort_values(["period", "status"], ignore_index=True)


def expected_open_task_ages(tasks: pd.DataFrame) -> pd.DataFrame:
    frame = tasks.loc[tasks["status"] != "completed", ["id", "user_id", "title", "status", "created_at"]]
    frame = frame.reset_index(drop=True)
    frame["age"] = (pd.Timestamp(NOW) - frame["created_at"]).astype("timedelta64[us]")
    return frame


@pytest.mark.parametrize("filters", FILTERS, ids=lambda f: ",".join(f) or "none")
async def test_each_distribution_equals_filtering_tasks_frame_in_pandas(
    engine: AsyncEngine, filters: dict[str, Any]
) -> None:
    await insert_rows(engine, task_rows())
    tasks = await queries.tasks_frame(engine, **filters)

    pd.testing.assert_frame_equal(await queries.status_counts(engine, **filters), expected_status_counts(tasks))
    pd.testing.assert_frame_equal(await queries.tasks_per_user(engine, **filters), expected_tasks_per_user(tasks))
    for freq in ("D", "W", "M"):
        pd.testing.assert_frame_equal(
            await queries.created_over_time(engine, freq=freq, **filters),  # type: ignore[arg-type]
            expected_created_over_time(tasks, freq),
        )
    pd.testing.assert_frame_equal(
        await queries.open_task_ages(engine, now=NOW, **filters), expected_open_task_ages(tasks)
    )


async def test_unknown_statuses_can_be_filtered(engine: AsyncEngine) -> None:
    await insert_rows(engine, task_rows())
    archived = await queries.tasks_frame(engine, status="archived")
    assert archived["title"].tolist() == ['Quote "it", tab\tand\nnewline']
    assert list(archived["status"].cat.categories) == ["pending", "in_progress", "completed", "archived"]
    assert (await queries.tasks_frame(engine, status=" archived ")).empty  # text is matched as it is stored


async def test_filtered_distributions_are_computed_by_the_database(engine: AsyncEngine) -> None:
    await insert_rows(engine, task_rows())
    filters: dict[str, Any] = {"user_id": "bob", "status": ["archived", "in_progress"], "since": T0, "until": NOW}
    for call in (
        queries.status_counts(engine, **filters),
        queries.tasks_per_user(engine, **filters),
        queries.created_over_time(engine, **filters),
    ):
        with statements(engine) as seen:
            await call
        (grouped,) = [(sql, params) for sql, params, _ in seen if "GROUP BY" in sql]
        sql, params = grouped
        assert "WHERE" in sql.split("GROUP BY")[0]
        bound = list(params.values()) if isinstance(params, dict) else list(params)
        assert "bob" in bound and "archived" in bound and "bob" not in sql  # bound, never formatted in
        async with engine.connect() as conn:
            rows = (await conn.exec_driver_sql(sql, params)).all()
        assert sum(row[-1] for row in rows) == 2  # only the two matching tasks were counted


@pytest.mark.parametrize(
    ("filters", "message"),
    [
        ({"status": ""}, "status must be non-blank text"),
        ({"status": " \t\u3000"}, "status must be non-blank text"),  # blank as str.strip() sees it
        ({"status": []}, "must not be an empty list"),
        ({"status": 3}, "status must be"),
        ({"status": ["pending", None]}, "status must be non-blank text"),
        ({"user_id": "\u2003"}, "user_id must be a non-blank string"),
        ({"since": "yesterday"}, "since must be an ISO 8601"),
        ({"since": "2025-02-01", "until": "2025-01-01"}, "is after until"),
    ],
)
async def test_bad_filters_of_every_function_fail_before_any_query(filters: dict[str, Any], message: str) -> None:
    unreachable = create_engine("postgresql://u:secret@127.0.0.1:1/nowhere")
    try:
        for function in (
            queries.tasks_frame,
            queries.status_counts,
            queries.tasks_per_user,
            queries.created_over_time,
            queries.open_task_ages,
        ):
            with pytest.raises(InvalidArgumentError, match=message):
                await function(unreachable, **filters)
    finally:
        await unreachable.dispose()
