"""Drift: what differs between the model and a live schema, in words an engineer acts on.

Each row keeps Alembic's name for the operation a migration would need (``remove_column``:
the database has a column the model lacks) and says in its detail what is where and
the two ways to make them agree ("in the database, not in the model: add it to
models.py or write a revision that drops it").

Alembic's ``compare_metadata`` (what ``alembic check`` sees), plus what its
autogenerate ignores: the named CHECK constraints and the triggers declared in
:mod:`todo_data.triggers`.
"""

from __future__ import annotations

import re
from typing import Any, Final

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import CheckConstraint, Table, inspect
from sqlalchemy.engine import Connection

from todo_data import triggers
from todo_data.errors import hint
from todo_data.migrations._config import environment_options
from todo_data.models import metadata

#: The columns of :func:`todo_data.migrations.drift`'s frame.
DRIFT_COLUMNS: Final = ("operation", "table", "name", "detail")


def drift_rows(connection: Connection) -> list[dict[str, Any]]:
    context = MigrationContext.configure(connection, opts=environment_options(connection.dialect.name))
    rows = [_diff_row(diff) for diff in _flatten(compare_metadata(context, metadata))]
    return rows + _check_drift(connection) + _trigger_drift(connection)


def _flatten(diffs: list[Any]) -> list[tuple[Any, ...]]:
    # Column modifications come grouped in a list per column; everything else is a tuple.
    flat: list[tuple[Any, ...]] = []
    for diff in diffs:
        flat.extend(diff if isinstance(diff, list) else [diff])
    return flat


def _diff_row(diff: tuple[Any, ...]) -> dict[str, Any]:
    operation = diff[0]
    if operation in {"add_table", "remove_table"}:
        table = diff[1]
        return _row(operation, table.name, table.name, f"table {table.name}", _where(operation))
    if operation in {"add_column", "remove_column"}:
        _, _, table_name, column = diff
        return _row(operation, table_name, column.name, f"column {column.name} ({column.type})", _where(operation))
    if operation.startswith("modify_"):
        _, _, table_name, column_name, _, database, model = diff
        what = f"{operation.removeprefix('modify_')} of column {column_name}"
        return _row(operation, table_name, column_name, what, _differs(database, model))
    # add_/remove_ index, constraint (unique) and fk: a schema item bound to a table.
    item = diff[1]
    columns = ", ".join(column.name for column in getattr(item, "columns", []))
    kind = operation.split("_", 1)[1].replace("fk", "foreign key").replace("constraint", "unique constraint")
    return _row(operation, item.table.name, str(item.name), f"{kind} {item.name} ({columns})", _where(operation))


def _where(operation: str) -> str:
    if operation.startswith("add_"):
        return f"in the model, not in the database: write a revision that creates it ({_new_revision()})"
    return "in the database, not in the model: add it to models.py or write a revision that drops it"


def _differs(database: object, model: object) -> str:
    return (
        f"the database has {database}, the model {model}: change the model, or write a revision that "
        f"changes the database ({_new_revision()})"
    )


def _new_revision() -> str:
    return hint("migrations.new_revision(url, message)", 'todo-data migrate new "message"')


def _row(operation: str, table: str, name: str, subject: str, advice: str) -> dict[str, Any]:
    """A drift row; ``subject`` ("column priority (INTEGER)") stays beside the frame's columns for new_revision."""
    detail = f"{subject}: {advice}"
    return {"operation": operation, "table": table, "name": name, "detail": detail, "subject": subject}


def _check_drift(connection: Connection) -> list[dict[str, Any]]:
    inspector = inspect(connection)
    live_tables = set(inspector.get_table_names())
    rows: list[dict[str, Any]] = []
    for table in metadata.sorted_tables:
        if table.name not in live_tables:
            continue  # compare_metadata already reports the whole table as missing
        model = _model_checks(table)
        live = {
            str(check["name"] or "(unnamed)"): str(check["sqltext"])
            for check in inspector.get_check_constraints(table.name)
        }
        for name in sorted(model.keys() - live.keys()):
            rows.append(_row("add_check", table.name, name, f"CHECK {name} ({model[name]})", _where("add_")))
        for name in sorted(live.keys() - model.keys()):
            rows.append(_row("remove_check", table.name, name, f"CHECK {name} ({live[name]})", _where("remove_")))
        for name in sorted(model.keys() & live.keys()):
            if _normalized_sql(model[name]) != _normalized_sql(live[name]):
                advice = _differs(f"({live[name]})", f"({model[name]})")
                rows.append(_row("modify_check", table.name, name, f"CHECK {name}", advice))
    return rows


def _model_checks(table: Table) -> dict[str, str]:
    return {
        str(constraint.name): str(constraint.sqltext)
        for constraint in table.constraints
        if isinstance(constraint, CheckConstraint)
    }


def _normalized_sql(sql: str) -> str:
    """A CHECK expression with PostgreSQL's rewriting undone, for comparison.

    PostgreSQL stores ``length(trim(title)) > 0`` as ``(length(TRIM(BOTH FROM title)) > 0)``
    and adds casts such as ``::text``; SQLite keeps the text as written.
    """
    sql = sql.lower()
    sql = re.sub(r"\bboth\s+from\s+", "", sql)
    sql = re.sub(r"::\w+(\s+varying)?(\[\])?", "", sql)
    return re.sub(r"[\s()]", "", sql)


def _trigger_drift(connection: Connection) -> list[dict[str, Any]]:
    backend = connection.dialect.name
    model_tables = {table.name for table in metadata.sorted_tables}
    live_tables = set(inspect(connection).get_table_names()) & model_tables
    live = {trigger.name: trigger for trigger in triggers.live_triggers(connection) if trigger.table in live_tables}
    expected = {trigger.name: trigger for trigger in triggers.TRIGGERS if trigger.table in live_tables}
    rows: list[dict[str, Any]] = []
    for name in sorted(expected.keys() - live.keys()):
        what = f"trigger {name} ({expected[name].definition(backend)})"
        rows.append(_row("add_trigger", expected[name].table, name, what, _where("add_")))
    for name in sorted(live.keys() - expected.keys()):
        what = f"trigger {name} ({live[name].definition})"
        rows.append(_row("remove_trigger", live[name].table, name, what, _where("remove_")))
    for name in sorted(expected.keys() & live.keys()):
        found = triggers.differences(expected[name], live[name], backend)
        if found:
            advice = (
                f"differs from the model ({'; '.join(found)}): write a revision that recreates it ({_new_revision()})"
            )
            rows.append(_row("modify_trigger", live[name].table, name, f"trigger {name}", advice))
    return rows
