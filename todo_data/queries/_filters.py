"""The filters every tasks function takes, checked before any query runs.

``user_id``, ``status`` (a status, any other non-blank text, or a list of them),
``since`` (inclusive) and ``until`` (exclusive) on ``created_at``; see
:func:`todo_data.queries.tasks_frame`. A bad value is an
:class:`~todo_data.errors.InvalidArgumentError` naming it.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime
from typing import Any

import pandas as pd

from todo_data._task_sql import TaskFilter
from todo_data.errors import InvalidArgumentError
from todo_data.models import TaskStatus

StatusFilter = TaskStatus | str | Iterable[TaskStatus | str] | None
TimeBound = datetime | date | str | None


def task_filter(
    *,
    user_id: str | None = None,
    status: StatusFilter = None,
    since: TimeBound = None,
    until: TimeBound = None,
) -> TaskFilter:
    """Validated filters, or :class:`InvalidArgumentError` naming the bad one."""
    if user_id is not None and (not isinstance(user_id, str) or not user_id.strip()):
        raise InvalidArgumentError(f"user_id must be a non-blank string, not {user_id!r}")
    lower = time_bound("since", since) if since is not None else None
    upper = time_bound("until", until) if until is not None else None
    if lower is not None and upper is not None and lower > upper:
        raise InvalidArgumentError(f"since ({lower.isoformat()}) is after until ({upper.isoformat()})")
    return TaskFilter(user_id=user_id, statuses=_statuses(status), since=lower, until=upper)


def _statuses(status: StatusFilter) -> tuple[str, ...] | None:
    if status is None:
        return None
    values: list[Any] = [status] if isinstance(status, str) else list(_iterable(status))
    if not values:
        raise InvalidArgumentError("status must not be an empty list (leave it out to get every status)")
    for value in values:
        # Any stored text is a status (the column has no membership CHECK); blank is what
        # str.strip() leaves empty, as everywhere in todo_data.
        if not isinstance(value, str) or not value.strip():
            raise InvalidArgumentError(
                f"status must be non-blank text (a TaskStatus, a stored status or a list of them), not {value!r}"
            )
    return tuple(dict.fromkeys(str(value) for value in values))


def _iterable(value: Any) -> Iterable[Any]:
    if isinstance(value, Iterable):
        return value
    raise InvalidArgumentError(f"status must be a TaskStatus, a string or a list of them, not {value!r}")


def time_bound(name: str, value: datetime | date | str) -> datetime:
    """An aware UTC datetime from a datetime (naive = UTC), a date or ISO 8601 text."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError:
            raise InvalidArgumentError(
                f"{name} must be an ISO 8601 date or datetime such as '2025-01-31T12:00:00Z', not {value!r}"
            ) from None
    if isinstance(value, datetime):
        if pd.isna(value):
            raise InvalidArgumentError(f"{name} must be a datetime, not NaT")
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    raise InvalidArgumentError(f"{name} must be a datetime, a date or ISO 8601 text, not {value!r}")
