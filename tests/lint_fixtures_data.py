"""The lint fixtures (tests/lint_fixtures/<rule>/{bad,good}.sql), for the tests that read them."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).parent / "lint_fixtures"
FIXTURES = sorted(path.name for path in ROOT.iterdir() if path.is_dir())


def fixture_path(rule: str, twin: str) -> Path:
    """The ``bad`` or ``good`` script of ``rule``."""
    return ROOT / rule / f"{twin}.sql"


def fixture_sql(rule: str, twin: str) -> str:
    """The text of the ``bad`` or ``good`` script of ``rule``."""
    return fixture_path(rule, twin).read_text()
