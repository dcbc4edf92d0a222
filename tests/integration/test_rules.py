"""The rule table against SQLite and PostgreSQL.

- SQL judges text exactly as the Python checks do (one definition of blank, one limit).
- Whatever ``Task(...)`` accepts, both databases store unchanged and ``violations`` does
  not report; what it refuses, the error names by field and rule.
- Every probe value of every rule, stored where no constraint stops it, is reported.
- Values other clients write (±infinity, NULLs, other ISO 8601 forms, unreadable text)
  are reported, and ``probe`` keeps working beside them.
- A rule added to the table is probed and looked for with no other edit.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from sqlalchemy import Column, MetaData, Table, Text, delete, insert, literal, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.integration.scratch import Scratch, rewrite_sqlite_table, scratch, scratch_url
from todo_data import Task, TaskStatus, checks, rules
from todo_data.database import sessionmaker
from todo_data.rules import (
    EXISTING_VALUE,
    MAX_DESCRIPTION_LENGTH,
    MAX_TITLE_LENGTH,
    MAX_USER_ID_LENGTH,
    RULES,
    STRIPPED,
    TABLE_NAME,
    WHITESPACE,
    Check,
    Rule,
    rule_of,
    rules_of,
    strip_sql,
)

__all__ = ["scratch", "scratch_url"]  # fixtures used by the tests below

table = Task.__table__  # type: ignore[attr-defined]
COLUMNS = [column.name for column in table.columns]
PROPERTY = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def message(column: str, kind: str) -> str:
    return rule_of(column, kind).message


def reported(found: pd.DataFrame, *columns: str) -> list[tuple[Any, ...]]:
    """The frame's rows as tuples, a missing id (a NULL stored) as None."""
    return [
        tuple(None if name == "id" and pd.isna(value) else value for name, value in zip(columns, row, strict=True))
        for row in found[list(columns)].itertuples(index=False)
    ]


# ------------------------------------------------------------- SQL judges like Python

TEXT_COLUMNS = ("user_id", "title", "description")
# What a driver can bind on both backends: no NUL (PostgreSQL), no lone surrogate (UTF-8).
bindable = st.characters(codec="utf-8", exclude_characters="\x00")
spaces = st.text(st.sampled_from(WHITESPACE), max_size=3)


def around(core: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """``core`` with whitespace of every kind on either side."""
    return st.tuples(spaces, core, spaces).map("".join)


def near(limit: int, alphabet: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.integers(limit - 2, limit + 1).flatmap(lambda n: st.text(alphabet, min_size=n, max_size=n))


bindable_texts = st.one_of(
    around(st.text(bindable, max_size=6)),
    spaces,
    *(around(near(limit, bindable)) for limit in (MAX_TITLE_LENGTH, MAX_USER_ID_LENGTH)),
)


@PROPERTY
@given(value=bindable_texts)
async def test_sql_predicates_judge_text_exactly_as_the_python_checks(
    sqlite_engine: AsyncEngine, pg_engine: AsyncEngine, value: str
) -> None:
    for engine in (sqlite_engine, pg_engine):
        dialect = engine.dialect.name
        stored = select(*(literal(value, Text).label(name) for name in TEXT_COLUMNS)).subquery(TABLE_NAME)
        judged: list[tuple[Rule, Any]] = []
        for rule in RULES:
            if rule.column not in TEXT_COLUMNS or rule.accepts is None or rule.kind == "required":
                continue
            held = strip_sql(stored.c[rule.column], dialect) if rule.column in STRIPPED else stored.c[rule.column]
            condition = rule.violated(held, dialect)
            if condition is not None:
                judged.append((rule, condition))
        async with engine.connect() as conn:
            row = (await conn.execute(select(*(condition for _, condition in judged)))).one()
        for (rule, _), broken in zip(judged, row, strict=True):
            python_value = value.strip() if rule.column in STRIPPED else value
            assert rule.accepts is not None
            assert bool(broken) == (not rule.accepts(python_value)), (dialect, rule.column, rule.kind)


# -------------------------------------------- what Task accepts, both store; else named

any_char = st.characters(codec=None, exclude_categories=())  # every code point: NUL, controls, surrogates
any_text = st.one_of(
    around(st.text(any_char, max_size=12)),
    spaces,
    around(st.sampled_from(["\x00", "a\x00", "\ud800", "ok\udfff", "\x1e", "\x85x"])),
)
titles = st.one_of(any_text, around(near(MAX_TITLE_LENGTH, any_char)))
user_ids = st.one_of(any_text, near(MAX_USER_ID_LENGTH, any_char))
descriptions = st.one_of(st.none(), any_text, near(MAX_DESCRIPTION_LENGTH, any_char))
statuses = st.sampled_from([*TaskStatus, "pending", "completed", "archived", "PENDING", " pending"])
offsets = st.integers(-23 * 60 - 59, 23 * 60 + 59).map(lambda minutes: timezone(timedelta(minutes=minutes)))
instants = st.one_of(
    st.datetimes(datetime(1, 1, 2), datetime(9999, 12, 30), timezones=st.one_of(st.just(UTC), offsets)),
    st.datetimes(timezones=offsets),  # near year 1 or 9999, an offset can leave the range
    st.sampled_from([datetime.max, datetime.min, datetime.max - timedelta(microseconds=1)]).map(
        lambda naive: naive.replace(tzinfo=UTC)
    ),
    st.datetimes(),  # refused: not timezone-aware
)
# What each field falls back to when the drawn value is refused (valid by any rule).
VALID = {"user_id": "u", "title": "t", "description": None, "status": "pending", "created_at": datetime.now(UTC)}


def expected_refusals(values: dict[str, Any]) -> dict[str, str]:
    """The rule each field breaks, stated independently of the table (first in its order)."""
    refused: dict[str, str] = {}
    for name, limit in (("user_id", MAX_USER_ID_LENGTH), ("title", MAX_TITLE_LENGTH), ("description", None)):
        value = values[name]
        if value is None:
            continue
        held = value.strip() if name == "title" else value
        if name != "description" and not value.strip():
            refused[name] = "not_blank"
        elif len(held) > (limit or MAX_DESCRIPTION_LENGTH):
            refused[name] = "max_length"
        elif "\x00" in held:
            refused[name] = "no_nul"
        elif any(0xD800 <= ord(char) <= 0xDFFF for char in held):
            refused[name] = "valid_unicode"
    if values["status"] not in {status.value for status in TaskStatus}:
        refused["status"] = "enum"
    created = values["created_at"]
    if created.tzinfo is None:
        refused["created_at"] = "timezone_aware"
    elif not datetime.min.replace(tzinfo=UTC) < created < datetime.max.replace(tzinfo=UTC):
        refused["created_at"] = "utc_range"  # asyncpg would write the first and last as ±infinity
    return refused


async def store_and_read(engine: AsyncEngine, task: Task) -> Task:
    async with sessionmaker(engine)() as session:
        session.add(task)
        await session.commit()
    async with sessionmaker(engine)() as session:
        loaded = await session.get(Task, task.id)
    assert loaded is not None
    return loaded


@PROPERTY
@given(user_id=user_ids, title=titles, description=descriptions, status=statuses, created_at=instants)
async def test_what_task_accepts_both_databases_store_unchanged_and_violations_ignores(
    sqlite_engine: AsyncEngine,
    pg_engine: AsyncEngine,
    user_id: str,
    title: str,
    description: str | None,
    status: Any,
    created_at: datetime,
) -> None:
    drawn = {"user_id": user_id, "title": title, "description": description, "status": status}
    drawn["created_at"] = created_at
    expected = expected_refusals(drawn)
    if expected:
        with pytest.raises(ValidationError) as exc:
            Task(**drawn)
        errors = exc.value.errors()
        assert {str(error["loc"][0]): error["type"] for error in errors} == expected
        for error in errors:  # a rule of the table is named with its own message
            kinds = {rule.kind: rule.message for rule in rules_of(str(error["loc"][0]))}
            if error["type"] in kinds and error["type"] != "timezone_aware":
                assert error["msg"] == kinds[error["type"]]
    # The fields that passed, kept as drawn (the refused ones replaced): accepted, and stored.
    kept = {name: VALID[name] if name in expected else value for name, value in drawn.items()}
    event(f"{len(drawn) - len(expected)} of {len(drawn)} fields kept as drawn")
    task = Task(**kept)
    fields = ("id", "user_id", "title", "description", "status", "created_at", "updated_at")
    for engine in (sqlite_engine, pg_engine):
        copy = Task(**{name: getattr(task, name) for name in fields})
        loaded = await store_and_read(engine, copy)
        assert {name: getattr(loaded, name) for name in fields} == {name: getattr(task, name) for name in fields}
        assert loaded.created_at.tzinfo is UTC
        found = await checks.violations(engine)
        assert found.empty, found.to_string()
        async with engine.begin() as conn:
            await conn.execute(delete(table))


# ------------------------------------------------------ every rule's probes are found


async def unconstrained(scratch: Scratch) -> Table:
    """Replace the tasks table by one with the same columns and types and no constraint."""
    loose = Table(TABLE_NAME, MetaData(), *(Column(column.name, column.type) for column in table.columns))
    async with scratch.engine.begin() as conn:
        await conn.execute(text(f"DROP TABLE {TABLE_NAME}"))
        await conn.run_sync(loose.create)
    return loose


def valid_row() -> dict[str, Any]:
    task = Task(user_id="u", title="t")
    return {name: getattr(task, name) for name in COLUMNS}


async def test_every_probe_value_stored_where_nothing_stops_it_is_reported(scratch: Scratch) -> None:
    loose = await unconstrained(scratch)
    expected: list[tuple[str | None, str, str]] = []
    async with scratch.engine.begin() as conn:
        for rule in RULES:
            for value in rule.probes:
                row = valid_row()
                if value is EXISTING_VALUE:
                    await conn.execute(insert(loose).values(**row))
                    expected.append((str(row["id"]), rule.column, rule.message))
                else:
                    row[rule.column] = value
                await conn.execute(insert(loose).values(**row))
                shown = None if row["id"] is None else str(row["id"])
                expected.append((shown, rule.column, rule.message))
    found = await checks.violations(scratch.engine)
    assert sorted(reported(found, "id", "column", "rule"), key=str) == sorted(expected, key=str)


# ------------------------------------------------------ values other clients write


async def drop_not_null(scratch: Scratch, columns: list[str]) -> None:
    """Let each column hold NULL, as a hand-made schema change would."""
    if scratch.backend == "postgresql":
        # A primary key implies NOT NULL: the key goes first.
        await scratch.execute(f"ALTER TABLE {TABLE_NAME} DROP CONSTRAINT {rules.PRIMARY_KEY_NAME}")
        await scratch.execute(*(f"ALTER TABLE {TABLE_NAME} ALTER COLUMN {name} DROP NOT NULL" for name in columns))
        return
    await scratch.engine.dispose()
    path = Path(str(make_url(scratch.url).database))
    for name in columns:  # SQLite lets a non-integer primary key hold NULL once NOT NULL is gone
        rewrite_sqlite_table(path, re.compile(rf"(\n\s*{name} [^,\n]*?) NOT NULL"), r"\1")


def sql_literal(value: str | int | None) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, int):
        return str(value)
    return "'" + value.replace("'", "''") + "'"


async def write_raw(scratch: Scratch, **values: str | int | None) -> str | None:
    """Insert a row as another client would: plain SQL, values as the server reads them.

    Returns the id as ``violations`` shows it (canonical, when it is a UUID at all).
    """
    row: dict[str, str | int | None] = {
        "id": uuid.uuid4().hex,
        "user_id": "client",
        "title": "written elsewhere",
        "status": "pending",
        "created_at": "2025-01-01 10:00:00",
        "updated_at": "2025-01-01 10:00:00",
        **values,
    }
    statement = f"INSERT INTO {TABLE_NAME} ({', '.join(row)}) VALUES ({', '.join(map(sql_literal, row.values()))})"
    await scratch.execute(statement)
    try:
        return None if row["id"] is None else str(uuid.UUID(str(row["id"])))
    except ValueError:
        return str(row["id"])


async def test_nulls_where_not_null_was_dropped_are_reported_in_every_column(scratch: Scratch) -> None:
    required = [rule.column for rule in RULES if rule.kind == "required"]
    assert set(required) == set(COLUMNS) - {"description"}
    await drop_not_null(scratch, required)
    written = {name: await write_raw(scratch, **{name: None}) for name in required}

    found = await checks.violations(scratch.engine)
    assert sorted(reported(found, "id", "column", "rule", "value"), key=str) == sorted(
        ((written[name], name, message(name, "required"), "NULL") for name in required), key=str
    )
    probed = await checks.probe(scratch.engine)  # keeps working: the NOT NULL probes now succeed
    accepted = set(probed.loc[~probed["rejected"].astype(bool), "rule"])
    # PostgreSQL's key had to go with id's NOT NULL; SQLite's key stays and allows NULL.
    key = {rules.PRIMARY_KEY_NAME} if scratch.backend == "postgresql" else set()
    assert accepted == {f"{name} NOT NULL" for name in required} | key
    verdict = await checks.verify(scratch.engine)
    assert {"probe", "violations"} <= set(verdict.failures)


@pytest.mark.parametrize("scratch", ["postgresql"], indirect=True)
async def test_infinite_and_out_of_range_timestamps_on_postgresql_are_reported(scratch: Scratch) -> None:
    plus = await write_raw(scratch, created_at="infinity", updated_at="-infinity")
    far = await write_raw(scratch, created_at="10000-01-01 00:00:00+00", updated_at="4713-01-01 00:00:00+00 BC")
    last = await write_raw(scratch, created_at="9999-12-31 23:59:59.999999+00", updated_at="0001-01-01 00:00:00+00")
    edge = await write_raw(
        scratch, created_at="9999-12-31 23:59:59.999998+00", updated_at="0001-01-01 00:00:00.000001+00"
    )
    # A database with its own TimeZone (Neon allows it) changes nothing: UTC instants are compared.
    await scratch.execute(f"ALTER DATABASE \"{make_url(scratch.url).database}\" SET TimeZone = 'Asia/Kolkata'")
    await scratch.engine.dispose()

    found = await checks.violations(scratch.engine)
    assert {(row.id, row.column, row.rule) for row in found.itertuples()} == {
        (plus, "created_at", message("created_at", "instant")),
        (plus, "updated_at", message("updated_at", "instant")),
        (far, "created_at", message("created_at", "utc_range")),
        (far, "updated_at", message("updated_at", "utc_range")),
        (last, "created_at", message("created_at", "utc_range")),
        (last, "updated_at", message("updated_at", "utc_range")),
    }
    assert edge not in set(found["id"])
    assert set(found.loc[found["id"] == plus, "value"]) == {"'infinity'", "'-infinity'"}
    assert (await checks.probe(scratch.engine))["rejected"].all()
    verdict = await checks.verify(scratch.engine)
    assert verdict.failures == ["violations"]


SQLITE_TIMESTAMPS = {
    # another client's ISO 8601 forms: readable instants, not the model's UTC text
    "2025-01-01T10:00:00Z": "utc_text",
    "2025-01-01 12:00:00+02:00": "utc_text",
    "2025-01-01T10:00:00": "utc_text",
    "2025-01-01T15:30:00.123456+05:30": "utc_text",
    "2025-02-31 00:00:00": "utc_text",  # SQLite reads it as March 3rd
    "0000-01-01 00:00:00": "utc_text",  # before Python's year 1
    # not readable at all
    "yesterday": "instant",
    "infinity": "instant",
    "10000-01-01 00:00:00": "instant",
    # the forms the model and the schema write
    "2025-01-01 10:00:00": "",
    "2025-01-01 10:00:00.123456": "",
    "2025-01-01 10:00:00.5": "",
    "9999-12-31 23:59:59.999998": "",
    "0001-01-01 00:00:00.000001": "",
    # the model's form, but the instants asyncpg writes as ±infinity on PostgreSQL
    "9999-12-31 23:59:59.999999": "utc_range",
    "0001-01-01 00:00:00": "utc_range",
}


@pytest.mark.parametrize("scratch", ["sqlite"], indirect=True)
async def test_sqlite_timestamps_in_other_forms_or_unreadable_are_reported(scratch: Scratch) -> None:
    written = {stored: await write_raw(scratch, created_at=stored) for stored in SQLITE_TIMESTAMPS}
    numbers = {
        "julian day": (await write_raw(scratch, updated_at=2460000), "utc_text"),
        "epoch": (await write_raw(scratch, updated_at=1700000000), "instant"),
    }

    found = await checks.violations(scratch.engine)
    expected = {
        (written[stored], "created_at", message("created_at", kind))
        for stored, kind in SQLITE_TIMESTAMPS.items()
        if kind
    }
    expected |= {(task_id, "updated_at", message("updated_at", kind)) for task_id, kind in numbers.values()}
    assert {(row.id, row.column, row.rule) for row in found.itertuples()} == expected
    assert (await checks.probe(scratch.engine))["rejected"].all()
    assert (await checks.verify(scratch.engine)).failures == ["violations"]


@pytest.mark.parametrize("scratch", ["sqlite"], indirect=True)
async def test_sqlite_ids_not_in_sqlalchemys_form_are_reported(scratch: Scratch) -> None:
    task_id = uuid.uuid4()
    for stored in (str(task_id), task_id.hex.upper(), "not-a-uuid"):
        await write_raw(scratch, id=stored)
    found = await checks.violations(scratch.engine)
    assert sorted(found["value"]) == sorted(
        checks.display(v) for v in (str(task_id), task_id.hex.upper(), "not-a-uuid")
    )
    assert set(found["rule"]) == {message("id", "uuid_text")}


# ------------------------------------------------------ a rule added to the table


async def test_a_rule_added_to_the_table_is_probed_and_looked_for(
    scratch: Scratch, monkeypatch: pytest.MonkeyPatch
) -> None:
    not_todo = Rule(
        "title",
        "not_todo",
        "must not be just 'TODO'",
        accepts=lambda value: value != "TODO",
        violated=lambda value, _dialect: value == "TODO",
        check=Check("title_not_todo", "title", "title <> 'TODO'"),
        probes=("TODO",),
    )
    monkeypatch.setattr(rules, "RULES", (*rules.RULES, not_todo))
    todo = await write_raw(scratch, title="  TODO ")  # blank-padded: judged after stripping
    await write_raw(scratch, title="TODO later")

    found = await checks.violations(scratch.engine)
    assert found[["id", "column", "rule", "value"]].values.tolist() == [
        [todo, "title", "must not be just 'TODO'", repr("  TODO ")]
    ]
    probed = (await checks.probe(scratch.engine)).set_index("rule")
    assert probed.loc["ck_tasks_title_not_todo", ["column", "value", "rejected"]].tolist() == ["title", "'TODO'", False]

    # Once the database has the constraint, the same probe shows it refusing the write.
    if scratch.backend == "postgresql":
        await scratch.execute(
            f"ALTER TABLE {TABLE_NAME} ADD CONSTRAINT ck_tasks_title_not_todo CHECK (title <> 'TODO') NOT VALID"
        )
    else:
        last = rules.CHECK_RULES[-1]
        await scratch.engine.dispose()
        rewrite_sqlite_table(
            Path(str(make_url(scratch.url).database)),
            re.compile(re.escape(f"CONSTRAINT {last.name} CHECK ({last.sql})")),
            f"CONSTRAINT {last.name} CHECK ({last.sql}), CONSTRAINT ck_tasks_title_not_todo CHECK (title <> 'TODO')",
        )
    probed = (await checks.probe(scratch.engine)).set_index("rule")
    assert bool(probed.loc["ck_tasks_title_not_todo", "rejected"])
    assert "ck_tasks_title_not_todo" in str(probed.loc["ck_tasks_title_not_todo", "error"])
