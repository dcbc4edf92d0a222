"""The todo-data command, run as users run it: a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from todo_data.testing import free_port


def todo_data(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "todo_data.cli", *args],
        cwd=cwd,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def test_demo_on_the_embedded_sqlite_default_migrates_inserts_and_prints(tmp_path: Path) -> None:
    result = todo_data("demo", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "todo_data.db").is_file()
    assert "Write the quarterly report" in result.stdout
    assert 'SQLite database "todo_data.db"' in result.stdout


def test_unreachable_database_is_one_line_without_traceback_or_password(tmp_path: Path) -> None:
    url = f"postgresql://analyst:hunter2@127.0.0.1:{free_port()}/neondb?connect_timeout=2"
    result = todo_data("demo", "--database-url", url, cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith('error: Could not connect to database "neondb" on 127.0.0.1')
    assert "hunter2" not in result.stdout + result.stderr
    assert "Traceback" not in result.stderr


def test_malformed_url_from_the_environment_is_reported(tmp_path: Path) -> None:
    result = todo_data("demo", cwd=tmp_path, env={"DATABASE_URL": "postgresql://u:hunter2@h:port/db"})
    assert result.returncode == 1
    assert "port is not a number" in result.stderr and "hunter2" not in result.stderr


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    result = todo_data("--debug", "demo", "--database-url", "mysql://u:p@h/db", cwd=tmp_path)
    assert result.returncode == 1
    assert "Traceback" in result.stderr and "SettingsError" in result.stderr
