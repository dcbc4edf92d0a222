"""``run()`` with asyncpg, whose connections belong to the loop that opened them."""

from __future__ import annotations

import asyncio
import threading

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.helpers import PostgresServer
from todo_data import create_engine, run


async def backend_pid(engine: AsyncEngine) -> tuple[int, asyncio.AbstractEventLoop, int]:
    async with engine.connect() as conn:
        pid = int((await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one())
    return pid, asyncio.get_running_loop(), threading.get_ident()


async def test_run_inside_the_test_loop_reuses_the_callers_asyncpg_connection(
    postgres_server: PostgresServer,
) -> None:
    engine = create_engine(postgres_server.url, pool_size=1)
    try:
        pid, _, _ = await backend_pid(engine)  # opened on pytest-asyncio's running loop
        nested_pid, loop, thread = run(backend_pid(engine))
        assert nested_pid == pid  # the same pooled asyncpg connection, not a new one
        assert loop is asyncio.get_running_loop()
        assert thread == threading.get_ident()
        assert (await backend_pid(engine))[0] == pid  # and it still works after
    finally:
        await engine.dispose()


def test_run_from_sync_code_keeps_asyncpg_connections_usable_across_calls(
    postgres_server: PostgresServer,
) -> None:
    engine = create_engine(postgres_server.url, pool_size=1)
    try:
        first, loop, thread = run(backend_pid(engine))
        second, loop_again, _ = run(backend_pid(engine))
        assert second == first
        assert loop_again is loop
        assert thread == threading.get_ident()
    finally:
        run(engine.dispose())
