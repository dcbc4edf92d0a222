"""Alembic migrations, run from code or a notebook over any source, and checked.

The verbs are thin: each builds an Alembic config, hands the caller's connection to
``alembic/env.py`` through ``config.attributes["connection"]`` (no second connection,
no second event loop) and runs the Alembic command inside ``run_sync``. Sync code calls
them through :func:`todo_data.run`.

- :func:`upgrade`, :func:`downgrade`, :func:`current`, :func:`head`, :func:`history`
- :func:`drift`: what ``alembic check`` sees, plus the CHECK constraints it ignores
- :func:`verify_roundtrip`: upgrade → downgrade → upgrade on a scratch database
"""

from __future__ import annotations

import re
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Final

import pandas as pd
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import CheckConstraint, Table, inspect, text
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import NullPool

import todo_data
from alembic import command
from todo_data.database import Source, begin, connect, create_engine, direct_url, engine_of, target_of
from todo_data.errors import MigrationError, SettingsError, driver_message
from todo_data.models import metadata
from todo_data.replication import require_primary
from todo_data.urls import parse_database_url, scrub

#: The columns of :func:`drift`'s frame.
DRIFT_COLUMNS: Final = ("operation", "table", "name", "detail")
#: The columns of :func:`verify_roundtrip`'s frame.
ROUNDTRIP_COLUMNS: Final = ("step", "revision", "ok", "detail")
#: Alembic's bookkeeping table: part of every migrated schema, never of the model.
VERSION_TABLE: Final = "alembic_version"

Progress = Callable[[str], object]


def script_location() -> Path:
    """The migration scripts: shipped inside the wheel, or ``alembic/`` in a checkout."""
    package = Path(todo_data.__file__).resolve().parent
    for candidate in (package / "_alembic", package.parent / "alembic"):
        if (candidate / "env.py").is_file():
            return candidate
    raise MigrationError(f"Migration scripts not found next to {package}")  # pragma: no cover


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic config for the project's migrations, optionally bound to a connection."""
    config = Config()
    config.set_main_option("script_location", str(script_location()))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def environment_options(dialect_name: str) -> dict[str, Any]:
    """The options ``alembic/env.py`` configures Alembic with; :func:`drift` compares with them too."""
    return {
        "target_metadata": metadata,
        "compare_type": True,
        # SQLite cannot ALTER constraints: batch mode rebuilds the table instead.
        "render_as_batch": dialect_name == "sqlite",
    }


def script_directory() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config())


def head() -> str:
    """The newest revision of the migration scripts."""
    revision = script_directory().get_current_head()
    assert revision is not None
    return revision


async def upgrade(source: Source, revision: str = "head") -> str | None:
    """Upgrade the database to ``revision`` (default: the newest); returns the new revision.

    On a pooled endpoint (PgBouncer transaction mode, Neon ``-pooler`` hosts) the
    migration runs on the direct endpoint instead (see :func:`todo_data.database.direct_url`).

    >>> await upgrade(engine)      # doctest: +SKIP
    '0001'
    """
    await _run_command(source, revision, lambda config: command.upgrade(config, revision))
    return await current(source)


async def downgrade(source: Source, revision: str) -> str | None:
    """Downgrade the database to ``revision`` (``"base"`` removes every table)."""
    await _run_command(source, revision, lambda config: command.downgrade(config, revision))
    return await current(source)


async def current(source: Source) -> str | None:
    """The database's current revision, or ``None`` when it was never migrated."""
    async with connect(source) as conn:
        return await conn.run_sync(lambda sync: MigrationContext.configure(sync).get_current_revision())


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


async def drift(source: Source) -> pd.DataFrame:
    """Differences between the model and the live schema; empty when they agree.

    One row per difference: operation (what a migration would have to do, in Alembic's
    words, e.g. ``add_index``: in the model, missing from the database), table, name and
    a readable detail. It is what ``alembic check`` compares (tables, columns, types,
    nullability, indexes, unique and foreign keys) plus the named CHECK constraints,
    which Alembic's autogenerate ignores (``add_check``, ``remove_check``, ``modify_check``).

    >>> await drift(engine)     # doctest: +SKIP
    Empty DataFrame
    """
    async with connect(source) as conn:
        rows = await conn.run_sync(_drift_rows)
    return pd.DataFrame(rows, columns=list(DRIFT_COLUMNS))


async def verify_roundtrip(url: str | URL, *, progress: Progress | None = None) -> pd.DataFrame:
    """Upgrade to head, downgrade to base, upgrade to head again on a scratch database.

    The scratch database is created next to the one ``url`` names (PostgreSQL: ``CREATE
    DATABASE`` as the URL's own role, which needs CREATEDB; SQLite: a temporary file) and
    dropped afterwards, even on failure. The URL's own database is never migrated or
    written. One row per step: step, revision (after the step), ok and detail. After each
    upgrade the schema must match the model (no :func:`drift`), after the downgrade no
    table may be left, and the second upgrade must rebuild the first one's schema
    exactly. A step that fails is reported in its row and the remaining steps are skipped.
    ``progress``, when given, is called with each step's name before it runs.

    >>> await verify_roundtrip(os.environ["DATABASE_URL"])   # doctest: +SKIP
    """
    steps: list[dict[str, Any]] = []
    try:
        url = direct_url(url)
    except SettingsError as exc:
        raise MigrationError(str(exc)) from None
    async with _scratch_database(url) as scratch:
        engine = create_engine(scratch, poolclass=NullPool)
        try:
            await _roundtrip(engine, steps, progress)
        finally:
            await engine.dispose()
    return pd.DataFrame(steps, columns=list(ROUNDTRIP_COLUMNS))


@asynccontextmanager
async def _direct(source: Source) -> AsyncIterator[Source]:
    """The source itself, or an engine on its direct endpoint when it is a pooled one."""
    target = target_of(source)
    if not target.pooled:
        yield source
        return
    try:
        url = direct_url(engine_of(source).url, pooled=True)
    except SettingsError as exc:
        raise MigrationError(str(exc)) from None
    read_only = bool(engine_of(source).get_execution_options().get("postgresql_readonly"))
    # A URL derived from the pooled one has lost its query (sslmode …): carry the pooled
    # engine's connect settings over; DATABASE_DIRECT_URL's own parameters win otherwise.
    connect_args = {} if url.query else dict(target.connect_args)
    engine = create_engine(url, read_only=read_only, pooled=False, poolclass=NullPool, connect_args=connect_args)
    try:
        yield engine
    finally:
        await engine.dispose()


async def _run_command(source: Source, revision: str, run: Callable[[Config], Any]) -> None:
    async with connect(source) as conn:
        await require_primary(conn, source, to="be migrated")
    async with _direct(source) as migrating:
        await _run_on(migrating, revision, run)


async def _run_on(source: Source, revision: str, run: Callable[[Config], Any]) -> None:
    before: list[str | None] = []

    def in_connection(sync_connection: Connection) -> None:
        before.append(MigrationContext.configure(sync_connection).get_current_revision())
        run(alembic_config(sync_connection))

    def failed(cause: str) -> MigrationError:
        start = before[0] if before and before[0] else "base"
        return MigrationError(f"Migration from {start} to {revision!r} failed: {cause}")

    try:
        async with begin(source) as conn:
            await conn.run_sync(in_connection)
    except CommandError as exc:
        raise failed(str(exc)) from exc
    except DBAPIError as exc:
        raise failed(f"the database refused it: {driver_message(exc)}") from exc


def _revision_text(revision: str | Sequence[str] | None) -> str | None:
    if revision is None or isinstance(revision, str):
        return revision
    return ", ".join(revision)


# ---------------------------------------------------------------------------- drift


def _drift_rows(connection: Connection) -> list[dict[str, Any]]:
    context = MigrationContext.configure(connection, opts=environment_options(connection.dialect.name))
    rows = [_diff_row(diff) for diff in _flatten(compare_metadata(context, metadata))]
    return rows + _check_drift(connection)


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
        return _row(operation, table.name, table.name, _where(operation, "table"))
    if operation in {"add_column", "remove_column"}:
        _, _, table_name, column = diff
        return _row(operation, table_name, column.name, _where(operation, f"column {column.name} ({column.type})"))
    if operation.startswith("modify_"):
        _, _, table_name, column_name, _, database, model = diff
        what = operation.removeprefix("modify_")
        return _row(operation, table_name, column_name, f"{what}: database has {database}, the model {model}")
    # add_/remove_ index, constraint (unique) and fk: a schema item bound to a table.
    item = diff[1]
    columns = ", ".join(column.name for column in getattr(item, "columns", []))
    kind = operation.split("_", 1)[1].replace("fk", "foreign key").replace("constraint", "unique constraint")
    return _row(operation, item.table.name, str(item.name), _where(operation, f"{kind} {item.name} ({columns})"))


def _where(operation: str, what: str) -> str:
    if operation.startswith("add_"):
        return f"{what} is in the model but missing from the database"
    return f"{what} is in the database but not in the model"


def _row(operation: str, table: str, name: str, detail: str) -> dict[str, Any]:
    return {"operation": operation, "table": table, "name": name, "detail": detail}


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
            rows.append(_row("add_check", table.name, name, _where("add_", f"CHECK {name} ({model[name]})")))
        for name in sorted(live.keys() - model.keys()):
            rows.append(_row("remove_check", table.name, name, _where("remove_", f"CHECK {name} ({live[name]})")))
        for name in sorted(model.keys() & live.keys()):
            if _normalized_sql(model[name]) != _normalized_sql(live[name]):
                detail = f"CHECK {name}: database has ({live[name]}), the model ({model[name]})"
                rows.append(_row("modify_check", table.name, name, detail))
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


# ----------------------------------------------------------------------- round trip


async def _roundtrip(engine: AsyncEngine, steps: list[dict[str, Any]], progress: Progress | None) -> None:
    expected_head = head()
    first: dict[str, Any] | None = None
    plan = [("upgrade head", "head"), ("downgrade base", "base"), ("upgrade head again", "head")]
    for step, target in plan:
        if steps and not steps[-1]["ok"]:
            steps.append({"step": step, "revision": None, "ok": False, "detail": "not run: a previous step failed"})
            continue
        if progress is not None:
            progress(step)
        try:
            if step.startswith("upgrade"):
                revision = await upgrade(engine, target)
            else:
                revision = await downgrade(engine, target)
        except MigrationError as exc:
            steps.append({"step": step, "revision": await current(engine), "ok": False, "detail": str(exc)})
            continue
        async with connect(engine) as conn:
            schema = await conn.run_sync(_schema)
        if target == "base":
            ok = revision is None and not schema
            detail = "no table left" if ok else f"left behind: {', '.join(sorted(schema)) or 'a revision'}"
        else:
            differences = await drift(engine)
            problems = [f"{row.operation} {row.name}" for row in differences.itertuples()]
            if revision != expected_head:
                problems.insert(0, f"stopped at {revision}, head is {expected_head}")
            if first is not None:
                problems += [f"differs from the first upgrade: {name}" for name in _schema_differences(first, schema)]
            first = schema if first is None else first
            ok = not problems
            detail = "; ".join(problems) if problems else "schema matches the model"
            if ok and step.endswith("again"):
                detail = "schema matches the model and is identical to the first upgrade"
        steps.append({"step": step, "revision": revision, "ok": ok, "detail": detail})


def _schema(connection: Connection) -> dict[str, dict[str, Any]]:
    """The live schema as plain, comparable values, one entry per table (Alembic's excluded)."""
    inspector = inspect(connection)
    schema: dict[str, dict[str, Any]] = {}
    for table in sorted(inspector.get_table_names()):
        if table == VERSION_TABLE:
            continue
        pk = inspector.get_pk_constraint(table)
        schema[table] = {
            "columns": [
                (c["name"], str(c["type"]), c["nullable"], str(c.get("default"))) for c in inspector.get_columns(table)
            ],
            "primary key": (pk.get("name"), tuple(pk.get("constrained_columns") or ())),
            "indexes": sorted(
                (str(i["name"]), tuple(str(c) for c in i["column_names"]), bool(i["unique"]))
                for i in inspector.get_indexes(table)
            ),
            "unique constraints": sorted(
                (str(u["name"]), tuple(u["column_names"])) for u in inspector.get_unique_constraints(table)
            ),
            "foreign keys": sorted(
                (str(f["name"]), tuple(f["constrained_columns"]), f["referred_table"])
                for f in inspector.get_foreign_keys(table)
            ),
            "checks": sorted((str(c["name"]), str(c["sqltext"])) for c in inspector.get_check_constraints(table)),
        }
    return schema


def _schema_differences(first: dict[str, dict[str, Any]], second: dict[str, dict[str, Any]]) -> list[str]:
    differences = [f"table {name}" for name in sorted(first.keys() ^ second.keys())]
    for table in sorted(first.keys() & second.keys()):
        differences += [
            f"{table} {aspect}" for aspect in first[table] if first[table][aspect] != second[table].get(aspect)
        ]
    return differences


@asynccontextmanager
async def _scratch_database(url: str | URL) -> AsyncIterator[str | URL]:
    """A new empty database beside ``url``'s (never ``url``'s own), removed afterwards."""
    target = parse_database_url(url)
    if target.backend == "sqlite":
        with tempfile.TemporaryDirectory(prefix="todo-data-roundtrip-") as directory:
            yield f"sqlite:///{Path(directory) / 'roundtrip.db'}"
        return
    given = make_url(url) if isinstance(url, str) else url
    name = f"todo_data_roundtrip_{uuid.uuid4().hex[:12]}"
    # CREATE/DROP DATABASE cannot run inside a transaction block.
    admin = create_engine(url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    try:
        async with connect(admin) as conn:
            try:
                await conn.execute(text(f'CREATE DATABASE "{name}"'))
            except DBAPIError as exc:
                raise MigrationError(
                    f"Cannot create a scratch database for the migration round trip as user "
                    f"{target.url.username!r} on {target.url.host}: {scrub(driver_message(exc), target.url.password)}. "
                    "The role needs CREATEDB (ALTER ROLE ... CREATEDB), or use a URL whose role has it "
                    "(for example a Neon branch's owner)."
                ) from None
        try:
            yield given.set(database=name)
        finally:
            async with connect(admin) as conn:
                # FORCE ends connections a failed step may have left behind (PostgreSQL 13+).
                await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        await admin.dispose()
