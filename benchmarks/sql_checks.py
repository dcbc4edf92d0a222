"""What the read-only checks of queries.sql cost: the parse, and a small query end to end.

    uv run python benchmarks/sql_checks.py [--calls 300]

- **parse**: the ``:name`` scan, PostgreSQL's parser (``read_statement``), its lexer
  confirming the placeholders, and the COPY parsed again as sent, on a twelve-line
  analyst query, per call, next to the query's round trips.
- **small query**: ``queries.sql`` on a read-only engine for a one-row query with a
  parameter, per call, on the direct and the pooled endpoint (a Neon-like cluster with
  PgBouncer started by todo_data.testing), and the same through asyncpg alone
  (``fetch``), the floor. Medians of ``--calls`` calls.

Timing is noisy on shared machines: compare ratios from one run.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

import asyncpg

from todo_data import _sqlparse, create_engine, migrations, queries
from todo_data.queries._placeholders import scan
from todo_data.testing import start_cluster, start_pgbouncer

ANALYST_QUERY = """
-- open tasks per user, this quarter
WITH open AS (
    SELECT user_id, status, created_at
    FROM tasks
    WHERE status <> 'completed' AND created_at >= :since
)
SELECT user_id,
       count(*) AS open_tasks,
       min(created_at) AS oldest,
       string_agg(DISTINCT status, ', ') AS statuses
FROM open
GROUP BY user_id
ORDER BY open_tasks DESC;
"""


def median_seconds(calls: int, run: object) -> float:
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        run()  # type: ignore[operator]
        times.append(time.perf_counter() - start)
    return statistics.median(times)


async def median_async(calls: int, make: object) -> float:
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        await make()  # type: ignore[operator]
        times.append(time.perf_counter() - start)
    return statistics.median(times)


async def main(calls: int) -> None:
    scanned = median_seconds(calls, lambda: scan(ANALYST_QUERY))
    numbered = scan(ANALYST_QUERY).render(lambda _name: "$1")
    parsed = median_seconds(calls, lambda: _sqlparse.read_statement(numbered))
    lexed = median_seconds(calls, lambda: _sqlparse.parameter_tokens(numbered))
    copy = f"COPY (SELECT 1, * FROM (\n{numbered.rstrip().rstrip(';')}\n) AS _q) TO STDOUT (FORMAT 'binary')"
    copied = median_seconds(calls, lambda: _sqlparse.check_copy(copy))
    print(
        f"scan {scanned * 1e6:.0f} µs, parse and check {parsed * 1e6:.0f} µs, placeholders lexed "
        f"{lexed * 1e6:.0f} µs, COPY checked as sent {copied * 1e6:.0f} µs per call"
    )
    cluster = start_cluster()
    bouncer = start_pgbouncer(cluster)
    try:
        writer = create_engine(cluster.url())
        await migrations.upgrade(writer)
        await writer.dispose()
        for label, url, pooled in (("direct", cluster.url(), False), ("pooled", bouncer.url(), True)):
            engine = create_engine(url, read_only=True, pooled=pooled)
            await queries.sql(engine, "SELECT 1 AS warm")
            small = await median_async(
                calls, lambda engine=engine: queries.sql(engine, "SELECT CAST(:n AS int) + 1 AS n", {"n": 41})
            )
            await engine.dispose()
            driver = await asyncpg.connect(
                url.replace("?sslmode=require", ""),
                ssl="require",
                statement_cache_size=0 if pooled else 100,
            )
            floor = await median_async(calls, lambda driver=driver: driver.fetch("SELECT $1::int + 1 AS n", 41))
            await driver.close()
            print(
                f"{label}: queries.sql {small * 1e3:.2f} ms, asyncpg fetch {floor * 1e3:.2f} ms per call "
                f"({small / floor:.1f}x)"
            )
    finally:
        bouncer.stop()
        cluster.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300)
    asyncio.run(main(parser.parse_args().calls))
