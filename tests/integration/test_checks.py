"""constraints, probe, violations and verify on SQLite and PostgreSQL, intact and damaged."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.helpers import PostgresServer
from tests.integration.scratch import Scratch, scratch, scratch_url
from todo_data import Task, TaskStatus, checks, create_engine, migrations, run, session_scope
from todo_data.database import sessionmaker
from todo_data.errors import InvalidArgumentError, SchemaNotReadyError
from todo_data.rules import (
    CHECK_RULES,
    MAX_DESCRIPTION_LENGTH,
    MAX_TITLE_LENGTH,
    PRIMARY_KEY_NAME,
    constraint_name,
    rule_of,
)
from todo_data.triggers import TRIGGERS

__all__ = ["scratch", "scratch_url"]  # fixtures used by the tests below

# The model's own index=True columns, each with a single-column index named by the convention.
INDEXED_COLUMNS = tuple(column.name for column in Task.__table__.columns if column.index)  # type: ignore[attr-defined]
assert INDEXED_COLUMNS == ("user_id", "status")

TITLE_NOT_EMPTY = next(rule for rule in CHECK_RULES if rule.short_name == "title_not_empty")


async def count_tasks(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(text("tasks")))).scalar_one())


async def insert_raw(engine: AsyncEngine, **values: str) -> str:
    """Insert a row with raw SQL, past the Python layer; returns its id (canonical form)."""
    task_id = uuid.uuid4()
    row = {"id": task_id.hex, "user_id": "u1", "title": "ok", "status": "pending", **values}
    names = ", ".join(row)
    params = ", ".join(f":{name}" for name in row)
    async with engine.begin() as conn:
        await conn.execute(text(f"INSERT INTO tasks ({names}) VALUES ({params})"), row)
    return str(task_id)


# ------------------------------------------------------------------------------ constraints


async def test_constraints_lists_the_live_primary_key_indexes_and_checks(engine: AsyncEngine) -> None:
    frame = await checks.constraints(engine)
    assert list(frame.columns) == ["name", "kind", "columns", "definition"]
    by_name = frame.set_index("name")
    expected = {PRIMARY_KEY_NAME: "primary_key"}
    expected |= {constraint_name("ix", column=column): "index" for column in INDEXED_COLUMNS}
    expected |= {rule.name: "check" for rule in CHECK_RULES}
    expected |= {trigger.name: "trigger" for trigger in TRIGGERS}
    assert by_name["kind"].to_dict() == expected
    assert by_name.loc[PRIMARY_KEY_NAME, "columns"] == "id"
    assert "PRIMARY KEY (id)" in by_name.loc[PRIMARY_KEY_NAME, "definition"]
    for column in INDEXED_COLUMNS:
        index = constraint_name("ix", column=column)
        assert by_name.loc[index, "columns"] == column
        assert f"({column})" in by_name.loc[index, "definition"]
    for rule in CHECK_RULES:
        assert by_name.loc[rule.name, "columns"] == rule.column
        assert by_name.loc[rule.name, "definition"].startswith("CHECK (")
    assert str(MAX_TITLE_LENGTH) in by_name.loc["ck_tasks_title_max_length", "definition"]


async def test_constraints_of_a_never_migrated_database_is_schema_not_ready(scratch_url: str) -> None:
    engine = create_engine(scratch_url)
    try:
        with pytest.raises(SchemaNotReadyError, match=r"migrations\.upgrade"):
            await checks.constraints(engine)
    finally:
        await engine.dispose()


# ------------------------------------------------------------------------------------ probe


async def test_probe_finds_every_invalid_write_rejected_and_leaves_nothing(engine: AsyncEngine) -> None:
    frame = await checks.probe(engine)
    assert list(frame.columns) == ["rule", "column", "value", "rejected", "error"]
    assert frame["rejected"].all(), frame.to_string()
    assert {rule.name for rule in CHECK_RULES} | {PRIMARY_KEY_NAME} <= set(frame["rule"])
    assert {"user_id NOT NULL", "title NOT NULL", "status NOT NULL"} <= set(frame["rule"])
    for row in frame.itertuples():
        if row.rule.startswith("ck_"):
            assert row.rule in row.error  # rejected by that very constraint
    values = set(frame.loc[frame["column"] == "title", "value"])
    assert {"NULL", "''", "'   '", f"'ttt…' ({MAX_TITLE_LENGTH + 1} chars)"} == values
    assert f"'ddd…' ({MAX_DESCRIPTION_LENGTH + 1} chars)" in set(frame["value"])
    assert await count_tasks(engine) == 0


async def test_probe_inside_the_callers_transaction_keeps_it_intact(engine: AsyncEngine) -> None:
    async with engine.connect() as conn, conn.begin() as transaction:
        await conn.execute(
            text("INSERT INTO tasks (id, user_id, title, status) VALUES (:id, 'u1', 'mine', 'pending')"),
            {"id": uuid.uuid4().hex},
        )
        frame = await checks.probe(conn)
        assert frame["rejected"].all()
        assert transaction.is_active
        titles = (await conn.execute(text("SELECT title FROM tasks"))).scalars().all()
        assert titles == ["mine"]  # the caller's own write survived every rollback
        await transaction.rollback()
    assert await count_tasks(engine) == 0


async def test_probe_accepts_a_session(engine: AsyncEngine) -> None:
    async with sessionmaker(engine)() as session:
        frame = await checks.probe(session)
    assert frame["rejected"].all()


async def test_probe_on_a_read_only_engine_says_it_needs_write_access(scratch: Scratch) -> None:
    read_only = create_engine(scratch.url, read_only=True)
    try:
        with pytest.raises(InvalidArgumentError, match="read_only=True"):
            await checks.probe(read_only)
    finally:
        await read_only.dispose()


async def test_a_dropped_constraint_shows_in_probe_drift_and_verify(scratch: Scratch) -> None:
    await scratch.drop_check(TITLE_NOT_EMPTY.name)

    frame = await checks.probe(scratch.engine)
    accepted = frame.loc[~frame["rejected"]]
    assert accepted[["rule", "value"]].values.tolist() == [
        [TITLE_NOT_EMPTY.name, "''"],
        [TITLE_NOT_EMPTY.name, "'   '"],
    ]
    assert accepted["error"].isna().all()
    assert await count_tasks(scratch.engine) == 0  # the writes that succeeded were rolled back

    drift = await migrations.drift(scratch.engine)
    assert drift[["operation", "name"]].values.tolist() == [["add_check", TITLE_NOT_EMPTY.name]]

    result = await checks.verify(scratch.engine)
    assert not result
    assert result.failures == ["drift", "probe"]
    assert TITLE_NOT_EMPTY.name in str(result)


# ------------------------------------------------------------------------------- violations


async def test_violations_is_empty_for_rows_written_through_the_model(engine: AsyncEngine) -> None:
    async with session_scope(engine) as session:
        session.add(Task(user_id="u1", title="Write the report", description="d" * MAX_DESCRIPTION_LENGTH))
        session.add(Task(user_id="u2", title="x" * MAX_TITLE_LENGTH, status=TaskStatus.COMPLETED))
    frame = await checks.violations(engine)
    assert list(frame.columns) == ["id", "column", "rule", "value"]
    assert frame.empty, frame.to_string()


async def test_violations_finds_rows_that_break_todays_rules(scratch: Scratch) -> None:
    await scratch.drop_check(TITLE_NOT_EMPTY.name)
    blank = await insert_raw(scratch.engine, title="   ")
    tab_blank = await insert_raw(scratch.engine, title="\t\u3000")  # blank to Python's str.strip
    unknown = await insert_raw(scratch.engine, status="archived")
    await insert_raw(scratch.engine, title="  fine, once stripped  ")

    frame = await checks.violations(scratch.engine)
    found = {(row.id, row.column, row.rule, row.value) for row in frame.itertuples()}
    blank_rule = rule_of("title", "not_blank").message
    assert found == {
        (blank, "title", blank_rule, "'   '"),
        (tab_blank, "title", blank_rule, repr("\t\u3000")),
        (unknown, "status", rule_of("status", "known_status").message, "'archived'"),
    }
    result = await checks.verify(scratch.engine)
    assert result.failures == ["drift", "probe", "violations"]
    assert "title must not be blank: 2 row(s)" in result.frame.set_index("check").loc["violations", "detail"]


async def test_violations_finds_naive_timestamps_on_postgresql(postgres_server: PostgresServer) -> None:
    engine = create_engine(postgres_server.scratch_url())
    try:
        await migrations.upgrade(engine)
        task_id = await insert_raw(engine)
        async with engine.begin() as conn:
            await conn.execute(text("ALTER TABLE tasks ALTER COLUMN updated_at TYPE timestamp without time zone"))
        frame = await checks.violations(engine)
    finally:
        await engine.dispose()
    assert frame[["id", "column", "rule"]].values.tolist() == [[task_id, "updated_at", "must be timezone-aware"]]


async def test_violations_finds_unreadable_timestamps_and_nul_characters_on_sqlite(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path}/violations.db")
    try:
        await migrations.upgrade(engine)
        bad_time = await insert_raw(engine, created_at="yesterday")
        nul = await insert_raw(engine, description="a\x00b")
        frame = await checks.violations(engine)
    finally:
        await engine.dispose()
    assert {(row.id, row.column, row.rule) for row in frame.itertuples()} == {
        (bad_time, "created_at", rule_of("created_at", "instant").message),
        (nul, "description", rule_of("description", "no_nul").message),
    }


# ----------------------------------------------------------------------------------- verify


async def test_verify_passes_on_a_migrated_database_with_valid_rows(engine: AsyncEngine) -> None:
    async with session_scope(engine) as session:
        session.add(Task(user_id="u1", title="Fine"))
    seen: list[str] = []
    result = await checks.verify(engine, progress=seen.append)
    assert result.ok and bool(result)
    assert result.failures == []
    assert seen == ["revision", "drift", "probe", "violations"]
    assert result.frame["check"].tolist() == seen
    assert list(result.frame.columns) == ["check", "ok", "detail"]
    assert result.revision == result.head == migrations.head()
    assert str(result).startswith("OK")
    assert "<table" in result._repr_html_()


async def test_verify_of_a_never_migrated_database_fails_every_check_without_raising(scratch_url: str) -> None:
    engine = create_engine(scratch_url)
    try:
        result = await checks.verify(engine)
    finally:
        await engine.dispose()
    assert result.failures == ["revision", "drift", "probe", "violations"]
    assert "never migrated" in result.frame["detail"].iloc[0]
    assert str(result).startswith("FAILED: revision, drift, probe, violations")
    assert "FAILED" in result._repr_html_()


async def test_verify_through_run_inside_the_running_loop(pg_engine: AsyncEngine) -> None:
    # As a sync helper called from a notebook cell would: the kernel's loop is running.
    assert run(checks.verify(pg_engine)).ok
    assert (await checks.verify(pg_engine)).ok  # the engine still works on this loop
