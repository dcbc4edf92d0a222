"""The lint's rules as data: each hazard's name, severity, family, what it breaks, the fix, squawk's id.

A rule is stated once here; the judge (``_lint``), the suppressions, the configuration,
the SARIF rule table and the README's list all read these records. Names are ours;
``squawk`` is the equivalent rule id of squawk (the most used PostgreSQL migration
linter), so a team moving from squawk keeps its vocabulary and its ``-- squawk-ignore``
comments.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from todo_data.errors import InvalidArgumentError


@dataclass(frozen=True)
class Rule:
    """One hazard: its name, how serious it is, what it breaks and how to do it safely."""

    name: str
    severity: str  # "error" or "warning"
    family: str
    message: str  # what the statement locks or breaks; may name {table} and {detail}
    fix: str  # the safe way, in one line
    squawk: str | None = None  # squawk's equivalent rule id
    default: bool = True  # on without being selected
    also_squawk: tuple[str, ...] = ()  # squawk ids that mean the same hazard

    @property
    def squawk_ids(self) -> tuple[str, ...]:
        """Every squawk id this rule stands for."""
        return ((self.squawk,) if self.squawk else ()) + self.also_squawk


_LOCKS_OUT = "takes an ACCESS EXCLUSIVE lock on {table}, which blocks every read and write until it commits"

_ALL: Final = (
    # -- the parser ---------------------------------------------------------------------
    Rule(
        "syntax_error",
        "error",
        "syntax",
        "PostgreSQL cannot parse it: {detail}",
        "fix the SQL: PostgreSQL refuses it as written",
        "syntax-error",
    ),
    # -- locks: CONCURRENTLY and its absence --------------------------------------------
    Rule(
        "concurrently_in_transaction",
        "error",
        "locks",
        "CONCURRENTLY cannot run inside a transaction block, so the migration fails",
        "run it outside a transaction: in a revision, inside `with op.get_context().autocommit_block():`",
        "ban-concurrent-index-creation-in-transaction",
    ),
    Rule(
        "create_index_without_concurrently",
        "error",
        "locks",
        "builds the index under a SHARE lock on {table}: every INSERT, UPDATE and DELETE waits until it is built",
        "CREATE INDEX CONCURRENTLY (op.create_index(..., postgresql_concurrently=True) in an autocommit_block)",
        "require-concurrent-index-creation",
    ),
    Rule(
        "drop_index_without_concurrently",
        "warning",
        "locks",
        "takes an ACCESS EXCLUSIVE lock on the index's table, and queues behind every running query on it",
        "DROP INDEX CONCURRENTLY, outside a transaction (an autocommit_block in a revision)",
        "require-concurrent-index-deletion",
    ),
    Rule(
        "reindex_without_concurrently",
        "error",
        "locks",
        "rebuilds under a lock that blocks every write to {table} (and reads that use the index) until it is done",
        "REINDEX ... CONCURRENTLY (PostgreSQL 12+), outside a transaction",
        "require-concurrent-reindex",
    ),
    Rule(
        "detach_partition_without_concurrently",
        "error",
        "locks",
        _LOCKS_OUT + " (the partitioned table)",
        "ALTER TABLE ... DETACH PARTITION ... CONCURRENTLY (PostgreSQL 14+), outside a transaction",
        "require-concurrent-partition-detach",
    ),
    # -- constraints ---------------------------------------------------------------------
    Rule(
        "add_constraint_without_not_valid",
        "error",
        "constraints",
        "checks every row of {table} while holding its lock (writes wait; a FOREIGN KEY also locks the table it "
        "references)",
        "ADD it NOT VALID (postgresql_not_valid=True), then VALIDATE CONSTRAINT in a later step, which lets writes "
        "through",
        "constraint-missing-not-valid",
    ),
    Rule(
        "add_unique_without_index",
        "error",
        "constraints",
        "builds a unique index while it " + _LOCKS_OUT,
        "CREATE UNIQUE INDEX CONCURRENTLY first, then ADD CONSTRAINT ... UNIQUE USING INDEX",
        "disallowed-unique-constraint",
    ),
    Rule(
        "add_primary_key_without_index",
        "error",
        "constraints",
        "builds the primary key's index (and checks NOT NULL on every row) while it " + _LOCKS_OUT,
        "CREATE UNIQUE INDEX CONCURRENTLY first, then ADD CONSTRAINT ... PRIMARY KEY USING INDEX",
        "adding-serial-primary-key-field",
    ),
    Rule(
        "add_column_references",
        "error",
        "constraints",
        "adds a FOREIGN KEY that is validated at once: every row of {table} is checked while both tables are locked",
        "add the column alone, then ADD CONSTRAINT ... FOREIGN KEY ... NOT VALID, then VALIDATE CONSTRAINT",
        "adding-foreign-key-constraint",
    ),
    Rule(
        "alter_domain_add_constraint",
        "error",
        "constraints",
        "checks every column of every table that uses the domain, under locks that block their writes",
        "use a CHECK constraint on the table (ADD ... NOT VALID, then VALIDATE) instead of one on the domain",
        "ban-alter-domain-with-add-constraint",
    ),
    Rule(
        "create_domain_with_constraint",
        "warning",
        "constraints",
        "a domain's constraint cannot be changed later without checking every table that uses it",
        "create the domain without a constraint and put the CHECK on the tables",
        "ban-create-domain-with-constraint",
    ),
    # -- columns -------------------------------------------------------------------------
    Rule(
        "alter_column_type",
        "error",
        "columns",
        _LOCKS_OUT + " and, unless the new type is binary-compatible, rewrites the table and its indexes{detail}",
        "add a new column, backfill it in batches, then switch over",
        "changing-column-type",
    ),
    Rule(
        "add_column_volatile_default",
        "error",
        "columns",
        "fills the new column row by row ({detail}): PostgreSQL rewrites {table} under an ACCESS EXCLUSIVE lock, "
        "which blocks every read and write until it commits",
        "add the column without it (or with a constant default), then backfill in batches",
        "adding-field-with-default",
    ),
    Rule(
        "add_column_not_null_without_default",
        "error",
        "columns",
        "fails as soon as {table} has a row (the new column would be NULL in it)",
        "give it a constant default, or add it nullable, backfill, then SET NOT NULL safely",
        "adding-required-field",
    ),
    Rule(
        "set_not_null",
        "warning",
        "columns",
        "scans the whole of {table} while it " + _LOCKS_OUT + "{detail}",
        "first ADD CHECK (column IS NOT NULL) NOT VALID and VALIDATE it: PostgreSQL 12+ then skips the scan",
        "adding-not-nullable-field",
    ),
    Rule(
        "drop_not_null",
        "warning",
        "columns",
        "lets NULL into a column of {table} that readers and writers may assume is never NULL",
        "deploy code that copes with NULL there first",
        "ban-drop-not-null",
    ),
    Rule(
        "drop_column",
        "warning",
        "columns",
        "breaks application code that still reads or writes the column",
        "deploy code that no longer uses it first",
        "ban-drop-column",
    ),
    Rule(
        "rename",
        "warning",
        "columns",
        "breaks every running client that still uses the old name",
        "add the new name alongside, move the code, then drop the old one",
        "renaming-column",
        also_squawk=("renaming-table",),
    ),
    # -- destructive ---------------------------------------------------------------------
    Rule(
        "drop_table",
        "warning",
        "destructive",
        "deletes the table and its data for good, and breaks code that still uses it",
        "deploy code that no longer uses it first, and keep a backup",
        "ban-drop-table",
    ),
    Rule(
        "drop_database",
        "error",
        "destructive",
        "deletes a whole database for good",
        "drop databases by hand, never in a migration",
        "ban-drop-database",
    ),
    Rule(
        "drop_schema",
        "error",
        "destructive",
        "deletes a schema and (with CASCADE) every object in it for good",
        "drop the objects one by one in reviewed steps, or the schema by hand",
        "ban-drop-schema",
    ),
    Rule(
        "truncate_cascade",
        "error",
        "destructive",
        "empties {table} and every table that references it, however far the foreign keys reach",
        "TRUNCATE the tables you mean, by name, without CASCADE",
        "ban-truncate-cascade",
    ),
    # -- transactions --------------------------------------------------------------------
    Rule(
        "uncommitted_transaction",
        "error",
        "transactions",
        "BEGIN is never committed: psql rolls the work back at the end (or holds its locks until the session ends)",
        "end the transaction with COMMIT",
        "ban-uncommitted-transaction",
    ),
    Rule(
        "nested_transaction",
        "error",
        "transactions",
        "{detail}: PostgreSQL has no nested transactions, so the first COMMIT ends them all",
        "use one BEGIN ... COMMIT, and SAVEPOINT for a part that may roll back",
        "transaction-nesting",
    ),
    # -- timeouts (SQL files: Alembic revisions get them from the runner) ----------------
    Rule(
        "missing_lock_timeout",
        "error",
        "timeouts",
        "runs without lock_timeout: queued behind a long transaction, it blocks every query queued behind it",
        "SET lock_timeout = '2s' (then retry) before the first statement that takes a lock",
        "require-lock-timeout",
        also_squawk=("require-timeout-settings",),
    ),
    Rule(
        "missing_statement_timeout",
        "warning",
        "timeouts",
        "runs without statement_timeout: a statement slower than planned holds its locks for as long as it runs",
        "SET statement_timeout = '60s' (a bound you can afford) before the first statement that takes a lock",
        "require-statement-timeout",
    ),
    # -- enums ---------------------------------------------------------------------------
    Rule(
        "enum_value_without_position",
        "warning",
        "enums",
        "appends {detail} after the last value: ORDER BY and comparisons on the enum follow that order",
        "say where it goes: ADD VALUE ... BEFORE 'x' or AFTER 'x'",
        "require-enum-value-ordering",
    ),
    Rule(
        "enum_value_in_transaction",
        "error",
        "enums",
        "{detail}",
        "add the value outside a transaction (an autocommit_block in a revision), and use it only after",
    ),
    # -- rewrites ------------------------------------------------------------------------
    Rule(
        "vacuum_full",
        "error",
        "rewrites",
        "rewrites {table} under an ACCESS EXCLUSIVE lock: every read and write waits until the copy is done",
        "plain VACUUM (or pg_repack / pg_squeeze, which rewrite online)",
    ),
    Rule(
        "cluster",
        "error",
        "rewrites",
        "rewrites {table} in index order under an ACCESS EXCLUSIVE lock: every read and write waits until it is done",
        "pg_repack --order-by, which rewrites online",
    ),
    # -- types and names -----------------------------------------------------------------
    Rule(
        "json_column",
        "warning",
        "types",
        "json stores the text as given (no index, no equality, re-parsed on every read)",
        "use jsonb",
    ),
    Rule(
        "identifier_too_long",
        "error",
        "types",
        "{detail} is longer than 63 bytes: PostgreSQL silently cuts it, so two long names can collide",
        "choose a name of at most 63 bytes",
        "identifier-too-long",
    ),
    # -- style (off unless selected) -----------------------------------------------------
    Rule(
        "prefer_bigint",
        "warning",
        "style",
        "{detail} runs out at about 2 billion (smallint: 32,767), and widening it later rewrites the table",
        "use bigint",
        "prefer-bigint-over-int",
        default=False,
        also_squawk=("prefer-bigint-over-smallint",),
    ),
    Rule(
        "prefer_identity",
        "warning",
        "style",
        "{detail} makes a sequence the table does not own by the SQL standard's rules (permissions, copies, dumps)",
        "use bigint GENERATED ALWAYS AS IDENTITY",
        "prefer-identity",
        default=False,
    ),
    Rule(
        "prefer_text",
        "warning",
        "style",
        "{detail}: changing the limit later takes an ACCESS EXCLUSIVE lock (and lowering it rewrites the table)",
        "use text with a CHECK (length(column) <= n) constraint, which can be replaced NOT VALID",
        "prefer-text-field",
        default=False,
    ),
    Rule(
        "prefer_timestamptz",
        "warning",
        "style",
        "timestamp without time zone stores wall-clock time: its meaning depends on the writer's time zone",
        "use timestamptz",
        "prefer-timestamp-tz",
        default=False,
    ),
    Rule(
        "no_char",
        "warning",
        "style",
        "char(n) pads with spaces, which comparisons and lengths then ignore or count surprisingly",
        "use text (with a CHECK on its length if one is needed)",
        "ban-char-field",
        default=False,
    ),
    # -- suppressions --------------------------------------------------------------------
    Rule(
        "unused_suppression",
        "warning",
        "suppressions",
        "suppresses {detail}, which finds nothing here",
        "remove the suppression",
    ),
    Rule(
        "invalid_suppression",
        "error",
        "suppressions",
        "{detail}",
        "write `-- todo-data: ignore RULE[, RULE] -- reason` with known rule names and a reason",
    ),
)

#: Every rule by name, in the order of the table above.
RULES: Final[dict[str, Rule]] = {rule.name: rule for rule in _ALL}
#: What a squawk rule id stands for in our names (for ``-- squawk-ignore``).
SQUAWK_NAMES: Final[dict[str, tuple[str, ...]]] = {
    squawk: tuple(rule.name for rule in _ALL if squawk in rule.squawk_ids)
    for squawk in {squawk for rule in _ALL for squawk in rule.squawk_ids}
}
#: Rules that are always on: they judge the lint's own input.
ALWAYS: Final = frozenset({"syntax_error", "unused_suppression", "invalid_suppression"})
#: The rules on when nothing is selected.
DEFAULT: Final = frozenset(rule.name for rule in _ALL if rule.default)

Selection = str | Iterable[str] | None


def selected(rules: Selection, *, ignore: Iterable[str] = (), where: str = "rules") -> frozenset[str]:
    """The rule names ``rules`` turns on (None: the default set; "all": every rule; else those named).

    Names may be ours or squawk's ids. An unknown name is an :class:`InvalidArgumentError`
    saying which names exist. The suppression rules and ``syntax_error`` are always on.
    """
    if rules is None:
        chosen = set(DEFAULT)
    elif isinstance(rules, str):
        chosen = set(RULES) if rules == "all" else set(resolve([rules], where=where))
    else:
        chosen = set(resolve(rules, where=where))
    chosen -= set(resolve(ignore, where=where))
    return frozenset(chosen | ALWAYS)


def resolve(names: Iterable[str], *, where: str) -> list[str]:
    """Our rule names for ``names`` (ours or squawk's); raises on an unknown one."""
    found: list[str] = []
    for name in names:
        if not isinstance(name, str):
            raise InvalidArgumentError(f"{where} must be rule names (text), not {name!r}")
        key = name.strip()
        if key in RULES:
            found.append(key)
        elif key in SQUAWK_NAMES:
            found += SQUAWK_NAMES[key]
        else:
            raise InvalidArgumentError(
                f"{where}: unknown lint rule {name!r}. Known rules: {', '.join(RULES)} (or 'all', or squawk's ids)"
            )
    return found
