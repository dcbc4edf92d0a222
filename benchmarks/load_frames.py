"""Load the whole tasks table into pandas with each tool, side by side, on a throwaway PostgreSQL.

    uv run --group bench python benchmarks/load_frames.py [--rows 1000000] [--repeat 3] [--seed-only]

Starts a Neon-like cluster (todo_data.testing), seeds it with sample.seed (timed), then
runs every loader in its own subprocess: a warm-up connection, ``--repeat`` timed loads
of ``SELECT <every column> FROM tasks ORDER BY created_at, id`` (median reported), and the
peak resident memory above the process's baseline (VmHWM, so C allocations count the
same as Python ones), per row. Then GROUP BY in SQL against the same aggregation in
pandas. Timing is noisy on shared machines: compare ratios from one run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

QUERY = "SELECT id, user_id, title, description, status, created_at, updated_at FROM tasks ORDER BY created_at, id"
LOADERS = ("tasks_frame", "read_sql", "connectorx", "adbc", "orm", "copy_binary")


def memory(field: str) -> int:
    """VmRSS (now) or VmHWM (peak) of this process, from /proc.

    Not ru_maxrss: Linux carries it across fork and exec, so a child would inherit the
    benchmark parent's peak.
    """
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def loader(name: str, url: str) -> Callable[[], Any]:
    """A zero-argument function doing one full load (sync; async ones run on one loop)."""
    if name == "read_sql":
        import pandas as pd
        import sqlalchemy

        engine = sqlalchemy.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
        with engine.connect() as conn:  # warm-up
            conn.exec_driver_sql("SELECT 1")

        def read_sql() -> Any:
            with engine.connect() as conn:
                return pd.read_sql(sqlalchemy.text(QUERY), conn)

        return read_sql
    if name == "connectorx":
        import connectorx

        return lambda: connectorx.read_sql(url, QUERY)
    if name == "adbc":
        import adbc_driver_postgresql.dbapi as adbc

        def load_adbc() -> Any:
            with adbc.connect(url) as conn, conn.cursor() as cursor:
                cursor.execute(QUERY)
                return cursor.fetch_arrow_table().to_pandas()

        return load_adbc

    from sqlalchemy import select

    from todo_data import Task, create_engine, queries
    from todo_data.database import sessionmaker

    loop = asyncio.new_event_loop()
    async_engine = create_engine(url)
    loop.run_until_complete(queries.status_counts(async_engine))  # warm-up: connect, catalogue

    if name == "tasks_frame":
        return lambda: loop.run_until_complete(queries.tasks_frame(async_engine))
    if name == "orm":
        import pandas as pd

        async def orm() -> Any:
            async with sessionmaker(async_engine)() as session:
                rows = (await session.scalars(select(Task).order_by(Task.created_at, Task.id))).all()  # type: ignore[arg-type]
                return pd.DataFrame([task.model_dump() for task in rows])

        return lambda: loop.run_until_complete(orm())
    if name == "copy_binary":

        async def copy() -> int:
            received = 0

            async def discard(chunk: bytes) -> None:  # PostgreSQL's binary COPY to /dev/null
                nonlocal received
                received += len(chunk)

            async with async_engine.connect() as conn:
                driver = (await conn.get_raw_connection()).driver_connection
                await driver.copy_from_query(QUERY, output=discard, format="binary")
            return received

        return lambda: loop.run_until_complete(copy())
    raise SystemExit(f"unknown loader {name}")


def child(name: str, url: str, repeat: int, rows: int) -> None:
    load = loader(name, url)
    baseline = memory("VmRSS")
    times = []
    result: Any = None
    for _ in range(repeat):
        result = None
        started = time.perf_counter()
        result = load()
        times.append(time.perf_counter() - started)
    peak = memory("VmHWM")
    dtypes = {str(k): str(v) for k, v in result.dtypes.items()} if hasattr(result, "dtypes") else {}
    print(json.dumps({"times": times, "peak_per_row": max(peak - baseline, 0) / rows, "dtypes": dtypes}))


def run_child(name: str, url: str, repeat: int, rows: int) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", name, "--url", url, "--repeat", str(repeat), "--rows", str(rows)],
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        return {"error": out.stderr.strip().splitlines()[-1] if out.stderr.strip() else "failed"}
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


async def seed_and_aggregate(
    url: str, rows: int, *, seed_only: bool = False
) -> tuple[float, list[tuple[str, float, float, float]]]:
    from todo_data import create_engine, migrations, queries, sample

    engine = create_engine(url)
    await migrations.upgrade(engine)
    started = time.perf_counter()
    await sample.seed(engine, tasks=rows)
    seconds = time.perf_counter() - started
    if seed_only:
        await engine.dispose()
        return seconds, []
    async with engine.connect() as conn:
        autocommit = await conn.execution_options(isolation_level="AUTOCOMMIT")
        await autocommit.exec_driver_sql("VACUUM ANALYZE tasks")
    frame = await queries.tasks_frame(engine)
    comparisons = []
    pandas_versions: dict[str, Callable[[Any], Any]] = {
        "status_counts": lambda f: f["status"].value_counts(sort=False),
        "tasks_per_user": lambda f: f.groupby(["user_id", "status"], observed=False).size().unstack(),
        "created_over_time(D)": lambda f: f.groupby([f["created_at"].dt.floor("D"), "status"], observed=True).size(),
    }
    for name, in_pandas in pandas_versions.items():
        sql_call = {
            "status_counts": lambda: queries.status_counts(engine),
            "tasks_per_user": lambda: queries.tasks_per_user(engine),
            "created_over_time(D)": lambda: queries.created_over_time(engine, freq="D"),
        }[name]
        sql_times, pandas_times, end_to_end = [], [], []
        for _ in range(3):
            started = time.perf_counter()
            await sql_call()
            sql_times.append(time.perf_counter() - started)
            started = time.perf_counter()
            in_pandas(frame)
            pandas_times.append(time.perf_counter() - started)
            started = time.perf_counter()
            in_pandas(await queries.tasks_frame(engine))
            end_to_end.append(time.perf_counter() - started)
        comparisons.append(
            (name, statistics.median(sql_times), statistics.median(pandas_times), statistics.median(end_to_end))
        )
    await engine.dispose()
    return seconds, comparisons


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--orm-repeat", type=int, default=1, help="the ORM path is slow; repeats for it alone")
    parser.add_argument("--seed-only", action="store_true", help="time sample.seed alone, then stop")
    parser.add_argument("--child")
    parser.add_argument("--url")
    args = parser.parse_args()
    if args.child:
        child(args.child, args.url, args.repeat, args.rows)
        return

    from todo_data.testing import start_cluster

    cluster = start_cluster()
    try:
        url = cluster.url()
        seed_seconds, aggregations = asyncio.run(seed_and_aggregate(url, args.rows, seed_only=args.seed_only))
        print(f"seeded {args.rows:,} rows with sample.seed in {seed_seconds:.1f} s\n")
        if args.seed_only:
            return
        results = {}
        for name in LOADERS:
            repeat = args.orm_repeat if name == "orm" else args.repeat
            results[name] = run_child(name, url, repeat, args.rows)
        base = statistics.median(results["tasks_frame"]["times"])
        print(f"{'loader':<14}{'median s':>10}{'÷ tasks_frame':>15}{'bytes/row':>11}  dtypes of id, created_at")
        for name, result in results.items():
            if "error" in result:
                print(f"{name:<14}  failed: {result['error']}")
                continue
            median = statistics.median(result["times"])
            dtypes = result["dtypes"]
            types = f"{dtypes.get('id', '-')}, {dtypes.get('created_at', '-')}" if dtypes else "(no frame)"
            print(f"{name:<14}{median:>10.2f}{median / base:>15.2f}{result['peak_per_row']:>11.0f}  {types}")
        fastest = min(
            statistics.median(results[name]["times"])
            for name in ("read_sql", "connectorx", "adbc")
            if "error" not in results[name]
        )
        print(
            f"\ntasks_frame / fastest of read_sql, ConnectorX, ADBC: {base / fastest:.2f} (target <= 1.5)"
            f"\nORM / tasks_frame: {statistics.median(results['orm']['times']) / base:.1f} (target >= 10)"
            f"\ntasks_frame bytes/row {results['tasks_frame']['peak_per_row']:.0f}"
            f" vs read_sql {results['read_sql']['peak_per_row']:.0f} (target <=)"
        )
        print(f"\n{'aggregation':<22}{'GROUP BY in SQL s':>18}{'pandas only s':>15}{'load + pandas s':>17}")
        for name, in_sql, in_pandas, end_to_end in aggregations:
            print(f"{name:<22}{in_sql:>18.3f}{in_pandas:>15.3f}{end_to_end:>17.3f}")
    finally:
        cluster.stop()


if __name__ == "__main__":
    main()
