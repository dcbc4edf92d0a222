"""Charts of the query frames, for notebooks: pandas plotting on matplotlib.

Each function takes the DataFrame of the query with the same name in
:mod:`todo_data.queries` and returns the matplotlib ``Axes``, titled and labelled.
Every status has one colour in every chart (:data:`STATUS_COLORS`); statuses the code
doesn't know are grey.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

import pandas as pd

from todo_data.errors import MissingExtraError
from todo_data.models import TaskStatus
from todo_data.queries import PER_USER_FIXED_COLUMNS

if TYPE_CHECKING:
    from matplotlib.axes import Axes

STATUS_COLORS: Final[dict[str, str]] = {
    TaskStatus.PENDING: "#f2a93b",
    TaskStatus.IN_PROGRESS: "#3b7dd8",
    TaskStatus.COMPLETED: "#3aa657",
}
UNKNOWN_STATUS_COLOR: Final = "#9e9e9e"


def status_color(status: object) -> str:
    """The colour of a status in every chart (grey for statuses the code doesn't know)."""
    return STATUS_COLORS.get(str(status), UNKNOWN_STATUS_COLOR)


#: How a missing value (NULL written by another client) is labelled.
MISSING_LABEL: Final = "(missing)"


def _label(value: object) -> str:
    return MISSING_LABEL if pd.isna(value) else str(value)  # type: ignore[call-overload]


def _axes(ax: Axes | None, figsize: tuple[float, float]) -> Axes:
    if ax is not None:
        return ax
    try:
        import matplotlib.pyplot as plt
    except ImportError:
        raise MissingExtraError(
            "charts need matplotlib, which comes with the notebooks extra: pip install 'todo-data[notebooks]' "
            "(or uv sync --extra notebooks)"
        ) from None

    _, new = plt.subplots(figsize=figsize)
    return new


def _nothing_to_draw(ax: Axes, message: str = "no tasks") -> None:
    """Say it in the middle of the chart: an empty frame is an answer, not an error."""
    ax.text(0.5, 0.5, message, transform=ax.transAxes, ha="center", va="center", fontsize=12, color="#666666")


def status_counts(frame: pd.DataFrame, *, ax: Axes | None = None) -> Axes:
    """Bar chart of :func:`todo_data.queries.status_counts`: tasks per status ("no tasks" when all are zero)."""
    ax = _axes(ax, (6, 3.5))
    labels = [_label(s) for s in frame["status"]]
    ax.bar(labels, frame["count"], color=[status_color(s) for s in labels])
    ax.set_title("Tasks by status")
    ax.set_xlabel("Status")
    ax.set_ylabel("Tasks")
    if frame["count"].sum() == 0:
        _nothing_to_draw(ax)
        return ax
    for x, (count, share) in enumerate(zip(frame["count"], frame["share"], strict=True)):
        ax.annotate(f"{count:,} ({share:.0%})", (x, count), ha="center", va="bottom", fontsize=9)
    return ax


def tasks_per_user(frame: pd.DataFrame, *, top: int = 15, ax: Axes | None = None) -> Axes:
    """Stacked bars of :func:`todo_data.queries.tasks_per_user` for the busiest users ("no tasks" when empty)."""
    ax = _axes(ax, (9, 4))
    if frame.empty:
        ax.set_title("Tasks per user")
        _nothing_to_draw(ax)
    else:
        statuses = [c for c in frame.columns if c not in PER_USER_FIXED_COLUMNS]
        busiest = frame.sort_values(["total", "user_id"], ascending=[False, True]).head(top)
        busiest = busiest.set_index(pd.Index([_label(user) for user in busiest["user_id"]]))
        busiest[statuses].plot.bar(stacked=True, ax=ax, color=[status_color(s) for s in statuses], width=0.8)
        ax.set_title(f"Tasks per user (top {len(busiest)} by total)")
        ax.legend(title="Status")
    ax.set_xlabel("User")
    ax.set_ylabel("Tasks")
    return ax


def created_over_time(frame: pd.DataFrame, *, ax: Axes | None = None) -> Axes:
    """Stacked area of :func:`todo_data.queries.created_over_time`: tasks created per period."""
    ax = _axes(ax, (9, 4))
    dated = frame[frame["period"].notna()]
    if dated.empty:
        _nothing_to_draw(ax, "no tasks" if frame.empty else "no tasks with a known creation time")
    else:
        wide = dated.assign(status=[_label(s) for s in dated["status"]]).pivot_table(
            index="period", columns="status", values="count", aggfunc="sum", fill_value=0
        )
        order = [*(str(s) for s in frame["status"].cat.categories), MISSING_LABEL]
        wide = wide[[status for status in order if status in wide.columns]]
        wide.plot.area(ax=ax, color=[status_color(s) for s in wide.columns], linewidth=0)
        ax.legend(title="Status")
    ax.set_title("Tasks created over time (UTC)")
    ax.set_xlabel("Period")
    ax.set_ylabel("Tasks created")
    return ax


def open_task_ages(frame: pd.DataFrame, *, bins: int = 30, ax: Axes | None = None) -> Axes:
    """Histogram of :func:`todo_data.queries.open_task_ages` in days, one colour per status."""
    ax = _axes(ax, (9, 4))
    ax.set_title("Age of open tasks")
    ax.set_xlabel("Age (days)")
    ax.set_ylabel("Open tasks")
    days = frame["age"].dt.total_seconds() / 86_400  # NaN where the age is unknown
    known = days.notna()
    groups = [(str(s), days[known & (frame["status"] == s)]) for s in frame["status"].cat.categories]
    groups.append((MISSING_LABEL, days[known & frame["status"].isna()]))
    groups = [(status, values) for status, values in groups if len(values)]
    if not groups:
        _nothing_to_draw(ax, "no tasks" if frame.empty else "no tasks with a known age")
        return ax
    ax.hist(
        [values for _, values in groups],
        bins=bins,
        stacked=True,
        color=[status_color(s) for s, _ in groups],
        label=[s for s, _ in groups],
    )
    ax.legend(title="Status")
    return ax
