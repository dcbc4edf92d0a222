"""A new, empty database beside the one a URL names, for experiments that must not touch it."""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import NullPool

from todo_data.database import connect, create_engine
from todo_data.errors import MigrationError, driver_message
from todo_data.urls import parse_database_url, scrub


@asynccontextmanager
async def scratch_database(url: str | URL, *, purpose: str) -> AsyncIterator[str | URL]:
    """A new empty database beside ``url``'s (never ``url``'s own), removed afterwards.

    PostgreSQL: ``CREATE DATABASE`` as the URL's own role (which needs CREATEDB), dropped
    with ``FORCE`` even on failure. SQLite: a file in a temporary directory.
    ``purpose`` names the caller in the error a role without CREATEDB gets.
    """
    target = parse_database_url(url)
    if target.backend == "sqlite":
        with tempfile.TemporaryDirectory(prefix="todo-data-scratch-") as directory:
            yield f"sqlite:///{Path(directory) / 'scratch.db'}"
        return
    given = make_url(url) if isinstance(url, str) else url
    name = f"todo_data_roundtrip_{uuid.uuid4().hex[:12]}"
    # CREATE/DROP DATABASE cannot run inside a transaction block.
    admin = create_engine(url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    try:
        async with connect(admin) as conn:
            try:
                await conn.execute(text(f'CREATE DATABASE "{name}"'))
            except DBAPIError as exc:
                raise MigrationError(
                    f"Cannot create a scratch database for {purpose} as user "
                    f"{target.url.username!r} on {target.url.host}: {scrub(driver_message(exc), target.url.password)}. "
                    "The role needs CREATEDB (ALTER ROLE ... CREATEDB), or use a URL whose role has it "
                    "(for example a Neon branch's owner)."
                ) from None
        try:
            yield given.set(database=name)
        finally:
            await drop_database(admin, name)
    finally:
        await admin.dispose()


# SQLSTATEs of the two ways a DROP DATABASE meets another session on the database.
_INSUFFICIENT_PRIVILEGE = "42501"
_OBJECT_IN_USE = "55006"


async def drop_database(admin: AsyncEngine, name: str) -> None:
    """Drop database ``name`` through ``admin`` (autocommit) whichever sessions are still on it.

    ``WITH (FORCE)`` (PostgreSQL 13+) ends the sessions of the URL's role that a failed
    step may have left behind, but refuses at once when a session of a role it may not
    signal is there — an autovacuum worker, which a new database attracts soon after its
    first writes, counts as one. A plain DROP stops autovacuum workers and waits up to
    5 s for other sessions to leave, so the two alternate for a few rounds.
    """
    last: DBAPIError | None = None
    for statement in ("WITH (FORCE)", "", "WITH (FORCE)", "", "WITH (FORCE)"):
        try:
            async with connect(admin) as conn:
                await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" {statement}'))
            return
        except DBAPIError as exc:
            if getattr(exc.orig, "sqlstate", None) not in (_INSUFFICIENT_PRIVILEGE, _OBJECT_IN_USE):
                raise
            last = exc
    assert last is not None
    raise MigrationError(
        f"The scratch database {name!r} on {admin.url.host} could not be dropped: {driver_message(last)}. "
        f'Drop it once its sessions have ended: DROP DATABASE "{name}" WITH (FORCE)'
    ) from None
