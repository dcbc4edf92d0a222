"""Create the tasks table with its named constraints and indexes.

Revision ID: 0001
Revises:
Create Date: 2026-11-25

Limits, names and CHECK expressions come from ``todo_data.rules``, the same source the
model reads, so the table this creates is the one the model declares.
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op
from todo_data.rules import (
    CHECK_RULES,
    INDEXED_COLUMNS,
    PRIMARY_KEY_NAME,
    TABLE_NAME,
    constraint_name,
)

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        TABLE_NAME,
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Text(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f(PRIMARY_KEY_NAME)),
        *(rule.constraint() for rule in CHECK_RULES),
    )
    for column in INDEXED_COLUMNS:
        op.create_index(op.f(constraint_name("ix", column=column)), TABLE_NAME, [column])


def downgrade() -> None:
    for column in reversed(INDEXED_COLUMNS):
        op.drop_index(op.f(constraint_name("ix", column=column)), table_name=TABLE_NAME)
    op.drop_table(TABLE_NAME)
