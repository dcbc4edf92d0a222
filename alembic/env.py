"""Alembic environment, async.

The URL comes from ``-x url=...``, else from todo_data's settings (``DATABASE_URL``).
Code that already holds a connection (``todo_data.migrations``) hands it in through
``config.attributes["connection"]`` and no second connection or event loop is opened.
"""

from __future__ import annotations

import asyncio

from sqlalchemy.engine import Connection
from sqlalchemy.pool import NullPool

from alembic import context
from todo_data.database import create_engine
from todo_data.models import metadata
from todo_data.settings import get_settings
from todo_data.urls import parse_database_url

config = context.config


def _url() -> str:
    return str(context.get_x_argument(as_dictionary=True).get("url") or get_settings().database_url)


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        compare_type=True,
        # SQLite cannot ALTER constraints: batch mode rebuilds the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
    )


def run_migrations_offline() -> None:
    """Emit SQL to stdout (``alembic upgrade head --sql``) without connecting."""
    target = parse_database_url(_url())
    context.configure(
        url=target.url,
        target_metadata=metadata,
        literal_binds=True,
        compare_type=True,
        render_as_batch=target.backend == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


def _run_sync(connection: Connection) -> None:
    _configure(connection)
    with context.begin_transaction():
        context.run_migrations()


async def _run_async() -> None:
    engine = create_engine(_url(), poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run_sync)
            await connection.commit()
    finally:
        await engine.dispose()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run_sync(connection)
    else:
        asyncio.run(_run_async())


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
