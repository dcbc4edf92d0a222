"""The ``todo-data`` command: a thin shell over the library.

Every failure the library raises (:class:`~todo_data.errors.TodoDataError`) is printed
as one line and exits with status 1; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col

from todo_data import migrations
from todo_data.database import create_engine, describe, session_scope, sessionmaker
from todo_data.errors import TodoDataError
from todo_data.models import Task, TaskStatus

T = TypeVar("T")

app = typer.Typer(
    help="Inspect and verify the Todo application's database (Neon PostgreSQL or SQLite).",
    no_args_is_help=True,
    add_completion=False,
)
console = Console()
errors = Console(stderr=True, soft_wrap=True)
_state = {"debug": False}

DatabaseUrl = Annotated[
    str | None,
    typer.Option("--database-url", help="Database URL (default: DATABASE_URL from the environment or .env)."),
]

DEMO_TASKS = [
    ("alice", "Write the quarterly report", "Numbers from the dashboard", TaskStatus.IN_PROGRESS),
    ("alice", "Book flights to Lisbon", None, TaskStatus.PENDING),
    ("bob", "Review pull request #42", "Focus on the migration", TaskStatus.COMPLETED),
    ("bob", "Café order ☕", "Two flat whites", TaskStatus.PENDING),
    ("carol", "Renew passport", None, TaskStatus.COMPLETED),
]


@app.callback()
def _options(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False,
) -> None:
    _state["debug"] = debug


def _run(make: Callable[[AsyncEngine], Awaitable[T]], database_url: str | None) -> T:
    async def body() -> T:
        engine = create_engine(database_url)
        try:
            return await make(engine)
        finally:
            await engine.dispose()

    try:
        return asyncio.run(body())
    except TodoDataError as exc:
        if _state["debug"]:
            raise
        errors.print(f"[red]error:[/red] {exc}", markup=True, highlight=False)
        raise typer.Exit(1) from None


@app.command()
def demo(database_url: DatabaseUrl = None) -> None:
    """Migrate the database, add a few example tasks and print them.

    Example: todo-data demo
    """

    async def body(engine: AsyncEngine) -> list[Task]:
        await migrations.upgrade(engine)
        async with session_scope(engine) as session:
            session.add_all(
                Task(user_id=user, title=title, description=description, status=status)
                for user, title, description, status in DEMO_TASKS
            )
        async with sessionmaker(engine)() as session:
            return list((await session.execute(select(Task).order_by(col(Task.created_at)))).scalars())

    tasks = _run(body, database_url)
    table = Table(title=f"{len(tasks)} tasks")
    for column in ("user", "title", "status", "created (UTC)"):
        table.add_column(column)
    for task in tasks:
        table.add_row(task.user_id, task.title, str(task.status), f"{task.created_at:%Y-%m-%d %H:%M:%S}")
    console.print(table)
    console.print(f"Database: {describe(create_engine(database_url))}", highlight=False)


def main() -> None:
    """Entry point of the ``todo-data`` console script."""
    app()


if __name__ == "__main__":
    main()
