"""Charts of the query frames, for notebooks: pandas plotting on matplotlib.

Each function takes the DataFrame of the query with the same name in
:mod:`todo_data.queries` and returns the matplotlib ``Axes``, titled and labelled.
Every status has one colour in every chart (:data:`STATUS_COLORS`); statuses the code
doesn't know are grey.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

import pandas as pd

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


def _axes(ax: Axes | None, figsize: tuple[float, float]) -> Axes:
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    _, new = plt.subplots(figsize=figsize)
    return new


def status_counts(frame: pd.DataFrame, *, ax: Axes | None = None) -> Axes:
    """Bar chart of :func:`todo_data.queries.status_counts`: tasks per status."""
    ax = _axes(ax, (6, 3.5))
    labels = [str(s) for s in frame["status"]]
    ax.bar(labels, frame["count"], color=[status_color(s) for s in frame["status"]])
    ax.set_title("Tasks by status")
    ax.set_xlabel("Status")
    ax.set_ylabel("Tasks")
    for x, (count, share) in enumerate(zip(frame["count"], frame["share"], strict=True)):
        ax.annotate(f"{count:,} ({share:.0%})", (x, count), ha="center", va="bottom", fontsize=9)
    return ax


def tasks_per_user(frame: pd.DataFrame, *, top: int = 15, ax: Axes | None = None) -> Axes:
    """Stacked bars of :func:`todo_data.queries.tasks_per_user` for the busiest users."""
    ax = _axes(ax, (9, 4))
    statuses = [c for c in frame.columns if c not in PER_USER_FIXED_COLUMNS]
    busiest = frame.sort_values(["total", "user_id"], ascending=[False, True]).head(top).set_index("user_id")
    busiest[statuses].plot.bar(stacked=True, ax=ax, color=[status_color(s) for s in statuses], width=0.8)
    ax.set_title(f"Tasks per user (top {min(top, len(busiest))} by total)")
    ax.set_xlabel("User")
    ax.set_ylabel("Tasks")
    ax.legend(title="Status")
    return ax


def created_over_time(frame: pd.DataFrame, *, ax: Axes | None = None) -> Axes:
    """Stacked area of :func:`todo_data.queries.created_over_time`: tasks created per period."""
    ax = _axes(ax, (9, 4))
    wide = frame.pivot_table(
        index="period", columns="status", values="count", aggfunc="sum", fill_value=0, observed=False
    )
    wide = wide.loc[:, wide.sum() > 0] if len(wide) else wide
    if len(wide):
        wide.plot.area(ax=ax, color=[status_color(s) for s in wide.columns], linewidth=0)
        ax.legend(title="Status")
    ax.set_title("Tasks created over time (UTC)")
    ax.set_xlabel("Period")
    ax.set_ylabel("Tasks created")
    return ax


def open_task_ages(frame: pd.DataFrame, *, bins: int = 30, ax: Axes | None = None) -> Axes:
    """Histogram of :func:`todo_data.queries.open_task_ages` in days, one colour per status."""
    ax = _axes(ax, (9, 4))
    days = frame.assign(age_days=frame["age"].dt.total_seconds() / 86_400)
    groups = [(str(status), group["age_days"]) for status, group in days.groupby("status", observed=True)]
    if groups:
        ax.hist(
            [values for _, values in groups],
            bins=bins,
            stacked=True,
            color=[status_color(s) for s, _ in groups],
            label=[s for s, _ in groups],
        )
        ax.legend(title="Status")
    ax.set_title("Age of open tasks")
    ax.set_xlabel("Age (days)")
    ax.set_ylabel("Open tasks")
    return ax
