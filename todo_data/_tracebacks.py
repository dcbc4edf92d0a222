"""Failures in one line in a notebook cell, as the CLI prints them.

A cell that fails with a :class:`~todo_data.errors.TodoDataError`, or that Stop
interrupted while a ``todo_data`` query ran, would show IPython's traceback: 45 lines
through asyncpg and asyncio before the one line that says what happened.
:func:`show_failures_in_one_line` registers IPython's custom exception display
(``shell.set_custom_exc``) so such a cell shows that one line, ``QueryError: …`` or
``CancelledError: Interrupted (Stop): …``; ``%tb`` still shows the whole traceback. Any
other exception, an interruption of something else among them, shows as usual.

``%load_ext todo_data`` and :func:`todo_data.demo.open_database` (the first cell of every
notebook) call it. IPython is imported only when a shell is running.
"""

from __future__ import annotations

import asyncio
import sys
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final

from todo_data._interrupt import INTERRUPTED_MESSAGE
from todo_data.errors import TodoDataError

if TYPE_CHECKING:
    from IPython.core.interactiveshell import InteractiveShell

#: The exceptions whose display is ours (an interruption only when it carries our message).
HANDLED: Final = (TodoDataError, KeyboardInterrupt, asyncio.CancelledError)
_RED, _RESET = "\x1b[0;31m", "\x1b[0m"


def show_failures_in_one_line(shell: InteractiveShell) -> None:
    """Have ``shell`` show a ``TodoDataError`` or a Stop of a query as one line (idempotent).

    A custom exception display registered before (by another extension) keeps handling
    its own exceptions.
    """
    previous: Any = shell.CustomTB if shell.custom_exceptions else None
    if previous is not None and getattr(shell, "_todo_data_custom_tb", None) is previous:
        return  # registered already
    others: tuple[type[BaseException], ...] = tuple(shell.custom_exceptions)

    def handler(
        shell: InteractiveShell,
        etype: type[BaseException],
        value: BaseException,
        tb: TracebackType | None,
        tb_offset: int | None = None,
    ) -> list[str] | None:
        if ours(value):
            return _handler(shell, etype, value, tb, tb_offset)
        if previous is not None and isinstance(value, others):
            stb: list[str] | None = previous(etype, value, tb, tb_offset=tb_offset)
            return stb
        shell.showtraceback((etype, value, tb), tb_offset=tb_offset, running_compiled_code=True)
        return None

    shell.set_custom_exc((*HANDLED, *others), handler)  # type: ignore[no-untyped-call]
    shell._todo_data_custom_tb = shell.CustomTB  # type: ignore[attr-defined]


def show_failures_in_one_line_in_ipython() -> None:
    """:func:`show_failures_in_one_line` on the running IPython shell, if there is one."""
    if "IPython" not in sys.modules:
        return  # not in a notebook or an IPython terminal: nothing to change
    from IPython import get_ipython

    shell = get_ipython()
    if shell is not None:
        show_failures_in_one_line(shell)


def ours(value: BaseException) -> bool:
    """A ``TodoDataError``, or an interruption that stopped a ``todo_data`` query."""
    if isinstance(value, TodoDataError):
        return True
    return isinstance(value, KeyboardInterrupt | asyncio.CancelledError) and value.args == (INTERRUPTED_MESSAGE,)


def _handler(
    shell: InteractiveShell,
    etype: type[BaseException],
    value: BaseException,
    tb: TracebackType | None,
    tb_offset: int | None = None,
) -> list[str]:
    # Where %tb (and %debug) look for the last exception.
    sys.last_type, sys.last_value, sys.last_traceback = etype, value, tb
    if sys.version_info >= (3, 12):
        sys.last_exc = value
    stb = [f"{_RED}{etype.__name__}{_RESET}: {value}"]
    shell._showtraceback(etype, value, stb)  # a kernel sends it as the cell's error
    return stb
