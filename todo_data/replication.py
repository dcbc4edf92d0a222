"""Streaming replication: how far behind a read replica is (the lag report).

:func:`replication` (``todo_data.checks.replication``): on a replica, its replay lag
and whether replay is paused; on a primary, the replicas streaming from it and their
lag; on SQLite, one "not replicated" row. The write guard that refuses a replica
before any write is :func:`todo_data.database.require_primary`, beside the engine.

What PostgreSQL exposes, and what it means:

- A replica knows how much WAL it has **received but not replayed**
  (``pg_last_wal_receive_lsn()`` minus ``pg_last_wal_replay_lsn()``), and when the newest
  transaction it replayed was committed on the primary (``pg_last_xact_replay_timestamp()``).
  It cannot know what the primary has written and not sent yet. When nothing is
  pending it has caught up with what it received, even if that transaction is old: an
  idle primary sends no new transactions, so "seconds since the last replayed
  transaction" keeps growing although nothing is behind. Hence ``lag_seconds`` is 0
  when no byte is pending, and otherwise the age of the newest replayed transaction
  (an upper bound of how stale the data is).
- A primary knows, per replica, how far its replay position is behind its own WAL
  (``pg_stat_replication``), and a recent measurement of the replay delay
  (``replay_lag``; NULL once an idle replica has caught up).
- Both views hide their details from roles without ``pg_read_all_stats`` (which
  ``pg_monitor`` includes): the frame then says what is missing instead of showing
  blanks.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

import pandas as pd
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from todo_data.database import Source, connect, in_recovery, operation

#: The columns of :func:`replication`'s frame.
REPLICATION_COLUMNS: Final = (
    "role",
    "replica",
    "state",
    "replay_paused",
    "lag_bytes",
    "lag_seconds",
    "last_replayed_at",
    "caught_up",
    "detail",
)
_DTYPES: Final = {
    "role": "str",
    "replica": "str",
    "state": "str",
    "replay_paused": "boolean",
    "lag_bytes": "Int64",
    "lag_seconds": "float64",
    "last_replayed_at": "datetime64[us, UTC]",
    "caught_up": "boolean",
    "detail": "str",
}
#: The role that shows other sessions' replication details (``pg_monitor`` includes it).
STATS_ROLE: Final = "pg_read_all_stats"


@operation("checks.replication")
async def replication(source: Source) -> pd.DataFrame:
    """Where the database stands in streaming replication, one row per replication link.

    Columns: ``role`` (``replica``, ``primary`` or ``not replicated``), ``replica`` (on a
    primary, each replica's ``application_name``; on a replica, ``this server``),
    ``state`` (``streaming``, ``catchup``, ``paused`` …; missing when the role may not
    see it), ``replay_paused``, ``lag_bytes`` (on a replica: WAL received but not yet
    replayed; on a primary: its WAL position minus the replica's replay position),
    ``lag_seconds`` (0.0 when ``lag_bytes`` is 0: see the module docstring),
    ``last_replayed_at`` (UTC commit time of the newest replayed transaction, on a
    replica), ``caught_up`` (``lag_bytes == 0``) and ``detail``, a sentence that also
    says what the role may not see. A primary without replicas gives one row saying
    so; SQLite one ``not replicated`` row.

    >>> await replication(create_engine(os.environ["DATABASE_READ_URL"]))  # doctest: +SKIP
       role     replica    state  replay_paused  lag_bytes  lag_seconds  ...  caught_up  detail
    0  replica  this server  streaming  False    0          0.0          ...  True       caught up: ...
    """
    async with connect(source) as conn:
        if conn.dialect.name != "postgresql":
            rows = [_row("not replicated", detail="SQLite has no replication: one file, read and written in place")]
        elif await in_recovery(conn):
            rows = [await _replica_row(conn)]
        else:
            rows = await _primary_rows(conn)
    frame = pd.DataFrame(rows, columns=list(REPLICATION_COLUMNS))
    return frame.astype(_DTYPES)


# -- a replica's own view ----------------------------------------------------------------------

_REPLICA_QUERY: Final = """
SELECT {pause_state} AS pause_state,
       pg_last_wal_receive_lsn() IS NOT NULL AS receiving,
       pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn())::bigint AS pending_bytes,
       pg_last_xact_replay_timestamp() AS last_replayed_at,
       extract(epoch FROM clock_timestamp() - pg_last_xact_replay_timestamp())::float8 AS age,
       (SELECT status FROM pg_stat_wal_receiver) AS receiver,
       pg_has_role(:stats_role, 'USAGE') AS sees_details,
       current_user AS role_name
"""


async def _replica_row(conn: AsyncConnection) -> dict[str, Any]:
    version = conn.dialect.server_version_info or (0,)
    # pg_get_wal_replay_pause_state() (PostgreSQL 14+) tells "pause requested" from "paused".
    pause_state = (
        "pg_get_wal_replay_pause_state()"
        if version >= (14,)
        else "CASE WHEN pg_is_wal_replay_paused() THEN 'paused' ELSE 'not paused' END"
    )
    query = text(_REPLICA_QUERY.format(pause_state=pause_state))
    found = (await conn.execute(query, {"stats_role": STATS_ROLE})).one()
    paused = found.pause_state != "not paused"
    pending: int | None = found.pending_bytes
    last: datetime | None = found.last_replayed_at
    caught_up = None if pending is None else pending == 0
    if pending is None:
        lag_seconds = None
        detail = (
            "no WAL stream: the replica is not receiving WAL from a primary (archive recovery, or a "
            "managed replica that does not expose it), so how far behind it is is unknown"
        )
    elif pending == 0:
        lag_seconds = 0.0
        detail = "caught up: every WAL byte received has been replayed" + _last_transaction(last, found.age)
    else:
        lag_seconds = found.age
        detail = f"behind: {pending:,} bytes of WAL received and not replayed yet" + _last_transaction(last, found.age)
    if paused:
        detail = f"replay {found.pause_state} (pg_wal_replay_resume() resumes it); {detail}"
    if found.sees_details:
        state = found.pause_state if paused else found.receiver or "not receiving"
    else:
        state = found.pause_state if paused else None
        detail += f"; {_hidden('the WAL receiver state', found.role_name)}"
    return _row(
        "replica",
        replica="this server",
        state=state,
        replay_paused=paused,
        lag_bytes=pending,
        lag_seconds=lag_seconds,
        last_replayed_at=last,
        caught_up=caught_up,
        detail=detail,
    )


def _last_transaction(last: datetime | None, age: float | None) -> str:
    if last is None or age is None:
        return " (no transaction replayed since the replica started)"
    return f" (the newest replayed transaction was committed {age:,.1f} s ago, at {last.isoformat()})"


# -- a primary's view of its replicas --------------------------------------------------------

_PRIMARY_QUERY: Final = text(
    """
    SELECT r.application_name, host(r.client_addr) AS client, r.state, r.sync_state,
           pg_wal_lsn_diff(pg_current_wal_lsn(), r.replay_lsn)::bigint AS lag_bytes,
           extract(epoch FROM r.replay_lag)::float8 AS replay_lag,
           pg_has_role(:stats_role, 'USAGE') AS sees_details,
           current_user AS role_name
    FROM pg_stat_replication r
    ORDER BY r.application_name, r.pid
    """
)


async def _primary_rows(conn: AsyncConnection) -> list[dict[str, Any]]:
    found = (await conn.execute(_PRIMARY_QUERY, {"stats_role": STATS_ROLE})).all()
    if not found:
        return [
            _row(
                "primary",
                detail=(
                    "no replica is streaming from this server (pg_stat_replication is empty); a Neon read "
                    "replica reads Neon's storage rather than streaming from the primary: ask the replica "
                    "itself (checks.replication on DATABASE_READ_URL)"
                ),
            )
        ]
    rows = []
    for link in found:
        name = link.application_name or "(unnamed)"
        if not link.sees_details:
            rows.append(_row("primary", replica=name, detail=_hidden("its state and lag", link.role_name)))
            continue
        caught_up = None if link.lag_bytes is None else link.lag_bytes == 0
        lag_seconds = link.replay_lag
        if lag_seconds is None and caught_up:
            lag_seconds = 0.0  # PostgreSQL clears replay_lag once an idle replica has caught up
        where = f" from {link.client}" if link.client else ""
        if link.lag_bytes is None:
            detail = f"{link.state}{where}: no replay position reported yet"
        elif caught_up:
            detail = f"{link.state}{where}, {link.sync_state}: caught up (replayed everything this server wrote)"
        else:
            detail = f"{link.state}{where}, {link.sync_state}: {link.lag_bytes:,} bytes of WAL not replayed yet"
            if lag_seconds is not None:
                # replay_lag is measured as replay advances: a stalled replica keeps its last value.
                detail += f" (replay_lag, last measured as replay advanced: {lag_seconds:,.3f} s)"
        rows.append(
            _row(
                "primary",
                replica=name,
                state=link.state,
                lag_bytes=link.lag_bytes,
                lag_seconds=lag_seconds,
                caught_up=caught_up,
                detail=detail,
            )
        )
    return rows


def _hidden(what: str, role: str) -> str:
    return (
        f'{what} hidden: the role "{role}" needs {STATS_ROLE} to see them '
        f"(an administrator runs GRANT pg_monitor TO {role})"
    )


def _row(role: str, **values: Any) -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(REPLICATION_COLUMNS)
    row.update(role=role, **values)
    return row
