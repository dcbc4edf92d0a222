"""``%%todo_sql``: ad-hoc SQL in a notebook cell, through :func:`todo_data.queries.sql`.

``%load_ext todo_data`` registers it. The cell's SQL runs on the notebook's database
(:func:`todo_data.demo.open_database`: ``DATABASE_URL``, or the embedded demo database),
opened on first use and reused, read-only. ``:name`` parameters take the value of the
notebook variable ``name``, bound by the driver, never formatted into the SQL. The result
is a typed DataFrame: the cell shows its size and a truncated view of it, and
``-o NAME`` stores the whole frame in the notebook variable ``NAME``.

.. code-block:: text

    %load_ext todo_data

    %%todo_sql -o late
    SELECT user_id, count(*) AS open_tasks
    FROM tasks
    WHERE status <> 'completed' AND created_at < :cutoff
    GROUP BY user_id ORDER BY open_tasks DESC

Errors are one line (``UsageError``): a parameter without a variable, an invalid output
name, or the database's own message for a failing query (:class:`~todo_data.errors.QueryError`).
This module imports IPython and pandas, so only ``%load_ext`` loads it.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from typing import Any, Final, cast

import pandas as pd
from IPython import display as ipython_display
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from IPython.core.magic import Magics, cell_magic, magics_class
from sqlalchemy.ext.asyncio import AsyncEngine

from todo_data.errors import TodoDataError
from todo_data.queries._placeholders import scan
from todo_data.runner import run

#: Results longer than this show their first and last :data:`ROWS_SHOWN` // 2 rows only,
#: whatever the notebook's pandas display options: a million-row result must not freeze
#: the browser.
MAX_ROWS_SHOWN: Final = 60
ROWS_SHOWN: Final = 10

# IPython's display() has no annotations; its signature, for mypy.
_display = cast(Callable[..., None], ipython_display.display)


def load_ipython_extension(ipython: InteractiveShell) -> None:
    """Register ``%%todo_sql`` (called by ``%load_ext todo_data``)."""
    ipython.register_magics(TodoSqlMagics(ipython))


@magics_class
class TodoSqlMagics(Magics):
    """The ``%%todo_sql`` cell magic and the engine it keeps."""

    def __init__(self, shell: InteractiveShell) -> None:
        super().__init__(shell)
        self._engine: AsyncEngine | None = None

    @cell_magic
    def todo_sql(self, line: str, cell: str) -> None:
        """%%todo_sql [-o NAME]: run the cell's SQL on the notebook's database (read-only).

        ``:name`` takes the notebook variable ``name``. Shows the number of rows and a
        truncated view of the result; ``-o NAME`` stores the whole DataFrame in ``NAME``.
        """
        out = _output_name(line)
        frame = run(self._query(cell, self._params(cell)))
        if out is not None:
            self._namespace[out] = frame
        rows, columns = frame.shape
        size = f"{rows:,} row{'s' * (rows != 1)}, {columns} column{'s' * (columns != 1)}"
        _display({"text/plain": size, "text/html": f"<p>{size}</p>"}, raw=True)
        with pd.option_context("display.max_rows", MAX_ROWS_SHOWN, "display.min_rows", ROWS_SHOWN):
            _display(frame)

    @property
    def _namespace(self) -> dict[str, Any]:
        assert self.shell is not None  # registered on a shell by load_ipython_extension
        namespace: dict[str, Any] = self.shell.user_ns
        return namespace

    def _params(self, query: str) -> dict[str, Any]:
        """The value of each ``:name`` of the query: the notebook's variable ``name``."""
        try:
            names = scan(query).names
        except TodoDataError as exc:
            raise UsageError(f"{type(exc).__name__}: {exc}") from None
        namespace = self._namespace
        missing = [name for name in names if name not in namespace]
        if missing:
            listed = ", ".join(f":{name}" for name in missing)
            raise UsageError(
                f"no notebook variable for {listed}: define it in a cell above (a :name inside quotes or "
                "a comment is no parameter)"
            )
        return {name: namespace[name] for name in names}

    async def _query(self, query: str, params: dict[str, Any]) -> pd.DataFrame:
        from todo_data import demo, queries

        try:
            if self._engine is None:
                self._engine = await demo.open_database()
            frame: pd.DataFrame = await queries.sql(self._engine, query, params)
        except TodoDataError as exc:
            raise UsageError(f"{type(exc).__name__}: {exc}") from None
        return frame


def _output_name(line: str) -> str | None:
    """NAME from the magic's line (``-o NAME``, ``--out NAME``), or None."""
    try:
        words = shlex.split(line)
    except ValueError as exc:
        raise UsageError(f"%%todo_sql {line}: {exc}") from None
    if not words:
        return None
    if len(words) == 2 and words[0] in {"-o", "--out"} and words[1].isidentifier():
        return words[1]
    raise UsageError(f"usage: %%todo_sql [-o NAME], where NAME is a Python variable name (got {line.strip()!r})")
