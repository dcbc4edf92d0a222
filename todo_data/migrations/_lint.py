"""The lint of migrations: each revision's offline SQL, judged statement by statement for PostgreSQL.

What takes production down is rarely a wrong migration: it is a right one that holds an
ACCESS EXCLUSIVE lock while it rewrites or scans a big table, or that queues behind a
long transaction and blocks every query behind it. Each rule below names such a
statement, what it locks or breaks, and the safe way to write it.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import pandas as pd
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from pglast import ast, enums, parse_plpgsql
from pglast.parser import ParseError
from pglast.visitors import Visitor

from alembic import command
from todo_data._sqlparse import Statement, statements
from todo_data.errors import MigrationError
from todo_data.migrations._config import VERSION_TABLE, offline_config

#: The columns of :func:`todo_data.migrations.lint`'s frame.
LINT_COLUMNS: Final = ("revision", "statement", "rule", "severity", "message")


@dataclass(frozen=True)
class Rule:
    """One hazard: its name, how serious it is, and what to say about it."""

    name: str
    severity: str
    message: str


_LOCKS_OUT = "takes an ACCESS EXCLUSIVE lock on {table}, which blocks every read and write until the revision commits"

SYNTAX_ERROR = Rule("syntax_error", "error", "PostgreSQL cannot parse it: {detail}")
CONCURRENTLY_IN_TRANSACTION = Rule(
    "concurrently_in_transaction",
    "error",
    "CONCURRENTLY cannot run inside a transaction block, so the migration fails: "
    "run it in `with op.get_context().autocommit_block():`",
)
CREATE_INDEX = Rule(
    "create_index_without_concurrently",
    "error",
    "builds the index under a SHARE lock on {table}: every INSERT, UPDATE and DELETE waits until it is built. "
    "Use op.create_index(..., postgresql_concurrently=True) inside op.get_context().autocommit_block()",
)
ADD_CONSTRAINT = Rule(
    "add_constraint_without_not_valid",
    "error",
    "checks every row of {table} while holding its lock (writes wait; a FOREIGN KEY also locks the table it "
    "references). Add it NOT VALID (postgresql_not_valid=True), then VALIDATE CONSTRAINT in a later revision, "
    "which lets writes through",
)
ADD_UNIQUE = Rule(
    "add_unique_without_index",
    "error",
    "builds a unique index while it " + _LOCKS_OUT + ". Build the index first with CREATE UNIQUE INDEX "
    "CONCURRENTLY, then ADD CONSTRAINT ... USING INDEX",
)
ALTER_TYPE = Rule(
    "alter_column_type",
    "error",
    _LOCKS_OUT + " and, unless the new type is binary-compatible, rewrites the table and its indexes. "
    "Add a new column, backfill it in batches, then switch over",
)
VOLATILE_DEFAULT = Rule(
    "add_column_volatile_default",
    "error",
    "fills the new column row by row ({detail}): PostgreSQL rewrites {table} under an ACCESS EXCLUSIVE lock, "
    "which blocks every read and write until the revision commits. Add the column without it (or with a "
    "constant default), then backfill in batches",
)
NOT_NULL_WITHOUT_DEFAULT = Rule(
    "add_column_not_null_without_default",
    "error",
    "fails as soon as {table} has a row (the new column would be NULL in it). "
    "Give it a constant default, or add it nullable, backfill, then SET NOT NULL safely",
)
SET_NOT_NULL = Rule(
    "set_not_null",
    "warning",
    "scans the whole of {table} while it " + _LOCKS_OUT + ". First add CHECK (column IS NOT NULL) NOT VALID and "
    "VALIDATE it: PostgreSQL 12+ then skips the scan",
)
DROP_COLUMN = Rule(
    "drop_column",
    "warning",
    "breaks application code that still reads or writes the column: deploy code that no longer uses it first",
)
DROP_TABLE = Rule(
    "drop_table",
    "warning",
    "deletes the table and its data for good, and breaks code that still uses it: deploy that code first",
)
RENAME = Rule(
    "rename",
    "warning",
    "breaks every running client that still uses the old name: add the new name alongside, move the code, "
    "then drop the old one",
)

# Functions a default may call without forcing a rewrite (PostgreSQL evaluates a stable or
# immutable default once and stores it in the catalog, since version 11). Anything else
# is assumed volatile.
_NOT_VOLATILE: Final = frozenset(
    {
        "now",
        "transaction_timestamp",
        "statement_timestamp",
        "current_setting",
        "lower",
        "upper",
        "length",
        "concat",
        "jsonb_build_object",
        "json_build_object",
        "jsonb_build_array",
        "json_build_array",
        "make_interval",
        "to_jsonb",
        "to_json",
    }
)
_SERIAL_TYPES: Final = frozenset({"serial", "bigserial", "smallserial", "serial2", "serial4", "serial8"})


def lint(script: ScriptDirectory, *, location: str | Path | None) -> pd.DataFrame:
    """See :func:`todo_data.migrations.lint`."""
    findings: list[dict[str, Any]] = []
    for rev in reversed(list(script.walk_revisions())):
        sql = _offline_sql(rev.revision, rev.down_revision, location)
        findings += [{"revision": rev.revision, **finding} for finding in _judge(sql)]
    return pd.DataFrame(findings, columns=list(LINT_COLUMNS))


def _offline_sql(revision: str, down_revision: Any, location: str | Path | None) -> str:
    """``alembic upgrade <down>:<revision> --sql``, PostgreSQL dialect: this revision's SQL only."""
    if down_revision is not None and not isinstance(down_revision, str):
        raise MigrationError(f"Revision {revision} merges several revisions: lint reads one line of revisions")
    output = io.StringIO()
    try:
        command.upgrade(offline_config(location, output), f"{down_revision or 'base'}:{revision}", sql=True)
    except CommandError as exc:
        raise MigrationError(f"Cannot produce the SQL of revision {revision}: {exc}") from None
    return output.getvalue()


def _judge(sql: str) -> list[dict[str, Any]]:
    try:
        found = statements(sql)
    except ParseError as exc:
        return [_finding(_near(sql, exc), SYNTAX_ERROR, detail=str(exc))]
    findings: list[dict[str, Any]] = []
    created: set[str] = set()
    in_transaction = False
    for statement in found:
        node = statement.node
        if isinstance(node, ast.TransactionStmt):
            kind = node.kind
            if kind in (enums.TransactionStmtKind.TRANS_STMT_BEGIN, enums.TransactionStmtKind.TRANS_STMT_START):
                in_transaction = True
            elif kind in (enums.TransactionStmtKind.TRANS_STMT_COMMIT, enums.TransactionStmtKind.TRANS_STMT_ROLLBACK):
                in_transaction = False
            continue
        for rule, table, detail in _hazards(node, statement, created, in_transaction):
            if table != VERSION_TABLE:
                findings.append(_finding(statement.sql, rule, table=table, detail=detail))
        if isinstance(node, ast.CreateStmt):
            created.add(_relname(node.relation))
        elif isinstance(node, ast.CreateTableAsStmt):
            created.add(_relname(getattr(node.into, "rel", None)))
    return findings


def _hazards(
    node: Any, statement: Statement, created: set[str], in_transaction: bool
) -> Iterator[tuple[Rule, str, str]]:
    """(rule, table, detail) for each hazard of one statement."""
    if isinstance(node, ast.IndexStmt):
        table = _relname(node.relation)
        if node.concurrent and in_transaction:
            yield CONCURRENTLY_IN_TRANSACTION, table, ""
        elif not node.concurrent and table not in created:
            yield CREATE_INDEX, table, ""
    elif isinstance(node, ast.AlterTableStmt) and node.objtype == enums.ObjectType.OBJECT_TABLE:
        table = _relname(node.relation)
        if table not in created:
            for cmd in node.cmds or ():
                yield from _alter_table_hazards(cmd, table)
    elif isinstance(node, ast.DropStmt) and node.removeType == enums.ObjectType.OBJECT_TABLE:
        for name in node.objects or ():
            table = name[-1].sval
            if table not in created:
                yield DROP_TABLE, table, ""
    elif isinstance(node, ast.RenameStmt) and node.renameType in (
        enums.ObjectType.OBJECT_TABLE,
        enums.ObjectType.OBJECT_COLUMN,
    ):
        if _relname(node.relation) not in created:
            yield RENAME, _relname(node.relation), ""
    elif isinstance(node, ast.CreateFunctionStmt | ast.DoStmt) and _language(node) == "plpgsql":
        try:
            parse_plpgsql(statement.sql)
        except ParseError as exc:
            yield SYNTAX_ERROR, "", f"its PL/pgSQL body: {exc}"


def _alter_table_hazards(cmd: Any, table: str) -> Iterator[tuple[Rule, str, str]]:
    kind = enums.AlterTableType
    if cmd.subtype == kind.AT_AddConstraint:
        constraint = cmd.def_
        checked = constraint.contype in (enums.ConstrType.CONSTR_CHECK, enums.ConstrType.CONSTR_FOREIGN)
        if checked and not constraint.skip_validation:
            yield ADD_CONSTRAINT, table, ""
        elif (
            constraint.contype
            in (
                enums.ConstrType.CONSTR_UNIQUE,
                enums.ConstrType.CONSTR_PRIMARY,
                enums.ConstrType.CONSTR_EXCLUSION,
            )
            and not constraint.indexname
        ):
            yield ADD_UNIQUE, table, ""
    elif cmd.subtype == kind.AT_AlterColumnType:
        yield ALTER_TYPE, table, ""
    elif cmd.subtype == kind.AT_AddColumn:
        yield from _add_column_hazards(cmd.def_, table)
    elif cmd.subtype == kind.AT_SetNotNull:
        yield SET_NOT_NULL, table, ""
    elif cmd.subtype == kind.AT_DropColumn:
        yield DROP_COLUMN, table, ""


def _add_column_hazards(column: Any, table: str) -> Iterator[tuple[Rule, str, str]]:
    constraints = list(column.constraints or ())
    kinds = {constraint.contype for constraint in constraints}
    default = next((c.raw_expr for c in constraints if c.contype == enums.ConstrType.CONSTR_DEFAULT), None)
    type_name = column.typeName.names[-1].sval if column.typeName is not None else ""
    if type_name in _SERIAL_TYPES:
        yield VOLATILE_DEFAULT, table, f"{type_name} draws nextval() for each row"
    elif enums.ConstrType.CONSTR_IDENTITY in kinds:
        yield VOLATILE_DEFAULT, table, "an identity column draws a sequence value for each row"
    elif enums.ConstrType.CONSTR_GENERATED in kinds:
        yield VOLATILE_DEFAULT, table, "a stored generated column is computed for each row"
    elif default is not None and (volatile := _volatile_call(default)):
        yield VOLATILE_DEFAULT, table, f"the default calls {volatile}(), which is volatile or not known to be stable"
    elif default is None and enums.ConstrType.CONSTR_NOTNULL in kinds:
        yield NOT_NULL_WITHOUT_DEFAULT, table, ""


def _volatile_call(expression: Any) -> str | None:
    """The first function call in ``expression`` not known to be stable or immutable."""
    calls: list[str] = []

    class Calls(Visitor):
        def visit_FuncCall(self, _ancestors: Any, node: Any) -> None:
            calls.append(str(node.funcname[-1].sval))

    Calls()(expression)
    return next((name for name in calls if name.lower() not in _NOT_VOLATILE), None)


def _language(node: Any) -> str:
    options = node.options if isinstance(node, ast.CreateFunctionStmt) else node.args
    for option in options or ():
        if option.defname == "language":
            return str(option.arg.sval).lower()
    return "plpgsql" if isinstance(node, ast.DoStmt) else "sql"


def _relname(range_var: Any) -> str:
    return str(range_var.relname)


def _finding(statement: str, rule: Rule, *, table: str = "", detail: str = "") -> dict[str, Any]:
    return {
        "statement": statement,
        "rule": rule.name,
        "severity": rule.severity,
        "message": rule.message.format(table=table, detail=detail),
    }


def _near(sql: str, exc: ParseError) -> str:
    # The statement around the parser's position: from the previous semicolon to the next.
    location = getattr(exc, "location", None)
    position = location if isinstance(location, int) else 0
    start = sql.rfind(";", 0, position) + 1
    end = sql.find(";", position)
    return sql[start : end if end >= 0 else len(sql)].strip()
