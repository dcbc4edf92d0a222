"""Empty, tiny and odd tables, and values written raw by another client: every query reads them.

Each test runs on SQLite and PostgreSQL. Odd values are written with plain SQL literals, as
``psql`` or ``sqlite3`` would, into a scratch database whose constraints are dropped where
the value needs it. What they must read as (DESIGN, "Trust at first contact"):

- ``'infinity'`` / ``'-infinity'`` timestamps (and any text SQLite cannot read as a time):
  NaT, never a wrapped date;
- NULL in a column whose NOT NULL was dropped: missing (NaN / NaT);
- SQLite timestamps in the ISO 8601 forms other clients write (``T``, ``Z``, offsets, any
  number of fractional digits): the right UTC instant, which is also what rows are sorted,
  filtered and bucketed by.

Rows whose ``created_at`` reads as missing come after every other row (by id among
themselves), fall outside every ``since``/``until`` bound and are counted under a NaT period.
"""

from __future__ import annotations

import uuid
import warnings
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.helpers import PostgresServer
from tests.integration.scratch import Scratch, scratch, scratch_url
from tests.integration.tasks import CONTRACT_DTYPES, drop_not_null, insert_raw, insert_rows, task_rows
from todo_data import TodoDataWarning, create_engine, migrations, queries

__all__ = ["scratch", "scratch_url"]  # fixtures used below

NOT_NULL_COLUMNS = ("id", "user_id", "title", "status", "created_at", "updated_at")
NAT = pd.NaT


async def every_frame(engine: AsyncEngine, **filters: Any) -> dict[str, pd.DataFrame]:
    """What every query answers, each checked against the parts of its contract that always hold."""
    tasks = await queries.tasks_frame(engine, **filters)
    assert {name: str(dtype) for name, dtype in tasks.dtypes.items()} == CONTRACT_DTYPES
    chunks = [chunk async for chunk in queries.iter_tasks_frames(engine, chunk_size=2, **filters)]
    if chunks:
        pd.testing.assert_frame_equal(pd.concat(chunks, ignore_index=True), tasks)
    else:
        assert tasks.empty
    counts = await queries.status_counts(engine, **filters)
    assert counts["count"].sum() == len(tasks)
    assert counts["share"].sum() == pytest.approx(1.0 if len(tasks) else 0.0)
    per_user = await queries.tasks_per_user(engine, **filters)
    assert per_user["total"].sum() == len(tasks)
    frames = {"tasks": tasks, "status_counts": counts, "tasks_per_user": per_user}
    for freq in ("D", "W", "M"):
        created = await queries.created_over_time(engine, freq=freq, **filters)
        assert created["count"].sum() == len(tasks)
        assert str(created["period"].dtype) == "datetime64[us, UTC]"
        frames[f"created_over_time_{freq}"] = created
    ages = await queries.open_task_ages(engine, **filters)
    assert len(ages) == (tasks["status"] != "completed").sum()
    frames["open_task_ages"] = ages
    return frames


# -- empty, one task, only unknown statuses ------------------------------------------------------


@pytest.mark.parametrize("state", ["empty", "one task", "only unknown statuses"])
async def test_every_query_answers_on_empty_one_task_and_unknown_statuses_only(engine: AsyncEngine, state: str) -> None:
    rows = task_rows()
    if state == "one task":
        rows = rows[:1]
    elif state == "only unknown statuses":
        rows = [{**row, "status": ("archived", "blocked")[i % 2]} for i, row in enumerate(rows)]
    else:
        rows = []
    if rows:
        await insert_rows(engine, rows)
    frames = await every_frame(engine)
    assert len(frames["tasks"]) == len(rows)
    counts = frames["status_counts"]
    assert list(counts["status"])[:3] == ["pending", "in_progress", "completed"]
    if state == "only unknown statuses":
        assert list(counts["count"]) == [0, 0, 0, 4, 4]
        assert (frames["tasks_per_user"]["completion_rate"] == 0.0).all()
        assert len(frames["open_task_ages"]) == len(rows)  # unknown statuses count as open
    if state == "empty":
        assert list(counts["share"]) == [0.0, 0.0, 0.0]
        assert all(frame.empty for name, frame in frames.items() if name != "status_counts")


# -- infinity ------------------------------------------------------------------------------------


async def test_infinite_timestamps_read_as_nat_and_sort_last(scratch: Scratch) -> None:
    # PostgreSQL's 'infinity' decodes to year -290278 when read as microseconds without care;
    # in SQLite the same text is simply not a time.
    finite = await insert_raw(scratch, created_at="2025-01-02 00:00:00+00:00")
    late = await insert_raw(scratch, id=uuid.UUID(int=2), created_at="infinity", updated_at="-infinity")
    early = await insert_raw(scratch, id=uuid.UUID(int=1), created_at="-infinity", updated_at="infinity")

    if scratch.backend == "postgresql":  # ±infinity is a value Arrow cannot hold: said, not hidden
        with pytest.warns(TodoDataWarning) as said:
            tasks = await queries.tasks_frame(scratch.engine)
        messages = sorted(str(warning.message).split(" (")[0] for warning in said)
        assert messages == [
            'column "created_at": 2 values read as missing',
            'column "updated_at": 2 values read as missing',
        ]
    else:
        tasks = await queries.tasks_frame(scratch.engine)
    assert list(tasks["id"]) == [finite, early, late]  # NaT last, by id among themselves
    assert tasks["created_at"].isna().tolist() == [False, True, True]
    assert tasks["updated_at"].isna().tolist() == [False, True, True]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TodoDataWarning)  # asserted above
        frames = await every_frame(scratch.engine)
        daily = frames["created_over_time_D"]
        assert daily["period"].isna().tolist() == [False, True]
        assert daily["count"].tolist() == [1, 2]
        assert frames["open_task_ages"]["age"].isna().tolist() == [False, True, True]

        # Outside every bound, as NaT is in pandas.
        assert list((await queries.tasks_frame(scratch.engine, since="2025-01-01"))["id"]) == [finite]
        assert list((await queries.tasks_frame(scratch.engine, until="2026-01-01"))["id"]) == [finite]
        bounded = await every_frame(scratch.engine, since="2000-01-01", until="2100-01-01")
        assert list(bounded["tasks"]["id"]) == [finite]


# -- NULL where NOT NULL was dropped ------------------------------------------------------------


async def test_null_in_any_formerly_not_null_column_reads_as_missing(scratch: Scratch) -> None:
    await drop_not_null(scratch, NOT_NULL_COLUMNS)
    normal = await insert_raw(scratch, user_id="a", created_at="2025-01-02 00:00:00+00:00")
    ids = {}
    for i, column in enumerate(NOT_NULL_COLUMNS):
        values: dict[str, object] = {"id": uuid.UUID(int=i + 1), "user_id": "b", "created_at": f"2025-01-0{3 + i}"}
        ids[column] = await insert_raw(scratch, **{**values, column: None})

    frames = await every_frame(scratch.engine)
    tasks = frames["tasks"]
    # By created_at; the row without one last.
    order = [normal, *(ids[c] for c in NOT_NULL_COLUMNS if c != "created_at"), ids["created_at"]]
    assert tasks["id"].fillna("").tolist() == order
    for column in NOT_NULL_COLUMNS:
        (row,) = [
            row for _, row in tasks.iterrows() if row["id"] == ids[column] or (column == "id" and pd.isna(row["id"]))
        ]
        assert [name for name in NOT_NULL_COLUMNS if pd.isna(row[name])] == [column]
    assert list(tasks["status"].cat.categories) == ["pending", "in_progress", "completed"]

    counts = frames["status_counts"]
    assert counts["status"].isna().tolist() == [False, False, False, True]  # missing status: its own row, last
    assert counts["count"].tolist() == [6, 0, 0, 1]
    per_user = frames["tasks_per_user"]
    assert per_user["user_id"].isna().tolist() == [False, False, True]
    assert per_user["total"].tolist() == [1, 5, 1]
    assert per_user["pending"].tolist() == [1, 4, 1]  # a missing status counts in total only
    assert frames["created_over_time_D"]["period"].isna().sum() == 1
    assert len(frames["open_task_ages"]) == 7  # a missing status is not "completed"

    assert list((await queries.tasks_frame(scratch.engine, user_id="a"))["id"]) == [normal]
    assert len(await queries.tasks_frame(scratch.engine, status="pending")) == 6
    assert len(await queries.tasks_frame(scratch.engine, since="2025-01-01")) == 6


# -- ISO 8601 in SQLite ----------------------------------------------------------------------------

# (stored text, the UTC instant it means)
ISO_FORMS = [
    ("2025-01-01T10:00:00Z", "2025-01-01 10:00:00"),
    ("2025-01-01 12:30:00+02:00", "2025-01-01 10:30:00"),  # sorts before 11:00 by time, after it as text
    ("2025-01-01 11:00:00", "2025-01-01 11:00:00"),
    ("2025-01-01T11:00:00.5", "2025-01-01 11:00:00.5"),
    ("2025-01-01T11:00:00.123456789-00:30", "2025-01-01 11:30:00.123457"),  # rounded, as PostgreSQL does
    ("2025-01-01T11:45:59.9999", "2025-01-01 11:45:59.9999"),
    ("2025-01-01T23:15", "2025-01-01 23:15:00"),
    ("2025-01-01T01:00:00+02:00", "2024-12-31 23:00:00"),  # another day, week, month and year in UTC
    ("2025-01-02", "2025-01-02 00:00:00"),
    ("2025-01-01 10:00:00.000001", "2025-01-01 10:00:00.000001"),
    ("2025-01-01T23:59:59.9999996Z", "2025-01-02 00:00:00"),  # rounds into the next day
]


async def test_iso_8601_timestamps_read_sort_filter_and_bucket_by_their_utc_instant(scratch: Scratch) -> None:
    for i, (stored, _) in enumerate(ISO_FORMS):
        await insert_raw(scratch, id=uuid.UUID(int=i + 1), title=stored, created_at=stored, updated_at=stored)

    tasks = await queries.tasks_frame(scratch.engine)
    instants = {stored: pd.Timestamp(instant, tz="UTC") for stored, instant in ISO_FORMS}
    assert tasks["title"].tolist() == sorted(instants, key=lambda stored: instants[stored])
    assert tasks["created_at"].tolist() == sorted(instants.values())
    assert (tasks["updated_at"] == tasks["created_at"]).all()

    since, until = "2025-01-01T10:30:00Z", "2025-01-01T11:30:00.123456Z"
    window = await queries.tasks_frame(scratch.engine, since=since, until=until)
    expected = tasks[(tasks["created_at"] >= pd.Timestamp(since)) & (tasks["created_at"] < pd.Timestamp(until))]
    assert (
        window["title"].tolist()
        == expected["title"].tolist()
        == [
            "2025-01-01 12:30:00+02:00",
            "2025-01-01 11:00:00",
            "2025-01-01T11:00:00.5",
        ]
    )

    daily = await queries.created_over_time(scratch.engine, freq="D")
    assert daily.groupby("period")["count"].sum().to_dict() == {
        pd.Timestamp("2024-12-31", tz="UTC"): 1,
        pd.Timestamp("2025-01-01", tz="UTC"): 8,
        pd.Timestamp("2025-01-02", tz="UTC"): 2,
    }
    monthly = await queries.created_over_time(scratch.engine, freq="M")
    assert monthly["period"].tolist() == [pd.Timestamp("2024-12-01", tz="UTC"), pd.Timestamp("2025-01-01", tz="UTC")]
    weekly = await queries.created_over_time(scratch.engine, freq="W")
    assert weekly["period"].tolist() == [pd.Timestamp("2024-12-30", tz="UTC")]


@pytest.mark.parametrize(
    "stored",
    ["now", "yesterday", "2025-02-30 10:00:00", "2025-01-01T10:00:00+0200", "2025-13-01", "2025-01-01 25:00:00", "12"],
)
async def test_sqlite_text_that_is_no_time_reads_as_nat(sqlite_engine: AsyncEngine, stored: str) -> None:
    # SQLite stores any text in a DATETIME column; what it cannot read as an ISO 8601 time
    # (its date functions would read 'now' as the current time, Feb 30 as March 2) is NaT.
    url = sqlite_engine.url.render_as_string(hide_password=False)
    odd = Scratch(backend="sqlite", url=url, engine=sqlite_engine)
    await insert_raw(odd, created_at="2025-01-01 00:00:00")
    await insert_raw(odd, created_at=stored, updated_at=stored)
    frames = await every_frame(sqlite_engine)
    assert frames["tasks"]["created_at"].isna().tolist() == [False, True]
    assert frames["tasks"]["updated_at"].isna().tolist() == [False, True]
    assert len(await queries.tasks_frame(sqlite_engine, since="1900-01-01")) == 1


# -- both backends, same frames ------------------------------------------------------------------


async def test_odd_values_read_the_same_on_sqlite_and_postgresql(
    postgres_server: PostgresServer, tmp_path: Path
) -> None:
    scratches = []
    for url in (f"sqlite:///{tmp_path / 'odd.db'}", postgres_server.scratch_url()):
        engine = create_engine(url)
        await migrations.upgrade(engine)
        scratches.append(Scratch(backend=engine.dialect.name, url=url, engine=engine))
    try:
        for odd in scratches:
            await drop_not_null(odd, NOT_NULL_COLUMNS)
            for i, (stored, _) in enumerate(ISO_FORMS):
                status = ("pending", "archived", "completed")[i % 3]
                await insert_raw(odd, id=uuid.UUID(int=i + 1), user_id=f"u{i % 4}", status=status, created_at=stored)
            for i, column in enumerate(NOT_NULL_COLUMNS):
                values: dict[str, object] = {"id": uuid.UUID(int=100 + i), "created_at": "2025-01-01T12:00:00Z"}
                await insert_raw(odd, **{**values, column: None})
            for i, infinite in enumerate(("infinity", "-infinity")):
                await insert_raw(odd, id=uuid.UUID(int=200 + i), created_at=infinite, updated_at=infinite)
        for filters in ({}, {"since": "2025-01-01T10:30:00Z"}, {"until": "2025-01-01T11:00:00Z", "status": "archived"}):
            with warnings.catch_warnings():
                # PostgreSQL's ±infinity warns (asserted in test_infinite_timestamps_read_as_nat_and_sort_last).
                warnings.simplefilter("ignore", TodoDataWarning)
                from_sqlite, from_pg = [await every_frame(odd.engine, **filters) for odd in scratches]
            for name, frame in from_sqlite.items():
                if name == "open_task_ages":  # ages against the clock: compare what they are measured from
                    frame, other = frame.drop(columns="age"), from_pg[name].drop(columns="age")
                else:
                    other = from_pg[name]
                pd.testing.assert_frame_equal(frame, other, check_exact=True, obj=f"{name} {filters}")
    finally:
        for odd in scratches:
            await odd.engine.dispose()
