"""Alembic migrations, run from code or a notebook over any source.

The verbs are thin: each builds an Alembic config, hands the caller's connection to
``alembic/env.py`` through ``config.attributes["connection"]`` (no second connection,
no second event loop) and runs the Alembic command inside ``run_sync``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy.engine import Connection

import todo_data
from alembic import command
from todo_data.database import Source, begin, connect
from todo_data.errors import MigrationError


def script_location() -> Path:
    """The migration scripts: shipped inside the wheel, or ``alembic/`` in a checkout."""
    package = Path(todo_data.__file__).resolve().parent
    for candidate in (package / "_alembic", package.parent / "alembic"):
        if (candidate / "env.py").is_file():
            return candidate
    raise MigrationError(f"Migration scripts not found next to {package}")  # pragma: no cover


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic config for the project's migrations, optionally bound to a connection."""
    config = Config()
    config.set_main_option("script_location", str(script_location()))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def script_directory() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config())


def head() -> str:
    """The newest revision of the migration scripts."""
    revision = script_directory().get_current_head()
    assert revision is not None
    return revision


async def upgrade(source: Source, revision: str = "head") -> str | None:
    """Upgrade the database to ``revision`` (default: the newest); returns the new revision.

    >>> await upgrade(engine)      # doctest: +SKIP
    '0001'
    """
    await _run_command(source, revision, lambda config: command.upgrade(config, revision))
    return await current(source)


async def downgrade(source: Source, revision: str) -> str | None:
    """Downgrade the database to ``revision`` (``"base"`` removes every table)."""
    await _run_command(source, revision, lambda config: command.downgrade(config, revision))
    return await current(source)


async def current(source: Source) -> str | None:
    """The database's current revision, or ``None`` when it was never migrated."""
    async with connect(source) as conn:
        return await conn.run_sync(lambda sync: MigrationContext.configure(sync).get_current_revision())


async def _run_command(source: Source, revision: str, run: Callable[[Config], Any]) -> None:
    def in_connection(sync_connection: Connection) -> None:
        run(alembic_config(sync_connection))

    try:
        async with begin(source) as conn:
            await conn.run_sync(in_connection)
    except CommandError as exc:
        raise MigrationError(f"Migration to {revision!r} failed: {exc}") from exc
