"""Alembic environment, async.

The URL comes from ``-x url=...``, else from todo_data's settings (``DATABASE_URL``).
Code that already holds a connection (``todo_data.migrations``) hands it in through
``config.attributes["connection"]`` and no second connection or event loop is opened.
An engine handed in the same way (pytest-alembic does that) is connected to, on the
running loop if there is one (``todo_data.run``).
"""

from __future__ import annotations

import asyncio

from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import NullPool

from alembic import context
from todo_data.database import create_engine, direct_url
from todo_data.migrations import environment_options, lock_timeout_ms
from todo_data.runner import run
from todo_data.settings import get_settings
from todo_data.urls import parse_database_url

config = context.config


def _url() -> str:
    return str(context.get_x_argument(as_dictionary=True).get("url") or get_settings().database_url)


def _configure(connection: Connection) -> None:
    context.configure(connection=connection, **environment_options(connection.dialect.name))


def run_migrations_offline() -> None:
    """Emit SQL to stdout (``alembic upgrade head --sql``) without connecting."""
    target = parse_database_url(_url())
    context.configure(url=target.url, literal_binds=True, **environment_options(target.backend))
    with context.begin_transaction():
        context.run_migrations()


def _run_sync(connection: Connection) -> None:
    _configure(connection)
    with context.begin_transaction():
        context.run_migrations()


async def _run_async(engine: AsyncEngine, *, lock_timeout_ms: int | None = None) -> None:
    async with engine.connect() as connection:
        if lock_timeout_ms is not None and connection.dialect.name == "postgresql":
            # A session of its own (NullPool): the setting ends with it.
            await connection.execute(text(f"SET lock_timeout = {lock_timeout_ms}"))
            await connection.commit()
        await connection.run_sync(_run_sync)
        await connection.commit()


async def _run_on_new_engine() -> None:
    # Migrations need a session of their own: a pooled endpoint hands over to its direct one.
    engine = create_engine(direct_url(_url()), poolclass=NullPool)
    try:
        # `alembic upgrade` waits DATABASE_LOCK_TIMEOUT for each lock too (without the
        # retries of todo_data.migrations, which the alembic command does not run).
        await _run_async(engine, lock_timeout_ms=lock_timeout_ms(None))
    finally:
        await engine.dispose()


def run_migrations_online() -> None:
    given = config.attributes.get("connection")
    if given is None:
        asyncio.run(_run_on_new_engine())
    elif isinstance(given, AsyncEngine):
        run(_run_async(given))
    else:
        _run_sync(given)


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
