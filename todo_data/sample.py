"""Deterministic, realistic demo data for the tasks table.

:func:`seed` adds tasks (it never deletes): a few users own most of them, older tasks
are more often completed, titles and descriptions vary in length and language (with
accents, CJK and emoji), about a fifth have no description, and ``created_at`` spreads
over the last six months with ``updated_at`` between it and now. The same ``seed`` gives
the same user_id, title, description and status, in the same order, on every backend
and in every process (timestamps are relative to now; ids are random); ``seed(tasks=n)``
is a prefix of ``seed(tasks=m)`` for ``n < m``.

>>> await seed(engine, tasks=10_000)  # doctest: +SKIP
10000
"""

from __future__ import annotations

import math
import random
import uuid
from bisect import bisect
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timedelta
from itertools import accumulate
from typing import Any, Final

from sqlalchemy import Table, insert

from todo_data._frames import require_tasks_table
from todo_data.database import Source, begin
from todo_data.errors import InvalidArgumentError
from todo_data.models import Task, TaskRecord, TaskStatus, utcnow
from todo_data.rules import MAX_DESCRIPTION_LENGTH, MAX_TITLE_LENGTH, TABLE_NAME

Progress = Callable[[int, int], None]
"""``progress(done, total)``: called as rows are written (plug in tqdm or Rich)."""

_COLUMNS: Final = ("id", "user_id", "title", "description", "status", "created_at", "updated_at")
# Rows per COPY on PostgreSQL and per executemany on SQLite. Generation is row by row,
# so the batch size never changes the content.
_BATCH: Final = {"postgresql": 50_000, "sqlite": 5_000}
_DAYS: Final = 182

_FIRST_NAMES: Final = (
    "amelia", "björn", "chloé", "dmitri", "eun-ji", "fatima", "giulia", "hiroshi", "inès", "jamal",
    "kateřina", "lars", "maría", "nguyen", "olusegun", "priya", "quentin", "rūta", "søren", "tomás",
)  # fmt: skip
_VERBS: Final = (
    "Write", "Review", "Fix", "Plan", "Call", "Email", "Book", "Update", "Prepare", "Clean up",
    "Organise", "Renew", "Pay", "Test", "Draft", "Refactor", "Buy", "Schedule", "Translate", "Archive",
)  # fmt: skip
_OBJECTS: Final = (
    "the quarterly report", "flights to Lisbon", "pull request", "the dentist", "groceries",
    "the café order ☕", "Übersicht der Ausgaben", "résumé", "dependencies", "the onboarding guide",
    "会議の資料", "the garden shed", "tax return", "the migration script", "birthday gifts 🎁",
    "la présentation client", "backups", "the Neon branch", "заявка на отпуск", "team retro notes",
)  # fmt: skip
_SUFFIXES: Final = (
    "", "", "", " before Friday", " for the Q3 review", " (again)", " with Ana", " — urgent",
    " and send a summary to the whole team so everyone knows what changed and why", " 🚀",
)  # fmt: skip
_SENTENCES: Final = (
    "Check the numbers against last month's dashboard.",
    "Ask for feedback before sending.",
    "Blocked until the vendor replies.",
    "Notes from the call are in the shared folder.",
    "Remember the receipts 🧾.",
    "Der Termin wurde verschoben.",
    "N'oubliez pas la pièce jointe.",
    "締め切りは金曜日です。",
    "Low priority, but it keeps coming back.",
    "Steps: open the app, reproduce, attach logs, write the fix, add a test.",
)


def _pick(rng: random.Random, choices: Sequence[str]) -> str:
    # One draw per pick: faster than rng.choice, and as deterministic.
    return choices[int(rng.random() * len(choices))]


def _users(rng: random.Random, count: int) -> list[str]:
    return [f"{_pick(rng, _FIRST_NAMES)}.{index:03d}" for index in range(count)]


def _status(rng: random.Random, age_days: float) -> TaskStatus:
    # Older tasks are more likely done; recent ones are mostly pending or in progress.
    completed = 0.05 + 0.85 * (1 - math.exp(-age_days / 40))
    in_progress = 0.05 + 0.3 * math.exp(-age_days / 20)
    draw = rng.random()
    if draw < completed:
        return TaskStatus.COMPLETED
    if draw < completed + in_progress:
        return TaskStatus.IN_PROGRESS
    return TaskStatus.PENDING


def _title(rng: random.Random) -> str:
    title = f"{_pick(rng, _VERBS)} {_pick(rng, _OBJECTS)}{_pick(rng, _SUFFIXES)}"
    if rng.random() < 0.1:
        title += f" #{int(rng.random() * 5000) + 1}"
    return title[:MAX_TITLE_LENGTH].strip()


def _description(rng: random.Random) -> str | None:
    if rng.random() < 0.2:
        return None
    count = MAX_DESCRIPTION_LENGTH if rng.random() < 0.02 else int(rng.random() * 5) + 1
    text = _pick(rng, _SENTENCES)
    for _ in range(count - 1):
        sentence = _pick(rng, _SENTENCES)
        if len(text) + len(sentence) + 1 > MAX_DESCRIPTION_LENGTH:
            break
        text = f"{text} {sentence}"
    return text


# The model's own validator (TaskRecord's pydantic-core schema: every field rule), called
# directly: SQLModel's model_validate wrapper costs more than the validation itself.
_validate = TaskRecord.__pydantic_validator__.validate_python


def _rows(rng: random.Random, users: list[str], count: int, now: datetime) -> Iterator[tuple[Any, ...]]:
    """Validated rows in _COLUMNS order; every random draw happens here, in a fixed order per row."""
    # Zipf-like skew: the first users own most tasks.
    cumulative = list(accumulate(1 / (rank + 1) ** 1.1 for rank in range(len(users))))
    total = cumulative[-1]
    last = len(users) - 1
    for _ in range(count):
        user_id = users[min(bisect(cumulative, rng.random() * total), last)]
        # More recent tasks are more frequent; ages spread over about six months.
        age_days = _DAYS * rng.random() ** 1.6
        status = _status(rng, age_days)
        title = _title(rng)
        description = _description(rng)
        updated_after = rng.random()
        created_at = now - timedelta(days=age_days)
        record = _validate(
            {
                "id": uuid.uuid4(),
                "user_id": user_id,
                "title": title,
                "description": description,
                "status": status,
                "created_at": created_at,
                "updated_at": created_at + (now - created_at) * updated_after,
            }
        )
        yield (
            record.id,
            record.user_id,
            record.title,
            record.description,
            record.status.value,
            record.created_at,
            record.updated_at,
        )


async def seed(
    source: Source,
    *,
    tasks: int = 10_000,
    users: int = 50,
    seed: int = 0,
    progress: Progress | None = None,
) -> int:
    """Add ``tasks`` generated tasks for ``users`` users; returns how many were added.

    Deterministic for a given ``seed`` (see the module docstring). Every row is validated
    by the model's rules before it is written. PostgreSQL receives the rows with binary
    ``COPY`` (a million in seconds), SQLite with batched inserts; ``progress(done, total)``
    is called after each batch. With an engine the rows are committed; with a connection
    or session they join the caller's transaction.

    >>> await seed(engine, tasks=100_000, progress=lambda done, total: print(f"{done}/{total}"))  # doctest: +SKIP
    """
    for name, value, least in (("tasks", tasks, 0), ("users", users, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise InvalidArgumentError(f"{name} must be an integer of at least {least}, not {value!r}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise InvalidArgumentError(f"seed must be an integer, not {seed!r}")
    rng = random.Random(seed)
    rows = _rows(rng, _users(rng, users), tasks, utcnow())
    done = 0
    async with begin(source) as conn:
        backend = await require_tasks_table(conn, source)
        batch_size = _BATCH[backend]
        if progress is not None:
            progress(0, tasks)
        table: Table = Task.__table__  # type: ignore[attr-defined]
        # The transaction is begun by require_tasks_table's query, so the raw driver's
        # COPY below runs inside it.
        driver = (await conn.get_raw_connection()).driver_connection if backend == "postgresql" else None
        while done < tasks:
            batch = [next(rows) for _ in range(min(batch_size, tasks - done))]
            if driver is not None:
                await driver.copy_records_to_table(TABLE_NAME, columns=_COLUMNS, records=batch)
            else:
                await conn.execute(insert(table), [dict(zip(_COLUMNS, row, strict=True)) for row in batch])
            done += len(batch)
            if progress is not None:
                progress(done, tasks)
    return done
