"""``run()``: the one bridge from sync code to the library's coroutines.

Two situations, one function:

- **No loop is running** (a script, a terminal, a sync test): the coroutine runs on one
  long-lived event loop per thread. It is deliberately not ``asyncio.run``, which makes a
  new loop per call: asyncpg connections belong to the loop that opened them, so an
  engine's pooled connections would be dead on the next call.
- **A loop is already running** (a Jupyter kernel, a ``pytest-asyncio`` test, any code
  under ``asyncio.run``): the coroutine runs on *that* loop, made re-entrant with
  nest-asyncio2, so connections the caller opened on it keep working. No thread is
  started and no connection crosses to another loop.

In a notebook, ``await`` works directly and is preferred; ``run()`` is for code that
cannot ``await`` (a sync helper, a library callback, a script).
"""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Awaitable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any, TypeVar

import nest_asyncio2

T = TypeVar("T")

_local = threading.local()


def run(awaitable: Awaitable[T]) -> T:
    """Run a coroutine to completion from sync code and return its result.

    Works with or without an event loop already running in this thread (Jupyter,
    ``pytest-asyncio``), always on that thread and on the loop the caller's connections
    belong to.

    >>> from todo_data import create_engine, migrations, run
    >>> engine = create_engine("sqlite:///tasks.db")   # doctest: +SKIP
    >>> run(migrations.upgrade(engine))                  # doctest: +SKIP
    '0001'
    """
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        loop = _thread_loop()
    else:
        # Re-entrant from now on; patching is idempotent and costs nothing the second time.
        nest_asyncio2.apply(loop)
    task = loop.create_task(_awaited(awaitable))
    with _sigint_cancels(task) as signals:
        try:
            return loop.run_until_complete(task)
        except asyncio.CancelledError as exc:
            if signals:
                raise KeyboardInterrupt(*exc.args) from None
            raise


@contextmanager
def _sigint_cancels(task: asyncio.Task[Any]) -> Iterator[list[int]]:
    """Ctrl-C (or a kernel's Stop, in a cell without ``await``) cancels ``task``; yields the signals seen.

    Python's default handler raises ``KeyboardInterrupt`` wherever the main thread is,
    which leaves the loop with the query still running on the server and its connection
    in use. Like :func:`asyncio.run`, cancel the task instead: its query is cancelled on
    the server (see :mod:`todo_data._interrupt`), its connection cleaned up, and ``run``
    then raises ``KeyboardInterrupt``. A second signal interrupts at once, as usual.
    """
    seen: list[int] = []
    if threading.current_thread() is not threading.main_thread() or (
        signal.getsignal(signal.SIGINT) is not signal.default_int_handler
    ):
        yield seen
        return
    loop = task.get_loop()

    def cancel(signum: int, frame: FrameType | None) -> None:
        seen.append(signum)
        if len(seen) > 1 or task.done():
            signal.default_int_handler(signum, frame)
        loop.call_soon_threadsafe(task.cancel)

    signal.signal(signal.SIGINT, cancel)
    try:
        yield seen
    finally:
        if signal.getsignal(signal.SIGINT) is cancel:
            signal.signal(signal.SIGINT, signal.default_int_handler)


async def _awaited(awaitable: Awaitable[T]) -> T:
    # run_until_complete takes coroutines and futures; this accepts any awaitable.
    return await awaitable


def _thread_loop() -> asyncio.AbstractEventLoop:
    """This thread's long-lived loop for sync callers, created on first use."""
    loop: asyncio.AbstractEventLoop | None = getattr(_local, "loop", None)
    if loop is None or loop.is_closed():
        loop = _local.loop = asyncio.new_event_loop()
    return loop
