"""Our lint and squawk itself, side by side on the fixtures: the same verdict for every rule both have.

squawk (the squawk-cli package of the dev group) runs once over every fixture; for each
of our rules with a squawk equivalent, and each fixture file, both linters must agree on
whether that hazard is in the file, except where README's "Differences from squawk by
design" says otherwise: those differences are listed here too, and must stay real.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

from tests.lint_fixtures_data import FIXTURES, fixture_path
from todo_data import migrations

# (rule, fixture file) where squawk flags and we do not, on purpose (README says why).
DIFFERENCES = {
    # A table created earlier in the same script has no reader yet: we exempt it, squawk does not.
    ("drop_column", "drop_column/good.sql"),
    ("drop_table", "drop_table/good.sql"),
    ("rename", "rename/good.sql"),
    ("drop_not_null", "drop_not_null/good.sql"),
    # squawk calls a UNIQUE or PRIMARY KEY "missing NOT VALID", which PostgreSQL does not
    # accept for them: ours names the index to build instead.
    ("add_constraint_without_not_valid", "add_unique_without_index/bad.sql"),
    ("add_constraint_without_not_valid", "add_primary_key_without_index/bad.sql"),
    # Our own suppression comment, which squawk does not read.
    ("drop_table", "invalid_suppression/good.sql"),
}
# squawk's rules that are off unless included.
OPT_IN = ("identifier-too-long", "require-timeout-settings")


def squawk_binary() -> str:
    found = shutil.which("squawk", path=str(Path(sys.executable).parent))
    if found is None:
        pytest.fail("squawk is not installed: `uv sync` installs squawk-cli from the dev group")
    return found


@pytest.fixture(scope="module")
def verdicts() -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    files = [fixture_path(rule, twin) for rule in FIXTURES for twin in ("bad", "good")]
    squawk: dict[str, set[str]] = defaultdict(set)
    root = fixture_path(FIXTURES[0], "bad").parent.parent
    # squawk stops at a syntax error, so the file that holds one is read alone.
    for batch in ([f for f in files if "syntax_error" not in str(f)], [f for f in files if "syntax_error" in str(f)]):
        result = subprocess.run(
            [squawk_binary(), "--reporter", "json", "--pg-version", "14", "--include", ",".join(OPT_IN)]
            + [str(f.relative_to(root)) for f in batch],
            capture_output=True,
            text=True,
            cwd=root,
            check=False,
        )
        assert result.returncode in (0, 1), result.stderr
        for item in json.loads(result.stdout):
            squawk[item["file"]].add(item["rule_name"])
    ours: dict[str, set[str]] = {}
    for path in files:
        frame = migrations.lint_sql(path.read_text(), rules="all", postgres_version=14)
        ours[str(path.relative_to(root))] = set(frame["rule"])
    return ours, squawk


def test_squawk_and_we_agree_on_every_rule_both_have_over_every_fixture(
    verdicts: tuple[dict[str, set[str]], dict[str, set[str]]],
) -> None:
    ours, squawk = verdicts
    shared = [rule for rule in migrations.LINT_RULES.values() if rule.squawk_ids]
    disagreements = set()
    for file in ours:
        for rule in shared:
            we_flag = rule.name in ours[file]
            squawk_flags = bool(set(rule.squawk_ids) & squawk[file])
            if we_flag != squawk_flags:
                disagreements.add((rule.name, file, we_flag))
    unexplained = {(rule, file, we) for rule, file, we in disagreements if (rule, file) not in DIFFERENCES}
    assert not unexplained, sorted(unexplained)
    assert {(rule, file) for rule, file, _ in disagreements} == DIFFERENCES  # each listed difference is real


def test_each_rule_with_a_squawk_id_is_one_squawk_catches_in_its_dangerous_twin(
    verdicts: tuple[dict[str, set[str]], dict[str, set[str]]],
) -> None:
    _, squawk = verdicts
    for rule in migrations.LINT_RULES.values():
        if rule.squawk_ids:
            assert set(rule.squawk_ids) & squawk[f"{rule.name}/bad.sql"], rule.name
