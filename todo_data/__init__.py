"""todo_data: the Todo application's data layer, and a toolkit to inspect it from Jupyter.

The most used names are here; the rest live in their modules:

- :mod:`todo_data.queries`: DataFrames of the tasks (frames, distributions, ad-hoc SQL)
- :mod:`todo_data.checks`: the live schema, its constraints, stored violations, one verdict
- :mod:`todo_data.migrations`: Alembic upgrade/downgrade/current/history/drift and a round trip
- :mod:`todo_data.sample`: deterministic demo data

Heavy modules (pandas, Alembic) load on first use, so ``import todo_data`` stays fast.
Every database function is a coroutine: ``await`` it in a notebook, or call
``todo_data.run(...)`` from sync code.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from todo_data.database import Source as Source
from todo_data.database import create_engine as create_engine
from todo_data.database import get_async_session as get_async_session
from todo_data.database import session_scope as session_scope
from todo_data.errors import DatabaseConnectionError as DatabaseConnectionError
from todo_data.errors import InvalidArgumentError as InvalidArgumentError
from todo_data.errors import MigrationError as MigrationError
from todo_data.errors import QueryError as QueryError
from todo_data.errors import SchemaNotReadyError as SchemaNotReadyError
from todo_data.errors import SettingsError as SettingsError
from todo_data.errors import TodoDataError as TodoDataError
from todo_data.models import Task as Task
from todo_data.models import TaskStatus as TaskStatus
from todo_data.runner import run as run
from todo_data.settings import Settings as Settings
from todo_data.settings import get_settings as get_settings

if TYPE_CHECKING:
    from todo_data import checks as checks
    from todo_data import migrations as migrations
    from todo_data import queries as queries
    from todo_data import sample as sample

__version__ = "0.1.0"

_LAZY_MODULES = frozenset({"checks", "migrations", "queries", "sample"})


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext todo_data``: registers the ``%%todo_sql`` cell magic (see :mod:`todo_data.magic`)."""
    from todo_data.magic import load_ipython_extension as load

    load(ipython)


def __getattr__(name: str) -> Any:
    if name in _LAZY_MODULES:
        return importlib.import_module(f"todo_data.{name}")
    raise AttributeError(f"module 'todo_data' has no attribute {name!r}")
