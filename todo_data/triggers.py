"""The triggers the schema must have, declared once, and the ones a database has.

Alembic's comparison (``alembic check``) cannot see triggers, so they are declared here:
:func:`todo_data.migrations.drift` compares :data:`TRIGGERS` with :func:`live_triggers`,
and :func:`todo_data.checks.constraints` lists the live ones. A revision that creates a
trigger states its own copy of the SQL (revisions are history); ``drift`` is what proves
the two agree.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from sqlalchemy import text
from sqlalchemy.engine import Connection


@dataclass(frozen=True)
class Trigger:
    """One trigger as each backend defines it.

    ``postgresql`` is the ``CREATE TRIGGER`` statement as ``pg_get_triggerdef`` prints it
    (table and function unqualified), ``function_body`` the PL/pgSQL of the function it
    executes; ``sqlite`` is the ``CREATE TRIGGER`` statement SQLite stores.
    """

    name: str
    table: str
    function: str
    function_body: str
    postgresql: str
    sqlite: str

    def definition(self, backend: str) -> str:
        """The trigger's SQL on ``backend`` (``postgresql`` or ``sqlite``)."""
        return self.postgresql if backend == "postgresql" else self.sqlite


@dataclass(frozen=True)
class LiveTrigger:
    """A trigger found in a database's catalog."""

    name: str
    table: str
    definition: str
    #: PostgreSQL: the function the trigger executes and its source; SQLite: empty.
    function: str = ""
    function_body: str = ""
    #: False when PostgreSQL has it disabled (``ALTER TABLE … DISABLE TRIGGER``).
    enabled: bool = True


# The database refreshes updated_at on every UPDATE that does not change it itself, so a
# raw UPDATE by another client refreshes it too, while the value the ORM writes (the
# same instant it keeps on the object) is kept. SQLite cannot assign NEW in a BEFORE
# trigger: its AFTER trigger updates the row again, in the canonical text the model's
# UTCDateTime writes (six fractional digits; SQLite's clock has milliseconds). Its WHEN
# clause is false for that second update, so it never recurses, even with
# PRAGMA recursive_triggers on.
UPDATED_AT: Final = Trigger(
    name="trg_tasks_updated_at",
    table="tasks",
    function="tasks_set_updated_at",
    function_body="""
BEGIN
    IF NEW.updated_at IS NOT DISTINCT FROM OLD.updated_at THEN
        NEW.updated_at := statement_timestamp();
    END IF;
    RETURN NEW;
END
""",
    postgresql=(
        "CREATE TRIGGER trg_tasks_updated_at BEFORE UPDATE ON tasks "
        "FOR EACH ROW EXECUTE FUNCTION tasks_set_updated_at()"
    ),
    sqlite="""CREATE TRIGGER trg_tasks_updated_at AFTER UPDATE ON tasks FOR EACH ROW
WHEN NEW.updated_at IS OLD.updated_at
    AND OLD.updated_at IS NOT strftime('%Y-%m-%d %H:%M:%f000', 'now')
BEGIN
    UPDATE tasks SET updated_at = strftime('%Y-%m-%d %H:%M:%f000', 'now') WHERE rowid = NEW.rowid;
END""",
)

#: Every trigger the model's tables must have.
TRIGGERS: Final[tuple[Trigger, ...]] = (UPDATED_AT,)


def live_triggers(connection: Connection, table: str | None = None) -> list[LiveTrigger]:
    """The user-defined triggers in the connection's schema (of one ``table``, if given)."""
    if connection.dialect.name == "postgresql":
        rows = connection.execute(_POSTGRES_TRIGGERS).mappings().all()
        schema = str(connection.execute(text("SELECT current_schema()")).scalar_one())
        found = [
            LiveTrigger(
                name=row["name"],
                table=row["table"],
                definition=_unqualified(row["definition"], schema),
                function=row["function"],
                function_body=row["body"],
                enabled=row["enabled"],
            )
            for row in rows
        ]
    else:
        query = text("SELECT name, tbl_name, sql FROM sqlite_master WHERE type = 'trigger' ORDER BY name")
        found = [LiveTrigger(name, tbl_name, sql) for name, tbl_name, sql in connection.execute(query)]
    return [trigger for trigger in found if table is None or trigger.table == table]


def differences(expected: Trigger, live: LiveTrigger, backend: str) -> list[str]:
    """How a live trigger differs from its declaration (empty when it matches)."""
    found: list[str] = []
    if normalized(live.definition) != normalized(expected.definition(backend)):
        found.append(f"database has ({live.definition}), the model ({expected.definition(backend)})")
    same_function = backend == "postgresql" and live.function == expected.function
    if same_function and normalized(live.function_body) != normalized(expected.function_body):
        found.append(f"the body of {live.function}() differs from the model's")
    if not live.enabled:
        found.append(f"it is disabled (ALTER TABLE {live.table} ENABLE TRIGGER {live.name} turns it back on)")
    return found


def normalized(sql: str) -> str:
    """SQL with whitespace, case and a trailing semicolon made irrelevant, for comparison."""
    return re.sub(r"\s+", " ", sql).strip().rstrip(";").strip().lower()


_POSTGRES_TRIGGERS: Final = text(
    """
    SELECT t.tgname AS name, c.relname AS table, pg_get_triggerdef(t.oid) AS definition,
           p.proname AS function, p.prosrc AS body, t.tgenabled <> 'D' AS enabled
    FROM pg_trigger t
    JOIN pg_class c ON c.oid = t.tgrelid
    JOIN pg_proc p ON p.oid = t.tgfoid
    WHERE NOT t.tgisinternal AND c.relnamespace = current_schema()::regnamespace
    ORDER BY t.tgname
    """
)


def _unqualified(definition: str, schema: str) -> str:
    # pg_get_triggerdef qualifies the table (and a function outside the search path).
    return definition.replace(f" ON {schema}.", " ON ").replace(f"FUNCTION {schema}.", "FUNCTION ")
