"""How fast Stop stops a query, and queries.profile against the same statistics in pandas.

    uv run python benchmarks/stop_and_profile.py [--rows 300000] [--repeat 5]

Starts a Neon-like cluster with PgBouncer (todo_data.testing) and seeds it. Then:

- **Stop**: for the direct and the pooled endpoint, a Jupyter kernel runs
  ``await queries.sql(engine, "SELECT pg_sleep(60)")``; once the statement shows in
  ``pg_stat_activity`` the kernel is interrupted (SIGINT, as JupyterLab's Stop) and two
  delays are measured from the interrupt: until the statement leaves the server, and until
  the cell ends. Medians of ``--repeat`` interruptions in one kernel.
- **profile**: ``queries.profile`` (two SQL statements) against loading the table with
  ``tasks_frame`` and computing the same statistics in pandas. Medians of ``--repeat``.

Timing is noisy on shared machines: compare ratios from one run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from typing import Any

import pandas as pd
from jupyter_client.manager import KernelManager
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from todo_data import create_engine, migrations, queries, sample
from todo_data.testing import start_cluster, start_pgbouncer


async def sleeping(observer: AsyncEngine) -> bool:
    async with observer.connect() as conn:
        sql = (
            "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND pid <> pg_backend_pid() "
            "AND strpos(query, 'pg_sleep(60)') > 0"
        )
        return bool((await conn.execute(text(sql))).scalar_one())


def stop_delays(
    loop: asyncio.AbstractEventLoop, url: str, pooled: bool, observer: AsyncEngine, repeat: int
) -> tuple[float, float]:
    """Median seconds from SIGINT until the statement is gone from the server, and until the cell ends."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DATABASE_")}
    env.update(DATABASE_URL=url, DATABASE_POOLED="true" if pooled else "false")
    manager = KernelManager(kernel_name="python3")
    manager.start_kernel(env=env)
    client = manager.client()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=120)
        setup = "from todo_data import create_engine, queries\nengine = create_engine()"
        client.execute_interactive(setup, timeout=120)
        gone_after, ended_after = [], []
        for _ in range(repeat):
            client.execute('await queries.sql(engine, "SELECT pg_sleep(60)")')
            while not loop.run_until_complete(sleeping(observer)):
                time.sleep(0.01)
            start = time.monotonic()
            manager.interrupt_kernel()
            while loop.run_until_complete(sleeping(observer)):
                time.sleep(0.01)
            gone_after.append(time.monotonic() - start)
            reply = client.get_shell_msg(timeout=120)
            ended_after.append(time.monotonic() - start)
            assert reply["content"]["status"] == "error", reply["content"]
        return statistics.median(gone_after), statistics.median(ended_after)
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)


def pandas_profile(tasks: pd.DataFrame) -> pd.DataFrame:
    """The profile's statistics computed by pandas on the loaded frame (nearest-rank percentiles)."""
    rows = []
    for name in tasks.columns:
        column = tasks[name]
        values = column.dropna()
        text_like = name in {"user_id", "title", "description", "status"}
        shown = values.astype(str) if text_like or name == "id" else values
        row: dict[str, Any] = {
            "column": name,
            "rows": len(column),
            "nulls": int(column.isna().sum()),
            "distinct": int(column.nunique()),
            "min": shown.min() if len(values) else None,
            "max": shown.max() if len(values) else None,
        }
        if text_like and len(values):
            lengths = values.astype(str).str.len().sort_values(ignore_index=True)
            for p in (50, 95):
                row[f"length_p{p}"] = int(lengths[-(-p * len(lengths) // 100) - 1])
            row["length_max"] = int(lengths.iloc[-1])
        rows.append(row)
    return pd.DataFrame(rows)


def timed(loop: asyncio.AbstractEventLoop, make: Any, repeat: int) -> float:
    durations = []
    for _ in range(repeat):
        start = time.perf_counter()
        loop.run_until_complete(make())
        durations.append(time.perf_counter() - start)
    return statistics.median(durations)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=300_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    cluster = start_cluster()
    bouncer = start_pgbouncer(cluster)
    loop = asyncio.new_event_loop()
    engine = create_engine(cluster.url())
    try:
        loop.run_until_complete(migrations.upgrade(engine))
        loop.run_until_complete(sample.seed(engine, tasks=args.rows))
        print(f"{args.rows:,} rows seeded; {args.repeat} repeats, medians")
        for label, url, pooled in (("direct", cluster.url(), False), ("pooled", bouncer.url(), True)):
            gone, ended = stop_delays(loop, url, pooled, engine, args.repeat)
            print(f"Stop ({label}): statement gone after {gone:.3f} s, cell ended after {ended:.3f} s")

        async def in_pandas() -> pd.DataFrame:
            return pandas_profile(await queries.tasks_frame(engine))

        in_sql = timed(loop, lambda: queries.profile(engine), args.repeat)
        loaded = timed(loop, in_pandas, args.repeat)
        print(f"profile in SQL: {in_sql:.3f} s; tasks_frame + pandas: {loaded:.3f} s ({loaded / in_sql:.1f}x)")
    finally:
        loop.run_until_complete(engine.dispose())
        bouncer.stop()
        cluster.stop()


if __name__ == "__main__":
    main()
