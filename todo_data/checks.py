"""The live schema, its constraints and the stored data, checked against the rules.

- :func:`constraints`: the primary key, indexes and CHECK constraints as the database
  itself describes them (PostgreSQL's catalog, SQLite's stored schema).
- :func:`probe`: every invalid write the rules forbid, each tried and rolled back:
  proof that the database itself refuses them.
- :func:`violations`: stored rows that break today's rules.
- :func:`verify`: the migration revision, :func:`~todo_data.migrations.drift`, the probe
  and the violations in one table and one verdict.

The probe and the violations read the rule table (:data:`todo_data.rules.RULES`) when
they run: the probe tries each rule's probe values, the violations apply each rule's SQL
predicate for the database at hand.

Sync code calls them through :func:`todo_data.run`.
"""

from __future__ import annotations

import html
import re
import uuid
from collections import Counter
from dataclasses import dataclass
from typing import Any, Final

import pandas as pd
from sqlalchemy import Select, Table, Text, cast, func, inspect, literal, select, text, union_all
from sqlalchemy import column as sql_column
from sqlalchemy import table as sql_table
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from todo_data import migrations, rules
from todo_data._args import StepProgress
from todo_data._display import show
from todo_data.database import Source, connect, describe, located, operation, require_primary
from todo_data.errors import InvalidArgumentError, ReadReplicaError, SchemaNotReadyError, driver_message, hint
from todo_data.models import Task
from todo_data.replication import replication as replication
from todo_data.rules import EXISTING_VALUE, STRIPPED, TABLE_NAME, Rule, require_tasks_table, strip_sql
from todo_data.triggers import live_triggers

#: The columns of :func:`constraints`' frame.
CONSTRAINT_COLUMNS: Final = ("name", "kind", "columns", "definition")
#: The columns of :func:`probe`'s frame.
PROBE_COLUMNS: Final = ("rule", "column", "value", "rejected", "error")
#: The columns of :func:`violations`' frame.
VIOLATION_COLUMNS: Final = ("id", "column", "rule", "value")
#: The columns of :attr:`Verification.frame`.
VERIFY_COLUMNS: Final = ("check", "ok", "detail")

#: The longest text shown as it is; longer values read ``'ddd…' (1001 chars)``.
DISPLAY_LENGTH: Final = 40

Progress = StepProgress

_TABLE: Final[Table] = Task.__table__  # type: ignore[attr-defined]
_KIND_ORDER: Final = {"primary_key": 0, "unique": 1, "foreign_key": 2, "index": 3, "check": 4, "trigger": 5}


# ------------------------------------------------------------------------------ constraints


@operation("checks.constraints")
async def constraints(source: Source) -> pd.DataFrame:
    """The live primary key, indexes and constraints of the tasks table, from the database.

    Columns: name, kind (``primary_key``, ``index``, ``check``, ``trigger``; ``unique`` and
    ``foreign_key`` if any exist), columns (comma-separated; for a trigger, the columns
    its definition and function mention) and definition, as the database states it
    (PostgreSQL's ``pg_get_constraintdef``/``pg_get_indexdef``/``pg_get_triggerdef``, or
    the SQL SQLite stored). Raises :class:`SchemaNotReadyError` when the table is missing.
    """
    async with connect(source) as conn:
        await require_tasks_table(conn, where=located(source))
        if conn.dialect.name == "postgresql":
            result = await conn.execute(_POSTGRES_CONSTRAINTS, {"table": TABLE_NAME})
            rows = [dict(row._mapping) for row in result]
        else:
            rows = await conn.run_sync(_sqlite_constraints)
        rows += await conn.run_sync(_triggers)
    rows.sort(key=lambda row: (_KIND_ORDER.get(row["kind"], 9), row["name"]))
    return pd.DataFrame(rows, columns=list(CONSTRAINT_COLUMNS))


_POSTGRES_CONSTRAINTS: Final = text(
    """
    SELECT c.conname AS name,
           CASE c.contype WHEN 'p' THEN 'primary_key' WHEN 'c' THEN 'check'
                          WHEN 'u' THEN 'unique' ELSE 'foreign_key' END AS kind,
           array_to_string(ARRAY(
               SELECT a.attname FROM unnest(c.conkey) WITH ORDINALITY AS k(attnum, n)
               JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum
               ORDER BY k.n), ', ') AS columns,
           pg_get_constraintdef(c.oid) AS definition
    FROM pg_constraint c
    WHERE c.conrelid = to_regclass(:table) AND c.contype IN ('p', 'c', 'u', 'f')
    UNION ALL
    SELECT i.relname, 'index',
           array_to_string(ARRAY(
               SELECT a.attname FROM unnest(x.indkey::int2[]) WITH ORDINALITY AS k(attnum, n)
               JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.attnum
               ORDER BY k.n), ', '),
           pg_get_indexdef(x.indexrelid)
    FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
    WHERE x.indrelid = to_regclass(:table)
      -- indexes behind a primary key or unique constraint are listed as that constraint
      AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid)
    """
)


def _sqlite_constraints(connection: Connection) -> list[dict[str, Any]]:
    # SQLite keeps no catalog of constraints, only the CREATE statements; SQLAlchemy's
    # inspector parses them (names included) and sqlite_master holds each index's SQL.
    inspector = inspect(connection)
    table_columns = [column["name"] for column in inspector.get_columns(TABLE_NAME)]
    rows: list[dict[str, Any]] = []
    pk = inspector.get_pk_constraint(TABLE_NAME)
    if pk["constrained_columns"]:
        columns = ", ".join(pk["constrained_columns"])
        rows.append(_constraint(pk.get("name"), "primary_key", columns, f"PRIMARY KEY ({columns})"))
    for unique in inspector.get_unique_constraints(TABLE_NAME):
        columns = ", ".join(unique["column_names"])
        rows.append(_constraint(unique["name"], "unique", columns, f"UNIQUE ({columns})"))
    for fk in inspector.get_foreign_keys(TABLE_NAME):
        columns = ", ".join(fk["constrained_columns"])
        target = f"{fk['referred_table']}({', '.join(fk['referred_columns'])})"
        rows.append(_constraint(fk.get("name"), "foreign_key", columns, f"FOREIGN KEY ({columns}) REFERENCES {target}"))
    index_sql: dict[str, str] = dict(
        connection.execute(
            text("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = :table AND sql IS NOT NULL"),
            {"table": TABLE_NAME},
        ).all()
    )
    for index in inspector.get_indexes(TABLE_NAME):
        name = str(index["name"])
        columns = ", ".join(str(column) for column in index["column_names"])
        rows.append(_constraint(name, "index", columns, index_sql.get(name, "")))
    for check in inspector.get_check_constraints(TABLE_NAME):
        sql = str(check["sqltext"])
        columns = ", ".join(name for name in table_columns if re.search(rf"\b{re.escape(name)}\b", sql))
        rows.append(_constraint(check["name"], "check", columns, f"CHECK ({sql})"))
    return rows


def _triggers(connection: Connection) -> list[dict[str, Any]]:
    columns = [column.name for column in _TABLE.columns]
    rows = []
    for trigger in live_triggers(connection, TABLE_NAME):
        sql = f"{trigger.definition} {trigger.function_body}"
        used = ", ".join(name for name in columns if re.search(rf"\b{re.escape(name)}\b", sql))
        rows.append(_constraint(trigger.name, "trigger", used, trigger.definition))
    return rows


def _constraint(name: str | None, kind: str, columns: str, definition: str) -> dict[str, Any]:
    return {"name": name or "(unnamed)", "kind": kind, "columns": columns, "definition": definition}


# ------------------------------------------------------------------------------------ probe


@dataclass(frozen=True)
class _Probe:
    """One invalid write: a valid row with one column set to a value a rule forbids."""

    rule: str
    column: str
    value: Any

    @property
    def shown(self) -> str:
        return f"the {self.column} of an existing row" if self.value is EXISTING_VALUE else display(self.value)


def _probes() -> list[_Probe]:
    """The invalid writes :func:`probe` tries: every probe value of every rule in the table."""
    return [
        _Probe(rule.enforced_by or f"{rule.column} {rule.kind}", rule.column, value)
        for rule in rules.RULES
        for value in rule.probes
    ]


@operation("checks.probe")
async def probe(source: Source) -> pd.DataFrame:
    """Try every write the rules forbid; report whether the database rejected each one.

    The writes come from the rules (:data:`todo_data.rules.RULES`): each rule's probe
    values, each in a valid row (a NULL in a NOT NULL column, an empty or blank title, a
    title one character too long, a duplicate id, …). Each runs in
    its own savepoint, which is rolled back: no row is left behind, even where a
    constraint is missing and the write succeeds. Columns: rule (the constraint or
    ``<column> NOT NULL``), column, value (shortened for display), rejected and error
    (the database's message). A caller's open transaction is left as it was.

    Needs a role that may INSERT (a ``read_only`` engine cannot probe): raises
    :class:`InvalidArgumentError` when the database refuses writes for another reason
    than the rule under test, and :class:`SchemaNotReadyError` without a tasks table.
    """
    rows: list[dict[str, Any]] = []
    async with connect(source) as conn:
        await require_primary(conn, source, to="be probed (the probe tries writes, then rolls them back)")
        await require_tasks_table(conn, where=located(source))
        for attempt in _probes():
            rejected, error = await _try(conn, attempt, source)
            rows.append(
                {
                    "rule": attempt.rule,
                    "column": attempt.column,
                    "value": attempt.shown,
                    "rejected": rejected,
                    "error": error,
                }
            )
    return pd.DataFrame(rows, columns=list(PROBE_COLUMNS))


def _valid_row() -> dict[str, Any]:
    # The model's own output: valid under today's Python rules by construction.
    task = Task(user_id="probe", title="probe")
    return {column.name: getattr(task, column.name) for column in _TABLE.columns}


async def _try(conn: AsyncConnection, attempt: _Probe, source: Source) -> tuple[bool, str | None]:
    if not conn.in_transaction():
        await conn.begin()
    savepoint = await conn.begin_nested()
    try:
        row = _valid_row()
        if attempt.value is EXISTING_VALUE:
            existing = _valid_row()
            await conn.execute(_TABLE.insert().values(**existing))
            row[attempt.column] = existing[attempt.column]
        else:
            row[attempt.column] = attempt.value
        await conn.execute(_TABLE.insert().values(**row))
    except (IntegrityError, DataError) as exc:
        return True, driver_message(exc)
    except DBAPIError as exc:
        raise InvalidArgumentError(
            f"Cannot probe the constraints of {describe(source)}: the database refused a test write "
            f"for another reason ({driver_message(exc)}). {hint('probe()', 'The probe')} needs a role that may "
            f"INSERT into {TABLE_NAME}{hint(' and an engine without read_only=True', '')}; every write it makes is "
            "rolled back."
        ) from None
    finally:
        await savepoint.rollback()
    return False, None


# ------------------------------------------------------------------------------- violations


@operation("checks.violations")
async def violations(source: Source) -> pd.DataFrame:
    """Stored rows that break today's rules, found in SQL.

    One row per broken rule and task: id, column, rule (its message, e.g. ``must not be
    blank``) and value (shortened for display), ordered by id, column and rule. Every
    rule of :data:`todo_data.rules.RULES` is looked for with its own predicate for this
    database, so the checks are those of the Python layer, blank meaning empty after
    ``str.strip()``: what the database constraints would not have caught (rows written
    before a constraint existed or while one was missing, or by another client): blank
    or too long text, NULLs, statuses the code does not know, duplicate ids, timestamps
    that are ±infinity (PostgreSQL), naive (a PostgreSQL column altered to ``timestamp
    without time zone``), unreadable or not the canonical UTC text (SQLite), and, on
    SQLite, NUL characters that PostgreSQL could not store. Empty when every row is valid.

    >>> await violations(engine)    # doctest: +SKIP
    """
    async with connect(source) as conn:
        await require_tasks_table(conn, where=located(source))
        queries = _violation_queries(rules.RULES, conn.dialect.name)
        result = await conn.execute(union_all(*queries))
        rows = [
            {
                "id": _canonical_id(row.id),
                "column": row.column,
                "rule": row.rule,
                "value": display(row.value, length=row.length),
            }
            for row in result
        ]
    # Sorted here, not in SQL: the canonical id is the same text on every backend.
    rows.sort(key=lambda row: (row["id"] is None, row["id"] or "", row["column"], row["rule"]))
    return pd.DataFrame(rows, columns=list(VIOLATION_COLUMNS))


def _violation_queries(table_rules: tuple[Rule, ...], dialect: str) -> list[Select[Any]]:
    """One SELECT per rule that ``dialect`` can break: the rows its predicate finds."""
    names = dict.fromkeys(["id", *(rule.column for rule in table_rules)])
    tasks = sql_table(TABLE_NAME, *(sql_column(name) for name in names))
    queries: list[Select[Any]] = []
    for rule in table_rules:
        stored = tasks.c[rule.column]
        value = strip_sql(stored, dialect) if rule.column in STRIPPED else stored
        condition = rule.violated(value, dialect)
        if condition is None:
            continue  # this database cannot hold a value that breaks the rule
        queries.append(
            select(
                cast(tasks.c.id, Text).label("id"),
                literal(rule.column, Text).label("column"),
                literal(rule.message, Text).label("rule"),
                func.substr(cast(stored, Text), 1, DISPLAY_LENGTH + 1).label("value"),
                func.length(cast(stored, Text)).label("length"),
            ).where(condition)
        )
    return queries


def _canonical_id(raw: str | None) -> str | None:
    try:
        return str(uuid.UUID(raw)) if raw is not None else None
    except ValueError:
        return raw


# ----------------------------------------------------------------------------------- verify


@dataclass(frozen=True, eq=False)
class Verification:
    """The verdict of :func:`verify`: a table of checks, and whether all of them passed.

    ``bool(result)`` is ``result.ok``; ``result.failures`` names the failed checks;
    ``result.frame`` is the table (check, ok, detail). The frames behind each check are
    kept for a closer look. Notebooks show it as a table, ``str()`` as text.
    """

    frame: pd.DataFrame
    revision: str | None
    head: str
    drift: pd.DataFrame
    probe: pd.DataFrame
    violations: pd.DataFrame

    @property
    def ok(self) -> bool:
        return bool(self.frame["ok"].all())

    @property
    def failures(self) -> list[str]:
        """The names of the checks that failed, in order (empty when all passed)."""
        return [str(name) for name in self.frame.loc[~self.frame["ok"].astype(bool), "check"]]

    def __bool__(self) -> bool:
        return self.ok

    @property
    def verdict(self) -> str:
        if self.ok:
            return "OK: every check passed"
        return f"FAILED: {', '.join(self.failures)}"

    def __str__(self) -> str:
        return f"{self.verdict}\n{show(self.frame)!r}"

    def _repr_html_(self) -> str:
        colour = "green" if self.ok else "red"
        heading = f'<p style="color: {colour}"><strong>{html.escape(self.verdict)}</strong></p>'
        return heading + show(self.frame)._repr_html_()


@operation("checks.verify")
async def verify(source: Source, *, progress: Progress | None = None) -> Verification:
    """One verdict on a database: revision, drift, constraint probe and stored data.

    Four checks, each a row of ``.frame`` (check, ok, detail):

    - ``revision``: the database is at the newest migration (:func:`migrations.current`)
    - ``drift``: the live schema matches the model, CHECK constraints included
    - ``probe``: the database rejects every invalid write (rolled back, nothing kept)
    - ``violations``: no stored row breaks today's rules

    ``progress``, when given, is called with each check's name before it runs.

    >>> result = await verify(engine)    # doctest: +SKIP
    >>> result.ok, result.failures       # doctest: +SKIP
    (True, [])
    """
    rows: list[dict[str, Any]] = []
    expected = migrations.head()

    def step(name: str) -> None:
        if progress is not None:
            progress(name)

    step("revision")
    revision = await migrations.current(source)
    rows.append({"check": "revision", "ok": revision == expected, "detail": _revision_detail(revision, expected)})

    step("drift")
    drift = await migrations.drift(source)
    changes = [str(row.detail) for row in drift.itertuples()]
    rows.append({"check": "drift", "ok": drift.empty, "detail": "; ".join(changes) or "the schema matches the model"})

    step("probe")
    probed = pd.DataFrame(columns=list(PROBE_COLUMNS))
    try:
        probed = await probe(source)
    except ReadReplicaError:
        # A physical replica has the primary's very constraints (drift compared them),
        # but it refuses every write: only the primary can show that they reject.
        detail = "skipped on a read replica, which refuses every write: verify the primary (DATABASE_URL) to probe"
        rows.append({"check": "probe", "ok": True, "detail": detail})
    except (SchemaNotReadyError, InvalidArgumentError) as exc:  # no table, or no right to write
        rows.append({"check": "probe", "ok": False, "detail": str(exc)})
    else:
        accepted = probed.loc[~probed["rejected"].astype(bool)]
        detail = "; ".join(f"accepted {row.rule} = {row.value}" for row in accepted.itertuples())
        rows.append(
            {
                "check": "probe",
                "ok": accepted.empty,
                "detail": detail or f"all {len(probed)} invalid writes were rejected",
            }
        )

    step("violations")
    found = pd.DataFrame(columns=list(VIOLATION_COLUMNS))
    try:
        found = await violations(source)
    except SchemaNotReadyError as exc:
        rows.append({"check": "violations", "ok": False, "detail": str(exc)})
    else:
        counts = Counter(zip(found["column"], found["rule"], strict=True))
        detail = "; ".join(f"{column} {rule}: {count} row(s)" for (column, rule), count in sorted(counts.items()))
        rows.append(
            {"check": "violations", "ok": found.empty, "detail": detail or "every stored row follows the rules"}
        )

    frame = pd.DataFrame(rows, columns=list(VERIFY_COLUMNS))
    frame["ok"] = frame["ok"].astype(bool)
    return Verification(frame=frame, revision=revision, head=expected, drift=drift, probe=probed, violations=found)


def _revision_detail(revision: str | None, expected: str) -> str:
    if revision == expected:
        return f"at head ({expected})"
    if revision is None:
        return f"never migrated: run {hint('migrations.upgrade', '`todo-data migrate`')} to reach {expected}"
    return f"at {revision}, head is {expected}: run {hint('migrations.upgrade', '`todo-data migrate`')}"


# ---------------------------------------------------------------------------------- helpers


def display(value: Any, *, length: int | None = None) -> str:
    """A value as a reader should see it: ``NULL``, ``'ab'``, or ``'ddd…' (1001 chars)``.

    ``length`` is the full length when ``value`` is only the start of a longer text.
    """
    if value is None:
        return "NULL"
    if not isinstance(value, str):
        return repr(value)
    size = len(value) if length is None else length
    if size > DISPLAY_LENGTH:
        return f"{value[:3] + '…'!r} ({size} chars)"
    return repr(value)
