"""The differential test of queries.sql against asyncpg, for as long as wanted.

    uv run python benchmarks/differential.py [--cases 2000] [--seed 1] [--many 20000]
        [--database-url URL  (instead of a throwaway cluster)] [--pooled-url URL]

The same seeded random queries as ``tests/integration/test_sql_differential.py`` (see
``tests/integration/differential.py``), many more of them, with bigger results: on a
throwaway PostgreSQL (and PgBouncer in front of it, when installed) unless URLs are given.
Stops at the first disagreement and prints the seed and case number, which reproduce it.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests package

from tests.integration.differential import check, generate, reference_connection
from todo_data import create_engine
from todo_data.queries import _pgcopy


async def run_cases(url: str, *, pooled: bool, cases: int, seed: int, many: int) -> None:
    engine = create_engine(url, pooled=pooled)
    rng = random.Random(seed)
    started = time.perf_counter()
    try:
        async with reference_connection(engine) as driver:
            for number in range(cases):
                case = generate(rng, many=many)
                _pgcopy._SEARCH_BLOCK = case.search_block
                try:
                    await check(engine, driver, case)
                except AssertionError:
                    print(f"case {number} of seed {seed} ({'pooled' if pooled else 'direct'}) disagrees:")
                    raise
                if number % 100 == 99:
                    print(f"  {number + 1} cases, {time.perf_counter() - started:.0f} s", flush=True)
    finally:
        await engine.dispose()
    print(f"{'pooled' if pooled else 'direct'}: {cases} cases agree ({time.perf_counter() - started:.0f} s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--many", type=int, default=20_000, help="the most rows a case may have")
    parser.add_argument("--database-url")
    parser.add_argument("--pooled-url")
    args = parser.parse_args()
    options = {"cases": args.cases, "seed": args.seed, "many": args.many}
    if args.database_url:
        asyncio.run(run_cases(args.database_url, pooled=False, **options))
        if args.pooled_url:
            asyncio.run(run_cases(args.pooled_url, pooled=True, **options))
        return

    from todo_data.testing import ClusterUnavailable, start_cluster, start_pgbouncer

    cluster = start_cluster()
    try:
        asyncio.run(run_cases(cluster.url(), pooled=False, **options))
        try:
            bouncer = start_pgbouncer(cluster)
        except ClusterUnavailable as exc:
            print(f"no pooled run: {exc}")
            return
        try:
            asyncio.run(run_cases(bouncer.url(), pooled=True, **options))
        finally:
            bouncer.stop()
    finally:
        cluster.stop()


if __name__ == "__main__":
    main()
