"""Faults in the middle of an operation: one clear ``TodoDataError``, nothing partial, nothing left.

The fault matrix: each public operation x {its backend terminated from another connection,
the server stopped, PgBouncer restarted} on the direct and the pooled endpoint. Every
case raises one :class:`DatabaseConnectionError` naming host, database and operation
(never the password), returns or keeps nothing partial (no Parquet file or folder, no
seeded row), leaves no session running or holding a transaction on the server, and the
same engine answers the next call.

"Mid-operation" is found, not timed: the test waits until ``pg_stat_activity`` shows the
operation's statement at work (a ``COPY`` blocked sending rows the client has not read
yet, ``ClientWrite``; a ``COPY FROM STDIN`` waiting for rows; the violations scan) and
injects the fault while the client's event loop is held, so the statement cannot finish
in between. Stopping the server would break the session's shared cluster, so this module
runs its own.

Then the client-side deadline: with ``statement_timeout``, a backend that stops answering
(SIGSTOP, as a Neon compute suspending) gives the operation's error while it is still
stopped, and once it resumes the statement is cancelled on the server.
"""

from __future__ import annotations

import asyncio
import os
import signal
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import aclosing
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.helpers import unavailable, with_query
from todo_data import checks, create_engine, migrations, queries, run, sample
from todo_data.errors import DatabaseConnectionError, DatabaseOperationError, QueryError
from todo_data.testing import (
    APP_DATABASE,
    APP_USER,
    ClusterUnavailable,
    PgBouncer,
    PostgresCluster,
    start_cluster,
    start_pgbouncer,
)

ROWS = 200_000
# Statements of the application role that hold something: running, or inside a transaction.
BUSY = f"usename = '{APP_USER}' AND state IS DISTINCT FROM 'idle' AND pid <> pg_backend_pid()"


@dataclass
class Harness:
    cluster: PostgresCluster
    bouncer: PgBouncer

    def url(self, endpoint: str, *, name: str = "todo-data-faults") -> str:
        return with_query(self.cluster.url() if endpoint == "direct" else self.bouncer.url(), application_name=name)

    def port(self, endpoint: str) -> int:
        return self.cluster.port if endpoint == "direct" else self.bouncer.port

    def count(self) -> int:
        return int(self.cluster.psql("SELECT count(*) FROM tasks", database=APP_DATABASE))

    def sessions(self, name: str) -> str:
        """Every backend of the direct engine named ``name``."""
        return self.cluster.psql(f"SELECT pid, state FROM pg_stat_activity WHERE application_name = '{name}'")

    def busy_sessions(self) -> str:
        """Backends of the application role still running a statement or inside a transaction."""
        return self.cluster.psql(f"SELECT pid, state, left(query, 60) FROM pg_stat_activity WHERE {BUSY}")


@pytest.fixture(scope="module")
def harness() -> Iterator[Harness]:
    """A cluster of this module's own, PgBouncer in front, and ``ROWS`` tasks."""
    try:
        cluster = start_cluster()
    except ClusterUnavailable as exc:
        unavailable("PostgreSQL", exc)
    try:
        try:
            bouncer = start_pgbouncer(cluster)
        except ClusterUnavailable as exc:
            unavailable("PgBouncer", exc)
        try:
            engine = create_engine(cluster.url())
            run(migrations.upgrade(engine))
            run(engine.dispose())
            cluster.psql(
                "INSERT INTO tasks (id, user_id, title, description, status, created_at, updated_at) "
                "SELECT gen_random_uuid(), 'user-' || i % 50, 'task ' || i, repeat('d', i % 200), "
                "(ARRAY['pending', 'in_progress', 'completed'])[1 + i % 3], "
                "now() - i * interval '1 minute', now() - i * interval '1 minute' "
                f"FROM generate_series(1, {ROWS}) AS i",
                database=APP_DATABASE,
            )
            yield Harness(cluster, bouncer)
        finally:
            bouncer.stop()
    finally:
        cluster.stop()


async def consume(chunks: AsyncIterator[object]) -> None:
    async with aclosing(chunks):
        async for _ in chunks:
            pass


SENDING_ROWS = "query LIKE 'COPY%TO STDOUT%' AND wait_event = 'ClientWrite'"
Inject = Callable[[], bool]


@dataclass(frozen=True)
class Operation:
    """A public operation, and what ``pg_stat_activity`` shows while it is at work.

    ``start(engine, folder, inject)`` begins it; an operation that holds the event loop
    while it works (the seed encodes its rows synchronously) calls ``inject`` itself from
    its progress callback, the others are watched (``watched``) until ``at_work`` holds.
    """

    name: str
    start: Callable[[AsyncEngine, Path, Inject], Awaitable[object]]
    at_work: str
    watched: bool = True


def seed_then_fault(engine: AsyncEngine, inject: Inject) -> Awaitable[int]:
    """A seed of two COPY batches, the fault injected between them (inside its transaction)."""

    def progress(done: int, total: int) -> None:
        if 0 < done < total:
            assert inject(), "the seed's transaction was not found"

    return sample.seed(engine, tasks=SEED_BATCH + 1, progress=progress)


SEED_BATCH = 5_000


@pytest.fixture(autouse=True)
def _small_seed_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    """Seed batches of SEED_BATCH rows: the seed holds the event loop while it encodes a batch."""
    monkeypatch.setitem(sample._BATCH, "postgresql", SEED_BATCH)


OPERATIONS = [
    Operation("queries.tasks_frame", lambda e, _, __: queries.tasks_frame(e), SENDING_ROWS),
    Operation(
        "queries.iter_tasks_frames",
        lambda e, _, __: consume(queries.iter_tasks_frames(e, chunk_size=1_000)),
        SENDING_ROWS,
    ),
    Operation("queries.sql", lambda e, _, __: queries.sql(e, "SELECT * FROM tasks"), SENDING_ROWS),
    Operation(
        "queries.iter_sql",
        lambda e, _, __: consume(queries.iter_sql(e, "SELECT * FROM tasks", chunk_size=1_000)),
        SENDING_ROWS,
    ),
    Operation(
        "queries.export_parquet",
        lambda e, folder, _: queries.export_parquet(e, folder / "new" / "folders" / "tasks", chunk_size=1_000),
        SENDING_ROWS,
    ),
    Operation(
        "sample.seed",
        lambda e, _, inject: seed_then_fault(e, inject),
        "query LIKE 'COPY%FROM STDIN%' AND state = 'idle in transaction'",
        watched=False,
    ),
    Operation("checks.verify", lambda e, _, __: checks.verify(e), "query LIKE '%UNION ALL%' AND state = 'active'"),
]
FAULTS = {"direct": ["terminated", "stopped"], "pooled": ["terminated", "stopped", "pgbouncer restarted"]}
CASES = [
    pytest.param(operation, endpoint, fault, id=f"{operation.name}-{endpoint}-{fault.replace(' ', '_')}")
    for operation in OPERATIONS
    for endpoint, faults in FAULTS.items()
    for fault in faults
]


def inject(harness: Harness, fault: str, at_work: str) -> bool:
    """The fault, if the statement is at work now (the caller's event loop is held meanwhile)."""
    where = f"usename = '{APP_USER}' AND pid <> pg_backend_pid() AND {at_work}"
    if fault == "terminated":
        return (
            harness.cluster.psql(f"SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE {where}") != "0"
        )
    if harness.cluster.psql(f"SELECT count(*) FROM pg_stat_activity WHERE {where}") == "0":
        return False
    if fault == "stopped":
        harness.cluster.shutdown()
    else:
        harness.bouncer.restart()
    return True


async def watch(task: asyncio.Future[object], inject: Inject) -> None:
    """Inject the fault as soon as the operation is at work, not after it finished."""
    while not inject():
        if task.done():
            task.result()
            pytest.fail("the operation finished before the fault could be injected")
        await asyncio.sleep(0.002)


async def settled(probe: Callable[[], str]) -> str:
    """``probe()`` once it gives ``""``, or its last answer after 10 s: ended backends exit on their own time."""
    for _ in range(200):
        answer = probe()
        if not answer:
            return ""
        await asyncio.sleep(0.05)
    return answer


@pytest.mark.parametrize(("operation", "endpoint", "fault"), CASES)
async def test_a_fault_mid_operation_is_one_connection_error_and_leaves_nothing(
    harness: Harness, operation: Operation, endpoint: str, fault: str, tmp_path: Path
) -> None:
    name = f"todo-data-faults-{uuid.uuid4().hex[:8]}"
    engine = create_engine(harness.url(endpoint, name=name), pooled=endpoint == "pooled")
    injected: list[bool] = []

    def inject_now() -> bool:
        injected.append(inject(harness, fault, operation.at_work))
        return injected[-1]

    try:
        task = asyncio.ensure_future(operation.start(engine, tmp_path, inject_now))
        try:
            if operation.watched:
                await watch(task, inject_now)
            with pytest.raises(DatabaseConnectionError) as failed:
                await task
        finally:
            if fault == "stopped" and any(injected):
                harness.cluster.start()
        message = str(failed.value)
        assert f'database "{APP_DATABASE}" on 127.0.0.1:{harness.port(endpoint)}' in message
        assert f"while {operation.name} was running" in message
        for secret in (harness.cluster.password, quote(harness.cluster.password, safe="")):
            assert secret not in message
        assert os.listdir(tmp_path) == []  # no Parquet file, no staging folder, no parent folder
        assert harness.count() == ROWS  # no seeded row kept
        assert await settled(harness.busy_sessions) == ""
        answer = await queries.sql(engine, "SELECT count(*) AS n FROM tasks")
        assert answer["n"].tolist() == [ROWS]
    finally:
        await engine.dispose()
    if endpoint == "direct":  # PgBouncer keeps its own idle server connections
        assert await settled(lambda: harness.sessions(name)) == ""


# -- the client-side deadline ---------------------------------------------------------------------

TIMEOUT = 0.5  # statement_timeout, seconds


@dataclass(frozen=True)
class Deadline:
    """An operation whose statement is stopped mid-way, and the error it must give."""

    name: str
    start: Callable[[AsyncEngine], Awaitable[object]]
    at_work: str
    error: type[DatabaseOperationError]


DEADLINES = [
    # asyncpg used directly: a COPY that waits for rows, and one that sends them.
    Deadline(
        "queries.sql",
        lambda e: queries.sql(e, "SELECT pg_sleep(30) AS slept"),
        "query LIKE '%pg_sleep(30)%' AND state = 'active'",
        QueryError,
    ),
    Deadline("queries.tasks_frame", queries.tasks_frame, SENDING_ROWS, DatabaseOperationError),
    # A statement SQLAlchemy runs: the violations scan.
    Deadline(
        "checks.violations", checks.violations, "query LIKE '%UNION ALL%' AND state = 'active'", DatabaseOperationError
    ),
]


@pytest.mark.parametrize("endpoint", ["direct", "pooled"])
@pytest.mark.parametrize("deadline", DEADLINES, ids=[deadline.name for deadline in DEADLINES])
async def test_a_suspended_server_gives_the_operations_error_while_it_is_still_suspended(
    harness: Harness, deadline: Deadline, endpoint: str
) -> None:
    name = f"todo-data-deadline-{uuid.uuid4().hex[:8]}"
    engine = create_engine(harness.url(endpoint, name=name), pooled=endpoint == "pooled", statement_timeout=TIMEOUT)
    at_work = f"usename = '{APP_USER}' AND {deadline.at_work}"
    stopped: list[int] = []
    try:
        task = asyncio.ensure_future(deadline.start(engine))
        while not (pid := harness.cluster.psql(f"SELECT pid FROM pg_stat_activity WHERE {at_work} LIMIT 1")):
            assert not task.done(), "the statement finished before it could be suspended"
            await asyncio.sleep(0.002)
        os.kill(int(pid), signal.SIGSTOP)  # as a Neon compute suspending: the socket stays open, silent
        stopped.append(int(pid))
        # Generous, not a timing assertion: the old code waited for the resume, however late.
        await asyncio.wait({task}, timeout=30)
        assert task.done(), "the client waited for a server that does not answer"
        with pytest.raises(deadline.error, match="got no answer") as failed:
            task.result()
        message = str(failed.value)
        assert f"{deadline.name} got no answer from database" in message
        assert f"statement timeout ({TIMEOUT:g} s)" in message
    finally:
        for backend in stopped:
            os.kill(backend, signal.SIGCONT)
    # Resumed, the backend finds its statement cancelled (and its client gone): it ends.
    assert await settled(lambda: harness.cluster.psql(f"SELECT pid FROM pg_stat_activity WHERE pid = {pid}")) == ""
    try:
        answer = await queries.sql(engine, "SELECT count(*) AS n FROM tasks")
        assert answer["n"].tolist() == [ROWS]
    finally:
        await engine.dispose()
    assert await settled(harness.busy_sessions) == ""
