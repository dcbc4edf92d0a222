"""The binary COPY decoder against byte streams built here, field by field, as PostgreSQL sends them."""

from __future__ import annotations

import itertools
import math
import struct
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pyarrow as pa
import pytest

from todo_data import _pgcopy
from todo_data._pgcopy import ROW_MARK, CopyDecoder, CopyFormatError, Kind

PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
INFINITY = object()
MINUS_INFINITY = object()


def encode(kind: Kind, value: Any) -> bytes:
    """One field's bytes (without its length), as PostgreSQL's *send functions write them."""
    if kind in (Kind.TIMESTAMPTZ, Kind.TIMESTAMP):
        if value is INFINITY or value is MINUS_INFINITY:
            return struct.pack(">q", 2**63 - 1 if value is INFINITY else -(2**63))
        aware = value if value.tzinfo else value.replace(tzinfo=UTC)
        return struct.pack(">q", (aware - PG_EPOCH) // timedelta(microseconds=1))
    if kind is Kind.DATE:
        if value is INFINITY or value is MINUS_INFINITY:
            return struct.pack(">i", 2**31 - 1 if value is INFINITY else -(2**31))
        return struct.pack(">i", (value - date(2000, 1, 1)).days)
    if kind is Kind.INTERVAL:
        micros, days, months = value
        return struct.pack(">qii", micros, days, months)
    if kind is Kind.TEXT:
        return str(value).encode()
    if kind is Kind.UUID:
        return uuid.UUID(str(value)).bytes
    if kind is Kind.BOOL:
        return b"\x01" if value else b"\x00"
    code = {Kind.INT2: ">h", Kind.INT4: ">i", Kind.INT8: ">q", Kind.FLOAT4: ">f", Kind.FLOAT8: ">d"}[kind]
    return struct.pack(code, value)


def row(kinds: list[Kind], values: list[Any]) -> bytes:
    fields = b"".join(
        struct.pack(">i", -1) if value is None else struct.pack(">i", len(data := encode(kind, value))) + data
        for kind, value in zip(kinds, values, strict=True)
    )
    return struct.pack(">hii", len(kinds) + 1, 4, ROW_MARK) + fields


def stream(kinds: list[Kind], rows: list[list[Any]], *, extension: bytes = b"") -> bytes:
    header = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, len(extension)) + extension
    return header + b"".join(row(kinds, values) for values in rows) + b"\xff\xff"


def decode(
    data: bytes,
    kinds: list[Kind],
    *,
    chunks: list[int] | None = None,
    batch_rows: int = 3,
    order_by: tuple[int, ...] = (),
) -> list[pa.ChunkedArray]:
    decoder = CopyDecoder(kinds, batch_rows=batch_rows, order_by=order_by)
    cuts = [0, *(chunks or []), len(data)]
    for start, end in itertools.pairwise(cuts):
        decoder.feed(data[start:end])
    decoder.finish()
    return decoder.columns()


EVERY_KIND = list(Kind)


@pytest.fixture(params=[1, 13, 1 << 18], ids=["search-every-byte", "search-every-13", "search-at-the-end"])
def search_block(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> int:
    """How many new bytes make the decoder search for rows (the real size only at the end here)."""
    monkeypatch.setattr(_pgcopy, "_SEARCH_BLOCK", request.param)
    return int(request.param)


SAMPLE_ROWS: list[list[Any]] = [
    [
        -32768,
        2**31 - 1,
        -(2**63),
        1.5,
        -0.1,
        True,
        "héllo, 🚀",
        "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
        datetime(2024, 2, 29, 23, 59, 59, 999_999, tzinfo=UTC),
        datetime(1999, 12, 31, 23, 59, 59, 1),
        date(1970, 1, 1),
        (1_500_000, 2, 1),
    ],
    [None] * 12,
    [
        7,
        0,
        2**63 - 1,
        math.inf,
        math.nan,
        False,
        "x" * 13,
        "00000000-0000-0000-0000-000000000000",
        INFINITY,
        MINUS_INFINITY,
        INFINITY,
        (-1, 0, 0),
    ],
    [
        1,
        1,
        1,
        -1.0,
        1e308,
        False,
        "",
        "ffffffff-ffff-ffff-ffff-ffffffffffff",
        MINUS_INFINITY,
        INFINITY,
        MINUS_INFINITY,
        (0, 0, -1),
    ],
]


def test_every_kind_decodes_to_its_arrow_type_with_nulls_and_infinities() -> None:
    arrays = decode(stream(EVERY_KIND, SAMPLE_ROWS), EVERY_KIND)
    columns = {kind: array.to_pylist() for kind, array in zip(EVERY_KIND, arrays, strict=True)}
    assert [array.type for array in arrays] == [
        pa.int64(),
        pa.int64(),
        pa.int64(),
        pa.float64(),
        pa.float64(),
        pa.bool_(),
        pa.large_string(),
        pa.large_string(),
        pa.timestamp("us", tz="UTC"),
        pa.timestamp("us"),
        pa.date32(),
        pa.duration("us"),
    ]
    assert columns[Kind.INT2] == [-32768, None, 7, 1]
    assert columns[Kind.INT4] == [2**31 - 1, None, 0, 1]
    assert columns[Kind.INT8] == [-(2**63), None, 2**63 - 1, 1]
    assert columns[Kind.FLOAT4] == [1.5, None, math.inf, -1.0]
    assert columns[Kind.FLOAT8][0] == -0.1 and columns[Kind.FLOAT8][1] is None
    assert math.isnan(columns[Kind.FLOAT8][2]) and columns[Kind.FLOAT8][3] == 1e308
    assert columns[Kind.BOOL] == [True, None, False, False]
    assert columns[Kind.TEXT] == ["héllo, 🚀", None, "x" * 13, ""]
    assert columns[Kind.UUID] == [
        "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
        None,
        "00000000-0000-0000-0000-000000000000",
        "ffffffff-ffff-ffff-ffff-ffffffffffff",
    ]
    # ±infinity is missing, never a wrapped date.
    assert columns[Kind.TIMESTAMPTZ] == [datetime(2024, 2, 29, 23, 59, 59, 999_999, tzinfo=UTC), None, None, None]
    assert columns[Kind.TIMESTAMP] == [datetime(1999, 12, 31, 23, 59, 59, 1), None, None, None]
    assert columns[Kind.DATE] == [date(1970, 1, 1), None, None, None]
    # A month counts 30 days, as PostgreSQL's extract(epoch from interval) does.
    assert columns[Kind.INTERVAL] == [
        timedelta(days=32, seconds=1.5),
        None,
        timedelta(microseconds=-1),
        timedelta(days=-30),
    ]


def test_chunk_boundaries_at_every_position_give_the_same_columns(search_block: int) -> None:
    kinds = [Kind.INT4, Kind.TEXT, Kind.UUID, Kind.TEXT, Kind.TIMESTAMPTZ]
    rows = [
        [i, "t" * (i * 5 % 17), str(uuid.UUID(int=i)), None if i % 3 else f"d{i}", datetime(2025, 1, 1, tzinfo=UTC)]
        for i in range(7)
    ]
    data = stream(kinds, rows, extension=b"ext")
    expected = [array.to_pylist() for array in decode(data, kinds)]
    for cut in range(1, len(data)):
        assert [array.to_pylist() for array in decode(data, kinds, chunks=[cut])] == expected, cut
    # And one byte at a time, with batches of every size.
    for batch_rows in (1, 2, 7, 100):
        one_by_one = decode(data, kinds, chunks=list(range(1, len(data))), batch_rows=batch_rows)
        assert [array.to_pylist() for array in one_by_one] == expected


def test_long_text_spans_batches_and_keeps_every_byte(search_block: int) -> None:
    texts = ["", "short", "exactly12byt", "thirteen byte", "é" * 3000, "mixed 🚀 " * 100]
    arrays = decode(stream([Kind.TEXT], [[text] for text in texts * 5]), [Kind.TEXT], batch_rows=4)
    assert arrays[0].to_pylist() == texts * 5
    assert arrays[0].type == pa.large_string()


def test_every_kind_keeps_its_values_when_rows_are_reordered() -> None:
    data = stream(EVERY_KIND, SAMPLE_ROWS)
    received = decode(data, EVERY_KIND)
    ordered = decode(data, EVERY_KIND, order_by=(0,))  # int2: -32768, NULL, 7, 1
    assert [array.type for array in ordered] == [array.type for array in received]
    # Compared as text: NaN is a value here.
    assert [str(array.to_pylist()) for array in ordered] == [
        str([array.to_pylist()[i] for i in (0, 3, 2, 1)]) for array in received
    ]


@pytest.mark.parametrize("order_by", [(), (8, 7)], ids=["as-received", "ordered"])
def test_no_rows_give_empty_typed_arrays(order_by: tuple[int, ...]) -> None:
    arrays = decode(stream(EVERY_KIND, []), EVERY_KIND, order_by=order_by)
    assert [len(array) for array in arrays] == [0] * len(EVERY_KIND)
    assert [array.type for array in arrays] == [_pgcopy.ARROW_TYPE[kind] for kind in EVERY_KIND]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"NOT A COPY STREAM AT ALL", "not a PostgreSQL binary COPY"),
        (stream([Kind.INT4], [[1], [2]])[:-3], "ended early"),
        (stream([Kind.INT4], [[1]]) + b"\x00", "ended early or has trailing data"),
        # Rows of two fields where one was expected: no row mark matches.
        (stream([Kind.INT4, Kind.INT4], [[1, 2]]), "do not follow one another"),
        # An int8 where the query promised an int4: the field lengths disagree with the kinds.
        (stream([Kind.INT8], [[1]]), "do not follow one another"),
    ],
)
def test_broken_streams_are_refused(data: bytes, message: str) -> None:
    with pytest.raises(CopyFormatError, match=message):
        decode(data, [Kind.INT4])


def test_values_that_imitate_the_row_mark_are_not_taken_for_rows(search_block: int) -> None:
    # An int8 ending in 00 03, then an int4 length word and the mark's value: the ten bytes
    # of a row mark for three fields appear inside the row itself.
    kinds = [Kind.INT8, Kind.INT4]
    rows = [[3, ROW_MARK]] * 5 + [[7, 1], [3, ROW_MARK]]
    data = stream(kinds, rows)
    assert data.count(struct.pack(">hii", 3, 4, ROW_MARK)) == 2 * len(rows) - 1
    for cut in range(1, len(data)):
        for batch_rows in (1, 3):
            arrays = decode(data, kinds, chunks=[cut], batch_rows=batch_rows)
            assert [array.to_pylist() for array in arrays] == [list(column) for column in zip(*rows, strict=True)]


def test_text_beyond_the_first_window_of_a_batch_is_read_correctly(monkeypatch: pytest.MonkeyPatch) -> None:
    # Real windows are 1 GiB; 64-byte windows over texts of up to 40 bytes exercise the
    # same arithmetic (long strings in later windows, in later batches, reordered).
    monkeypatch.setattr(_pgcopy, "_WINDOW", 64)
    texts = [("abcdefghij" * 4)[: i * 7 % 41] for i in range(60)]
    kinds = [Kind.INT8, Kind.TEXT]
    rows = [[-i, text] for i, text in enumerate(texts)]
    assert decode(stream(kinds, rows), kinds, batch_rows=7)[1].to_pylist() == texts
    ordered = decode(stream(kinds, rows), kinds, batch_rows=7, order_by=(0,))
    assert ordered[1].to_pylist() == texts[::-1]


@pytest.mark.parametrize("batch_rows", [1, 4, 100])
def test_rows_are_ordered_as_postgresql_orders_them(batch_rows: int) -> None:
    # ORDER BY a timestamp then a uuid: ascending, NULLs last (±infinity reads as NULL, so
    # last too), uuids byte by byte; the text follows its row.
    kinds = [Kind.UUID, Kind.TEXT, Kind.TIMESTAMPTZ]
    t0 = datetime(2025, 1, 1, tzinfo=UTC)
    ids = [None, *(str(uuid.UUID(int=i << 120 | i)) for i in (9, 1, 200, 3, 128, 7, 2))]
    times = [t0, t0, t0 + timedelta(microseconds=1), None, INFINITY, MINUS_INFINITY, t0 - timedelta(days=1), t0]
    rows = [[id_, f"row {i} " * i, time] for i, (id_, time) in enumerate(zip(ids, times, strict=True))]

    def key(row: list[Any]) -> tuple[Any, ...]:
        time = row[2] if isinstance(row[2], datetime) else None
        return (time is None, time or t0, row[0] is None, uuid.UUID(row[0]).bytes if row[0] else b"")

    expected = sorted(rows, key=key)
    arrays = decode(stream(kinds, rows), kinds, chunks=[50, 51, 300], batch_rows=batch_rows, order_by=(2, 0))
    assert arrays[0].to_pylist() == [row[0] for row in expected]
    assert arrays[1].to_pylist() == [row[1] for row in expected]
    assert [array.num_chunks for array in arrays] == [1, 1, 1]
    with pytest.raises(ValueError, match="collation"):
        CopyDecoder(kinds, order_by=(1,))
