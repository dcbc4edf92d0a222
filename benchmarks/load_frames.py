"""Load the tasks into pandas with each tool, side by side, on a throwaway PostgreSQL.

    uv run --group bench python benchmarks/load_frames.py [--rows 1000000] [--repeat 3] [--seed-only]
        [--only tasks_frame,adbc_idtext] [--database-url URL  (an already seeded database)]

Starts a Neon-like cluster (todo_data.testing), seeds it with sample.seed (timed), then
runs every loader in its own subprocess: a warm-up connection, ``--repeat`` timed loads
(median reported), the peak resident memory above the process's baseline (VmHWM, so C
allocations count the same as Python ones) per row, and the size of the frame itself per
row (``memory_usage(deep=True)``). Two workloads:

- the whole table, ``SELECT <every column> FROM tasks ORDER BY created_at, id``:
  ``tasks_frame`` against pandas.read_sql, ConnectorX, ADBC (uuid ids as bytes, and
  reading ``id::text`` for string ids like tasks_frame's), the ORM, and a binary COPY of
  the same rows to nowhere (the floor: what the server and the wire cost alone).
  tasks_frame asks for the rows unordered and sorts them itself, so the same two without
  ``ORDER BY`` (``*_unordered``: frames not in the contract's order) show how much of the
  difference is the server's sort;
- a mixed-type query (int, float, numeric, bool, text, uuid, timestamptz, date, NULLs):
  ``queries.sql`` against ADBC and pandas.read_sql on the same SQL, and its binary COPY to
  nowhere (the floor: computing the expressions is most of this query's cost);
- the values of issue 16 (numerics of 20 digits and of a few, intervals of days and of
  months, dates, timestamps): ``queries.sql`` and its binary COPY to nowhere.

Then GROUP BY in SQL against the same aggregation in pandas. Timing is noisy on shared
machines: compare ratios from one run.
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
QUERY_ID_TEXT = QUERY.replace("SELECT id,", "SELECT id::text AS id,")
UNORDERED = " ORDER BY created_at, id"
MIXED = (
    "SELECT length(title) AS title_length,"  # int4
    " extract(epoch FROM updated_at - created_at)::float8 AS seconds,"  # float8
    " (length(title) / 7.0)::numeric(12, 4) AS ratio,"  # numeric
    " status = 'completed' AS done,"  # bool
    " user_id, description,"  # text, with NULLs
    " id,"  # uuid
    " created_at,"  # timestamptz
    " (created_at AT TIME ZONE 'UTC')::date AS day,"  # date
    " length(description) AS description_length"  # int4 with NULLs
    " FROM tasks"
)
VALUES = (
    "SELECT length(title)::numeric / 3 AS third,"  # numeric of 20 significant digits
    " (length(title) / 7.0)::numeric(12, 4) AS ratio,"  # numeric of a few
    " updated_at - created_at AS age,"  # interval: days and time
    " make_interval(months => length(title)) AS months,"  # interval: months
    " (created_at AT TIME ZONE 'UTC')::date AS day, created_at"  # date, timestamptz
    " FROM tasks"
)
LOADERS = (
    "tasks_frame",
    "adbc_idtext",
    "adbc_idtext_unordered",
    "connectorx",
    "adbc",
    "read_sql",
    "orm",
    "copy_binary",
    "copy_unordered",
    "copy_mixed",
    "sql_mixed",
    "adbc_mixed",
    "read_sql_mixed",
    "copy_values",
    "sql_values",
)


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
    if name in ("read_sql", "read_sql_mixed"):
        import pandas as pd
        import sqlalchemy

        engine = sqlalchemy.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
        with engine.connect() as conn:  # warm-up
            conn.exec_driver_sql("SELECT 1")
        query = MIXED if name == "read_sql_mixed" else QUERY

        def read_sql() -> Any:
            with engine.connect() as conn:
                return pd.read_sql(sqlalchemy.text(query), conn)

        return read_sql
    if name == "connectorx":
        import connectorx

        return lambda: connectorx.read_sql(url, QUERY)
    if name in ("adbc", "adbc_idtext", "adbc_idtext_unordered", "adbc_mixed"):
        import adbc_driver_postgresql.dbapi as adbc

        query = {
            "adbc": QUERY,
            "adbc_idtext": QUERY_ID_TEXT,
            "adbc_idtext_unordered": QUERY_ID_TEXT.replace(UNORDERED, ""),
            "adbc_mixed": MIXED,
        }[name]

        def load_adbc() -> Any:
            with adbc.connect(url) as conn, conn.cursor() as cursor:
                cursor.execute(query)
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
    if name == "sql_mixed":
        return lambda: loop.run_until_complete(queries.sql(async_engine, MIXED))
    if name == "sql_values":
        return lambda: loop.run_until_complete(queries.sql(async_engine, VALUES))
    if name == "orm":
        import pandas as pd

        async def orm() -> Any:
            async with sessionmaker(async_engine)() as session:
                rows = (await session.scalars(select(Task).order_by(Task.created_at, Task.id))).all()  # type: ignore[arg-type]
                return pd.DataFrame([task.model_dump() for task in rows])

        return lambda: loop.run_until_complete(orm())
    if name in ("copy_binary", "copy_unordered", "copy_mixed", "copy_values"):
        copied = {
            "copy_binary": QUERY,
            "copy_unordered": QUERY.replace(UNORDERED, ""),
            "copy_mixed": MIXED,
            "copy_values": VALUES,
        }[name]

        async def copy() -> int:
            received = 0

            async def discard(chunk: bytes) -> None:  # PostgreSQL's binary COPY to /dev/null
                nonlocal received
                received += len(chunk)

            async with async_engine.connect() as conn:
                driver = (await conn.get_raw_connection()).driver_connection
                await driver.copy_from_query(copied, output=discard, format="binary")
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
    frame_bytes = int(result.memory_usage(deep=True, index=False).sum()) if hasattr(result, "memory_usage") else 0
    print(
        json.dumps(
            {
                "times": times,
                "peak_per_row": max(peak - baseline, 0) / rows,
                "frame_per_row": frame_bytes / rows,
                "dtypes": dtypes,
            }
        )
    )


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


def median(result: dict[str, Any]) -> float | None:
    return None if "error" in result else statistics.median(result["times"])


def ratio(results: dict[str, dict[str, Any]], numerator: str, denominator: str) -> str:
    top, bottom = (median(results[name]) if name in results else None for name in (numerator, denominator))
    return "n/a" if top is None or bottom is None else f"{top / bottom:.2f}"


def report(results: dict[str, dict[str, Any]]) -> None:
    header = f"{'loader':<22}{'median s':>10}{'peak B/row':>12}{'frame B/row':>13}  dtypes of id, created_at"
    print(header)
    for name, result in results.items():
        if "error" in result:
            print(f"{name:<22}  failed: {result['error']}")
            continue
        dtypes = result["dtypes"]
        types = f"{dtypes.get('id', '-')}, {dtypes.get('created_at', '-')}" if dtypes else "(no frame)"
        print(
            f"{name:<22}{median(result):>10.2f}{result['peak_per_row']:>12.0f}{result['frame_per_row']:>13.0f}  {types}"
        )
    checks = [
        ("tasks_frame / ADBC reading id::text", ratio(results, "tasks_frame", "adbc_idtext"), "<= 1.2"),
        ("tasks_frame / ConnectorX", ratio(results, "tasks_frame", "connectorx"), "<= 1.0"),
        ("tasks_frame / ADBC (uuid as bytes)", ratio(results, "tasks_frame", "adbc"), ""),
        ("tasks_frame / ADBC id::text unordered", ratio(results, "tasks_frame", "adbc_idtext_unordered"), ""),
        ("ORM / tasks_frame", ratio(results, "orm", "tasks_frame"), ">= 10"),
        ("sql (mixed) / ADBC (mixed)", ratio(results, "sql_mixed", "adbc_mixed"), "<= 1.5"),
        ("read_sql (mixed) / sql (mixed)", ratio(results, "read_sql_mixed", "sql_mixed"), ">= 5"),
    ]
    if "tasks_frame" in results and "error" not in results["tasks_frame"]:
        checks.append(("tasks_frame frame B/row", f"{results['tasks_frame']['frame_per_row']:.0f}", "<= 330"))
    print()
    for label, value, target in checks:
        print(f"{label:<40}{value:>8}  {('target ' + target) if target else ''}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--orm-repeat", type=int, default=1, help="the ORM path is slow; repeats for it alone")
    parser.add_argument("--seed-only", action="store_true", help="time sample.seed alone, then stop")
    parser.add_argument("--only", help="comma-separated loaders to run (default: all)")
    parser.add_argument("--database-url", help="an already seeded PostgreSQL database: no cluster, no seeding")
    parser.add_argument("--child")
    parser.add_argument("--url")
    args = parser.parse_args()
    if args.child:
        child(args.child, args.url, args.repeat, args.rows)
        return
    loaders = args.only.split(",") if args.only else list(LOADERS)
    slow = {"orm": args.orm_repeat, "read_sql": max(1, args.repeat // 2), "read_sql_mixed": max(1, args.repeat // 2)}

    def run_loaders(url: str) -> None:
        results = {name: run_child(name, url, slow.get(name, args.repeat), args.rows) for name in loaders}
        report(results)

    if args.database_url:
        run_loaders(args.database_url)
        return

    from todo_data.testing import start_cluster

    cluster = start_cluster()
    try:
        url = cluster.url()
        seed_seconds, aggregations = asyncio.run(seed_and_aggregate(url, args.rows, seed_only=args.seed_only))
        print(f"seeded {args.rows:,} rows with sample.seed in {seed_seconds:.1f} s\n")
        if args.seed_only:
            return
        run_loaders(url)
        print(f"\n{'aggregation':<22}{'GROUP BY in SQL s':>18}{'pandas only s':>15}{'load + pandas s':>17}")
        for name, in_sql, in_pandas, end_to_end in aggregations:
            print(f"{name:<22}{in_sql:>18.3f}{in_pandas:>15.3f}{end_to_end:>17.3f}")
    finally:
        cluster.stop()


if __name__ == "__main__":
    main()
