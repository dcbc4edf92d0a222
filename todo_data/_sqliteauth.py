"""SQLite authorizers: what a read statement may compile, and what a read-only engine refuses.

SQLite's compiler asks an authorizer (``sqlite3_set_authorizer``) about every table,
column, function, pragma and ``ATTACH`` of a statement while preparing it, before it
runs: the one place that sees the statement as SQLite does.

- :func:`read_authorizer` allows reading only; :func:`todo_data.queries.sql` compiles
  every query under it.
- :func:`read_only_authorizer` is kept on every connection of a read-only engine:
  ``PRAGMA query_only`` refuses writes, and this refuses what would lift or escape it
  (``PRAGMA query_only = OFF`` and other writing pragmas, ``ATTACH``, ``DETACH``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Final

Authorizer = Callable[[int, "str | None", "str | None", "str | None", "str | None"], int]

# What a read statement may ask of SQLite's compiler (sqlite3_set_authorizer): reading
# tables and columns, calling functions, recursive CTEs, and the pragmas that only report.
_SQLITE_READS: Final = {sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_FUNCTION, sqlite3.SQLITE_RECURSIVE}
#: Pragmas a read may use (also as table-valued functions, ``pragma_table_info('tasks')``).
SQLITE_READ_PRAGMAS: Final = frozenset(
    {
        "application_id",
        "collation_list",
        "compile_options",
        "database_list",
        "encoding",
        "foreign_key_check",
        "foreign_key_list",
        "foreign_keys",
        "freelist_count",
        "function_list",
        "index_info",
        "index_list",
        "index_xinfo",
        "integrity_check",
        "journal_mode",
        "module_list",
        "page_count",
        "page_size",
        "pragma_list",
        "query_only",
        "quick_check",
        "schema_version",
        "table_info",
        "table_list",
        "table_xinfo",
        "user_version",
    }
)
# Pragmas whose argument names a table or index (a read), unlike ``query_only = OFF``.
_SQLITE_PRAGMAS_OF_A_NAME: Final = frozenset(
    {
        "foreign_key_check",
        "foreign_key_list",
        "index_info",
        "index_list",
        "index_xinfo",
        "integrity_check",
        "quick_check",
        "table_info",
        "table_list",
        "table_xinfo",
    }
)
_SQLITE_REFUSED_FUNCTIONS: Final = frozenset({"load_extension", "readfile", "writefile", "edit", "fts3_tokenizer"})
_ACTIONS: Final = (
    "CREATE INDEX", "CREATE TABLE", "CREATE TEMP INDEX", "CREATE TEMP TABLE", "CREATE TEMP TRIGGER",
    "CREATE TEMP VIEW", "CREATE TRIGGER", "CREATE VIEW", "DELETE", "DROP INDEX", "DROP TABLE",
    "DROP TEMP INDEX", "DROP TEMP TABLE", "DROP TEMP TRIGGER", "DROP TEMP VIEW", "DROP TRIGGER",
    "DROP VIEW", "INSERT", "PRAGMA", "READ", "SELECT", "TRANSACTION", "UPDATE", "ATTACH", "DETACH",
    "ALTER TABLE", "REINDEX", "ANALYZE", "CREATE VTABLE", "DROP VTABLE", "FUNCTION", "SAVEPOINT", "RECURSIVE",
)  # fmt: skip
# SQLite's action codes, 1 to 33, by name (sqlite3's SQLITE_* constants share numbers with others).
_ACTION_NAMES: Final = dict(enumerate(_ACTIONS, start=1))


def read_authorizer(refused: list[str]) -> Authorizer:
    """An authorizer that lets SQLite compile reads only; what it refuses is added to ``refused``."""

    def authorize(action: int, first: str | None, second: str | None, _db: str | None, _trigger: str | None) -> int:
        if action == sqlite3.SQLITE_FUNCTION:
            if (second or "").lower() in _SQLITE_REFUSED_FUNCTIONS:
                refused.append(f"{second}()")
                return sqlite3.SQLITE_DENY
            return sqlite3.SQLITE_OK
        if action in _SQLITE_READS:
            return sqlite3.SQLITE_OK
        if action == sqlite3.SQLITE_UPDATE and first == "sqlite_master":
            # Compiling a table-valued pragma (pragma_table_info(...)) checks its columns
            # this way; a real UPDATE of the schema table is refused by SQLite itself.
            return sqlite3.SQLITE_OK
        if action == sqlite3.SQLITE_PRAGMA and pragma_reads(first, second):
            return sqlite3.SQLITE_OK
        if first in ("sqlite_master", "sqlite_temp_master"):
            refused.append("a schema change (CREATE, ALTER or DROP)")
            return sqlite3.SQLITE_DENY
        what = _ACTION_NAMES.get(action, f"action {action}")
        refused.append(f"{what} {first}" if first else what)
        return sqlite3.SQLITE_DENY

    return authorize


def pragma_reads(name: str | None, argument: str | None) -> bool:
    """Whether ``PRAGMA name[(argument)]`` only reports (``query_only = ON`` counts: it restricts)."""
    pragma = (name or "").lower()
    if pragma not in SQLITE_READ_PRAGMAS:
        return False
    if argument is None or pragma in _SQLITE_PRAGMAS_OF_A_NAME:
        return True
    return pragma == "query_only" and argument.strip().lower() in ("1", "on", "true", "yes")


def read_only_authorizer(
    action: int, first: str | None, second: str | None, _db: str | None, _trigger: str | None
) -> int:
    """A read-only engine's connections: no writing pragma, no ATTACH or DETACH (writes meet ``query_only``)."""
    if action in (sqlite3.SQLITE_ATTACH, sqlite3.SQLITE_DETACH):
        return sqlite3.SQLITE_DENY
    if action == sqlite3.SQLITE_PRAGMA and second is not None and not pragma_reads(first, second):
        return sqlite3.SQLITE_DENY
    return sqlite3.SQLITE_OK
