"""The machinery behind :mod:`todo_data.queries`: task rows to contract-exact DataFrames, fast.

PostgreSQL sends each task as **one** ``bytea`` value built in SQL: a fixed 48-byte head
(the 16 UUID bytes, both timestamps as microseconds since 2000-01-01, the byte length
of each text column) followed by the UTF-8 text of user_id, title, description and
status. ``COPY ... TO STDOUT (FORMAT binary)`` streams those values, and numpy decodes
them column by column into Arrow arrays: one Python loop step per row to find where it
starts, no Python object per value. Text columns are gathered through an Arrow
``string_view`` array pointing into the received buffer, then made contiguous by Arrow.
The same decoder reads the values a server-side cursor fetches (:func:`iter_tasks_frames`).

SQLite sends plain text (ids as 32 hex characters, timestamps as naive UTC text), which
is converted column-wise. Both backends end in :func:`frame_from_columns`, so the
DataFrames are identical: same columns, dtypes, categories, order and values.
"""

from __future__ import annotations

import struct
from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

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
# PostgreSQL's binary timestamps count microseconds from 2000-01-01 00:00 UTC.
_PG_EPOCH_US: Final = 946_684_800_000_000
_HEAD: Final = 48
# Arrow string_view offsets are int32: long buffers are split into overlapping windows.
_WINDOW: Final = 1 << 30


def status_dtype(found: Iterable[str] = ()) -> pd.CategoricalDtype:
    """Every :class:`TaskStatus` in declared order, then unknown values found (sorted)."""
    unknown = sorted(set(found).difference(KNOWN_STATUSES))
    return pd.CategoricalDtype(pd.Index([*KNOWN_STATUSES, *unknown], dtype=STRING), ordered=False)


def utc_timestamps(values: Sequence[datetime | str]) -> pd.DatetimeIndex:
    """Naive-UTC or aware datetimes, or ISO text, as a ``datetime64[us, UTC]`` index."""
    text = [value.isoformat() if isinstance(value, datetime) else value for value in values]
    return pd.DatetimeIndex(pd.to_datetime(text, utc=True, format="ISO8601")).as_unit("us")


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
        created = created_expr(backend)
        clauses: list[str] = []
        if self.user_id is not None:
            clauses.append(f"user_id = {params.add(self.user_id)}")
        if self.statuses is not None:
            clauses.append(f"status IN ({', '.join(params.add(s) for s in self.statuses)})")
        if self.open_only:
            clauses.append(f"status <> {params.add(TaskStatus.COMPLETED.value)}")
        for bound, op in ((self.since, ">="), (self.until, "<")):
            if bound is not None:
                clauses.append(f"{created} {op} {params.add(_bound_value(bound, backend))}")
        return f" WHERE {' AND '.join(clauses)}" if clauses else ""


def _bound_value(value: datetime, backend: str) -> datetime | str:
    # SQLite compares the stored naive UTC text, so the bound must be text of the same shape.
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f") if backend == "sqlite" else value


def created_expr(backend: str) -> str:
    """``created_at`` as a comparable value.

    SQLite stores ``YYYY-MM-DD HH:MM:SS.ffffff`` from Python but ``YYYY-MM-DD HH:MM:SS``
    from the ``CURRENT_TIMESTAMP`` server default; padding the fraction makes text
    comparison and ordering agree with time.
    """
    return "substr(created_at || '.000000', 1, 26)" if backend == "sqlite" else "created_at"


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
        return f"octet_length({column})" if utf8 else f"octet_length(convert_to({column}, 'UTF8'))"

    payload = (
        "uuid_send(id) || timestamptz_send(created_at) || timestamptz_send(updated_at)"
        f" || int4send({length('user_id')}) || int4send({length('title')})"
        f" || int4send(coalesce({length('description')}, -1)) || int4send({length('status')})"
        " || convert_to(user_id || title || coalesce(description, '') || status, 'UTF8')"
    )
    return f"SELECT {payload} FROM {TABLE_NAME}{task_filter.where('postgresql', params)} ORDER BY created_at, id"


def sqlite_select(task_filter: TaskFilter, params: Params) -> str:
    """The task columns as text: canonical UUIDs, timestamps with a 6-digit fraction."""
    hex_id = "lower(replace(id, '-', ''))"
    canonical_id = " || '-' || ".join(
        f"substr({hex_id}, {start}, {size})" for start, size in ((1, 8), (9, 4), (13, 4), (17, 4), (21, 12))
    )
    created = created_expr("sqlite")
    updated = "substr(updated_at || '.000000', 1, 26)"
    return (
        f"SELECT {canonical_id}, user_id, title, description, status, {created}, {updated}"
        f" FROM {TABLE_NAME}{task_filter.where('sqlite', params)} ORDER BY {created}, id"
    )


def distinct_statuses_select(backend: str, task_filter: TaskFilter, params: Params) -> str:
    return f"SELECT DISTINCT status FROM {TABLE_NAME}{task_filter.where(backend, params)}"


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
        # with a field count of -1 (2 bytes), which this loop leaves for finish().
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
    [("uuid", np.uint8, (16,)), ("created", ">i8"), ("updated", ">i8"), ("lengths", ">i4", (4,))]
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
    # payload starts gathers each 48-byte head in C, with no per-row Python.
    heads = np.ndarray((size - _HEAD + 1,), dtype=_HEAD_DTYPE, buffer=buffer, strides=(1,))[starts]
    lengths = heads["lengths"].astype(np.int64)
    description_valid = lengths[:, 2] >= 0
    lengths[:, 2] = np.maximum(lengths[:, 2], 0)
    offsets = np.empty_like(lengths)
    offsets[:, 0] = starts + _HEAD
    np.cumsum(lengths[:, :3], axis=1, out=offsets[:, 1:])
    offsets[:, 1:] += offsets[:, :1]

    data = pa.py_buffer(buffer)
    windows = [data.slice(start, min(2 * _WINDOW, size - start)) for start in range(0, size, _WINDOW)]
    twelve = np.ndarray((size - 11,), dtype="V12", buffer=buffer, strides=(1,))

    def text(k: int, valid: npt.NDArray[np.bool_] | None = None) -> pa.Array:
        return _string_view(twelve, windows, offsets[:, k], lengths[:, k], valid)

    return {
        "id": _uuid_strings(heads["uuid"]),
        "user_id": text(0),
        "title": text(1),
        "description": text(2, description_valid),
        "status": text(3),
        "created_at": _pg_timestamps(heads["created"]),
        "updated_at": _pg_timestamps(heads["updated"]),
    }


def _pg_timestamps(micros: npt.NDArray[np.int64]) -> pa.Array:
    return pa.array(micros.astype(np.int64) + _PG_EPOCH_US, type=pa.int64()).cast(_ARROW_TIMESTAMP)


def _uuid_strings(raw: npt.NDArray[np.uint8]) -> pa.Array:
    """16-byte UUIDs as canonical 36-character lowercase strings, vectorised."""
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
    return pa.Array.from_buffers(pa.large_string(), n, [None, pa.py_buffer(offsets), pa.py_buffer(text)])


def _string_view(
    twelve: npt.NDArray[np.void],
    windows: list[pa.Buffer],
    offsets: npt.NDArray[np.int64],
    lengths: npt.NDArray[np.int64],
    valid: npt.NDArray[np.bool_] | None,
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
    validity = None
    null_count = 0
    if valid is not None and not valid.all():
        validity = pa.py_buffer(np.packbits(valid, bitorder="little"))
        null_count = int(n - valid.sum())
    array = pa.Array.from_buffers(pa.string_view(), n, [validity, pa.py_buffer(views), *windows], null_count=null_count)
    return array.cast(pa.large_string())


# -- rows (SQLite) ----------------------------------------------------------------------------


def columns_from_text_rows(rows: Sequence[Sequence[Any]]) -> dict[str, pa.Array]:
    """Arrow columns from SQLite rows (canonical id text, naive UTC timestamp text)."""
    values = list(zip(*rows, strict=True)) if rows else [() for _ in TASK_COLUMNS]
    columns = {
        name: pa.array(column, type=pa.large_string()) for name, column in zip(TASK_COLUMNS[:5], values, strict=False)
    }
    for name, column in zip(TASK_COLUMNS[5:], values[5:], strict=True):
        columns[name] = pa.array(column, type=pa.large_string()).cast(pa.timestamp("us")).cast(_ARROW_TIMESTAMP)
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
    mapping = np.array([position[value] for value in found], dtype=np.int16)
    indices = encoded.indices.to_numpy(zero_copy_only=False)
    codes = mapping[indices] if len(found) else np.zeros(0, dtype=np.int16)
    return pd.Categorical.from_codes(codes, dtype=dtype)
