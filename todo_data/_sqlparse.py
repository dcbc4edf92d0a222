"""PostgreSQL SQL read with PostgreSQL's own parser (libpg_query, through pglast).

A script becomes its statements, each with its exact text and parse tree; the lint and
the lock trace both read statements this way, never with regular expressions.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from pglast import ast, parse_sql
from pglast.parser import ParseError
from pglast.visitors import Visitor


@dataclass(frozen=True)
class Statement:
    """One statement of a script: its text (without the semicolon) and its parse tree."""

    sql: str
    node: Any


def statements(script: str) -> list[Statement]:
    """The statements of ``script``, in order; raises ``pglast.parser.ParseError``."""
    found = []
    for raw in parse_sql(script):
        # pglast turns libpg_query's byte offsets into character offsets; a length of 0
        # means "to the end".
        start = raw.stmt_location or 0
        end = start + raw.stmt_len if raw.stmt_len else len(script)
        found.append(Statement(script[start:end].strip(), raw.stmt))
    return found


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
