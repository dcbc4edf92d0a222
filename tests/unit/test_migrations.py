"""Migrations on SQLite, from code and from the alembic command at the repository root."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.helpers import alembic_cli
from todo_data import migrations
from todo_data.database import create_engine
from todo_data.errors import InvalidArgumentError, MigrationError, SettingsError
from todo_data.rules import CHECK_RULES
from todo_data.settings import get_settings

REPO_ROOT = Path(__file__).resolve().parents[2]


async def tables(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as conn:
        return set(await conn.run_sync(lambda c: inspect(c).get_table_names()))


async def test_upgrade_downgrade_current_from_code(sqlite_url: str) -> None:
    engine = create_engine(sqlite_url)
    try:
        assert await migrations.current(engine) is None
        assert await migrations.upgrade(engine) == migrations.head()
        assert "tasks" in await tables(engine)
        assert await migrations.downgrade(engine, "base") is None
        assert "tasks" not in await tables(engine)
        assert await migrations.upgrade(engine, "head") == migrations.head()
    finally:
        await engine.dispose()


async def test_unknown_revision_is_a_migration_error_naming_it(sqlite_engine: AsyncEngine) -> None:
    with pytest.raises(MigrationError, match="'nope'"):
        await migrations.upgrade(sqlite_engine, "nope")


def test_alembic_cli_upgrade_check_downgrade_from_repository_root(sqlite_url: str) -> None:
    up = alembic_cli("upgrade", "head", url=sqlite_url)
    assert up.returncode == 0, up.stderr
    check = alembic_cli("check", url=sqlite_url)
    assert check.returncode == 0, check.stderr
    assert "No new upgrade operations detected" in check.stdout + check.stderr
    down = alembic_cli("downgrade", "base", url=sqlite_url)
    assert down.returncode == 0, down.stderr


def test_alembic_offline_sql_uses_the_rules(sqlite_url: str) -> None:
    result = alembic_cli("upgrade", "head", "--sql", url=sqlite_url)
    assert result.returncode == 0, result.stderr
    for rule in CHECK_RULES:
        assert f"CONSTRAINT {rule.name} CHECK ({rule.sql})" in result.stdout


async def test_live_sqlite_schema_has_every_named_constraint(sqlite_engine: AsyncEngine) -> None:
    async with sqlite_engine.connect() as conn:
        names = await conn.run_sync(
            lambda c: (
                {ck["name"] for ck in inspect(c).get_check_constraints("tasks")},
                inspect(c).get_pk_constraint("tasks")["name"],
                {ix["name"] for ix in inspect(c).get_indexes("tasks")},
            )
        )
    assert names == (
        {rule.name for rule in CHECK_RULES},
        "pk_tasks",
        {"ix_tasks_user_id", "ix_tasks_status"},
    )


@pytest.mark.parametrize(
    ("given", "milliseconds"), [(5, 5000), (0.25, 250), (0, 0), (0.0001, 1), (2_000_000, 2_000_000_000)]
)
def test_lock_timeout_seconds_become_postgresqls_milliseconds(given: float, milliseconds: int) -> None:
    assert migrations.lock_timeout_ms(given) == milliseconds


@pytest.mark.parametrize("given", [-1, float("nan"), float("inf"), 3_000_000, "5", True])
def test_a_nonsense_lock_timeout_is_refused_before_anything_runs(given: object) -> None:
    with pytest.raises(InvalidArgumentError, match="lock_timeout"):
        migrations.lock_timeout_ms(given)  # type: ignore[arg-type]


def test_lock_timeout_defaults_to_five_seconds_or_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    assert migrations.lock_timeout_ms(None) == 5000
    monkeypatch.setenv("DATABASE_LOCK_TIMEOUT", "0")
    get_settings.cache_clear()
    assert migrations.lock_timeout_ms(None) == 0
    monkeypatch.setenv("DATABASE_LOCK_TIMEOUT", "-2")
    get_settings.cache_clear()
    with pytest.raises(SettingsError, match="DATABASE_LOCK_TIMEOUT"):
        migrations.lock_timeout_ms(None)


def test_a_broken_unrelated_setting_does_not_stop_a_migration_of_an_explicit_engine(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DATABASE_URL", "mysql://nope")
    get_settings.cache_clear()
    assert migrations.lock_timeout_ms(None) == 5000


async def test_sqlite_upgrade_accepts_a_lock_timeout_and_ignores_it(sqlite_url: str) -> None:
    engine = create_engine(sqlite_url)
    try:
        assert await migrations.upgrade(engine, lock_timeout=1) == migrations.head()
    finally:
        await engine.dispose()


async def test_a_new_revision_that_cannot_run_is_removed_again(tmp_path: Path) -> None:
    from tests.migration_scripts import Revision, make_scripts

    # A template whose scripts raise when loaded: the revision written from it cannot run.
    scripts = make_scripts(tmp_path / "s", Revision("0002", 'op.drop_index("ix_tasks_status", "tasks")'))
    (scripts / "script.py.mako").write_text((scripts / "script.py.mako").read_text() + "\nraise RuntimeError('x')\n")
    with pytest.raises(MigrationError, match=r"Could not write revision 0003 .*RuntimeError"):
        await migrations.new_revision(f"sqlite:///{tmp_path / 'x.db'}", "recreate", script_location=scripts)
    assert sorted(path.name for path in (scripts / "versions").glob("*.py")) == [
        "0001_create_tasks.py",
        "0002_fixture.py",
    ]
    assert not (tmp_path / "x.db").exists()


def test_new_revisions_are_numbered_after_the_highest() -> None:
    from todo_data.migrations import next_revision_id, script_directory

    assert next_revision_id(script_directory()) == f"{int(migrations.head()) + 1:04d}"


def test_alembic_revision_autogenerate_numbers_its_revision_too(tmp_path: Path) -> None:
    import sqlalchemy

    from alembic import command
    from tests.migration_scripts import Revision, make_scripts

    scripts = make_scripts(tmp_path / "s", Revision("0002", 'op.drop_index("ix_tasks_status", "tasks")'))
    engine = sqlalchemy.create_engine(f"sqlite:///{tmp_path / 'x.db'}")
    try:
        with engine.connect() as conn:
            command.upgrade(migrations.alembic_config(conn, location=scripts), "head")
            conn.commit()
            command.revision(migrations.alembic_config(conn, location=scripts), message="m", autogenerate=True)
            command.upgrade(migrations.alembic_config(conn, location=scripts), "head")
            conn.commit()
            # An explicit --rev-id still wins.
            config = migrations.alembic_config(conn, location=scripts)
            config.cmd_opts = argparse.Namespace(rev_id="abc123")
            command.revision(config, message="n", autogenerate=True, rev_id="abc123")
    finally:
        engine.dispose()
    names = sorted(path.name for path in (scripts / "versions").glob("*.py"))
    assert names == ["0001_create_tasks.py", "0002_fixture.py", "0003_m.py", "abc123_n.py"]
