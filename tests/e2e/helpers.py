"""What the end-to-end tests share: the command run as a user runs it, and notebooks run by a kernel."""

from __future__ import annotations

import contextlib
import subprocess
import traceback
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from typer.testing import CliRunner

from todo_data.cli import app
from todo_data.settings import get_settings

#: The example notebooks, in order.
NOTEBOOKS = sorted((Path(__file__).resolve().parents[2] / "notebooks").glob("*.ipynb"))


def todo_data(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``todo-data ARGS`` in ``cwd`` with ``env`` added to the environment, as its exit code and output."""
    with contextlib.chdir(cwd):
        get_settings.cache_clear()  # read again from this directory's .env and this environment
        try:
            result = CliRunner().invoke(app, list(args), env={"COLUMNS": "200", **(env or {})})
        finally:
            get_settings.cache_clear()
    stderr = result.stderr
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        # Escaped the command: what the interpreter would print, and its exit code.
        stderr += "".join(traceback.format_exception(result.exception))
    return subprocess.CompletedProcess(["todo-data", *args], result.exit_code, result.stdout, stderr)


def assert_one_line_failure(result: subprocess.CompletedProcess[str], *expected: str, secret: str = "") -> None:
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
    for part in expected:
        assert part in result.stderr
    assert "Traceback" not in result.stderr
    if secret:
        assert secret not in result.stdout + result.stderr


def execute(path: Path, cwd: Path, *, cells: int | None = None) -> nbformat.NotebookNode:
    """The notebook (or its first ``cells`` cells) executed by a kernel started in ``cwd``."""
    notebook = nbformat.read(path, as_version=4)
    notebook.cells = notebook.cells[:cells]
    NotebookClient(notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(cwd)}}).execute()
    return notebook
