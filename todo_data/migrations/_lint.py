"""The lint of migrations: SQL judged statement by statement for PostgreSQL, as psql or Alembic runs it.

What takes production down is rarely a wrong migration: it is a right one that holds an
ACCESS EXCLUSIVE lock while it rewrites or scans a big table, or that queues behind a
long transaction and blocks every query behind it. The rules (``_lint_rules``) name such
statements; this module reads a script (a ``.sql`` file, or a revision's offline SQL),
follows its transactions and the schema it builds, and reports each hazard with its line
and column, then applies the suppressions written in the script.
"""

from __future__ import annotations

import io
import os
import re
import sys
import tokenize
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import pandas as pd
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from pglast import ast, enums, parse_plpgsql
from pglast.parser import ParseError, scan
from pglast.visitors import Visitor

from alembic import command
from todo_data._sqlparse import Comment, Statement, script_statements
from todo_data.errors import InvalidArgumentError, MigrationError
from todo_data.migrations._config import VERSION_TABLE, offline_config
from todo_data.migrations._lint_rules import RULES, SQUAWK_NAMES, Rule

#: The columns of the lint's frames (``lint`` fills revision, ``lint_sql`` file).
LINT_COLUMNS: Final = (
    "revision",
    "file",
    "line",
    "column",
    "table",
    "statement",
    "rule",
    "severity",
    "message",
    "fix",
    "squawk",
)
#: The PostgreSQL version assumed when none is given (the oldest one Neon runs).
DEFAULT_POSTGRES_VERSION: Final = 14
#: PostgreSQL cuts identifiers to this many bytes (NAMEDATALEN - 1).
MAX_IDENTIFIER_BYTES: Final = 63

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
_SMALL_INTEGERS: Final = {
    "int4": "integer",
    "int2": "smallint",
    "serial": "serial",
    "serial4": "serial",
    "smallserial": "smallserial",
    "serial2": "smallserial",
}
_TEXT_TYPES: Final = frozenset({"text", "varchar"})
_TRANSACTION = enums.TransactionStmtKind
_BEGIN: Final = (_TRANSACTION.TRANS_STMT_BEGIN, _TRANSACTION.TRANS_STMT_START)
_END: Final = (_TRANSACTION.TRANS_STMT_COMMIT, _TRANSACTION.TRANS_STMT_ROLLBACK)
# Statements that take a lock on something that already exists (for the timeout rules).
_LOCKING: Final = (
    ast.AlterTableStmt,
    ast.IndexStmt,
    ast.DropStmt,
    ast.TruncateStmt,
    ast.ReindexStmt,
    ast.ClusterStmt,
    ast.RenameStmt,
    ast.AlterEnumStmt,
    ast.AlterDomainStmt,
    ast.CreateTrigStmt,
    ast.LockStmt,
    ast.AlterObjectSchemaStmt,
)
_NOT_DDL: Final = (
    ast.SelectStmt,
    ast.InsertStmt,
    ast.UpdateStmt,
    ast.DeleteStmt,
    ast.VariableSetStmt,
    ast.VariableShowStmt,
    ast.TransactionStmt,
)


@dataclass(frozen=True)
class ColumnType:
    """A column's type as the parser names it (``varchar``, ``int4`` …) and its modifiers."""

    name: str
    modifiers: tuple[int, ...] = ()

    def becomes_without_rewrite(self, new: ColumnType) -> bool:
        """Whether PostgreSQL changes this type into ``new`` without rewriting the table.

        The binary-compatible changes: ``varchar(n)`` → ``varchar(m ≥ n)``, ``varchar`` or
        ``text``; ``text`` → ``varchar``; ``numeric(p, s)`` → ``numeric(q ≥ p, s)`` or
        ``numeric``; and no change at all.
        """
        if self == new:
            return True
        if self.name in _TEXT_TYPES and new.name in _TEXT_TYPES:
            if not new.modifiers:
                return True
            return self.name == "varchar" and bool(self.modifiers) and new.modifiers[0] >= self.modifiers[0]
        if self.name == new.name == "numeric":
            if not new.modifiers:
                return True
            if len(self.modifiers) >= 1 and len(new.modifiers) >= 1:
                old_scale = self.modifiers[1] if len(self.modifiers) > 1 else 0
                new_scale = new.modifiers[1] if len(new.modifiers) > 1 else 0
                return new.modifiers[0] >= self.modifiers[0] and new_scale == old_scale
        return False


@dataclass
class Schema:
    """What the lint knows of the database: column types and validated NOT NULL checks.

    Carried from one revision to the next (so a CHECK validated in one revision makes the
    next one's SET NOT NULL safe), and filled from the catalog when a database is given.
    """

    columns: dict[tuple[str, str], ColumnType] = field(default_factory=dict)
    not_null_checked: set[tuple[str, str]] = field(default_factory=set)
    pending_checks: dict[str, tuple[str, str]] = field(default_factory=dict)


@dataclass(frozen=True)
class Hit:
    """A rule broken by one statement (``at``: a character offset when not the statement's start)."""

    rule: Rule
    statement: int
    table: str | None = None
    detail: str = ""
    squawk: str | None = None
    at: int | None = None


@dataclass(frozen=True)
class Suppression:
    """One ``ignore`` comment: the rules it names, what it covers, where it is written."""

    rules: tuple[str, ...]
    statements: frozenset[int] | None  # None: the whole file
    text: str
    at: int  # its offset in the SQL, or -line for a Python comment of a revision
    line: int | None = None


@dataclass(frozen=True)
class Position:
    """Where a statement was written: a line and column (1-based) of a file."""

    line: int
    column: int


# -- one script -------------------------------------------------------------------------


def judge(
    sql: str,
    *,
    enabled: frozenset[str],
    postgres_version: int,
    schema: Schema,
    timeouts: bool,
) -> tuple[list[Statement], list[Comment], list[Hit]]:
    """The statements, comments and hazards of one script, as psql runs it (autocommit unless BEGIN)."""
    found, comments = script_statements(sql)
    judge = _Judge(found, schema=schema, postgres_version=postgres_version, timeouts=timeouts)
    hits = [hit for hit in judge.run() if hit.rule.name in enabled]
    return found, comments, hits


@dataclass
class _Judge:
    statements: list[Statement]
    schema: Schema
    postgres_version: int
    timeouts: bool
    created: set[str] = field(default_factory=set)
    created_indexes: set[str] = field(default_factory=set)
    begun: int | None = None  # the index of the open transaction's BEGIN
    new_enum_values: dict[str, str] = field(default_factory=dict)  # added in the open transaction
    lock_timeout: bool = False
    statement_timeout: bool = False
    locked: bool = False

    def run(self) -> Iterator[Hit]:
        for index, statement in enumerate(self.statements):
            if statement.node is None:
                yield Hit(RULES["syntax_error"], index, detail=str(statement.error))
                continue
            yield from self._statement(index, statement)
        if self.begun is not None:
            yield Hit(RULES["uncommitted_transaction"], self.begun)

    def _statement(self, index: int, statement: Statement) -> Iterator[Hit]:
        node = statement.node
        if isinstance(node, ast.TransactionStmt):
            yield from self._transaction(index, node)
            return
        if isinstance(node, ast.VariableSetStmt):
            self._setting(node)
            return
        if self.timeouts and not self.locked and self._takes_lock(node):
            self.locked = True
            if not self.lock_timeout:
                yield Hit(RULES["missing_lock_timeout"], index)
            if not self.statement_timeout:
                yield Hit(RULES["missing_statement_timeout"], index)
        if not isinstance(node, _NOT_DDL):
            yield from self._long_identifiers(index, statement)
        if self.begun is not None and self.new_enum_values:
            yield from self._uses_new_enum_value(index, node)
        for hit in self._hazards(index, node, statement):
            if hit.table != VERSION_TABLE:
                yield hit
        if isinstance(node, ast.CreateStmt):
            self.created.add(_relname(node.relation))
        elif isinstance(node, ast.CreateTableAsStmt):
            self.created.add(_relname(getattr(node.into, "rel", None)))
        elif isinstance(node, ast.IndexStmt) and node.idxname:
            self.created_indexes.add(str(node.idxname))

    def _transaction(self, index: int, node: Any) -> Iterator[Hit]:
        if node.kind in _BEGIN:
            if self.begun is not None:
                yield Hit(RULES["nested_transaction"], index, detail="BEGIN inside a transaction that is already open")
            else:
                self.begun = index
        elif node.kind in _END:
            if self.begun is None:
                yield Hit(RULES["nested_transaction"], index, detail="COMMIT or ROLLBACK with no transaction open")
            self.begun = None
            self.new_enum_values.clear()

    def _setting(self, node: Any) -> None:
        name = str(node.name or "").lower()
        if name not in ("lock_timeout", "statement_timeout"):
            return
        value = True
        if node.kind != enums.VariableSetKind.VAR_SET_VALUE:
            value = False  # RESET, SET … TO DEFAULT
        else:
            for arg in node.args or ():
                constant = getattr(arg, "val", None)
                text = str(getattr(constant, "ival", getattr(constant, "sval", "")))
                value = re.fullmatch(r"\s*0+\s*(ms|s|min|h|d)?\s*", text) is None
        setattr(self, name, value)

    def _takes_lock(self, node: Any) -> bool:
        if isinstance(node, ast.VacuumStmt):
            return _vacuum_full(node)
        if isinstance(node, ast.CreateStmt):  # a foreign key locks the table it references
            return any(
                constraint.contype == enums.ConstrType.CONSTR_FOREIGN
                and _relname(constraint.pktable) not in self.created
                for constraint in _table_constraints(node)
            )
        if not isinstance(node, _LOCKING):
            return False
        relation = getattr(node, "relation", None)
        return relation is None or _relname(relation) not in self.created

    def _hazards(self, index: int, node: Any, statement: Statement) -> Iterator[Hit]:
        if isinstance(node, ast.IndexStmt):
            table = _relname(node.relation)
            if node.concurrent and self.begun is not None:
                yield Hit(RULES["concurrently_in_transaction"], index, table)
            elif not node.concurrent and table not in self.created:
                yield Hit(RULES["create_index_without_concurrently"], index, table)
        elif isinstance(node, ast.AlterTableStmt) and node.objtype == enums.ObjectType.OBJECT_TABLE:
            table = _relname(node.relation)
            for cmd in node.cmds or ():
                yield from self._alter_table(index, cmd, table, existing=table not in self.created)
        elif isinstance(node, ast.CreateStmt):
            table = _relname(node.relation)
            for element in node.tableElts or ():
                if isinstance(element, ast.ColumnDef):
                    yield from self._column_type(index, table, element)
        elif isinstance(node, ast.DropStmt):
            yield from self._drop(index, node)
        elif isinstance(node, ast.DropdbStmt):
            yield Hit(RULES["drop_database"], index, detail=str(node.dbname))
        elif isinstance(node, ast.TruncateStmt) and node.behavior == enums.DropBehavior.DROP_CASCADE:
            for relation in node.relations or ():
                yield Hit(RULES["truncate_cascade"], index, _relname(relation))
        elif isinstance(node, ast.ReindexStmt) and not _has_option(node.params, "concurrently"):
            yield Hit(RULES["reindex_without_concurrently"], index, _relname(node.relation) if node.relation else None)
        elif isinstance(node, ast.VacuumStmt) and _vacuum_full(node):
            for relation in node.rels or [None]:
                table = _relname(relation.relation) if relation is not None else "every table"
                if table not in self.created:
                    yield Hit(RULES["vacuum_full"], index, table)
        elif isinstance(node, ast.ClusterStmt):
            table = _relname(node.relation) if node.relation is not None else "every clustered table"
            if table not in self.created:
                yield Hit(RULES["cluster"], index, table)
        elif isinstance(node, ast.RenameStmt):
            yield from self._rename(index, node)
        elif isinstance(node, ast.AlterEnumStmt) and node.newVal is not None and node.oldVal is None:
            yield from self._enum_value(index, node)
        elif isinstance(node, ast.AlterDomainStmt) and node.subtype == "C":
            yield Hit(RULES["alter_domain_add_constraint"], index, detail=_dotted(node.typeName))
        elif isinstance(node, ast.CreateDomainStmt) and node.constraints:
            yield Hit(RULES["create_domain_with_constraint"], index, detail=_dotted(node.domainname))
        elif isinstance(node, ast.CreateFunctionStmt | ast.DoStmt) and _language(node) == "plpgsql":
            try:
                parse_plpgsql(statement.sql)
            except ParseError as exc:
                yield Hit(RULES["syntax_error"], index, detail=f"its PL/pgSQL body: {exc}")

    def _alter_table(self, index: int, cmd: Any, table: str, *, existing: bool) -> Iterator[Hit]:
        kind = enums.AlterTableType
        if cmd.subtype == kind.AT_AddColumn:
            yield from self._column_type(index, table, cmd.def_)
            if existing:
                yield from self._add_column(index, cmd.def_, table)
            return
        if cmd.subtype == kind.AT_AlterColumnType:
            column = str(cmd.name)
            new = _column_type(cmd.def_.typeName)
            old = self.schema.columns.get((table, column))
            yield from self._column_type(index, table, cmd.def_, name=column)
            if not existing:
                return
            if cmd.def_.raw_default is None and old is not None and old.becomes_without_rewrite(new):
                return
            detail = "" if old is None else f" ({_type_text(old)} to {_type_text(new)} is not binary-compatible)"
            if cmd.def_.raw_default is not None:
                detail = " (USING rewrites every row)"
            yield Hit(RULES["alter_column_type"], index, table, detail)
            return
        if cmd.subtype == kind.AT_AddConstraint:
            yield from self._add_constraint(index, cmd.def_, table, existing=existing)
            return
        if cmd.subtype == kind.AT_ValidateConstraint:
            checked = self.schema.pending_checks.pop(str(cmd.name), None)
            if checked is not None:
                self.schema.not_null_checked.add(checked)
            return
        if not existing:
            return
        if cmd.subtype == kind.AT_SetNotNull:
            column = str(cmd.name)
            if (table, column) in self.schema.not_null_checked and self.postgres_version >= 12:
                return
            detail = ""
            if (table, column) in self.schema.not_null_checked:
                detail = f" (PostgreSQL {self.postgres_version} does not use the validated CHECK: 12+ does)"
            yield Hit(RULES["set_not_null"], index, table, detail)
        elif cmd.subtype == kind.AT_DropNotNull:
            yield Hit(RULES["drop_not_null"], index, table)
        elif cmd.subtype == kind.AT_DropColumn:
            yield Hit(RULES["drop_column"], index, table)
        elif cmd.subtype == kind.AT_DetachPartition and not getattr(cmd.def_, "concurrent", False):
            yield Hit(RULES["detach_partition_without_concurrently"], index, table)

    def _add_constraint(self, index: int, constraint: Any, table: str, *, existing: bool) -> Iterator[Hit]:
        kinds = enums.ConstrType
        checked_column = _not_null_check(constraint)
        if checked_column is not None:
            if constraint.skip_validation:
                self.schema.pending_checks[str(constraint.conname)] = (table, checked_column)
            else:
                self.schema.not_null_checked.add((table, checked_column))
        if not existing:
            return
        if constraint.contype in (kinds.CONSTR_CHECK, kinds.CONSTR_FOREIGN) and not constraint.skip_validation:
            yield Hit(RULES["add_constraint_without_not_valid"], index, table)
        elif constraint.contype in (kinds.CONSTR_UNIQUE, kinds.CONSTR_EXCLUSION) and not constraint.indexname:
            yield Hit(RULES["add_unique_without_index"], index, table)
        elif constraint.contype == kinds.CONSTR_PRIMARY and not constraint.indexname:
            yield Hit(RULES["add_primary_key_without_index"], index, table)

    def _add_column(self, index: int, column: Any, table: str) -> Iterator[Hit]:
        constraints = list(column.constraints or ())
        kinds = {constraint.contype for constraint in constraints}
        constr = enums.ConstrType
        default = next((c.raw_expr for c in constraints if c.contype == constr.CONSTR_DEFAULT), None)
        type_name = column.typeName.names[-1].sval if column.typeName is not None else ""
        volatile = RULES["add_column_volatile_default"]
        if type_name in _SERIAL_TYPES:
            yield Hit(volatile, index, table, f"{type_name} draws nextval() for each row")
        elif constr.CONSTR_IDENTITY in kinds:
            yield Hit(volatile, index, table, "an identity column draws a sequence value for each row")
        elif constr.CONSTR_GENERATED in kinds:
            yield Hit(volatile, index, table, "a stored generated column is computed for each row")
        elif default is not None and (call := _volatile_call(default)):
            yield Hit(
                volatile, index, table, f"the default calls {call}(), which is volatile or not known to be stable"
            )
        elif default is not None and self.postgres_version < 11:
            yield Hit(volatile, index, table, f"PostgreSQL {self.postgres_version} writes any default into every row")
        elif default is None and constr.CONSTR_NOTNULL in kinds:
            yield Hit(RULES["add_column_not_null_without_default"], index, table)
        if constr.CONSTR_UNIQUE in kinds:
            yield Hit(RULES["add_unique_without_index"], index, table)
        if constr.CONSTR_PRIMARY in kinds:
            yield Hit(RULES["add_primary_key_without_index"], index, table)
        if constr.CONSTR_FOREIGN in kinds:
            yield Hit(RULES["add_column_references"], index, table)

    def _column_type(self, index: int, table: str, column: Any, *, name: str | None = None) -> Iterator[Hit]:
        """The type rules (json, and the style rules) for a column being defined or changed."""
        if column.typeName is None:
            return
        kind = _column_type(column.typeName)
        column_name = name or str(column.colname)
        self.schema.columns[(table, column_name)] = kind
        where = f"{table}.{column_name}"
        if kind.name == "json":
            yield Hit(RULES["json_column"], index, table, where)
        elif kind.name in _SMALL_INTEGERS:
            spelled = _SMALL_INTEGERS[kind.name]
            squawk = "prefer-bigint-over-smallint" if "small" in spelled else None
            yield Hit(RULES["prefer_bigint"], index, table, f"{where} as {spelled}", squawk)
        if kind.name in _SERIAL_TYPES:
            yield Hit(RULES["prefer_identity"], index, table, f"{where} as {kind.name}")
        if kind.name == "varchar" and kind.modifiers:
            yield Hit(RULES["prefer_text"], index, table, f"{where} as varchar({kind.modifiers[0]})")
        elif kind.name == "timestamp":
            yield Hit(RULES["prefer_timestamptz"], index, table, where)
        elif kind.name == "bpchar":
            yield Hit(RULES["no_char"], index, table, where)

    def _drop(self, index: int, node: Any) -> Iterator[Hit]:
        objects = enums.ObjectType
        for name in node.objects or ():
            parts = name if isinstance(name, tuple | list) else (name,)
            target = str(getattr(parts[-1], "sval", parts[-1]))
            if node.removeType == objects.OBJECT_TABLE and target not in self.created:
                yield Hit(RULES["drop_table"], index, target)
            elif node.removeType == objects.OBJECT_INDEX and not node.concurrent:
                if target not in self.created_indexes:
                    yield Hit(RULES["drop_index_without_concurrently"], index, None, target)
            elif node.removeType == objects.OBJECT_SCHEMA:
                yield Hit(RULES["drop_schema"], index, None, target)

    def _rename(self, index: int, node: Any) -> Iterator[Hit]:
        objects = enums.ObjectType
        if node.renameType not in (objects.OBJECT_TABLE, objects.OBJECT_COLUMN) or node.relation is None:
            return
        table = _relname(node.relation)
        if table in self.created:
            if node.renameType == objects.OBJECT_TABLE:
                self.created.add(str(node.newname))
            return
        squawk = "renaming-table" if node.renameType == objects.OBJECT_TABLE else "renaming-column"
        yield Hit(RULES["rename"], index, table, squawk=squawk)

    def _enum_value(self, index: int, node: Any) -> Iterator[Hit]:
        value = str(node.newVal)
        if not node.newValNeighbor:
            yield Hit(RULES["enum_value_without_position"], index, detail=repr(value))
        if self.begun is None:
            return
        if self.postgres_version < 12:
            detail = f"PostgreSQL {self.postgres_version} refuses ALTER TYPE ... ADD VALUE inside a transaction block"
            yield Hit(RULES["enum_value_in_transaction"], index, detail=detail)
        else:
            self.new_enum_values[value] = _dotted(node.typeName)

    def _uses_new_enum_value(self, index: int, node: Any) -> Iterator[Hit]:
        for value in _string_constants(node) & self.new_enum_values.keys():
            detail = (
                f"uses {value!r}, added to {self.new_enum_values[value]} in the same transaction: PostgreSQL "
                "refuses it (unsafe use of new value) until the ADD VALUE has committed"
            )
            yield Hit(RULES["enum_value_in_transaction"], index, detail=detail)

    def _long_identifiers(self, index: int, statement: Statement) -> Iterator[Hit]:
        try:
            tokens = scan(statement.sql)
        except ParseError:
            return
        seen: set[str] = set()
        for token in tokens:
            if token.name != "IDENT":
                continue
            raw = statement.sql[token.start : token.end + 1]
            name = raw[1:-1].replace('""', '"') if raw.startswith('"') else raw.lower()
            if len(name.encode()) > MAX_IDENTIFIER_BYTES and name not in seen:
                seen.add(name)
                cut = name.encode()[:MAX_IDENTIFIER_BYTES].decode(errors="ignore")
                detail = f"{name!r} ({len(name.encode())} bytes, stored as {cut!r})"
                yield Hit(RULES["identifier_too_long"], index, detail=detail, at=statement.start + token.start)


def _column_type(type_name: Any) -> ColumnType:
    name = str(type_name.names[-1].sval).lower()
    modifiers = tuple(
        int(modifier.val.ival)
        for modifier in type_name.typmods or ()
        if isinstance(getattr(modifier, "val", None), ast.Integer)
    )
    return ColumnType(name, modifiers)


def _type_text(kind: ColumnType) -> str:
    return kind.name + (f"({', '.join(map(str, kind.modifiers))})" if kind.modifiers else "")


def _not_null_check(constraint: Any) -> str | None:
    """The column of ``CHECK (column IS NOT NULL)``, else None."""
    if constraint.contype != enums.ConstrType.CONSTR_CHECK:
        return None
    expression = constraint.raw_expr
    if not isinstance(expression, ast.NullTest) or expression.nulltesttype != enums.NullTestType.IS_NOT_NULL:
        return None
    column: Any = expression.arg
    if not isinstance(column, ast.ColumnRef) or not column.fields:
        return None
    return str(column.fields[-1].sval)


def _table_constraints(node: Any) -> Iterator[Any]:
    for element in node.tableElts or ():
        if isinstance(element, ast.Constraint):
            yield element
        elif isinstance(element, ast.ColumnDef):
            yield from element.constraints or ()


def _vacuum_full(node: Any) -> bool:
    return bool(node.is_vacuumcmd) and _has_option(node.options, "full")


def _has_option(options: Any, name: str) -> bool:
    for option in options or ():
        if option.defname == name:
            arg = option.arg
            return arg is None or str(
                getattr(arg, "sval", getattr(arg, "boolval", getattr(arg, "ival", 1)))
            ).lower() not in (
                "false",
                "off",
                "0",
            )
    return False


def _string_constants(node: Any) -> set[str]:
    found: set[str] = set()

    class Strings(Visitor):
        def visit_A_Const(self, _ancestors: Any, constant: Any) -> None:
            if isinstance(constant.val, ast.String):
                found.add(str(constant.val.sval))

    Strings()(node)
    return found


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


def _dotted(names: Any) -> str:
    return ".".join(str(name.sval) for name in names or ())


# -- suppressions -----------------------------------------------------------------------

_SUPPRESSION = re.compile(
    r"^(?:--|/\*|\#)\s*(?P<tool>todo-data:\s*ignore|squawk-ignore)(?P<file>-file)?\b(?P<rest>.*?)(?:\*/)?\s*$",
    re.IGNORECASE | re.DOTALL,
)


@dataclass(frozen=True)
class _Parsed:
    names: tuple[str, ...]
    whole_file: bool
    problem: str | None


def _parse_suppression(text: str) -> _Parsed | None:
    """The rules an ``ignore`` comment names, or None when the comment is not one."""
    match = _SUPPRESSION.match(text.strip())
    if match is None:
        return None
    ours = match["tool"].lower().startswith("todo-data")
    rest = match["rest"]
    reason = ""
    if ours:
        rules_text, _, reason = rest.partition(" --")
        if not _ and rest.strip().startswith("--"):
            rules_text, reason = "", rest.strip()[2:]
    else:
        rules_text = rest
    names = tuple(name.strip() for name in re.split(r"[,\s]+", rules_text.strip()) if name.strip())
    problem = None
    if ours and not names:
        problem = "names no rule: write `-- todo-data: ignore RULE[, RULE] -- reason`"
    elif ours and not match["file"] and not reason.strip():
        problem = f"ignores {', '.join(names)} without a reason: add one after ` -- `"
    unknown = [name for name in names if name not in RULES and name not in SQUAWK_NAMES]
    if unknown:
        problem = f"names unknown rule {', '.join(map(repr, unknown))}"
    if not ours and not names:
        names = tuple(RULES)  # squawk-ignore with no rule ignores them all
    return _Parsed(names, bool(match["file"]), problem)


def sql_suppressions(
    sql: str, found: list[Statement], comments: list[Comment]
) -> tuple[list[Suppression], list[tuple[Comment, str]]]:
    """The ``ignore`` comments of a SQL script, each tied to the statement it is written on."""
    suppressions: list[Suppression] = []
    problems: list[tuple[Comment, str]] = []
    for comment in comments:
        parsed = _parse_suppression(comment.text)
        if parsed is None:
            continue
        if parsed.problem:
            problems.append((comment, parsed.problem))
            continue
        target = None if parsed.whole_file else frozenset(_statement_of(sql, found, comment))
        suppressions.append(Suppression(parsed.names, target, comment.text, comment.start))
    return suppressions, problems


def _statement_of(sql: str, found: list[Statement], comment: Comment) -> list[int]:
    """The statement a comment belongs to: the one it is inside, ends the line of, or precedes."""
    for index, statement in enumerate(found):
        if statement.start <= comment.start < statement.end:
            return [index]
    for index, statement in enumerate(found):
        between = sql[statement.end : comment.start] if statement.end <= comment.start else "\n"
        if "\n" not in between and between.strip() in ("", ";"):
            return [index]  # at the end of the statement's last line
    return [index for index, statement in enumerate(found) if statement.start >= comment.end][:1]


def apply_suppressions(
    hits: list[Hit], suppressions: list[Suppression], *, enabled: frozenset[str]
) -> tuple[list[Hit], list[Suppression]]:
    """The hits no suppression covers, and the unused suppressions (one per unused rule name)."""
    used: set[tuple[int, str]] = set()
    kept: list[Hit] = []
    for hit in hits:
        covering = [
            (number, name)
            for number, suppression in enumerate(suppressions)
            for name in suppression.rules
            if hit.rule.name in _our_names(name)
            and (suppression.statements is None or hit.statement in suppression.statements)
        ]
        if covering and hit.rule.name not in ("invalid_suppression", "unused_suppression"):
            used.update(covering)
        else:
            kept.append(hit)
    unused: list[Suppression] = []
    for number, suppression in enumerate(suppressions):
        if len(suppression.rules) == len(RULES):  # a bare squawk-ignore: used if it hid anything
            if not any(n == number for n, _ in used) and suppression.statements is not None:
                unused.append(Suppression(("every rule",), suppression.statements, suppression.text, suppression.at))
            continue
        for name in suppression.rules:
            if (number, name) not in used and set(_our_names(name)) & enabled:
                unused.append(Suppression((name,), suppression.statements, suppression.text, suppression.at))
    return kept, unused


def _our_names(name: str) -> tuple[str, ...]:
    return (name,) if name in RULES else SQUAWK_NAMES.get(name, ())


# -- findings ---------------------------------------------------------------------------


def position(text: str, offset: int) -> Position:
    """The 1-based line and column of a character offset."""
    line = text.count("\n", 0, offset) + 1
    return Position(line, offset - (text.rfind("\n", 0, offset) + 1) + 1)


def finding(
    rule: Rule,
    *,
    where: Position,
    statement: str,
    table: str | None = None,
    detail: str = "",
    squawk: str | None = None,
) -> dict[str, Any]:
    """One row of the lint's frame (revision and file filled by the caller)."""
    return {
        "line": where.line,
        "column": where.column,
        "table": table,
        "statement": statement,
        "rule": rule.name,
        "severity": rule.severity,
        "message": rule.message.format(table=table or "the table", detail=detail),
        "fix": rule.fix,
        "squawk": squawk or rule.squawk,
    }


def lint_script(
    sql: str,
    *,
    enabled: frozenset[str],
    postgres_version: int,
    schema: Schema | None = None,
    timeouts: bool = True,
    place: Any = None,
    extra_suppressions: Iterable[Suppression] = (),
) -> list[dict[str, Any]]:
    """The findings of one script after its suppressions; ``place(offset)`` gives a finding's position."""
    locate = place or (lambda offset: position(sql, offset))
    found, comments, hits = judge(
        sql, enabled=enabled, postgres_version=postgres_version, schema=schema or Schema(), timeouts=timeouts
    )
    suppressions, problems = sql_suppressions(sql, found, comments)
    kept, unused = apply_suppressions(hits, [*suppressions, *extra_suppressions], enabled=enabled)
    rows = []
    for hit in kept:
        statement = found[hit.statement]
        at = hit.at if hit.at is not None else statement.start
        rows.append(
            finding(
                hit.rule,
                where=locate(at),
                statement=statement.sql,
                table=hit.table,
                detail=hit.detail,
                squawk=hit.squawk,
            )
        )
    for comment, problem in problems:
        rows.append(
            finding(RULES["invalid_suppression"], where=locate(comment.start), statement=comment.text, detail=problem)
        )
    for suppression in unused:
        where = Position(suppression.line, 1) if suppression.line is not None else locate(suppression.at)
        detail = suppression.rules[0]
        rows.append(finding(RULES["unused_suppression"], where=where, statement=suppression.text, detail=detail))
    rows.sort(key=lambda row: (row["line"], row["column"]))
    return rows


def frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """The lint's frame: :data:`LINT_COLUMNS`, line and column as integers."""
    result = pd.DataFrame(rows, columns=list(LINT_COLUMNS))
    result["line"] = result["line"].astype("int64")
    result["column"] = result["column"].astype("int64")
    return result


def require_version(version: object) -> int:
    """A PostgreSQL major version from 9 to 99 (``16``, ``"16"`` or ``"16.2"``)."""
    text = str(version).strip()
    match = re.fullmatch(r"(\d+)(?:\.\d+)*", text)
    if isinstance(version, bool) or match is None or not 9 <= int(match[1]) <= 99:
        raise InvalidArgumentError(
            f"postgres_version must be a PostgreSQL major version such as 16 (or '16.2'), not {version!r}"
        )
    return int(match[1])


# -- revisions --------------------------------------------------------------------------


def lint_revisions(
    script: ScriptDirectory, *, location: str | Path | None, enabled: frozenset[str], postgres_version: int
) -> tuple[list[dict[str, Any]], Schema]:
    """See :func:`todo_data.migrations.lint`: each revision's offline SQL, oldest first."""
    rows: list[dict[str, Any]] = []
    schema = Schema()
    for rev in reversed(list(script.walk_revisions())):
        path = Path(rev.path)
        sql, marks = _offline_sql(rev.revision, rev.down_revision, location, path)
        suppressions, problems = _python_suppressions(path, sql, marks)
        for line, text, problem in problems:
            where = Position(line, 1)
            rows.append(
                {
                    "revision": rev.revision,
                    "file": str(path),
                    **finding(RULES["invalid_suppression"], where=where, statement=text, detail=problem),
                }
            )
        for row in lint_script(
            sql,
            enabled=enabled,
            postgres_version=postgres_version,
            schema=schema,
            timeouts=False,  # the runner sets lock_timeout for every revision
            place=lambda offset, marks=marks, sql=sql: _python_position(marks, sql, offset),
            extra_suppressions=suppressions,
        ):
            rows.append({"revision": rev.revision, "file": str(path), **row})
    return rows, schema


def revision_scripts(script: ScriptDirectory, *, location: str | Path | None) -> list[tuple[str, str]]:
    """Each revision and its offline SQL (PostgreSQL dialect), oldest first: what :func:`lint_revisions` judges."""
    return [
        (rev.revision, _offline_sql(rev.revision, rev.down_revision, location, Path(rev.path))[0])
        for rev in reversed(list(script.walk_revisions()))
    ]


class _Recorder(io.StringIO):
    """Alembic's offline output, remembering which line of the revision wrote each piece."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = os.path.abspath(path)
        self.marks: list[tuple[int, Position]] = []

    def write(self, text: str) -> int:
        frame: Any = sys._getframe(1)
        while frame is not None and os.path.abspath(frame.f_code.co_filename) != self.path:
            frame = frame.f_back
        if frame is not None:
            positions = list(frame.f_code.co_positions())
            line, column = frame.f_lineno, 0
            if frame.f_lasti // 2 < len(positions):
                line, _, column, _ = positions[frame.f_lasti // 2]
            self.marks.append((self.tell(), Position(line or frame.f_lineno, (column or 0) + 1)))
        return super().write(text)


def _offline_sql(
    revision: str, down_revision: Any, location: str | Path | None, path: Path
) -> tuple[str, list[tuple[int, Position]]]:
    """``alembic upgrade <down>:<revision> --sql``, PostgreSQL dialect: this revision's SQL only."""
    if down_revision is not None and not isinstance(down_revision, str):
        raise MigrationError(f"Revision {revision} merges several revisions: lint reads one line of revisions")
    output = _Recorder(path)
    try:
        command.upgrade(offline_config(location, output), f"{down_revision or 'base'}:{revision}", sql=True)
    except CommandError as exc:
        raise MigrationError(f"Cannot produce the SQL of revision {revision}: {exc}") from None
    return output.getvalue(), output.marks


def _python_position(marks: list[tuple[int, Position]], sql: str, offset: int) -> Position:
    """The revision line that wrote the SQL at ``offset`` (else the line of the SQL itself)."""
    before = [where for start, where in marks if start <= offset]
    if before:
        return before[-1]
    return position(sql, offset)


def _python_suppressions(
    path: Path, sql: str, marks: list[tuple[int, Position]]
) -> tuple[list[Suppression], list[tuple[int, str, str]]]:
    """``# todo-data: ignore RULE -- reason`` in the revision's Python, tied to the statements it writes.

    A comment covers the statements written by its own line, or by the line after the
    block of comment lines it belongs to.
    """
    try:
        comments = [
            (token.start[0], token.string, token.line.strip().startswith("#"))
            for token in tokenize.generate_tokens(io.StringIO(path.read_text()).readline)
            if token.type == tokenize.COMMENT
        ]
    except (OSError, SyntaxError, tokenize.TokenError):
        return [], []
    found, _ = script_statements(sql)
    lines = [_python_position(marks, sql, statement.start).line for statement in found]
    suppressions = []
    problems = []
    comment_lines = {line for line, _, alone in comments if alone}
    for line, text, alone in comments:
        parsed = _parse_suppression(text)
        if parsed is None:
            continue
        if parsed.problem:
            problems.append((line, text, parsed.problem))
            continue
        target_line = line
        if alone:
            target_line = line + 1
            while target_line in comment_lines:
                target_line += 1
        covered = None if parsed.whole_file else frozenset(i for i, at in enumerate(lines) if at == target_line)
        suppressions.append(Suppression(parsed.names, covered, text, -line, line=line))
    return suppressions, problems
