"""The migration round trip: each revision up, down and up again, carrying rows, on a scratch database."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import pandas as pd
from alembic.script import ScriptDirectory
from sqlalchemy import inspect
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import NullPool

from alembic import command
from todo_data import sample
from todo_data._args import StepProgress
from todo_data.database import connect, create_engine
from todo_data.errors import MigrationError
from todo_data.migrations import _snapshot
from todo_data.migrations._config import revision_of
from todo_data.migrations._drift import drift_rows
from todo_data.migrations._locks import migrate
from todo_data.migrations._scratch import scratch_database
from todo_data.rules import TABLE_NAME

#: The columns of :func:`todo_data.migrations.verify_roundtrip`'s frame.
ROUNDTRIP_COLUMNS: Final = ("step", "revision", "ok", "detail")


@dataclass
class _State:
    """The schema and data at one moment, to compare a later moment with."""

    schema: _snapshot.Schema
    data: _snapshot.Data


@dataclass
class _RoundTrip:
    engine: AsyncEngine
    location: str | Path | None
    progress: StepProgress | None
    steps: list[dict[str, Any]] = field(default_factory=list)

    def failed(self) -> bool:
        return any(not step["ok"] for step in self.steps)

    def record(self, step: str, revision: str | None, ok: bool, detail: str) -> None:
        self.steps.append({"step": step, "revision": revision, "ok": ok, "detail": detail})

    async def state(self) -> _State:
        async with connect(self.engine) as conn:
            return _State(await conn.run_sync(_snapshot.schema), await conn.run_sync(_snapshot.data))

    async def move(self, step: str, target: str, *, down: bool) -> str | None:
        """Run one step; on failure record it and return None."""
        if self.progress is not None:
            self.progress(step)
        verb = command.downgrade if down else command.upgrade
        try:
            # A scratch database nobody else uses: no lock can be contended.
            await migrate(self.engine, target, lambda config: verb(config, target), 0, location=self.location)
        except MigrationError as exc:
            self.record(step, await _revision(self.engine), False, str(exc))
            return None
        return await _revision(self.engine) or "base"


async def verify(
    url: URL, *, rows: int, script: ScriptDirectory, location: str | Path | None, progress: StepProgress | None
) -> pd.DataFrame:
    """See :func:`todo_data.migrations.verify_roundtrip`."""
    revisions = list(reversed(list(script.walk_revisions())))
    if len(script.get_heads()) > 1:
        raise MigrationError(f"The scripts in {script.dir} have several heads: the round trip needs one line of them")
    names = ("upgrade {}", "downgrade {}", "upgrade {} again")
    plan = [name.format(rev.revision) for rev in revisions for name in names]
    async with scratch_database(url, purpose="the migration round trip") as scratch:
        trip = _RoundTrip(create_engine(scratch, poolclass=NullPool), location, progress)
        try:
            await _steps(trip, revisions, rows=rows, head=script.get_current_head(), check_model=location is None)
        finally:
            await trip.engine.dispose()
    done = {step["step"] for step in trip.steps}
    for name in plan:
        if name not in done:
            trip.record(name, None, False, "not run: a previous step failed")
    return pd.DataFrame(trip.steps, columns=list(ROUNDTRIP_COLUMNS))


async def _steps(trip: _RoundTrip, revisions: list[Any], *, rows: int, head: str | None, check_model: bool) -> None:
    seeded = False
    for rev in revisions:
        name, parent = rev.revision, rev.down_revision or "base"
        if not isinstance(parent, str):
            raise MigrationError(f"Revision {name} merges several revisions: the round trip needs one line of them")
        before = await trip.state()

        if await trip.move(f"upgrade {name}", name, down=False) is None:
            return
        after = await trip.state()
        problems = await _model_problems(trip, name, head) if check_model and name == head else []
        detail = "; ".join(problems) or ("schema matches the model" if check_model and name == head else "applied")
        trip.record(f"upgrade {name}", name, not problems, _with_rows(detail, after))
        if problems:
            return

        if await trip.move(f"downgrade {name}", parent, down=True) is None:
            return
        if not _compare(trip, f"downgrade {name}", parent, before, await trip.state(), "before the upgrade"):
            return

        if await trip.move(f"upgrade {name} again", name, down=False) is None:
            return
        if not _compare(trip, f"upgrade {name} again", name, after, await trip.state(), "after the first upgrade"):
            return

        if not seeded and rows and await _has_tasks(trip.engine):
            if trip.progress is not None:
                trip.progress("seed")
            await sample.seed(trip.engine, tasks=rows)
            seeded = True
            trip.record("seed", name, True, f"{rows:,} sample rows in {TABLE_NAME}: every later step carries them")


def _compare(trip: _RoundTrip, step: str, revision: str, expected: _State, found: _State, when: str) -> bool:
    problems = _snapshot.schema_differences(expected.schema, found.schema)
    problems += _snapshot.data_differences(expected.data, found.data)
    if problems:
        trip.record(step, revision, False, f"differs from {when}: {_snapshot.summary(problems)}")
        return False
    trip.record(step, revision, True, _with_rows(f"schema identical to {when}", found, same=True))
    return True


def _with_rows(detail: str, state: _State, *, same: bool = False) -> str:
    count = _snapshot.row_count(state.data)
    if not count:
        return detail
    return f"{detail}; {count:,} rows{' unchanged (same checksum)' if same else ''}"


async def _model_problems(trip: _RoundTrip, revision: str, head: str | None) -> list[str]:
    async with connect(trip.engine) as conn:
        differences = await conn.run_sync(drift_rows)
    problems = [str(row["detail"]) for row in differences]
    if revision != head:  # pragma: no cover - only asked at the head
        problems.insert(0, f"stopped at {revision}, head is {head}")
    return problems


async def _has_tasks(engine: AsyncEngine) -> bool:
    async with connect(engine) as conn:
        return bool(await conn.run_sync(lambda sync: inspect(sync).has_table(TABLE_NAME)))


async def _revision(engine: AsyncEngine) -> str | None:
    async with connect(engine) as conn:
        return await conn.run_sync(revision_of)
