"""PostgreSQL's binary ``COPY`` format, decoded column by column into Arrow arrays.

A stream is an 11-byte signature, an int32 of flags and an int32-prefixed header
extension; then one tuple per row (an int16 field count, then per field an int32 byte
length, -1 for NULL, followed by that many bytes, big-endian); then an int16 of -1.

Finding where each row starts is the one sequential step: a field's position depends on
the lengths before it. The queries are therefore wrapped (see :mod:`todo_data.queries._adhoc`) so
that every row opens with a constant ``int4`` field, :data:`ROW_MARK`: with the field
count and that field's length word, every row begins with the same ten bytes. numpy finds
them all at once, block by block while the server is still sending (their last byte is
0xFE, which UTF-8 text never contains, so only binary values can imitate it), and a row
counts only when walking its fields ends exactly where the next one begins, so an
imitation is never taken for a row. No Python step per row, no server work per row.

Everything else is numpy over whole batches of rows: the field offsets column by column,
the values gathered through strided views of the received bytes, text as Arrow
``string_view`` views pointing into them. :class:`CopyDecoder` makes the Arrow arrays (text is
copied once, in C, into ``large_string``), after putting the rows in the order an
``ORDER BY`` on fixed-width columns would give, if asked: reordering the views costs 16
bytes a value, and spares the server a sort that costs it about as much as sending the
rows. No Python object is made per value.

Values are never wrapped: intervals keep their months, days and time apart (Arrow's
``month_day_nano``), numerics are read as the nearest float64, and a value the Arrow type
cannot hold (±infinity dates and timestamps, instants past int64 microseconds since 1970,
a numeric beyond float64) is counted in :attr:`CopyDecoder.unrepresentable`.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from todo_data.errors import CopyFormatError as CopyFormatError


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
    NUMERIC = "numeric"


#: Bytes of each fixed-width kind (text and numeric are variable).
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

#: The Arrow type of each kind: integers widen to int64, floats and numerics to float64,
#: intervals keep PostgreSQL's months, days and microseconds (as nanoseconds).
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
    Kind.INTERVAL: pa.month_day_nano_interval(),
    Kind.NUMERIC: pa.float64(),
}

#: Why a kind may hold values its Arrow type cannot, and what they read as instead.
UNREPRESENTABLE: Final = {
    Kind.TIMESTAMPTZ: "missing (±infinity, or after 294247-01-10: beyond Arrow's timestamp[us])",
    Kind.TIMESTAMP: "missing (±infinity, or after 294247-01-10: beyond Arrow's timestamp[us])",
    Kind.DATE: "missing (±infinity: no date holds it)",
    Kind.INTERVAL: "missing (more than 2**31 days once its time is carried into days: beyond month_day_nano)",
    Kind.NUMERIC: "±inf (a numeric beyond float64's ±1.8e308)",
}

SIGNATURE: Final = b"PGCOPY\n\xff\r\n\x00"
#: The value of the constant first field of every row (bytes 00 00 A5 FE).
ROW_MARK: Final = 0xA5FE
TRAILER: Final = b"\xff\xff"
# PostgreSQL counts timestamps in microseconds and dates in days from 2000-01-01;
# ±infinity are the extreme integers.
PG_EPOCH_US: Final = 946_684_800_000_000
PG_EPOCH_DAYS: Final = 10_957
_US_PER_DAY: Final = 86_400_000_000
# Arrow's interval layout; a time part beyond this many microseconds overflows its nanoseconds.
MONTH_DAY_NANO: Final = np.dtype([("months", "<i4"), ("days", "<i4"), ("nanoseconds", "<i8")])
_MAX_NANOSECOND_MICROS: Final = (2**63 - 1) // 1000
# The sign word of a binary numeric (PostgreSQL's numeric_send).
_NUMERIC_POSITIVE, _NUMERIC_NEGATIVE = 0x0000, 0x4000
_NUMERIC_SPECIAL: Final = {0xC000: np.nan, 0xD000: np.inf, 0xF000: -np.inf}  # NaN, ±Infinity
# The powers of ten a double holds exactly.
_POWERS_OF_TEN: Final = np.array([10.0**power for power in range(23)])
# Each base-10000 digit of a numeric as its four ASCII decimal digits, one uint32; a sign
# and three zeros, the same way.
_DIGIT_QUADS: Final = np.frombuffer("".join(f"{n:04d}" for n in range(10_000)).encode(), dtype="<u4")
_PLUS_ZEROS, _MINUS_ZEROS = (int.from_bytes(sign.encode(), "little") for sign in ("+000", "-000"))
_INT32_MIN, _INT32_MAX = -(2**31), 2**31 - 1
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
# Zero bytes after each batch so that fixed-size reads at any field stay in the buffer.
_PAD: Final = bytes(16)
# The received bytes are searched for row marks once this many have arrived.
_SEARCH_BLOCK: Final = 1 << 18
# string_view offsets are int32: the received bytes are seen through windows (see _text).
_WINDOW: Final = 1 << 30
# Each byte as its two lowercase hex digits, read as one little-endian uint16.
_HEX_PAIRS: Final = np.array([ord(f"{b:02x}"[0]) | ord(f"{b:02x}"[1]) << 8 for b in range(256)], dtype="<u2")


@dataclass
class Column:
    """One column of a batch, decoded into numpy, not yet an Arrow array.

    ``values``: fixed-width values as Arrow lays them out (int64, float64, bool, int32 days,
    int64 microseconds since 1970, :data:`MONTH_DAY_NANO` records, zero where missing); for
    uuid the 16 bytes of each value, (n, 16) uint8; for text Arrow ``string_view`` views,
    (n, 4) int32, pointing into ``windows`` of the received bytes (see :func:`_text`). Rows
    can be reordered at this stage for the price of these arrays, before any text is
    copied. ``unrepresentable``: how many values PostgreSQL sent that the Arrow type cannot
    hold (see :data:`UNREPRESENTABLE`).
    """

    values: npt.NDArray[Any]
    valid: npt.NDArray[np.bool_]
    windows: list[pa.Buffer] = field(default_factory=list)
    unrepresentable: int = 0


@dataclass
class Batch:
    """Decoded rows, one :class:`Column` each."""

    rows: int
    columns: list[Column]


class _Imitation(Exception):
    """A candidate row mark was a value imitating one: the rows must be followed one by one."""


class CopyDecoder:
    """Receives a binary COPY whose rows open with :data:`ROW_MARK`, and decodes it in batches.

    Feed the chunks as they arrive with :meth:`feed`; every ``batch_rows`` rows are decoded
    at once, while the rest of the stream is still arriving, into Arrow arrays handed out
    by :meth:`take` when streaming. Call :meth:`finish` after the last chunk, then
    :meth:`columns` for the whole result.

    ``order_by`` (positions of columns of fixed-width kinds) asks for the rows in the order
    PostgreSQL's ``ORDER BY`` those columns gives: ascending, NULLs last, uuids byte by
    byte, timestamps by instant (so ±infinity, read as missing, comes last). The batches
    are then kept in numpy until :meth:`columns` has put every row in its place.

    :attr:`unrepresentable` counts, per column, the values decoded so far that the Arrow
    type cannot hold (see :data:`UNREPRESENTABLE`).
    """

    def __init__(self, kinds: Sequence[Kind], *, batch_rows: int = 32_768, order_by: Sequence[int] = ()) -> None:
        self.kinds = tuple(kinds)
        self.batch_rows = batch_rows
        self.order_by = tuple(order_by)
        if any(self.kinds[index] is Kind.TEXT for index in self.order_by):
            raise ValueError("text is ordered by a collation: only fixed-width columns can be ordered here")
        if any(self.kinds[index] in (Kind.NUMERIC, Kind.INTERVAL) for index in self.order_by):
            raise ValueError("only integer, float, boolean, uuid, date and timestamp columns can be ordered here")
        self.unrepresentable = [0] * len(self.kinds)
        self._decoded: list[Batch] = []  # kept to be ordered
        self._arrays: list[list[pa.Array]] = []  # built batch by batch when no order is asked for
        self._mark = struct.pack(">hii", len(self.kinds) + 1, 4, ROW_MARK)
        # Received bytes live in a buffer with room to grow (appending to a full bytearray
        # would copy all of it again and again), a new one after each batch; ``_size`` of
        # them are used, and at least 16 zero bytes always follow them.
        self._buffer = bytearray(_SEARCH_BLOCK + len(_PAD))
        self._size = 0
        self._first = -1  # where the first undecoded row starts; -1 until the header is read
        self._searched = 0  # row marks starting before this offset have been found
        self._marks: list[npt.NDArray[np.int64]] = []  # marks found, from the first undecoded row on
        self._found = 0

    async def receive(self, chunk: bytes) -> None:
        """:meth:`feed` as the coroutine asyncpg's ``copy_from_query(output=...)`` awaits."""
        self.feed(chunk)

    def feed(self, chunk: bytes) -> None:
        end = self._size + len(chunk)
        if end + len(_PAD) > len(self._buffer):
            self._move(max(end + len(_PAD), 2 * len(self._buffer)), start=0)
        self._buffer[self._size : end] = chunk
        self._size = end
        if end - self._searched >= _SEARCH_BLOCK:
            self._advance()

    def finish(self) -> None:
        """Decode the rows left and check that the stream ended exactly with its trailer."""
        self._advance()
        trailer = self._size - len(TRAILER)
        if self._first < 0 or bytes(self._buffer[trailer : self._size]) != TRAILER:
            raise CopyFormatError("the binary COPY stream ended early or has trailing data")
        marks = self._all_marks()
        if len(marks) or self._first != trailer:
            self._cut(marks, trailer, final=True)

    def take(self) -> list[list[pa.Array]]:
        """The batches decoded so far (one array per column each), removed from the decoder."""
        arrays, self._arrays = self._arrays, []
        return arrays

    def columns(self) -> list[pa.ChunkedArray]:
        """Every column of what is left after :meth:`finish`: one chunk per batch, or one
        chunk in the order asked for."""
        if not self.order_by:
            built = self.take()
            return [
                pa.chunked_array([arrays[index] for arrays in built], type=ARROW_TYPE[kind])
                for index, kind in enumerate(self.kinds)
            ]
        decoded, self._decoded = self._decoded, []
        order = _order(decoded, self.kinds, self.order_by)
        return [
            pa.chunked_array([_arrow(kind, _merged([batch.columns[index] for batch in decoded], order))])
            for index, kind in enumerate(self.kinds)
        ]

    def _advance(self) -> None:
        if self._first < 0 and not self._read_header():
            return
        self._search()
        # A row is known to be whole once the next mark has arrived.
        while self._found > self.batch_rows:
            marks = self._all_marks()
            if not self._cut(marks[: self.batch_rows], int(marks[self.batch_rows]), final=False):
                break  # imitations among the marks: wait until the rows are whole

    def _read_header(self) -> bool:
        if self._size < 19:
            return False
        if bytes(self._buffer[:11]) != SIGNATURE:
            raise CopyFormatError("not a PostgreSQL binary COPY stream")
        self._first = self._searched = 19 + int.from_bytes(self._buffer[15:19], "big")
        return True

    def _search(self) -> None:
        """Find the row marks that arrived since the last search."""
        last = self._size - len(self._mark)  # the last offset a whole mark can start at
        if last < self._searched:
            return
        data = np.frombuffer(self._buffer, dtype=np.uint8, count=self._size)
        # Where the mark's last byte (0xFE) is, then the whole mark at each of those.
        starts = np.flatnonzero(data[self._searched + 9 : last + 10] == self._mark[-1]) + self._searched
        fits = (_view(data, ">u8", 8)[starts] == int.from_bytes(self._mark[:8], "big")) & (
            _view(data, ">u2", 2)[starts + 8] == int.from_bytes(self._mark[8:], "big")
        )
        found = starts[fits]
        self._marks.append(found)
        self._found += len(found)
        self._searched = last + 1

    def _all_marks(self) -> npt.NDArray[np.int64]:
        marks = np.concatenate([np.zeros(0, dtype=np.int64), *self._marks]) if len(self._marks) != 1 else self._marks[0]
        self._marks = [marks]
        return marks

    def _cut(self, starts: npt.NDArray[np.int64], end: int, *, final: bool) -> bool:
        """Decode the rows at ``starts`` (ending at ``end``) and drop their bytes from the buffer.

        False when no whole row could be found yet (only before the stream has ended).
        """
        try:
            if not len(starts) or starts[0] != self._first:
                raise _Imitation
            batch = decode_rows(self._padded(end), starts, end, self.kinds)
        except (_Imitation, IndexError):
            starts, end = self._follow(final=final)
            if not len(starts):
                return False
            batch = decode_rows(self._padded(end), starts, end, self.kinds)
        for index, column in enumerate(batch.columns):
            self.unrepresentable[index] += column.unrepresentable
        if self.order_by:
            self._decoded.append(batch)
        else:  # built at once: the received bytes of the batch can go
            self._arrays.append([_arrow(kind, column) for kind, column in zip(self.kinds, batch.columns, strict=True)])
        # The rest moves to a new buffer (the decoded text points into this one and keeps
        # it), sized for a batch like this one so that it rarely has to grow.
        self._move(max(_SEARCH_BLOCK, self._size + end // 4) + len(_PAD), start=end)
        self._searched -= end
        self._first = 0
        marks = self._all_marks()
        self._marks = [marks[marks >= end] - end]
        self._found = len(self._marks[0])
        return True

    def _move(self, size: int, *, start: int) -> None:
        """Move the received bytes from ``start`` on into a new zero-filled buffer of ``size`` bytes."""
        kept = self._size - start
        buffer = bytearray(size)
        buffer[:kept] = memoryview(self._buffer)[start : self._size]
        self._buffer = buffer
        self._size = kept

    def _padded(self, end: int) -> memoryview:
        """The buffer up to ``end`` and 16 bytes more, so fixed-size reads at any field stay inside."""
        return memoryview(self._buffer)[: end + len(_PAD)]

    def _follow(self, *, final: bool) -> tuple[npt.NDArray[np.int64], int]:
        """The rows from the first one, each beginning where the one before ends (up to a batch)."""
        marks = self._all_marks()
        ends = _row_ends(memoryview(self._buffer)[: self._size], marks, self.kinds)
        index = {int(start): i for i, start in enumerate(marks)}
        trailer = self._size - len(TRAILER)
        rows: list[int] = []
        position = self._first
        while position in index and len(rows) < self.batch_rows:
            end = int(ends[index[position]])
            if end not in index and not (final and end == trailer):
                break
            rows.append(position)
            position = end
        if not rows and final:
            raise CopyFormatError("binary COPY rows do not follow one another")
        return np.array(rows, dtype=np.int64), position


def _row_ends(data: memoryview | bytes, starts: npt.NDArray[np.int64], kinds: Sequence[Kind]) -> npt.NDArray[np.int64]:
    """Where each row beginning at ``starts`` ends, walking its fields; -1 where that is not
    (yet) in ``data`` or a field is impossible for its kind."""
    size = len(data)
    int32 = _view(data, ">i4", 4) if size >= 4 else np.zeros(0, dtype=">i4")
    int16 = _view(data, ">i2", 2) if size >= 2 else np.zeros(0, dtype=">i2")
    position = starts + 10
    whole = np.ones(len(starts), dtype=bool)
    for kind in kinds:
        whole &= position + 4 <= size
        length = np.where(whole, int32[np.where(whole, position, 0)], 0).astype(np.int64)
        width = WIDTH.get(kind)
        whole &= (length >= -1) if width is None else ((length == width) | (length == -1))
        if kind is Kind.NUMERIC:  # eight bytes of header, then as many int16 digits as it says
            header = whole & (length >= 8) & (position + 12 <= size)
            digits = int16[np.where(header, position + 4, 0)].astype(np.int64)
            whole &= (length == -1) | (header & (length == 8 + 2 * digits))
        position = position + 4 + np.maximum(length, 0)
    whole &= position <= size
    return np.where(whole, position, -1)


def decode_rows(data: memoryview | bytes, starts: npt.NDArray[np.int64], end: int, kinds: Sequence[Kind]) -> Batch:
    """Decode the rows beginning at ``starts``, one after another, the last ending at ``end``.

    ``data`` must extend at least 16 bytes past ``end``. Raises :class:`_Imitation` when
    the rows do not follow one another (a value imitated a row mark): every field's place is
    known before any value is read.
    """
    n = len(starts)
    int32 = _view(data, ">i4", 4)
    int16 = _view(data, ">i2", 2)
    field = starts + 10
    fields: list[tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]] = []
    for kind in kinds:
        length = int32[field].astype(np.int64)
        width = WIDTH.get(kind)
        if width is not None and not ((length == width) | (length == -1)).all():
            raise _Imitation
        if width is None and not (length >= -1).all():
            raise _Imitation
        if kind is Kind.NUMERIC:
            numeric = length >= 0
            if (
                not (length[numeric] >= 8).all()
                or not (length[numeric] == 8 + 2 * int16[field[numeric] + 4].astype(np.int64)).all()
            ):
                raise _Imitation
        fields.append((field + 4, length))
        field = field + 4 + np.maximum(length, 0)
    if n and (int(field[-1]) != end or not (field[:-1] == starts[1:]).all()):
        raise _Imitation
    columns: list[Column] = []
    for kind, (at, length) in zip(kinds, fields, strict=True):
        valid = length >= 0
        if kind is Kind.TEXT:
            column = _text(data, at, np.where(valid, length, 0), valid)
        elif kind is Kind.NUMERIC:
            column = _numeric(data, at, valid)
        else:
            column = _fixed(kind, data, at, valid)
        # Values sent but read as missing (±infinity...), with those the decoder counted itself.
        column.unrepresentable += int(np.count_nonzero(valid) - np.count_nonzero(column.valid))
        columns.append(column)
    return Batch(n, columns)


def _view(data: memoryview | bytes | npt.NDArray[np.uint8], dtype: str, width: int) -> npt.NDArray[Any]:
    """A read-only array with an element of ``dtype`` starting at *every* byte offset."""
    return np.ndarray((len(data) - width + 1,), dtype=dtype, buffer=data, strides=(1,))


def _fixed(kind: Kind, data: memoryview | bytes, at: npt.NDArray[np.int64], valid: npt.NDArray[np.bool_]) -> Column:
    if kind is Kind.UUID:
        return Column(_view(data, "V16", 16)[at].view(np.uint8).reshape(len(at), 16), valid)
    if kind is Kind.BOOL:
        return Column(np.frombuffer(data, dtype=np.uint8)[at] != 0, valid)
    if kind is Kind.INTERVAL:
        return _interval(data, at, valid)
    if kind is Kind.DATE:
        days32 = _view(data, ">i4", 4)[at].astype(np.int32)
        valid = valid & (days32 != _INT32_MIN) & (days32 != _INT32_MAX)  # ±infinity
        return Column(np.where(valid, days32 + PG_EPOCH_DAYS, 0).astype(np.int32), valid)
    if kind in (Kind.TIMESTAMPTZ, Kind.TIMESTAMP):
        micros = _view(data, ">i8", 8)[at].astype(np.int64)
        # -infinity, and infinity or any instant past what int64 microseconds since 1970
        # hold (PostgreSQL goes on to the year 294276): missing, never a wrapped value.
        valid = valid & (micros != _INT64_MIN) & (micros <= _INT64_MAX - PG_EPOCH_US)
        return Column(np.where(valid, micros + PG_EPOCH_US, 0), valid)
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
    return Column(values, valid)


def _interval(data: memoryview | bytes, at: npt.NDArray[np.int64], valid: npt.NDArray[np.bool_]) -> Column:
    """PostgreSQL's interval (int64 microseconds, int32 days, int32 months) as Arrow's month_day_nano.

    The fields stay apart, as PostgreSQL keeps them: a month is no fixed number of days.
    A time part too long for int64 nanoseconds (beyond ±292 years, as a ``sum`` of many
    intervals reaches) has its whole days carried into the days, which PostgreSQL counts
    as equal (``'24 hours' = '1 day'``); missing only if the days then overflow.
    """
    micros = np.where(valid, _view(data, ">i8", 8)[at], 0).astype(np.int64)
    days = np.where(valid, _view(data, ">i4", 4)[at + 8], 0).astype(np.int64)
    long = np.abs(micros) > _MAX_NANOSECOND_MICROS
    if long.any():
        carried = np.where(long, np.sign(micros) * (np.abs(micros) // _US_PER_DAY), 0)
        days += carried
        micros -= carried * _US_PER_DAY
        valid = valid & (days >= _INT32_MIN) & (days <= _INT32_MAX)
    values = np.zeros(len(at), dtype=MONTH_DAY_NANO)
    values["months"] = np.where(valid, _view(data, ">i4", 4)[at + 12], 0)
    values["days"] = np.where(valid, days, 0)
    values["nanoseconds"] = np.where(valid, micros * 1000, 0)
    return Column(values, valid)


def _numeric(data: memoryview | bytes, at: npt.NDArray[np.int64], valid: npt.NDArray[np.bool_]) -> Column:
    """PostgreSQL's binary numeric as the nearest float64 (±inf beyond its range, 0.0 below).

    A numeric is an int16 count of base-10000 digits, an int16 weight (the power of 10000
    of the first digit), an int16 sign (or NaN, ±Infinity), an int16 display scale, then
    the digits. Short ones are computed exactly in numpy; the others are written out as
    decimal text (``-DDDD…DDDDe+XXXXXX``) and parsed by Arrow, which rounds correctly
    whatever the number of digits: the same float64 PostgreSQL's own ``::float8`` gives.
    """
    # The header (count, weight, sign, display scale) and the first four digits, as two
    # big-endian words: two gathers, then shifts.
    header = np.where(valid, _view(data, ">u8", 8)[at], 0).astype(np.uint64)
    count = (header >> np.uint64(48)).astype(np.int64)
    sign = (header >> np.uint64(16) & np.uint64(0xFFFF)).astype(np.int64)
    values = np.zeros(len(at))
    known = (sign == _NUMERIC_POSITIVE) | (sign == _NUMERIC_NEGATIVE)
    for word, value in _NUMERIC_SPECIAL.items():
        special = sign == word
        values[special] = value
        known |= special
    if not known.all():
        raise CopyFormatError("a numeric value has an unknown sign")
    finite = np.flatnonzero((sign < 0xC000) & (count > 0))  # zero has no digits
    if not len(finite):
        return Column(values, valid)
    count = count[finite]
    weight = (header[finite] >> np.uint64(32) & np.uint64(0xFFFF)).astype(np.uint16).view(np.int16).astype(np.int64)
    negative = sign[finite] == _NUMERIC_NEGATIVE
    # Up to 4 digits are an integer below 10**16; when it is below 2**53 and the power of
    # ten at most 22, both are exact doubles and one multiplication or division rounds
    # correctly (Clinger's fast path): most numerics. The others are parsed as text.
    first = _view(data, ">u8", 8)[at[finite] + 8].astype(np.uint64)
    first >>= (np.uint64(16) * (4 - np.minimum(count, 4))).astype(np.uint64)  # only its own digits
    mantissa = np.zeros(len(finite), dtype=np.int64)
    for place in range(4):  # the last digit first
        mantissa += (first >> np.uint64(16 * place) & np.uint64(0xFFFF)).astype(np.int64) * 10_000**place
    exponent = 4 * (weight - count + 1)
    fast = (count <= 4) & (mantissa <= 2**53) & (np.abs(exponent) <= 22)
    scale = _POWERS_OF_TEN[np.minimum(np.abs(exponent), 22)]
    quick = np.where(exponent >= 0, mantissa * scale, mantissa / scale)
    values[finite] = np.where(negative, -quick, quick)
    slow = ~fast
    if slow.any():
        rest = finite[slow]
        values[rest] = _decimal_text(data, at[rest], count[slow], weight[slow], negative[slow])
    return Column(values, valid, unrepresentable=int(np.count_nonzero(np.isinf(values[finite]))))


def _decimal_text(
    data: memoryview | bytes,
    at: npt.NDArray[np.int64],
    count: npt.NDArray[np.int64],
    weight: npt.NDArray[np.int64],
    negative: npt.NDArray[np.bool_],
) -> npt.NDArray[np.float64]:
    """The numerics at ``at`` (``count`` digits each) parsed from their decimal text.

    Each is ``±000DDDD…DDDDe±HHLLLL``: its digits, then the power of ten of the last one's
    units (|power| < 270,000). Numerics of as many digits are the rows of one array of
    4-byte words, which Arrow reads as fixed-width strings.
    """
    int16 = _view(data, ">i2", 2)
    exponent = 4 * (weight - count + 1)
    magnitude = np.abs(exponent)
    high = magnitude // 10_000
    power = (ord("e") | np.where(exponent < 0, ord("-"), ord("+")) << 8 | (ord("0") + high // 10) << 16) | (
        ord("0") + high % 10
    ) << 24
    values = np.empty(len(at))
    for digits_count in np.unique(count).tolist():
        rows = np.flatnonzero(count == digits_count)
        digits = int16[(at[rows] + 8)[:, None] + np.arange(0, 2 * digits_count, 2)]
        if ((digits < 0) | (digits > 9_999)).any():
            raise CopyFormatError("a numeric value has a digit outside 0-9999")
        words = np.empty((len(rows), digits_count + 3), dtype="<u4")
        words[:, 0] = np.where(negative[rows], _MINUS_ZEROS, _PLUS_ZEROS)
        words[:, 1:-2] = _DIGIT_QUADS[digits]
        words[:, -2] = power[rows]
        words[:, -1] = _DIGIT_QUADS[magnitude[rows] % 10_000]
        width = 4 * (digits_count + 3)
        offsets = np.arange(0, width * len(rows) + 1, width, dtype=np.int64)
        strings = pa.Array.from_buffers(
            pa.large_string(), len(rows), [None, pa.py_buffer(offsets), pa.py_buffer(words)]
        )
        values[rows] = pc.cast(strings, pa.float64()).to_numpy()
    return values


def _text(
    data: memoryview | bytes,
    at: npt.NDArray[np.int64],
    length: npt.NDArray[np.int64],
    valid: npt.NDArray[np.bool_],
) -> Column:
    """Arrow ``string_view`` views of the text at (``at``, ``length``) in ``data``.

    A view is 16 bytes: an int32 length, then either the string itself (up to 12 bytes,
    zero padded) or its first 4 bytes, a buffer index and an int32 offset in that buffer.
    Offsets are int32, so ``data`` is seen through windows of ``2 * _WINDOW`` bytes starting
    every ``_WINDOW`` bytes: a string (at most 1 GiB in PostgreSQL) starting in window k
    ends inside it.
    """
    n = len(at)
    head = _view(data, "V12", 12)[at].view(np.uint8).reshape(n, 12)
    head *= np.arange(12) < length[:, None]
    words = head.view("<i4")  # (n, 3)
    short = length <= 12
    window = at // _WINDOW
    views = np.empty((n, 4), dtype="<i4")
    views[:, 0] = length
    views[:, 1] = words[:, 0]
    views[:, 2] = np.where(short, words[:, 1], window)
    views[:, 3] = np.where(short, words[:, 2], at - window * _WINDOW)
    buffer = pa.py_buffer(data)
    size = len(buffer)
    windows = [buffer.slice(start, min(2 * _WINDOW, size - start)) for start in range(0, size, _WINDOW)]
    return Column(views, valid, windows)


def _order(batches: Sequence[Batch], kinds: Sequence[Kind], order_by: Sequence[int]) -> npt.NDArray[np.int64]:
    keys: dict[str, pa.Array] = {}
    for index in order_by:
        kind = kinds[index]
        column = _merged([batch.columns[index] for batch in batches], None)
        if kind is Kind.UUID:  # compared as bytes, as PostgreSQL compares uuids
            bitmap, nulls = _validity(column.valid)
            keys[f"k{index}"] = pa.Array.from_buffers(
                pa.binary(16), len(column.valid), [bitmap, pa.py_buffer(column.values)], null_count=nulls
            )
        else:
            keys[f"k{index}"] = _arrow(kind, column)
    # Arrow places nulls last by default, and its sort is stable.
    indices = pc.sort_indices(pa.table(keys), sort_keys=[(name, "ascending") for name in keys])
    order: npt.NDArray[np.int64] = indices.to_numpy().astype(np.int64, copy=False)
    return order


def _merged(parts: Sequence[Column], order: npt.NDArray[np.int64] | None) -> Column:
    """The columns of several batches as one, its rows taken in ``order`` (if given)."""
    if len(parts) == 1:
        merged = parts[0]
    elif not parts:  # no rows: a zero-byte buffer serves every kind
        merged = Column(np.zeros((0, 16), dtype=np.uint8), np.zeros(0, dtype=bool))
    else:
        values = [part.values for part in parts]
        windows: list[pa.Buffer] = []
        if parts[0].windows:  # text
            # Each batch's long strings point into its own windows: renumber them.
            values = []
            for part in parts:
                views = part.values
                if windows:
                    views = views.copy()
                    views[views[:, 0] > 12, 2] += len(windows)
                values.append(views)
                windows += part.windows
        merged = Column(np.concatenate(values), np.concatenate([part.valid for part in parts]), windows)
    if order is None:
        return merged
    # np.take gathers whole rows at once; indexing a 2-D array row by row is ten times slower.
    return Column(np.take(merged.values, order, axis=0), merged.valid[order], merged.windows)


def _validity(valid: npt.NDArray[np.bool_]) -> tuple[pa.Buffer | None, int]:
    nulls = int(len(valid) - np.count_nonzero(valid))
    if not nulls:
        return None, 0
    return pa.py_buffer(np.packbits(valid, bitorder="little")), nulls


def _arrow(kind: Kind, column: Column) -> pa.Array:
    """The Arrow array of a decoded column (text copied out of the received bytes here)."""
    n = len(column.valid)
    bitmap, nulls = _validity(column.valid)
    if kind is Kind.TEXT:
        views = pa.Array.from_buffers(
            pa.string_view(), n, [bitmap, pa.py_buffer(column.values), *column.windows], null_count=nulls
        )
        return views.cast(pa.large_string())
    if kind is Kind.UUID:
        return _uuid_strings(column.values, column.valid, bitmap, nulls)
    values = np.packbits(column.values, bitorder="little") if kind is Kind.BOOL else column.values
    return pa.Array.from_buffers(ARROW_TYPE[kind], n, [bitmap, pa.py_buffer(values)], null_count=nulls)


def _uuid_strings(
    raw: npt.NDArray[np.uint8], valid: npt.NDArray[np.bool_], bitmap: pa.Buffer | None, nulls: int
) -> pa.Array:
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
    if nulls:
        offsets = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(np.where(valid, 36, 0), out=offsets[1:])
        text = text[valid]
    else:
        offsets = np.arange(0, 36 * n + 1, 36, dtype=np.int64)
    return pa.Array.from_buffers(
        pa.large_string(), n, [bitmap, pa.py_buffer(offsets), pa.py_buffer(text)], null_count=nulls
    )
