"""What the migration lint costs: lint_sql on a 1,000-statement script, and lint() of every revision.

    uv run python benchmarks/lint.py [--statements 1000] [--repeat 5]

- **lint_sql**: a script of ``--statements`` statements cycling through every fixture's
  dangerous twin (tests/lint_fixtures), all rules on; the median of ``--repeat`` runs,
  and per statement.
- **lint**: every revision of the project (Alembic's offline SQL, one revision at a
  time, then judged), the default rules; the median of ``--repeat`` runs.

Timing is noisy on shared machines: compare ratios from one run.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from todo_data import migrations
from todo_data._sqlparse import script_statements

FIXTURES = Path(__file__).parent.parent / "tests" / "lint_fixtures"


def script(count: int) -> str:
    """``count`` statements taken in turn from the fixtures' dangerous twins (no syntax error)."""
    pool = []
    for bad in sorted(FIXTURES.glob("*/bad.sql")):
        if bad.parent.name != "syntax_error":
            pool += [statement.sql for statement in script_statements(bad.read_text())[0]]
    return "".join(f"{pool[i % len(pool)]};\n" for i in range(count))


def median_seconds(call: object, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()  # type: ignore[operator]
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--statements", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    sql = script(args.statements)
    findings = len(migrations.lint_sql(sql, rules="all"))
    lint_sql = median_seconds(lambda: migrations.lint_sql(sql, rules="all"), args.repeat)
    revisions = median_seconds(migrations.lint, args.repeat)
    print(
        f"lint_sql, {args.statements} statements, all rules: {lint_sql * 1000:.0f} ms "
        f"({lint_sql / args.statements * 1e6:.0f} µs a statement, {findings} findings)"
    )
    print(f"lint() of every revision ({len(migrations.history())}): {revisions * 1000:.0f} ms")


if __name__ == "__main__":
    main()
