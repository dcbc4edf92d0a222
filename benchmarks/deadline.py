"""How long a query waits for a suspended server, with ``statement_timeout``.

    uv run python benchmarks/deadline.py [--timeout 3] [--repeat 3]

Starts a Neon-like cluster with PgBouncer (todo_data.testing). For the direct and the
pooled endpoint, and for a statement asyncpg runs directly (``queries.sql``'s COPY) and
one SQLAlchemy runs (``checks.violations``), the backend is stopped with SIGSTOP while the
statement is at work (as a Neon compute suspending: the socket stays open, silent), and
the time from the call until its error is measured; the backend is resumed afterwards.
The contract is ``timeout + 1`` seconds. Medians of ``--repeat``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import statistics
import time
from collections.abc import Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncEngine

from todo_data import checks, create_engine, migrations, queries
from todo_data.errors import TodoDataError
from todo_data.testing import APP_DATABASE, PostgresCluster, start_cluster, start_pgbouncer

STATEMENTS: dict[str, tuple[Callable[[AsyncEngine], Awaitable[object]], str]] = {
    "queries.sql (asyncpg COPY)": (
        lambda engine: queries.sql(engine, "SELECT pg_sleep(60) AS slept"),
        "query LIKE '%pg_sleep(60)%'",
    ),
    "checks.violations (SQLAlchemy)": (checks.violations, "query LIKE '%UNION ALL%'"),
}


async def wait_for_suspended(cluster: PostgresCluster, engine: AsyncEngine, statement: str) -> float:
    run, at_work = STATEMENTS[statement]
    start = time.monotonic()
    task = asyncio.ensure_future(run(engine))
    where = f"state = 'active' AND pid <> pg_backend_pid() AND {at_work}"
    while not (pid := cluster.psql(f"SELECT pid FROM pg_stat_activity WHERE {where} LIMIT 1")):
        await asyncio.sleep(0.002)
    os.kill(int(pid), signal.SIGSTOP)
    try:
        with contextlib.suppress(TodoDataError):
            await task
        return time.monotonic() - start
    finally:
        os.kill(int(pid), signal.SIGCONT)


async def main(timeout: float, repeat: int) -> None:
    cluster = start_cluster()
    bouncer = start_pgbouncer(cluster)
    try:
        engine = create_engine(cluster.url())
        await migrations.upgrade(engine)
        await engine.dispose()
        cluster.psql(
            "INSERT INTO tasks (id, user_id, title, status) SELECT gen_random_uuid(), 'u', 't', 'pending' "
            "FROM generate_series(1, 300000)",
            database=APP_DATABASE,
        )
        print(f"statement_timeout = {timeout:g} s; the contract: an error within {timeout + 1:g} s")
        for endpoint, url in (("direct", cluster.url()), ("pooled", bouncer.url())):
            engine = create_engine(url, pooled=endpoint == "pooled", statement_timeout=timeout)
            try:
                for statement in STATEMENTS:
                    waits = [await wait_for_suspended(cluster, engine, statement) for _ in range(repeat)]
                    print(f"{endpoint:7} {statement:32} {statistics.median(waits):.2f} s")
            finally:
                await engine.dispose()
    finally:
        bouncer.stop()
        cluster.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timeout", type=float, default=3.0)
    parser.add_argument("--repeat", type=int, default=3)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.timeout, arguments.repeat))
