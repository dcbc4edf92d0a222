"""How close the live lint's estimate comes to the real duration, at 100k and 1M rows.

    uv run python benchmarks/lint_estimate.py [--database-url URL] [--sizes 100000 1000000]
                                              [--scratch-rows 50000] [--repeat 3]

For each size: a new database beside ``--database-url`` (default: a throwaway cluster
from :mod:`todo_data.testing`; the role needs CREATEDB) is migrated and seeded with that
many tasks (``todo_data.sample.seed``). For each statement below, ``lint_sql(…,
database_url=…)`` gives its estimate (timed on a scratch copy of ``--scratch-rows``
tasks, scaled by size); then the statement really runs on the seeded database, inside a
transaction rolled back afterwards, ``--repeat`` times (the median counts). The error is
(estimate - real) / real. The databases are dropped at the end.

Timing is noisy on shared machines: read the errors of one run together.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid
from contextlib import AsyncExitStack

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from todo_data import create_engine, migrations, sample
from todo_data.migrations._scratch import drop_database
from todo_data.testing import start_cluster

TIMEOUTS = "SET lock_timeout = '2s';\nSET statement_timeout = '10min';\n"
STATEMENTS = {
    "create index": "CREATE INDEX ix_bench ON tasks (title)",
    "type change (rewrite)": "ALTER TABLE tasks ALTER COLUMN title TYPE varchar(300)",
    "check constraint": "ALTER TABLE tasks ADD CONSTRAINT ck_bench CHECK (length(title) < 1000)",
    "volatile default (rewrite)": "ALTER TABLE tasks ADD COLUMN bench float8 DEFAULT random()",
    "rename (catalog only)": "ALTER TABLE tasks RENAME COLUMN description TO notes",
}


async def real_seconds(url: str, statement: str, repeat: int) -> float:
    engine = create_engine(url, poolclass=NullPool)
    times = []
    try:
        for _ in range(repeat):
            async with engine.connect() as conn:
                transaction = await conn.begin()
                started = time.perf_counter()
                await conn.execute(text(statement))
                times.append(time.perf_counter() - started)
                await transaction.rollback()
    finally:
        await engine.dispose()
    return statistics.median(times)


async def seeded_database(server: str, tasks: int) -> str:
    name = f"lint_estimate_{uuid.uuid4().hex[:8]}"
    admin = create_engine(server, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        await admin.dispose()
    url = make_url(server).set(database=name).render_as_string(hide_password=False)
    engine = create_engine(url)
    try:
        await migrations.upgrade(engine)
        await sample.seed(engine, tasks=tasks)
        async with engine.connect() as conn:
            await conn.execute(text("ANALYZE tasks"))
            await conn.commit()
    finally:
        await engine.dispose()
    return url


async def main(server: str, sizes: list[int], scratch_rows: int, repeat: int) -> None:
    admin = create_engine(server, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    made: list[str] = []
    errors = []
    print(f"scratch copy: {scratch_rows:,} tasks; real duration: median of {repeat}")
    print(f"{'rows':>10}  {'statement':<28} {'estimate':>10} {'real':>10} {'error':>8}")
    try:
        for size in sizes:
            url = await seeded_database(server, size)
            made.append(str(make_url(url).database))
            for label, statement in STATEMENTS.items():
                frame = await asyncio.to_thread(
                    migrations.lint_sql, TIMEOUTS + statement + ";", database_url=url, scratch_rows=scratch_rows
                )
                estimate = frame["estimate"].dropna().iloc[0].total_seconds()
                real = await real_seconds(url, statement, repeat)
                error = (estimate - real) / real
                if "catalog" not in label:
                    errors.append(abs(error))
                print(f"{size:>10,}  {label:<28} {estimate:>9.3f}s {real:>9.3f}s {error:>+8.0%}")
                print(f"{'':>12}{frame['impact'].dropna().iloc[0]}")
        print(f"median |error| of the statements that scan or rewrite: {statistics.median(errors):.0%}")
    finally:
        for name in made:
            await drop_database(admin, name)
        await admin.dispose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", help="a server whose role has CREATEDB (default: a throwaway cluster)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--scratch-rows", type=int, default=migrations.DEFAULT_SCRATCH_ROWS)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    async def with_server() -> None:
        async with AsyncExitStack() as stack:
            url = args.database_url
            if url is None:
                cluster = start_cluster()
                stack.callback(cluster.stop)
                url = cluster.url()
            await main(url, args.sizes, args.scratch_rows, args.repeat)

    asyncio.run(with_server())
