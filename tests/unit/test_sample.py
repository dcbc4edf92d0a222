"""todo_data.sample.seed on SQLite: deterministic, realistic, validated, additive."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pandas as pd
import pytest
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncEngine

from todo_data import create_engine, migrations, queries, sample
from todo_data.errors import InvalidArgumentError, SchemaNotReadyError
from todo_data.models import TaskRecord, utcnow
from todo_data.rules import MAX_DESCRIPTION_LENGTH, MAX_TITLE_LENGTH

CONTENT = ["user_id", "title", "description", "status"]

SEED_IN_A_SUBPROCESS = """
import asyncio, json, sys
from todo_data import create_engine, migrations, queries, sample

async def main(url):
    engine = create_engine(url)
    await migrations.upgrade(engine)
    await sample.seed(engine, tasks=500, users=10, seed=11)
    frame = await queries.tasks_frame(engine)
    await engine.dispose()
    rows = frame[["user_id", "title", "description", "status"]].astype(object)
    print(json.dumps(rows.where(rows.notna(), None).values.tolist()))

asyncio.run(main(sys.argv[1]))
"""


def content(frame: pd.DataFrame) -> list[list[object]]:
    rows = frame[CONTENT].astype(object)
    return rows.where(rows.notna(), None).values.tolist()  # type: ignore[no-any-return]


async def seeded(path: Path, **options: int) -> pd.DataFrame:
    engine = create_engine(f"sqlite:///{path}")
    try:
        await migrations.upgrade(engine)
        await sample.seed(engine, **options)
        return await queries.tasks_frame(engine)
    finally:
        await engine.dispose()


async def test_seed_adds_rows_and_never_deletes(sqlite_engine: AsyncEngine) -> None:
    assert await sample.seed(sqlite_engine, tasks=300) == 300
    assert await sample.seed(sqlite_engine, tasks=200, seed=1) == 200
    assert len(await queries.tasks_frame(sqlite_engine)) == 500
    assert await sample.seed(sqlite_engine, tasks=0) == 0


async def test_same_seed_same_content_different_seed_differs(tmp_path: Path) -> None:
    first = await seeded(tmp_path / "a.db", tasks=400, seed=3)
    again = await seeded(tmp_path / "b.db", tasks=400, seed=3)
    other = await seeded(tmp_path / "c.db", tasks=400, seed=4)
    assert content(first) == content(again)
    assert content(first) != content(other)
    assert set(first["id"]).isdisjoint(again["id"])  # ids are new each time, so seeding twice adds
    # Fewer tasks with the same seed: a subset of the same content.
    prefix = await seeded(tmp_path / "d.db", tasks=100, seed=3)
    assert set(map(tuple, content(prefix))) <= set(map(tuple, content(first)))


async def test_same_seed_same_content_in_another_process(tmp_path: Path) -> None:
    here = await seeded(tmp_path / "here.db", tasks=500, users=10, seed=11)
    result = subprocess.run(
        [sys.executable, "-c", SEED_IN_A_SUBPROCESS, f"sqlite:///{tmp_path / 'there.db'}"],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONHASHSEED": "12345"},
    )
    there = json.loads(result.stdout)
    assert sorted(map(json.dumps, there)) == sorted(map(json.dumps, content(here)))


async def test_seeded_rows_are_realistic_and_valid(tmp_path: Path) -> None:
    frame = await seeded(tmp_path / "real.db", tasks=5_000, users=50)
    for row in frame.sample(500, random_state=0).itertuples():
        TaskRecord.model_validate(
            {
                "id": row.id,
                "user_id": row.user_id,
                "title": row.title,
                "description": None if pd.isna(row.description) else row.description,
                "status": row.status,
                "created_at": row.created_at,
                "updated_at": row.updated_at,
            }
        )
    per_user = frame["user_id"].value_counts()
    assert per_user.max() > 5 * per_user.median()  # skewed
    assert 0.1 < frame["description"].isna().mean() < 0.3
    assert frame["title"].str.len().max() <= MAX_TITLE_LENGTH
    assert frame["description"].str.len().max() <= MAX_DESCRIPTION_LENGTH
    assert frame["description"].str.len().nunique() > 50 and frame["title"].str.len().nunique() > 20
    assert frame["title"].map(lambda title: not title.isascii()).mean() > 0.05
    assert (frame["updated_at"] >= frame["created_at"]).all()
    span = frame["created_at"].max() - frame["created_at"].min()
    assert span > pd.Timedelta(days=120)
    shares = frame["status"].value_counts(normalize=True)
    assert all(0.05 < shares[status] < 0.8 for status in ("pending", "in_progress", "completed"))
    # Older tasks are more often completed.
    old = frame["created_at"] < frame["created_at"].quantile(0.5)
    assert (frame.loc[old, "status"] == "completed").mean() > (frame.loc[~old, "status"] == "completed").mean() + 0.2


async def test_progress_is_reported_per_batch(sqlite_engine: AsyncEngine) -> None:
    calls: list[tuple[int, int]] = []
    await sample.seed(sqlite_engine, tasks=12_000, progress=lambda done, total: calls.append((done, total)))
    assert calls[0] == (0, 12_000) and calls[-1] == (12_000, 12_000)
    assert [done for done, _ in calls] == sorted(done for done, _ in calls)


@pytest.mark.parametrize(
    "options",
    [{"tasks": -1}, {"tasks": "10"}, {"users": 0}, {"users": True}, {"seed": 1.5}],
)
async def test_bad_arguments_are_rejected(sqlite_engine: AsyncEngine, options: dict[str, object]) -> None:
    with pytest.raises(InvalidArgumentError):
        await sample.seed(sqlite_engine, **options)  # type: ignore[arg-type]


async def test_seed_needs_migrations_first(sqlite_url: str) -> None:
    engine = create_engine(sqlite_url)
    try:
        with pytest.raises(SchemaNotReadyError, match="run migrations first"):
            await sample.seed(engine, tasks=10)
    finally:
        await engine.dispose()


def test_content_is_what_earlier_versions_generated() -> None:
    # The digest of seed 0's first 2,000 rows as generated before validation moved from per
    # row to per distinct value: a change of content must be deliberate.
    rng = sample.random.Random(0)
    rows = sample._rows(rng, sample._users(rng, 50), 2_000, utcnow(), sample._new_ids())
    digest = hashlib.sha256()
    for row in rows:
        digest.update(json.dumps(list(row[1:5]), ensure_ascii=False).encode())
    assert digest.hexdigest() == "2cda6c49e1359372c08a8019de4dd4528b95105a3a23e2be938a2697a2ba7990"


async def test_content_does_not_depend_on_the_batch_size(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    default = await seeded(tmp_path / "default.db", tasks=1_234, seed=2)
    monkeypatch.setattr(sample, "_BATCH", {"sqlite": 7, "postgresql": 7})
    small = await seeded(tmp_path / "small.db", tasks=1_234, seed=2)
    assert content(default) == content(small)


def test_rows_are_typed_and_timestamps_ordered() -> None:
    rng = sample.random.Random(1)
    now = utcnow()
    rows = list(sample._rows(rng, sample._users(rng, 5), 3_000, now, sample._new_ids()))
    assert len({row[0] for row in rows}) == 3_000
    for new_id, *_, created_at, updated_at in rows:
        assert isinstance(new_id, uuid.UUID) and new_id.version == 4 and new_id.variant == uuid.RFC_4122
        assert created_at.utcoffset() == updated_at.utcoffset() == pd.Timedelta(0)
        assert created_at <= updated_at <= now


@pytest.mark.parametrize(
    ("vocabulary", "index", "bad", "field"),
    [
        ("_SENTENCES", 0, "a NUL \x00 in a description", "description"),
        ("_SENTENCES", 3, "x" * (MAX_DESCRIPTION_LENGTH + 1), "description"),
        ("_OBJECTS", 0, "a lone surrogate \ud800", "title"),
        ("_VERBS", 5, " ", "title"),
        ("_FIRST_NAMES", None, "ana\x00", "user_id"),
    ],
)
async def test_invalid_generated_values_are_rejected_by_the_model_rules(
    sqlite_engine: AsyncEngine,
    monkeypatch: pytest.MonkeyPatch,
    vocabulary: str,
    index: int | None,
    bad: str,
    field: str,
) -> None:
    # Validation runs once per distinct value, so a bad entry anywhere in the vocabulary
    # must still stop the seed before anything is written.
    words = list(getattr(sample, vocabulary))
    for position in range(len(words)) if index is None else [index]:
        words[position] = bad
    monkeypatch.setattr(sample, vocabulary, tuple(words))
    if vocabulary == "_VERBS":  # a blank verb only makes a blank title with an empty object and suffix
        monkeypatch.setattr(sample, "_OBJECTS", ("",) * len(sample._OBJECTS))
        monkeypatch.setattr(sample, "_SUFFIXES", ("",))
    with pytest.raises(ValidationError) as error:
        await sample.seed(sqlite_engine, tasks=2_000, users=20)
    assert error.value.errors()[0]["loc"] == (field,)
    assert (await queries.tasks_frame(sqlite_engine)).empty
