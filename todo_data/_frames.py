"""The machinery behind :mod:`todo_data.queries`: task rows to contract-exact DataFrames, fast.

PostgreSQL sends each task as **one** ``bytea`` value built in SQL: a fixed 49-byte head
(the 16 UUID bytes and a byte that is 1 when the id is NULL, both timestamps as
microseconds since 2000-01-01, the byte length of each text column, -1 for NULL)
followed by the UTF-8 text of user_id, title, description and status.
``COPY ... TO STDOUT (FORMAT binary)`` streams those values, and numpy decodes them
column by column into Arrow arrays: one Python loop step per row to find where it
starts, no Python object per value. Text columns are gathered through an Arrow
``string_view`` array pointing into the received buffer, then made contiguous by Arrow.
The same decoder reads the values a server-side cursor fetches (:func:`iter_tasks_frames`).

SQLite sends text (ids made canonical in SQL) and timestamps as integer microseconds
since 1970, computed in SQL from whatever ISO 8601 text is stored (:func:`sqlite_instant`),
which are converted column-wise. Both backends end in :func:`frame_from_columns`, so the
DataFrames are identical: same columns, dtypes, categories, order and values.

What a value written by another client reads as (NULL, ±infinity, text that is no time)
is decided here, once for both backends: see "time" below.
"""

from __future__ import annotations

import struct
from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from todo_data.models import TaskStatus
from todo_data.rules import TABLE_NAME

TASK_COLUMNS: Final = ("id", "user_id", "title", "description", "status", "created_at", "updated_at")
KNOWN_STATUSES: Final = tuple(status.value for status in TaskStatus)

#: pandas' default string dtype (``str``), Arrow-backed, missing values as NaN.
STRING: Final = pd.StringDtype("pyarrow", na_value=np.nan)
#: Timestamps: microseconds (the precision both databases store), in UTC.
TIMESTAMP: Final = pd.DatetimeTZDtype(unit="us", tz="UTC")
TIMEDELTA: Final = np.dtype("m8[us]")

_ARROW_TIMESTAMP: Final = pa.timestamp("us", tz="UTC")
_UNIX_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
# PostgreSQL's binary timestamps count microseconds from 2000-01-01 00:00 UTC; -infinity
# is the smallest int64 and infinity the largest.
_PG_EPOCH_US: Final = 946_684_800_000_000
_INT64: Final = np.iinfo(np.int64)
_HEAD: Final = 49
# Arrow string_view offsets are int32: long buffers are split into overlapping windows.
_WINDOW: Final = 1 << 30


def status_dtype(found: Iterable[str] = ()) -> pd.CategoricalDtype:
    """Every :class:`TaskStatus` in declared order, then unknown values found (sorted)."""
    unknown = sorted(set(found).difference(KNOWN_STATUSES))
    return pd.CategoricalDtype(pd.Index([*KNOWN_STATUSES, *unknown], dtype=STRING), ordered=False)


# -- time: what a stored timestamp reads as ---------------------------------------------------
#
# A timestamp reads as missing (NaT) when it is NULL, when it is PostgreSQL's ±infinity or
# beyond what datetime64[us] holds, and, in SQLite, when its text is no ISO 8601 time. Such
# rows sort after every other row (by id among themselves) and fall outside every bound.

#: The last instant ``datetime64[us]`` holds (int64 microseconds from 1970). PostgreSQL
#: accepts later ones (up to the year 294276): they would wrap like ``'infinity'`` does.
_PG_LAST_READABLE: Final = "'294247-01-10 04:00:54.775807+00'::timestamptz"
_PG_BUCKETS: Final = {"D": "day", "W": "week", "M": "month"}
# SQLite date-function modifiers giving the start of the UTC day, Monday-based week, month.
_SQLITE_BUCKETS: Final = {
    "D": "'start of day'",
    "W": "'start of day', 'weekday 0', '-6 days'",
    "M": "'start of month'",
}


def pg_readable(column: str) -> str:
    """True when a PostgreSQL ``timestamptz`` reads as a time (see above), else false or NULL."""
    return f"({column} > '-infinity' AND {column} <= {_PG_LAST_READABLE})"


def sqlite_instant(column: str, *, unit: Literal["us", "s"] = "us") -> str:
    """The UTC instant of SQLite timestamp text: integer microseconds (or whole seconds) since 1970, or NULL.

    Reads the ISO 8601 forms SQLite's date functions know: a date, or a date and a time
    (``T`` or space between; minutes, seconds and any number of fractional digits;
    ``Z``, ``+HH:MM`` or ``-HH:MM``, naive meaning UTC). Everything else is NULL: numbers,
    words such as ``'now'`` (which SQLite would read as the current time) and dates that
    don't exist (``2025-02-30``, which SQLite would roll into March).

    SQLite's date functions keep milliseconds and round them, so the fraction is cut out
    of the text before they see it and added back as an integer, rounded to microseconds
    as PostgreSQL rounds its input.
    """
    c = column
    fraction = f"substr({c}, 21)"  # what follows "YYYY-MM-DDTHH:MM:SS.": digits, then the zone
    zone = f"ltrim({fraction}, '0123456789')"
    whole = f"CASE instr({c}, '.') WHEN 0 THEN {c} WHEN 20 THEN substr({c}, 1, 19) || {zone} END"
    digits = f"CASE instr({c}, '.') WHEN 20 THEN substr({fraction}, 1, length({fraction}) - length({zone})) ELSE '' END"
    seconds = f"CAST(strftime('%s', {whole}) AS INTEGER)"
    micros = f"(CAST(substr(({digits}) || '0000000', 1, 7) AS INTEGER) + 5) / 10"
    value = f"{seconds} * 1000000 + {micros}" if unit == "us" else f"{seconds} + ({micros}) / 1000000"
    return (
        f"(CASE WHEN typeof({c}) = 'text' AND {c} GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]*'"
        f" AND date(substr({c}, 1, 10), '+0 days') = substr({c}, 1, 10) THEN {value} END)"
    )


def utc_from_seconds(seconds: Sequence[int | None]) -> pd.DatetimeIndex:
    """Seconds since 1970 (None for missing) as a ``datetime64[us, UTC]`` index."""
    micros = pc.multiply(pa.array(seconds, type=pa.int64()), 1_000_000)
    return pd.DatetimeIndex(pd.array(micros.cast(_ARROW_TIMESTAMP).to_pandas(), dtype=TIMESTAMP))


# -- filters -------------------------------------------------------------------------------


@dataclass(frozen=True)
class TaskFilter:
    """Validated filters; renders a WHERE clause for either backend."""

    user_id: str | None = None
    statuses: tuple[str, ...] | None = None
    since: datetime | None = None
    until: datetime | None = None
    open_only: bool = False

    def where(self, backend: str, params: Params) -> str:
        clauses: list[str] = []
        if self.user_id is not None:
            clauses.append(f"user_id = {params.add(self.user_id)}")
        if self.statuses is not None:
            clauses.append(f"status IN ({', '.join(params.add(s) for s in self.statuses)})")
        if self.open_only:
            # A missing status is not "completed": the task counts as open.
            clauses.append(f"(status <> {params.add(TaskStatus.COMPLETED.value)} OR status IS NULL)")
        if backend == "sqlite":
            created = sqlite_instant("created_at")
            for bound, op in ((self.since, ">="), (self.until, "<")):
                if bound is not None:
                    clauses.append(f"{created} {op} {params.add(_micros(bound))}")
        else:
            # Plain comparisons on the column (an index on created_at would serve them),
            # each closed on its open side so that ±infinity stays outside like NaT.
            if self.since is not None:
                clauses.append(f"created_at >= {params.add(self.since)} AND created_at <= {_PG_LAST_READABLE}")
            if self.until is not None:
                clauses.append(f"created_at < {params.add(self.until)} AND created_at > '-infinity'")
        return f" WHERE {' AND '.join(clauses)}" if clauses else ""


def _micros(value: datetime) -> int:
    return (value - _UNIX_EPOCH) // timedelta(microseconds=1)


@dataclass
class Params:
    """Bound parameters, named (``:p0``, SQLAlchemy) or numbered (``$1``, asyncpg)."""

    numbered: bool = False
    values: list[Any] = field(default_factory=list)

    def add(self, value: Any) -> str:
        self.values.append(value)
        return f"${len(self.values)}" if self.numbered else f":p{len(self.values) - 1}"

    def named(self) -> dict[str, Any]:
        return {f"p{i}": value for i, value in enumerate(self.values)}


# -- SQL ------------------------------------------------------------------------------------


def pg_payload_select(task_filter: TaskFilter, params: Params, *, utf8: bool = True) -> str:
    """One ``bytea`` per task, in contract order (see the module docstring)."""

    def length(column: str) -> str:
        # octet_length counts bytes in the server encoding; the payload is UTF-8.
        size = f"octet_length({column})" if utf8 else f"octet_length(convert_to({column}, 'UTF8'))"
        return f"int4send(coalesce({size}, -1))"

    # NULL anywhere would make the whole payload NULL: a missing id becomes 16 zero bytes
    # and a flag, a missing timestamp -infinity (read as NaT), a missing text length -1.
    payload = (
        rf"coalesce(uuid_send(id) || '\x00'::bytea, '\x{'00' * 16}01'::bytea)"
        " || timestamptz_send(coalesce(created_at, '-infinity'))"
        " || timestamptz_send(coalesce(updated_at, '-infinity'))"
        f" || {length('user_id')} || {length('title')} || {length('description')} || {length('status')}"
        " || convert_to(coalesce(user_id, '') || coalesce(title, '') || coalesce(description, '')"
        " || coalesce(status, ''), 'UTF8')"
    )
    order = f"CASE WHEN {pg_readable('created_at')} THEN created_at END, id"  # NaT last (NULLs sort last)
    return f"SELECT {payload} FROM {TABLE_NAME}{task_filter.where('postgresql', params)} ORDER BY {order}"


def sqlite_select(task_filter: TaskFilter, params: Params) -> str:
    """The task columns: canonical UUID text, plain text, timestamps as integer microseconds."""
    hex_id = "lower(replace(id, '-', ''))"
    canonical_id = " || '-' || ".join(
        f"substr({hex_id}, {start}, {size})" for start, size in ((1, 8), (9, 4), (13, 4), (17, 4), (21, 12))
    )
    return (
        f"SELECT {canonical_id}, user_id, title, description, status,"
        f" {sqlite_instant('created_at')}, {sqlite_instant('updated_at')}"
        # By created_at's instant (the 6th column), NaT last, as on PostgreSQL.
        f" FROM {TABLE_NAME}{task_filter.where('sqlite', params)} ORDER BY 6 NULLS LAST, id NULLS LAST"
    )


def created_over_time_select(backend: str, freq: str, task_filter: TaskFilter, params: Params) -> str:
    """Rows of (period, status, count): the start of each ``created_at``'s UTC day, week
    (from Monday) or month as seconds since 1970 (NULL when it reads as missing).

    Seconds rather than a timestamp: the driver never builds a Python datetime, which
    stops at the year 9999. PostgreSQL groups by the truncated timestamp and converts
    only the groups.
    """
    where = task_filter.where(backend, params)
    if backend == "sqlite":
        seconds = sqlite_instant("created_at", unit="s")
        period = f"CAST(strftime('%s', {seconds}, 'unixepoch', {_SQLITE_BUCKETS[freq]}) AS INTEGER)"
        return f"SELECT {period}, status, count(*) FROM {TABLE_NAME}{where} GROUP BY 1, 2"
    bucket = f"date_trunc('{_PG_BUCKETS[freq]}', created_at AT TIME ZONE 'UTC')"
    grouped = (
        f"SELECT CASE WHEN {pg_readable('created_at')} THEN {bucket} END AS period, status, count(*) AS count"
        f" FROM {TABLE_NAME}{where} GROUP BY 1, 2"
    )
    return f"SELECT CAST(extract(epoch FROM period) AS bigint), status, count FROM ({grouped}) AS buckets"


def distinct_statuses_select(backend: str, task_filter: TaskFilter, params: Params) -> str:
    where = task_filter.where(backend, params)
    return f"SELECT DISTINCT status FROM {TABLE_NAME}{where}{' AND' if where else ' WHERE'} status IS NOT NULL"


# -- decoding PostgreSQL payloads -------------------------------------------------------------


class CopyPayloads:
    """Receives a binary ``COPY`` of one-column rows and finds where each value starts.

    The scan runs in the receive callback, chunk by chunk, while the server is still
    sending: finding the rows costs one Python step per row, overlapped with the COPY.
    """

    _SIGNATURE: Final = b"PGCOPY\n\xff\r\n\x00"
    _ROW: Final = struct.Struct(">hi")

    def __init__(self) -> None:
        self.buffer = bytearray()
        self._starts = array("q")
        self._position = -1

    async def receive(self, chunk: bytes) -> None:
        self.buffer += chunk
        self._scan()

    def _scan(self) -> None:
        buffer = self.buffer
        end = len(buffer)
        position = self._position
        if position < 0:
            if end < 19:
                return
            if bytes(buffer[:11]) != self._SIGNATURE:
                raise ValueError("not a PostgreSQL binary COPY stream")
            position = 19 + int.from_bytes(buffer[15:19], "big")
        read = self._ROW.unpack_from
        append = self._starts.append
        # Each tuple: int16 field count (1), int32 length, the bytes. The stream ends
        # with a field count of -1 (2 bytes), which this loop leaves for starts().
        while position + 6 <= end:
            fields, size = read(buffer, position)
            if fields == -1:
                break
            append(position + 6)
            position += 6 + size
        self._position = position

    def starts(self) -> npt.NDArray[np.int64]:
        """The payload offsets, once the whole stream has arrived."""
        self._scan()
        end = self._position
        if end < 0 or bytes(self.buffer[end : end + 2]) != b"\xff\xff" or end + 2 != len(self.buffer):
            raise ValueError("the binary COPY stream ended early or has trailing data")
        return np.frombuffer(self._starts, dtype=np.int64).copy()


_HEAD_DTYPE: Final = np.dtype(
    [
        ("uuid", np.uint8, (16,)),
        ("id_null", np.uint8),
        ("created", ">i8"),
        ("updated", ">i8"),
        ("lengths", ">i4", (4,)),
    ]
)
# Each byte as its two lowercase hex digits, read as one little-endian uint16.
_HEX_PAIRS: Final = np.array([ord(f"{byte:02x}"[0]) | ord(f"{byte:02x}"[1]) << 8 for byte in range(256)], dtype="<u2")


def decode_payloads(buffer: bytearray, starts: npt.NDArray[np.int64]) -> dict[str, pa.Array]:
    """Arrow columns from payloads in ``buffer`` beginning at ``starts``.

    ``buffer`` gets zero bytes appended so fixed-size reads near its end stay inside it.
    """
    buffer += bytes(_HEAD)
    size = len(buffer)
    # A view of the buffer with a record at *every* byte offset: indexing it with the
    # payload starts gathers each head in C, with no per-row Python.
    heads = np.ndarray((size - _HEAD + 1,), dtype=_HEAD_DTYPE, buffer=buffer, strides=(1,))[starts]
    lengths = heads["lengths"].astype(np.int64)
    valid = lengths >= 0  # -1: NULL
    np.maximum(lengths, 0, out=lengths)
    offsets = np.empty_like(lengths)
    offsets[:, 0] = starts + _HEAD
    np.cumsum(lengths[:, :3], axis=1, out=offsets[:, 1:])
    offsets[:, 1:] += offsets[:, :1]

    data = pa.py_buffer(buffer)
    windows = [data.slice(start, min(2 * _WINDOW, size - start)) for start in range(0, size, _WINDOW)]
    twelve = np.ndarray((size - 11,), dtype="V12", buffer=buffer, strides=(1,))

    def text(k: int) -> pa.Array:
        return _string_view(twelve, windows, offsets[:, k], lengths[:, k], valid[:, k])

    return {
        "id": _uuid_strings(heads["uuid"], heads["id_null"] == 0),
        "user_id": text(0),
        "title": text(1),
        "description": text(2),
        "status": text(3),
        "created_at": _pg_timestamps(heads["created"]),
        "updated_at": _pg_timestamps(heads["updated"]),
    }


def _pg_timestamps(micros: npt.NDArray[np.int64]) -> pa.Array:
    """Microseconds from 2000 as UTC timestamps; ±infinity (and NULL, sent as -infinity) and
    instants beyond datetime64[us] as nulls rather than wrapped int64 values."""
    since_2000 = micros.astype(np.int64)
    missing = (since_2000 == _INT64.min) | (since_2000 > _INT64.max - _PG_EPOCH_US)
    since_1970 = np.where(missing, 0, since_2000) + _PG_EPOCH_US
    return pa.array(since_1970, type=pa.int64(), mask=missing if missing.any() else None).cast(_ARROW_TIMESTAMP)


def _uuid_strings(raw: npt.NDArray[np.uint8], valid: npt.NDArray[np.bool_]) -> pa.Array:
    """16-byte UUIDs as canonical 36-character lowercase strings, vectorised (null where not ``valid``)."""
    n = len(raw)
    digits = _HEX_PAIRS[raw].view(np.uint8)  # (n, 32)
    text = np.empty((n, 36), dtype=np.uint8)
    text[:, [8, 13, 18, 23]] = ord("-")
    text[:, 0:8] = digits[:, 0:8]
    text[:, 9:13] = digits[:, 8:12]
    text[:, 14:18] = digits[:, 12:16]
    text[:, 19:23] = digits[:, 16:20]
    text[:, 24:36] = digits[:, 20:32]
    offsets = np.arange(0, 36 * n + 1, 36, dtype=np.int64)
    validity, null_count = _validity(valid)
    return pa.Array.from_buffers(
        pa.large_string(), n, [validity, pa.py_buffer(offsets), pa.py_buffer(text)], null_count=null_count
    )


def _validity(valid: npt.NDArray[np.bool_]) -> tuple[pa.Buffer | None, int]:
    """An Arrow validity bitmap and null count (no bitmap when nothing is null)."""
    if valid.all():
        return None, 0
    return pa.py_buffer(np.packbits(valid, bitorder="little")), int(len(valid) - valid.sum())


def _string_view(
    twelve: npt.NDArray[np.void],
    windows: list[pa.Buffer],
    offsets: npt.NDArray[np.int64],
    lengths: npt.NDArray[np.int64],
    valid: npt.NDArray[np.bool_],
) -> pa.Array:
    """``large_string`` values at (offset, length) in the buffer, via Arrow's string_view layout.

    A view is 16 bytes: int32 length, then either the string itself (up to 12 bytes,
    zero padded) or its first 4 bytes, a buffer index and an offset in that buffer.
    """
    n = len(offsets)
    head = twelve[offsets].view(np.uint8).reshape(n, 12)
    head *= np.arange(12, dtype=np.int64) < lengths[:, None]
    words = head.view("<i4")  # (n, 3)
    short = lengths <= 12
    window = offsets // _WINDOW
    views = np.empty((n, 4), dtype="<i4")
    views[:, 0] = lengths
    views[:, 1] = words[:, 0]  # the inline bytes, or the 4-byte prefix of a long string
    views[:, 2] = np.where(short, words[:, 1], window)
    views[:, 3] = np.where(short, words[:, 2], offsets - window * _WINDOW)
    validity, null_count = _validity(valid)
    array = pa.Array.from_buffers(pa.string_view(), n, [validity, pa.py_buffer(views), *windows], null_count=null_count)
    return array.cast(pa.large_string())


# -- rows (SQLite) ----------------------------------------------------------------------------


def columns_from_sqlite_rows(rows: Sequence[Sequence[Any]]) -> dict[str, pa.Array]:
    """Arrow columns from the rows of :func:`sqlite_select` (texts, then microseconds since 1970)."""
    values = list(zip(*rows, strict=True)) if rows else [() for _ in TASK_COLUMNS]
    columns = {
        name: pa.array(column, type=pa.large_string()) for name, column in zip(TASK_COLUMNS[:5], values, strict=False)
    }
    for name, column in zip(TASK_COLUMNS[5:], values[5:], strict=True):
        columns[name] = pa.array(column, type=pa.int64()).cast(_ARROW_TIMESTAMP)
    return columns


# -- the one assembly ---------------------------------------------------------------------------


def frame_from_columns(columns: dict[str, pa.Array], *, categories: pd.CategoricalDtype | None = None) -> pd.DataFrame:
    """The ``tasks_frame`` contract from Arrow columns (the same code for both backends)."""
    frame = pd.DataFrame(
        {
            "id": pd.array(columns["id"], dtype=STRING),
            "user_id": pd.array(columns["user_id"], dtype=STRING),
            "title": pd.array(columns["title"], dtype=STRING),
            "description": pd.array(columns["description"], dtype=STRING),
            "status": status_categorical(columns["status"], categories),
            "created_at": pd.array(columns["created_at"].to_pandas(), dtype=TIMESTAMP),
            "updated_at": pd.array(columns["updated_at"].to_pandas(), dtype=TIMESTAMP),
        }
    )
    return frame


def status_categorical(statuses: pa.Array, dtype: pd.CategoricalDtype | None = None) -> pd.Categorical:
    """Status text as the contract's categorical, without a Python object per row."""
    encoded = pc.dictionary_encode(statuses)
    found = [str(value) for value in encoded.dictionary.to_pylist()]
    if dtype is None or not set(found) <= set(dtype.categories):
        # A status another writer added after the categories were fixed is appended,
        # never turned into NaN.
        existing = [] if dtype is None else list(dtype.categories)
        dtype = status_dtype([*existing, *found])
    position = {value: code for code, value in enumerate(dtype.categories)}
    # A NULL status (its index -1 here) picks the last entry: code -1, pandas' missing value.
    mapping = np.array([*(position[value] for value in found), -1], dtype=np.int32)
    indices = pc.fill_null(encoded.indices, -1).to_numpy(zero_copy_only=False)
    return pd.Categorical.from_codes(mapping[indices], dtype=dtype)
