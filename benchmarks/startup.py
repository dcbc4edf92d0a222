"""How long a user waits before anything happens: ``import todo_data`` and ``todo-data --help``.

    uv run python benchmarks/startup.py [--runs 15]

Each command runs as a whole new process (the project's venv Python and its
``todo-data`` console script), ``--runs`` times after one warm-up run (so the file
cache is warm), in turns, and the median wall-clock time of each is printed, with
``python -c pass`` and ``import typer`` as the floors the package cannot go below.
Targets: ``import todo_data`` ≤ 0.25 s, ``todo-data --help`` ≤ 0.3 s. Timing is noisy
on shared machines: compare figures from one run.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

PYTHON = sys.executable
SCRIPT = Path(PYTHON).with_name("todo-data")

COMMANDS: dict[str, list[str]] = {
    "python -c pass": [PYTHON, "-c", "pass"],
    "import typer": [PYTHON, "-c", "import typer"],
    "import todo_data": [PYTHON, "-c", "import todo_data"],
    "todo-data --help": [str(SCRIPT), "--help"],
}
TARGETS = {"import todo_data": 0.25, "todo-data --help": 0.3}


def wall_time(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=15, help="timed runs of each command (default 15)")
    runs = parser.parse_args().runs
    if not SCRIPT.is_file():
        sys.exit(f"no console script at {SCRIPT}: run this with the project's venv (uv run python ...)")
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for command in COMMANDS.values():
        wall_time(command)  # warm-up: bytecode compiled, files cached
    for _ in range(runs):
        for name, command in COMMANDS.items():  # in turns, so load changes hit every command alike
            times[name].append(wall_time(command))
    print(f"{'command':<20} {'median s':>9} {'min s':>7} {'max s':>7}  target")
    for name, samples in times.items():
        median = statistics.median(samples)
        target = TARGETS.get(name)
        verdict = "" if target is None else f"≤ {target} s: {'ok' if median <= target else 'MISSED'}"
        print(f"{name:<20} {median:>9.3f} {min(samples):>7.3f} {max(samples):>7.3f}  {verdict}")


if __name__ == "__main__":
    main()
