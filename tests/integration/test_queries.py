"""todo_data.queries on both backends: the DataFrame contract, filters, streaming, SQL aggregation.

Each test runs on SQLite and on PostgreSQL (the ``engine`` fixture); the parity tests load
the same rows into both and compare the frames exactly.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import aclosing
from datetime import date, timedelta
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import insert, text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.helpers import PostgresServer
from tests.integration.tasks import CONTRACT_DTYPES, HUGE, T0, insert_rows, statements, table, task_rows
from todo_data import Task, TaskStatus, create_engine, migrations, queries
from todo_data.database import sessionmaker
from todo_data.errors import InvalidArgumentError, SchemaNotReadyError


def expected_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    ordered = sorted(rows, key=lambda row: (row["created_at"], row["id"]))
    unknown = sorted({row["status"] for row in rows} - {s.value for s in TaskStatus})
    categories = pd.CategoricalDtype([*(s.value for s in TaskStatus), *unknown])
    return pd.DataFrame(
        {
            "id": pd.array([str(row["id"]) for row in ordered], dtype="str"),
            "user_id": pd.array([row["user_id"] for row in ordered], dtype="str"),
            "title": pd.array([row["title"] for row in ordered], dtype="str"),
            "description": pd.array([row["description"] for row in ordered], dtype="str"),
            "status": pd.Categorical([row["status"] for row in ordered], dtype=categories),
            "created_at": pd.DatetimeIndex([row["created_at"] for row in ordered]).as_unit("us"),
            "updated_at": pd.DatetimeIndex([row["updated_at"] for row in ordered]).as_unit("us"),
        }
    )


# -- tasks_frame -------------------------------------------------------------------------------


async def test_empty_table_gives_contract_columns_and_dtypes(engine: AsyncEngine) -> None:
    frame = await queries.tasks_frame(engine)
    assert frame.empty
    assert {name: str(dtype) for name, dtype in frame.dtypes.items()} == CONTRACT_DTYPES
    assert list(frame["status"].cat.categories) == ["pending", "in_progress", "completed"]


async def test_tasks_frame_follows_the_contract_exactly(engine: AsyncEngine) -> None:
    rows = task_rows()
    await insert_rows(engine, rows)
    frame = await queries.tasks_frame(engine)
    pd.testing.assert_frame_equal(frame, expected_frame(rows))
    assert {name: str(dtype) for name, dtype in frame.dtypes.items()} == CONTRACT_DTYPES
    assert list(frame["status"].cat.categories) == ["pending", "in_progress", "completed", "archived", "blocked"]
    assert not frame["status"].isna().any()
    assert frame.loc[frame["user_id"] == "bob", "description"].iloc[0] == HUGE
    assert frame["description"].isna().sum() == 1 and (frame["description"] == "").sum() == 1
    assert all(str(uuid.UUID(value)) == value for value in frame["id"])


async def test_rows_written_by_server_defaults_sort_by_time(engine: AsyncEngine) -> None:
    # SQLite's CURRENT_TIMESTAMP default stores no fraction of a second; ordering and
    # filters must still compare as time, not as text.
    async with engine.begin() as conn:
        await conn.execute(
            text("INSERT INTO tasks (id, user_id, title, status) VALUES (:id, 'u', 'server default', 'pending')"),
            {"id": uuid.uuid4().hex if engine.dialect.name == "sqlite" else str(uuid.uuid4())},
        )
        now = (await conn.execute(text("SELECT created_at FROM tasks"))).scalar_one()
    created = pd.Timestamp(now).tz_localize("UTC") if pd.Timestamp(now).tzinfo is None else pd.Timestamp(now)
    await insert_rows(
        engine,
        [
            {"id": uuid.uuid4(), "user_id": "u", "title": "just before", "status": "pending", "created_at": created},
            {
                "id": uuid.uuid4(),
                "user_id": "u",
                "title": "just after",
                "status": "pending",
                "created_at": created + pd.Timedelta(microseconds=1),
            },
        ],
    )
    frame = await queries.tasks_frame(engine, since=created.to_pydatetime())
    assert len(frame) == 3
    assert frame["title"].iloc[-1] == "just after"
    assert frame["created_at"].is_monotonic_increasing


async def test_filters_combine(engine: AsyncEngine) -> None:
    rows = task_rows()
    await insert_rows(engine, rows)
    expected = expected_frame(rows)

    def where(mask: pd.Series) -> pd.DataFrame:
        return expected[mask.to_numpy()].reset_index(drop=True)

    frame = await queries.tasks_frame(engine, user_id="alice")
    pd.testing.assert_frame_equal(frame, where(expected["user_id"] == "alice"), check_categorical=False)

    frame = await queries.tasks_frame(engine, status=TaskStatus.PENDING)
    assert list(frame["status"].unique()) == ["pending"]
    frame = await queries.tasks_frame(engine, status=["completed", TaskStatus.IN_PROGRESS])
    assert set(frame["status"]) == {"completed", "in_progress"} and len(frame) == 3

    since = T0.replace(tzinfo=None)  # naive means UTC
    until = "2025-05-01T00:30:00+02:00"
    frame = await queries.tasks_frame(engine, user_id="bob", since=since, until=until, status=["in_progress"])
    assert list(frame["title"]) == ["日本語のタイトル"]

    frame = await queries.tasks_frame(engine, since=T0 + timedelta(minutes=45), until=date(2025, 3, 31))
    assert list(frame["title"]) == ["日本語のタイトル", "Ünïcödé user"]  # since inclusive
    frame = await queries.tasks_frame(engine, until=T0)
    assert T0 not in set(frame["created_at"])  # until exclusive
    assert (await queries.tasks_frame(engine, user_id="nobody")).empty


@pytest.mark.parametrize(
    ("filters", "message"),
    [
        ({"status": " "}, "status must be non-blank text"),
        ({"status": []}, "must not be an empty list"),
        ({"status": 3}, "status must be"),
        ({"status": ["pending", 3]}, "status must be non-blank text"),
        ({"user_id": "  "}, "user_id must be a non-blank string"),
        ({"user_id": 42}, "user_id must be a non-blank string"),
        ({"since": "yesterday"}, "since must be an ISO 8601"),
        ({"until": 1700000000}, "until must be a datetime"),
        ({"since": pd.NaT}, "since must be a datetime, not NaT"),
        ({"since": "2025-02-01", "until": "2025-01-01"}, "is after until"),
    ],
)
async def test_bad_filter_values_fail_before_any_query(filters: dict[str, Any], message: str) -> None:
    # An engine whose database cannot be reached: only validation can answer.
    unreachable = create_engine("postgresql://u:secret@127.0.0.1:1/nowhere")
    try:
        with pytest.raises(InvalidArgumentError, match=message):
            await queries.tasks_frame(unreachable, **filters)
        with pytest.raises(InvalidArgumentError, match=message):
            async for _ in queries.iter_tasks_frames(unreachable, **filters):
                pass
    finally:
        await unreachable.dispose()


async def test_bad_arguments_of_the_distributions_fail_clearly(sqlite_engine: AsyncEngine) -> None:
    with pytest.raises(InvalidArgumentError, match='freq must be "D"'):
        await queries.created_over_time(sqlite_engine, freq="Q")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="chunk_size must be a positive integer"):
        async for _ in queries.iter_tasks_frames(sqlite_engine, chunk_size=0):
            pass
    with pytest.raises(InvalidArgumentError, match="user_id"):
        await queries.status_counts(sqlite_engine, user_id="")
    with pytest.raises(InvalidArgumentError, match="now must be"):
        await queries.open_task_ages(sqlite_engine, now="soon")  # type: ignore[arg-type]


# -- sources -------------------------------------------------------------------------------------


async def test_connection_and_session_sources_see_uncommitted_rows_and_stay_open(engine: AsyncEngine) -> None:
    rows = task_rows()
    async with engine.connect() as conn:
        await conn.execute(insert(table), rows[:3])
        frame = await queries.tasks_frame(conn)
        assert len(frame) == 3
        assert conn.in_transaction() and not conn.closed
        counts = await queries.status_counts(conn)
        assert counts["count"].sum() == 3
        await conn.rollback()
    assert (await queries.tasks_frame(engine)).empty

    async with sessionmaker(engine)() as session:
        session.add(Task(**rows[0]))
        await session.flush()
        assert len(await queries.tasks_frame(session)) == 1
        chunks = [chunk async for chunk in queries.iter_tasks_frames(session)]
        assert sum(len(chunk) for chunk in chunks) == 1
        assert session.in_transaction()
        await session.rollback()
    assert (await queries.tasks_frame(engine)).empty


async def test_missing_table_says_run_migrations_first_with_masked_url(
    postgres_server: PostgresServer, sqlite_url: str
) -> None:
    for url in (postgres_server.scratch_url(), sqlite_url):
        engine = create_engine(url)
        try:
            for call in (
                queries.tasks_frame(engine),
                queries.status_counts(engine),
                queries.tasks_per_user(engine),
                queries.created_over_time(engine),
                queries.open_task_ages(engine),
            ):
                with pytest.raises(SchemaNotReadyError, match="run migrations first") as exc:
                    await call
                message = str(exc.value)
                assert engine.url.render_as_string(hide_password=True) in message
                if engine.url.password:
                    assert engine.url.password not in message and "***" in message
            with pytest.raises(SchemaNotReadyError):
                async for _ in queries.iter_tasks_frames(engine):
                    pass
        finally:
            await engine.dispose()


# -- iter_tasks_frames -------------------------------------------------------------------------------


async def test_chunks_share_categories_and_concatenate_to_tasks_frame(engine: AsyncEngine) -> None:
    rows = task_rows()
    await insert_rows(engine, rows)
    whole = await queries.tasks_frame(engine)
    chunks = [chunk async for chunk in queries.iter_tasks_frames(engine, chunk_size=3)]
    assert [len(chunk) for chunk in chunks] == [3, 3, 2]
    # "blocked" only occurs in the last chunk, yet every chunk knows it.
    assert all(chunk["status"].dtype == whole["status"].dtype for chunk in chunks)
    pd.testing.assert_frame_equal(pd.concat(chunks, ignore_index=True), whole)

    filtered = [chunk async for chunk in queries.iter_tasks_frames(engine, chunk_size=2, status="pending")]
    pd.testing.assert_frame_equal(
        pd.concat(filtered, ignore_index=True), await queries.tasks_frame(engine, status="pending")
    )
    assert [chunk async for chunk in queries.iter_tasks_frames(engine, user_id="nobody")] == []


async def test_iter_tasks_frames_streams_while_the_server_waits_and_stops_early(pg_engine: AsyncEngine) -> None:
    # 30 MB of rows: more than the socket buffers hold, so the server must wait for us.
    async with pg_engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO tasks (id, user_id, title, description, status, created_at, updated_at)"
                " SELECT gen_random_uuid(), 'u', 't', repeat('x', 1000), 'pending', now(), now()"
                " FROM generate_series(1, 30000)"
            )
        )
    copying = text(
        "SELECT wait_event FROM pg_stat_activity"
        " WHERE query LIKE 'COPY%' AND state = 'active' AND backend_type = 'client backend'"
    )

    async def copy_waits_on(wanted: set[str | None]) -> set[str | None]:
        for _ in range(200):
            async with pg_engine.connect() as conn:
                found = {row[0] for row in await conn.execute(copying)}
            if found == wanted:
                break
            await asyncio.sleep(0.05)
        return found

    async with aclosing(queries.iter_tasks_frames(pg_engine, chunk_size=100)) as chunks:
        first = await anext(chunks)
        assert len(first) == 100
        # The one COPY is still running, blocked on sending: memory holds a chunk, not the table.
        assert await copy_waits_on({"ClientWrite"}) == {"ClientWrite"}
    assert await copy_waits_on(set()) == set()  # stopped at once
    assert (await queries.status_counts(pg_engine))["count"].sum() == 30000


# -- distributions --------------------------------------------------------------------------------


async def test_status_counts_keep_zeros_and_unknown_statuses(engine: AsyncEngine) -> None:
    empty = await queries.status_counts(engine)
    assert list(empty["status"]) == ["pending", "in_progress", "completed"]
    assert list(empty["count"]) == [0, 0, 0] and list(empty["share"]) == [0.0, 0.0, 0.0]
    assert str(empty["count"].dtype) == "int64"

    await insert_rows(engine, task_rows())
    counts = await queries.status_counts(engine)
    assert list(counts["status"]) == ["pending", "in_progress", "completed", "archived", "blocked"]
    assert list(counts["count"]) == [3, 1, 2, 1, 1]
    assert counts["share"].sum() == pytest.approx(1.0)
    assert counts["status"].dtype == (await queries.tasks_frame(engine))["status"].dtype

    bob = await queries.status_counts(engine, user_id="bob")
    assert dict(zip(bob["status"], bob["count"], strict=True)) == {
        "pending": 0,
        "in_progress": 1,
        "completed": 0,
        "archived": 1,
    }


async def test_tasks_per_user(engine: AsyncEngine) -> None:
    empty = await queries.tasks_per_user(engine)
    assert list(empty.columns) == ["user_id", "total", "pending", "in_progress", "completed", "completion_rate"]
    assert empty.empty

    await insert_rows(engine, task_rows())
    per_user = await queries.tasks_per_user(engine)
    assert list(per_user.columns) == [
        "user_id",
        "total",
        "pending",
        "in_progress",
        "completed",
        "archived",
        "blocked",
        "completion_rate",
    ]
    assert list(per_user["user_id"]) == ["alice", "bob", "carol", "dave", "ümit"]
    assert list(per_user["total"]) == [2, 2, 2, 1, 1]
    assert list(per_user["completion_rate"]) == [0.5, 0.0, 0.5, 0.0, 0.0]
    assert all(str(per_user[column].dtype) == "int64" for column in per_user.columns[1:-1])


async def test_created_over_time_buckets_in_utc(engine: AsyncEngine) -> None:
    await insert_rows(engine, task_rows())
    daily = await queries.created_over_time(engine, freq="D")
    assert list(daily.columns) == ["period", "status", "count"]
    assert str(daily["period"].dtype) == "datetime64[us, UTC]" and str(daily["count"].dtype) == "int64"
    assert daily["count"].sum() == 8
    first = daily[daily["period"] == pd.Timestamp("2025-03-30", tz="UTC")]
    assert dict(zip(first["status"], first["count"], strict=True)) == {"pending": 2, "in_progress": 1, "completed": 1}

    weekly = await queries.created_over_time(engine, freq="W")
    # 2025-03-30 is a Sunday: its week starts on Monday 2025-03-24; the next day is a new week.
    assert set(weekly["period"]) == {
        pd.Timestamp(day, tz="UTC") for day in ("2025-02-17", "2025-03-24", "2025-03-31", "2025-06-02")
    }
    monthly = await queries.created_over_time(engine, freq="M")
    assert sorted(set(monthly["period"].dt.strftime("%Y-%m-%d"))) == [
        "2025-02-01",
        "2025-03-01",
        "2025-06-01",
    ]
    assert monthly.groupby("period")["count"].sum().tolist() == [1, 6, 1]


async def test_created_over_time_ignores_the_session_time_zone(
    pg_engine: AsyncEngine, postgres_server: PostgresServer
) -> None:
    await insert_rows(pg_engine, task_rows())
    expected = await queries.created_over_time(pg_engine, freq="M")
    async with pg_engine.connect() as conn:
        await conn.execute(text("SET TimeZone = 'Asia/Tokyo'"))
        pd.testing.assert_frame_equal(await queries.created_over_time(conn, freq="M"), expected)
        pd.testing.assert_frame_equal(await queries.tasks_frame(conn), await queries.tasks_frame(pg_engine))

    # A database with its own default time zone, as a Neon database may have.
    url = postgres_server.scratch_url()
    database = url.rsplit("/", 1)[1].split("?")[0]
    assert postgres_server.cluster is not None
    postgres_server.cluster.psql(f"ALTER DATABASE \"{database}\" SET timezone TO 'America/Los_Angeles'")
    zoned = create_engine(url)
    try:
        await migrations.upgrade(zoned)
        await insert_rows(zoned, task_rows())
        async with zoned.connect() as conn:
            assert (await conn.execute(text("SHOW TimeZone"))).scalar() == "America/Los_Angeles"
        for freq in ("D", "W", "M"):
            pd.testing.assert_frame_equal(
                await queries.created_over_time(zoned, freq=freq),  # type: ignore[arg-type]
                await queries.created_over_time(pg_engine, freq=freq),  # type: ignore[arg-type]
            )
    finally:
        await zoned.dispose()


async def test_open_task_ages(engine: AsyncEngine) -> None:
    rows = task_rows()
    await insert_rows(engine, rows)
    now = T0 + timedelta(days=100)
    ages = await queries.open_task_ages(engine, now=now)
    assert list(ages.columns) == ["id", "user_id", "title", "status", "created_at", "age"]
    assert "completed" not in set(ages["status"])
    assert {"archived", "blocked"} <= set(ages["status"])  # unknown statuses count as open
    assert len(ages) == 6
    assert str(ages["age"].dtype) == "timedelta64[us]"
    assert (ages["age"] == pd.Timestamp(now) - ages["created_at"]).all()
    assert ages["created_at"].is_monotonic_increasing
    default_now = await queries.open_task_ages(engine)
    assert (default_now["age"] > pd.Timedelta(0)).all()


async def test_aggregations_run_in_sql_and_fetch_only_groups(engine: AsyncEngine) -> None:
    many = [
        {
            "id": uuid.uuid4(),
            "user_id": f"user{i % 4}",
            "title": f"task {i}",
            "status": ("pending", "completed")[i // 4 % 2],
        }
        for i in range(400)
    ]
    await insert_rows(engine, many)
    calls: list[tuple[Callable[[], Awaitable[pd.DataFrame]], int]] = [
        (lambda: queries.status_counts(engine), 2),
        (lambda: queries.tasks_per_user(engine), 8),
        (lambda: queries.created_over_time(engine, freq="D"), 2),
    ]
    for call, groups in calls:
        with statements(engine) as seen:
            await call()
        grouped = [(sql, params) for sql, params, _ in seen if "GROUP BY" in sql]
        assert len(grouped) == 1, seen
        catalog_or_grouped = ("GROUP BY", "sqlite_master", "to_regclass")
        assert all(sql == "BEGIN" or any(part in sql for part in catalog_or_grouped) for sql, _, _ in seen)
        sql, params = grouped[0]
        async with engine.connect() as conn:
            raw = await conn.exec_driver_sql(sql, params)
            assert len(raw.all()) == groups  # what travelled: one row per group, not 400


# -- both backends, same frames ------------------------------------------------------------------


async def test_every_function_returns_the_same_frame_on_sqlite_and_postgresql(
    sqlite_engine: AsyncEngine, pg_engine: AsyncEngine
) -> None:
    rows = task_rows()
    for engine in (sqlite_engine, pg_engine):
        await insert_rows(engine, rows)

    async def results(engine: AsyncEngine) -> AsyncIterator[pd.DataFrame]:
        yield await queries.tasks_frame(engine)
        yield await queries.tasks_frame(engine, status=["pending", "completed"], since=T0, user_id="alice")
        yield pd.concat([chunk async for chunk in queries.iter_tasks_frames(engine, chunk_size=5)])
        yield await queries.status_counts(engine)
        yield await queries.status_counts(engine, user_id="carol")
        yield await queries.tasks_per_user(engine)
        for freq in ("D", "W", "M"):
            yield await queries.created_over_time(engine, freq=freq)  # type: ignore[arg-type]
        yield await queries.open_task_ages(engine, now=T0 + timedelta(days=365))

    sqlite_frames = [frame async for frame in results(sqlite_engine)]
    pg_frames = [frame async for frame in results(pg_engine)]
    assert len(sqlite_frames) == len(pg_frames) == 10
    for from_sqlite, from_pg in zip(sqlite_frames, pg_frames, strict=True):
        pd.testing.assert_frame_equal(from_sqlite, from_pg, check_exact=True)
        assert list(from_sqlite.dtypes) == list(from_pg.dtypes)
        assert not from_sqlite.empty
