"""migrations.lint and lint_sql with a live database: table sizes, the lock, an estimate timed on a scratch copy."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.helpers import PostgresServer, ReplicaServer, live_database
from tests.migration_scripts import Revision, make_scripts
from todo_data import DatabaseConnectionError, create_engine, migrations, run, sample

TIMEOUTS = "SET lock_timeout = '2s';\nSET statement_timeout = '60s';\n"
SCRATCH_ROWS = 500


def scalar(url: str, sql: str) -> object:
    async def query() -> object:
        engine = create_engine(url)
        try:
            async with engine.connect() as conn:
                return (await conn.execute(text(sql))).scalar()
        finally:
            await engine.dispose()

    return run(query())


def execute(url: str, *statements: str) -> None:
    async def write() -> None:
        engine = create_engine(url)
        try:
            async with engine.begin() as conn:
                for statement in statements:
                    await conn.execute(text(statement))
        finally:
            await engine.dispose()

    run(write())


def by_rule(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.set_index("rule")


def test_each_finding_on_a_live_table_carries_its_rows_size_lock_and_estimate(
    postgres_server: PostgresServer,
) -> None:
    url = live_database(postgres_server, tasks=2_000)
    sql = TIMEOUTS + (
        "CREATE INDEX ix_tasks_title ON tasks (title);\n"
        "ALTER TABLE tasks ALTER COLUMN title TYPE varchar(300);\n"
        "ALTER TABLE tasks RENAME COLUMN description TO notes;\n"
    )
    frame = migrations.lint_sql(sql, database_url=url, scratch_rows=SCRATCH_ROWS)
    assert list(frame.columns) == [*migrations.LINT_COLUMNS, *migrations.LIVE_COLUMNS]
    found = by_rule(frame)
    size = scalar(url, "SELECT pg_total_relation_size('tasks')")

    index = found.loc["create_index_without_concurrently"]
    assert (index["rows"], index["bytes"], index["lock"]) == (2_000, size, "ShareLock")
    assert not index["rewritten"] and index["estimate"] > pd.Timedelta(0)
    assert index["impact"].startswith("SHARE on tasks, 2,000 rows / ")
    assert ": roughly " in index["impact"] and "whatever its size" not in index["impact"]

    altered = found.loc["alter_column_type"]
    assert altered["lock"] == "AccessExclusiveLock" and altered["rewritten"]
    assert altered["impact"].startswith("ACCESS EXCLUSIVE on tasks while it is rewritten, 2,000 rows / ")

    renamed = found.loc["rename"]
    assert renamed["lock"] == "AccessExclusiveLock" and not renamed["rewritten"]
    assert "whatever its size" in renamed["impact"]

    # The live database was only read: no index, the old type, the old name, the same revision.
    assert scalar(url, "SELECT to_regclass('ix_tasks_title') IS NULL") is True
    assert scalar(url, "SELECT data_type FROM information_schema.columns WHERE column_name = 'notes'") is None
    assert scalar(url, "SELECT count(*) FROM tasks") == 2_000


def test_revisions_are_replayed_from_the_first_on_an_empty_scratch_copy(
    postgres_server: PostgresServer, tmp_path: Path
) -> None:
    url = live_database(postgres_server, tasks=300)
    scripts = make_scripts(
        tmp_path / "scripts", Revision("0002", 'op.alter_column("tasks", "title", type_=sa.String(300))')
    )
    frame = migrations.lint(script_location=scripts, database_url=url, scratch_rows=SCRATCH_ROWS)
    row = by_rule(frame).loc["alter_column_type"]
    assert row["revision"] == "0002" and row["rows"] == 300
    assert row["lock"] == "AccessExclusiveLock" and row["rewritten"]
    assert row["impact"].startswith("ACCESS EXCLUSIVE on tasks while it is rewritten, 300 rows / ")
    assert scalar(url, "SELECT version_num FROM alembic_version") == migrations.head()


def test_a_table_missing_from_the_live_database_gets_no_numbers(postgres_server: PostgresServer) -> None:
    url = live_database(postgres_server, tasks=0)
    frame = migrations.lint_sql(
        TIMEOUTS + "CREATE INDEX ix_orders_total ON orders (total);", database_url=url, scratch_rows=SCRATCH_ROWS
    )
    row = frame.iloc[0]
    assert pd.isna(row["rows"]) and pd.isna(row["estimate"])
    assert row["impact"].startswith("orders does not exist in ")


def test_a_statement_that_fails_on_the_scratch_copy_says_why_it_has_no_estimate(
    postgres_server: PostgresServer,
) -> None:
    url = live_database(postgres_server, tasks=50)
    frame = migrations.lint_sql(
        TIMEOUTS + "ALTER TABLE tasks ALTER COLUMN description SET NOT NULL;",
        database_url=url,
        scratch_rows=SCRATCH_ROWS,
    )
    row = by_rule(frame).loc["set_not_null"]
    assert row["rows"] == 50 and pd.isna(row["estimate"])
    assert "no estimate: it failed on the scratch copy" in row["impact"] and "null values" in row["impact"]


def test_a_statement_that_could_act_beyond_the_scratch_copy_is_not_run(postgres_server: PostgresServer) -> None:
    url = live_database(postgres_server, tasks=10)
    sql = TIMEOUTS + "ALTER TABLE tasks ADD COLUMN who int DEFAULT pg_terminate_backend(pg_backend_pid());"
    row = migrations.lint_sql(sql, database_url=url, scratch_rows=SCRATCH_ROWS).iloc[0]
    assert row["rule"] == "add_column_volatile_default" and row["rows"] == 10
    assert "no estimate: it calls pg_terminate_backend()" in row["impact"]
    assert scalar(url, "SELECT count(*) FROM information_schema.columns WHERE column_name = 'who'") == 0


def test_an_odd_table_name_is_counted_and_measured(postgres_server: PostgresServer) -> None:
    url = live_database(postgres_server, tasks=0)
    odd = '"Odd ""name""; DROP TABLE tasks --"'
    execute(url, f"CREATE TABLE {odd} (x int)", f"INSERT INTO {odd} SELECT generate_series(1, 40)")
    frame = migrations.lint_sql(
        TIMEOUTS + f"CREATE INDEX ix_odd ON {odd} (x);", database_url=url, scratch_rows=SCRATCH_ROWS
    )
    row = frame.iloc[0]
    assert row["table"] == 'Odd "name"; DROP TABLE tasks --' and row["rows"] == 40
    # The scratch copy is built by the migrations, so it has no such table: said, not guessed.
    assert "no estimate: it failed on the scratch copy" in row["impact"]
    assert scalar(url, "SELECT to_regclass('tasks') IS NOT NULL") is True


def test_a_read_only_role_gets_the_sizes_and_is_told_where_the_estimate_needs_createdb(
    postgres_server: PostgresServer,
) -> None:
    cluster = postgres_server.cluster
    if cluster is None:
        pytest.skip("creating a role needs the throwaway cluster")
    url = live_database(postgres_server, tasks=120)
    database = str(make_url(url).database)
    role = f"lint_reader_{database}"
    password = cluster.password.replace("'", "''")
    cluster.psql(f"CREATE ROLE {role} LOGIN NOCREATEDB PASSWORD '{password}'")
    cluster.psql(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role}", database=database)
    reader = cluster.url(database, user=role)
    sql = TIMEOUTS + "CREATE INDEX ix_tasks_title ON tasks (title);"
    try:
        row = migrations.lint_sql(sql, database_url=reader, scratch_rows=SCRATCH_ROWS).iloc[0]
        assert row["rows"] == 120 and row["bytes"] > 0 and pd.isna(row["estimate"])
        assert "no estimate: Cannot create a scratch database" in row["impact"] and "CREATEDB" in row["impact"]
        assert cluster.password not in row["impact"]
        measured = migrations.lint_sql(
            sql, database_url=reader, scratch_url=postgres_server.url, scratch_rows=SCRATCH_ROWS
        ).iloc[0]
        assert measured["rows"] == 120 and measured["estimate"] > pd.Timedelta(0)
    finally:
        cluster.psql(f"DROP OWNED BY {role}", database=database)
        cluster.psql(f"DROP ROLE {role}")


def test_on_a_read_replica_the_catalog_is_read_and_the_scratch_copy_goes_to_the_primary(
    postgres_server: PostgresServer, replica_server: ReplicaServer, direct_replica_engine: AsyncEngine
) -> None:
    # direct_replica_engine: the replica has replayed the migrated (and emptied) tasks table.
    sql = TIMEOUTS + "CREATE INDEX ix_tasks_title ON tasks (title);"
    row = migrations.lint_sql(sql, database_url=replica_server.url, scratch_rows=SCRATCH_ROWS).iloc[0]
    assert row["rows"] == 0 and row["bytes"] > 0 and pd.isna(row["estimate"]), row["impact"]
    assert "is a read replica" in row["impact"] and "scratch URL" in row["impact"]
    measured = migrations.lint_sql(
        sql, database_url=replica_server.url, scratch_url=postgres_server.url, scratch_rows=SCRATCH_ROWS
    ).iloc[0]
    assert measured["estimate"] > pd.Timedelta(0)


def test_an_unreachable_database_is_one_connection_error_without_the_password() -> None:
    with pytest.raises(DatabaseConnectionError) as exc:
        migrations.lint_sql(
            "CREATE INDEX ix ON tasks (title);", database_url="postgresql://someone:s3cret-pw@127.0.0.1:9/live"
        )
    message = str(exc.value)
    assert "127.0.0.1:9" in message and "live" in message
    assert "s3cret-pw" not in message and "\n" not in message


def test_on_sqlite_the_impact_says_the_estimate_applies_to_postgresql(sqlite_url: str) -> None:
    async def prepare() -> None:
        engine = create_engine(sqlite_url)
        try:
            await migrations.upgrade(engine)
            await sample.seed(engine, tasks=30)
        finally:
            await engine.dispose()

    run(prepare())
    row = migrations.lint_sql("CREATE INDEX ix ON tasks (title);", database_url=sqlite_url).iloc[-1]
    assert row["rows"] == 30 and pd.isna(row["estimate"])
    assert row["impact"].startswith("The estimate applies to PostgreSQL")
