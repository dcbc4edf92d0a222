"""The data rules in one place: limits, names and the SQL of the CHECK constraints.

The Pydantic fields (:mod:`todo_data.models`), the table's constraints, the initial
migration and the live probes (:mod:`todo_data.checks`) all read these values, so a
limit is changed here or nowhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from sqlalchemy import CheckConstraint
from sqlalchemy.sql.elements import conv

TABLE_NAME: Final = "tasks"

MAX_USER_ID_LENGTH: Final = 255
MAX_TITLE_LENGTH: Final = 200
MAX_DESCRIPTION_LENGTH: Final = 1000

#: One SQLAlchemy naming convention for the model's metadata and the migrations.
NAMING_CONVENTION: Final[dict[str, str]] = {
    "ix": "ix_%(table_name)s_%(column_0_name)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def constraint_name(kind: str, *, table: str = TABLE_NAME, name: str = "", column: str = "") -> str:
    """The full name the naming convention gives a constraint or index.

    >>> constraint_name("ck", name="title_not_empty")
    'ck_tasks_title_not_empty'
    >>> constraint_name("ix", column="status")
    'ix_tasks_status'
    """
    return NAMING_CONVENTION[kind] % {
        "table_name": table,
        "constraint_name": name,
        "column_0_name": column,
    }


@dataclass(frozen=True)
class CheckRule:
    """A CHECK constraint of the tasks table and the rule it enforces."""

    short_name: str
    column: str
    sql: str
    rule: str

    @property
    def name(self) -> str:
        return constraint_name("ck", name=self.short_name)

    def constraint(self) -> CheckConstraint:
        """A fresh SQLAlchemy constraint (a constraint object belongs to one table)."""
        return CheckConstraint(self.sql, name=conv(self.name))


CHECK_RULES: Final[tuple[CheckRule, ...]] = (
    CheckRule(
        "user_id_not_empty",
        "user_id",
        "length(trim(user_id)) > 0",
        "user_id must not be blank",
    ),
    CheckRule(
        "user_id_max_length",
        "user_id",
        f"length(user_id) <= {MAX_USER_ID_LENGTH}",
        f"user_id must be at most {MAX_USER_ID_LENGTH} characters",
    ),
    CheckRule(
        "title_not_empty",
        "title",
        "length(trim(title)) > 0",
        "title must not be empty or blank",
    ),
    CheckRule(
        "title_max_length",
        "title",
        f"length(title) <= {MAX_TITLE_LENGTH}",
        f"title must be at most {MAX_TITLE_LENGTH} characters",
    ),
    CheckRule(
        "description_max_length",
        "description",
        f"length(description) <= {MAX_DESCRIPTION_LENGTH}",
        f"description must be at most {MAX_DESCRIPTION_LENGTH} characters",
    ),
)

PRIMARY_KEY_NAME: Final = constraint_name("pk")
#: Indexed columns, each with a single-column index named by the convention.
INDEXED_COLUMNS: Final = ("user_id", "status")
