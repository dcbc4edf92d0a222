"""The exceptions the library raises. Every one derives from :class:`TodoDataError`.

Messages name what failed and how to fix it, and never contain a password: the CLI
prints them as they are. The one warning, :class:`TodoDataWarning`, says what a result
could not hold.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar


class TodoDataError(Exception):
    """Base class of every error raised by ``todo_data``."""


class SettingsError(TodoDataError, ValueError):
    """A setting (usually a database URL) is malformed or unsupported."""


class DatabaseConnectionError(TodoDataError, ConnectionError):
    """The database could not be reached, refused the connection, or the connection was lost
    while an operation was running (the backend was terminated, the server or PgBouncer
    stopped). The message names host, database and the operation; the engine opens a new
    connection for the next call."""


class DatabaseOperationError(TodoDataError):
    """The database refused or interrupted an operation (a statement timeout, a missing
    permission, a write in a read-only transaction), or gave no answer within the statement
    timeout.

    ``sqlstate`` is PostgreSQL's error code when the database gave one (``"25006"`` for a
    write refused by a read-only transaction), else ``None``.
    """

    def __init__(self, message: str, *, sqlstate: str | None = None) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate


class SchemaNotReadyError(TodoDataError):
    """The tasks table does not exist yet: the migrations have not been run."""


class MigrationError(TodoDataError):
    """An Alembic migration failed or was asked for something impossible."""


class ReadReplicaError(TodoDataError):
    """A write was sent to a read replica (a hot standby), which refuses every write."""


class InvalidArgumentError(TodoDataError, ValueError):
    """An argument given to a library function is not valid (checked before any query)."""


class ExportError(TodoDataError, OSError):
    """An export could not write its files (the disk full, a folder not writable): nothing was written."""


class QueryError(DatabaseOperationError):
    """An ad-hoc query (:func:`todo_data.queries.sql`) failed; the message is the database's.

    ``sqlstate`` as for :class:`DatabaseOperationError`.
    """


class MissingExtraError(TodoDataError, ImportError):
    """An optional feature needs a package of one of the project's extras (``polars``)."""


class CopyFormatError(DatabaseOperationError):
    """The bytes are not the binary COPY stream the query was wrapped to produce."""


class ClusterUnavailable(TodoDataError):
    """No PostgreSQL server binaries (or no way to run them) on this machine (:mod:`todo_data.testing`)."""


class TodoDataWarning(UserWarning):
    """A result holds values its frame cannot: read as NaT, null or ±inf instead, never
    wrapped and never failing the query. The message names the column and the count."""


def warn_values(column: str, count: int, read_as: str) -> None:
    """Warn that ``count`` values of ``column`` were read as ``read_as`` (which says why)."""
    noun = "value" if count == 1 else "values"
    warnings.warn(f'column "{column}": {count} {noun} read as {read_as}', TodoDataWarning, stacklevel=3)


# True while the ``todo-data`` command runs a library call: its hints name the command's
# options (--lock-timeout), not the function's arguments (lock_timeout=).
_ON_THE_COMMAND_LINE: ContextVar[bool] = ContextVar("todo_data_on_the_command_line", default=False)


def hint(python: str, command: str) -> str:
    """What a message tells the reader to do: ``command`` under the ``todo-data`` command, else ``python``.

    >>> f"pass {hint('overwrite=True', '--overwrite')} to replace it"
    'pass overwrite=True to replace it'
    """
    return command if _ON_THE_COMMAND_LINE.get() else python


@contextmanager
def on_the_command_line() -> Iterator[None]:
    """While the block runs, :func:`hint` names the command's options and verbs (the CLI enters it)."""
    token = _ON_THE_COMMAND_LINE.set(True)
    try:
        yield
    finally:
        _ON_THE_COMMAND_LINE.reset(token)


def driver_message(exc: BaseException) -> str:
    """The database's own first line of an error, for messages.

    Without SQLAlchemy's wrapping (``(sqlalchemy...) ... [SQL: ...]``) or asyncpg's
    class-name prefix: ``new row for relation "tasks" violates check constraint "…"``.
    """
    cause = getattr(exc, "orig", None) or exc
    lines = str(cause).strip().splitlines()
    return re.sub(r"^<class '[\w.]+'>: ", "", lines[0]) if lines else type(cause).__name__
