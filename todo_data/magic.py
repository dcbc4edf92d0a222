"""``%%todo_sql``: ad-hoc SQL in a notebook cell, through :func:`todo_data.queries.sql`.

``%load_ext todo_data`` registers it. The cell's SQL runs on the notebook's database
(:func:`todo_data.demo.open_database`: ``DATABASE_URL``, or the embedded demo database),
opened on first use and reused, read-only. ``:name`` parameters take the value of the
notebook variable ``name``, bound by the driver, never formatted into the SQL. The result
is a typed DataFrame: the cell shows its size once and a view of it formatted for people
(:func:`todo_data._display.show`, ``NULL`` where a value is missing), and ``-o NAME``
stores the whole frame in the notebook variable ``NAME``.

.. code-block:: text

    %load_ext todo_data

    %%todo_sql -o late --limit 1000
    SELECT user_id, count(*) AS open_tasks
    FROM tasks
    WHERE status <> 'completed' AND created_at < :cutoff
    GROUP BY user_id ORDER BY open_tasks DESC

``--limit N`` limits on the database: the statement is wrapped in ``SELECT * FROM (…)
LIMIT N + 1``, so the server stops after N + 1 rows and the cell can say honestly
"showing N of at least N + 1 rows"; ``%config TodoSqlMagics.limit = N`` makes it the
default. Tab completes table names, column names (of the tables the cell names, or after
``table.`` and ``alias.``) and keywords from the database's catalog, read once per
database and read again after DDL run in this process (a migration) or on
``%todo_sql_refresh``.

Errors are one line (``UsageError``): a parameter without a variable, an invalid option,
or the database's own message for a failing query (:class:`~todo_data.errors.QueryError`).
This module imports IPython and pandas, so only ``%load_ext`` loads it.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final, cast

import pandas as pd
from IPython import display as ipython_display
from IPython.core.completer import CompletionContext, SimpleCompletion, SimpleMatcherResult, context_matcher
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from IPython.core.magic import Magics, cell_magic, line_magic, magics_class
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncEngine
from traitlets import Integer

from todo_data._display import show
from todo_data._sqlparse import read_statement
from todo_data._tracebacks import show_failures_in_one_line
from todo_data.errors import TodoDataError
from todo_data.queries._placeholders import scan
from todo_data.runner import run

USAGE: Final = "usage: %%todo_sql [-o NAME] [--limit N], where NAME is a Python variable name and N a whole number ≥ 1"

#: Words offered after any others, in the case the word being typed uses.
KEYWORDS: Final = (
    "SELECT", "FROM", "WHERE", "GROUP BY", "ORDER BY", "HAVING", "LIMIT", "OFFSET", "JOIN", "LEFT JOIN",
    "INNER JOIN", "CROSS JOIN", "ON", "USING", "AS", "AND", "OR", "NOT", "IN", "IS NULL", "IS NOT NULL",
    "BETWEEN", "LIKE", "ILIKE", "CASE", "WHEN", "THEN", "ELSE", "END", "DISTINCT", "WITH", "UNION", "UNION ALL",
    "EXCEPT", "INTERSECT", "VALUES", "EXPLAIN", "ASC", "DESC", "NULLS FIRST", "NULLS LAST", "COUNT(*)", "SUM",
    "AVG", "MIN", "MAX", "COALESCE", "CAST", "INTERVAL", "NOW()", "CURRENT_DATE", "DATE_TRUNC", "EXTRACT",
    "FILTER", "OVER", "PARTITION BY", "TRUE", "FALSE", "NULL",
)  # fmt: skip

# Words that end a FROM item instead of naming its alias.
_NOT_ALIASES: Final = frozenset(
    {
        "where", "group", "order", "having", "limit", "offset", "join", "left", "right", "full", "inner", "outer",
        "cross", "natural", "on", "using", "union", "except", "intersect", "window", "fetch", "for", "lateral",
        "tablesample", "as", "from", "select",
    }
)  # fmt: skip
_PLAIN_NAME: Final = re.compile(r"[a-z_][a-z0-9_$]*")
_RESERVED: Final = frozenset(k.lower() for k in KEYWORDS if " " not in k and k.isalpha()) | {"user", "table", "order"}

# IPython's display() has no annotations; its signature, for mypy.
_display = cast(Callable[..., None], ipython_display.display)


def load_ipython_extension(ipython: InteractiveShell) -> None:
    """Register ``%%todo_sql``, ``%todo_sql_refresh``, their completion, and one-line failures.

    Called by ``%load_ext todo_data``.
    """
    magics = TodoSqlMagics(ipython)
    ipython.register_magics(magics)
    completer: Any = ipython.Completer
    completer.custom_matchers[:] = [m for m in completer.custom_matchers if not _is_todo_sql_matcher(m)]
    completer.custom_matchers.append(magics.complete)
    show_failures_in_one_line(ipython)
    if not event.contains(Engine, "after_cursor_execute", _forget_catalogs_after_ddl):
        event.listen(Engine, "after_cursor_execute", _forget_catalogs_after_ddl)


@dataclass
class Catalog:
    """The tables of a database (its default schema) and their columns, in order."""

    tables: dict[str, list[str]] = field(default_factory=dict)
    #: Why reading the catalog failed (then completion offers keywords only), or None.
    failure: str | None = None


#: The catalog of each database the magic completed from, by its URL (password masked).
_catalogs: dict[str, Catalog] = {}


def _forget_catalogs_after_ddl(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
    """A CREATE, ALTER, DROP or RENAME run through any engine of this process (a migration, say)."""
    if _catalogs and statement.lstrip()[:6].upper() in {"CREATE", "ALTER ", "DROP T", "DROP V", "DROP I"}:
        _catalogs.clear()


@magics_class
class TodoSqlMagics(Magics):
    """The ``%%todo_sql`` cell magic, the engine it keeps and its completion."""

    limit = Integer(
        None,
        allow_none=True,
        min=1,
        help="Rows a %%todo_sql cell fetches at most when it gives no --limit (None: every row).",
    ).tag(config=True)

    def __init__(self, shell: InteractiveShell) -> None:
        super().__init__(shell)
        self._engine: AsyncEngine | None = None

    @cell_magic
    def todo_sql(self, line: str, cell: str) -> None:
        """%%todo_sql [-o NAME] [--limit N]: run the cell's SQL on the notebook's database (read-only).

        ``:name`` takes the notebook variable ``name``. Shows the size of the result and a
        view of it; ``-o NAME`` stores the whole DataFrame in ``NAME``. ``--limit N``
        fetches at most N rows, limited by the database (``%config TodoSqlMagics.limit = N``
        for every cell).
        """
        options = _options(line)
        limit = options.limit if options.limit is not None else self.limit
        frame, more = run(self._query(cell, self._params(cell), limit))
        if self._engine is not None and (known := _catalogs.get(_key(self._engine))) and known.failure:
            del _catalogs[_key(self._engine)]  # the database answers now: read its catalog again
        if options.out is not None:
            self._namespace[options.out] = frame
        rows, columns = frame.shape
        counted = f"{columns} column{'s' * (columns != 1)}"
        if more:
            caption = f"showing {rows:,} of at least {rows + 1:,} rows, {counted} (--limit {limit:,})"
        else:
            caption = f"{rows:,} row{'s' * (rows != 1)}, {counted}"
        _display(show(frame, caption=caption, missing="NULL"))

    @line_magic
    def todo_sql_refresh(self, line: str) -> None:
        """%todo_sql_refresh: read the database's tables and columns again, for completion."""
        engine = run(self._opened())
        _catalogs.pop(_key(engine), None)
        catalog = self._catalog()
        if catalog.failure is not None:
            raise UsageError(f"could not read the catalog: {catalog.failure}")
        columns = sum(len(c) for c in catalog.tables.values())
        tables = len(catalog.tables)
        _display(f"{tables} table{'s' * (tables != 1)}, {columns} column{'s' * (columns != 1)} to complete from")

    @context_matcher()  # type: ignore[untyped-decorator]
    def complete(self, context: CompletionContext) -> SimpleMatcherResult:
        """Completions inside a ``%%todo_sql`` cell's SQL; nothing elsewhere (other matchers answer)."""
        first, _, _ = context.full_text.partition("\n")
        words = first.split()
        if context.cursor_line == 0 or not words or words[0] != "%%todo_sql":
            return {"completions": [], "suppress": False}
        sql = context.full_text.split("\n", 1)[1]
        before = context.text_until_cursor
        found = re.search(r'(?:("[^"]*"|[\w$]+)\.)?("?[\w$]*)$', before)
        assert found is not None  # the pattern matches the empty string
        qualifier, prefix = found.group(1), found.group(2)
        if _inside_quotes_or_comment(context.full_text, context.cursor_line, before):
            completions = []
        else:
            table_expected = re.search(r"\b(?:FROM|JOIN)\s+$", before[: found.start()], flags=re.IGNORECASE)
            completions = _completions(self._catalog(), sql, qualifier, prefix, table_expected=bool(table_expected))
        if not completions and found.group(0):
            # IPython lets a matcher silence the others (Python names, magics, file paths:
            # all wrong in SQL) only when it offers something: the word as it is.
            completions = [SimpleCompletion(found.group(0), type="sql")]
        return {"completions": completions, "suppress": True, "matched_fragment": found.group(0)}

    def _catalog(self) -> Catalog:
        """The notebook database's catalog, read on first use and kept (a failure too)."""
        try:
            engine = run(self._opened())
        except TodoDataError as exc:
            return Catalog(failure=str(exc))
        key = _key(engine)
        if key not in _catalogs:
            _catalogs[key] = run(_read_catalog(engine))
        return _catalogs[key]

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

    async def _opened(self) -> AsyncEngine:
        from todo_data import demo

        if self._engine is None:
            self._engine = await demo.open_database()
        return self._engine

    async def _query(self, query: str, params: dict[str, Any], limit: int | None) -> tuple[pd.DataFrame, bool]:
        """The result (at most ``limit`` rows) and whether the database had more."""
        from todo_data import queries

        try:
            engine = await self._opened()
            frame: pd.DataFrame = await queries.sql(engine, _limited(query, limit), params)
        except TodoDataError as exc:
            raise UsageError(f"{type(exc).__name__}: {exc}") from None
        if limit is None or len(frame) <= limit:
            return frame, False
        return frame.iloc[:limit], True


@dataclass(frozen=True)
class _Options:
    out: str | None = None
    limit: int | None = None


def _options(line: str) -> _Options:
    """``-o NAME`` / ``--out NAME`` and ``--limit N`` from the magic's line."""
    try:
        words = shlex.split(line)
    except ValueError as exc:
        raise UsageError(f"%%todo_sql {line}: {exc}") from None
    found: dict[str, str] = {}
    while words:
        option, value = words.pop(0), words.pop(0) if words else None
        name, _, inline = option.partition("=")
        if inline and value is not None:
            words.insert(0, value)
        value = inline or value
        key = {"-o": "out", "--out": "out", "--limit": "limit"}.get(name)
        if key is None or value is None or key in found:
            raise UsageError(f"{USAGE} (got {line.strip()!r})")
        found[key] = value
    out, limit = found.get("out"), found.get("limit")
    if out is not None and not out.isidentifier():
        raise UsageError(f"{USAGE} (got {line.strip()!r})")
    if limit is not None and not (limit.isascii() and limit.isdigit() and int(limit) >= 1):
        raise UsageError(f"--limit takes a whole number of rows ≥ 1, not {limit!r}")
    return _Options(out, int(limit) if limit is not None else None)


def _limited(query: str, limit: int | None) -> str:
    """The query asking the database for ``limit`` + 1 rows at most, when it is a query that can be wrapped.

    EXPLAIN and SHOW (a few rows) are left as they are; so is text PostgreSQL's parser
    refuses, for :func:`queries.sql` to report.
    """
    if limit is None:
        return query
    try:
        body = query[: scan(query).end]
        wrappable = read_statement(body).wrappable
    except TodoDataError:
        return query
    if not wrappable:
        return query
    # On lines of their own: a comment before the statement's end stays a comment.
    return f"SELECT * FROM (\n{body}\n) AS todo_sql_limited LIMIT {limit + 1}"


def _key(engine: AsyncEngine) -> str:
    return engine.url.render_as_string(hide_password=True)


async def _read_catalog(engine: AsyncEngine) -> Catalog:
    from sqlalchemy import inspect

    from todo_data.database import connect

    def read(sync_conn: Any) -> dict[str, list[str]]:
        inspector = inspect(sync_conn)
        names = sorted({*inspector.get_table_names(), *inspector.get_view_names()})
        return {name: [str(c["name"]) for c in inspector.get_columns(name)] for name in names}

    try:
        async with connect(engine) as conn:
            return Catalog(await conn.run_sync(read))
    except TodoDataError as exc:
        return Catalog(failure=str(exc))
    except Exception as exc:  # completion must answer: a catalog it cannot read offers keywords
        return Catalog(failure=f"{type(exc).__name__}: {exc}")


def _quoted(name: str) -> str:
    if _PLAIN_NAME.fullmatch(name) and name not in _RESERVED:
        return name
    return '"' + name.replace('"', '""') + '"'


def _unquoted(word: str) -> str:
    return word[1:-1].replace('""', '"') if len(word) > 1 and word[0] == word[-1] == '"' else word.strip('"')


def _named_tables(catalog: Catalog, sql: str) -> dict[str, str]:
    """Each table the cell names after FROM, JOIN or a comma, and each alias, -> the table."""
    lowered = {name.lower(): name for name in catalog.tables}
    named: dict[str, str] = {}
    item = r'("(?:[^"]|"")+"|[\w$]+)(?:\.("(?:[^"]|"")+"|[\w$]+))?(?:\s+(?:AS\s+)?("(?:[^"]|"")+"|[\w$]+))?'
    for found in re.finditer(rf"(?:\bFROM|\bJOIN|,)\s+{item}", sql, flags=re.IGNORECASE):
        first, second, alias = found.groups()
        word = _unquoted(second or first)
        table = word if word in catalog.tables else lowered.get(word.lower())
        if table is None:
            continue
        named[table] = table
        if alias is not None and alias.lower() not in _NOT_ALIASES:
            named[_unquoted(alias)] = table
    return named


def _completions(
    catalog: Catalog, sql: str, qualifier: str | None, prefix: str, *, table_expected: bool = False
) -> list[SimpleCompletion]:
    """What to offer for ``prefix`` (after ``qualifier.``); only tables where a table is expected."""
    named = _named_tables(catalog, sql)
    wanted = _unquoted(prefix).lower()
    quoting = prefix.startswith('"')

    def matches(name: str) -> bool:
        return name.lower().startswith(wanted)

    def text(name: str) -> str:
        quoted = _quoted(name)
        return quoted if quoted.startswith('"') or not quoting else f'"{name}"'

    if qualifier is not None:
        table = named.get(_unquoted(qualifier)) or (
            _unquoted(qualifier) if _unquoted(qualifier) in catalog.tables else None
        )
        columns = catalog.tables.get(table, []) if table is not None else []
        return [SimpleCompletion(f"{qualifier}.{text(c)}", type="column") for c in columns if matches(c)]
    completions: list[SimpleCompletion] = []
    seen: set[str] = set()
    # The columns of the tables the cell names, or of every table before it names one.
    for table in [] if table_expected else dict.fromkeys(named.values()) if named else catalog.tables:
        for column in catalog.tables[table]:
            if matches(column) and column not in seen:
                seen.add(column)
                completions.append(SimpleCompletion(text(column), type="column"))
    completions += [SimpleCompletion(text(t), type="table") for t in catalog.tables if matches(t) and t not in seen]
    if wanted and not quoting and not table_expected:
        upper = prefix[:1].isupper()
        completions += [
            SimpleCompletion(word if upper else word.lower(), type="keyword")
            for word in KEYWORDS
            if word.lower().startswith(wanted) and word.lower() != wanted
        ]
    return completions


def _inside_quotes_or_comment(full_text: str, cursor_line: int, before: str) -> bool:
    """Whether the cursor is inside a string literal or a comment of the cell's SQL (a rough scan)."""
    lines = full_text.split("\n")
    text = "\n".join([*lines[1:cursor_line], before])
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.DOTALL)
    if "/*" in text:
        return True
    text = re.sub(r"'(?:[^']|'')*'", "''", text)
    if "'" in text:
        return True
    return "--" in text.rsplit("\n", 1)[-1]


def _is_todo_sql_matcher(matcher: object) -> bool:
    return bool(getattr(matcher, "__qualname__", "") == TodoSqlMagics.complete.__qualname__)
