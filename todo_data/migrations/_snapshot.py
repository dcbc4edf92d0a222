"""A database's schema and data as plain values, to compare before and after a migration step.

The schema is read from the catalog (SQLAlchemy's inspector on both backends, plus the
triggers and, on PostgreSQL, the functions, views and sequences of the schema); the
data is every row of every table, keyed by primary key, with a checksum.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Final

from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

from todo_data import triggers

#: Alembic's bookkeeping table: not part of the schema or data a migration carries.
VERSION_TABLE: Final = "alembic_version"
#: How many differences a message names before it says "and N more".
_SHOWN: Final = 3

Schema = dict[str, dict[str, Any]]


def schema(connection: Connection) -> Schema:
    """Every table (columns, keys, indexes, CHECKs, triggers) and, on PostgreSQL, function, view and sequence."""
    inspector = inspect(connection)
    live_triggers = triggers.live_triggers(connection)
    found: Schema = {}
    for table in sorted(inspector.get_table_names()):
        if table == VERSION_TABLE:
            continue
        pk = inspector.get_pk_constraint(table)
        found[f"table {table}"] = {
            "columns": [
                (c["name"], str(c["type"]), c["nullable"], str(c.get("default"))) for c in inspector.get_columns(table)
            ],
            "primary key": (pk.get("name"), tuple(pk.get("constrained_columns") or ())),
            "indexes": sorted(
                (str(i["name"]), tuple(str(c) for c in i["column_names"]), bool(i["unique"]))
                for i in inspector.get_indexes(table)
            ),
            "unique constraints": sorted(
                (str(u["name"]), tuple(u["column_names"])) for u in inspector.get_unique_constraints(table)
            ),
            "foreign keys": sorted(
                (str(f["name"]), tuple(f["constrained_columns"]), f["referred_table"])
                for f in inspector.get_foreign_keys(table)
            ),
            "checks": sorted((str(c["name"]), str(c["sqltext"])) for c in inspector.get_check_constraints(table)),
            "triggers": sorted(
                (t.name, triggers.normalized(t.definition), t.function, t.enabled)
                for t in live_triggers
                if t.table == table
            ),
        }
    if connection.dialect.name == "postgresql":
        for view in inspector.get_view_names():
            found[f"view {view}"] = {"definition": inspector.get_view_definition(view)}
        for sequence in inspector.get_sequence_names():
            found[f"sequence {sequence}"] = {}
        for name, definition in connection.execute(_POSTGRES_FUNCTIONS):
            found[f"function {name}"] = {"definition": triggers.normalized(definition)}
    return found


_POSTGRES_FUNCTIONS: Final = text(
    """
    SELECT p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')', pg_get_functiondef(p.oid)
    FROM pg_proc p
    WHERE p.pronamespace = current_schema()::regnamespace AND p.prokind IN ('f', 'p')
    ORDER BY 1
    """
)


def schema_differences(before: Schema, after: Schema) -> list[str]:
    """What differs between two schemas, in words: ``function f() left behind``, ``table t: checks …``."""
    found = [f"{name} missing" for name in sorted(before.keys() - after.keys())]
    found += [f"{name} left behind" for name in sorted(after.keys() - before.keys())]
    for name in sorted(before.keys() & after.keys()):
        for aspect, value in before[name].items():
            other = after[name].get(aspect)
            if value == other:
                continue
            if isinstance(value, list) and isinstance(other, list):
                lost = sorted({_label(item) for item in value} - {_label(item) for item in other})
                gained = sorted({_label(item) for item in other} - {_label(item) for item in value})
                changed = sorted({_label(item) for item in value if item not in other} - set(lost))
                words = [f"lost {', '.join(lost)}"] if lost else []
                words += [f"gained {', '.join(gained)}"] if gained else []
                words += [f"changed {', '.join(changed)}"] if changed else []
                found.append(f"{name} {aspect}: {'; '.join(words) or 'order changed'}")
            else:
                found.append(f"{name} {aspect} changed")
    return found


def _label(item: Any) -> str:
    return str(item[0]) if isinstance(item, tuple) and item else str(item)


@dataclass(frozen=True)
class TableData:
    """The rows of one table: by primary key (or by content, without one), and a checksum."""

    columns: tuple[str, ...]
    rows: dict[tuple[str, ...], tuple[str, ...]] = field(repr=False)
    checksum: str


Data = dict[str, TableData]


def data(connection: Connection) -> Data:
    """Every row of every table (Alembic's excluded), as text, with a SHA-256 per table."""
    inspector = inspect(connection)
    quote = connection.dialect.identifier_preparer.quote
    found: Data = {}
    for table in sorted(inspector.get_table_names()):
        if table == VERSION_TABLE:
            continue
        columns = tuple(column["name"] for column in inspector.get_columns(table))
        key = inspector.get_pk_constraint(table).get("constrained_columns") or list(columns)
        positions = [columns.index(name) for name in key]
        result = connection.execute(text(f"SELECT * FROM {quote(table)}"))
        rows: dict[tuple[str, ...], tuple[str, ...]] = {}
        for row in result:
            values = tuple(repr(value) for value in row)
            identity = tuple(values[position] for position in positions)
            while identity in rows:  # duplicate rows of a table without a primary key
                identity += ("again",)
            rows[identity] = values
        digest = hashlib.sha256(repr((columns, sorted(rows.values()))).encode()).hexdigest()
        found[table] = TableData(columns, rows, digest)
    return found


def data_differences(before: Data, after: Data) -> list[str]:
    """How the rows changed, in words (``tasks.description changed in 812 of 1,000 rows``); empty if not."""
    found: list[str] = []
    for table in sorted(before.keys() - after.keys()):
        found.append(f"table {table} and its {len(before[table].rows):,} rows are gone")
    for table in sorted(before.keys() & after.keys()):
        old, new = before[table], after[table]
        if old.checksum == new.checksum:
            continue
        reported = len(found)
        missing = old.rows.keys() - new.rows.keys()
        extra = new.rows.keys() - old.rows.keys()
        if missing:
            found.append(f"{table}: {len(missing):,} of {len(old.rows):,} rows missing")
        if extra:
            found.append(f"{table}: {len(extra):,} rows that were not there")
        common = old.rows.keys() & new.rows.keys()
        for column in old.columns:
            if column not in new.columns:
                found.append(f"{table}.{column} is gone")
                continue
            i, j = old.columns.index(column), new.columns.index(column)
            changed = sum(old.rows[key][i] != new.rows[key][j] for key in common)
            if changed:
                found.append(f"{table}.{column} changed in {changed:,} of {len(old.rows):,} rows")
        if len(found) == reported:  # the same values, in other columns (a column order change)
            found.append(f"{table}: checksum differs")
    return found


def summary(problems: list[str]) -> str:
    """The first few problems, and how many more there are."""
    shown = "; ".join(problems[:_SHOWN])
    return shown if len(problems) <= _SHOWN else f"{shown}; and {len(problems) - _SHOWN} more"


def row_count(found: Data) -> int:
    """How many rows the tables hold together."""
    return sum(len(table.rows) for table in found.values())
