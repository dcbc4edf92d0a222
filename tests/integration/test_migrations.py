"""history, drift and verify_roundtrip on SQLite and PostgreSQL, with real damage."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.helpers import PostgresServer
from tests.integration.scratch import Scratch, scratch, scratch_url
from tests.migration_scripts import Revision, make_scripts
from todo_data import create_engine, migrations, run
from todo_data.errors import InvalidArgumentError, MigrationError
from todo_data.migrations._scratch import scratch_database
from todo_data.rules import CHECK_RULES, MAX_TITLE_LENGTH

__all__ = ["scratch", "scratch_url"]  # fixtures used by the tests below

TITLE_MAX = next(rule for rule in CHECK_RULES if rule.short_name == "title_max_length")
TITLE_NOT_EMPTY = next(rule for rule in CHECK_RULES if rule.short_name == "title_not_empty")


def test_history_lists_revisions_from_first_to_head() -> None:
    frame = migrations.history()
    assert list(frame.columns) == ["revision", "down_revision", "message", "is_head"]
    assert frame["revision"].iloc[-1] == migrations.head()
    assert frame["is_head"].tolist() == [False] * (len(frame) - 1) + [True]
    assert frame["down_revision"].isna().iloc[0]
    assert frame["message"].iloc[0].startswith("Create the tasks table")


async def test_drift_is_empty_when_the_schema_matches_the_model(engine: AsyncEngine) -> None:
    frame = await migrations.drift(engine)
    assert list(frame.columns) == ["operation", "table", "name", "detail"]
    assert frame.empty, frame.to_string()


async def test_drift_on_a_never_migrated_database_reports_the_missing_table(scratch_url: str) -> None:
    engine = create_engine(scratch_url)
    try:
        frame = await migrations.drift(engine)
    finally:
        await engine.dispose()
    found = set(map(tuple, frame[["operation", "name"]].values.tolist()))
    assert found == {("add_table", "tasks"), ("add_index", "ix_tasks_user_id"), ("add_index", "ix_tasks_status")}


async def test_drift_reports_a_dropped_check_constraint(scratch: Scratch) -> None:
    await scratch.drop_check(TITLE_NOT_EMPTY.name)
    frame = await migrations.drift(scratch.engine)
    assert frame[["operation", "table", "name"]].values.tolist() == [["add_check", "tasks", TITLE_NOT_EMPTY.name]]
    detail = frame["detail"].iloc[0]
    assert detail.startswith(f"CHECK {TITLE_NOT_EMPTY.name} (") and "in the model, not in the database" in detail
    assert "migrations.new_revision" in detail  # in Python, the function; the command names itself


async def test_drift_reports_a_check_constraint_with_another_limit(scratch: Scratch) -> None:
    await scratch.replace_check(TITLE_MAX.name, f"length(title) <= {MAX_TITLE_LENGTH * 2}")
    frame = await migrations.drift(scratch.engine)
    assert frame[["operation", "name"]].values.tolist() == [["modify_check", TITLE_MAX.name]]
    assert str(MAX_TITLE_LENGTH * 2) in frame["detail"].iloc[0]


async def test_drift_reports_what_alembic_check_sees(scratch: Scratch) -> None:
    await scratch.execute(
        "DROP INDEX ix_tasks_status",
        "CREATE INDEX ix_tasks_title ON tasks (title)",
        "CREATE TABLE notes (id INTEGER PRIMARY KEY)",
    )
    frame = await migrations.drift(scratch.engine)
    found = set(map(tuple, frame[["operation", "name"]].values.tolist()))
    assert found == {("add_index", "ix_tasks_status"), ("remove_index", "ix_tasks_title"), ("remove_table", "notes")}


async def test_drift_reports_column_changes_on_postgresql(postgres_server: PostgresServer) -> None:
    # SQLite has no ALTER COLUMN: this one runs on PostgreSQL only.
    url = postgres_server.scratch_url()
    scratch = Scratch("postgresql", url, create_engine(url))
    await migrations.upgrade(scratch.engine)
    await scratch.execute(
        "ALTER TABLE tasks ALTER COLUMN updated_at TYPE timestamp without time zone",
        "ALTER TABLE tasks ALTER COLUMN description SET NOT NULL",
        "ALTER TABLE tasks ADD COLUMN priority integer",
    )
    frame = await migrations.drift(scratch.engine)
    await scratch.engine.dispose()
    found = {(row.operation, row.name) for row in frame.itertuples()}
    assert found == {
        ("modify_type", "updated_at"),
        ("modify_nullable", "description"),
        ("remove_column", "priority"),
    }
    added = frame.set_index("name").loc["priority", "detail"]
    # In the engineer's terms: they added the column, so it is in the database and not the model.
    assert added == (
        "column priority (INTEGER): in the database, not in the model: add it to models.py or write a revision "
        "that drops it"
    )


def test_drift_from_sync_code_through_run(scratch_url: str) -> None:
    engine = create_engine(scratch_url)
    try:
        run(migrations.upgrade(engine))
        assert run(migrations.drift(engine)).empty
    finally:
        run(engine.dispose())


ROUNDTRIP_STEPS = [
    "upgrade 0001",
    "downgrade 0001",
    "upgrade 0001 again",
    "seed",
    "upgrade 0002",
    "downgrade 0002",
    "upgrade 0002 again",
]


async def test_verify_roundtrip_passes_and_never_touches_the_given_database(scratch: Scratch) -> None:
    task_id = "0" * 32  # a UUID both backends take as text
    insert = f"INSERT INTO tasks (id, user_id, title, status) VALUES ('{task_id}', 'u1', 'kept', 'pending')"
    await scratch.execute(insert)
    steps: list[str] = []
    frame = await migrations.verify_roundtrip(scratch.url, rows=300, progress=steps.append)
    assert list(frame.columns) == ["step", "revision", "ok", "detail"]
    assert frame["step"].tolist() == ROUNDTRIP_STEPS == steps
    assert frame["ok"].all(), frame.to_string()
    assert frame["revision"].tolist() == ["0001", "base", "0001", "0001", "0002", "0001", "0002"]
    details = frame.set_index("step")["detail"]
    assert details["seed"].startswith("300 sample rows")
    assert details["upgrade 0002"].startswith("schema matches the model")
    assert details["downgrade 0002"] == "schema identical to before the upgrade; 300 rows unchanged (same checksum)"
    assert details["upgrade 0002 again"].endswith("300 rows unchanged (same checksum)")
    async with scratch.engine.connect() as conn:
        assert (await conn.execute(text("SELECT title FROM tasks"))).scalars().all() == ["kept"]
    assert await migrations.current(scratch.engine) == migrations.head()


LOSSY = Revision("0002", 'op.execute("UPDATE tasks SET description = NULL")')
FORGETFUL = Revision(
    "0002",
    """
    if op.get_context().dialect.name == "postgresql":
        op.execute("CREATE FUNCTION noop() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$")
        op.execute("CREATE TRIGGER trg_noop BEFORE UPDATE ON tasks FOR EACH ROW EXECUTE FUNCTION noop()")
    else:
        op.execute("CREATE TRIGGER trg_noop AFTER UPDATE ON tasks BEGIN SELECT 1; END")
    """,
    downgrade="""
    if op.get_context().dialect.name == "postgresql":
        op.execute("DROP TRIGGER trg_noop ON tasks")
    """,
)


async def test_a_lossy_migration_fails_the_round_trip_naming_the_lost_column(scratch_url: str, tmp_path: Path) -> None:
    scripts = make_scripts(tmp_path / "scripts", LOSSY)
    frame = await migrations.verify_roundtrip(scratch_url, rows=1_000, script_location=scripts)
    by_step = frame.set_index("step")
    assert by_step.loc[["upgrade 0001", "downgrade 0001", "upgrade 0001 again", "seed", "upgrade 0002"], "ok"].all()
    assert not by_step.loc["downgrade 0002", "ok"]
    detail = by_step.loc["downgrade 0002", "detail"]
    assert detail.startswith("differs from before the upgrade: tasks.description changed in ")
    assert detail.endswith(" of 1,000 rows")
    assert by_step.loc["upgrade 0002 again", "detail"] == "not run: a previous step failed"


async def test_a_downgrade_that_leaves_a_trigger_or_function_behind_fails(scratch_url: str, tmp_path: Path) -> None:
    scripts = make_scripts(tmp_path / "scripts", FORGETFUL)
    frame = await migrations.verify_roundtrip(scratch_url, rows=10, script_location=scripts)
    detail = frame.set_index("step").loc["downgrade 0002", "detail"]
    expected = "function noop() left behind" if scratch_url.startswith("postgresql") else "triggers: gained trg_noop"
    assert expected in detail, frame.to_string()
    assert frame["ok"].tolist() == [True] * 5 + [False, False]


async def test_verify_roundtrip_without_rows_seeds_nothing(sqlite_url: str) -> None:
    frame = await migrations.verify_roundtrip(sqlite_url, rows=0)
    assert "seed" not in frame["step"].tolist()
    assert frame["ok"].all()


@pytest.mark.parametrize("rows", [-1, 1.5, True])
async def test_verify_roundtrip_refuses_a_nonsense_row_count(sqlite_url: str, rows: object) -> None:
    with pytest.raises(InvalidArgumentError, match="rows"):
        await migrations.verify_roundtrip(sqlite_url, rows=rows)  # type: ignore[arg-type]


async def test_verify_roundtrip_refuses_a_directory_that_is_not_a_script_directory(
    sqlite_url: str, tmp_path: Path
) -> None:
    with pytest.raises(MigrationError, match="is not an Alembic script directory"):
        await migrations.verify_roundtrip(sqlite_url, script_location=tmp_path)


async def test_verify_roundtrip_leaves_no_scratch_database_behind(postgres_server: PostgresServer) -> None:
    if postgres_server.cluster is None:
        pytest.skip("listing databases needs the throwaway cluster")
    await migrations.verify_roundtrip(postgres_server.url)
    leftovers = "SELECT datname FROM pg_database WHERE datname LIKE 'todo_data_roundtrip%'"
    assert postgres_server.cluster.psql(leftovers) == ""


async def test_a_scratch_database_is_dropped_while_another_roles_session_is_leaving(
    postgres_server: PostgresServer,
) -> None:
    # A session the URL's role may not signal (on Neon or CI, an autovacuum worker) makes
    # DROP DATABASE ... WITH (FORCE) refuse at once; the drop then waits for it to leave.
    cluster = postgres_server.cluster
    if cluster is None:
        pytest.skip("creating a role needs the throwaway cluster")
    password = cluster.password.replace("'", "''")
    cluster.psql(f"CREATE ROLE bystander LOGIN PASSWORD '{password}'")
    try:
        async with scratch_database(postgres_server.url, purpose="the test") as scratch:
            name = make_url(scratch).database
            assert name is not None
            bystander = create_engine(cluster.url(name, user="bystander"))
            async with bystander.connect() as conn:
                await conn.execute(text("SELECT 1"))  # back in the pool, the session stays

            async def leave() -> None:
                await asyncio.sleep(1.0)
                await bystander.dispose()

            leaving = asyncio.create_task(leave())
        await leaving
        assert cluster.psql(f"SELECT count(*) FROM pg_database WHERE datname = '{name}'") == "0"
    finally:
        cluster.psql("DROP ROLE IF EXISTS bystander")


async def test_verify_roundtrip_without_createdb_is_a_clear_migration_error(postgres_server: PostgresServer) -> None:
    cluster = postgres_server.cluster
    if cluster is None:
        pytest.skip("creating a role needs the throwaway cluster")
    password = cluster.password.replace("'", "''")
    cluster.psql(f"CREATE ROLE no_createdb LOGIN NOCREATEDB PASSWORD '{password}'")
    cluster.psql("CREATE DATABASE no_createdb_db OWNER no_createdb")
    url = cluster.url("no_createdb_db", user="no_createdb")
    with pytest.raises(MigrationError, match="CREATEDB") as exc:
        await migrations.verify_roundtrip(url)
    assert "'no_createdb'" in str(exc.value)
    assert "permission denied" in str(exc.value)
    assert cluster.password not in str(exc.value)


async def test_a_failing_migration_names_the_revisions_and_the_database_cause(scratch_url: str) -> None:
    engine = create_engine(scratch_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE tasks (id INTEGER PRIMARY KEY)"))
        with pytest.raises(MigrationError, match=r"from base to 'head' failed: .*already exists"):
            await migrations.upgrade(engine)
    finally:
        await engine.dispose()
