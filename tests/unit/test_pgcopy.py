"""The binary COPY decoder against byte streams built here, field by field, as PostgreSQL sends them."""

from __future__ import annotations

import itertools
import math
import struct
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from todo_data.queries import _pgcopy
from todo_data.queries._pgcopy import ROW_MARK, CopyDecoder, CopyFormatError, Kind

PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
INFINITY = object()
MINUS_INFINITY = object()


def numeric_bytes(value: Decimal) -> bytes:
    """A numeric as PostgreSQL's numeric_send writes it: digit count, weight, sign, display
    scale, then base-10000 digits (no leading or trailing zero digits)."""
    if value.is_nan():
        return struct.pack(">hhHh", 0, 0, 0xC000, 0)
    if value.is_infinite():
        return struct.pack(">hhHh", 0, 0, 0xF000 if value < 0 else 0xD000, 0)
    sign, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)
    scale = max(-exponent, 0)
    shift = exponent % 4  # so that the power of ten is a multiple of 4
    whole = int("".join(map(str, digits)) or "0") * 10**shift
    power = (exponent - shift) // 4
    groups: list[int] = []
    while whole:
        whole, group = divmod(whole, 10_000)
        groups.insert(0, group)
    weight = len(groups) - 1 + power
    while groups and groups[-1] == 0:
        groups.pop()
    if not groups:
        return struct.pack(">hhHh", 0, 0, 0, scale)
    return struct.pack(f">hhHh{len(groups)}h", len(groups), weight, 0x4000 if sign else 0, scale, *groups)


def encode(kind: Kind, value: Any) -> bytes:
    """One field's bytes (without its length), as PostgreSQL's *send functions write them."""
    if kind is Kind.NUMERIC:
        return numeric_bytes(Decimal(value))
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
        "12.345",
    ],
    [None] * 13,
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
        "1e400",
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
        "-Infinity",
    ],
]


def test_every_kind_decodes_to_its_arrow_type_with_nulls_and_infinities() -> None:
    decoder = CopyDecoder(EVERY_KIND, batch_rows=3)
    decoder.feed(stream(EVERY_KIND, SAMPLE_ROWS))
    decoder.finish()
    arrays = decoder.columns()
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
        pa.month_day_nano_interval(),
        pa.float64(),
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
    # Months, days and time stay apart: a month is no fixed number of days.
    assert columns[Kind.INTERVAL] == [
        pa.MonthDayNano([1, 2, 1_500_000_000]),
        None,
        pa.MonthDayNano([0, 0, -1000]),
        pa.MonthDayNano([-1, 0, 0]),
    ]
    assert columns[Kind.NUMERIC] == [12.345, None, math.inf, -math.inf]
    # What the Arrow types cannot hold is counted, per column: ±infinity, 1e400.
    counted = dict(zip(EVERY_KIND, decoder.unrepresentable, strict=True))
    assert {kind: count for kind, count in counted.items() if count} == {
        Kind.TIMESTAMPTZ: 2,
        Kind.TIMESTAMP: 2,
        Kind.DATE: 2,
        Kind.NUMERIC: 1,
    }


def test_chunk_boundaries_at_every_position_give_the_same_columns(search_block: int) -> None:
    kinds = [Kind.INT4, Kind.TEXT, Kind.UUID, Kind.TEXT, Kind.TIMESTAMPTZ, Kind.NUMERIC]
    rows = [
        [
            i,
            "t" * (i * 5 % 17),
            str(uuid.UUID(int=i)),
            None if i % 3 else f"d{i}",
            datetime(2025, 1, 1, tzinfo=UTC),
            None if i == 4 else f"{i}e{i * 7}",
        ]
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


NUMERICS = [
    "0",
    "0.000",
    "-0",
    "12.345",
    "-0.001",
    "0.1",
    "99999999",
    "9007199254740992",  # 2**53: still computed exactly
    "9007199254740993",  # 2**53 + 1: halfway, rounds to even (parsed as text)
    "9007199254740991e-22",  # the fast path's smallest power of ten...
    "9007199254740991e-23",  # ... and beyond it
    "1e22",
    "1e23",  # not a double: rounds
    "0.0001",
    "-12.5e-20",
    "12345678901234567",  # five base-10000 digits
    "9007199254740993" + "0" * 1000 + "1e-1001",  # a hair above halfway, 1000 digits later
    "123456789.123456789012345678901234567890",
    "1.7976931348623157e308",  # float64's largest
    "1.7976931348623158e308",  # still rounds to it
    "1.7976931348623159e308",  # beyond: +inf
    "1e400",
    "-1e400",
    "4.9406564584124654e-324",  # the smallest subnormal
    "2e-324",  # rounds to 0.0
    "1e-400",
    "9e131071",  # PostgreSQL's largest weight
    "1e-16383",  # and its smallest display scale
    "NaN",
    "Infinity",
    "-Infinity",
]


def nearest_float(value: Decimal) -> float:
    """Python's float(Decimal) rounds correctly, as PostgreSQL's numeric::float8 does; a
    numeric has no negative zero."""
    return 0.0 if value == 0 else float(value)


def same_float(a: float | None, b: float) -> bool:
    return a is not None and (
        (a == b and math.copysign(1, a) == math.copysign(1, b)) or (math.isnan(a) and math.isnan(b))
    )


@pytest.mark.parametrize("text", NUMERICS)
def test_a_numeric_reads_as_the_nearest_float_never_failing(text: str) -> None:
    # Out of float64's range a numeric reads as ±inf or 0.0.
    (array,) = decode(stream([Kind.NUMERIC], [[text]]), [Kind.NUMERIC])
    assert same_float(array.to_pylist()[0], nearest_float(Decimal(text))), array.to_pylist()


@given(
    st.lists(
        st.one_of(
            st.none(),
            st.decimals(allow_nan=False, allow_infinity=True),
            st.just(Decimal("NaN")),
            st.builds(lambda digits, exponent: Decimal(f"{digits}e{exponent}"), st.integers(), st.integers(-400, 400)),
        ),
        max_size=20,
    )
)
def test_numerics_of_any_size_and_scale_read_as_the_nearest_float(values: list[Decimal | None]) -> None:
    (array,) = decode(stream([Kind.NUMERIC], [[value] for value in values]), [Kind.NUMERIC], batch_rows=7)
    for got, value in zip(array.to_pylist(), values, strict=True):
        assert got is None if value is None else same_float(got, nearest_float(value)), (got, value)


def test_a_numeric_field_shorter_than_its_digits_or_of_an_unknown_sign_is_refused() -> None:
    good = stream([Kind.NUMERIC], [["12.5"]])
    short = good.replace(struct.pack(">i", 12) + numeric_bytes(Decimal("12.5")), struct.pack(">i", 10) + b"\0" * 10)
    with pytest.raises(CopyFormatError, match="do not follow one another"):
        decode(short, [Kind.NUMERIC])
    with pytest.raises(CopyFormatError, match="unknown sign"):
        decode(
            good.replace(struct.pack(">H", 0x0000) + struct.pack(">h", 1), struct.pack(">Hh", 0x8000, 1)),
            [Kind.NUMERIC],
        )


def test_an_interval_time_beyond_int64_nanoseconds_is_carried_into_its_days() -> None:
    # A sum of many intervals keeps growing its time part: 2**62 microseconds is 146,000
    # years of hours, more than Arrow's int64 nanoseconds hold.
    day = 86_400_000_000
    rows = [[(2**62, 5, 7)], [(-(2**62), -5, -7)], [(2**63 - 1, 2**31 - 1, 0)], [(2**53, 0, 0)]]
    decoder = CopyDecoder([Kind.INTERVAL])
    decoder.feed(stream([Kind.INTERVAL], rows))
    decoder.finish()
    (array,) = decoder.columns()
    carried, negative, overflowing, kept = array.to_pylist()
    assert (carried.months, carried.days) == (7, 5 + 2**62 // day)
    assert carried.days * day + carried.nanoseconds // 1000 == 2**62 + 5 * day
    assert (negative.months, negative.days, negative.nanoseconds) == (-7, -carried.days, -carried.nanoseconds)
    assert overflowing is None and decoder.unrepresentable == [1]  # days beyond int32 once carried
    assert kept == pa.MonthDayNano([0, 0, 2**53 * 1000])
