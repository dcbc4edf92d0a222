"""Create the tasks table with its named constraints and indexes.

Revision ID: 0001
Revises:
Create Date: 2026-11-25

A revision is history: it states the table, limits, names and CHECK expressions as they
were when it was written, and never imports today's ``todo_data.rules``. A rule changed
since then is a new revision; ``todo_data.migrations.drift`` shows the difference until
one exists.
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "tasks",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Text(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tasks")),
        sa.CheckConstraint("length(trim(user_id)) > 0", name=op.f("ck_tasks_user_id_not_empty")),
        sa.CheckConstraint("length(user_id) <= 255", name=op.f("ck_tasks_user_id_max_length")),
        sa.CheckConstraint("length(trim(title)) > 0", name=op.f("ck_tasks_title_not_empty")),
        sa.CheckConstraint("length(title) <= 200", name=op.f("ck_tasks_title_max_length")),
        sa.CheckConstraint("length(description) <= 1000", name=op.f("ck_tasks_description_max_length")),
    )
    op.create_index(op.f("ix_tasks_user_id"), "tasks", ["user_id"])
    op.create_index(op.f("ix_tasks_status"), "tasks", ["status"])


def downgrade() -> None:
    op.drop_index(op.f("ix_tasks_status"), table_name="tasks")
    op.drop_index(op.f("ix_tasks_user_id"), table_name="tasks")
    op.drop_table("tasks")
