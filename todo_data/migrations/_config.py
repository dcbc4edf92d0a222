"""Where the migrations live and how Alembic is configured for them.

The script location, the Alembic configs (bound to a connection, or offline for
``upgrade --sql``), the options ``alembic/env.py`` runs with and the version table's
name. It imports nothing from :mod:`todo_data.migrations`, so ``alembic/env.py``, the
lint and the trace can all read it without importing the verbs.
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path
from typing import Any, Final

from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy.engine import Connection

from todo_data.errors import MigrationError
from todo_data.models import metadata

#: Alembic's bookkeeping table: part of every migrated schema, never of the model.
VERSION_TABLE: Final = "alembic_version"


def script_location() -> Path:
    """The migration scripts: shipped inside the wheel, or ``alembic/`` in a checkout."""
    package = Path(__file__).resolve().parent.parent
    for candidate in (package / "_alembic", package.parent / "alembic"):
        if (candidate / "env.py").is_file():
            return candidate
    raise MigrationError(f"Migration scripts not found next to {package}")  # pragma: no cover


def alembic_config(connection: Connection | None = None, *, location: str | Path | None = None) -> Config:
    """An Alembic config for the project's migrations (or those in ``location``), optionally bound to a connection."""
    config = Config()
    config.set_main_option("script_location", str(location or script_location()))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def offline_config(location: str | Path | None, output: Any) -> Config:
    """A config whose ``upgrade --sql`` writes PostgreSQL's SQL to ``output``, connecting nowhere.

    The URL is a placeholder that only names the dialect: ``-x url=`` for this project's
    ``env.py``, ``sqlalchemy.url`` for Alembic's stock one.
    """
    placeholder = "postgresql://offline@localhost/offline"
    config = Config(output_buffer=output)
    config.set_main_option("script_location", str(location or script_location()))
    config.set_main_option("sqlalchemy.url", placeholder)
    config.cmd_opts = argparse.Namespace(x=[f"url={placeholder}"])
    return config


def next_revision_id(script: ScriptDirectory) -> str:
    """The id a new revision gets: one more than the highest numbered one, as wide (``0003`` after ``0002``)."""
    numbered = [rev.revision for rev in script.walk_revisions() if rev.revision.isdigit()]
    if not numbered:
        return "0001"
    highest = max(numbered, key=int)
    return f"{int(highest) + 1:0{max(4, len(highest))}d}"


def _numbered(context: MigrationContext, _revision: Any, directives: list[Any]) -> None:
    """``process_revision_directives``: a new revision is numbered (``0003``) unless ``--rev-id`` was given."""
    config = context.config
    given = getattr(config.cmd_opts, "rev_id", None) if config is not None else None
    if config is None or given or not directives:
        return
    directives[0].rev_id = next_revision_id(ScriptDirectory.from_config(config))


def environment_options(dialect_name: str) -> dict[str, Any]:
    """The options ``alembic/env.py`` configures Alembic with; :func:`drift` compares with them too."""
    return {
        "target_metadata": metadata,
        # `alembic revision --autogenerate` numbers its revision as 0001 and 0002 are.
        "process_revision_directives": _numbered,
        "compare_type": True,
        # SQLite cannot ALTER constraints: batch mode rebuilds the table instead.
        "render_as_batch": dialect_name == "sqlite",
        # One transaction per revision: locks are held for one revision's statements
        # only, a lock timeout retries from the revision that failed, and a revision
        # may leave its transaction (autocommit_block, e.g. CREATE INDEX CONCURRENTLY).
        "transaction_per_migration": True,
    }


def script_directory(location: str | Path | None = None) -> ScriptDirectory:
    """The Alembic scripts in ``location`` (default: the project's); a clear error when it is not one."""
    where = Path(location) if location is not None else script_location()
    if not (where / "env.py").is_file():
        raise MigrationError(f"{where} is not an Alembic script directory: it has no env.py")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Alembic warns, then raises KeyError, for a missing parent
            script = ScriptDirectory.from_config(alembic_config(location=where))
            script.revision_map.heads  # noqa: B018  (loads every script: a broken chain fails here)
    except CommandError as exc:
        raise MigrationError(f"{where} is not a usable Alembic script directory: {exc}") from None
    except KeyError as exc:
        raise MigrationError(
            f"{where} is not a usable Alembic script directory: a revision names {exc} as its parent, "
            "and no script has that revision"
        ) from None
    return script


def revision_of(sync: Connection) -> str | None:
    """The revision the database behind ``sync`` is at, or ``None`` when it was never migrated."""
    return MigrationContext.configure(sync).get_current_revision()
