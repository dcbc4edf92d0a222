"""What building one ``Task(...)`` costs, against SQLModel's own table model without validation.

    uv run python benchmarks/task_model.py [--runs 41] [--loops 2000]

The baseline is a SQLModel table model with the same fields, types and defaults (a
uuid4 id, two UTC timestamps, a default status) and no validation at all: what SQLModel
itself costs to construct a row object. ``Task`` validates every field (the rule table)
on top of that. Each figure is the median over ``--runs`` runs of ``--loops``
constructions, in one process, alternating the two so that machine noise hits both
alike; compare the ratio, not the absolute times, on a shared machine.
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import MetaData, Text
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

from todo_data.models import StatusType, Task, UTCDateTime, utcnow


class _Plain(SQLModel, registry=registry(metadata=MetaData())):
    pass


class PlainTask(_Plain, table=True):
    """The same fields as Task, as a SQLModel table model: no validation in __init__."""

    __tablename__ = "plain_tasks"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    user_id: str = Field(sa_type=Text, nullable=False, index=True)
    title: str = Field(sa_type=Text, nullable=False)
    description: str | None = Field(default=None, sa_type=Text)
    status: str = Field(default="pending", sa_type=StatusType, nullable=False)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)


ARGUMENTS = {"user_id": "user-042", "title": "  Prepare the quarterly report  ", "description": "With the charts."}


def per_call(build: Callable[[], object], loops: int) -> float:
    start = time.perf_counter()
    for _ in range(loops):
        build()
    return (time.perf_counter() - start) / loops


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=41)
    parser.add_argument("--loops", type=int, default=2000)
    options = parser.parse_args()

    def plain() -> object:
        return PlainTask(**ARGUMENTS)

    def task() -> object:
        return Task(**ARGUMENTS)

    def assign() -> None:
        row.title = "  Prepare the annual report  "

    row = Task(**ARGUMENTS)
    for build in (plain, task, assign):  # warm up caches and lazy imports
        per_call(build, options.loops)
    runs: dict[str, list[float]] = {"plain": [], "task": [], "assign": []}
    for _ in range(options.runs):
        runs["plain"].append(per_call(plain, options.loops))
        runs["task"].append(per_call(task, options.loops))
        runs["assign"].append(per_call(assign, options.loops))
    median = {name: statistics.median(times) for name, times in runs.items()}

    print(f"median of {options.runs} runs x {options.loops} constructions")
    print(f"SQLModel table model, no validation   {median['plain'] * 1e6:8.1f} µs")
    print(f"Task(...), every field validated      {median['task'] * 1e6:8.1f} µs")
    print(f"ratio Task / SQLModel                 {median['task'] / median['plain']:8.2f}  (target <= 1.5)")
    print(f"task.title = ..., validated           {median['assign'] * 1e6:8.1f} µs")


if __name__ == "__main__":
    main()
