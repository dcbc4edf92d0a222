"""PostgreSQL's binary ``COPY`` format, decoded column by column into Arrow arrays.

A stream is an 11-byte signature, an int32 of flags and an int32-prefixed header
extension; then one tuple per row (an int16 field count, then per field an int32 byte
length, -1 for NULL, followed by that many bytes, big-endian); then an int16 of -1.

Finding where each row starts is the one sequential step: a field's position depends on
the lengths before it. The queries are therefore wrapped (see :mod:`todo_data._sqlrun`) so
that every row opens with an ``int4`` field holding the byte length of the rest of the
row: :class:`CopyDecoder` takes **one Python step per row** whatever the number of
columns, in the receive callback while the server is still sending. Everything else is
numpy over whole batches of rows: the field offsets column by column, the values gathered
through strided views of the received bytes, text as Arrow ``string_view`` arrays pointing
into them (one copy in C when they become ``large_string``). No Python object is made per
value.
"""

from __future__ import annotations

import struct
from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pyarrow as pa


class Kind(Enum):
    """How a field is laid out on the wire, and what Arrow type it becomes."""

    INT2 = "int2"
    INT4 = "int4"
    INT8 = "int8"
    FLOAT4 = "float4"
    FLOAT8 = "float8"
    BOOL = "bool"
    TEXT = "text"
    UUID = "uuid"
    TIMESTAMPTZ = "timestamptz"
    TIMESTAMP = "timestamp"
    DATE = "date"
    INTERVAL = "interval"


#: Bytes of each fixed-width kind (text is variable).
WIDTH: Final = {
    Kind.INT2: 2,
    Kind.INT4: 4,
    Kind.INT8: 8,
    Kind.FLOAT4: 4,
    Kind.FLOAT8: 8,
    Kind.BOOL: 1,
    Kind.UUID: 16,
    Kind.TIMESTAMPTZ: 8,
    Kind.TIMESTAMP: 8,
    Kind.DATE: 4,
    Kind.INTERVAL: 16,
}

#: The Arrow type of each kind: integers widen to int64, floats to float64, intervals
#: count a month as 30 days (as PostgreSQL's ``extract(epoch from ...)`` does).
ARROW_TYPE: Final = {
    Kind.INT2: pa.int64(),
    Kind.INT4: pa.int64(),
    Kind.INT8: pa.int64(),
    Kind.FLOAT4: pa.float64(),
    Kind.FLOAT8: pa.float64(),
    Kind.BOOL: pa.bool_(),
    Kind.TEXT: pa.large_string(),
    Kind.UUID: pa.large_string(),
    Kind.TIMESTAMPTZ: pa.timestamp("us", tz="UTC"),
    Kind.TIMESTAMP: pa.timestamp("us"),
    Kind.DATE: pa.date32(),
    Kind.INTERVAL: pa.duration("us"),
}

SIGNATURE: Final = b"PGCOPY\n\xff\r\n\x00"
TRAILER: Final = b"\xff\xff"
# PostgreSQL counts timestamps in microseconds and dates in days from 2000-01-01;
# ±infinity are the extreme integers.
PG_EPOCH_US: Final = 946_684_800_000_000
PG_EPOCH_DAYS: Final = 10_957
_US_PER_DAY: Final = 86_400_000_000
_INT32_MIN, _INT32_MAX = -(2**31), 2**31 - 1
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
# Zero bytes after each batch so that fixed-size reads at any field stay in the buffer.
_PAD: Final = bytes(16)
# Each byte as its two lowercase hex digits, read as one little-endian uint16.
_HEX_PAIRS: Final = np.array([ord(f"{b:02x}"[0]) | ord(f"{b:02x}"[1]) << 8 for b in range(256)], dtype="<u2")


class CopyFormatError(ValueError):
    """The bytes are not the binary COPY stream the query was wrapped to produce."""


@dataclass
class Batch:
    """Decoded rows: per column either a finished Arrow array or text views (see :func:`assemble`)."""

    rows: int
    columns: list[pa.Array | TextViews]


@dataclass
class TextViews:
    """Arrow ``string_view`` views (4 int32 per row) into ``buffer``, and which are valid."""

    views: npt.NDArray[np.int32]
    valid: npt.NDArray[np.bool_]
    buffer: pa.Buffer


class CopyDecoder:
    """Receives a binary COPY whose rows open with their length, and decodes it in batches.

    Feed the chunks as they arrive with :meth:`feed`; every ``batch_rows`` complete rows
    are decoded at once and kept (or handed out by :meth:`take` when streaming). Call
    :meth:`finish` after the last chunk.
    """

    _ROW: Final = struct.Struct(">i")

    def __init__(self, kinds: Sequence[Kind], *, batch_rows: int = 16_384) -> None:
        self.kinds = tuple(kinds)
        self.batch_rows = batch_rows
        self.batches: list[Batch] = []
        self._buffer = bytearray()
        self._starts = array("q")
        self._position = -1  # -1 until the header has been read
        self._finished = False

    @property
    def rows(self) -> int:
        return sum(batch.rows for batch in self.batches)

    async def receive(self, chunk: bytes) -> None:
        """:meth:`feed` as the coroutine asyncpg's ``copy_from_query(output=...)`` awaits."""
        self.feed(chunk)

    def feed(self, chunk: bytes) -> None:
        self._buffer += chunk
        self._scan()
        while len(self._starts) >= self.batch_rows:
            self._cut(self.batch_rows)

    def finish(self) -> None:
        """Decode the rows left and check that the stream ended exactly with its trailer."""
        self._scan()
        if self._position < 0 or bytes(self._buffer[self._position :]) != TRAILER:
            raise CopyFormatError("the binary COPY stream ended early or has trailing data")
        if self._starts:
            self._cut(len(self._starts))
        self._finished = True

    def take(self) -> list[Batch]:
        """The batches decoded so far, removed from the decoder."""
        batches, self.batches = self.batches, []
        return batches

    def _scan(self) -> None:
        buffer = self._buffer
        end = len(buffer)
        position = self._position
        if position < 0:
            if end < 19:
                return
            if bytes(buffer[:11]) != SIGNATURE:
                raise CopyFormatError("not a PostgreSQL binary COPY stream")
            position = 19 + int.from_bytes(buffer[15:19], "big")
        read = self._ROW.unpack_from
        append = self._starts.append
        # The one loop per row: bytes 6-10 of a row hold the length of the rest of it.
        # The 2-byte trailer never satisfies the loop condition on its own.
        while position + 10 <= end:
            (length,) = read(buffer, position + 6)
            following = position + 10 + length
            if following > end:
                break
            append(position)
            position = following
        self._position = position

    def _cut(self, rows: int) -> None:
        """Decode the first ``rows`` complete rows and drop their bytes from the buffer."""
        starts = np.frombuffer(self._starts, dtype=np.int64, count=rows).copy()
        end = int(self._starts[rows]) if rows < len(self._starts) else self._position
        rest = self._buffer[end:]
        data = self._buffer
        del data[end:]
        data += _PAD
        self._buffer = rest
        self._starts = array("q", (start - end for start in self._starts[rows:]))
        self._position -= end
        self.batches.append(decode_rows(data, starts, end, self.kinds))


def decode_rows(data: bytes | bytearray, starts: npt.NDArray[np.int64], end: int, kinds: Sequence[Kind]) -> Batch:
    """Decode whole rows beginning at ``starts`` (the last one ending at ``end``) in ``data``.

    ``data`` must extend at least 16 bytes past ``end``.
    """
    n = len(starts)
    int16 = _view(data, ">i2", 2)
    int32 = _view(data, ">i4", 4)
    if n and (not (int16[starts] == len(kinds) + 1).all() or not (int32[starts + 2] == 4).all()):
        raise CopyFormatError(f"binary COPY rows do not have the expected {len(kinds) + 1} fields")
    row_end = starts + 10 + int32[starts + 6].astype(np.int64)
    field = starts + 10
    buffer = pa.py_buffer(data)
    columns: list[pa.Array | TextViews] = []
    for kind in kinds:
        length = int32[field].astype(np.int64)
        valid = length >= 0
        width = WIDTH.get(kind)
        if width is not None and not ((length == width) | ~valid).all():
            raise CopyFormatError(f"a {kind.value} field is not {width} bytes long")
        at = field + 4
        if kind is Kind.TEXT:
            columns.append(_text_views(data, buffer, at, np.where(valid, length, 0), valid))
        else:
            columns.append(_fixed(kind, data, at, valid))
        field = at + np.maximum(length, 0)
    if n and not (field == row_end).all():
        raise CopyFormatError("binary COPY rows do not end where their length says")
    if n and int(row_end[-1]) != end:
        raise CopyFormatError("binary COPY rows overlap the next batch")
    return Batch(n, columns)


def _view(data: bytes | bytearray, dtype: str, width: int) -> npt.NDArray[Any]:
    """A read-only array with an element of ``dtype`` starting at *every* byte offset."""
    return np.ndarray((len(data) - width + 1,), dtype=dtype, buffer=data, strides=(1,))


def _validity(valid: npt.NDArray[np.bool_]) -> tuple[pa.Buffer | None, int]:
    nulls = int(len(valid) - np.count_nonzero(valid))
    if not nulls:
        return None, 0
    return pa.py_buffer(np.packbits(valid, bitorder="little")), nulls


def _array(arrow_type: pa.DataType, values: npt.NDArray[np.generic], valid: npt.NDArray[np.bool_]) -> pa.Array:
    bitmap, nulls = _validity(valid)
    return pa.Array.from_buffers(arrow_type, len(values), [bitmap, pa.py_buffer(values)], null_count=nulls)


def _fixed(kind: Kind, data: bytes | bytearray, at: npt.NDArray[np.int64], valid: npt.NDArray[np.bool_]) -> pa.Array:
    arrow_type = ARROW_TYPE[kind]
    if kind is Kind.UUID:
        raw = _view(data, "V16", 16)[at].view(np.uint8).reshape(len(at), 16)
        return _uuid_strings(raw, valid)
    if kind is Kind.BOOL:
        values = np.frombuffer(data, dtype=np.uint8)[at] != 0
        bitmap, nulls = _validity(valid)
        packed = pa.py_buffer(np.packbits(values, bitorder="little"))
        return pa.Array.from_buffers(pa.bool_(), len(values), [bitmap, packed], null_count=nulls)
    if kind is Kind.INTERVAL:
        micros = _view(data, ">i8", 8)[at].astype(np.int64)
        days = _view(data, ">i4", 4)[at + 8].astype(np.int64) + 30 * _view(data, ">i4", 4)[at + 12]
        return _array(arrow_type, np.where(valid, micros + days * _US_PER_DAY, 0), valid)
    if kind is Kind.DATE:
        days32 = _view(data, ">i4", 4)[at].astype(np.int32)
        valid = valid & (days32 != _INT32_MIN) & (days32 != _INT32_MAX)  # ±infinity
        return _array(arrow_type, np.where(valid, days32 + PG_EPOCH_DAYS, 0).astype(np.int32), valid)
    if kind in (Kind.TIMESTAMPTZ, Kind.TIMESTAMP):
        micros = _view(data, ">i8", 8)[at].astype(np.int64)
        valid = valid & (micros != _INT64_MIN) & (micros != _INT64_MAX)  # ±infinity
        return _array(arrow_type, np.where(valid, micros + PG_EPOCH_US, 0), valid)
    source = {
        Kind.INT2: ">i2",
        Kind.INT4: ">i4",
        Kind.INT8: ">i8",
        Kind.FLOAT4: ">f4",
        Kind.FLOAT8: ">f8",
    }[kind]
    target = np.float64 if kind in (Kind.FLOAT4, Kind.FLOAT8) else np.int64
    values = _view(data, source, WIDTH[kind])[at].astype(target)
    values[~valid] = 0
    return _array(arrow_type, values, valid)


def _uuid_strings(raw: npt.NDArray[np.uint8], valid: npt.NDArray[np.bool_]) -> pa.Array:
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
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.where(valid, 36, 0), out=offsets[1:])
    bitmap, nulls = _validity(valid)
    return pa.Array.from_buffers(
        pa.large_string(), n, [bitmap, pa.py_buffer(offsets), pa.py_buffer(text[valid])], null_count=nulls
    )


def _text_views(
    data: bytes | bytearray,
    buffer: pa.Buffer,
    at: npt.NDArray[np.int64],
    length: npt.NDArray[np.int64],
    valid: npt.NDArray[np.bool_],
) -> TextViews:
    """Arrow ``string_view`` views of the text at (``at``, ``length``) in ``data``.

    A view is 16 bytes: int32 length, then either the string itself (up to 12 bytes,
    zero padded) or its first 4 bytes, a buffer index and the offset in that buffer.
    """
    n = len(at)
    head = _view(data, "V12", 12)[at].view(np.uint8).reshape(n, 12)
    head *= np.arange(12) < length[:, None]
    words = head.view("<i4")  # (n, 3)
    short = length <= 12
    views = np.empty((n, 4), dtype="<i4")
    views[:, 0] = length
    views[:, 1] = words[:, 0]
    views[:, 2] = np.where(short, words[:, 1], 0)  # buffer index, set by assemble()
    views[:, 3] = np.where(short, words[:, 2], at)
    return TextViews(views, valid, buffer)


def assemble(
    batches: Sequence[Batch], kinds: Sequence[Kind], order: npt.NDArray[np.int64] | None = None
) -> list[pa.Array]:
    """One Arrow array per column from decoded batches, rows permuted by ``order`` if given.

    Text is gathered through one ``string_view`` array over every batch's bytes and made
    contiguous ``large_string`` by Arrow (the only copy of the text).
    """
    arrays: list[pa.Array] = []
    for index, kind in enumerate(kinds):
        parts = [batch.columns[index] for batch in batches]
        if kind is Kind.TEXT:
            arrays.append(_assemble_text([part for part in parts if isinstance(part, TextViews)], order))
            continue
        chunks = [part for part in parts if isinstance(part, pa.Array)]
        if not chunks:
            arrays.append(pa.array([], type=ARROW_TYPE[kind]))
            continue
        combined = pa.concat_arrays(chunks) if len(chunks) > 1 else chunks[0]
        arrays.append(combined.take(pa.array(order)) if order is not None else combined)
    return arrays


def _assemble_text(parts: Sequence[TextViews], order: npt.NDArray[np.int64] | None) -> pa.Array:
    if not parts:
        return pa.array([], type=pa.large_string())
    views = np.concatenate([part.views for part in parts]) if len(parts) > 1 else parts[0].views.copy()
    valid = np.concatenate([part.valid for part in parts]) if len(parts) > 1 else parts[0].valid
    if len(parts) > 1:
        batch_of = np.repeat(np.arange(len(parts), dtype=np.int32), [len(part.views) for part in parts])
        long = views[:, 0] > 12
        views[long, 2] = batch_of[long]
    if order is not None:
        views, valid = views[order], valid[order]
    bitmap, nulls = _validity(valid)
    n = len(views)
    array = pa.Array.from_buffers(
        pa.string_view(), n, [bitmap, pa.py_buffer(views), *(part.buffer for part in parts)], null_count=nulls
    )
    return array.cast(pa.large_string())
