"""migrations.trace: the locks and rewrites each statement really causes, measured on PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from tests.helpers import PostgresServer
from tests.migration_scripts import Revision, make_scripts
from todo_data import create_engine, migrations
from todo_data.errors import MigrationError

REWRITE = Revision("0002", 'op.alter_column("tasks", "title", type_=sa.String(300))')
CONCURRENT = Revision(
    "0003",
    """
    with op.get_context().autocommit_block():
        op.create_index("ix_tasks_title", "tasks", ["title"], postgresql_concurrently=True)
    """,
)


def rows_of(frame: pd.DataFrame, revision: str, starts: str) -> pd.DataFrame:
    return frame[(frame["revision"] == revision) & frame["statement"].str.startswith(starts)]


async def test_alter_type_takes_access_exclusive_and_rewrites_while_concurrently_does_neither(
    postgres_server: PostgresServer, tmp_path: Path
) -> None:
    scripts = make_scripts(tmp_path / "scripts", REWRITE, CONCURRENT)
    frame = await migrations.trace(postgres_server.url, script_location=scripts, rows=500)
    assert list(frame.columns) == ["revision", "statement", "relation", "locks", "held", "rewritten", "duration"]
    assert frame["revision"].unique().tolist() == ["0001", "0002", "0003"]

    altered = rows_of(frame, "0002", "ALTER TABLE tasks ALTER COLUMN title TYPE").set_index("relation")
    assert "AccessExclusiveLock" in altered.loc["tasks", "locks"].split(", ")
    assert altered.loc["tasks", "rewritten"]
    assert altered["duration"].dt.total_seconds().ge(0).all()

    concurrent = rows_of(frame, "0003", "CREATE INDEX CONCURRENTLY")
    assert len(concurrent) >= 1
    assert not concurrent["locks"].str.contains("AccessExclusiveLock").any()
    assert not concurrent["rewritten"].any()


async def test_the_projects_revisions_take_only_brief_weak_locks_on_tasks(postgres_server: PostgresServer) -> None:
    frame = await migrations.trace(postgres_server.url, rows=100)
    trigger = rows_of(frame, "0002", "CREATE TRIGGER").set_index("relation")
    assert trigger.loc["tasks", "locks"] == "ShareRowExclusiveLock"
    assert not frame.loc[frame["revision"] == "0002", "rewritten"].any()
    assert not frame.loc[frame["revision"] == "0002", "locks"].str.contains("AccessExclusiveLock").any()


async def test_trace_stops_at_the_revision_asked_for_and_never_touches_the_given_database(
    postgres_server: PostgresServer,
) -> None:
    url = postgres_server.scratch_url()
    frame = await migrations.trace(url, "0001", rows=0)
    assert frame["revision"].unique().tolist() == ["0001"]
    engine = create_engine(url)
    try:
        assert await migrations.current(engine) is None
    finally:
        await engine.dispose()
    if postgres_server.cluster is not None:
        leftovers = "SELECT datname FROM pg_database WHERE datname LIKE 'todo_data_roundtrip%'"
        assert postgres_server.cluster.psql(leftovers) == ""


async def test_an_unknown_revision_is_a_one_line_error(postgres_server: PostgresServer) -> None:
    with pytest.raises(MigrationError, match="Unknown revision 'nope'") as exc:
        await migrations.trace(postgres_server.url, "nope")
    assert "\n" not in str(exc.value)


async def test_a_failing_revision_names_itself_and_the_database_reason(
    postgres_server: PostgresServer, tmp_path: Path
) -> None:
    scripts = make_scripts(tmp_path / "scripts", Revision("0002", 'op.drop_column("tasks", "no_such_column")'))
    with pytest.raises(MigrationError, match=r"Revision 0002 failed on the scratch database: .*no_such_column"):
        await migrations.trace(postgres_server.url, script_location=scripts, rows=10)


async def test_on_sqlite_trace_says_it_applies_to_postgresql(sqlite_url: str) -> None:
    frame = await migrations.trace(sqlite_url)
    assert len(frame) == 1
    assert frame["statement"].iloc[0].startswith("trace applies to PostgreSQL")


async def test_a_statement_under_a_lock_its_revision_already_holds_says_so(
    postgres_server: PostgresServer, tmp_path: Path
) -> None:
    added = Revision(
        "0002",
        """
        op.add_column("tasks", sa.Column("priority", sa.Integer()))
        op.create_index("ix_tasks_priority", "tasks", ["priority"])
        op.create_index("ix_tasks_priority_title", "tasks", ["priority", "title"])
        """,
    )
    frame = await migrations.trace(postgres_server.url, script_location=make_scripts(tmp_path / "s", added), rows=50)
    first = rows_of(frame, "0002", "CREATE INDEX ix_tasks_priority ").set_index("relation").loc["tasks"]
    assert first["locks"] == "ShareLock" and first["held"] == "AccessExclusiveLock"
    # The second index takes nothing new: the ShareLock and AccessExclusiveLock are already held.
    second = rows_of(frame, "0002", "CREATE INDEX ix_tasks_priority_title").set_index("relation").loc["tasks"]
    assert second["locks"] == "" and second["held"] == "AccessExclusiveLock, ShareLock"
    altered = rows_of(frame, "0002", "ALTER TABLE tasks ADD COLUMN").set_index("relation").loc["tasks"]
    assert altered["locks"] == "AccessExclusiveLock" and altered["held"] == ""
