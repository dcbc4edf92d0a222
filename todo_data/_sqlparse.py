"""PostgreSQL SQL read with PostgreSQL's own parser (libpg_query, through pglast).

A script becomes its statements, each with its exact text and parse tree; the lint and
the lock trace both read statements this way, never with regular expressions.
"""

from __future__ import annotations

import fnmatch
import functools
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final

from pglast import ast, parse_sql
from pglast.parser import ParseError, parse_sql_json, scan
from pglast.visitors import Visitor

from todo_data.errors import InvalidArgumentError, QueryError


@dataclass(frozen=True)
class Statement:
    """One statement of a script: its text (without the semicolon) and its parse tree.

    ``start`` and ``end`` are its character offsets in the script (``end`` before the
    semicolon). From :func:`script_statements`, a stretch PostgreSQL cannot parse is a
    statement too, with ``node`` None and ``error`` the parser's message.
    """

    sql: str
    node: Any
    start: int = 0
    end: int = 0
    error: str | None = None


@dataclass(frozen=True)
class Comment:
    """A comment the lexer saw (``-- …`` or ``/* … */``), with its character offsets."""

    text: str
    start: int
    end: int


def statements(script: str) -> list[Statement]:
    """The statements of ``script``, in order; raises ``pglast.parser.ParseError``."""
    found = []
    for raw in parse_sql(script):
        # pglast turns libpg_query's byte offsets into character offsets; a length of 0
        # means "to the end". The location is the statement's first token (comments before
        # it are left out).
        start = raw.stmt_location or 0
        end = start + raw.stmt_len if raw.stmt_len else len(script)
        text = script[start:end]
        lead = len(text) - len(text.lstrip())
        found.append(Statement(text.strip(), raw.stmt, start + lead, start + len(text.rstrip())))
    return found


def script_statements(script: str) -> tuple[list[Statement], list[Comment]]:
    """Every statement of a script and its comments, even when part of it is not valid SQL.

    When the whole script does not parse, it is cut at the semicolons the lexer sees and
    each piece is parsed alone, so one bad statement does not hide the others: a piece
    that fails is a :class:`Statement` with ``error`` set. Never raises.
    """
    try:
        tokens = scan(script)
    except ParseError as exc:  # the lexer itself gave up (an unclosed quote): one bad piece
        text = script.strip()
        start = len(script) - len(script.lstrip())
        return [Statement(text, None, start, start + len(text), _parse_message(script, exc))], []
    comments = [
        Comment(script[token.start : token.end + 1], token.start, token.end + 1)
        for token in tokens
        if token.name in ("SQL_COMMENT", "C_COMMENT")
    ]
    try:
        return statements(script), comments
    except ParseError:
        pass
    found: list[Statement] = []
    code = [token for token in tokens if token.name not in ("SQL_COMMENT", "C_COMMENT")]
    begin = 0
    for token in [*code, None]:
        if token is not None and token.name != "ASCII_59":
            continue
        stop = token.start if token is not None else len(script)
        inside = [t for t in code if begin <= t.start < stop]
        if inside:
            first, last = inside[0].start, inside[-1].end + 1
            piece = script[first:last]
            try:
                found += [Statement(s.sql, s.node, s.start + first, s.end + first, s.error) for s in statements(piece)]
            except ParseError as exc:
                found.append(Statement(piece, None, first, last, _parse_message(piece, exc)))
        begin = stop + 1
    return found, comments


def relations(sql: str) -> set[str]:
    """The names (unqualified) of the tables a statement refers to; empty when it cannot be parsed."""
    try:
        trees = [statement.node for statement in statements(sql)]
    except ParseError:
        return set()
    return {str(range_var.relname) for tree in trees for range_var in range_vars(tree)}


def range_vars(tree: Any) -> Iterator[ast.RangeVar]:
    """Every table reference (``RangeVar``) in a parse tree."""
    found: list[ast.RangeVar] = []

    class Collect(Visitor):
        def visit_RangeVar(self, _ancestors: Any, node: ast.RangeVar) -> None:
            found.append(node)

    Collect()(tree)
    return iter(found)


def one_line(sql: str) -> str:
    """A statement on one line (whitespace runs collapsed), for tables and terminals."""
    return " ".join(sql.split())


# -- one read statement (queries.sql) --------------------------------------------------------

#: Functions refused in read-only SQL: they take locks that outlive the statement, signal
#: other sessions, change session or server state, or reach another database. Matched on
#: the function's own name, whatever its schema.
REFUSED_FUNCTIONS: Final = (
    "pg_advisory_*",
    "pg_try_advisory_*",
    "pg_terminate_backend",
    "pg_cancel_backend",
    "pg_signal_backend",
    "pg_reload_conf",
    "pg_rotate_logfile*",  # adminpack's pg_rotate_logfile_old too
    "pg_log_backend_memory_contexts",
    "pg_promote",
    "pg_switch_wal",
    "pg_create_restore_point",
    "pg_create_*_replication_slot",
    "pg_drop_replication_slot",
    "pg_replication_origin_*",
    "pg_wal_replay_pause",
    "pg_wal_replay_resume",
    "pg_stat_reset*",
    "pg_notify",
    "set_config",
    "dblink*",
    "lo_*",
    "pg_file_*",
    "pg_copy_*_replication_slot",
    "pg_replication_slot_advance",
    "pg_logical_emit_message",
    "pg_import_system_collations",
    "pg_backup_start",
    "pg_backup_stop",
    "pg_start_backup",  # PostgreSQL 14 and older
    "pg_stop_backup",
    # They consume a replication slot's changes, which no rollback gives back.
    "pg_logical_slot_get_changes",
    "pg_logical_slot_get_binary_changes",
    "brin_summarize_*",
    "brin_desummarize_range",
    "gin_clean_pending_list",
    # They change a sequence, which no READ ONLY transaction refuses on a caller's connection.
    "nextval",
    "setval",
    # They run SQL given as text, which this check cannot see.
    "query_to_xml*",
    "cursor_to_xml*",
    "ts_stat",
    "ts_rewrite",
    "crosstab*",
    "connectby",
    "pg_stat_statements_reset",
    # Contrib: a SHARE lock that blocks every write to the table while it runs (amcheck),
    # pages changed in place (pg_surgery, pg_visibility), SQL run in a session of its own.
    "bt_index_parent_check",
    "heap_force_*",
    "pg_truncate_visibility_map",
    "pg_background_*",
)

# Nodes that write or lock, wherever they appear (a data-modifying CTE, SELECT INTO,
# FOR UPDATE/SHARE): the statement they are in is no read. Keys of libpg_query's JSON.
_WRITING_NODES: Final = {
    "InsertStmt": "INSERT",
    "UpdateStmt": "UPDATE",
    "DeleteStmt": "DELETE",
    "MergeStmt": "MERGE",
    "intoClause": "SELECT INTO (creates a table)",
    "LockingClause": "FOR UPDATE/SHARE (takes row locks)",
}
_READS: Final = "SELECT, WITH … SELECT, VALUES, TABLE, SHOW or EXPLAIN (without ANALYZE) of a query"
_KIND_WORDS: Final = {
    "SelectStmt": "SELECT",
    "CreateStmt": "CREATE TABLE",
    "InsertStmt": "INSERT",
    "UpdateStmt": "UPDATE",
    "DeleteStmt": "DELETE",
    "MergeStmt": "MERGE",
    "CopyStmt": "COPY",
    "ExplainStmt": "EXPLAIN",
    "VariableSetStmt": "SET",
    "VariableShowStmt": "SHOW",
    "ListenStmt": "LISTEN",
    "NotifyStmt": "NOTIFY",
    "PrepareStmt": "PREPARE",
    "ExecuteStmt": "EXECUTE",
    "LockStmt": "LOCK",
    "DoStmt": "DO",
    "CallStmt": "CALL",
    "TruncateStmt": "TRUNCATE",
    "VacuumStmt": "VACUUM",
}


@dataclass(frozen=True)
class ReadStatement:
    """The one read statement of a query text: ``wrappable`` when it is a query (SELECT,
    WITH … SELECT, VALUES, TABLE) whose rows a ``COPY (…) TO STDOUT`` can carry."""

    kind: str
    wrappable: bool


def read_statement(sql: str) -> ReadStatement:
    """The statement of ``sql`` when it is exactly one read statement.

    Raises :class:`~todo_data.errors.InvalidArgumentError` naming what was found (several
    statements, a write, a lock, a refused function) and
    :class:`~todo_data.errors.QueryError` (SQLSTATE ``42601``) for a syntax error, both
    before anything is sent. The parse tree is read as libpg_query's JSON, four times
    faster than pglast's Python nodes for this one walk.
    """
    try:
        found = [raw["stmt"] for raw in json.loads(parse_sql_json(sql)).get("stmts", [])]
    except ParseError as exc:
        raise QueryError(f"The query is not valid SQL: {_parse_message(sql, exc)}", sqlstate="42601") from None
    if len(found) != 1:
        kinds = ", ".join(_kind(node) for node in found)
        raise InvalidArgumentError(
            f"the query must be one read statement ({_READS}), but it holds {len(found)} statements: {kinds}"
        )
    ((name, node),) = found[0].items()
    if name == "ExplainStmt":
        for option in node.get("options", ()):
            definition = option.get("DefElem", {})
            if definition.get("defname") == "analyze" and _option_on(definition.get("arg")):
                raise InvalidArgumentError(
                    "EXPLAIN ANALYZE runs the statement: leave out ANALYZE, or run it on a connection of your own"
                )
        query = node.get("query", {})
        if "SelectStmt" not in query:
            raise InvalidArgumentError(f"EXPLAIN of {_kind(query)} is refused: only read queries are explained")
        _check_reads(query)
        return ReadStatement("EXPLAIN", wrappable=False)
    if name == "VariableShowStmt":
        return ReadStatement("SHOW", wrappable=False)
    if name != "SelectStmt":
        raise InvalidArgumentError(
            f"the query must be one read statement ({_READS}), not {_kind(found[0])}: "
            "to write, use a session (todo_data.session_scope) or a migration"
        )
    _check_reads(found[0])
    return ReadStatement("SELECT", wrappable=True)


def _kind(wrapped: dict[str, Any]) -> str:
    """What a statement (``{"DropStmt": {...}}``) is, in SQL's words: ``DELETE``, ``DROP TABLE``, ``COMMIT``…"""
    if not wrapped:
        return "nothing"
    ((name, node),) = wrapped.items()
    if name in _KIND_WORDS:
        return _KIND_WORDS[name]
    if name == "TransactionStmt":
        return str(node.get("kind", "")).removeprefix("TRANS_STMT_").replace("_", " ")
    if name == "DropStmt":
        return f"DROP {str(node.get('removeType', '')).removeprefix('OBJECT_').replace('_', ' ')}"
    # AlterTableStmt → ALTER TABLE, CreateTableAsStmt → CREATE TABLE AS…
    return " ".join(re.findall(r"[A-Z][a-z]*", name.removesuffix("Stmt"))).upper() or name


def _check_reads(tree: Any) -> None:
    refused: list[str] = []
    pending = [tree]
    while pending:  # iterative: a deeply nested query must not exhaust Python's stack
        item = pending.pop()
        if isinstance(item, list):
            pending.extend(item)
            continue
        if not isinstance(item, dict):
            continue
        for key, value in item.items():
            if key in _WRITING_NODES:
                refused.append(_WRITING_NODES[key])
            elif key == "FuncCall":
                names = value.get("funcname") or [{}]
                name = str(names[-1].get("String", {}).get("sval", ""))
                if any(fnmatch.fnmatchcase(name, pattern) for pattern in REFUSED_FUNCTIONS):
                    refused.append(f"{name}() (refused in read-only SQL: it locks, signals or changes state)")
            if isinstance(value, dict | list):
                pending.append(value)
    if refused:
        raise InvalidArgumentError(
            f"the query must only read, but it holds {', '.join(dict.fromkeys(refused))}: "
            "to write or lock, use a session (todo_data.session_scope) of your own"
        )


def _option_on(arg: dict[str, Any] | None) -> bool:
    """Whether an EXPLAIN option's value means on (no value does)."""
    if not arg:
        return True
    if "Integer" in arg:
        return bool(arg["Integer"].get("ival", 0))
    if "Boolean" in arg:
        return bool(arg["Boolean"].get("boolval", False))
    value: Any = next(iter(arg.values()), {})
    text = str(value.get("sval", "")) if isinstance(value, dict) else ""
    return text.lower() not in ("false", "off", "0", "no")


# -- a read-only engine's transactions (database.create_engine) ------------------------------

# Settings that make a transaction read-write, or the session's next ones (GUC names are
# case-insensitive).
_READ_ONLY_SETTINGS: Final = frozenset({"transaction_read_only", "default_transaction_read_only"})
_SAVEPOINT_KINDS: Final = frozenset({"TRANS_STMT_SAVEPOINT", "TRANS_STMT_RELEASE", "TRANS_STMT_ROLLBACK_TO"})
_TRANSACTION_WORDS: Final = {"TRANS_STMT_START": "START TRANSACTION", "TRANS_STMT_PREPARE": "PREPARE TRANSACTION"}


@functools.lru_cache(maxsize=1024)
def leaves_read_only(sql: str) -> str | None:
    """What in ``sql`` would end its transaction or make one read-write, in SQL's words; else None.

    PostgreSQL accepts ``SET TRANSACTION READ WRITE`` (``SET transaction_read_only``,
    ``RESET`` of it, ``BEGIN READ WRITE`` in a transaction) until the transaction's first
    query, and ``COMMIT AND CHAIN`` begins a transaction that has had none: so any
    ``BEGIN``, ``START TRANSACTION``, ``COMMIT``, ``ROLLBACK``, ``END``, ``ABORT``,
    ``PREPARE TRANSACTION`` and any change of ``transaction_read_only`` or
    ``default_transaction_read_only`` (also as ``SET TRANSACTION``/``SET SESSION
    CHARACTERISTICS AS TRANSACTION READ WRITE``) is named. Savepoints are not. Text the
    parser cannot read gives None: the server refuses it too. Cached: sessions repeat
    their statements.
    """
    try:
        found = [raw["stmt"] for raw in json.loads(parse_sql_json(sql)).get("stmts", [])]
    except ParseError:
        return None
    for wrapped in found:
        ((name, node),) = wrapped.items()
        if name == "TransactionStmt" and node.get("kind") not in _SAVEPOINT_KINDS:
            words = _TRANSACTION_WORDS.get(node.get("kind", ""), _kind(wrapped))
            return f"{words} AND CHAIN" if node.get("chain") else words
        if name != "VariableSetStmt":
            continue
        setting = str(node.get("name", ""))
        if setting.lower() in _READ_ONLY_SETTINGS:
            return f"SET {setting}"
        for option in node.get("args", ()):
            definition = option.get("DefElem", {})
            value = definition.get("arg", {}).get("A_Const", {}).get("ival", {}).get("ival", 0)
            if definition.get("defname") == "transaction_read_only" and not value:
                return f"SET {setting} READ WRITE"
    return None


def parameter_tokens(sql: str) -> list[tuple[int, str]]:
    """Where PostgreSQL's lexer sees a ``$N`` placeholder in ``sql``, and its text.

    Raises :class:`~todo_data.errors.QueryError` (SQLSTATE ``42601``) where the lexer
    refuses the text (an unclosed literal).
    """
    try:
        tokens = scan(sql)
    except ParseError as exc:
        raise QueryError(f"The query is not valid SQL: {_parse_message(sql, exc)}", sqlstate="42601") from None
    return [(token.start, sql[token.start : token.end + 1]) for token in tokens if token.name == "PARAM"]


def check_copy(sql: str) -> None:
    """Raise unless ``sql`` is one ``COPY (query) TO STDOUT`` whose query only reads (as :func:`read_statement`)."""
    try:
        found = [raw["stmt"] for raw in json.loads(parse_sql_json(sql)).get("stmts", [])]
    except ParseError as exc:
        raise QueryError(f"not valid SQL: {_parse_message(sql, exc)}", sqlstate="42601") from None
    if len(found) != 1 or "CopyStmt" not in found[0]:
        raise InvalidArgumentError(f"{len(found)} statements: {', '.join(_kind(node) for node in found)}")
    copy = found[0]["CopyStmt"]
    if copy.get("is_from") or copy.get("is_program") or copy.get("filename") is not None:
        # What the client receives, never a server file or program (which the server's
        # privileges would allow for some roles).
        raise InvalidArgumentError("a COPY that is not TO STDOUT")
    _check_reads(copy.get("query", {}))


def _parse_message(sql: str, exc: ParseError) -> str:
    """libpg_query's message, with the line and column of the character it points at."""
    message = str(exc.args[0]) if exc.args else "syntax error"
    position = exc.args[1] if len(exc.args) > 1 and isinstance(exc.args[1], int) else None
    if position is not None and 0 <= position <= len(sql):
        line = sql.count("\n", 0, position) + 1
        column = position - (sql.rfind("\n", 0, position) + 1) + 1
        message += f" (line {line}, column {column})"
    return message
