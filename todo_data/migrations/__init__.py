"""Alembic migrations, run from code or a notebook over any source, checked and made safe.

The verbs are thin: each builds an Alembic config, hands a connection to
``alembic/env.py`` through ``config.attributes["connection"]`` (no second connection,
no second event loop) and runs the Alembic command inside ``run_sync``. Sync code calls
them through :func:`todo_data.run`.

- :func:`upgrade`, :func:`downgrade`, :func:`current`, :func:`head`, :func:`history`
- :func:`drift`: what ``alembic check`` sees, plus the CHECK constraints and triggers it ignores
- :func:`verify_roundtrip`: every revision up, down and up again on a scratch database, with rows
- :func:`lint`: the PostgreSQL lock and rewrite hazards of each revision, read from its SQL
- :func:`lint_sql`: the same rules over any SQL script, as psql runs it; both, given a
  database, say how big each finding's table is and how long its lock would last
- :func:`trace`: the locks and rewrites each statement really causes, on a scratch database

The machinery is private, beside the verbs: ``_config`` (script location, Alembic
configs, env.py's options), ``_locks`` (running with lock timeouts and retries),
``_drift``, ``_lint`` (with ``_lint_rules``, ``_lint_config``, ``_lint_report``, and
``_lint_live`` over ``_lint_replay`` for the estimates), ``_trace``, ``_roundtrip``,
``_scratch`` (scratch databases) and ``_snapshot`` (schema and data fingerprints).

On PostgreSQL, ``upgrade`` and ``downgrade`` wait at most ``lock_timeout`` for each lock
(so a migration queued behind a long transaction cannot block every query queued behind
it) and retry a few times before giving up with a :class:`MigrationError` that names the
session holding the lock.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy.engine import URL

from alembic import command
from todo_data._args import StepProgress, integer
from todo_data.database import Source, connect, direct_url, operation
from todo_data.errors import InvalidArgumentError, MigrationError, SettingsError
from todo_data.migrations._config import VERSION_TABLE as VERSION_TABLE
from todo_data.migrations._config import alembic_config as alembic_config
from todo_data.migrations._config import environment_options as environment_options
from todo_data.migrations._config import offline_config as offline_config
from todo_data.migrations._config import revision_of
from todo_data.migrations._config import script_directory as script_directory
from todo_data.migrations._config import script_location as script_location
from todo_data.migrations._drift import DRIFT_COLUMNS as DRIFT_COLUMNS
from todo_data.migrations._drift import drift_rows
from todo_data.migrations._lint import DEFAULT_POSTGRES_VERSION as DEFAULT_POSTGRES_VERSION
from todo_data.migrations._lint import LINT_COLUMNS as LINT_COLUMNS
from todo_data.migrations._lint import frame as lint_frame
from todo_data.migrations._lint import lint_revisions, lint_script, require_version, revision_scripts
from todo_data.migrations._lint_config import find_config
from todo_data.migrations._lint_live import DEFAULT_SCRATCH_ROWS as DEFAULT_SCRATCH_ROWS
from todo_data.migrations._lint_live import LIVE_COLUMNS as LIVE_COLUMNS
from todo_data.migrations._lint_live import annotate
from todo_data.migrations._lint_report import FORMATS, render
from todo_data.migrations._lint_rules import RULES, Selection, selected
from todo_data.migrations._locks import DEFAULT_LOCK_TIMEOUT as DEFAULT_LOCK_TIMEOUT
from todo_data.migrations._locks import LOCK_RETRIES as LOCK_RETRIES
from todo_data.migrations._locks import LOCK_RETRY_DELAY as LOCK_RETRY_DELAY
from todo_data.migrations._locks import lock_timeout_ms as lock_timeout_ms
from todo_data.migrations._locks import migrate
from todo_data.migrations._roundtrip import verify
from todo_data.migrations._trace import trace as trace_revisions
from todo_data.runner import run

if TYPE_CHECKING:
    from collections.abc import Sequence

Progress = StepProgress
#: Every lint rule by name (its severity, family, message, fix and squawk id).
LINT_RULES = RULES
#: The formats of :func:`lint_report`, and ``text``.
LINT_FORMATS = FORMATS


def head() -> str:
    """The newest revision of the migration scripts."""
    revision = script_directory().get_current_head()
    assert revision is not None
    return revision


@operation("migrations.upgrade")
async def upgrade(source: Source, revision: str = "head", *, lock_timeout: float | None = None) -> str | None:
    """Upgrade the database to ``revision`` (default: the newest); returns the new revision.

    Each revision runs in its own transaction. On PostgreSQL each lock is waited for at
    most ``lock_timeout`` seconds (default: ``DATABASE_LOCK_TIMEOUT``, else 5; ``0``
    waits as long as it takes, as in PostgreSQL); a revision that times out is rolled
    back and tried again :data:`LOCK_RETRIES` times with growing pauses, then
    :class:`MigrationError` says which session holds the lock. On a pooled endpoint
    (PgBouncer transaction mode, Neon ``-pooler`` hosts) the migration runs on the
    direct endpoint instead (see :func:`todo_data.database.direct_url`).

    >>> await upgrade(engine)      # doctest: +SKIP
    '0002'
    """
    await migrate(source, revision, lambda config: command.upgrade(config, revision), lock_timeout)
    return await current(source)


@operation("migrations.downgrade")
async def downgrade(source: Source, revision: str, *, lock_timeout: float | None = None) -> str | None:
    """Downgrade the database to ``revision`` (``"base"`` removes every table).

    ``lock_timeout`` and the retries work as in :func:`upgrade`.
    """
    await migrate(source, revision, lambda config: command.downgrade(config, revision), lock_timeout)
    return await current(source)


@operation("migrations.current")
async def current(source: Source) -> str | None:
    """The database's current revision, or ``None`` when it was never migrated."""
    async with connect(source) as conn:
        return await conn.run_sync(revision_of)


def history() -> pd.DataFrame:
    """The migration scripts from the first to the newest: revision, down_revision, message, is_head.

    Reads the scripts only (no database), so it is a plain function.
    """
    script = script_directory()
    heads = set(script.get_heads())
    rows = [
        {
            "revision": rev.revision,
            "down_revision": _revision_text(rev.down_revision),
            "message": (rev.doc or "").strip(),
            "is_head": rev.revision in heads,
        }
        for rev in reversed(list(script.walk_revisions()))
    ]
    return pd.DataFrame(rows, columns=["revision", "down_revision", "message", "is_head"])


@operation("migrations.drift")
async def drift(source: Source) -> pd.DataFrame:
    """Differences between the model and the live schema; empty when they agree.

    One row per difference: operation (what a migration would have to do, in Alembic's
    words, e.g. ``add_index``: in the model, missing from the database), table, name and
    a readable detail. It is what ``alembic check`` compares (tables, columns, types,
    nullability, indexes, unique and foreign keys) plus what Alembic's autogenerate
    ignores: the named CHECK constraints (``add_check``, ``remove_check``,
    ``modify_check``) and the triggers declared in :mod:`todo_data.triggers`
    (``add_trigger``, ``remove_trigger``, ``modify_trigger``: another definition, another
    function body, or disabled).

    >>> await drift(engine)     # doctest: +SKIP
    Empty DataFrame
    """
    async with connect(source) as conn:
        rows = await conn.run_sync(drift_rows)
    return pd.DataFrame(rows, columns=list(DRIFT_COLUMNS))


async def verify_roundtrip(
    url: str | URL,
    *,
    rows: int = 1_000,
    script_location: str | Path | None = None,
    progress: Progress | None = None,
) -> pd.DataFrame:
    """Every revision upgraded, downgraded and upgraded again, with rows, on a scratch database.

    The scratch database is created next to the one ``url`` names (PostgreSQL: ``CREATE
    DATABASE`` as the URL's own role, which needs CREATEDB; SQLite: a temporary file) and
    dropped afterwards, even on failure. The URL's own database is never migrated or
    written. For each revision, oldest first: upgrade, downgrade, upgrade again. As soon
    as the tasks table exists, ``rows`` sample rows are seeded (:func:`todo_data.sample.seed`),
    so every later step carries data. A downgrade must leave the schema exactly as it
    was before its upgrade (columns, keys, indexes, CHECKs, triggers, functions) and the
    data unchanged (every row, compared by checksum); the second upgrade must rebuild
    the first one's schema and data; at head the schema must match the model (no
    :func:`drift`). ``script_location`` runs another Alembic script directory instead
    (the model comparison is then skipped).

    One row per step: step, revision (after the step), ok and detail. A step that fails
    is reported in its row and the remaining steps are skipped. ``progress``, when
    given, is called with each step's name before it runs.

    >>> await verify_roundtrip(os.environ["DATABASE_URL"], rows=10_000)   # doctest: +SKIP
    """
    _require_count("rows", rows)
    script = script_directory(script_location)
    return await verify(_direct_url(url), rows=rows, script=script, location=script_location, progress=progress)


def lint(
    *,
    script_location: str | Path | None = None,
    rules: Selection = None,
    postgres_version: int | str | None = None,
    database_url: str | URL | None = None,
    scratch_url: str | URL | None = None,
    scratch_rows: int = DEFAULT_SCRATCH_ROWS,
) -> pd.DataFrame:
    """The PostgreSQL lock and rewrite hazards of each revision, from its offline SQL.

    Each revision's ``alembic upgrade --sql`` (PostgreSQL dialect, one revision at a
    time, oldest first) is parsed with PostgreSQL's own parser (libpg_query, through
    pglast) and judged statement by statement with the rules of :data:`LINT_RULES`
    (the README lists them). Statements on a table created by the same revision are
    exempt from the lock rules; what earlier revisions built is remembered, so changing
    ``varchar(100)`` to ``text`` is known to be binary-compatible, and a ``CHECK (col IS
    NOT NULL)`` validated in one revision makes a later ``SET NOT NULL`` safe (PostgreSQL
    12+). The timeout rules do not apply: :func:`upgrade` sets ``lock_timeout`` itself.

    ``rules``: None for the default set (or ``select``/``ignore`` of
    ``[tool.todo-data.lint]`` in the nearest ``pyproject.toml``), ``"all"`` for every
    rule (the style rules too), or a list of names (ours or squawk's ids); an unknown
    name is an :class:`InvalidArgumentError`. ``postgres_version`` (default: the
    configuration's ``postgres-version``, else 14) decides the rules that depend on it.
    A line ``# todo-data: ignore RULE[, RULE] -- reason`` above (or at the end of) the
    ``op`` call that writes a statement suppresses those rules there; ``# todo-data:
    ignore-file RULE`` the whole revision.

    Columns (:data:`LINT_COLUMNS`): revision, file (the revision's script), line and
    column (of the ``op`` call in it), table, statement, rule, severity (``error`` or
    ``warning``), message (what it locks or breaks), fix (the safe way, one line) and
    squawk (squawk's id for the same hazard, or None). Empty when every revision is safe.
    Without ``database_url`` it reads scripts only.

    With ``database_url`` (only read, never migrated: a read-only role or a read replica
    will do), each finding on a table that exists there gains :data:`LIVE_COLUMNS`: rows
    and bytes (the live table's, from its catalog), lock (the strongest lock the
    statement took, PostgreSQL's name), rewritten, estimate (how long the statement
    would hold it on the live table) and impact, the sentence (``ACCESS EXCLUSIVE on
    tasks, about 1.2M rows / 310 MB: roughly 9 s``). The estimate is measured, as
    :func:`trace` measures: the revisions run on a scratch database beside
    ``scratch_url`` (default: ``database_url``'s server; its role needs CREATEDB) with
    ``scratch_rows`` sample tasks, each statement is timed, and one that read or
    rewrote the table is scaled by the live table's size over the scratch table's; one
    that only changes the catalog takes the same time at any size (its danger is the
    queue behind its lock). Statements that could act beyond the scratch database
    (roles, databases, DO blocks …) are not run; their impact says so. When no scratch
    database can be made, rows and bytes are still given and the impact says why there
    is no estimate. On SQLite the impact says that the estimate applies to PostgreSQL.
    A plain function either way (the database part runs through :func:`todo_data.run`).

    >>> migrations.lint()           # doctest: +SKIP
    Empty DataFrame
    >>> migrations.lint(database_url=os.environ["DATABASE_URL"])["impact"]   # doctest: +SKIP
    """
    enabled, version = _lint_options(rules, postgres_version)
    script = script_directory(script_location)
    rows, _ = lint_revisions(script, location=script_location, enabled=enabled, postgres_version=version)
    findings = lint_frame(rows)
    if database_url is None:
        return findings
    scripts: list[tuple[str | None, str]] = list(revision_scripts(script, location=script_location))
    return _live(
        findings, scripts, database_url, scratch_url, scratch_rows, script, revisions=True, location=script_location
    )


def lint_sql(
    sql: str,
    *,
    rules: Selection = None,
    postgres_version: int | str | None = None,
    file: str | Path | None = None,
    database_url: str | URL | None = None,
    scratch_url: str | URL | None = None,
    scratch_rows: int = DEFAULT_SCRATCH_ROWS,
) -> pd.DataFrame:
    """The PostgreSQL lock and safety hazards of a SQL script, judged as psql runs it.

    Every statement runs on its own (autocommit) unless a ``BEGIN`` opens a transaction,
    as in ``psql -f``. ``rules`` and ``postgres_version`` work as in :func:`lint`; here
    the timeout rules apply too (``SET lock_timeout`` and ``statement_timeout`` before
    the first statement that takes a lock). Suppressions, written in the script:
    ``-- todo-data: ignore RULE[, RULE] -- reason`` on (or just above) a statement, the
    reason required; ``-- todo-data: ignore-file RULE`` for the whole script;
    ``-- squawk-ignore RULE`` and ``-- squawk-ignore-file RULE`` with squawk's ids. An
    unused suppression is a warning (``unused_suppression``); one that names an unknown
    rule or gives no reason is an error (``invalid_suppression``).

    Same columns as :func:`lint`, with ``file`` (the ``file=`` given, else None) instead
    of revision, and line and column in the script. ``database_url``, ``scratch_url`` and
    ``scratch_rows`` work as in :func:`lint`; the scratch database is first upgraded to the
    live database's revision (head when it has none the scripts know), then the script
    runs on it as psql would. A plain function.

    >>> migrations.lint_sql("CREATE INDEX ix ON tasks (title);")["rule"].tolist()   # doctest: +SKIP
    ['missing_lock_timeout', 'missing_statement_timeout', 'create_index_without_concurrently']
    """
    if not isinstance(sql, str):
        raise InvalidArgumentError(f"sql must be the text of a SQL script, not {type(sql).__name__}")
    enabled, version = _lint_options(rules, postgres_version)
    rows = lint_script(sql, enabled=enabled, postgres_version=version)
    where = None if file is None else str(file)
    findings = lint_frame([{"revision": None, "file": where, **row} for row in rows])
    if database_url is None:
        return findings
    return _live(findings, [(None, sql)], database_url, scratch_url, scratch_rows, script_directory(), revisions=False)


def lint_report(findings: pd.DataFrame, format: str) -> str:
    """The lint's findings for a CI system: ``"json"``, ``"github"`` or ``"sarif"``.

    ``json``: a list of findings (the frame's columns). ``github``: one workflow command
    per finding (``::error file=…,line=…,col=…::message``), which GitHub Actions shows on
    the pull request's lines. ``sarif``: a SARIF 2.1.0 log (GitHub code scanning, IDEs)
    with every rule's description, fix and squawk id. Paths are relative to the
    working directory when inside it.
    """
    return render(findings, format)


def _live(
    findings: pd.DataFrame,
    scripts: list[tuple[str | None, str]],
    database_url: str | URL,
    scratch_url: str | URL | None,
    scratch_rows: int,
    script: ScriptDirectory,
    *,
    revisions: bool,
    location: str | Path | None = None,
) -> pd.DataFrame:
    """The findings with the live database's sizes and the estimates (see :func:`lint`)."""
    integer("scratch_rows", scratch_rows, least=1)
    if scratch_url is not None:
        scratch: URL | None = _direct_url(scratch_url)
    else:
        try:
            scratch = _direct_url(database_url)
        except MigrationError:  # a keyword/value string: the impact says so
            scratch = None
    frame: pd.DataFrame = run(
        annotate(
            findings,
            scripts,
            url=database_url,
            scratch=scratch,
            scratch_given=scratch_url is not None,
            rows=scratch_rows,
            script=script,
            revisions=revisions,
            location=location,
        )
    )
    return frame


def _lint_options(rules: Selection, postgres_version: int | str | None) -> tuple[frozenset[str], int]:
    config = find_config()
    if rules is None:
        enabled = selected(config.select, ignore=config.ignore, where=f"{config.path} [tool.todo-data.lint]")
    else:
        enabled = selected(rules)
    version = postgres_version if postgres_version is not None else config.postgres_version
    return enabled, DEFAULT_POSTGRES_VERSION if version is None else require_version(version)


async def trace(
    url: str | URL,
    revision: str = "head",
    *,
    rows: int = 10_000,
    script_location: str | Path | None = None,
) -> pd.DataFrame:
    """The locks and table rewrites each migration statement causes, measured on a scratch database.

    A new database is created beside ``url``'s (as :func:`verify_roundtrip` does, never
    ``url``'s own), every revision from the first up to ``revision`` runs there one
    statement at a time, with ``rows`` sample rows seeded as soon as the tasks table
    exists. One row per statement and relation it locked or rewrote: revision,
    statement, relation, locks (the modes the statement newly took, PostgreSQL's names
    from ``pg_locks``, strongest first: ``AccessExclusiveLock`` blocks even reads until
    the revision commits), rewritten (its ``relfilenode`` changed: the whole table or
    index was copied) and duration. A statement that took no lock on an existing
    relation has one row with no relation. Relations the statement itself created are
    left out (nobody else can see them yet); statements run outside a transaction
    (Alembic's ``autocommit_block``, e.g. ``CREATE INDEX CONCURRENTLY``) release their
    locks when they end, so none outlast them.

    On SQLite, which has no per-table lock modes, the frame has one row saying that the
    trace applies to PostgreSQL.

    >>> await trace(os.environ["DATABASE_URL"])       # doctest: +SKIP
    """
    _require_count("rows", rows)
    script = script_directory(script_location)
    _resolve(script, revision)
    frame: pd.DataFrame = await trace_revisions(
        _direct_url(url), revision, rows=rows, script=script, location=script_location
    )
    return frame


def _direct_url(url: str | URL) -> URL:
    try:
        direct = direct_url(url)
    except SettingsError as exc:
        raise MigrationError(str(exc)) from None
    if isinstance(direct, str):
        # The scratch database is named by replacing the URL's database, which a
        # keyword/value string has no URL form of that keeps every setting (sslrootcert …).
        raise MigrationError(
            "The scratch database for the round trip and the trace is made beside a URI "
            "(postgresql://user@host/db?…): give the connection as a URI, not a keyword/value string."
        )
    return direct


def _resolve(script: ScriptDirectory, revision: str) -> None:
    """Refuse an unknown revision before anything is created."""
    try:
        found = script.get_revisions(revision)
    except CommandError as exc:
        raise MigrationError(f"Unknown revision {revision!r} in {script.dir}: {exc}") from None
    if not found and revision not in {"base", "heads", "head"}:
        raise MigrationError(f"Unknown revision {revision!r} in {script.dir}")


def _require_count(name: str, value: object) -> None:
    integer(name, value, least=0)


def _revision_text(revision: str | Sequence[str] | None) -> str | None:
    if revision is None or isinstance(revision, str):
        return revision
    return ", ".join(revision)
