"""Every todo-data command on a migrated database with no task, one task, or only unknown statuses.

In process (typer's runner), as in tests/e2e/test_cli.py: the same
commands, many times over, at a fraction of the start-up cost.
"""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import insert
from typer.testing import CliRunner, Result

from tests.integration.scratch import scratch_url
from todo_data import Task, create_engine, migrations, run
from todo_data.cli import app

__all__ = ["scratch_url"]  # a fixture: an empty SQLite file or PostgreSQL database

STATES = {"no task": [], "one task": ["pending"], "only unknown statuses": ["archived", "blocked"]}


def prepare(url: str, statuses: list[str]) -> None:
    async def body() -> None:
        engine = create_engine(url)
        try:
            await migrations.upgrade(engine)
            rows = [{"id": uuid.uuid4(), "user_id": "u", "title": "t", "status": status} for status in statuses]
            if rows:
                async with engine.begin() as conn:
                    await conn.execute(insert(Task.__table__), rows)  # type: ignore[attr-defined]
        finally:
            await engine.dispose()

    run(body())


@pytest.mark.parametrize("state", list(STATES))
def test_every_command_answers(scratch_url: str, state: str) -> None:
    prepare(scratch_url, STATES[state])
    url = ["--database-url", scratch_url]

    def todo_data(*args: str) -> Result:
        return CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})

    report = todo_data("report", *url)
    assert report.exit_code == 0, report.stderr
    assert "Tasks by status" in report.stdout and "Tasks per user" in report.stdout
    for status in STATES[state]:
        assert status in report.stdout

    verify = todo_data("verify", *url)
    assert "Traceback" not in verify.stderr
    if state == "only unknown statuses":  # stored rows that break today's rules: a verdict, not a crash
        assert verify.exit_code == 1 and "verification failed: violations" in verify.stderr, verify.stderr
    else:
        assert verify.exit_code == 0, verify.stdout + verify.stderr

    for command in (["migrate"], ["migrate", "current"], ["seed", "--tasks", "3"], ["demo", "--tasks", "3"]):
        result = todo_data(*command, *url)
        assert result.exit_code == 0, (command, result.stdout, result.stderr)


async def test_report_names_a_missing_status_or_user_instead_of_nan(sqlite_url: str) -> None:
    from tests.integration.scratch import Scratch
    from tests.integration.tasks import drop_not_null, insert_raw

    engine = create_engine(sqlite_url)
    await migrations.upgrade(engine)
    scratch = Scratch(backend="sqlite", url=sqlite_url, engine=engine)
    try:
        await drop_not_null(scratch, ["user_id", "status"])
        await insert_raw(scratch, status=None)
        await insert_raw(scratch, user_id=None)
    finally:
        await engine.dispose()
    report = CliRunner().invoke(app, ["report", "--database-url", sqlite_url], env={"COLUMNS": "200"})
    assert report.exit_code == 0, report.stderr
    assert "nan" not in report.stdout.lower()
    assert report.stdout.count("(missing)") >= 2  # the status row and the user row
