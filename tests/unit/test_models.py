"""The Python layer of the data rules: Task(...) and attribute assignment really validate."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import AsyncEngine

from todo_data import rules, session_scope
from todo_data.database import sessionmaker
from todo_data.models import Task, TaskBase, TaskStatus
from todo_data.rules import MAX_DESCRIPTION_LENGTH, MAX_TITLE_LENGTH, MAX_USER_ID_LENGTH, rule_of


def make(**overrides: Any) -> Task:
    return Task(**{"user_id": "user-1", "title": "Write tests", **overrides})


def error_of(exc: pytest.ExceptionInfo[ValidationError]) -> tuple[str, str]:
    """The field and the rule an error names: its type (the rule's kind) and its message."""
    (error,) = exc.value.errors()
    return ".".join(str(p) for p in error["loc"]), f"{error['type']}: {error['msg']}"


@pytest.mark.parametrize(
    ("field", "value", "rule"),
    [
        ("user_id", "", "not_blank: must not be blank"),
        ("user_id", "   ", "not_blank: must not be blank"),
        ("user_id", "u" * (MAX_USER_ID_LENGTH + 1), f"at most {MAX_USER_ID_LENGTH} characters"),
        ("user_id", None, "valid string"),
        ("title", "", "not_blank: must not be blank"),
        ("title", " \t\n ", "not_blank: must not be blank"),
        ("title", "x" * (MAX_TITLE_LENGTH + 1), f"at most {MAX_TITLE_LENGTH} characters"),
        ("title", None, "valid string"),
        (
            "description",
            "d" * (MAX_DESCRIPTION_LENGTH + 1),
            f"at most {MAX_DESCRIPTION_LENGTH} characters",
        ),
        ("status", "bogus", "'pending', 'in_progress' or 'completed'"),
        ("status", None, "'pending', 'in_progress' or 'completed'"),
        ("title", "nul\x00inside", "NUL characters"),
        ("description", "nul\x00", "NUL characters"),
        ("user_id", "u\x00", "NUL characters"),
        ("title", "lone \ud800 surrogate", "valid_unicode: must not contain lone surrogate"),
        ("created_at", datetime(2024, 1, 1), "timezone info"),
        ("id", "not-a-uuid", "valid UUID"),
    ],
)
def test_constructor_rejects_invalid_field_naming_field_and_rule(field: str, value: Any, rule: str) -> None:
    with pytest.raises(ValidationError) as exc:
        make(**{field: value})
    loc, msg = error_of(exc)
    assert loc == field
    assert rule in msg


@pytest.mark.parametrize(
    ("field", "value", "rule"),
    [
        ("title", "", "not_blank"),
        ("title", "   ", "not_blank"),
        ("title", "x" * (MAX_TITLE_LENGTH + 1), f"at most {MAX_TITLE_LENGTH}"),
        ("user_id", " ", "must not be blank"),
        ("description", "d" * (MAX_DESCRIPTION_LENGTH + 1), f"at most {MAX_DESCRIPTION_LENGTH}"),
        ("status", "bogus", "'pending', 'in_progress' or 'completed'"),
        ("title", "a\x00b", "NUL"),
    ],
)
def test_assignment_rejects_invalid_value_and_keeps_the_old_one(field: str, value: Any, rule: str) -> None:
    task = make(description="old")
    before = getattr(task, field)
    with pytest.raises(ValidationError) as exc:
        setattr(task, field, value)
    loc, msg = error_of(exc)
    assert (loc, rule in msg) == (field, True)
    assert getattr(task, field) == before


def test_title_blank_to_str_strip_is_rejected_like_user_id_and_violations_see_it() -> None:
    # Issue 10: pydantic's strip_whitespace kept "\x1e" (blank to Python's str.strip), so
    # Task accepted the title and checks.violations then reported the stored row.
    for blank in ("\x1e", "\x1c\x1d\x1f", "\x85", " \u3000\u2029 "):
        with pytest.raises(ValidationError) as exc:
            make(title=blank)
        assert error_of(exc)[0] == "title"
        with pytest.raises(ValidationError) as exc:
            make(user_id=blank)
        assert error_of(exc)[0] == "user_id"


def test_missing_required_fields_are_named() -> None:
    with pytest.raises(ValidationError) as exc:
        Task()
    assert {e["loc"][0] for e in exc.value.errors() if e["type"] == "missing"} == {
        "user_id",
        "title",
    }


def test_unknown_keyword_is_rejected_not_ignored() -> None:
    with pytest.raises(ValidationError, match="titel"):
        make(titel="typo")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("user_id", "u" * MAX_USER_ID_LENGTH),
        ("user_id", "ユーザー"),
        ("title", "x" * MAX_TITLE_LENGTH),
        ("title", "a"),
        ("title", "🚀 launch"),
        ("description", None),
        ("description", ""),
        ("description", "d" * MAX_DESCRIPTION_LENGTH),
        ("status", "in_progress"),
        ("status", TaskStatus.COMPLETED),
    ],
)
def test_constructor_accepts_boundary_and_unicode_values(field: str, value: Any) -> None:
    assert getattr(make(**{field: value}), field) == value


def test_title_surrounding_whitespace_is_stripped_in_constructor_and_assignment() -> None:
    task = make(title="  Buy milk \n")
    assert task.title == "Buy milk"
    task.title = "\tCall mum  "
    assert task.title == "Call mum"


def test_title_of_max_length_after_stripping_is_accepted() -> None:
    assert make(title=" " + "x" * MAX_TITLE_LENGTH + " ").title == "x" * MAX_TITLE_LENGTH


def test_defaults() -> None:
    task = make()
    assert task.status is TaskStatus.PENDING
    assert task.description is None
    assert isinstance(task.id, uuid.UUID)
    assert task.created_at.tzinfo is UTC
    assert task.updated_at.tzinfo is UTC
    assert make().id != task.id


def test_status_string_becomes_the_member_on_assignment() -> None:
    task = make()
    task.status = "completed"  # type: ignore[assignment]
    assert task.status is TaskStatus.COMPLETED


def test_timestamps_are_converted_to_utc() -> None:
    paris = timezone(timedelta(hours=1))
    task = make(created_at=datetime(2024, 5, 1, 12, 0, tzinfo=paris))
    assert task.created_at == datetime(2024, 5, 1, 11, 0, tzinfo=UTC)
    assert task.created_at.utcoffset() == timedelta(0)


def test_ten_megabyte_title_is_rejected_quickly_by_length_not_scanned() -> None:
    huge = "x" * 10_000_000
    with pytest.raises(ValidationError) as exc:
        make(title=huge)
    assert error_of(exc)[0] == "title"
    # A second, different huge value via assignment goes the same way.
    task = make()
    with pytest.raises(ValidationError):
        task.description = huge + "y"
    assert task.description is None


def test_validation_error_input_value_is_truncated_in_message() -> None:
    with pytest.raises(ValidationError) as exc:
        make(title="x" * 10_000_000)
    assert len(str(exc.value)) < 1_000


def test_task_base_is_an_input_schema_with_the_same_rules() -> None:
    with pytest.raises(ValidationError):
        TaskBase(user_id="u", title="")
    assert TaskBase(user_id="u", title=" t ").title == "t"


def test_model_validate_also_validates() -> None:
    with pytest.raises(ValidationError):
        Task.model_validate({"user_id": "u", "title": ""})
    assert Task.model_validate({"user_id": "u", "title": " ok "}).title == "ok"


def test_model_validate_from_attributes_and_update() -> None:
    base = TaskBase(user_id="u", title="from input")
    task = Task.model_validate(base, update={"status": "completed"})
    assert (task.title, task.status) == ("from input", TaskStatus.COMPLETED)
    with pytest.raises(ValidationError):
        Task.model_validate(base, update={"title": " "})


def test_model_copy_validates_the_update_and_shares_nothing_with_the_original() -> None:
    # Issue 16: pydantic's model_copy(update=...) wrote the values unchecked, and the copy
    # shared the original's SQLAlchemy state.
    task = make(description="old")
    with pytest.raises(ValidationError) as exc:
        task.model_copy(update={"title": ""})
    assert error_of(exc) == ("title", "not_blank: must not be blank")
    with pytest.raises(ValidationError, match="titel"):
        task.model_copy(update={"titel": "typo"})
    copy = task.model_copy(update={"title": "  Renamed ", "status": "completed"})
    assert (copy.title, copy.status, copy.description, copy.id) == ("Renamed", TaskStatus.COMPLETED, "old", task.id)
    assert inspect(copy).transient and inspect(copy) is not inspect(task)
    assert (task.title, task.status) == ("Write tests", TaskStatus.PENDING)
    assert task.model_copy(deep=True).model_dump() == task.model_dump()


@pytest.mark.parametrize(
    "instant",
    [
        datetime(1, 1, 1, 3, tzinfo=timezone(timedelta(hours=5))),  # year 0 in UTC
        datetime(9999, 12, 31, 22, tzinfo=timezone(timedelta(hours=-5))),  # year 10000 in UTC
        datetime.max.replace(tzinfo=UTC),  # asyncpg would write it as infinity
        datetime.min.replace(tzinfo=UTC),  # ... and this as -infinity
    ],
)
def test_instant_outside_what_both_databases_store_is_refused_naming_the_rule(instant: datetime) -> None:
    with pytest.raises(ValidationError) as exc:
        make(created_at=instant)
    assert error_of(exc) == ("created_at", f"utc_range: {rule_of('created_at', 'utc_range').message}")


@pytest.mark.parametrize(
    "instant",
    [
        datetime(1, 1, 1, 5, 0, 0, 1, tzinfo=timezone(timedelta(hours=5))),
        datetime.min.replace(tzinfo=UTC) + timedelta(microseconds=1),
        datetime.max.replace(tzinfo=UTC) - timedelta(microseconds=1),
    ],
)
def test_instant_just_inside_the_range_is_accepted_in_utc(instant: datetime) -> None:
    assert make(created_at=instant).created_at == instant


def test_each_value_is_validated_once(monkeypatch: pytest.MonkeyPatch) -> None:
    # SQLModel's constructor sets every field through __setattr__, which validates: the
    # blank check (user_id and title) ran twice per field before Task bypassed it.
    calls: list[str] = []

    def counted(value: str) -> bool:
        calls.append(value)
        return not value.strip()

    monkeypatch.setattr(rules, "is_blank", counted)
    make(user_id="u", title=" t ")
    assert sorted(calls) == ["t", "u"]
    calls.clear()
    Task.model_validate({"user_id": "u", "title": "t"})
    assert sorted(calls) == ["t", "u"]


async def test_a_task_from_model_validate_is_stored_like_a_constructed_one(sqlite_engine: AsyncEngine) -> None:
    built = Task.model_validate({"user_id": "u", "title": " from a dict ", "status": "completed"})
    assert inspect(built).transient and built.model_fields_set == {"user_id", "title", "status"}
    async with session_scope(sqlite_engine) as session:
        session.add_all([built, make()])
    async with sessionmaker(sqlite_engine)() as session:
        loaded = await session.get(Task, built.id)
    assert loaded is not None
    assert (loaded.title, loaded.status, loaded.created_at) == ("from a dict", TaskStatus.COMPLETED, built.created_at)
