"""Stop means stop, in a real Jupyter kernel on a real PostgreSQL, direct and through PgBouncer.

A cell awaits a todo_data query that cannot finish on its own (it waits for a lock another
session holds, or sleeps for a minute); the test interrupts the kernel as JupyterLab's
Stop does (SIGINT), then reads ``pg_stat_activity`` from another connection: the statement
must be gone within the 2 seconds the contract allows, the cell must end with an error
saying it was interrupted, and the next cell must get an answer from the same engine.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.helpers import PostgresServer
from tests.kernels import Kernel, started_kernel
from todo_data import queries, sample

pytestmark = pytest.mark.postgres

#: What the contract allows between Stop and the statement leaving the server.
CANCEL_DEADLINE = 2.0


@pytest.fixture(scope="module", params=["direct", "pooled"])
def kernel(
    request: pytest.FixtureRequest, postgres_server: PostgresServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Kernel]:
    """A kernel whose notebook database (``DATABASE_URL``) is the test database, direct or pooled.

    One per endpoint, shared by the tests: each interruption must leave it, and its
    engines, ready for the next one.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("DATABASE_")}
    if request.param == "direct":
        env["DATABASE_URL"] = postgres_server.url
    else:
        env.update(DATABASE_URL=request.getfixturevalue("pooled_url"), DATABASE_POOLED="true")
    with started_kernel(env, tmp_path_factory.mktemp("kernel")) as kernel:
        kernel.run("%load_ext todo_data\nimport todo_data\nfrom todo_data import create_engine, queries")
        kernel.run("engine = create_engine()")
        yield kernel


async def poll(condition: Callable[[], Awaitable[bool]], *, within: float) -> bool:
    """Whether ``condition`` became true while polling for up to ``within`` seconds."""
    deadline = time.monotonic() + within
    while True:
        if await condition():
            return True
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)


@dataclass(frozen=True)
class Statement:
    """One server-side statement, as ``pg_stat_activity`` shows it."""

    pid: int
    query_start: Any


async def running(observer: AsyncEngine, fragment: str) -> list[Statement]:
    """Statements of other sessions in this database whose text contains ``fragment``, still running."""
    async with observer.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT pid, query_start FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid() AND state = 'active' AND strpos(query, :fragment) > 0"
            ),
            {"fragment": fragment},
        )
        return [Statement(int(pid), start) for pid, start in rows]


async def idle_in_transaction(observer: AsyncEngine) -> int:
    async with observer.connect() as conn:
        sql = (
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() AND state LIKE 'idle in transaction%'"
        )
        return int((await conn.execute(text(sql))).scalar_one())


# Each blocked cell: its code, a fragment of the statement it runs on the server, the error it ends with.
BLOCKED_CELLS = {
    "status_counts": ("await queries.status_counts(engine)", "GROUP BY status", "CancelledError"),  # SQLAlchemy
    # Described first, then read through asyncpg's raw COPY: either may be the one waiting.
    "tasks_frame": ("await queries.tasks_frame(engine)", "FROM tasks", "CancelledError"),
    "sql": ('await queries.sql(engine, "SELECT pg_sleep(60)")', "pg_sleep", "CancelledError"),
    "iter_sql": ('[c async for c in queries.iter_sql(engine, "SELECT pg_sleep(60)")]', "pg_sleep", "CancelledError"),
    # Cells without await, through the sync bridge: interrupted like Ctrl-C in a script.
    "run": ("todo_data.run(queries.status_counts(engine))", "GROUP BY status", "KeyboardInterrupt"),
    "magic": ("%%todo_sql\nSELECT pg_sleep(60)", "pg_sleep", "KeyboardInterrupt"),
}


@pytest.mark.parametrize("cell", sorted(BLOCKED_CELLS))
async def test_stop_cancels_a_blocked_query_on_the_server_and_the_engine_answers_next(
    cell: str, kernel: Kernel, pg_engine: AsyncEngine
) -> None:
    await sample.seed(pg_engine, tasks=200, users=5, seed=3)
    expected = repr(await queries.status_counts(pg_engine))
    kernel.run("await queries.status_counts(engine)")  # the engine has a pooled connection now
    code, fragment, ename = BLOCKED_CELLS[cell]
    async with pg_engine.connect() as holder:
        # Another session holds the table: the cell's query waits for as long as it is held.
        await holder.execute(text("LOCK TABLE tasks IN ACCESS EXCLUSIVE MODE"))
        msg_id = kernel.start(code)
        assert await poll(lambda: _any(running(pg_engine, fragment)), within=60), "the query never started"
        (blocked,) = await running(pg_engine, fragment)
        kernel.interrupt()
        gone = await poll(lambda: _none_is(blocked, running(pg_engine, fragment)), within=CANCEL_DEADLINE)
        await holder.rollback()  # had Stop failed, the query would now finish, and the cell with it
    outputs = kernel.finish(msg_id)
    assert gone, f"the statement was still running on the server {CANCEL_DEADLINE} s after Stop"
    (error,) = [out for out in outputs if out["output_type"] == "error"]
    assert error["ename"] == ename
    assert error["evalue"].startswith("Interrupted")
    (line,) = error["traceback"]  # one line, not 45 through asyncpg and asyncio
    assert f"{ename}\x1b[0m: Interrupted (Stop)" in line
    (answer,) = [out for out in kernel.run("await queries.status_counts(engine)") if "data" in out]
    assert answer["data"]["text/plain"] == expected
    count = next(out for out in kernel.run("%%todo_sql\nSELECT count(*) AS n FROM tasks") if "data" in out)
    assert count["data"]["text/plain"].split() == ["1", "row,", "1", "column", "n", "200"]  # the magic's engine too
    assert await idle_in_transaction(pg_engine) == 0  # nothing left half-done in the pool


async def _any(found: Awaitable[list[Statement]]) -> bool:
    return bool(await found)


async def _none_is(statement: Statement, found: Awaitable[list[Statement]]) -> bool:
    return statement not in await found
