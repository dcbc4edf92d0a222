"""The ``todo-data`` command: a thin shell over the library.

Every failure is printed as one line naming the database (never the password) and exits
with status 1; ``--debug`` shows the traceback instead. A bad option value is a usage
error, as Typer's own are: exit 2, naming the option. While the command runs a library
call, the library's hints name the command's options (``--lock-timeout``), not the
function's arguments (``lock_timeout=``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache, partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from todo_data import demo as demo_db  # light: its own imports wait until a database is opened
from todo_data._args import CountProgress
from todo_data.errors import InvalidArgumentError, TodoDataError, on_the_command_line

if TYPE_CHECKING:
    import pandas as pd
    from rich.console import Console
    from rich.table import Table
    from sqlalchemy.ext.asyncio import AsyncEngine

    from todo_data.queries._export import PartitionBy

# Only Typer loads at import time. SQLAlchemy, pydantic-settings, pandas, Alembic and Rich
# load inside the commands that use them, so `todo-data --help` and argument errors
# answer fast (benchmarks/startup.py measures it; tests/e2e/test_cli.py keeps it so).

T = TypeVar("T")

EPILOG = (
    "Every command reads DATABASE_URL (the environment, or the nearest .env from the working directory up) "
    "unless --database-url is given; report and export read DATABASE_READ_URL (a read replica) when it is set. "
    "A Neon connection string works as pasted."
)
app = typer.Typer(
    help="Inspect and verify the Todo application's database (Neon PostgreSQL or SQLite).",
    epilog=EPILOG,
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
)
migrate_app = typer.Typer(
    help=(
        "Apply or inspect migrations. Without a subcommand: upgrade to the newest revision. "
        "Given a pooled (-pooler) endpoint, migrations run on its direct one. "
        "Examples: todo-data migrate | todo-data migrate down base | todo-data migrate history"
    ),
    add_completion=False,
)
app.add_typer(migrate_app, name="migrate")


@dataclass
class Invocation:
    """What the options before a command said (``ctx.obj``, shared by every command of one invocation)."""

    debug: bool = False
    #: ``todo-data migrate --database-url URL SUBCOMMAND``: the subcommand's default.
    migrate_url: str | None = None
    #: ``todo-data migrate --lock-timeout S SUBCOMMAND``: the subcommand's default.
    lock_timeout: float | None = None


def _invocation(ctx: typer.Context) -> Invocation:
    found = ctx.find_object(Invocation)
    return found if found is not None else Invocation()


@cache
def console() -> Console:
    from rich.console import Console

    # No markup: paths, revision messages and stored values are printed as they are
    # ("out[2025]" is a folder, not a style).
    return Console(markup=False)


@cache
def errors() -> Console:
    from rich.console import Console

    return Console(stderr=True, soft_wrap=True)


DatabaseUrl = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        metavar="TEXT",
        help="Database URL (default: DATABASE_URL from the environment or the nearest .env).",
    ),
]


def _checked(check: Callable[[T], object], python_name: str) -> Callable[[T | None], T | None]:
    """An option callback: the library's own check of the value, its refusal a usage error naming the option.

    The library names its argument (``since must be …``); the command names the option,
    so the argument's name is left out of the message Typer prefixes with the option's.
    """

    def callback(value: T | None) -> T | None:
        if value is None:
            return value
        try:
            # A repeatable option's values are checked one by one.
            for each in value if isinstance(value, list) else [value]:
                check(each)
        except InvalidArgumentError as exc:
            raise typer.BadParameter(str(exc).removeprefix(f"{python_name} ")) from None
        return value

    return callback


def _lock_timeout_is_valid(seconds: float) -> None:
    from todo_data.migrations import lock_timeout_ms

    lock_timeout_ms(seconds)


def _time_bound_is_valid(name: str) -> Callable[[str], object]:
    def check(value: str) -> object:
        from todo_data.queries._filters import time_bound

        return time_bound(name, value)

    return check


def _message_is_valid(message: str) -> None:
    from todo_data.migrations import revision_message

    revision_message(message)


def _non_blank(name: str) -> Callable[[str], object]:
    def check(value: str) -> None:
        if not value.strip():
            raise InvalidArgumentError(f"{name} must be non-blank text, not {value!r}")

    return check


@app.callback()
def _options(
    ctx: typer.Context, debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False
) -> None:
    ctx.obj = Invocation(debug=debug)


def _fail(message: str) -> typer.Exit:
    errors().print(f"error: {message}", markup=False, highlight=False)
    return typer.Exit(1)


def _quietly(ctx: typer.Context, call: Callable[[], T]) -> T:
    """A library call that needs no database, its failure one line (a traceback with --debug)."""
    try:
        with on_the_command_line():
            return call()
    except TodoDataError as exc:
        if _invocation(ctx).debug:
            raise
        raise _fail(str(exc)) from None


def _on_engine(
    ctx: typer.Context,
    make: Callable[[AsyncEngine], Awaitable[T]],
    database_url: str | None,
    *,
    read: bool = False,
    refuse_a_missing_file: bool = True,
) -> T:
    """One library call on a fresh engine, awaited to the end; every failure one line.

    ``read=True``: a read-only engine that, without ``--database-url``, reads the read
    replica (``DATABASE_READ_URL``) when one is configured. A SQLite file that does not
    exist is refused before it is opened (which would create it) unless
    ``refuse_a_missing_file=False``: the commands that migrate or seed may make one, the
    reads never do.
    """
    from sqlalchemy.exc import SQLAlchemyError

    from todo_data.database import create_engine, create_read_engine, describe
    from todo_data.errors import driver_message
    from todo_data.runner import run
    from todo_data.urls import scrub

    engine: AsyncEngine | None = None

    async def body() -> T:
        nonlocal engine
        engine = create_read_engine(database_url) if read else create_engine(database_url)
        try:
            if refuse_a_missing_file and _missing_sqlite_file(engine):
                raise _missing_file_error(engine)
            return await make(engine)
        finally:
            await engine.dispose()

    try:
        with on_the_command_line():
            return run(body())
    except (TodoDataError, SQLAlchemyError, OSError) as exc:
        if _invocation(ctx).debug:
            raise
        if engine is None:
            raise _fail(str(exc)) from None
        where = describe(engine)
        if isinstance(exc, TodoDataError):
            message = str(exc)
            raise _fail(message if where in message else f"{where}: {message}") from None
        raise _fail(f"{where}: {scrub(driver_message(exc), engine.url.password)}") from None


def _missing_sqlite_file(engine: AsyncEngine) -> bool:
    """True when the engine's SQLite file does not exist (opening it would create it)."""
    from todo_data.database import about

    location = about(engine).location
    return location is not None and location != ":memory:" and not Path(location).exists()


def _missing_file_error(engine: AsyncEngine) -> TodoDataError:
    from todo_data.database import about, describe
    from todo_data.errors import SchemaNotReadyError

    location = about(engine).location
    where = "" if location == engine.url.database else f" ({location})"
    return SchemaNotReadyError(
        f"{describe(engine)} does not exist{where}, and a read creates nothing: check the path, or create and "
        "migrate it with `todo-data migrate`"
    )


def _table(frame: pd.DataFrame, *, title: str) -> Table:
    """A frame as a Rich table, each value written as the notebooks show it (:func:`todo_data.show`)."""
    from rich.table import Table

    from todo_data._display import cells

    # A NULL written by another client: say so, never "nan".
    names, rows, right = cells(frame, missing="(missing)")
    table = Table(title=title, title_justify="left")
    for name, numeric in zip(names, right, strict=True):
        table.add_column(name, justify="right" if numeric else "left")
    for row in rows:
        table.add_row(*row)
    return table


@contextmanager
def _progress(description: str) -> Iterator[CountProgress]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    bar = Progress(TextColumn(description), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console())
    task = bar.add_task(description, total=None)

    def update(done: int, total: int) -> None:
        # Shown from the first step only: no empty bar when there is nothing to do or
        # the command fails before it starts.
        if not bar.live.is_started:
            bar.start()
        bar.update(task, completed=done, total=total)

    try:
        yield update
    finally:
        if bar.live.is_started:
            bar.stop()


def _print_report(status: pd.DataFrame, per_user: pd.DataFrame, *, top: int) -> None:
    console().print(_table(status, title="Tasks by status"))
    busiest = per_user.sort_values(["total", "user_id"], ascending=[False, True]).head(top)
    console().print(_table(busiest, title=f"Tasks per user (top {len(busiest)} of {len(per_user)})"))
    if per_user.empty:
        console().print("No tasks yet: the tasks table is empty.", highlight=False)


async def _report_frames(engine: AsyncEngine) -> tuple[pd.DataFrame, pd.DataFrame]:
    from todo_data import queries

    return await queries.status_counts(engine), await queries.tasks_per_user(engine)


async def _described_report(engine: AsyncEngine) -> tuple[str, pd.DataFrame, pd.DataFrame]:
    from todo_data.database import about

    return (about(engine).summary, *await _report_frames(engine))


@app.command()
def demo(
    ctx: typer.Context,
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            metavar="TEXT",
            help="Database to demo on (default: the embedded SQLite file todo_data.db, never DATABASE_URL).",
        ),
    ] = None,
    tasks: Annotated[
        int, typer.Option(min=1, metavar="INTEGER", help="Sample tasks to add when the database is empty.")
    ] = demo_db.DEMO_TASKS,
) -> None:
    """Migrate the embedded SQLite database, seed it when empty and print a short report.

    The first thing to run. It writes, so it ignores DATABASE_URL (which may be Neon's
    production database): only --database-url points it elsewhere.

    Example: todo-data demo
    """
    from todo_data.database import describe
    from todo_data.settings import DEFAULT_DATABASE_URL

    async def body(engine: AsyncEngine, progress: CountProgress) -> tuple[int, pd.DataFrame, pd.DataFrame, str]:
        added = await demo_db.prepare(engine, tasks=tasks, progress=progress)
        return (added, *await _report_frames(engine), describe(engine))

    with _progress("Seeding") as progress:
        added, status, per_user, where = _on_engine(
            ctx, partial(body, progress=progress), database_url or DEFAULT_DATABASE_URL, refuse_a_missing_file=False
        )
    if added:
        console().print(f"{where}: added {added:,} sample tasks.", highlight=False)
    else:
        console().print(f"{where} already has tasks: nothing added.", highlight=False)
    _print_report(status, per_user, top=5)


LockTimeout = Annotated[
    float | None,
    typer.Option(
        "--lock-timeout",
        metavar="SECONDS",
        callback=_checked(_lock_timeout_is_valid, "lock_timeout"),
        help="Seconds to wait for each lock (PostgreSQL) before retrying; 0 waits as long as it takes "
        "(default: DATABASE_LOCK_TIMEOUT, else 5).",
    ),
]


@migrate_app.callback(invoke_without_command=True)
def migrate(ctx: typer.Context, database_url: DatabaseUrl = None, lock_timeout: LockTimeout = None) -> None:
    """Upgrade to the newest revision when no subcommand is given."""
    _invocation(ctx).migrate_url = database_url
    _invocation(ctx).lock_timeout = lock_timeout
    if ctx.invoked_subcommand is None:
        up(ctx, "head", database_url, lock_timeout)


def _url(ctx: typer.Context, database_url: str | None) -> str | None:
    return database_url or _invocation(ctx).migrate_url


def _said(message: str) -> None:
    """A migration's progress line (a lock it waits for), printed as it happens."""
    console().print(message, markup=False, highlight=False, soft_wrap=True)


@migrate_app.command()
def up(
    ctx: typer.Context,
    revision: Annotated[str, typer.Argument(metavar="[REV]", help="The revision to reach (default: head).")] = "head",
    database_url: DatabaseUrl = None,
    lock_timeout: LockTimeout = None,
) -> None:
    """Upgrade to REV (default: head), saying which lock it waits for. Example: todo-data migrate up 0002"""
    from todo_data import migrations

    seconds = lock_timeout if lock_timeout is not None else _invocation(ctx).lock_timeout

    def body(engine: AsyncEngine) -> Awaitable[str | None]:
        return migrations.upgrade(engine, revision, lock_timeout=seconds, progress=_said)

    new = _on_engine(ctx, body, _url(ctx, database_url), refuse_a_missing_file=False)
    console().print(f"Database is at revision {new}.", highlight=False)


@migrate_app.command()
def down(
    ctx: typer.Context,
    revision: Annotated[str, typer.Argument(metavar="REV", help='The revision to reach ("base": no tables).')],
    database_url: DatabaseUrl = None,
    lock_timeout: LockTimeout = None,
) -> None:
    """Downgrade to REV ("base" removes every table). Example: todo-data migrate down base"""
    from todo_data import migrations

    seconds = lock_timeout if lock_timeout is not None else _invocation(ctx).lock_timeout

    def body(engine: AsyncEngine) -> Awaitable[str | None]:
        return migrations.downgrade(engine, revision, lock_timeout=seconds, progress=_said)

    new = _on_engine(ctx, body, _url(ctx, database_url))
    console().print(f"Database is at revision {new or 'base (no tables)'}.", highlight=False)


ScriptLocation = Annotated[
    Path | None,
    typer.Option(
        "--script-location",
        metavar="PATH",
        help="Another Alembic script directory (default: the project's migrations).",
    ),
]


LintFormat = Annotated[
    str,
    typer.Option(
        "--format", help="text (one line per finding), json, github (workflow annotations) or sarif (SARIF 2.1.0)."
    ),
]


@migrate_app.command()
def lint(
    ctx: typer.Context,
    files: Annotated[
        list[Path] | None, typer.Argument(help="SQL files to check instead of the revisions (as psql runs them).")
    ] = None,
    script_location: ScriptLocation = None,
    output: LintFormat = "text",
    select: Annotated[
        str | None,
        typer.Option("--select", help='Rules to check, comma-separated, or "all" (default: the configured).'),
    ] = None,
    postgres_version: Annotated[
        str | None,
        typer.Option("--postgres-version", help="The server's major version (default: configured, else 14)."),
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            help="A live database (only read) whose tables' rows and size each finding carries, with an "
            "estimated lock duration. Without it, no database is used.",
        ),
    ] = None,
    scratch_url: Annotated[
        str | None,
        typer.Option(
            "--scratch-url",
            help="Where the scratch copy that times each statement is made (default: --database-url's "
            "server; its role needs CREATEDB).",
        ),
    ] = None,
    scratch_rows: Annotated[
        int, typer.Option("--scratch-rows", min=1, help="Sample tasks seeded on the scratch copy.")
    ] = 50_000,
) -> None:
    """Check each revision's SQL (or FILE.sql …) for PostgreSQL lock and rewrite hazards.

    Exits 1 when any finding is an error (CI can run it before every deploy), 0 otherwise.
    Reads [tool.todo-data.lint] from the nearest pyproject.toml. Needs no database; with
    --database-url each finding on a live table says how big it is and roughly how long
    the lock would last there (timed on a seeded scratch copy, never on the live database).
    Examples: todo-data migrate lint | todo-data migrate lint migrations/*.sql --format github
    """
    import pandas as pd

    from todo_data import migrations

    if output not in migrations.LINT_FORMATS:
        raise _fail(f"--format must be one of {', '.join(migrations.LINT_FORMATS)}, not {output!r}")
    rules = None if select is None else ("all" if select.strip() == "all" else _names(select))
    live_url = _url(ctx, database_url)
    if files:
        frames = []
        for path in files:
            try:
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise _fail(f"Cannot read {path}: {getattr(exc, 'strerror', None) or exc}") from None
            frames.append(
                _quietly(
                    ctx,
                    partial(
                        migrations.lint_sql,
                        text,
                        rules=rules,
                        postgres_version=postgres_version,
                        file=path,
                        database_url=live_url,
                        scratch_url=scratch_url,
                        scratch_rows=scratch_rows,
                    ),
                )
            )
        findings = pd.concat(frames, ignore_index=True)
        checked = _count(len(files), "file")
    else:
        findings = _quietly(
            ctx,
            lambda: migrations.lint(
                script_location=script_location,
                rules=rules,
                postgres_version=postgres_version,
                database_url=live_url,
                scratch_url=scratch_url,
                scratch_rows=scratch_rows,
            ),
        )
        revisions = _quietly(ctx, lambda: len(list(migrations.script_directory(script_location).walk_revisions())))
        checked = _count(revisions, "revision")
    failed = int((findings["severity"] == "error").sum())
    if output != "text":
        report = _quietly(ctx, lambda: migrations.lint_report(findings, output))
        if report:
            console().print(report, markup=False, highlight=False, soft_wrap=True)
    else:
        _print_findings(findings, by_file=bool(files))
        warned = len(findings) - failed
        summary = f"{checked} checked: {_count(failed, 'error')}, {_count(warned, 'warning')}."
        console().print(summary, highlight=False)
    if failed:
        raise typer.Exit(1)


def _names(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


def _print_findings(findings: pd.DataFrame, *, by_file: bool) -> None:
    for row in findings.to_dict("records"):
        where = f"{row['file']}:{row['line']}:{row['column']}" if by_file else str(row["revision"])
        said = f"{row['message']}. Fix: {row['fix']}"
        if isinstance(row.get("impact"), str):
            said += f". {row['impact']}"
        line = f"{where} {row['severity']} {row['rule']}: {_shortened(str(row['statement']))} -- {said}"
        console().print(line, markup=False, highlight=False, soft_wrap=True)


@migrate_app.command()
def new(
    ctx: typer.Context,
    message: Annotated[
        str,
        typer.Argument(
            metavar="MESSAGE",
            callback=_checked(_message_is_valid, "message"),
            help='What the revision does, e.g. "add priority".',
        ),
    ],
    database_url: DatabaseUrl = None,
    script_location: ScriptLocation = None,
) -> None:
    """Write the next revision (0003, 0004 …) from the model's changes, then lint it at once.

    Alembic's autogenerate compares the model (models.py) with the scripts' head, on a
    scratch database beside --database-url (default: DATABASE_URL), which is never
    touched. What autogenerate does not write (CHECK constraints, triggers) is listed, to
    add by hand. Exits 1 when the new revision's lint finds an error: fix it before it
    runs on a busy table. Example: todo-data migrate new "add priority"
    """
    from todo_data import migrations
    from todo_data.settings import get_settings

    url = _url(ctx, database_url) or _quietly(ctx, lambda: get_settings().database_url)
    written = _on_engine(
        ctx,
        lambda _engine: migrations.new_revision(url, message, script_location=script_location),
        url,
        refuse_a_missing_file=False,  # the engine is never opened: the revision is made on a scratch database
    )
    shown = _relative(written.path)
    if written.empty:
        console().print(
            f"Wrote {written.revision} ({shown}): the model has nothing the scripts lack, so upgrade() is empty: "
            "write it by hand.",
            highlight=False,
            soft_wrap=True,
        )
    else:
        console().print(
            f"Wrote {written.revision} ({shown}) from the model's changes.", highlight=False, soft_wrap=True
        )
    for row in written.missing.itertuples():
        console().print(str(row.detail), markup=False, highlight=False, soft_wrap=True)
    location = script_location if script_location is not None else written.path.parent.parent
    findings = _quietly(ctx, lambda: migrations.lint(script_location=location))
    findings = findings[findings["revision"] == written.revision]
    for row in findings.itertuples():
        line = f"{row.revision} {row.severity} {row.rule}: {_shortened(str(row.statement))} -- {row.message}"
        console().print(line, markup=False, highlight=False, soft_wrap=True)
    failed = int((findings["severity"] == "error").sum())
    console().print(
        f"Lint of {written.revision}: {_count(failed, 'error')}, {_count(len(findings) - failed, 'warning')}.",
        highlight=False,
    )
    if failed:
        raise typer.Exit(1)


def _relative(path: Path) -> str:
    """``path`` from the working directory when it is below it, else as it is."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


@migrate_app.command()
def trace(
    ctx: typer.Context,
    revision: Annotated[
        str, typer.Argument(metavar="[REV]", help="The last revision to run (default: head).")
    ] = "head",
    database_url: DatabaseUrl = None,
    rows: Annotated[
        int, typer.Option(min=0, metavar="INTEGER", help="Sample rows seeded once the tasks table exists.")
    ] = 10_000,
    script_location: ScriptLocation = None,
) -> None:
    """Run the revisions up to REV on a scratch database beside the given one; show each statement's locks.

    Lock modes are PostgreSQL's (AccessExclusiveLock blocks even reads until the revision
    commits); "already held" names the locks an earlier statement of the revision took,
    under which this one runs; "REWRITTEN" means the table or index was copied. The given
    database is never migrated. Example: todo-data migrate trace --database-url "$DATABASE_URL"
    """
    from todo_data import migrations
    from todo_data.settings import get_settings

    url = _url(ctx, database_url) or _quietly(ctx, lambda: get_settings().database_url)
    frame = _on_engine(
        ctx,
        lambda _engine: migrations.trace(url, revision, rows=rows, script_location=script_location),
        url,
        refuse_a_missing_file=False,  # the engine is never opened: the trace runs on a scratch database
    )
    if frame["revision"].isna().all():  # SQLite: the one row says why there is nothing to trace
        console().print(frame["statement"].iloc[0], highlight=False, soft_wrap=True)
        return
    heading = f"Locks each statement took, revisions up to {revision} (held until its revision commits):"
    console().print(heading, highlight=False, soft_wrap=True)
    for row in frame.to_dict("records"):
        taken = _locks_taken(row)
        if row["rewritten"]:
            taken += ", REWRITTEN"
        milliseconds = row["duration"].total_seconds() * 1000
        line = f"{row['revision']} {milliseconds:8.1f} ms  {taken}  | {_shortened(str(row['statement']))}"
        console().print(line, markup=False, highlight=False, soft_wrap=True)


def _locks_taken(row: dict[Hashable, Any]) -> str:
    """``tasks: ShareLock (already held: AccessExclusiveLock)``, ``tasks: already held: …`` or ``no lock``."""
    relation, locks, held = row["relation"], row["locks"], row["held"]
    if not isinstance(relation, str):
        return "no lock"
    if locks and held:
        return f"{relation}: {locks} (already held: {held})"
    if held:
        return f"{relation}: already held: {held}"
    return f"{relation}: {locks or 'no new lock'}"


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def _shortened(sql: str, limit: int = 80) -> str:
    return sql if len(sql) <= limit else sql[: limit - 1] + "…"


@migrate_app.command()
def current(ctx: typer.Context, database_url: DatabaseUrl = None) -> None:
    """Print the database's revision and the newest one. Example: todo-data migrate current"""
    from todo_data import migrations

    async def body(engine: AsyncEngine) -> tuple[str | None, bool]:
        if _missing_sqlite_file(engine):  # never migrated, and reading it must not create it
            return None, True
        return await migrations.current(engine), False

    revision, missing = _on_engine(ctx, body, _url(ctx, database_url), refuse_a_missing_file=False)
    head = _quietly(ctx, migrations.head)
    state = "up to date" if revision == head else "behind: run `todo-data migrate up`"
    never = "none (the SQLite file does not exist yet)" if missing else "none (never migrated)"
    console().print(f"current: {revision or never}  head: {head}  ({state})", highlight=False)


@migrate_app.command()
def history(ctx: typer.Context) -> None:
    """List the migration scripts, from the first to the newest. Example: todo-data migrate history"""
    from todo_data import migrations

    scripts = _quietly(ctx, migrations.history)
    # The first revision comes after none: say "base", as Alembic does, not "(missing)".
    console().print(_table(scripts.fillna({"down_revision": "base"}), title="Migrations"))


@app.command()
def seed(
    ctx: typer.Context,
    database_url: DatabaseUrl = None,
    tasks: Annotated[int, typer.Option(min=1, metavar="INTEGER", help="How many tasks to add.")] = 10_000,
    users: Annotated[int, typer.Option(min=1, metavar="INTEGER", help="Across how many users.")] = 50,
    seed_: Annotated[
        int, typer.Option("--seed", metavar="INTEGER", help="Random seed: the same seed gives the same tasks.")
    ] = 0,
) -> None:
    """Add deterministic sample tasks (migrating an empty database first).

    Example: todo-data seed --tasks 100000 --users 200 --seed 7
    """
    from todo_data import migrations, sample

    async def body(engine: AsyncEngine, progress: CountProgress) -> int:
        if await migrations.current(engine) is None:
            await migrations.upgrade(engine)
        return await sample.seed(engine, tasks=tasks, users=users, seed=seed_, progress=progress)

    with _progress("Seeding") as progress:
        added = _on_engine(ctx, partial(body, progress=progress), database_url, refuse_a_missing_file=False)
    console().print(f"Added {added:,} tasks.", highlight=False)


@app.command()
def report(
    ctx: typer.Context,
    database_url: DatabaseUrl = None,
    top: Annotated[int, typer.Option(min=1, metavar="INTEGER", help="How many users to list.")] = 20,
) -> None:
    """Print the database it read, then tasks by status and tasks per user.

    Reads DATABASE_READ_URL (the read replica) when it is set, else DATABASE_URL.
    Example: todo-data report --top 10
    """
    where, status, per_user = _on_engine(ctx, _described_report, database_url, read=True)
    console().print(f"Report of {where}", highlight=False, soft_wrap=True)
    _print_report(status, per_user, top=top)


@app.command()
def verify(ctx: typer.Context, database_url: DatabaseUrl = None) -> None:
    """Check revision, drift, constraints (probe) and stored rows; exit 1 when any check fails.

    Example: todo-data verify --database-url "$DATABASE_URL"
    """
    from todo_data import checks
    from todo_data.database import describe

    async def body(engine: AsyncEngine) -> tuple[checks.Verification, str]:
        return await checks.verify(engine), describe(engine)

    verdict, where = _on_engine(ctx, body, database_url)
    console().print(_table(verdict.frame, title=f"Verification of {where}"))
    if not verdict.ok:
        raise _fail(f"{where}: verification failed: {', '.join(verdict.failures)}")
    console().print("All checks passed.")


@app.command()
def export(
    ctx: typer.Context,
    path: Annotated[
        Path, typer.Argument(metavar="PATH", help="The dataset directory to create (refused if it exists).")
    ],
    database_url: DatabaseUrl = None,
    user_id: Annotated[
        str | None,
        typer.Option(
            "--user-id",
            metavar="TEXT",
            callback=_checked(_non_blank("user_id"), "user_id"),
            help="Only this user's tasks.",
        ),
    ] = None,
    status: Annotated[
        list[str] | None,
        typer.Option(
            "--status",
            metavar="TEXT",
            callback=_checked(_non_blank("status"), "status"),
            help="Only tasks with this status (repeat for several).",
        ),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(
            metavar="DATE",
            callback=_checked(_time_bound_is_valid("since"), "since"),
            help="Created at or after (ISO 8601 date or datetime, UTC).",
        ),
    ] = None,
    until: Annotated[
        str | None,
        typer.Option(
            metavar="DATE",
            callback=_checked(_time_bound_is_valid("until"), "until"),
            help="Created before (ISO 8601 date or datetime, UTC).",
        ),
    ] = None,
    partition_by: Annotated[
        str,
        typer.Option(
            "--partition-by",
            metavar="[month|none]",
            callback=_checked(_partitioning_is_valid, "partition_by"),
            help='"month" (created_month=YYYY-MM/ directories) or "none".',
        ),
    ] = "month",
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace PATH once the new dataset is complete.")
    ] = False,
) -> None:
    """Export the tasks to a Hive-partitioned Parquet dataset, with a progress bar.

    Reads DATABASE_READ_URL (the read replica) when it is set. Streams in bounded memory
    and writes atomically: a failed export leaves nothing at PATH. DuckDB, Polars, Spark
    and pyarrow read PATH as one table.

    Example: todo-data export exports/tasks --since 2025-01-01 --status completed
    """
    from todo_data import queries

    choices = _PARTITIONINGS

    def body(engine: AsyncEngine, progress: CountProgress) -> Awaitable[int]:
        return queries.export_parquet(
            engine,
            path,
            partition_by=choices[partition_by],
            overwrite=overwrite,
            progress=progress,
            user_id=user_id,
            status=status or None,
            since=since,
            until=until,
        )

    with _progress("Exporting") as progress:
        rows = _on_engine(ctx, partial(body, progress=progress), database_url, read=True)
    if rows:
        console().print(f"Exported {rows:,} tasks to {path}.", highlight=False)
        return
    asked = [
        f"{name} {value}"
        for name, value in (
            ("--user-id", user_id),
            ("--status", ", ".join(status or [])),
            ("--since", since),
            ("--until", until),
        )
        if value
    ]
    which = f"matched {' '.join(asked)}" if asked else "is in the database"
    console().print(
        f"No task {which}: {path} holds an empty dataset (the schema, no rows).", highlight=False, soft_wrap=True
    )


_PARTITIONINGS: dict[str, PartitionBy] = {"month": "month", "none": None}


def _partitioning_is_valid(value: str) -> None:
    if value not in _PARTITIONINGS:
        raise InvalidArgumentError(f'must be "month" or "none", not {value!r}')


@app.command()
def notebooks(
    ctx: typer.Context,
    directory: Annotated[
        Path, typer.Argument(metavar="DIR", help="The folder to copy them into (created when missing).")
    ] = Path("notebooks"),
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace notebooks already in DIR.")] = False,
) -> None:
    """Copy the example notebooks into DIR, to open in JupyterLab (works from an installed package).

    They need the notebooks extra (JupyterLab, a kernel, matplotlib): pip install
    'todo-data[notebooks]'. Without DATABASE_URL they open the embedded demo database.
    Example: todo-data notebooks my-notebooks
    """
    copied, skipped = _quietly(ctx, lambda: demo_db.copy_notebooks(directory, overwrite=overwrite))
    for path in copied:
        console().print(f"copied {path}", markup=False, highlight=False, soft_wrap=True)
    for path in skipped:
        console().print(
            f"kept {path}: already there (--overwrite replaces it)", markup=False, highlight=False, soft_wrap=True
        )
    console().print(
        f"Open them with: jupyter lab {directory}  (needs the notebooks extra: pip install 'todo-data[notebooks]')",
        highlight=False,
        markup=False,
        soft_wrap=True,
    )


def main() -> None:
    """Entry point of the ``todo-data`` console script."""
    app()


if __name__ == "__main__":
    main()
