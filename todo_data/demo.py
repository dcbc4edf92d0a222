"""The database the notebooks and ``todo-data demo`` open, and the example notebooks themselves.

With ``DATABASE_URL`` set (a Neon connection string, say), that database, as it is, or,
for reading, its read replica ``DATABASE_READ_URL`` when that is set. Without it, the
embedded SQLite demo database: migrated and seeded with sample data the first time, so
a notebook shows something on a fresh machine — and says plainly that it is the demo,
and how to open a real database instead.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Final

from todo_data.errors import InvalidArgumentError

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

# SQLAlchemy, the model, Alembic and the generator load on first use: the CLI imports
# this module to build its --help.

DEMO_TASKS: Final = 10_000

DATABASE_URL_EXAMPLE: Final = (
    "DATABASE_URL=postgresql://USER:PASSWORD@ep-xxx-123456.us-east-2.aws.neon.tech/neondb?sslmode=require"
)


def uses_demo_database() -> bool:
    """True when no ``DATABASE_URL`` is configured and the embedded SQLite default applies."""
    from todo_data.settings import get_settings

    return "database_url" not in get_settings().model_fields_set


async def prepare(
    engine: AsyncEngine, *, tasks: int = DEMO_TASKS, progress: Callable[[int, int], None] | None = None
) -> int:
    """Migrate a database and seed it with sample data when it has no task; returns rows added."""
    from sqlalchemy import func, select

    from todo_data import migrations, sample
    from todo_data.database import connect
    from todo_data.models import Task

    await migrations.upgrade(engine)
    async with connect(engine) as conn:
        existing = (await conn.execute(select(func.count()).select_from(Task))).scalar_one()
    if existing:
        return 0
    return await sample.seed(engine, tasks=tasks, progress=progress)


async def open_database(*, read_only: bool = True, replica: bool = True) -> AsyncEngine:
    """An engine for notebooks: the read replica or ``DATABASE_URL`` if set, else the demo database.

    Read-only by default, so an analysis never writes by accident, and then on the read
    replica when ``DATABASE_READ_URL`` is set, so it does not load the primary.
    ``read_only=False`` (the constraint probe writes, then rolls back) or
    ``replica=False`` (migrations, which must see the primary's schema as it is now)
    open ``DATABASE_URL``. The engine says what it opened when a cell shows it: the demo
    database, with how to set ``DATABASE_URL``, or the configured database (backend,
    host, database, user, read-only, pooled; never the password), where its URL came
    from and, for the replica, that it is one. In IPython (a notebook), a cell that fails
    with a ``TodoDataError`` or that Stop interrupted shows one line from then on
    (:mod:`todo_data._tracebacks`).

    >>> engine = await open_database()     # doctest: +SKIP
    >>> engine                             # doctest: +SKIP
    Demo database: sample data, not yours.
    SQLite database /home/me/project/notebooks/todo_data.db
    ...
    """
    from todo_data._tracebacks import show_failures_in_one_line_in_ipython
    from todo_data.database import add_note, create_engine, create_read_engine
    from todo_data.settings import find_dotenv, get_settings, source_of

    show_failures_in_one_line_in_ipython()

    if read_only and replica and get_settings().database_read_url is not None:
        engine = create_read_engine()
        add_note(
            engine,
            f"DATABASE_READ_URL from {source_of('DATABASE_READ_URL')}: a read replica, which shows the "
            "primary's data as of a moment ago (checks.replication says how far behind it is); "
            "writes go to DATABASE_URL.",
            title="Read replica.",
        )
        return engine
    if uses_demo_database():
        writer = create_engine()
        try:
            await prepare(writer)
        finally:
            await writer.dispose()
        engine = create_engine(read_only=read_only)
        dotenv = find_dotenv()
        looked = f"in {dotenv}" if dotenv else "in a .env file in this folder or above it"
        add_note(
            engine,
            f"No DATABASE_URL was found in the environment or {looked}.\n"
            "To open your own database, set DATABASE_URL there (or in the environment) and restart the kernel, e.g.\n"
            f"    {DATABASE_URL_EXAMPLE}",
            title="Demo database: sample data, not yours.",
        )
        return engine
    engine = create_engine(read_only=read_only)
    add_note(engine, f"DATABASE_URL from {source_of('DATABASE_URL')}.")
    return engine


def example_notebooks() -> list[Path]:
    """The example notebooks: shipped inside the wheel, or ``notebooks/`` in a checkout; in order."""
    package = Path(__file__).resolve().parent
    for candidate in (package / "_notebooks", package.parent / "notebooks"):
        found = sorted(candidate.glob("*.ipynb"))
        if found:
            return found
    raise InvalidArgumentError(f"The example notebooks are not installed next to {package}")  # pragma: no cover


def copy_notebooks(directory: str | os.PathLike[str], *, overwrite: bool = False) -> tuple[list[Path], list[Path]]:
    """Copy the example notebooks into ``directory`` (created when missing): (copied, skipped as already there).

    A notebook already in ``directory`` is kept unless ``overwrite=True``. Each notebook
    opens the embedded demo database in its own folder, or ``DATABASE_URL``'s.
    """
    target = Path(directory)
    if target.exists() and not target.is_dir():
        raise InvalidArgumentError(f"{target} is a file, not a folder: give the folder to copy the notebooks into")
    target.mkdir(parents=True, exist_ok=True)
    copied: list[Path] = []
    skipped: list[Path] = []
    for notebook in example_notebooks():
        destination = target / notebook.name
        if destination.exists() and not overwrite:
            skipped.append(destination)
            continue
        shutil.copyfile(notebook, destination)
        copied.append(destination)
    return copied, skipped
