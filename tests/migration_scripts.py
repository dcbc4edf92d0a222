"""Alembic script directories made for a test: the project's env.py and first revision, then fixtures.

``migrations.lint``, ``trace`` and ``verify_roundtrip`` take ``script_location=``; these
directories are what they are pointed at, so each hazard has a real revision to find.
"""

from __future__ import annotations

import shutil
import textwrap
from dataclasses import dataclass
from pathlib import Path

from todo_data.migrations import script_location

PROJECT = script_location()
FIRST = "0001"  # the project's revision that creates the tasks table


@dataclass(frozen=True)
class Revision:
    """A fixture revision: its id and the bodies of upgrade() and downgrade() (Python, using op and sa)."""

    id: str
    upgrade: str
    downgrade: str = "pass"


def make_scripts(directory: Path, *revisions: Revision) -> Path:
    """A script directory: the project's env.py, template and revision 0001, then ``revisions`` in order."""
    versions = directory / "versions"
    versions.mkdir(parents=True)
    shutil.copy(PROJECT / "env.py", directory / "env.py")
    shutil.copy(PROJECT / "script.py.mako", directory / "script.py.mako")
    shutil.copy(next((PROJECT / "versions").glob(f"{FIRST}_*.py")), versions)
    previous = FIRST
    for revision in revisions:
        (versions / f"{revision.id}_fixture.py").write_text(
            f'"""Fixture revision {revision.id}."""\n\n'
            "import sqlalchemy as sa\n\nfrom alembic import op\n\n"
            f"revision = {revision.id!r}\ndown_revision = {previous!r}\n"
            "branch_labels = None\ndepends_on = None\n\n\n"
            f"def upgrade() -> None:\n{textwrap.indent(textwrap.dedent(revision.upgrade).strip(), '    ')}\n\n\n"
            f"def downgrade() -> None:\n{textwrap.indent(textwrap.dedent(revision.downgrade).strip(), '    ')}\n"
        )
        previous = revision.id
    return directory
