"""A small application on todo_data, the way a FastAPI layer uses it.

``create_task`` and ``list_tasks`` have an endpoint's shape: the session is a
dependency, ``Depends(get_async_session)`` in FastAPI. The tests override that
dependency with ``todo_session``, as ``app.dependency_overrides`` would.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import select

from todo_data import Task, get_async_session

#: FastAPI's ``app.dependency_overrides``: a dependency, and what replaces it.
dependency_overrides: dict[Callable[..., Any], Callable[..., AsyncIterator[AsyncSession]]] = {}


async def _session() -> AsyncIterator[AsyncSession]:
    provider = dependency_overrides.get(get_async_session, get_async_session)
    async for session in provider():
        yield session


async def create_task(user_id: str, title: str) -> Task:
    """POST /tasks: add a task and commit it."""
    async for session in _session():
        task = Task(user_id=user_id, title=title)
        session.add(task)
        await session.commit()
        return task
    raise AssertionError("the session dependency yielded nothing")


async def list_tasks(user_id: str) -> list[Task]:
    """GET /tasks: the user's tasks."""
    async for session in _session():
        result = await session.execute(select(Task).where(Task.user_id == user_id).order_by(Task.id))
        return list(result.scalars())
    raise AssertionError("the session dependency yielded nothing")
