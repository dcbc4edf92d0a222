"""migrations.lint_sql: each rule's dangerous twin flagged and its safe twin not, positions, suppressions, options."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.lint_fixtures_data import FIXTURES, fixture_sql
from todo_data import migrations
from todo_data.errors import InvalidArgumentError, SettingsError


def test_every_rule_has_a_fixture_and_every_fixture_a_rule() -> None:
    assert set(FIXTURES) == set(migrations.LINT_RULES)


@pytest.mark.parametrize("rule", sorted(FIXTURES))
def test_the_dangerous_twin_is_flagged_and_the_safe_twin_is_not(rule: str) -> None:
    bad = migrations.lint_sql(fixture_sql(rule, "bad"), rules="all")
    good = migrations.lint_sql(fixture_sql(rule, "good"), rules="all")
    assert rule in set(bad["rule"]), bad.to_string()
    assert rule not in set(good["rule"]), good.to_string()


def test_a_finding_has_every_column_and_the_line_and_column_of_its_statement() -> None:
    sql = (
        "SET lock_timeout = '1s';\nSET statement_timeout = '1min';\n\n  CREATE INDEX ix_tasks_title ON tasks (title);\n"
    )
    frame = migrations.lint_sql(sql, file="m.sql")
    assert list(frame.columns) == list(migrations.LINT_COLUMNS)
    (row,) = frame.to_dict("records")
    assert row["file"] == "m.sql" and row["revision"] is None
    assert (row["line"], row["column"]) == (4, 3)
    assert row["statement"] == "CREATE INDEX ix_tasks_title ON tasks (title)"
    assert row["table"] == "tasks" and row["severity"] == "error"
    assert row["squawk"] == "require-concurrent-index-creation"
    assert "CONCURRENTLY" in row["fix"] and "SHARE lock on tasks" in row["message"]


def test_one_bad_statement_does_not_hide_the_others() -> None:
    frame = migrations.lint_sql("SET lock_timeout='1s'; SET statement_timeout='1s';\nSELEC 1;\nDROP TABLE projects;")
    assert frame[["line", "rule"]].values.tolist() == [[2, "syntax_error"], [3, "drop_table"]]


def test_timeouts_are_asked_for_once_before_the_first_locking_statement() -> None:
    sql = "CREATE TABLE notes (id bigint);\nCREATE INDEX ix_notes ON notes (id);\nALTER TABLE tasks ADD COLUMN x text;"
    frame = migrations.lint_sql(sql)
    assert frame[["line", "rule"]].values.tolist() == [[3, "missing_lock_timeout"], [3, "missing_statement_timeout"]]
    zero = migrations.lint_sql("SET lock_timeout = 0;\nSET statement_timeout = '5s';\nDROP INDEX ix;")
    assert "missing_lock_timeout" in set(zero["rule"])


def test_style_rules_are_off_by_default_and_a_list_selects() -> None:
    sql = "CREATE TABLE projects (id serial PRIMARY KEY, name varchar(20), at timestamp, meta json);"
    assert migrations.lint_sql(sql)["rule"].tolist() == ["json_column"]
    chosen = migrations.lint_sql(sql, rules=["prefer_identity", "prefer-timestamp-tz"])
    assert sorted(chosen["rule"]) == ["prefer_identity", "prefer_timestamptz"]


def test_an_unknown_rule_is_refused_with_the_known_names() -> None:
    with pytest.raises(InvalidArgumentError, match=r"unknown lint rule 'no_such_rule'.*drop_table"):
        migrations.lint_sql("SELECT 1", rules=["no_such_rule"])
    with pytest.raises(InvalidArgumentError, match="postgres_version"):
        migrations.lint_sql("SELECT 1", postgres_version="sixteen")


def test_the_postgres_version_decides_the_version_rules() -> None:
    constant_default = (
        "SET lock_timeout='1s'; SET statement_timeout='1s';\nALTER TABLE tasks ADD COLUMN n bigint DEFAULT 0;"
    )
    assert migrations.lint_sql(constant_default, postgres_version=11).empty
    assert migrations.lint_sql(constant_default, postgres_version="10.4")["rule"].tolist() == [
        "add_column_volatile_default"
    ]
    checked = fixture_sql("set_not_null", "good")
    assert migrations.lint_sql(checked, postgres_version=12).empty
    assert migrations.lint_sql(checked, postgres_version=11)["rule"].tolist() == ["set_not_null"]
    enum = "BEGIN;\nALTER TYPE mood ADD VALUE 'meh' AFTER 'ok';\nCOMMIT;"
    assert migrations.lint_sql(enum, rules=["enum_value_in_transaction"], postgres_version=11)["rule"].tolist() == [
        "enum_value_in_transaction"
    ]
    assert migrations.lint_sql(enum, rules=["enum_value_in_transaction"], postgres_version=16).empty


def test_a_suppression_with_a_reason_hides_its_rule_on_its_statement_only() -> None:
    sql = (
        "SET lock_timeout='1s'; SET statement_timeout='1s';\n"
        "-- todo-data: ignore drop_table, drop_column -- both emptied in 0005\n"
        "DROP TABLE projects;\n"
        "DROP TABLE labels;\n"
    )
    frame = migrations.lint_sql(sql)
    assert frame[["line", "rule"]].values.tolist() == [[2, "unused_suppression"], [4, "drop_table"]]
    assert frame["table"].iloc[1] == "labels"
    assert "drop_column" in frame["message"].iloc[0]


def test_suppressions_without_reason_or_with_unknown_rules_are_errors() -> None:
    frame = migrations.lint_sql("-- todo-data: ignore drop_tables -- typo\nDROP TABLE projects;", rules=["drop_table"])
    assert sorted(frame["rule"]) == ["drop_table", "invalid_suppression"]
    assert "unknown rule 'drop_tables'" in frame.set_index("rule").loc["invalid_suppression", "message"]


def test_file_and_squawk_suppressions_are_honoured() -> None:
    sql = (
        "-- todo-data: ignore-file drop_table\nDROP TABLE a;\nDROP TABLE b;\n"
        "-- squawk-ignore ban-drop-column\nALTER TABLE t DROP COLUMN c;"
    )
    assert migrations.lint_sql(sql, rules=["drop_table", "drop_column"]).empty
    trailing = "ALTER TABLE t DROP COLUMN c; -- todo-data: ignore drop_column -- unused since 0004\nDROP TABLE d;"
    assert migrations.lint_sql(trailing, rules=["drop_table", "drop_column"])["rule"].tolist() == ["drop_table"]


def test_configuration_is_read_from_the_nearest_pyproject(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[tool.todo-data.lint]\nselect = ["drop_table", "prefer_identity"]\nignore = ["drop_table"]\n'
        'postgres-version = "10"\n'
    )
    inner = tmp_path / "a" / "b"
    inner.mkdir(parents=True)
    monkeypatch.chdir(inner)
    sql = "CREATE TABLE p (id serial);\nDROP TABLE q;\nALTER TABLE t ADD COLUMN n bigint DEFAULT 0;"
    assert migrations.lint_sql(sql)["rule"].tolist() == ["prefer_identity"]
    assert migrations.lint_sql(sql, rules=["add_column_volatile_default"])["rule"].tolist() == [
        "add_column_volatile_default"
    ]  # the configured version, 10, rewrites for any default
    (tmp_path / "pyproject.toml").write_text('[tool.todo-data.lint]\nselect = ["nope"]\n')
    with pytest.raises(SettingsError, match=r"pyproject.toml.*unknown lint rule 'nope'"):
        migrations.lint_sql(sql)


def test_identifier_length_counts_bytes_and_names_the_cut() -> None:
    name = "é" * 32  # 64 bytes in 32 characters
    frame = migrations.lint_sql(f'CREATE TABLE "{name}" (id bigint);', rules=["identifier_too_long"])
    assert frame["rule"].tolist() == ["identifier_too_long"]
    assert "64 bytes" in frame["message"].iloc[0]
    assert migrations.lint_sql('CREATE TABLE "' + "é" * 31 + '" (id bigint);', rules=["identifier_too_long"]).empty


def test_odd_text_is_judged_without_crashing() -> None:
    frame = migrations.lint_sql("SELECT 'unclosed")
    assert frame["rule"].tolist() == ["syntax_error"]
    assert migrations.lint_sql("").empty
    assert migrations.lint_sql("-- only a comment\n").empty
    with pytest.raises(InvalidArgumentError):
        migrations.lint_sql(b"DROP TABLE x")  # type: ignore[arg-type]
