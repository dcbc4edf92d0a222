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
import os
import random
import uuid
from bisect import bisect
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from datetime import UTC, datetime
from itertools import accumulate, islice
from typing import Any, Final

from sqlalchemy import Table, insert

from todo_data._args import CountProgress, integer
from todo_data._task_sql import TASK_COLUMNS
from todo_data.database import Source, begin, located, operation, raw_driver, require_primary
from todo_data.models import Task, TaskRecord, TaskStatus, utcnow
from todo_data.rules import MAX_DESCRIPTION_LENGTH, MAX_TITLE_LENGTH, TABLE_NAME, require_tasks_table

Progress = CountProgress
"""``progress(done, total)``: called as rows are written (plug in tqdm or Rich)."""

# Rows per COPY on PostgreSQL and per executemany on SQLite. Generation is row by row,
# so the batch size never changes the content.
_BATCH: Final = {"postgresql": 100_000, "sqlite": 5_000}
_DAYS: Final = 182
_ID_BLOCK: Final = 4096
_KEPT_SENTENCES: Final = 5  # descriptions of up to this many sentences are validated once each
# Byte translations that set a UUID's version (byte 6) to 4 and variant (byte 8) to RFC 4122.
_VERSION_4: Final = bytes((byte & 0x0F) | 0x40 for byte in range(256))
_VARIANT_RFC_4122: Final = bytes((byte & 0x3F) | 0x80 for byte in range(256))

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


_validate_field = TaskRecord.__pydantic_validator__.validate_assignment


class _Checked:
    """Values that passed the model's own field rules, each distinct value checked once.

    ``TaskRecord``'s validator is applied per field with ``validate_assignment`` (as
    ``Task.__setattr__`` does), so the rules are the model's, never a copy of them. Titles
    and descriptions are compositions of a finite vocabulary: each composition is keyed by
    the indexes it was built from, validated the first time it is drawn, and reused. Only
    the bounded part is kept (titles without a number, descriptions of up to five
    sentences: at most about 115,000 values); numbered titles and long descriptions are
    nearly all distinct, so they are validated every time and memory stays flat however
    many rows are generated.
    """

    def __init__(self) -> None:
        self._scratch = TaskRecord.model_construct()
        self.titles: dict[tuple[int, int, int, int], str] = {}
        self.descriptions: dict[tuple[int, ...], str] = {}

    def __call__(self, field: str, value: Any) -> Any:
        _validate_field(self._scratch, field, value)
        return getattr(self._scratch, field)

    def title(self, key: tuple[int, int, int, int], *, keep: bool) -> str:
        verb, obj, suffix, number = key
        title = f"{_VERBS[verb]} {_OBJECTS[obj]}{_SUFFIXES[suffix]}"
        if number:
            title += f" #{number}"
        checked: str = self("title", title[:MAX_TITLE_LENGTH].strip())
        if keep:
            self.titles[key] = checked
        return checked

    def description(self, key: tuple[int, ...], *, keep: bool) -> str:
        checked: str = self("description", " ".join(_SENTENCES[index] for index in key))
        if keep:
            self.descriptions[key] = checked
        return checked


def _new_ids(make: Callable[[bytes], uuid.UUID] = lambda data: uuid.UUID(bytes=data)) -> Iterator[uuid.UUID]:
    """Endless random version-4 UUIDs, as ``uuid.uuid4`` makes them, but one ``os.urandom`` per block."""
    while True:
        raw = bytearray(os.urandom(16 * _ID_BLOCK))
        raw[6::16] = raw[6::16].translate(_VERSION_4)
        raw[8::16] = raw[8::16].translate(_VARIANT_RFC_4122)
        data = bytes(raw)
        yield from map(make, (data[start : start + 16] for start in range(0, len(data), 16)))


def _users(rng: random.Random, count: int) -> list[str]:
    names = _FIRST_NAMES
    return [f"{names[int(rng.random() * len(names))]}.{index:03d}" for index in range(count)]


def _rows(
    rng: random.Random, users: list[str], count: int, now: datetime, ids: Iterator[uuid.UUID]
) -> Iterator[tuple[Any, ...]]:
    """Validated rows in TASK_COLUMNS order; every random draw happens here, in a fixed order per row.

    Each pick is one ``rng.random()`` (faster than ``rng.choice``, and as deterministic).
    The loop is written out flat because it runs a million times: per row it only draws,
    looks up already validated text, and does datetime arithmetic.

    Nothing row-specific escapes the model's rules: every user id, status, title and
    description written is a value that passed them (see :class:`_Checked`), ``now`` passed
    the timestamp rule, each row's timestamps are made in UTC from ``now``'s POSIX time
    (``updated_at`` between ``created_at`` and ``now``), and ids are random version-4 UUIDs.
    """
    check = _Checked()
    users = [check("user_id", user) for user in users]
    now_seconds = check("created_at", now).timestamp()
    completed, in_progress, pending = (
        check("status", status).value for status in (TaskStatus.COMPLETED, TaskStatus.IN_PROGRESS, TaskStatus.PENDING)
    )
    # Zipf-like skew: the first users own most tasks.
    cumulative = list(accumulate(1 / (rank + 1) ** 1.1 for rank in range(len(users))))
    total = cumulative[-1]
    last = len(users) - 1
    draw = rng.random
    titles, descriptions = check.titles, check.descriptions
    verbs, objects, suffixes, sentences = len(_VERBS), len(_OBJECTS), len(_SUFFIXES), len(_SENTENCES)
    sentence_lengths = [len(sentence) for sentence in _SENTENCES]
    exp, at = math.exp, datetime.fromtimestamp
    for new_id in islice(ids, count):
        user_id = users[min(bisect(cumulative, draw() * total), last)]
        # More recent tasks are more frequent; ages spread over about six months.
        age_days = _DAYS * draw() ** 1.6
        # Older tasks are more likely done; recent ones are mostly pending or in progress.
        done_share = 0.05 + 0.85 * (1 - exp(-age_days / 40))
        started_share = 0.05 + 0.3 * exp(-age_days / 20)
        status_draw = draw()
        if status_draw < done_share:
            status = completed
        elif status_draw < done_share + started_share:
            status = in_progress
        else:
            status = pending
        title_key = (int(draw() * verbs), int(draw() * objects), int(draw() * suffixes), 0)
        if draw() < 0.1:
            title = check.title((*title_key[:3], int(draw() * 5000) + 1), keep=False)
        else:
            title = titles.get(title_key) or check.title(title_key, keep=True)
        description: str | None = None
        if draw() >= 0.2:
            parts = MAX_DESCRIPTION_LENGTH if draw() < 0.02 else int(draw() * 5) + 1
            first = int(draw() * sentences)
            key = [first]
            length = sentence_lengths[first]
            for _ in range(parts - 1):
                index = int(draw() * sentences)
                length += sentence_lengths[index] + 1
                if length > MAX_DESCRIPTION_LENGTH:
                    break
                key.append(index)
            description_key = tuple(key)
            if parts > _KEPT_SENTENCES:
                description = check.description(description_key, keep=False)
            else:
                description = descriptions.get(description_key) or check.description(description_key, keep=True)
        age = age_days * 86_400
        yield (
            new_id,
            user_id,
            title,
            description,
            status,
            at(now_seconds - age, UTC),
            at(now_seconds - age * (1 - draw()), UTC),
        )


@operation("sample.seed")
async def seed(
    source: Source,
    *,
    tasks: int = 10_000,
    users: int = 50,
    seed: int = 0,
    progress: Progress | None = None,
) -> int:
    """Add ``tasks`` generated tasks for ``users`` users; returns how many were added.

    Deterministic for a given ``seed`` (see the module docstring). Every value written
    passed the model's rules (each distinct value is checked once). PostgreSQL receives the rows with binary
    ``COPY`` (a million in seconds), SQLite with batched inserts; ``progress(done, total)``
    is called after each batch. With an engine the rows are committed; with a connection
    or session they join the caller's transaction.

    >>> await seed(engine, tasks=100_000, progress=lambda done, total: print(f"{done}/{total}"))  # doctest: +SKIP
    """
    integer("tasks", tasks, least=0)
    integer("users", users, least=1)
    integer("seed", seed)
    rng = random.Random(seed)
    now = utcnow()
    done = 0
    async with begin(source) as conn:
        await require_primary(conn, source, to="be seeded")
        backend = await require_tasks_table(conn, where=located(source))
        batch_size = _BATCH[backend]
        if progress is not None:
            progress(0, tasks)
        table: Table = Task.__table__  # type: ignore[attr-defined]
        # The transaction is begun by require_tasks_table's query, so the raw driver's
        # COPY below runs inside it.
        async with raw_driver(conn) if backend == "postgresql" else nullcontext() as driver:
            # asyncpg's own UUID (a uuid.UUID subclass, what it returns for uuid columns) is
            # cheaper to build than uuid.UUID, and its COPY encoder copies it without conversion.
            if driver is not None:
                from asyncpg.pgproto.pgproto import UUID as AsyncpgUUID

                ids = _new_ids(AsyncpgUUID)
            else:
                ids = _new_ids()
            rows = _rows(rng, _users(rng, users), tasks, now, ids)
            while done < tasks:
                size = min(batch_size, tasks - done)
                batch = islice(rows, size)
                if driver is not None:
                    # A lazy iterable, not a list: asyncpg sends the rows about every 512 KiB as
                    # it encodes them, so PostgreSQL inserts one part of the batch while Python
                    # generates the next (CPU work and I/O overlap in this one event loop).
                    await driver.copy_records_to_table(TABLE_NAME, columns=TASK_COLUMNS, records=batch)
                else:
                    await conn.execute(insert(table), [dict(zip(TASK_COLUMNS, row, strict=True)) for row in batch])
                done += size
                if progress is not None:
                    progress(done, tasks)
    return done
