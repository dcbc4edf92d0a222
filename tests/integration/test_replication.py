"""Streaming replication on a real hot standby: what it replays, the lag it reports, what it refuses."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.helpers import PostgresServer, ReplicaServer, pytest_as_ci_would_run_it, wait_for_replay
from todo_data import Task, checks, create_engine, migrations, sample, session_scope
from todo_data.database import describe
from todo_data.errors import ReadReplicaError
from todo_data.replication import REPLICATION_COLUMNS
from todo_data.testing import APP_USER, start_cluster


async def write_tasks(engine: AsyncEngine, count: int = 1) -> list[Task]:
    tasks = [Task(user_id="replicated", title=f"written on the primary {uuid.uuid4()}") for _ in range(count)]
    async with session_scope(engine) as session:
        session.add_all(tasks)
    return tasks


async def status_until(engine: AsyncEngine, done: Callable[[pd.Series], bool], *, timeout: float = 30.0) -> pd.Series:
    """Poll ``checks.replication`` until its first row satisfies ``done``; that row."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        row = (await checks.replication(engine)).iloc[0]
        if done(row):
            return row
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"replication status never reached the expected state; last: {row.to_dict()}")
        await asyncio.sleep(0.05)


@asynccontextmanager
async def pg_monitor_granted(server: PostgresServer) -> AsyncIterator[None]:
    assert server.cluster is not None
    server.cluster.psql(f"GRANT pg_monitor TO {APP_USER}")
    try:
        yield
    finally:
        server.cluster.psql(f"REVOKE pg_monitor FROM {APP_USER}")


async def test_a_write_on_the_primary_becomes_visible_on_the_replica(
    pg_engine: AsyncEngine, replica_engine: AsyncEngine
) -> None:
    (task,) = await write_tasks(pg_engine)
    await wait_for_replay(pg_engine, replica_engine)
    async with replica_engine.connect() as conn:
        rows = (await conn.execute(text("SELECT id, title FROM tasks"))).all()
        in_recovery = (await conn.execute(text("SELECT pg_is_in_recovery()"))).scalar_one()
    assert in_recovery is True
    assert [(str(row.id), row.title) for row in rows] == [(str(task.id), task.title)]


async def test_the_replica_reports_its_lag_which_reaches_zero(
    pg_engine: AsyncEngine, replica_engine: AsyncEngine
) -> None:
    await write_tasks(pg_engine, 50)
    row = await status_until(replica_engine, lambda row: row["lag_bytes"] == 0)
    frame = await checks.replication(replica_engine)
    assert list(frame.columns) == list(REPLICATION_COLUMNS) and len(frame) == 1
    assert row["role"] == "replica" and row["replica"] == "this server"
    assert row["caught_up"] and not row["replay_paused"]
    # Nothing pending: caught up, however old the last replayed transaction is.
    assert row["lag_seconds"] == 0.0
    assert row["last_replayed_at"] <= pd.Timestamp.now(tz="UTC")
    assert row["detail"].startswith("caught up")
    # The role is not pg_monitor: what it cannot see is said, not left blank silently.
    assert pd.isna(row["state"]) and "pg_monitor" in row["detail"]


async def test_pausing_replay_shows_growing_lag_until_resumed(
    pg_engine: AsyncEngine, direct_replica_engine: AsyncEngine, replica_server: ReplicaServer
) -> None:
    standby = replica_server.superuser()
    await write_tasks(pg_engine)
    await wait_for_replay(pg_engine, direct_replica_engine)
    standby.pause_replay()
    try:
        await write_tasks(pg_engine, 20)
        first = await status_until(direct_replica_engine, lambda row: row["lag_bytes"] > 0)
        assert first["replay_paused"] and first["state"] == "paused" and not first["caught_up"]
        assert first["detail"].startswith("replay paused") and "behind" in first["detail"]
        await write_tasks(pg_engine, 20)
        second = await status_until(direct_replica_engine, lambda row: row["lag_bytes"] > first["lag_bytes"])
        # While behind, the seconds are the age of the newest replayed transaction: they grow.
        assert second["lag_seconds"] > first["lag_seconds"] > 0
        assert second["last_replayed_at"] == first["last_replayed_at"]
        async with direct_replica_engine.connect() as conn:
            visible = (await conn.execute(text("SELECT count(*) FROM tasks"))).scalar_one()
        assert visible == 1  # the paused replica still shows the state before the pause
    finally:
        standby.resume_replay()
    # The replica's lag counts the WAL it has received: wait for all of the primary's to
    # arrive first, or it may read 0 with the last transactions still on their way.
    await wait_for_replay(pg_engine, direct_replica_engine)
    row = await status_until(direct_replica_engine, lambda row: row["lag_bytes"] == 0)
    assert not row["replay_paused"] and row["lag_seconds"] == 0.0
    async with direct_replica_engine.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM tasks"))).scalar_one() == 41


async def test_the_primary_lists_its_replica_and_says_what_its_role_may_not_see(
    pg_engine: AsyncEngine, direct_replica_engine: AsyncEngine, replica_server: ReplicaServer
) -> None:
    standby = replica_server.superuser()
    (row,) = (await checks.replication(pg_engine)).itertuples(index=False)
    assert (row.role, row.replica) == ("primary", standby.slot)
    assert pd.isna(row.state) and pd.isna(row.lag_bytes) and pd.isna(row.caught_up)
    assert f"GRANT pg_monitor TO {APP_USER}" in row.detail


async def test_with_pg_monitor_the_primary_shows_each_replicas_lag(
    pg_engine: AsyncEngine,
    direct_replica_engine: AsyncEngine,
    replica_server: ReplicaServer,
    postgres_server: PostgresServer,
) -> None:
    standby = replica_server.superuser()
    async with pg_monitor_granted(postgres_server):
        standby.pause_replay()
        try:
            await write_tasks(pg_engine, 20)
            behind = await status_until(pg_engine, lambda row: row["lag_bytes"] > 0)
            assert behind["state"] == "streaming" and not behind["caught_up"]
            assert "bytes of WAL not replayed yet" in behind["detail"]
        finally:
            standby.resume_replay()
        row = await status_until(pg_engine, lambda row: row["lag_bytes"] == 0)
    assert (row["role"], row["replica"], row["lag_bytes"]) == ("primary", standby.slot, 0)
    assert row["caught_up"] and row["lag_seconds"] >= 0 and "caught up" in row["detail"]


async def test_a_primary_without_replicas_says_so(postgres_server: PostgresServer) -> None:
    if postgres_server.cluster is None:
        pytest.skip("needs a throwaway cluster without a replica, not TEST_DATABASE_URL")
    lonely = await asyncio.to_thread(start_cluster)
    engine = create_engine(lonely.url())
    try:
        frame = await checks.replication(engine)
    finally:
        await engine.dispose()
        await asyncio.to_thread(lonely.stop)
    (row,) = frame.itertuples(index=False)
    assert row.role == "primary" and pd.isna(row.replica) and "no replica is streaming" in row.detail


async def test_verify_on_a_replica_checks_what_a_replica_can_and_sends_the_probe_to_the_primary(
    replica_engine: AsyncEngine,
) -> None:
    result = await checks.verify(replica_engine)
    assert result.ok, str(result)
    probe = result.frame.set_index("check").loc["probe"]
    assert "read replica" in probe["detail"] and "primary" in probe["detail"]
    assert result.probe.empty and result.revision == migrations.head()


@pytest.mark.parametrize(
    ("write", "what"),
    [
        (lambda engine: sample.seed(engine, tasks=10), "be seeded"),
        (checks.probe, "be probed"),
        (migrations.upgrade, "be migrated"),
        (lambda engine: migrations.downgrade(engine, "base"), "be migrated"),
    ],
    ids=["seed", "probe", "upgrade", "downgrade"],
)
async def test_writes_on_a_replica_are_refused_saying_it_is_a_read_replica(
    pg_engine: AsyncEngine, replica_engine: AsyncEngine, write: Callable[[AsyncEngine], object], what: str
) -> None:
    with pytest.raises(ReadReplicaError) as refused:
        await write(replica_engine)  # type: ignore[misc]
    message = str(refused.value)
    assert message.startswith(f"{describe(replica_engine)} is a read replica") and what in message
    assert "DATABASE_URL" in message and "\n" not in message
    assert await migrations.current(replica_engine) == migrations.head()  # nothing was touched


# -- the test modes: a replica from TEST_DATABASE_READ_URL, as CI would give one ---------------

READ_REPLICA = "tests/integration/test_read_replica.py"


def test_in_ci_with_test_database_read_url_the_replica_tests_run(
    postgres_server: PostgresServer,
    pooled_url: str,
    replica_server: ReplicaServer,
    replica_pooled_url: str,
    tmp_path: Path,
) -> None:
    run = pytest_as_ci_would_run_it(
        tmp_path,
        READ_REPLICA,
        options=("-rA",),
        TEST_DATABASE_URL=postgres_server.url,
        TEST_DATABASE_POOLED_URL=pooled_url,
        TEST_DATABASE_READ_URL=replica_server.url,
        TEST_DATABASE_READ_POOLED_URL=replica_pooled_url,
        CI="true",
    )
    summary = run.stdout.strip().splitlines()[-1]
    assert run.returncode == 0, run.stdout + run.stderr
    assert re.fullmatch(r"\d+ passed in .*", summary), summary  # direct and pooled, no skip
    assert re.search(r"^PASSED .*\[replica-pgbouncer\]", run.stdout, re.M)


def test_in_ci_a_missing_read_replica_is_a_failure_not_a_skip(postgres_server: PostgresServer, tmp_path: Path) -> None:
    test = f"{READ_REPLICA}::test_frames_and_distributions_on_the_replica_equal_the_primarys[replica]"
    in_ci = pytest_as_ci_would_run_it(tmp_path, test, TEST_DATABASE_URL=postgres_server.url, CI="true")
    assert in_ci.returncode == 1 and "1 error" in in_ci.stdout.splitlines()[-1], in_ci.stdout
    assert "CI needs a read replica" in in_ci.stdout and "set TEST_DATABASE_READ_URL" in in_ci.stdout
    locally = pytest_as_ci_would_run_it(tmp_path, test, TEST_DATABASE_URL=postgres_server.url, CI="")
    assert locally.returncode == 0 and "1 skipped" in locally.stdout.splitlines()[-1], locally.stdout
    assert "set TEST_DATABASE_READ_URL" in locally.stdout
