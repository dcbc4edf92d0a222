"""Run one connection string through ``psql`` and through ``todo_data``, each in a clean
process of its own (only the variables a case gives), and say what each reached."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from todo_data.testing import PostgresCluster

QUERY = "select current_user, current_database(), coalesce(inet_server_port()::text, 'socket')"

# What todo_data's process runs: the engine, the same query, and what about() says.
_SCRIPT = f"""
import json, sys
from sqlalchemy import text
from todo_data import create_engine, run
from todo_data.database import about, connect
from todo_data.errors import TodoDataError

async def main():
    engine = create_engine(sys.argv[1])
    try:
        async with connect(engine) as conn:
            row = (await conn.execute(text({QUERY!r}))).one()
        return {{"reached": "|".join(str(v) for v in row), "about": str(about(engine))}}
    except TodoDataError as exc:
        return {{"error": str(exc)}}
    finally:
        await engine.dispose()

print(json.dumps(run(main())))
"""


@dataclass(frozen=True)
class Seen:
    """``user|database|port`` (``socket`` for a Unix socket), or the failure; and about()'s text."""

    reached: str | None
    error: str | None = None
    about: str = ""


def clean_env(home: Path, case: Mapping[str, str]) -> dict[str, str]:
    """Only PATH, a home of the test's own and the case's variables: nothing of the developer's."""
    return {"PATH": os.environ["PATH"], "HOME": str(home), "LC_ALL": "C.UTF-8", **case}


def psql_sees(cluster: PostgresCluster, conninfo: str, env: Mapping[str, str]) -> Seen:
    """What libpq reaches: ``psql "<conninfo>" -c QUERY``."""
    psql = cluster.bindir / "psql"
    result = subprocess.run(
        [str(psql), "-X", "-At", "-w", conninfo, "-c", QUERY],
        capture_output=True,
        text=True,
        env=dict(env),
        check=False,
        timeout=60,
    )
    if result.returncode != 0:
        return Seen(reached=None, error=result.stderr.strip())
    return Seen(reached=result.stdout.strip())


def todo_data_sees(conninfo: str, env: Mapping[str, str]) -> Seen:
    """What ``create_engine(conninfo)`` reaches, in a fresh interpreter."""
    result = subprocess.run(
        [sys.executable, "-c", _SCRIPT, conninfo],
        capture_output=True,
        text=True,
        env=dict(env),
        check=False,
        timeout=120,
    )
    if result.returncode != 0:
        raise AssertionError(f"the todo_data process failed: {result.stderr[-3000:]}")
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    return Seen(reached=seen.get("reached"), error=seen.get("error"), about=seen.get("about", ""))


def pgpass_field(value: str) -> str:
    """A value as a ``.pgpass`` field: ``\\`` and ``:`` escaped."""
    return value.replace("\\", "\\\\").replace(":", "\\:")
