"""Stop means stop: interrupting a Jupyter kernel cancels a running query at once.

JupyterLab's Stop sends SIGINT to the kernel. ipykernel 7 (``_cancel_on_sigint``) answers
by scheduling the cell's cancellation with tornado's ``add_callback``, which on the loop's
own thread is a plain ``call_soon``: nothing wakes the event loop, so it sleeps in
``epoll_wait`` until the database answers — a 60 s query kept the kernel busy for 60 s.

:func:`stoppable` wraps every connection borrowed through :func:`todo_data.database.connect`.
While one is open (:func:`wake_on_interrupt`), a SIGINT handler chains to whatever handler
was there (ipykernel's, ``asyncio.run``'s, :func:`todo_data.run`'s) and then wakes the loop
with ``call_soon_threadsafe``. The loop then runs
the cancellation: asyncpg sends PostgreSQL's cancel request itself (PgBouncer forwards it),
SQLite's statement (in aiosqlite's thread) is interrupted, and the cell ends with a
:class:`asyncio.CancelledError` whose message says what happened.

Signal handlers belong to the main thread: elsewhere, or without a running loop, nothing
is installed and nothing changes.
"""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager, suppress
from dataclasses import dataclass, field
from types import FrameType
from typing import Any, Final

from sqlalchemy.ext.asyncio import AsyncConnection

INTERRUPTED_MESSAGE: Final = (
    "Interrupted (Stop): the query was cancelled in the database; the engine is ready for the next query."
)

_Handler = Callable[[int, FrameType | None], Any]


@dataclass
class _Watch:
    """The handler installed for the open connections of the main thread's loop."""

    loop: asyncio.AbstractEventLoop
    previous: _Handler
    users: int = 0
    interrupted: bool = False
    #: Stops for statements the event loop cannot cancel itself (SQLite's, in a thread).
    drivers: list[Callable[[], Coroutine[Any, Any, None]]] = field(default_factory=list)
    handler: _Handler = field(init=False)

    def __post_init__(self) -> None:
        def handler(signum: int, frame: FrameType | None) -> None:
            self.interrupted = True
            try:
                self.previous(signum, frame)
            finally:
                # The previous handler may have only queued work (ipykernel's call_soon):
                # a write to the loop's self-pipe makes it run now.
                if not self.loop.is_closed():
                    self.loop.call_soon_threadsafe(self._interrupt_drivers)

        self.handler = handler

    def _interrupt_drivers(self) -> None:
        # Queued behind the previous handler's callbacks, so each statement is stopped
        # before the cancelled task runs its cleanup (which would wait for the statement).
        for interrupt in list(self.drivers):
            self.loop.create_task(interrupt())


_watch: _Watch | None = None


@contextmanager
def wake_on_interrupt() -> Iterator[_Watch | None]:
    """While the block runs, SIGINT wakes the event loop so that a cancellation runs at once.

    Yields the watch (``watch.interrupted`` tells whether SIGINT arrived), or ``None`` when
    nothing could be installed: not the main thread, no running loop, or a SIGINT handler
    that is not Python's (ignored or default), which is left alone. Nested and concurrent
    blocks share one handler; the last to leave restores the previous one.
    """
    global _watch
    if threading.current_thread() is not threading.main_thread():
        yield None
        return
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        yield None
        return
    if _watch is None or _watch.loop is not loop:
        previous = signal.getsignal(signal.SIGINT)
        if not callable(previous):
            yield None
            return
        _watch = _Watch(loop, previous)
        signal.signal(signal.SIGINT, _watch.handler)
    watch = _watch
    watch.users += 1
    try:
        yield watch
    finally:
        watch.users -= 1
        if watch.users == 0 and _watch is watch:
            _watch = None
            # Someone may have installed their own handler meanwhile: leave theirs in place.
            if signal.getsignal(signal.SIGINT) is watch.handler:
                signal.signal(signal.SIGINT, watch.previous)


@asynccontextmanager
async def stoppable(
    borrowed: AbstractAsyncContextManager[AsyncConnection], *, owned: bool
) -> AsyncIterator[AsyncConnection]:
    """A borrowed connection that SIGINT can stop, cleaned up after the interruption.

    ``owned`` says the connection came from an engine for this block alone: when the block
    is interrupted (cancelled, or ``KeyboardInterrupt``), that connection is invalidated
    rather than returned to the pool, so no connection that was stopped mid-statement
    (mid-``COPY`` included, which SQLAlchemy never sees) is handed out again; the pool
    opens a fresh one next time. A caller's own connection or session is left to its
    owner, as always. A cancellation caused by SIGINT gets a message saying so.
    """
    with wake_on_interrupt() as watch:
        try:
            async with borrowed as conn, _thread_stopped(conn, watch):
                try:
                    yield conn
                except (asyncio.CancelledError, KeyboardInterrupt):
                    if owned:
                        # Already failing: a second error while discarding must not hide the first.
                        with suppress(Exception):
                            await conn.invalidate()
                    raise
        except asyncio.CancelledError as exc:
            if watch is not None and watch.interrupted:
                exc.args = (INTERRUPTED_MESSAGE,)
            raise


@asynccontextmanager
async def _thread_stopped(conn: AsyncConnection, watch: _Watch | None) -> AsyncIterator[None]:
    """Lets SIGINT stop the connection's statement when the loop's cancellation cannot.

    aiosqlite runs each statement in its own thread, which a cancelled task does not stop
    (and closing the connection waits for it): SQLite's ``interrupt()`` does. asyncpg needs
    nothing: cancelling the task makes it send PostgreSQL's cancel request.
    """
    if watch is None or conn.dialect.driver != "aiosqlite":
        yield
        return
    driver: Any = (await conn.get_raw_connection()).driver_connection
    interrupt: Callable[[], Coroutine[Any, Any, None]] = driver.interrupt
    watch.drivers.append(interrupt)
    try:
        yield
    finally:
        watch.drivers.remove(interrupt)
