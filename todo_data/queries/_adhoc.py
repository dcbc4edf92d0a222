"""Running one read query into Arrow: the statement checked, the transaction, the fetch.

- Parameters are ``:name``, found as PostgreSQL's lexer would (never inside a string
  literal, quoted identifier, dollar quote or comment; see :mod:`todo_data.queries._placeholders`),
  checked against the mapping given, and always bound, never formatted into SQL.
- The text must be exactly one read statement, checked before anything is sent: on
  PostgreSQL by its own parser (:func:`todo_data._sqlparse.read_statement`), on SQLite by
  SQLite's own compiler through an authorizer that allows reading only.
- With an engine the query runs in a READ ONLY transaction (``BEGIN READ ONLY`` on
  PostgreSQL, also for an autocommit connection; ``PRAGMA query_only`` on SQLite), which
  ends in a rollback and leaves no session-level advisory lock behind; a connection or
  session is used as it is.
- PostgreSQL: the statement is described first (result and parameter types, one round
  trip on the extended protocol, which runs one statement only; a uniquely named statement
  deallocated at once, so PgBouncer's transaction mode is safe), then streamed through a
  binary ``COPY`` decoded by :mod:`todo_data.queries._pgcopy`.
  ``COPY`` takes no bound parameters (asyncpg's ``copy_from_query(query, *args)`` would
  quote the values into the SQL text), so each value is bound to ``set_config(..., true)``
  for this transaction and the query reads it back with ``current_setting`` as the type
  PostgreSQL inferred for it, in a scalar subquery: an InitPlan, evaluated once. The
  ``COPY`` travels on the simple protocol, so its whole text is parsed again before it is
  sent and must be one ``COPY`` statement. ``EXPLAIN`` and ``SHOW``, which ``COPY``
  cannot wrap, are fetched as rows on the extended protocol.
- The SQL this module adds around the query names each function and type with its schema
  (``pg_catalog.set_config``, ``pg_catalog.pg_advisory_unlock_all()``…): a function the
  query calls may set ``search_path`` for the rest of the transaction, and a database's
  owner may set it for every session, to put a decoy of the same name first.
- SQLite: rows through the driver, typed from the values (SQLite has no column types).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import sqlite3
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, Final

import pyarrow as pa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from todo_data import _sqlparse
from todo_data._sqliteauth import read_authorizer, read_only_authorizer
from todo_data.database import Source, about, bounded, connect, connection_gone, describe, engine_of, raw_driver
from todo_data.errors import InvalidArgumentError, QueryError, warn_values
from todo_data.queries._pgcopy import ARROW_TYPE, ROW_MARK, UNREPRESENTABLE, CopyDecoder, Kind
from todo_data.queries._placeholders import ScannedText, scan, where

# PostgreSQL type OIDs read natively from the binary format.
PG_KINDS: Final = {
    16: Kind.BOOL,
    20: Kind.INT8,
    21: Kind.INT2,
    23: Kind.INT4,
    25: Kind.TEXT,
    700: Kind.FLOAT4,
    701: Kind.FLOAT8,
    1042: Kind.TEXT,  # char(n)
    1043: Kind.TEXT,  # varchar
    1082: Kind.DATE,
    1114: Kind.TIMESTAMP,
    1184: Kind.TIMESTAMPTZ,
    1186: Kind.INTERVAL,
    1700: Kind.NUMERIC,
    2950: Kind.UUID,
}
# Every other type (json, jsonb, name, enums, arrays, inet, ...) arrives as its PostgreSQL text.


@dataclass(frozen=True)
class Statement:
    """SQL text with ``:name`` parameters, and the value of each (in order of first use).

    ``read`` is the parsed PostgreSQL statement once :func:`checked` has seen it.
    """

    query: str
    values: dict[str, Any]
    scanned: ScannedText
    read: _sqlparse.ReadStatement | None = None

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.values)

    def render(self, placeholder: Callable[[str], str]) -> str:
        """The statement with each ``:name`` replaced by ``placeholder(name)`` (``\\:`` unescaped),
        without trailing semicolons and comments."""
        return self.scanned.render(placeholder)

    def numbered(self) -> str:
        """The SQL with ``$1``, ``$2``… (asyncpg's placeholders), one number per name."""
        return self.numbered_at()[0]

    def numbered_at(self) -> tuple[str, tuple[int, ...]]:
        """:meth:`numbered`, and where each placeholder begins in it."""
        number = {name: index for index, name in enumerate(self.names, start=1)}
        return self.scanned.render_at(lambda name: f"${number[name]}")


def statement(query: object, params: object) -> Statement:
    """A :class:`Statement` with its parameters checked, or :class:`InvalidArgumentError` before any query runs."""
    if not isinstance(query, str) or not query.strip():
        raise InvalidArgumentError(f"query must be SQL text, not {query!r}")
    if params is None:
        params = {}
    if not isinstance(params, Mapping):
        raise InvalidArgumentError(
            f"params must be a mapping of parameter names to values, like {{'user': 'u1'}} for :user, not {params!r}"
        )
    if "\x00" in query:
        # PostgreSQL ends its text at a NUL, and so would the parse check: refused, not cut.
        raise InvalidArgumentError(
            f"query holds a NUL character (\\x00) at {where(query, query.index(chr(0)))}: remove it"
        )
    scanned = scan(query)
    if not query[: scanned.end].strip():
        raise InvalidArgumentError("query holds no statement, only comments or semicolons")
    names = scanned.names
    missing = [f":{name}" for name in names if name not in params]
    if missing:
        raise InvalidArgumentError(
            f"no value for {', '.join(missing)}: add it to params (a :name inside quotes or a comment is no parameter)"
        )
    unused = [repr(key) for key in params if key not in names]
    if unused:
        raise InvalidArgumentError(
            f"params has {', '.join(unused)}, which the query does not use (parameters are written :name, "
            "outside quotes and comments)"
        )
    return Statement(query, {name: params[name] for name in names}, scanned)


def checked(source: Source, stmt: Statement) -> Statement:
    """``stmt`` once it is known to be one read statement for the source's database.

    PostgreSQL's parser judges the text here, before any connection is made; SQLite's
    judgement comes from its own compiler when the statement is prepared (see
    :func:`sqlite_table`), still before it runs.
    """
    if engine_of(source).dialect.name != "postgresql":
        return stmt
    numbered, starts = stmt.numbered_at()
    _placeholders_agree(stmt, numbered, starts)
    return Statement(stmt.query, stmt.values, stmt.scanned, _sqlparse.read_statement(numbered))


def _placeholders_agree(stmt: Statement, numbered: str, starts: Sequence[int]) -> None:
    """Refuse the text unless PostgreSQL's lexer sees each ``$N`` exactly where the scanner put it.

    Every value later goes in at those places; were one of them inside a literal to
    PostgreSQL (or joined to a neighbour, as ``$:x`` would become ``$$1``, a dollar
    quote), what is inserted there could end the literal and change the statement. The
    scanner follows the lexer; this makes a difference between them a refusal, never an
    escape.
    """
    number = {name: index for index, name in enumerate(stmt.names, start=1)}
    parameters = [parameter for parameter in stmt.scanned.parameters if parameter.start < stmt.scanned.end]
    expected = [(start, f"${number[parameter.name]}") for start, parameter in zip(starts, parameters, strict=True)]
    try:
        found = _sqlparse.parameter_tokens(numbered)
    except QueryError:  # the text lexed before its :names became $N: one of them joined a neighbour
        found = []
    if found == expected:
        return
    for (start, placeholder), parameter in zip(expected, parameters, strict=True):
        if (start, placeholder) not in found:
            raise InvalidArgumentError(
                f":{parameter.name} at {where(stmt.query, parameter.start)} is not read as a parameter "
                "by PostgreSQL's lexer: a character next to it joins it to another token or a literal; "
                "put a space or parentheses around it"
            )
    raise InvalidArgumentError(
        "PostgreSQL's lexer reads a placeholder in this query where todo_data's scanner found none; "
        "please report the query"
    )


# -- the transaction -------------------------------------------------------------------------


@asynccontextmanager
async def reading(source: Source) -> AsyncIterator[AsyncConnection]:
    """A connection for one query: READ ONLY when ``source`` is an engine, else the caller's own.

    With an engine the connection goes back to the pool holding nothing: :func:`pg_driver`
    (``read_only=True``) releases what the query's functions may have taken, and the
    transaction is rolled back (so even a ``set_config`` a function made is undone).
    """
    async with connect(source) as conn:
        if not isinstance(source, AsyncEngine):
            yield conn
            return
        if conn.dialect.name == "postgresql":
            # Applied when the transaction begins; SQLAlchemy resets it when the
            # connection returns to the pool. An autocommit connection begins no
            # transaction, so pg_driver opens a read-only one itself.
            await conn.execution_options(postgresql_readonly=True)
            try:
                yield conn
            finally:
                if not connection_gone(conn):
                    with contextlib.suppress(Exception):  # cleanup never replaces the cause
                        await conn.rollback()
            return
        was_query_only = (await conn.exec_driver_sql("PRAGMA query_only")).scalar()
        await conn.exec_driver_sql("PRAGMA query_only = ON")
        try:
            yield conn
        finally:
            if not was_query_only:
                await conn.exec_driver_sql("PRAGMA query_only = OFF")


# Set before the query runs: after a failure the transaction is aborted, and rolling back
# to it is what lets the session's advisory locks be released in that same transaction,
# the only place PgBouncer's transaction mode keeps the same server session.
_SAVEPOINT: Final = "todo_data_read"


# What a rollback leaves on the session: session-level advisory locks, and statements
# PREPAREd in SQL (``from_sql``; the driver's own, prepared on the protocol, stay). One
# round trip, on the simple protocol.
_RELEASE: Final = """DO $$ DECLARE prepared pg_catalog.text; BEGIN
PERFORM pg_catalog.pg_advisory_unlock_all();
FOR prepared IN SELECT s.name FROM pg_catalog.pg_prepared_statements AS s WHERE s.from_sql LOOP
    EXECUTE pg_catalog.format('DEALLOCATE %I', prepared);
END LOOP;
END $$"""


async def _release_session_state(driver: Any, *, failed: bool) -> None:
    """Release what a function the query read may have left on the session past the rollback.

    The SQL itself may call no lock function (:data:`~todo_data._sqlparse.REFUSED_FUNCTIONS`)
    and run no ``PREPARE``, but a function or view it reads may take a session-level
    advisory lock or ``EXECUTE 'PREPARE …'``; a rollback keeps both.
    """
    if driver.is_closed():
        return
    if failed:
        await bounded(driver, driver.execute(f"ROLLBACK TO SAVEPOINT {_SAVEPOINT}"))
    await bounded(driver, driver.execute(_RELEASE))


# -- PostgreSQL ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PgColumn:
    name: str
    kind: Kind
    cast: str | None  # a server-side cast to a type the decoder reads


@dataclass(frozen=True)
class PgQuery:
    """A described statement, ready to run: its columns, and its SQL with the bound placeholders."""

    columns: tuple[PgColumn, ...]
    sql: str
    wrappable: bool
    values: tuple[Any, ...]

    @property
    def kinds(self) -> list[Kind]:
        return [column.kind for column in self.columns]

    def copy_select(self) -> str:
        """The query wrapped for :class:`~todo_data.queries._pgcopy.CopyDecoder`: each row opens with the
        constant :data:`~todo_data.queries._pgcopy.ROW_MARK`, then the columns, cast where needed."""
        aliases = [f"c{index}" for index in range(len(self.columns))]
        values = [
            f"{alias}::{column.cast}" if column.cast else alias
            for alias, column in zip(aliases, self.columns, strict=True)
        ]
        # On lines of their own: the statement may end in a comment.
        select = (
            f"SELECT {ROW_MARK}::pg_catalog.int4, {', '.join(values)} FROM (\n{self.sql}\n) AS _q({', '.join(aliases)})"
        )
        _one_copy(select)
        return select


def _one_copy(select: str) -> None:
    """Refuse to send a ``COPY`` whose text is not one ``COPY`` of a query that only reads.

    asyncpg sends ``COPY (select) TO STDOUT`` on the simple protocol, which runs every
    statement of its text: whatever the values, identifiers and type names in it, the
    text as sent (asyncpg's own spelling of the options) must still be one statement,
    and pass the same read checks as the user's text. A defect of this module, never the
    user's.
    """
    copy = f"COPY ({select}) TO STDOUT (FORMAT 'binary')"
    try:
        _sqlparse.check_copy(copy)
    except (InvalidArgumentError, QueryError) as exc:
        raise QueryError(f"refused to send a COPY that is not one read ({exc}); please report this") from None


@asynccontextmanager
async def pg_driver(conn: AsyncConnection, *, read_only: bool = False) -> AsyncIterator[Any]:
    """asyncpg's connection, inside the transaction.

    The first statement goes through SQLAlchemy, so its transaction (READ ONLY for an
    engine) has begun before asyncpg is used directly. An autocommit connection gets a
    transaction of its own, read-only when ``read_only``: the settings holding the
    parameters live as long as it. With ``read_only`` (an engine's connection, which goes
    back to a pool) nothing the query took outlives it: see :func:`_release_session_state`.
    """
    raw = await conn.get_raw_connection()
    autocommit = bool(getattr(raw.dbapi_connection, "autocommit", False))
    await conn.exec_driver_sql(f"SAVEPOINT {_SAVEPOINT}" if read_only and not autocommit else "SELECT 1")
    async with raw_driver(conn) as driver:
        if getattr(driver.get_settings(), "standard_conforming_strings", "on") != "on":
            # The scanner and the checks read '...' as PostgreSQL does by default, with
            # backslashes as plain characters; with this off the server would read the text
            # differently from the check that allowed it.
            raise InvalidArgumentError(
                f"standard_conforming_strings is off on {describe(conn)}: queries.sql reads SQL text as "
                "PostgreSQL does by default and refuses to run there; turn it on for this role or database"
            )
        transaction = None
        if not driver.is_in_transaction():
            # Only reads run in it, so it is rolled back, never committed.
            transaction = driver.transaction(readonly=read_only)
            await bounded(driver, transaction.start())
            if read_only:
                await bounded(driver, driver.execute(f"SAVEPOINT {_SAVEPOINT}"))
        try:
            yield driver
        except BaseException:
            if read_only:
                with contextlib.suppress(Exception):  # cleanup never replaces the cause
                    await _release_session_state(driver, failed=True)
            raise
        else:
            if read_only:
                await _release_session_state(driver, failed=False)
        finally:
            if transaction is not None and not driver.is_closed():
                with contextlib.suppress(Exception):
                    await bounded(driver, transaction.rollback())


async def pg_prepare(driver: Any, stmt: Statement) -> PgQuery:
    """Describe ``stmt`` and bind its values.

    Where PostgreSQL could only guess a parameter's type as text (``SELECT :x``) and the
    value is no text, the value's own type is cast to and the statement described again,
    so ``{"x": 7}`` gives an integer column, as it would in psycopg.
    """
    number = {name: index for index, name in enumerate(stmt.names, start=1)}
    numbered = stmt.numbered()
    parameters, attributes = await _describe(driver, numbered)
    casts = {
        name: cast
        for name, parameter in zip(stmt.names, parameters, strict=True)
        if (parameter.schema, parameter.name) in _GUESSED_TYPES
        and (cast := _python_type_sql(stmt.values[name])) is not None
    }
    if casts:
        numbered = stmt.render(
            lambda name: f"CAST(${number[name]} AS {casts[name]})" if name in casts else f"${number[name]}"
        )
        parameters, attributes = await _describe(driver, numbered)
    columns = tuple(_pg_column(attribute.name, attribute.type.oid) for attribute in attributes)
    read = stmt.read or _sqlparse.read_statement(numbered)
    if not columns or not read.wrappable:
        return PgQuery(columns, numbered, False, tuple(stmt.values.values()))
    placeholders = await _bind(driver, stmt, [_type_sql(parameter) for parameter in parameters])
    return PgQuery(columns, stmt.render(lambda parameter: placeholders[parameter]), True, ())


async def _describe(driver: Any, sql: str) -> tuple[Any, Any]:
    """Parameter and result types of ``sql``: a uniquely named statement, deallocated at once."""
    name = f"__todo_data_{uuid.uuid4().hex}__"
    prepared = await bounded(driver, driver.prepare(sql, name=name))
    parameters = prepared.get_parameters()
    attributes = prepared.get_attributes()
    del prepared
    await bounded(driver, driver.execute(f'DEALLOCATE "{name}"'))
    return parameters, attributes


# The types PostgreSQL gives a parameter it has nothing to infer from (not a type of the
# same name in another schema).
_GUESSED_TYPES: Final = frozenset({("pg_catalog", "text"), ("pg_catalog", "unknown"), ("pg_catalog", "varchar")})


def _python_type_sql(value: object) -> str | None:
    """The PostgreSQL type of a Python value that is no text, or None for text, NULL and the rest."""
    if isinstance(value, bool):
        return "pg_catalog.bool"
    if isinstance(value, int):
        return "pg_catalog.int8"
    if isinstance(value, float):
        return "pg_catalog.float8"
    if isinstance(value, Decimal):
        return "pg_catalog.numeric"
    if isinstance(value, datetime):
        return "pg_catalog.timestamptz" if value.tzinfo is not None else "pg_catalog.timestamp"
    if isinstance(value, date):
        return "pg_catalog.date"
    if isinstance(value, time):
        return "pg_catalog.time"
    if isinstance(value, timedelta):
        return "pg_catalog.interval"
    if isinstance(value, uuid.UUID):
        return "pg_catalog.uuid"
    if isinstance(value, bytes | bytearray | memoryview):
        return "pg_catalog.bytea"
    return None


def _pg_column(name: str, oid: int) -> PgColumn:
    kind = PG_KINDS.get(oid)
    if kind is not None:
        return PgColumn(name, kind, None)
    return PgColumn(name, Kind.TEXT, "pg_catalog.text")


def _type_sql(parameter: Any) -> str:
    """A parameter's type as SQL: ``"pg_catalog"."int8"``.

    asyncpg spells an array type's name as ``int8[]`` (its ``_int8`` without the
    underscore); only a parameter asyncpg says is an array is named back that way: ``"x[]"``
    is also a legal name for an enum, and ``_x`` may be another type, of the attacker's.
    """
    name = str(parameter.name)
    if parameter.kind == "array":
        name = f"_{name.removesuffix('[]')}"
    return f"{_quote(str(parameter.schema))}.{_quote(name)}"


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


async def _bind(driver: Any, stmt: Statement, types: Sequence[str]) -> dict[str, str]:
    """Bind each value to a transaction-local setting; the SQL that reads each back, by name."""
    import asyncpg

    placeholders: dict[str, str] = {}
    calls: list[str] = []
    values: list[Any] = []
    for index, (name, type_sql) in enumerate(zip(stmt.names, types, strict=True)):
        value = stmt.values[name]
        if value is None:
            # In parentheses: ``:x[1]`` must index the value, not turn the cast into an array type.
            placeholders[name] = f" (NULL::{type_sql}) "
            continue
        setting = f"todo_data.p{index}"
        values.append(value)
        # Text is handed over as it is and parsed by PostgreSQL as the parameter's type;
        # anything else is encoded by asyncpg as that type, then turned into its text.
        as_text = "pg_catalog.text" if isinstance(value, str) else f"{type_sql}::pg_catalog.text"
        calls.append(f"pg_catalog.set_config('{setting}', ${len(values)}::{as_text}, true)")
        # A scalar subquery is an InitPlan, evaluated once; the outer CAST keeps it an
        # expression where a bare subquery would change the meaning (``= ANY(:ids)``).
        # Spaces around: nothing next to the placeholder can join what replaces it.
        placeholders[name] = f" CAST((SELECT pg_catalog.current_setting('{setting}')::{type_sql}) AS {type_sql}) "
    if calls:
        try:
            await bounded(driver, driver.fetch(f"SELECT {', '.join(calls)}", *values))
        except asyncpg.DataError as exc:
            raise InvalidArgumentError(_value_error(stmt, str(exc))) from None
    return placeholders


def _value_error(stmt: Statement, message: str) -> str:
    """asyncpg's message about ``$N`` of the set_config call, told about ``:name``."""
    given = [name for name in stmt.names if stmt.values[name] is not None]
    found = re.search(r"query argument \$(\d+)", message)
    if found and int(found.group(1)) <= len(given):
        name = given[int(found.group(1)) - 1]
        message = message.replace(found.group(0), f"parameter :{name}")
    return message.splitlines()[0]


async def pg_rows(driver: Any, query: PgQuery) -> list[pa.Array]:
    """A statement COPY cannot wrap, fetched as rows and typed like the COPY path."""
    records = await bounded(driver, driver.fetch(query.sql, *query.values))
    return [_python_array([record[index] for record in records], column) for index, column in enumerate(query.columns)]


def _python_array(values: list[Any], column: PgColumn) -> pa.Array:
    if column.kind is Kind.TEXT or column.kind is Kind.UUID:
        values = [None if value is None else value if isinstance(value, str) else str(value) for value in values]
    elif column.kind is Kind.NUMERIC:
        values = [float(value) if isinstance(value, Decimal) else value for value in values]
    return pa.array(values, type=ARROW_TYPE[column.kind])


def _warn_unrepresentable(columns: Sequence[PgColumn], counts: Sequence[int]) -> None:
    """A warning per column with values its Arrow type cannot hold (see ``_pgcopy.UNREPRESENTABLE``)."""
    for column, count in zip(columns, counts, strict=True):
        if count:
            warn_values(column.name, count, UNREPRESENTABLE[column.kind])


def table(columns: Sequence[PgColumn] | Sequence[str], arrays: Sequence[pa.Array]) -> pa.Table:
    names = [column if isinstance(column, str) else column.name for column in columns]
    return pa.Table.from_arrays(list(arrays), names=names) if names else pa.table({})


async def pg_table(
    conn: AsyncConnection, stmt: Statement, *, order_by: Sequence[str] = (), read_only: bool = False
) -> pa.Table:
    """The whole result as one table.

    ``order_by`` names result columns of fixed-width types (a statement ``COPY`` can wrap):
    the rows are then sorted here, as PostgreSQL's ``ORDER BY`` those columns would sort
    them (see :class:`~todo_data.queries._pgcopy.CopyDecoder`), which spares the server the sort.
    """
    async with pg_driver(conn, read_only=read_only) as driver:
        query = await pg_prepare(driver, stmt)
        if not query.wrappable:
            assert not order_by, "only a statement COPY wraps can be ordered on the client"
            return table(query.columns, await pg_rows(driver, query))
        names = [column.name for column in query.columns]
        decoder = CopyDecoder(query.kinds, order_by=[names.index(name) for name in order_by])
        await driver.copy_from_query(query.copy_select(), output=decoder.receive, format="binary")
        decoder.finish()
    _warn_unrepresentable(query.columns, decoder.unrepresentable)
    return table(query.columns, decoder.columns())


async def pg_batches(
    conn: AsyncConnection, stmt: Statement, chunk_size: int, *, read_only: bool = False
) -> AsyncGenerator[pa.Table, None]:
    """The result in tables of at most ``chunk_size`` rows, the COPY paused while one is used.

    The receive callback waits for the consumer (a queue of one table), and asyncpg stops
    reading while it waits, so the server is held back by TCP: memory stays bounded.
    """
    async with pg_driver(conn, read_only=read_only) as driver:
        query = await pg_prepare(driver, stmt)
        if not query.wrappable:
            whole = table(query.columns, await pg_rows(driver, query))
            for offset in range(0, whole.num_rows, chunk_size):
                yield whole.slice(offset, chunk_size)
            return
        decoder = CopyDecoder(query.kinds, batch_rows=chunk_size)
        queue: asyncio.Queue[pa.Table] = asyncio.Queue(maxsize=1)
        warned = [0] * len(query.columns)

        async def hand_over(batches: list[list[pa.Array]]) -> None:
            counts = decoder.unrepresentable
            _warn_unrepresentable(query.columns, [now - before for now, before in zip(counts, warned, strict=True)])
            warned[:] = counts
            for arrays in batches:
                await queue.put(table(query.columns, arrays))

        async def receive(chunk: bytes) -> None:
            decoder.feed(chunk)
            await hand_over(decoder.take())

        async def produce() -> None:
            await driver.copy_from_query(query.copy_select(), output=receive, format="binary")
            decoder.finish()
            await hand_over(decoder.take())

        # asyncpg misses a connection lost while the receive callback waits for the consumer:
        # it then waits for the next message forever. Its termination listener does not.
        lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def on_lost(_driver: Any) -> None:
            if not lost.done():
                lost.set_result(None)

        driver.add_termination_listener(on_lost)
        producer = asyncio.create_task(produce())
        getter: asyncio.Future[pa.Table] | None = None
        try:
            while True:
                getter = asyncio.ensure_future(queue.get())
                await asyncio.wait({getter, producer, lost}, return_when=asyncio.FIRST_COMPLETED)
                if lost.done() and not producer.done():
                    import asyncpg

                    raise asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation")
                if getter.done():
                    yield getter.result()
                    continue
                getter.cancel()
                producer.result()  # the COPY's error, if it failed
                while not queue.empty():
                    yield queue.get_nowait()
                return
        finally:
            driver.remove_termination_listener(on_lost)
            if getter is not None:
                getter.cancel()
            if not producer.done():
                # Stopped early, or the connection is gone. asyncpg cannot abandon a COPY half
                # read and use the connection again, so it is closed at once (the server then
                # stops too) and SQLAlchemy replaces it, as after a lost connection.
                with contextlib.suppress(Exception):  # cleanup never replaces the cause
                    await conn.invalidate()
                producer.cancel()
                await asyncio.wait({producer})
                if not producer.cancelled():
                    producer.exception()  # retrieved: the closed connection's error, expected


# -- SQLite ------------------------------------------------------------------------------------------


@asynccontextmanager
async def _sqlite_cursor(conn: AsyncConnection, stmt: Statement) -> AsyncIterator[Any]:
    """An aiosqlite cursor on ``stmt``, compiled under :func:`~todo_data._sqliteauth.read_authorizer`.

    The driver is used directly so the text reaches SQLite exactly as scanned: ``:name``
    becomes ``?``, literals stay as written. The sqlite3 module runs one statement at a
    time; SQLite's compiler asks the authorizer about every table, column, function and
    pragma, so anything but a read is refused before the statement runs.
    """
    raw = await conn.get_raw_connection()
    driver = raw.driver_connection
    assert driver is not None
    sql = stmt.render(lambda _name: "?")
    values = [stmt.values[parameter.name] for parameter in stmt.scanned.parameters]
    refused: list[str] = []
    await driver.set_authorizer(read_authorizer(refused))
    try:
        try:
            cursor = await driver.execute(sql, values)
        except sqlite3.ProgrammingError as exc:  # several statements, a wrong number of values
            raise InvalidArgumentError(f"the query must be one read statement with its parameters: {exc}") from None
        except sqlite3.DatabaseError as exc:
            if refused:
                raise InvalidArgumentError(
                    f"the query must be one read statement, but it asks SQLite for {', '.join(dict.fromkeys(refused))}:"
                    " to write, use a session (todo_data.session_scope) of your own"
                ) from None
            raise QueryError(f"The query failed on {describe(conn)}: {exc}") from exc
    finally:
        await driver.set_authorizer(_sqlite_base_authorizer(conn))
    try:
        yield cursor
    finally:
        await cursor.close()


def _sqlite_base_authorizer(conn: AsyncConnection) -> Any:
    """The authorizer the connection keeps between queries: a read-only engine's, or none."""
    return read_only_authorizer if about(conn).read_only else None


async def sqlite_table(conn: AsyncConnection, stmt: Statement) -> pa.Table:
    async with _sqlite_cursor(conn, stmt) as cursor:
        if cursor.description is None:
            return pa.table({})
        names = [column[0] for column in cursor.description]
        return _rows_table(names, await cursor.fetchall())


async def sqlite_batches(conn: AsyncConnection, stmt: Statement, chunk_size: int) -> AsyncGenerator[pa.Table, None]:
    async with _sqlite_cursor(conn, stmt) as cursor:
        if cursor.description is None:
            return
        names = [column[0] for column in cursor.description]
        while rows := await cursor.fetchmany(chunk_size):
            yield _rows_table(names, rows)


def _rows_table(names: list[str], rows: Sequence[Sequence[Any]]) -> pa.Table:
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in names]
    return table(names, [_sqlite_array(list(values)) for values in columns])


def _sqlite_array(values: list[Any]) -> pa.Array:
    """A column of SQLite values (int, float, str, bytes or None) typed from what it holds."""
    kinds = {type(value) for value in values if value is not None}
    if kinds <= {int, bool} and kinds:
        return pa.array(values, type=pa.int64())
    if kinds <= {int, float, bool} and kinds:
        return pa.array([None if value is None else float(value) for value in values], type=pa.float64())
    if kinds == {bytes}:
        return pa.array(values, type=pa.large_binary())
    return pa.array([None if value is None else str(value) for value in values], type=pa.large_string())
