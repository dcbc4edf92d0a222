"""What the pytest plugin's fixtures cost a test, against migrating a database per test.

    uv run python benchmarks/plugin.py [--tests 40] [--suite 100]

Generates application suites in a temporary directory and runs each with pytest in a new
process (the installed plugin, no conftest of ours), timing every fixture's setup from
inside pytest (a ``pytest_fixture_setup`` wrapper):

- ``todo_engine``: a database cloned from the migrated template, and its engine;
- ``todo_session``: a connection, the outer transaction and the session, with the
  event loop of the session (the connection is reused) and of each test (a new one);
- the baseline, ``migrated_engine``: ``CREATE DATABASE`` and every migration, per test.

Medians over ``--tests`` tests each (the first test, which starts the server and makes
the template, included: the median does not see it). Then the wall time of a
``--suite``-test application suite (each test writes and reads back a task) with
``-n 2``, on ``todo_session``, on ``todo_engine`` and on the baseline. Targets:
``todo_engine`` ≤ 50 ms, ``todo_session`` ≤ 5 ms (session-scoped loop). Each run starts
its own throwaway cluster, unless ``TEST_DATABASE_URL`` names a server to use. Timing is
noisy on shared machines: compare figures from one run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TIMER = """
import json, os, time
import pytest

TIMES = {}


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_fixture_setup(fixturedef, request):
    start = time.perf_counter()
    try:
        return (yield)
    finally:
        TIMES.setdefault(fixturedef.argname, []).append(time.perf_counter() - start)


def pytest_sessionfinish(session):
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    with open(os.path.join(os.environ["FIXTURE_TIMES"], worker + ".json"), "w") as out:
        json.dump(TIMES, out)
"""

BASELINE = '''
import pytest
from sqlalchemy import text
from sqlalchemy.pool import NullPool

from todo_data import create_engine, migrations
from todo_data.migrations._scratch import drop_database

COUNT = [0]


@pytest.fixture
async def migrated_engine(todo_postgres):
    """What a suite does without templates: a new database, every migration run on it."""
    COUNT[0] += 1
    name = f"bench_migrated_{os.getpid()}_{COUNT[0]}"
    admin = create_engine(todo_postgres.url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine = create_engine(todo_postgres.database_url(name))
    await migrations.upgrade(engine)
    yield engine
    await engine.dispose()
    await drop_database(admin, name)
    await admin.dispose()
'''

WRITE = """INSERT INTO tasks (id, user_id, title, status) VALUES (gen_random_uuid(), 'u', 'Task', 'pending')"""

TESTS = {
    "todo_engine": f'''
async def test_engine_{{n}}(todo_engine):
    async with todo_engine.begin() as conn:
        await conn.execute(text("{WRITE}"))
        assert (await conn.execute(text("SELECT count(*) FROM tasks"))).scalar_one() == 1
''',
    "todo_session": f'''
async def test_session_{{n}}(todo_session):
    await todo_session.execute(text("{WRITE}"))
    await todo_session.commit()
    assert (await todo_session.execute(text("SELECT count(*) FROM tasks"))).scalar_one() == 1
''',
    "migrated_engine": f'''
async def test_migrated_{{n}}(migrated_engine):
    async with migrated_engine.begin() as conn:
        await conn.execute(text("{WRITE}"))
        assert (await conn.execute(text("SELECT count(*) FROM tasks"))).scalar_one() == 1
''',
}


def suite(root: Path, fixture: str, count: int, *, loop: str) -> Path:
    """A folder with ``count`` tests on ``fixture``, pytest-asyncio's loop scoped ``loop``."""
    folder = root / f"{fixture}-{loop}-{count}"
    folder.mkdir()
    (folder / "pytest.ini").write_text(
        "[pytest]\nasyncio_mode = auto\n"
        f"asyncio_default_fixture_loop_scope = {loop}\nasyncio_default_test_loop_scope = {loop}\n"
    )
    head = "import os\nfrom sqlalchemy import text\n"
    body = "".join(TESTS[fixture].format(n=n) for n in range(count))
    (folder / "test_app.py").write_text(head + (BASELINE if fixture == "migrated_engine" else "") + body)
    return folder


def run(folder: Path, *options: str) -> tuple[float, dict[str, list[float]]]:
    """The suite's wall time, and each fixture's setup times (every worker's)."""
    times = folder / "times"
    times.mkdir(exist_ok=True)
    (folder / "fixture_timer.py").write_text(TIMER)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")},
        "FIXTURE_TIMES": str(times),
        "PYTHONPATH": str(folder),
    }
    command = [sys.executable, "-m", "pytest", "-q", "-p", "fixture_timer", "-p", "no:cacheprovider"]
    command += ["-c", str(folder / "pytest.ini"), "--rootdir", str(folder), *options, str(folder)]
    start = time.perf_counter()
    result = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"{folder.name} failed:\n{result.stdout[-3000:]}{result.stderr[-3000:]}")
    found: dict[str, list[float]] = {}
    for path in times.glob("*.json"):
        for name, values in json.loads(path.read_text()).items():
            found.setdefault(name, []).extend(values)
    return wall, found


def ms(seconds: float) -> str:
    return f"{seconds * 1000:8.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tests", type=int, default=40, help="tests per fixture for the setup medians (default 40)")
    parser.add_argument("--suite", type=int, default=100, help="tests of the application suite (default 100)")
    args = parser.parse_args()
    server = "TEST_DATABASE_URL" if os.environ.get("TEST_DATABASE_URL") else "a throwaway cluster per run"
    print(f"{os.cpu_count()} cores; server: {server}")
    with tempfile.TemporaryDirectory(prefix="todo-data-bench-plugin-") as directory:
        root = Path(directory)
        print(f"\nfixture setup, median of {args.tests} tests (one process):")
        cases = [("todo_engine", "session"), ("todo_session", "session"), ("todo_session", "function")]
        cases.append(("migrated_engine", "session"))
        for fixture, loop in cases:
            _, times = run(suite(root, fixture, args.tests, loop=loop))
            values = times[fixture]
            label = f"{fixture} ({loop} loop)"
            print(f"  {label:32} {ms(statistics.median(values))}  (min {ms(min(values)).strip()}, n={len(values)})")
        print(f"\na {args.suite}-test application suite, pytest -n 2 (wall time, server start included):")
        for fixture in ("todo_session", "todo_engine", "migrated_engine"):
            wall, _ = run(suite(root, fixture, args.suite, loop="session"), "-n", "2")
            print(f"  {fixture:32} {wall:8.1f} s")


if __name__ == "__main__":
    main()
