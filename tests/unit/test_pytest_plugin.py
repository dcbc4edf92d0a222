"""The pytest plugin is registered, imports light, and costs a session that uses none of it nothing."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

from tests.helpers import app_pytest


def test_the_plugin_is_registered_as_a_pytest11_entry_point() -> None:
    found = [entry for entry in importlib.metadata.entry_points(group="pytest11") if entry.name == "todo_data"]
    assert [entry.value for entry in found] == ["todo_data.pytest_plugin"]


def test_a_session_that_asks_for_no_database_loads_no_database_code(tmp_path: Path) -> None:
    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "pytest.ini").write_text("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    (suite / "test_plain.py").write_text(
        "import sys\n\n\n"
        "def test_nothing_of_the_database_was_imported():\n"
        "    assert 'todo_data.database' not in sys.modules\n"
        "    assert 'todo_data.testing' not in sys.modules\n"
    )
    result = app_pytest(tmp_path, tests=suite)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout


def test_the_options_are_in_pytest_help(tmp_path: Path) -> None:
    result = app_pytest(tmp_path, "--help")
    assert "--todo-migrations" in result.stdout
    assert "--todo-database-url" in result.stdout
