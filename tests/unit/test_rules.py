"""The rule table is complete and every layer agrees with it (no database)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy import CheckConstraint, ColumnElement
from sqlalchemy import column as sql_column

from todo_data import rules
from todo_data.models import Task, TaskBase
from todo_data.rules import EXISTING_VALUE, RULES, STRIPPED, WHITESPACE, Rule, is_blank, rule_of, rules_of

table = Task.__table__  # type: ignore[attr-defined]
DIALECTS = ("sqlite", "postgresql")
REPO_ROOT = Path(__file__).resolve().parents[2]


def rule_id(rule: Rule) -> str:
    return f"{rule.column}.{rule.kind}"


def test_whitespace_is_exactly_what_str_strip_removes() -> None:
    every_space = {chr(code) for code in range(sys.maxunicode + 1) if chr(code).isspace()}
    assert set(WHITESPACE) == every_space
    assert len(WHITESPACE) == len(every_space)  # no character listed twice
    assert WHITESPACE.strip() == ""


@pytest.mark.parametrize("text", ["\x1e", "\x1c\x1d\x1f", "\x85", "\u3000", " \t\n\r\x0b\x0c", "\u2028\u2029"])
def test_blank_is_empty_after_str_strip(text: str) -> None:
    assert is_blank(text) and is_blank("") and not is_blank(f"{text}a{text}")


def test_every_column_of_the_table_has_rules_and_every_rule_a_column() -> None:
    assert {rule.column for rule in RULES} == {column.name for column in table.columns}


def test_rules_are_named_uniquely_per_column() -> None:
    names = [rule_id(rule) for rule in RULES]
    assert len(names) == len(set(names))
    assert rule_of("title", "not_blank").message == "must not be blank"
    with pytest.raises(KeyError, match="no rule 'nope' on 'title'"):
        rule_of("title", "nope")


@pytest.mark.parametrize("rule", RULES, ids=rule_id)
def test_a_rule_the_database_enforces_has_probes_and_only_such_a_rule(rule: Rule) -> None:
    assert bool(rule.probes) == (rule.enforced_by is not None)


@pytest.mark.parametrize("rule", [rule for rule in RULES if rule.enforced_by], ids=rule_id)
def test_a_rule_the_database_enforces_can_be_looked_for_on_both_databases(rule: Rule) -> None:
    # Dropping the constraint (or another client writing while it was missing) can break
    # it anywhere, so violations must be able to find such rows on every backend.
    for dialect in DIALECTS:
        assert isinstance(rule.violated(sql_column(rule.column), dialect), ColumnElement)


@pytest.mark.parametrize(
    ("rule", "value"),
    [(rule, value) for rule in RULES for value in rule.probes if value is not EXISTING_VALUE],
    ids=lambda item: rule_id(item) if isinstance(item, Rule) else repr(item)[:12],
)
def test_every_probe_value_breaks_its_rule_in_python_too(rule: Rule, value: Any) -> None:
    if rule.accepts is not None and value is not None:
        held = value.strip() if rule.column in STRIPPED else value
        assert not rule.accepts(held)
    with pytest.raises(ValidationError) as exc:
        Task(**{"user_id": "u", "title": "t", rule.column: value})
    assert [error["loc"] for error in exc.value.errors()] == [(rule.column,)]


def test_the_model_table_carries_exactly_the_rules_constraints() -> None:
    declared = {
        str(constraint.name): str(constraint.sqltext)
        for constraint in table.constraints
        if isinstance(constraint, CheckConstraint)
    }
    assert declared == {rule.check.name: rule.check.sql for rule in RULES if rule.check}
    assert declared == {check.name: check.sql for check in rules.CHECK_RULES}
    for column in table.columns:
        assert column.nullable == rules.nullable(column.name), column.name
    assert [column.name for column in table.primary_key] == [rule.column for rule in RULES if rule.primary_key]


# A value each Python check refuses that its field's type lets through; for the kinds in
# TYPE_FIRST the field's type itself refuses it first (pydantic's enum and AwareDatetime).
BREAKERS: dict[str, Any] = {
    "no_nul": "a\x00b",
    "valid_unicode": "a\ud800b",
    "known_status": "archived",
    "timezone_aware": datetime(2024, 1, 1),
    "utc_range": datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=5))),
}
TYPE_FIRST = {"known_status", "timezone_aware"}


@pytest.mark.parametrize("rule", [rule for rule in RULES if rule.accepts and rule.kind != "required"], ids=rule_id)
def test_a_value_breaking_a_python_check_is_refused_naming_the_field_and_the_rule(rule: Rule) -> None:
    value = next((v for v in rule.probes if v is not None), BREAKERS.get(rule.kind))
    assert rule.accepts is not None and not rule.accepts(value)
    with pytest.raises(ValidationError) as exc:
        Task(**{"user_id": "u", "title": "t", rule.column: value})
    (error,) = exc.value.errors()
    assert error["loc"] == (rule.column,)
    if rule.kind not in TYPE_FIRST:
        assert (error["type"], error["msg"]) == (rule.kind, rule.message)


def test_the_input_schema_states_the_limits() -> None:
    properties = TaskBase.model_json_schema()["properties"]
    assert properties["title"]["maxLength"] == rules.MAX_TITLE_LENGTH
    assert properties["title"]["minLength"] == 1
    assert properties["user_id"]["maxLength"] == rules.MAX_USER_ID_LENGTH
    assert properties["description"]["anyOf"][0]["maxLength"] == rules.MAX_DESCRIPTION_LENGTH


def test_sqlite_only_and_postgresql_only_rules_say_so() -> None:
    nul = rule_of("title", "no_nul").violated(sql_column("title"), "postgresql")
    assert nul is None  # PostgreSQL text cannot hold NUL
    assert rule_of("created_at", "utc_text").violated(sql_column("created_at"), "postgresql") is None
    assert rule_of("created_at", "timezone_aware").violated(sql_column("created_at"), "sqlite") is None
    assert all(
        rule.violated(sql_column(rule.column), d) is None
        for rule in RULES
        if rule.kind == "valid_unicode"
        for d in DIALECTS
    )


def test_rules_of_keeps_the_tables_order() -> None:
    assert [rule.kind for rule in rules_of("title")] == [
        "required",
        "not_blank",
        "max_length",
        "no_nul",
        "valid_unicode",
    ]


# ------------------------------------------------------------ revisions are history


def project_copy(root: Path, *, title_limit: int | None = None) -> Path:
    """The library and its migrations copied to ``root``, optionally with another title limit."""
    for name in ("todo_data", "alembic"):
        shutil.copytree(REPO_ROOT / name, root / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO_ROOT / "alembic.ini", root / "alembic.ini")
    if title_limit is not None:
        source = root / "todo_data" / "rules.py"
        line = f"MAX_TITLE_LENGTH: Final = {rules.MAX_TITLE_LENGTH}\n"
        assert source.read_text().count(line) == 1
        source.write_text(source.read_text().replace(line, f"MAX_TITLE_LENGTH: Final = {title_limit}\n"))
    return root


# Run inside a project copy: the offline SQL of every revision on both dialects, then the
# drift of a SQLite database migrated by those revisions, as JSON.
HISTORY_SCRIPT = """
import asyncio, contextlib, io, json, sys
from alembic.config import main as alembic
from todo_data import create_engine, migrations, rules

offline = {}
for url in ("sqlite:///offline.db", "postgresql://user@host/db"):
    for command in (["upgrade", "head"], ["downgrade", "head:base"]):
        with contextlib.redirect_stdout(io.StringIO()) as sql:
            alembic(argv=["-x", f"url={url}", *command, "--sql"])
        offline[f"{url} {command[0]}"] = sql.getvalue()

async def drift():
    engine = create_engine(sys.argv[1])
    await migrations.upgrade(engine)
    frame = await migrations.drift(engine)
    await engine.dispose()
    return [[row.operation, row.name, row.detail] for row in frame.itertuples()]

print(json.dumps({"limit": rules.MAX_TITLE_LENGTH, "offline": offline, "drift": asyncio.run(drift())}))
"""


def history_of(project: Path, database: Path) -> dict[str, Any]:
    """HISTORY_SCRIPT run in ``project``, importing that copy's todo_data (not measured by coverage)."""
    environment = {key: value for key, value in os.environ.items() if not key.startswith(("COVERAGE_", "COV_CORE"))}
    result = subprocess.run(
        [sys.executable, "-c", HISTORY_SCRIPT, f"sqlite:///{database}"],
        cwd=project,
        env={**environment, "PYTHONPATH": str(project)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    history: dict[str, Any] = json.loads(result.stdout)
    return history


def test_a_changed_limit_rewrites_no_revision_and_shows_as_drift(tmp_path: Path) -> None:
    today = history_of(project_copy(tmp_path / "today"), tmp_path / "today.db")
    changed = history_of(project_copy(tmp_path / "changed", title_limit=300), tmp_path / "changed.db")

    assert (today["limit"], changed["limit"]) == (rules.MAX_TITLE_LENGTH, 300)  # the copy really changed
    assert len(today["offline"]) == 4
    assert changed["offline"] == today["offline"]  # every revision's DDL, up and down, both dialects
    assert (
        "CONSTRAINT ck_tasks_title_max_length CHECK (length(title) <= 200)"
        in today["offline"]["postgresql://user@host/db upgrade"]
    )
    assert today["drift"] == []
    assert changed["drift"] == [
        [
            "modify_check",
            "ck_tasks_title_max_length",
            "CHECK ck_tasks_title_max_length: the database has (length(title) <= 200), the model "
            "(length(title) <= 300): change the model, or write a revision that changes the database "
            "(migrations.new_revision(url, message))",
        ]
    ]
