"""The ``Task`` model: validated in Python, constrained in the database, both from the rules.

Every check comes from :data:`todo_data.rules.RULES`: each field's validator runs the
``accepts`` of that column's rules (after ``str.strip()`` for stripped columns), and the
table's CHECK constraints and NOT NULLs are the rules' own. A failed check is a
:class:`pydantic.ValidationError` whose error names the field (``loc``) and the rule
(``type``, e.g. ``not_blank``, and its message).

SQLModel table models skip validation in ``__init__``, on assignment and in
``model_copy(update=...)``. ``Task`` restores all three, validating each value once: the
constructor (and ``model_validate`` and ``model_copy``) runs :class:`TaskRecord`'s
validator (the same fields as a plain Pydantic model) and hands the result to
SQLAlchemy, and every attribute assignment validates the new value with that field's
rules. Rows loaded from the database are not validated: a status
written by a newer version of the code is read as its plain string, and
:mod:`todo_data.checks` reports it.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar

from pydantic import AfterValidator, AwareDatetime, GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import PydanticCustomError, core_schema
from sqlalchemy import DateTime, Dialect, MetaData, String, Text, func
from sqlalchemy.orm import registry
from sqlalchemy.orm.attributes import set_attribute
from sqlalchemy.orm.instrumentation import manager_of_class
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel

from todo_data.rules import NAMING_CONVENTION, RULES, STRIPPED, TABLE_NAME, nullable, rules_of
from todo_data.rules import TaskStatus as TaskStatus


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC, with microseconds."""
    return datetime.now(UTC)


@dataclass(frozen=True)
class _Rules:
    """Annotation: the field's rules from the table, checked after the type's own parsing."""

    column: str

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        checks = [(rule.kind, rule.message, rule.accepts) for rule in rules_of(self.column) if rule.accepts]
        strip = self.column in STRIPPED

        def validate(value: Any) -> Any:
            if strip:
                value = value.strip()
            for kind, message, accepts in checks:
                if not accepts(value):
                    raise PydanticCustomError(kind, message)
            return value

        return core_schema.no_info_after_validator_function(validate, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        result = handler(schema)
        for rule in rules_of(self.column):
            result.update(rule.json_schema)
        return result


def _as_utc(value: datetime) -> datetime:
    return value.astimezone(UTC)  # the utc_range rule ran first


UserId = Annotated[str, _Rules("user_id")]
Title = Annotated[str, _Rules("title")]
Description = Annotated[str, _Rules("description")]
Status = Annotated[TaskStatus, _Rules("status")]
TaskId = Annotated[uuid.UUID, _Rules("id")]
CreatedAt = Annotated[AwareDatetime, _Rules("created_at"), AfterValidator(_as_utc)]
UpdatedAt = Annotated[AwareDatetime, _Rules("updated_at"), AfterValidator(_as_utc)]


class UTCDateTime(TypeDecorator[datetime]):
    """``TIMESTAMP WITH TIME ZONE`` that always reads back timezone-aware in UTC.

    SQLite has no time zones and stores text: values are converted to UTC and stored as
    naive UTC text ``YYYY-MM-DD HH:MM:SS.ffffff`` on the way in, and marked UTC on the way
    out (the ``utc_text`` rule reports rows another client stored in another form).
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

    user_id: UserId = Field(sa_type=Text, nullable=nullable("user_id"), index=True)
    title: Title = Field(sa_type=Text, nullable=nullable("title"))
    description: Description | None = Field(default=None, sa_type=Text, nullable=nullable("description"))
    status: Status = Field(default=TaskStatus.PENDING, sa_type=StatusType, nullable=nullable("status"), index=True)


class TaskRecord(TaskBase):
    """Every field of a task as a plain Pydantic model: what ``Task`` validates against."""

    model_config = {"extra": "forbid", "title": "Task"}

    id: TaskId = Field(default_factory=uuid.uuid4)
    created_at: CreatedAt = Field(default_factory=utcnow)
    updated_at: UpdatedAt = Field(default_factory=utcnow)


_VALIDATOR = TaskRecord.__pydantic_validator__
_FIELDS = frozenset(TaskRecord.model_fields)


class Task(TaskBase, table=True):
    """A row of the ``tasks`` table.

    >>> Task(user_id="u1", title="  Buy milk  ").title
    'Buy milk'
    """

    __tablename__: ClassVar[str] = TABLE_NAME
    __table_args__ = tuple(rule.check.constraint() for rule in RULES if rule.check is not None)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True, nullable=nullable("id"))
    created_at: datetime = Field(
        default_factory=utcnow,
        sa_type=UTCDateTime,
        nullable=nullable("created_at"),
        sa_column_kwargs={"server_default": func.now()},
    )
    updated_at: datetime = Field(
        default_factory=utcnow,
        sa_type=UTCDateTime,
        nullable=nullable("updated_at"),
        sa_column_kwargs={"server_default": func.now(), "onupdate": utcnow},
    )

    def __init__(self, **data: Any) -> None:
        # SQLAlchemy's instrumented __init__ has already given the instance its state;
        # validate once and set the values, instead of SQLModel's per-field setattr
        # (which would validate every field a second time through __setattr__).
        _fill(self, _VALIDATOR.validate_python(data))

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
        # SQLModel's own model_validate skips this class's rules: validate as a
        # TaskRecord, then build the instance as SQLAlchemy builds a loaded row.
        if update:
            obj = {**(obj if isinstance(obj, dict) else _attributes(obj)), **update}
        record = _VALIDATOR.validate_python(obj, strict=strict, from_attributes=from_attributes, context=context)
        task: Task = manager_of_class(cls).new_instance()
        _fill(task, record)
        return task

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Task:
        """A new, unsaved task with this one's fields (same ``id``) and ``update`` applied,
        validated as the constructor validates them.

        Pydantic's own copy writes ``update`` unchecked and would share this instance's
        SQLAlchemy state. ``deep`` changes nothing: every field value is immutable.
        """
        return type(self).model_validate({**_attributes(self), **(update or {})})

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _FIELDS:
            value = _validated(name, value)
        super().__setattr__(name, value)


def _fill(task: Task, record: TaskRecord) -> None:
    # set_attribute records each value in SQLAlchemy's state (what an INSERT reads),
    # as SQLModel's own constructor does, without going through Task.__setattr__.
    for name, value in record.__dict__.items():
        set_attribute(task, name, value)
    object.__setattr__(task, "__pydantic_fields_set__", record.__pydantic_fields_set__)


def _attributes(obj: Any) -> dict[str, Any]:
    return {name: getattr(obj, name) for name in _FIELDS if hasattr(obj, name)}


def _validated(name: str, value: Any) -> Any:
    # validate_assignment checks one field with that field's own rules and reports errors
    # at loc (name,), as construction does; a fresh, empty record per call computes no
    # defaults and is never shared between threads.
    scratch = TaskRecord.__new__(TaskRecord)
    _VALIDATOR.validate_assignment(scratch, name, value)
    return scratch.__dict__[name]
