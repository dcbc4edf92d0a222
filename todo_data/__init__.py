"""todo_data: the Todo application's data layer, and a toolkit to inspect it from Jupyter.

The most used names are here; the rest live in their modules:

- :mod:`todo_data.queries`: DataFrames of the tasks (frames, distributions, ad-hoc SQL)
- :mod:`todo_data.checks`: the live schema, its constraints, stored violations, one verdict
- :mod:`todo_data.migrations`: Alembic upgrade/downgrade/current/history/drift and a round trip
- :mod:`todo_data.sample`: deterministic demo data
- :mod:`todo_data.demo`: the database a notebook opens (``DATABASE_URL``, or the demo)
- :func:`todo_data.show`: a frame as a notebook cell should show it to people

Every database function is a coroutine: ``await`` it in a notebook, or call
``todo_data.run(...)`` from sync code.

``import todo_data`` loads none of SQLAlchemy, SQLModel, pydantic-settings, pandas or
Alembic: each name below is imported from its module on first use (PEP 562), so the
package and the ``todo-data`` command start fast. Type checkers see the imports under
``TYPE_CHECKING``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from todo_data.errors import ClusterUnavailable as ClusterUnavailable
from todo_data.errors import CopyFormatError as CopyFormatError
from todo_data.errors import DatabaseConnectionError as DatabaseConnectionError
from todo_data.errors import DatabaseOperationError as DatabaseOperationError
from todo_data.errors import ExportError as ExportError
from todo_data.errors import InvalidArgumentError as InvalidArgumentError
from todo_data.errors import MigrationError as MigrationError
from todo_data.errors import MissingExtraError as MissingExtraError
from todo_data.errors import QueryError as QueryError
from todo_data.errors import ReadReplicaError as ReadReplicaError
from todo_data.errors import SchemaNotReadyError as SchemaNotReadyError
from todo_data.errors import SettingsError as SettingsError
from todo_data.errors import TodoDataError as TodoDataError
from todo_data.errors import TodoDataWarning as TodoDataWarning

if TYPE_CHECKING:
    from todo_data import checks as checks
    from todo_data import demo as demo
    from todo_data import migrations as migrations
    from todo_data import queries as queries
    from todo_data import sample as sample
    from todo_data._display import show as show
    from todo_data.database import Source as Source
    from todo_data.database import create_engine as create_engine
    from todo_data.database import create_read_engine as create_read_engine
    from todo_data.database import get_async_session as get_async_session
    from todo_data.database import session_scope as session_scope
    from todo_data.models import Task as Task
    from todo_data.models import TaskStatus as TaskStatus
    from todo_data.runner import run as run
    from todo_data.settings import Settings as Settings
    from todo_data.settings import get_settings as get_settings

__version__ = "0.1.0"

# name -> the module it lives in (the table of contents above, for the interpreter)
_LAZY: dict[str, str] = {
    "Source": "todo_data.database",
    "create_engine": "todo_data.database",
    "create_read_engine": "todo_data.database",
    "get_async_session": "todo_data.database",
    "session_scope": "todo_data.database",
    "Task": "todo_data.models",
    "TaskStatus": "todo_data.models",
    "run": "todo_data.runner",
    "show": "todo_data._display",
    "Settings": "todo_data.settings",
    "get_settings": "todo_data.settings",
    "checks": "todo_data.checks",
    "demo": "todo_data.demo",
    "migrations": "todo_data.migrations",
    "queries": "todo_data.queries",
    "sample": "todo_data.sample",
}

__all__ = [
    "ClusterUnavailable",
    "CopyFormatError",
    "DatabaseConnectionError",
    "DatabaseOperationError",
    "ExportError",
    "InvalidArgumentError",
    "MigrationError",
    "MissingExtraError",
    "QueryError",
    "ReadReplicaError",
    "SchemaNotReadyError",
    "SettingsError",
    "TodoDataError",
    "TodoDataWarning",
    *_LAZY,
]


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext todo_data``: ``%%todo_sql`` with completion, and one-line failures (see :mod:`todo_data.magic`)."""
    from todo_data.magic import load_ipython_extension as load

    load(ipython)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'todo_data' has no attribute {name!r}")
    value = importlib.import_module(module)
    if module != f"todo_data.{name}":
        value = getattr(value, name)
    globals()[name] = value  # found once, then an ordinary attribute
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
