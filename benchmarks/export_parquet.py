"""Export the tasks to Parquet against loading them with tasks_frame, and the export's peak memory by size.

    uv run python benchmarks/export_parquet.py [--rows 1000000] [--large 5000000] [--repeat 3]

Starts one Neon-like cluster (todo_data.testing) and seeds it with sample.seed to
``--rows``; times ``queries.tasks_frame`` and ``queries.export_parquet`` there (each in its
own process: median of ``--repeat`` runs, and the peak resident memory above the
process's baseline after a warm-up); then seeds the same table up to ``--large`` rows and
measures the export again. Targets: export at most 1.5 times tasks_frame, and the export's peak
memory under 300 MB above baseline at both sizes (memory must not grow with the table).
Timing is noisy on shared machines: compare ratios from one run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from load_frames import memory

MEMORY_BOUND = 300 * 1024 * 1024
TIME_RATIO = 1.5


def child(what: str, url: str, repeat: int) -> None:
    """One measurement, in this fresh process: times and peak memory above the baseline."""
    from todo_data import create_engine, queries

    loop = asyncio.new_event_loop()
    engine = create_engine(url)
    loop.run_until_complete(queries.status_counts(engine))  # warm-up: connect, catalogue, imports
    out = Path(tempfile.mkdtemp(prefix="todo-data-export-bench-"))
    baseline = memory("VmRSS")
    times, rows = [], 0
    try:
        for attempt in range(repeat):
            started = time.perf_counter()
            if what == "tasks_frame":
                frame = loop.run_until_complete(queries.tasks_frame(engine))
                rows = len(frame)
                del frame
            else:
                rows = loop.run_until_complete(queries.export_parquet(engine, out / f"tasks-{attempt}"))
            times.append(time.perf_counter() - started)
            shutil.rmtree(out / f"tasks-{attempt}", ignore_errors=True)
        peak = memory("VmHWM")
    finally:
        shutil.rmtree(out, ignore_errors=True)
        loop.run_until_complete(engine.dispose())
    print(json.dumps({"times": times, "rows": rows, "peak_above_baseline": max(peak - baseline, 0)}))


def measure(what: str, url: str, repeat: int) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", what, "--url", url, "--repeat", str(repeat)],
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise SystemExit(f"{what} failed:\n{out.stderr}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


async def seed_to(url: str, rows: int) -> float:
    """Seed the table up to ``rows`` tasks (adding only what is missing); seconds taken."""
    from sqlalchemy import func, select

    from todo_data import Task, create_engine, migrations, sample

    engine = create_engine(url)
    try:
        await migrations.upgrade(engine)
        async with engine.connect() as conn:
            existing = (await conn.execute(select(func.count()).select_from(Task))).scalar_one()
        started = time.perf_counter()
        await sample.seed(engine, tasks=rows - existing, seed=existing)
        seconds = time.perf_counter() - started
        async with engine.connect() as conn:
            autocommit = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await autocommit.exec_driver_sql("VACUUM ANALYZE tasks")
    finally:
        await engine.dispose()
    return seconds


def mib(size: float) -> str:
    return f"{size / 1024 / 1024:,.0f} MiB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--large", type=int, default=5_000_000, help="0 skips the second size")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--child")
    parser.add_argument("--url")
    args = parser.parse_args()
    if args.child:
        child(args.child, args.url, args.repeat)
        return

    from todo_data.testing import start_cluster

    cluster = start_cluster()
    try:
        url = cluster.url()
        print(f"seeded {args.rows:,} rows in {asyncio.run(seed_to(url, args.rows)):.1f} s")
        loaded = measure("tasks_frame", url, args.repeat)
        exported = measure("export", url, args.repeat)
        load_s, export_s = statistics.median(loaded["times"]), statistics.median(exported["times"])
        print(f"\n{'at ' + format(args.rows, ','):<14}{'median s':>10}{'peak above baseline':>22}")
        print(f"{'tasks_frame':<14}{load_s:>10.2f}{mib(loaded['peak_above_baseline']):>22}")
        print(f"{'export':<14}{export_s:>10.2f}{mib(exported['peak_above_baseline']):>22}")
        ratio = export_s / load_s
        print(f"\nexport / tasks_frame: {ratio:.2f} (target <= {TIME_RATIO})")
        peaks = {args.rows: exported["peak_above_baseline"]}
        if args.large > args.rows:
            print(f"\nseeded up to {args.large:,} rows in {asyncio.run(seed_to(url, args.large)):.1f} s")
            large = measure("export", url, 1)
            peaks[args.large] = large["peak_above_baseline"]
            print(f"export of {large['rows']:,} rows: {large['times'][0]:.2f} s")
        for rows, peak in peaks.items():
            verdict = "ok" if peak < MEMORY_BOUND else "OVER"
            print(
                f"export peak memory at {rows:,} rows: {mib(peak)} above baseline"
                f" ({verdict}: bound {mib(MEMORY_BOUND)})"
            )
    finally:
        cluster.stop()


if __name__ == "__main__":
    main()
