"""The database refreshes updated_at on every UPDATE, so raw UPDATEs keep it true.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29

An UPDATE that does not change ``updated_at`` itself gets the time of the statement;
one that sets it (the ORM writes the same instant it keeps on the object) is left as it
is. PostgreSQL: a BEFORE UPDATE trigger function. SQLite: an AFTER UPDATE trigger that
writes the model's canonical text (``YYYY-MM-DD HH:MM:SS.ffffff``, naive UTC) and whose
WHEN clause stops it from firing on its own update.

Creating a trigger takes a SHARE ROW EXCLUSIVE lock on ``tasks`` for an instant (writes
wait, reads do not) and rewrites nothing. The SQL is stated here, not imported:
``todo_data.triggers`` declares what today's code expects and ``drift`` compares.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

POSTGRESQL_FUNCTION = """
CREATE FUNCTION tasks_set_updated_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.updated_at IS NOT DISTINCT FROM OLD.updated_at THEN
        NEW.updated_at := statement_timestamp();
    END IF;
    RETURN NEW;
END
$$
"""

POSTGRESQL_TRIGGER = """
CREATE TRIGGER trg_tasks_updated_at BEFORE UPDATE ON tasks
FOR EACH ROW EXECUTE FUNCTION tasks_set_updated_at()
"""

SQLITE_TRIGGER = """CREATE TRIGGER trg_tasks_updated_at AFTER UPDATE ON tasks FOR EACH ROW
WHEN NEW.updated_at IS OLD.updated_at
    AND OLD.updated_at IS NOT strftime('%Y-%m-%d %H:%M:%f000', 'now')
BEGIN
    UPDATE tasks SET updated_at = strftime('%Y-%m-%d %H:%M:%f000', 'now') WHERE rowid = NEW.rowid;
END"""


def upgrade() -> None:
    if _postgresql():
        op.execute(POSTGRESQL_FUNCTION)
        op.execute(POSTGRESQL_TRIGGER)
    else:
        op.execute(SQLITE_TRIGGER)


def downgrade() -> None:
    if _postgresql():
        op.execute("DROP TRIGGER trg_tasks_updated_at ON tasks")
        op.execute("DROP FUNCTION tasks_set_updated_at()")
    else:
        op.execute("DROP TRIGGER trg_tasks_updated_at")


def _postgresql() -> bool:
    return op.get_context().dialect.name == "postgresql"
