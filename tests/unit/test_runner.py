"""``run()`` from plain sync code and from inside a running event loop (SQLite)."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import threading
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.unit.interrupts import ENDLESS, Watchdog, sigint_soon
from todo_data import create_engine, run
from todo_data._interrupt import INTERRUPTED_MESSAGE
from todo_data.database import connect


async def where_am_i() -> tuple[asyncio.AbstractEventLoop, int]:
    await asyncio.sleep(0)
    return asyncio.get_running_loop(), threading.get_ident()


async def select_one(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(text("SELECT 1"))).scalar_one())


class Awaitable:
    """Not a coroutine: something with ``__await__``, as some libraries return."""

    def __await__(self):  # type: ignore[no-untyped-def]
        return asyncio.sleep(0, result="done").__await__()


def test_run_from_sync_code_returns_the_result() -> None:
    loop, thread = run(where_am_i())
    assert thread == threading.get_ident()
    assert not loop.is_closed()


def test_run_from_sync_code_reuses_one_loop_so_pooled_connections_survive(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'runner.db'}")
    assert run(select_one(engine)) == 1
    # The pooled connection was opened on the first call's loop and is reused here.
    assert run(select_one(engine)) == 1
    assert run(where_am_i())[0] is run(where_am_i())[0]
    run(engine.dispose())


def test_run_accepts_any_awaitable() -> None:
    assert run(Awaitable()) == "done"


async def test_run_inside_a_running_loop_runs_on_that_loop_and_thread() -> None:
    outer_loop = asyncio.get_running_loop()
    inner_loop, thread = run(where_am_i())
    assert inner_loop is outer_loop
    assert thread == threading.get_ident()


def test_run_inside_asyncio_run_with_an_engine_opened_on_that_loop(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'nested.db'}")

    async def notebook_cell() -> list[int]:
        first = await select_one(engine)
        nested = run(select_one(engine))  # sync code called from the cell, e.g. a helper
        again = await select_one(engine)
        await engine.dispose()
        return [first, nested, again]

    assert asyncio.run(notebook_cell()) == [1, 1, 1]


def test_exceptions_propagate_unchanged() -> None:
    async def fails() -> None:
        raise LookupError("nope")

    with pytest.raises(LookupError, match="nope"):
        run(fails())


def test_ctrl_c_cancels_the_running_query_and_raises_keyboard_interrupt(sqlite_engine: AsyncEngine) -> None:
    drivers: list[sqlite3.Connection] = []

    async def endless() -> None:
        async with connect(sqlite_engine) as conn:
            drivers.append((await conn.get_raw_connection()).driver_connection._conn)  # type: ignore[union-attr]
            await conn.execute(text(ENDLESS))

    # Python's own handler, as in a terminal: a shell's background job inherits SIGINT
    # ignored, and run() rightly leaves an ignored SIGINT alone.
    inherited = signal.signal(signal.SIGINT, signal.default_int_handler)
    watchdog = Watchdog(60, lambda: drivers[0].interrupt())
    try:
        sigint_soon()
        with pytest.raises(KeyboardInterrupt) as raised:
            run(endless())
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        watchdog.stop()
        signal.signal(signal.SIGINT, inherited)
    assert not watchdog.fired  # the statement was stopped by Ctrl-C, not by the watchdog
    assert raised.value.args == (INTERRUPTED_MESSAGE,)
    assert run(select_one(sqlite_engine)) == 1


def test_a_cancellation_without_ctrl_c_stays_a_cancellation() -> None:
    async def cancelled() -> None:
        raise asyncio.CancelledError

    with pytest.raises(asyncio.CancelledError):
        run(cancelled())
