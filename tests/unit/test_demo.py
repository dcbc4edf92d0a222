"""demo.open_database: which database a notebook opens, and what the engine says about it."""

from __future__ import annotations

from pathlib import Path

import pytest

from todo_data import demo, migrations
from todo_data.database import about, create_engine
from todo_data.settings import get_settings


@pytest.fixture
async def primary_and_replica(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, str]:
    """DATABASE_URL and DATABASE_READ_URL, two migrated SQLite files (standing in for both ends)."""
    primary, replica = (f"sqlite:///{tmp_path / name}" for name in ("primary.db", "replica.db"))
    monkeypatch.setenv("DATABASE_URL", primary)
    monkeypatch.setenv("DATABASE_READ_URL", replica)
    for url in (primary, replica):
        engine = create_engine(url)
        await migrations.upgrade(engine)
        await engine.dispose()
    return primary, replica


async def test_reading_opens_the_read_replica_and_says_so(primary_and_replica: tuple[str, str]) -> None:
    engine = await demo.open_database()
    try:
        info = about(engine)
        assert info.location is not None and info.location.endswith("replica.db") and info.read_only
        shown = str(info)
        assert shown.startswith("Read replica.") and "DATABASE_READ_URL from the environment" in shown
        assert "writes go to DATABASE_URL" in shown and "demo" not in shown.lower()
    finally:
        await engine.dispose()


@pytest.mark.parametrize("options", [{"read_only": False}, {"replica": False}], ids=["writing", "primary"])
async def test_writing_or_asking_for_the_primary_opens_database_url(
    primary_and_replica: tuple[str, str], options: dict[str, bool]
) -> None:
    engine = await demo.open_database(**options)
    try:
        info = about(engine)
        assert info.location is not None and info.location.endswith("primary.db")
        assert "DATABASE_URL from the environment" in str(info) and "replica" not in str(info)
    finally:
        await engine.dispose()


async def test_the_banner_says_where_the_password_and_host_came_from_and_never_the_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A Neon string without its password, which ~/.pgpass holds: what the README recommends.
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("PGPASSFILE")
    pgpass = tmp_path / ".pgpass"
    pgpass.write_text("ep-x-1.us-east-2.aws.neon.tech:5432:neondb:owner:npg_Zq7Xw9\n")
    pgpass.chmod(0o600)
    monkeypatch.setenv("DATABASE_URL", "postgresql://owner@ep-x-1.us-east-2.aws.neon.tech/neondb?sslmode=require")
    engine = await demo.open_database()
    try:
        shown, summary = str(about(engine)), repr(engine)
        assert "password from ~/.pgpass" in shown and "DATABASE_URL from the environment" in shown
        assert 'database "neondb" on ep-x-1.us-east-2.aws.neon.tech as user "owner"' in shown
        assert "npg_Zq7Xw9" not in shown + summary + str(engine.url)
    finally:
        await engine.dispose()
    monkeypatch.setenv("DATABASE_URL", "postgresql:///neondb?sslmode=require")
    monkeypatch.setenv("PGHOST", "ep-x-1.us-east-2.aws.neon.tech")
    monkeypatch.setenv("PGUSER", "owner")
    get_settings.cache_clear()
    engine = await demo.open_database()
    try:
        shown = str(about(engine))
        assert "host from PGHOST" in shown and "user from PGUSER" in shown and "password from ~/.pgpass" in shown
        assert "npg_Zq7Xw9" not in shown
    finally:
        await engine.dispose()
