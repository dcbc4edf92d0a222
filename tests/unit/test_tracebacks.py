"""One-line failures in IPython: a ``TodoDataError`` or a Stop of a query, and nothing else.

In an IPython shell here; tests/integration/test_interrupt.py stops real kernels.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from typing import Any

import pytest
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

from tests.unit.shell import ipython_shell
from todo_data._interrupt import INTERRUPTED_MESSAGE
from todo_data._tracebacks import show_failures_in_one_line


@pytest.fixture
def shell() -> Iterator[InteractiveShell]:
    ipython = ipython_shell()
    ipython.set_custom_exc((), None)
    ipython.user_ns.update(asyncio=asyncio, INTERRUPTED_MESSAGE=INTERRUPTED_MESSAGE)
    yield ipython
    ipython.set_custom_exc((), None)
    ipython._todo_data_custom_tb = None  # type: ignore[attr-defined]


def shown(shell: InteractiveShell, code: str) -> list[str]:
    """The lines a cell printed (without colours)."""
    with capture_output() as captured:
        result = shell.run_cell(code)
    assert not result.success
    return [re.sub(r"\x1b\[[0-9;]*m", "", line) for line in captured.stdout.splitlines() if line.strip()]


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("from todo_data import QueryError\nraise QueryError('no such table: x')", "QueryError: no such table: x"),
        ("raise asyncio.CancelledError(INTERRUPTED_MESSAGE)", f"CancelledError: {INTERRUPTED_MESSAGE}"),
        ("raise KeyboardInterrupt(INTERRUPTED_MESSAGE)", f"KeyboardInterrupt: {INTERRUPTED_MESSAGE}"),
        ("async def f():\n    raise asyncio.CancelledError(INTERRUPTED_MESSAGE)\nawait f()", "CancelledError: "),
    ],
)
def test_a_todo_data_failure_or_a_stopped_query_is_one_line(shell: InteractiveShell, code: str, expected: str) -> None:
    show_failures_in_one_line(shell)
    (line,) = shown(shell, code)
    assert expected in line and "Traceback" not in line


def test_the_whole_traceback_is_still_there_for_tb(shell: InteractiveShell) -> None:
    show_failures_in_one_line(shell)
    shown(shell, "def deep():\n    from todo_data import QueryError\n    raise QueryError('x')\ndeep()")
    with capture_output() as captured:
        shell.run_line_magic("tb", "")
    text = re.sub(r"\x1b\[[0-9;]*m", "", captured.stdout)
    assert "Traceback" in text and "in deep()" in text and "raise QueryError('x')" in text


@pytest.mark.parametrize("code", ["1/0", "raise KeyboardInterrupt", "raise asyncio.CancelledError('elsewhere')"])
def test_any_other_failure_shows_its_traceback_as_usual(shell: InteractiveShell, code: str) -> None:
    show_failures_in_one_line(shell)
    assert len(shown(shell, code)) > 2


def test_registering_twice_changes_nothing_and_another_handler_keeps_its_exceptions(shell: InteractiveShell) -> None:
    seen: list[Any] = []

    def theirs(shell: InteractiveShell, etype: type, value: BaseException, tb: Any, tb_offset: Any = None) -> None:
        seen.append(value)
        print("their handler")

    shell.set_custom_exc((LookupError,), theirs)
    show_failures_in_one_line(shell)
    registered = shell.CustomTB
    show_failures_in_one_line(shell)
    assert shell.CustomTB is registered
    assert shown(shell, "raise KeyError('k')") == ["their handler"] and len(seen) == 1
    (line,) = shown(shell, "from todo_data import QueryError\nraise QueryError('q')")
    assert "QueryError: q" in line
