"""The database the notebooks and ``todo-data demo`` open.

With ``DATABASE_URL`` set (a Neon connection string, say), that database, as it is.
Without it, the embedded SQLite demo database: migrated and seeded with sample data
the first time, so a notebook shows something on a fresh machine.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from todo_data.database import connect, create_engine
from todo_data.models import Task
from todo_data.settings import get_settings

DEMO_TASKS = 10_000


def uses_demo_database() -> bool:
    """True when no ``DATABASE_URL`` is configured and the embedded SQLite default applies."""
    return "database_url" not in get_settings().model_fields_set


async def prepare(
    engine: AsyncEngine, *, tasks: int = DEMO_TASKS, progress: Callable[[int, int], None] | None = None
) -> int:
    """Migrate a database and seed it with sample data when it has no task; returns rows added."""
    from todo_data import migrations, sample  # Alembic and the generator load on first use

    await migrations.upgrade(engine)
    async with connect(engine) as conn:
        existing = (await conn.execute(select(func.count()).select_from(Task))).scalar_one()
    if existing:
        return 0
    return await sample.seed(engine, tasks=tasks, progress=progress)


async def open_database(*, read_only: bool = True) -> AsyncEngine:
    """An engine for notebooks: ``DATABASE_URL`` if set, else the demo database (prepared).

    Read-only by default, so an analysis never writes by accident.

    >>> engine = await open_database()     # doctest: +SKIP
    """
    if uses_demo_database():
        writer = create_engine()
        try:
            await prepare(writer)
        finally:
            await writer.dispose()
    return create_engine(read_only=read_only)
