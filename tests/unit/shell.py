"""An IPython shell with the %%todo_sql magic loaded, and a cell run in it."""

from __future__ import annotations

from typing import Any

from IPython.core.completer import provisionalcompleter
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output
from traitlets.config import Config


def ipython_shell() -> InteractiveShell:
    """The process's IPython shell, keeping its history in memory (not in the home directory)."""
    config = Config()
    config.HistoryManager.hist_file = ":memory:"
    return InteractiveShell.instance(config=config)


def cell(shell: InteractiveShell, sql: str, line: str = "") -> list[dict[str, Any]]:
    """Run ``%%todo_sql line`` on ``sql``; the rich outputs it displayed (mime type -> data)."""
    with capture_output() as captured:
        shell.run_cell_magic("todo_sql", line, sql)
    return [output.data for output in captured.outputs]


def completions(shell: InteractiveShell, code: str, cursor: int) -> list[tuple[str, str]]:
    """What IPython's completer offers at ``cursor`` in ``code`` (as a kernel answers complete_request): text, type."""
    with provisionalcompleter():
        found = shell.Completer.completions(code, cursor)
        return [(completion.text, completion.type) for completion in found]
