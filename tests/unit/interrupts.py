"""Ctrl-C on demand: a SIGINT sent soon, a statement that never ends, a watchdog."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable

# A statement SQLite would run for hours: counting to 10^12.
ENDLESS = (
    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000000000000) SELECT count(*) FROM n"
)


class Watchdog:
    """Runs ``action`` from another thread after ``seconds`` unless stopped first; ``fired`` tells."""

    def __init__(self, seconds: float, action: Callable[[], None]) -> None:
        self.fired = False

        def fire() -> None:
            self.fired = True
            action()

        self._timer = threading.Timer(seconds, fire)
        self._timer.start()

    def stop(self) -> None:
        self._timer.cancel()


def sigint_soon() -> None:
    """SIGINT to this process from another thread, while the main thread's loop sleeps."""
    threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT)).start()
