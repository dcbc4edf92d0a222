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
import threading
from collections.abc import Awaitable
from typing import TypeVar

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
    return loop.run_until_complete(_awaited(awaitable))


async def _awaited(awaitable: Awaitable[T]) -> T:
    # run_until_complete takes coroutines and futures; this accepts any awaitable.
    return await awaitable


def _thread_loop() -> asyncio.AbstractEventLoop:
    """This thread's long-lived loop for sync callers, created on first use."""
    loop: asyncio.AbstractEventLoop | None = getattr(_local, "loop", None)
    if loop is None or loop.is_closed():
        loop = _local.loop = asyncio.new_event_loop()
    return loop
