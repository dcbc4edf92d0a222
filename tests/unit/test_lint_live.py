"""The lint's estimate from a scratch measure, and what is never replayed beside a real database."""

from __future__ import annotations

import pandas as pd
import pytest
from pglast import parse_sql

from todo_data.migrations._lint_live import Live, LiveTable, _live_row
from todo_data.migrations._lint_replay import Measure, TableEffect, replayable


def live(rows: int, size: int) -> Live:
    return Live("postgresql", "db", {"tasks": LiveTable(rows, size)}, {}, "0002", replica=False)


def test_a_statement_that_read_the_table_is_scaled_by_the_live_size_over_the_scratch_size() -> None:
    measure = Measure(0.25, {"tasks": TableEffect("ShareLock", rewritten=False, scanned=True, bytes=10 * 2**20)})
    row = _live_row("tasks", live(1_234_567, 400 * 2**20), measure, None)
    assert row["estimate"] == pd.Timedelta(seconds=10)
    assert row["impact"] == "SHARE on tasks, about 1.2M rows / 400 MB: roughly 10 s"


def test_a_catalog_only_statement_takes_the_same_time_at_any_size() -> None:
    measure = Measure(0.002, {"tasks": TableEffect("AccessExclusiveLock", rewritten=False, scanned=False, bytes=1)})
    row = _live_row("tasks", live(50_000_000, 30 * 2**30), measure, None)
    assert row["estimate"] == pd.Timedelta(seconds=0.002)
    assert row["impact"].startswith("ACCESS EXCLUSIVE on tasks, about 50M rows / 30 GB: roughly 2 ms whatever its size")


def test_a_rewrite_says_so_and_long_estimates_are_in_minutes() -> None:
    measure = Measure(1.5, {"tasks": TableEffect("AccessExclusiveLock", rewritten=True, scanned=True, bytes=2**20)})
    row = _live_row("tasks", live(7, 310 * 2**20), measure, None)
    assert row["rewritten"] and row["impact"] == (
        "ACCESS EXCLUSIVE on tasks while it is rewritten, 7 rows / 310 MB: roughly 7.8 min"
    )


def test_without_a_measure_the_sizes_stay_and_the_reason_is_given() -> None:
    row = _live_row("tasks", live(10, 8192), None, "no CREATEDB")
    assert (row["rows"], row["bytes"], row["estimate"]) == (10, 8192, None)
    assert row["impact"] == "tasks, 10 rows / 8 kB; no estimate: no CREATEDB"


@pytest.mark.parametrize(
    "sql",
    [
        "DROP DATABASE production",
        "CREATE DATABASE other",
        "ALTER ROLE app SUPERUSER",
        "DROP ROLE app",
        "ALTER SYSTEM SET work_mem = '1GB'",
        "COPY tasks FROM '/etc/passwd'",
        "DO $$ BEGIN PERFORM 1; END $$",
        "CALL cleanup()",
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity",
        "UPDATE tasks SET title = dblink_exec('host=prod', 'DROP TABLE x')",
        "CREATE SUBSCRIPTION s CONNECTION 'host=prod' PUBLICATION p",
        "PREPARE TRANSACTION 'x'",
    ],
)
def test_what_could_act_beyond_the_scratch_copy_is_not_replayed(sql: str) -> None:
    assert replayable(parse_sql(sql)[0].stmt) is not None


@pytest.mark.parametrize(
    "sql",
    [
        "ALTER TABLE tasks ALTER COLUMN title TYPE text",
        "CREATE INDEX ix ON tasks (title)",
        "UPDATE tasks SET title = upper(title)",
        "SELECT setval('s', 10)",
        "VACUUM FULL tasks",
        "BEGIN",
    ],
)
def test_what_a_migration_does_in_its_database_is_replayed(sql: str) -> None:
    assert replayable(parse_sql(sql)[0].stmt) is None
