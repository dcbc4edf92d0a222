"""The data rules of the tasks table: one table, every layer derived from it.

Each :class:`Rule` in :data:`RULES` states one rule of one column, once:

- ``accepts``: its Python check, run by the model's validators (:mod:`todo_data.models`);
- ``check`` / ``not_null`` / ``primary_key``: how the database enforces it, if it does
  (the model's CHECK constraints and NOT NULLs are built from these);
- ``probes``: the invalid values :func:`todo_data.checks.probe` writes to show the
  database refuses them;
- ``violated``: the SQL predicate, per dialect, by which :func:`todo_data.checks.violations`
  finds stored rows that break the rule (rows older than a constraint, or written by
  another client while one was missing).

:mod:`todo_data.checks` reads :data:`RULES` when it runs, so a rule added here is probed
and looked for with no other edit. The migrations do not read this module: a revision
is history and states its own literals; :func:`todo_data.migrations.drift` shows where
today's rules and the database differ.

**Blank** has one meaning: empty after Python's ``str.strip()``. :data:`WHITESPACE` is
exactly the set of characters it removes, so SQL strips alike (:func:`strip_sql`). A CHECK
may be looser than Python (SQL's ``trim()`` removes only spaces), never stricter.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

from sqlalchemy import (
    CheckConstraint,
    ColumnElement,
    Text,
    and_,
    cast,
    func,
    literal,
    literal_column,
    not_,
    or_,
    select,
    text,
)
from sqlalchemy import column as sql_column
from sqlalchemy import table as sql_table
from sqlalchemy.sql.elements import conv

from todo_data.errors import SchemaNotReadyError, hint

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

TABLE_NAME: Final = "tasks"

MAX_USER_ID_LENGTH: Final = 255
MAX_TITLE_LENGTH: Final = 200
MAX_DESCRIPTION_LENGTH: Final = 1000

#: One SQLAlchemy naming convention for the model's metadata and the migrations.
NAMING_CONVENTION: Final[dict[str, str]] = {
    "ix": "ix_%(table_name)s_%(column_0_name)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

#: Every character Python's ``str.strip()`` removes (``str.isspace``), for SQL's trim.
WHITESPACE: Final = (
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680"
    "\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u2028\u2029\u202f\u205f\u3000"
)

#: Columns stored without surrounding whitespace: the model strips them (``str.strip``)
#: before their rules apply, and :func:`todo_data.checks.violations` strips a stored
#: value the same way before judging it.
STRIPPED: Final = frozenset({"title"})


class TaskStatus(enum.StrEnum):
    """The statuses the code knows, in their natural order.

    Stored as plain text without a membership CHECK: adding a member needs no migration,
    and :func:`todo_data.checks.violations` reports stored values that are not members.
    """

    PENDING = "pending"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"


def constraint_name(kind: str, *, table: str = TABLE_NAME, name: str = "", column: str = "") -> str:
    """The full name the naming convention gives a constraint or index.

    >>> constraint_name("ck", name="title_not_empty")
    'ck_tasks_title_not_empty'
    >>> constraint_name("ix", column="status")
    'ix_tasks_status'
    """
    return NAMING_CONVENTION[kind] % {
        "table_name": table,
        "constraint_name": name,
        "column_0_name": column,
    }


PRIMARY_KEY_NAME: Final = constraint_name("pk")


def is_blank(value: str) -> bool:
    """The one definition of blank: nothing left after ``str.strip()``.

    >>> is_blank(" \\t\\u3000"), is_blank("\\x1e"), is_blank(" a ")
    (True, True, False)
    """
    return not value.strip()


def strip_sql(value: ColumnElement[Any], dialect: str) -> ColumnElement[Any]:
    """``value`` with :data:`WHITESPACE` removed from both ends, in ``dialect``'s SQL."""
    trim = func.btrim if dialect == "postgresql" else func.trim
    return trim(value, literal(WHITESPACE, Text))


@dataclass(frozen=True)
class Check:
    """A named CHECK constraint of the tasks table, as the model declares it today."""

    short_name: str
    column: str
    sql: str

    @property
    def name(self) -> str:
        """The full name, e.g. ``ck_tasks_title_not_empty``."""
        return constraint_name("ck", name=self.short_name)

    def constraint(self) -> CheckConstraint:
        """A fresh SQLAlchemy constraint (a constraint object belongs to one table)."""
        return CheckConstraint(self.sql, name=conv(self.name))


class _ExistingValue:
    """A probe value: the column's value in another row (what a unique key refuses)."""

    def __repr__(self) -> str:
        return "EXISTING_VALUE"


#: Probe value standing for "the value an existing row already has in this column".
EXISTING_VALUE: Final = _ExistingValue()

#: ``violated(value, dialect)``: the SQL condition true for a stored ``value`` that breaks
#: the rule (``value`` is the column, stripped for :data:`STRIPPED` columns), or ``None``
#: when ``dialect`` cannot hold such a value at all.
Violated = Callable[[ColumnElement[Any], str], ColumnElement[bool] | None]


@dataclass(frozen=True)
class Rule:
    """One data rule of one column, in every layer (see the module's docstring).

    ``accepts`` is called with a non-null value as the model holds it (parsed, and
    stripped for :data:`STRIPPED` columns); ``None`` means the Python layer cannot produce
    a value that breaks the rule (e.g. how SQLite stores a timestamp: the column type
    writes it). ``kind`` is the rule's name: the ``type`` of the pydantic error it raises.
    """

    column: str
    kind: str
    message: str
    accepts: Callable[[Any], bool] | None
    violated: Violated
    check: Check | None = None
    not_null: bool = False
    primary_key: bool = False
    probes: tuple[Any, ...] = ()
    #: What the rule adds to the field's JSON schema (an API's input schema).
    json_schema: Mapping[str, Any] = field(default_factory=dict)

    @property
    def enforced_by(self) -> str | None:
        """What makes the database refuse a breaking write, as :func:`~todo_data.checks.probe` names it."""
        if self.check is not None:
            return self.check.name
        if self.not_null:
            return f"{self.column} NOT NULL"
        if self.primary_key:
            return PRIMARY_KEY_NAME
        return None


# ------------------------------------------------------------------ the kinds of rule


def _everywhere(predicate: Callable[[ColumnElement[Any]], ColumnElement[bool]]) -> Violated:
    return lambda value, _dialect: predicate(value)


def _only_on(dialect: str, predicate: Callable[[ColumnElement[Any]], ColumnElement[bool]]) -> Violated:
    return lambda value, current: predicate(value) if current == dialect else None


def _nowhere(_value: ColumnElement[Any], _dialect: str) -> None:
    return None


def _required(column: str) -> Rule:
    return Rule(
        column,
        "required",
        "is required",
        accepts=lambda value: value is not None,
        violated=_everywhere(lambda value: value.is_(None)),
        not_null=True,
        probes=(None,),
    )


def _not_blank(column: str, *, constraint: str) -> Rule:
    return Rule(
        column,
        "not_blank",
        "must not be blank",
        accepts=lambda value: not is_blank(value),
        violated=lambda value, dialect: func.length(strip_sql(value, dialect)) == 0,
        check=Check(constraint, column, f"length(trim({column})) > 0"),
        probes=("", "   "),
        json_schema={"minLength": 1},
    )


def _max_length(column: str, limit: int, *, constraint: str) -> Rule:
    return Rule(
        column,
        "max_length",
        f"must be at most {limit} characters",
        accepts=lambda value: len(value) <= limit,
        violated=_everywhere(lambda value: func.length(value) > limit),
        check=Check(constraint, column, f"length({column}) <= {limit}"),
        probes=(column[0] * (limit + 1),),
        json_schema={"maxLength": limit},
    )


def _no_nul(column: str) -> Rule:
    # PostgreSQL's text cannot hold NUL; SQLite can, so a row written there may carry one.
    return Rule(
        column,
        "no_nul",
        "must not contain NUL characters (\\x00), which PostgreSQL cannot store",
        accepts=lambda value: "\x00" not in value,
        violated=_only_on("sqlite", lambda value: func.instr(value, "\x00") > 0),
    )


def _encodes(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _valid_unicode(column: str) -> Rule:
    # Neither driver can write a lone surrogate (both encode UTF-8), so no stored row holds one.
    return Rule(
        column,
        "valid_unicode",
        "must not contain lone surrogate characters (not valid Unicode text)",
        accepts=_encodes,
        violated=_nowhere,
    )


def _text(column: str, limit: int, *, required: bool, not_blank: bool) -> tuple[Rule, ...]:
    # Cheap checks first: a ten-megabyte value fails on its length before any scan.
    return (
        *((_required(column),) if required else ()),
        *((_not_blank(column, constraint=f"{column}_not_empty"),) if not_blank else ()),
        _max_length(column, limit, constraint=f"{column}_max_length"),
        _no_nul(column),
        _valid_unicode(column),
    )


def _unique_key(column: str) -> Rule:
    def duplicated(value: ColumnElement[Any], _dialect: str) -> ColumnElement[bool]:
        other = sql_table(TABLE_NAME, sql_column(column)).alias("other")
        return value.in_(select(other.c[column]).group_by(other.c[column]).having(func.count() > 1))

    return Rule(
        column,
        "unique",
        "must be unique",
        accepts=None,  # a fresh uuid4 each time; only the database sees the other rows
        violated=duplicated,
        primary_key=True,
        probes=(EXISTING_VALUE,),
    )


def _sqlite_uuid(column: str) -> Rule:
    # SQLAlchemy stores a UUID on SQLite as 32 lowercase hex digits and looks rows up by
    # that text: an id written in another form (dashes, capitals) is never found by id.
    return Rule(
        column,
        "uuid_text",
        "must be stored as 32 lowercase hex digits (SQLite's form of a UUID)",
        accepts=None,
        violated=_only_on(
            "sqlite",
            lambda value: and_(
                value.is_not(None),
                not_(and_(func.length(value) == 32, value.op("NOT GLOB")("*[^0-9a-f]*"))),
            ),
        ),
    )


def _known_status(column: str) -> Rule:
    known = tuple(status.value for status in TaskStatus)
    return Rule(
        column,
        "known_status",
        f"must be a TaskStatus ({', '.join(known)})",
        accepts=lambda value: value in known,
        violated=_everywhere(lambda value: value.not_in(known)),
    )


def _timezone_aware(column: str) -> Rule:
    # Per row, so no catalog query: a PostgreSQL column altered to ``timestamp without
    # time zone`` stores naive values. SQLite stores naive UTC text by design (see below).
    return Rule(
        column,
        "timezone_aware",
        "must be timezone-aware",
        accepts=lambda value: value.utcoffset() is not None,
        violated=_only_on(
            "postgresql",
            lambda value: and_(value.is_not(None), cast(func.pg_typeof(value), Text) == "timestamp without time zone"),
        ),
    )


def _instant(column: str) -> Rule:
    # PostgreSQL stores 'infinity' and '-infinity'; SQLite stores any text, readable or not.
    def unreadable(value: ColumnElement[Any], dialect: str) -> ColumnElement[bool]:
        if dialect == "postgresql":
            return not_(func.isfinite(value))
        return and_(value.is_not(None), not_(_sqlite_utc_text(value)), func.datetime(value).is_(None))

    return Rule(
        column,
        "instant",
        "must be a readable, finite instant",
        accepts=None,  # every Python datetime is one
        violated=unreadable,
    )


# asyncpg writes these two instants as PostgreSQL's -infinity and infinity: they could
# not be stored unchanged, so the range excludes them.
_FIRST_INSTANT: Final = datetime.min.replace(tzinfo=UTC)
_LAST_INSTANT: Final = datetime.max.replace(tzinfo=UTC)


def _in_utc_range(value: datetime) -> bool:
    try:
        in_utc = value.astimezone(UTC)
    except OverflowError:  # datetime(1, 1, 1, tzinfo=+05:00) is in year 0 in UTC
        return False
    return _FIRST_INSTANT < in_utc < _LAST_INSTANT


def _utc_range(column: str) -> Rule:
    # PostgreSQL stores 4713 BC to 294276 AD; Python's datetime (so every reader here)
    # only years 1 to 9999.
    def outside(value: ColumnElement[Any], dialect: str) -> ColumnElement[bool]:
        if dialect == "postgresql":
            # Untyped literals take the column's type: timestamptz, or naive (read as UTC).
            first: ColumnElement[Any] = literal_column("'0001-01-01 00:00:00+00'")
            last: ColumnElement[Any] = literal_column("'9999-12-31 23:59:59.999999+00'")
            return and_(func.isfinite(value), or_(value <= first, value >= last))
        # The model's text compares as the instants do; other forms are utc_text's concern.
        return and_(
            _sqlite_utc_text(value),
            or_(value <= "0001-01-01 00:00:00.000000", value >= "9999-12-31 23:59:59.999999"),
        )

    return Rule(
        column,
        "utc_range",
        "must lie strictly between 0001-01-01 00:00:00 and 9999-12-31 23:59:59.999999 UTC",
        accepts=_in_utc_range,
        violated=outside,
    )


_DATE_TIME_GLOB: Final = "[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9] [0-9][0-9]:[0-9][0-9]:[0-9][0-9]"


def _sqlite_utc_text(value: ColumnElement[Any]) -> ColumnElement[bool]:
    """SQLite text in the form the model writes: naive UTC ``YYYY-MM-DD HH:MM:SS[.ffffff]``.

    The model's UTCDateTime writes six fraction digits, the migration's server default
    (CURRENT_TIMESTAMP) none; both read back as the same UTC instant everywhere and sort
    and compare as text. Judged without ``datetime(value)``, which rounds the fraction
    and so refuses 9999-12-31 23:59:59.999999.
    """
    seconds = func.substr(value, 1, 19)
    fraction = func.substr(value, 20)
    return and_(
        func.typeof(value) == "text",
        seconds.op("GLOB")(_DATE_TIME_GLOB),
        func.substr(value, 1, 4) != "0000",
        # SQLite reads '2025-02-31' as March 3rd: a real date survives normalisation.
        func.datetime(seconds, "+0 days") == seconds,
        or_(
            fraction == "",
            and_(
                func.length(fraction).between(2, 7),
                fraction.op("GLOB")(".[0-9]*"),
                func.substr(fraction, 2).op("NOT GLOB")("*[^0-9]*"),
            ),
        ),
    )


def _utc_text(column: str) -> Rule:
    # Another client's 'T' separator, 'Z' or offset reads as an instant but not as the
    # model's text: it sorts and compares wrongly against the rows the model wrote.
    return Rule(
        column,
        "utc_text",
        "must be stored as naive UTC text 'YYYY-MM-DD HH:MM:SS.ffffff'",
        accepts=None,  # the column type writes it
        violated=_only_on(
            "sqlite",
            lambda value: and_(value.is_not(None), not_(_sqlite_utc_text(value)), func.datetime(value).is_not(None)),
        ),
    )


def _timestamp(column: str) -> tuple[Rule, ...]:
    return (
        _required(column),
        _timezone_aware(column),
        _utc_range(column),
        _instant(column),
        _utc_text(column),
    )


#: Every data rule of the tasks table, column by column; within a column, in the order
#: the model checks them.
RULES: Final[tuple[Rule, ...]] = (
    _required("id"),
    _unique_key("id"),
    _sqlite_uuid("id"),
    *_text("user_id", MAX_USER_ID_LENGTH, required=True, not_blank=True),
    *_text("title", MAX_TITLE_LENGTH, required=True, not_blank=True),
    *_text("description", MAX_DESCRIPTION_LENGTH, required=False, not_blank=False),
    _required("status"),
    _known_status("status"),
    *_timestamp("created_at"),
    *_timestamp("updated_at"),
)

#: The CHECK constraints the rules declare (what the model's table carries).
CHECK_RULES: Final[tuple[Check, ...]] = tuple(rule.check for rule in RULES if rule.check is not None)


def rules_of(column: str, rules: tuple[Rule, ...] | None = None) -> tuple[Rule, ...]:
    """The rules of one column, in order (of :data:`RULES` unless ``rules`` is given)."""
    return tuple(rule for rule in (RULES if rules is None else rules) if rule.column == column)


def rule_of(column: str, kind: str) -> Rule:
    """The rule of ``kind`` on ``column``, e.g. ``rule_of("title", "not_blank")``."""
    for rule in rules_of(column):
        if rule.kind == kind:
            return rule
    raise KeyError(f"no rule {kind!r} on {column!r}")


def nullable(column: str) -> bool:
    """Whether the column may hold NULL: no rule of it is enforced by NOT NULL."""
    return not any(rule.not_null for rule in rules_of(column))


async def require_tasks_table(conn: AsyncConnection, *, where: str) -> str:
    """The backend's name, after checking that the tasks table exists (a cheap catalogue query).

    Checking first, rather than catching the failed query, leaves the caller's transaction
    usable. The error says ``where`` (:func:`todo_data.database.located`: host and
    database, the URL with its password masked) and what to do.
    """
    backend = conn.dialect.name
    if backend == "postgresql":
        query = text("SELECT to_regclass(:name) IS NOT NULL")
    else:
        query = text("SELECT count(*) FROM sqlite_master WHERE type IN ('table', 'view') AND name = :name")
    if not (await conn.execute(query, {"name": TABLE_NAME})).scalar():
        raise SchemaNotReadyError(
            f'The "{TABLE_NAME}" table does not exist in {where}: '
            f"run migrations first ({hint('`await todo_data.migrations.upgrade(engine)`', '`todo-data migrate`')})."
        )
    return backend
