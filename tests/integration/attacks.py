"""What the read-only attacks share: a victim table, and a read-only engine on the same database."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from todo_data import create_engine


@asynccontextmanager
async def victim_table(engine: AsyncEngine) -> AsyncIterator[str]:
    """A table an escape would drop; dropped after the test, so the shared database shows no drift."""
    name = f"victim_{uuid.uuid4().hex[:8]}"
    async with engine.begin() as conn:
        await conn.execute(text(f"CREATE TABLE {name} (x int)"))
    try:
        yield name
    finally:
        async with engine.begin() as conn:
            await conn.execute(text(f"DROP TABLE IF EXISTS {name}"))


def _pooled(engine: AsyncEngine) -> bool:
    from todo_data.database import about

    return about(engine).target.pooled


def read_only_twin(engine: AsyncEngine) -> AsyncEngine:
    return create_engine(engine.url, read_only=True, pooled=engine.dialect.name == "postgresql" and _pooled(engine))


#: The advisory locks taken with one bigint key, as ``pg_advisory_lock(4242)`` and the ad-hoc
#: runner take them. The pytest plugin's run lock uses two int keys (``objsubid = 2``): it is
#: held on the shared test server for the whole session and is not the query's.
ONE_KEY_ADVISORY_LOCKS = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 1"
