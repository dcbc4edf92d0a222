"""Stop means stop, in-process: the SIGINT hook, SQLite's interrupt, and the pool's cleanup.

The previous SIGINT handler in these tests does what ipykernel 7's does: it schedules the
cancellation with ``loop.call_soon`` and nothing else, so only the hook can wake a sleeping
loop. A watchdog thread rescues a test whose hook failed, and the test then fails instead
of hanging. The same behaviour in a real kernel, on PostgreSQL: ``tests/integration/test_interrupt.py``.
"""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import aclosing, contextmanager
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.unit.interrupts import ENDLESS, Watchdog, sigint_soon
from todo_data._interrupt import INTERRUPTED_MESSAGE, wake_on_interrupt
from todo_data.database import connect


@contextmanager
def sigint_handler(handler: Callable[[int, Any], None]) -> Iterator[None]:
    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def cancel_like_ipykernel(task: asyncio.Task[Any]) -> Callable[[int, Any], None]:
    loop = asyncio.get_running_loop()
    return lambda _signum, _frame: loop.call_soon(task.cancel)  # no wake-up: ipykernel's call_soon


def test_without_a_running_loop_nothing_is_installed() -> None:
    before = signal.getsignal(signal.SIGINT)
    with wake_on_interrupt() as watch:
        assert watch is None
        assert signal.getsignal(signal.SIGINT) is before


def test_outside_the_main_thread_nothing_is_installed() -> None:
    seen: list[object] = []

    async def body() -> None:
        with wake_on_interrupt() as watch:
            seen.append(watch)

    thread = threading.Thread(target=asyncio.run, args=(body(),))
    thread.start()
    thread.join()
    assert seen == [None]


async def test_an_ignored_sigint_is_left_alone() -> None:
    with sigint_handler(signal.SIG_IGN), wake_on_interrupt() as watch:
        assert watch is None
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN


async def test_nested_blocks_share_one_handler_and_the_last_restores_the_previous() -> None:
    def previous(_signum: int, _frame: Any) -> None: ...

    with sigint_handler(previous):
        with wake_on_interrupt() as outer:
            assert outer is not None
            with wake_on_interrupt() as inner:
                assert inner is outer
                assert signal.getsignal(signal.SIGINT) is outer.handler
            assert signal.getsignal(signal.SIGINT) is outer.handler
        assert signal.getsignal(signal.SIGINT) is previous


async def test_a_handler_installed_meanwhile_is_not_replaced_on_leaving() -> None:
    def previous(_signum: int, _frame: Any) -> None: ...

    def theirs(_signum: int, _frame: Any) -> None: ...

    with sigint_handler(previous):
        with wake_on_interrupt():
            signal.signal(signal.SIGINT, theirs)
        assert signal.getsignal(signal.SIGINT) is theirs


async def test_sigint_runs_the_previous_handler_and_wakes_the_sleeping_loop() -> None:
    loop = asyncio.get_running_loop()
    woken = asyncio.Event()
    watchdog = Watchdog(30, lambda: loop.call_soon_threadsafe(lambda: None))
    try:
        with sigint_handler(lambda _s, _f: loop.call_soon(woken.set)), wake_on_interrupt() as watch:
            assert watch is not None
            sigint_soon()
            await woken.wait()  # nothing else can wake the loop but the watchdog
            assert watch.interrupted
    finally:
        watchdog.stop()
    assert not watchdog.fired


async def test_stop_interrupts_a_sqlite_statement_and_the_engine_answers_next(sqlite_engine: AsyncEngine) -> None:
    drivers: list[sqlite3.Connection] = []

    async def endless() -> None:
        async with connect(sqlite_engine) as conn:
            drivers.append((await conn.get_raw_connection()).driver_connection._conn)  # type: ignore[union-attr]
            await conn.execute(text(ENDLESS))

    task = asyncio.ensure_future(endless())
    watchdog = Watchdog(60, lambda: drivers[0].interrupt())
    try:
        with sigint_handler(cancel_like_ipykernel(task)):
            sigint_soon()
            with pytest.raises(asyncio.CancelledError) as raised:
                await task
    finally:
        watchdog.stop()
    assert not watchdog.fired  # the hook stopped the statement, not the watchdog
    assert raised.value.args == (INTERRUPTED_MESSAGE,)
    async with connect(sqlite_engine) as conn:
        assert (await conn.execute(text("SELECT count(*) FROM tasks"))).scalar_one() == 0


def invalidations(engine: AsyncEngine) -> list[BaseException | None]:
    seen: list[BaseException | None] = []
    event.listen(engine.sync_engine, "invalidate", lambda _conn, _record, exc: seen.append(exc))
    return seen


async def blocked_in(source: Any, entered: asyncio.Event) -> None:
    async with connect(source):
        entered.set()
        await asyncio.Event().wait()


async def cancelled_inside(source: Any) -> asyncio.CancelledError:
    entered = asyncio.Event()
    task = asyncio.ensure_future(blocked_in(source, entered))
    await entered.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError) as raised:
        await task
    return raised.value


async def test_an_engine_connection_interrupted_mid_use_is_discarded_not_pooled(sqlite_engine: AsyncEngine) -> None:
    seen = invalidations(sqlite_engine)
    error = await cancelled_inside(sqlite_engine)
    assert len(seen) == 1
    assert error.args == ()  # a cancellation without SIGINT keeps its own message
    async with connect(sqlite_engine) as conn:
        assert (await conn.execute(text("SELECT 1"))).scalar_one() == 1


async def test_a_callers_connection_is_left_to_its_owner_after_an_interruption(sqlite_engine: AsyncEngine) -> None:
    seen = invalidations(sqlite_engine)
    async with sqlite_engine.connect() as own:
        await cancelled_inside(own)
        assert (await own.execute(text("SELECT 1"))).scalar_one() == 1
    assert seen == []


async def test_a_generator_closed_early_returns_its_connection_to_the_pool(sqlite_engine: AsyncEngine) -> None:
    seen = invalidations(sqlite_engine)

    async def rows() -> AsyncIterator[int]:
        async with connect(sqlite_engine) as conn:
            for value in (1, 2):
                yield int((await conn.execute(text(f"SELECT {value}"))).scalar_one())

    async with aclosing(rows()) as values:
        async for value in values:
            assert value == 1
            break  # GeneratorExit at the yield: not an interruption
    assert seen == []
