"""A freshly migrated scratch database on each backend, which tests may damage.

The shared ``pg_engine`` database must stay intact for the other tests, so tests that
drop constraints or change column types do it here: a new PostgreSQL database on the
test server, or a new SQLite file (``scratch``: migrated, from the pytest plugin's
template clones; ``scratch_url``: empty).
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.helpers import PostgresServer
from todo_data.pytest_plugin import TodoPostgres
from todo_data.rules import CHECK_RULES, TABLE_NAME


@dataclass
class Scratch:
    """A migrated database of one backend, and ways to damage it."""

    backend: str
    url: str
    engine: AsyncEngine

    async def execute(self, *statements: str) -> None:
        """Run raw SQL as the application's role, committed."""
        async with self.engine.begin() as conn:
            for statement in statements:
                await conn.execute(text(statement))

    async def drop_check(self, name: str) -> None:
        """Remove one CHECK constraint, as a hand-made schema change would."""
        if self.backend == "postgresql":
            await self.execute(f"ALTER TABLE {TABLE_NAME} DROP CONSTRAINT {name}")
            return
        rule = next(rule for rule in CHECK_RULES if rule.name == name)
        await self._rewrite_sqlite_table(f"CONSTRAINT {rule.name} CHECK ({rule.sql})", "")

    async def replace_check(self, name: str, sql: str) -> None:
        """Give a CHECK constraint another expression under the same name."""
        if self.backend == "postgresql":
            await self.execute(
                f"ALTER TABLE {TABLE_NAME} DROP CONSTRAINT {name}",
                f"ALTER TABLE {TABLE_NAME} ADD CONSTRAINT {name} CHECK ({sql})",
            )
            return
        rule = next(rule for rule in CHECK_RULES if rule.name == name)
        await self._rewrite_sqlite_table(
            f"CONSTRAINT {rule.name} CHECK ({rule.sql})", f", CONSTRAINT {name} CHECK ({sql})"
        )

    async def _rewrite_sqlite_table(self, clause: str, replacement: str) -> None:
        await self.engine.dispose()  # SQLite reads the changed schema on the next connect
        rewrite_sqlite_table(
            Path(str(make_url(self.url).database)), re.compile(r",\s*" + re.escape(clause)), replacement
        )


def rewrite_sqlite_table(path: Path, clause: re.Pattern[str], replacement: str) -> None:
    """SQLite has no DROP CONSTRAINT: edit the stored CREATE TABLE.

    This is the procedure SQLite's documentation gives for removing CHECK constraints
    ("Making Other Kinds Of Table Schema Changes", writable_schema).
    """
    con = sqlite3.connect(path)
    try:
        query = "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?"
        (ddl,) = con.execute(query, (TABLE_NAME,)).fetchone()
        changed, count = clause.subn(replacement, ddl)
        assert count == 1, ddl
        (version,) = con.execute("PRAGMA schema_version").fetchone()
        con.execute("PRAGMA writable_schema = ON")
        con.execute("UPDATE sqlite_master SET sql = ? WHERE type = 'table' AND name = ?", (changed, TABLE_NAME))
        con.execute(f"PRAGMA schema_version = {version + 1}")
        con.execute("PRAGMA writable_schema = OFF")
        con.commit()
        assert con.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    finally:
        con.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def scratch_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database of each backend: a new SQLite file, a new PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'scratch.db'}"
    server: PostgresServer = request.getfixturevalue("postgres_server")
    return server.scratch_url()


@pytest.fixture(params=["sqlite", "postgresql"])
def scratch(request: pytest.FixtureRequest) -> Scratch:
    """A database migrated to head, of each backend, free to be damaged.

    The plugin's: a copy of a SQLite file migrated once (``todo_sqlite_engine``), or a
    PostgreSQL database cloned from a migrated template (``todo_engine``), dropped after
    the test.
    """
    if request.param == "sqlite":
        engine: AsyncEngine = request.getfixturevalue("todo_sqlite_engine")
        return Scratch(backend="sqlite", url=f"sqlite:///{engine.url.database}", engine=engine)
    engine = request.getfixturevalue("todo_engine")
    postgres: TodoPostgres = request.getfixturevalue("todo_postgres")
    return Scratch(backend="postgresql", url=postgres.database_url(str(engine.url.database)), engine=engine)
