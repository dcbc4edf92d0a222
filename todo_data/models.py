"""The ``Task`` model: validated in Python, constrained in the database.

SQLModel table models skip validation in ``__init__`` and on assignment. ``Task``
restores both: the constructor validates every field with :class:`TaskRecord` (the
same fields, as a plain Pydantic model) and every attribute assignment validates the
new value, so ``Task(title="")`` and ``task.title = ""`` raise
:class:`pydantic.ValidationError` naming the field and the rule. Rows loaded from the
database are not validated: a status written by a newer version of the code is read as
its plain string, and :mod:`todo_data.checks` reports it.
"""

from __future__ import annotations

import enum
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar

from pydantic import AfterValidator, AwareDatetime, StringConstraints
from sqlalchemy import DateTime, Dialect, MetaData, String, Text, func
from sqlalchemy.orm import registry
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel

from todo_data.rules import (
    CHECK_RULES,
    MAX_DESCRIPTION_LENGTH,
    MAX_TITLE_LENGTH,
    MAX_USER_ID_LENGTH,
    NAMING_CONVENTION,
    TABLE_NAME,
)


class TaskStatus(enum.StrEnum):
    """The statuses the code knows, in their natural order.

    Stored as plain text without a membership CHECK: adding a member needs no migration.
    """

    PENDING = "pending"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC, with microseconds."""
    return datetime.now(UTC)


def _storable(value: str) -> str:
    # PostgreSQL text cannot hold NUL characters, and UTF-8 cannot encode lone surrogates;
    # SQLite would store both, so reject them here to keep the backends in agreement.
    if "\x00" in value:
        raise ValueError("must not contain NUL characters (\\x00), which PostgreSQL cannot store")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must not contain lone surrogate characters (not valid Unicode text)") from None
    return value


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    return value


def _as_utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


UserId = Annotated[
    str,
    StringConstraints(min_length=1, max_length=MAX_USER_ID_LENGTH),
    AfterValidator(_not_blank),
    AfterValidator(_storable),
]
Title = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_TITLE_LENGTH),
    AfterValidator(_storable),
]
Description = Annotated[str, StringConstraints(max_length=MAX_DESCRIPTION_LENGTH), AfterValidator(_storable)]
UtcDatetime = Annotated[AwareDatetime, AfterValidator(_as_utc)]


class UTCDateTime(TypeDecorator[datetime]):
    """``TIMESTAMP WITH TIME ZONE`` that always reads back timezone-aware in UTC.

    SQLite has no time zones and stores naive text: values are converted to UTC and
    stored naive on the way in, and marked UTC on the way out.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class StatusType(TypeDecorator[str]):
    """``VARCHAR`` status: known values read as :class:`TaskStatus`, unknown ones as ``str``."""

    impl = String()
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        return None if value is None else str(value)

    def process_result_value(self, value: str | None, dialect: Dialect) -> str | None:
        if value is None:
            return None
        try:
            return TaskStatus(value)
        except ValueError:
            return value


#: The metadata of every table in ``todo_data``, with the project's naming convention.
metadata = MetaData(naming_convention=NAMING_CONVENTION)


class _Base(SQLModel, registry=registry(metadata=metadata)):
    pass


class TaskBase(_Base):
    """The fields a client provides, with the Python-layer rules (an API input schema)."""

    user_id: UserId = Field(sa_type=Text, nullable=False, index=True)
    title: Title = Field(sa_type=Text, nullable=False)
    description: Description | None = Field(default=None, sa_type=Text, nullable=True)
    status: TaskStatus = Field(default=TaskStatus.PENDING, sa_type=StatusType, nullable=False, index=True)


class TaskRecord(TaskBase):
    """Every field of a task as a plain Pydantic model: what ``Task`` validates against."""

    model_config = {"extra": "forbid", "title": "Task"}

    id: uuid.UUID = Field(default_factory=uuid.uuid4)
    created_at: UtcDatetime = Field(default_factory=utcnow)
    updated_at: UtcDatetime = Field(default_factory=utcnow)


class Task(TaskBase, table=True):
    """A row of the ``tasks`` table.

    >>> Task(user_id="u1", title="  Buy milk  ").title
    'Buy milk'
    """

    __tablename__: ClassVar[str] = TABLE_NAME
    __table_args__ = tuple(rule.constraint() for rule in CHECK_RULES)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    created_at: datetime = Field(
        default_factory=utcnow,
        sa_type=UTCDateTime,
        nullable=False,
        sa_column_kwargs={"server_default": func.now()},
    )
    updated_at: datetime = Field(
        default_factory=utcnow,
        sa_type=UTCDateTime,
        nullable=False,
        sa_column_kwargs={"server_default": func.now(), "onupdate": utcnow},
    )

    def __init__(self, **data: Any) -> None:
        record = TaskRecord.model_validate(data)
        super().__init__(**{name: getattr(record, name) for name in TaskRecord.model_fields})

    @classmethod
    def model_validate(
        cls,
        obj: Any,
        *,
        strict: bool | None = None,
        from_attributes: bool | None = None,
        context: dict[str, Any] | None = None,
        update: dict[str, Any] | None = None,
        **_: Any,
    ) -> Task:
        # SQLModel's own model_validate first builds an empty instance, which would fail
        # this class's validating __init__: validate as a TaskRecord, then construct.
        if update:
            obj = {**(obj if isinstance(obj, dict) else _attributes(obj)), **update}
        record = TaskRecord.model_validate(obj, strict=strict, from_attributes=from_attributes, context=context)
        return cls(**{name: getattr(record, name) for name in TaskRecord.model_fields})

    def __setattr__(self, name: str, value: Any) -> None:
        if name in TaskRecord.model_fields:
            value = _validated(name, value)
        super().__setattr__(name, value)


def _attributes(obj: Any) -> dict[str, Any]:
    return {name: getattr(obj, name) for name in TaskRecord.model_fields if hasattr(obj, name)}


def _validated(name: str, value: Any) -> Any:
    # validate_assignment checks one field with that field's own rules and reports
    # errors at loc (name,), exactly as model construction does.
    scratch = TaskRecord.model_construct()
    TaskRecord.__pydantic_validator__.validate_assignment(scratch, name, value)
    return getattr(scratch, name)
