"""migrations.lint: every rule caught in a fixture revision, and a safe twin of each not flagged."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from tests.migration_scripts import Revision, make_scripts
from todo_data import migrations
from todo_data.errors import MigrationError

CIC = "with op.get_context().autocommit_block():\n    "

# rule -> (a revision that breaks it, its safe twin)
CASES: dict[str, tuple[str, str]] = {
    "create_index_without_concurrently": (
        'op.create_index("ix_tasks_title", "tasks", ["title"])',
        CIC + 'op.create_index("ix_tasks_title_2", "tasks", ["title"], postgresql_concurrently=True)',
    ),
    "concurrently_in_transaction": (
        'op.create_index("ix_tasks_title_3", "tasks", ["title"], postgresql_concurrently=True)',
        CIC + 'op.create_index("ix_tasks_title_4", "tasks", ["title"], postgresql_concurrently=True)',
    ),
    "add_constraint_without_not_valid": (
        'op.create_check_constraint("ck_tasks_short", "tasks", "length(title) < 150")',
        'op.create_check_constraint("ck_tasks_short_2", "tasks", "length(title) < 150", postgresql_not_valid=True)',
    ),
    "add_unique_without_index": (
        'op.create_unique_constraint("uq_tasks_title", "tasks", ["title"])',
        CIC
        + 'op.create_index("ix_tasks_title_u", "tasks", ["title"], unique=True, postgresql_concurrently=True)\n'
        + 'op.execute("ALTER TABLE tasks ADD CONSTRAINT uq_tasks_title_2 UNIQUE USING INDEX ix_tasks_title_u")',
    ),
    "alter_column_type": (
        'op.alter_column("tasks", "title", type_=sa.String(300))',  # text to varchar(300): a rewrite
        'op.add_column("tasks", sa.Column("title_v2", sa.Text(), nullable=True))',
    ),
    "add_column_volatile_default": (
        'op.add_column("tasks", sa.Column("token", sa.Uuid(), server_default=sa.text("gen_random_uuid()")))',
        'op.add_column("tasks", sa.Column("seen_at", sa.DateTime(timezone=True), server_default=sa.text("now()")))',
    ),
    "add_column_not_null_without_default": (
        'op.add_column("tasks", sa.Column("priority", sa.Integer(), nullable=False))',
        'op.add_column("tasks", sa.Column("priority_2", sa.Integer(), nullable=False, server_default="0"))',
    ),
    "set_not_null": (
        'op.alter_column("tasks", "description", nullable=False)',
        'op.execute("ALTER TABLE tasks ADD CONSTRAINT ck_desc CHECK (description IS NOT NULL) NOT VALID")',
    ),
    "drop_column": (
        'op.drop_column("tasks", "priority")',
        'op.create_table("notes", sa.Column("id", sa.Integer(), primary_key=True), sa.Column("x", sa.Text()))\n'
        'op.drop_column("notes", "x")',
    ),
    "drop_table": (
        'op.drop_table("projects")',
        'op.create_table("drafts", sa.Column("id", sa.Integer(), primary_key=True))\nop.drop_table("drafts")',
    ),
    "rename": (
        'op.alter_column("tasks", "title", new_column_name="name")',
        'op.create_table("labels", sa.Column("id", sa.Integer(), primary_key=True))\nop.rename_table("labels", "tags")',
    ),
    "syntax_error": (
        'op.execute("ALTER TABLE tasks ADD COLUMN")',
        'op.execute("ALTER TABLE tasks ADD COLUMN note text")',
    ),
}


@pytest.fixture(scope="module")
def findings(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    revisions = []
    for number, (bad, safe) in enumerate(CASES.values()):
        revisions += [Revision(f"{2 * number + 10:04d}", bad), Revision(f"{2 * number + 11:04d}", safe)]
    directory = make_scripts(tmp_path_factory.mktemp("lint") / "scripts", *revisions)
    return directory, migrations.lint(script_location=directory)


@pytest.mark.parametrize("rule", list(CASES))
def test_each_rule_is_caught_and_its_safe_twin_is_not(rule: str, findings: tuple[Path, pd.DataFrame]) -> None:
    _, frame = findings
    number = list(CASES).index(rule)
    bad, safe = f"{2 * number + 10:04d}", f"{2 * number + 11:04d}"
    assert frame.loc[frame["revision"] == bad, "rule"].tolist() == [rule], frame.to_string()
    assert frame.loc[frame["revision"] == safe].empty, frame.loc[frame["revision"] == safe].to_string()


def test_findings_say_what_breaks_and_how_serious(findings: tuple[Path, pd.DataFrame]) -> None:
    _, frame = findings
    assert list(frame.columns) == list(migrations.LINT_COLUMNS)
    severity = dict(zip(frame["rule"], frame["severity"], strict=True))
    warnings = {"set_not_null", "drop_column", "drop_table", "rename"}
    assert {rule for rule, level in severity.items() if level == "warning"} == warnings
    assert set(severity.values()) == {"error", "warning"}
    by_rule = frame.set_index("rule")
    assert (
        by_rule.loc["create_index_without_concurrently", "statement"] == "CREATE INDEX ix_tasks_title ON tasks (title)"
    )
    assert "ACCESS EXCLUSIVE lock on tasks" in by_rule.loc["alter_column_type", "message"]
    assert "gen_random_uuid()" in by_rule.loc["add_column_volatile_default", "message"]
    assert "autocommit_block" in by_rule.loc["concurrently_in_transaction", "fix"]
    assert by_rule.loc["alter_column_type", "squawk"] == "changing-column-type"


def test_a_finding_points_at_the_op_call_in_the_revision_file(findings: tuple[Path, pd.DataFrame]) -> None:
    directory, frame = findings
    row = frame.set_index("rule").loc["create_index_without_concurrently"]
    path = Path(row["file"])
    assert path.parent == directory / "versions"
    line = path.read_text().splitlines()[row["line"] - 1]
    assert line.strip().startswith("op.create_index(") and row["column"] == line.index("op") + 1


def test_a_python_comment_suppresses_with_a_reason_and_an_unused_one_warns(tmp_path: Path) -> None:
    body = """
        # todo-data: ignore drop_table -- projects moved to the labels service in 0003
        op.drop_table("projects")
        op.drop_table("labels")  # todo-data: ignore drop_column -- wrong rule
        op.drop_table("notes")  # todo-data: ignore drop_table
    """
    frame = migrations.lint(script_location=make_scripts(tmp_path / "scripts", Revision("0002", body)))
    rows = frame[["line", "rule", "table"]].values.tolist()
    assert [rule for _, rule, _ in rows] == ["invalid_suppression", "unused_suppression", "drop_table", "drop_table"]
    assert {table for _, rule, table in rows if rule == "drop_table"} == {"labels", "notes"}


def test_what_earlier_revisions_built_is_known_to_later_ones(tmp_path: Path) -> None:
    scripts = make_scripts(
        tmp_path / "scripts",
        Revision("0002", 'op.add_column("tasks", sa.Column("label", sa.String(50)))'),
        Revision("0003", 'op.alter_column("tasks", "label", type_=sa.String(80))'),  # longer: no rewrite
        Revision("0004", 'op.alter_column("tasks", "label", type_=sa.Text())'),  # no rewrite either
        Revision("0005", 'op.alter_column("tasks", "label", type_=sa.String(10))'),  # shorter: a rewrite
        Revision(
            "0006",
            'op.create_check_constraint("label_nn", "tasks", "label IS NOT NULL", postgresql_not_valid=True)',
        ),
        Revision("0007", 'op.execute("ALTER TABLE tasks VALIDATE CONSTRAINT ck_tasks_label_nn")'),
        Revision("0008", 'op.alter_column("tasks", "label", nullable=False)'),
    )
    frame = migrations.lint(script_location=scripts)
    assert frame[["revision", "rule"]].values.tolist() == [["0005", "alter_column_type"]]
    assert "text to varchar(10) is not binary-compatible" in frame["message"].iloc[0]
    old = migrations.lint(script_location=scripts, postgres_version=11)
    assert old[["revision", "rule"]].values.tolist() == [["0005", "alter_column_type"], ["0008", "set_not_null"]]


def test_a_table_created_in_the_same_revision_is_exempt(tmp_path: Path) -> None:
    body = """
        op.create_table("projects", sa.Column("id", sa.Integer(), primary_key=True), sa.Column("name", sa.Text()))
        op.create_index("ix_projects_name", "projects", ["name"])
        op.create_check_constraint("ck_projects_name", "projects", "length(name) > 0")
        op.add_column("projects", sa.Column("owner", sa.Text(), nullable=False))
        op.alter_column("projects", "name", type_=sa.String(100))
    """
    frame = migrations.lint(script_location=make_scripts(tmp_path / "scripts", Revision("0002", body)))
    assert frame.empty, frame.to_string()


def test_an_invalid_plpgsql_body_is_an_error(tmp_path: Path) -> None:
    body = '''op.execute("""CREATE FUNCTION f() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN NEW.x := 1 RETURN NEW; END $$""")'''
    frame = migrations.lint(script_location=make_scripts(tmp_path / "scripts", Revision("0002", body)))
    assert frame[["revision", "rule", "severity"]].values.tolist() == [["0002", "syntax_error", "error"]]
    assert "PL/pgSQL" in frame["message"].iloc[0]


def test_the_project_revisions_lint_clean() -> None:
    frame = migrations.lint()
    assert frame.empty, frame.to_string()


def test_a_directory_that_is_not_a_script_directory_is_a_one_line_error(tmp_path: Path) -> None:
    with pytest.raises(MigrationError, match="is not an Alembic script directory") as exc:
        migrations.lint(script_location=tmp_path)
    assert "\n" not in str(exc.value)


def test_a_revision_whose_parent_is_unknown_is_a_one_line_error(tmp_path: Path) -> None:
    directory = make_scripts(tmp_path / "scripts", Revision("0002", "pass"))
    orphan = (directory / "versions" / "0002_fixture.py").read_text().replace("'0001'", "'0042'")
    (directory / "versions" / "0002_fixture.py").write_text(orphan)
    with pytest.raises(MigrationError, match="0042") as exc:
        migrations.lint(script_location=directory)
    assert "\n" not in str(exc.value)
