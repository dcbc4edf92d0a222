"""Seeded random queries over every type ``queries.sql`` documents, checked against asyncpg.

A :class:`Case` is one ``SELECT … FROM (VALUES …)`` of a few columns of random types and
0, 1, a few or thousands of rows: NULLs, each type's extremes, values on both sides of
what pandas and Polars hold, and values whose bytes imitate the binary COPY row mark (an
``int4`` equal to it, an ``int8``, ``float8`` or ``uuid`` holding its bytes). asyncpg
fetches the same rows with its own decoding (dates, timestamps and intervals as its raw
``tuple`` format, numerics as ``Decimal``, other types as PostgreSQL's text); from those,
plain Python computes what each output must hold, by the rules the README documents, and
:func:`check` compares it value by value and dtype by dtype with what ``queries.sql`` and
``iter_sql`` return, and the warnings with the values lost.

Used by ``tests/integration/test_sql_differential.py`` (a fixed seed, a few dozen cases)
and ``benchmarks/differential.py`` (as many as asked).
"""

from __future__ import annotations

import json
import math
import random
import re
import struct
import uuid
import warnings
from collections import Counter
from collections.abc import Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
from sqlalchemy.ext.asyncio import AsyncEngine

from todo_data import TodoDataWarning, queries

ROW_MARK = 0xA5FE
EPOCH_2000_US = 946_684_800_000_000  # PostgreSQL counts from 2000-01-01
EPOCH_2000_DAYS = 10_957
INT32 = (-(2**31), 2**31 - 1)
INT64 = (-(2**63), 2**63 - 1)
DAY_US = 86_400_000_000
# What pandas shows (Python's datetime: the years 1 to 9999) and Polars (chrono: the
# years -262143 to 262142), as days and microseconds since 1970.
PANDAS_DAYS = ((date.min - date(1970, 1, 1)).days, (date.max - date(1970, 1, 1)).days)
PANDAS_US = (
    (datetime.min - datetime(1970, 1, 1)) // timedelta(microseconds=1),
    (datetime.max - datetime(1970, 1, 1)) // timedelta(microseconds=1),
)
POLARS_DAYS = (-96_465_292, 95_026_236)
POLARS_US = (POLARS_DAYS[0] * DAY_US, (POLARS_DAYS[1] + 1) * DAY_US - 1)


@dataclass(frozen=True)
class PgType:
    """A type ``queries.sql`` documents: how to write random values of it, and how it reads."""

    sql: str
    family: str  # int, float, numeric, bool, text, uuid, timestamptz, timestamp, date, interval, other
    literal: Callable[[random.Random, bytes], str]  # a random value as SQL text (the mark's bytes given)


def quoted(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _pick(rng: random.Random, extremes: list[Any], ordinary: Callable[[], Any]) -> Any:
    return rng.choice(extremes) if rng.random() < 0.5 else ordinary()


def _int(bits: int) -> Callable[[random.Random, bytes], str]:
    low, high = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1

    def literal(rng: random.Random, mark: bytes) -> str:
        imitations = [int.from_bytes(mark[i : i + bits // 8], "big", signed=True) for i in range(0, 10 - bits // 8 + 1)]
        return str(
            _pick(
                rng,
                [low, high, 0, -1, 1, 4, ROW_MARK if bits > 16 else -23042, *imitations],
                lambda: rng.randint(low, high),
            )
        )

    return literal


def _float(bits: int) -> Callable[[random.Random, bytes], str]:
    extremes = ["'NaN'", "'Infinity'", "'-Infinity'", "0", "'-0'", "1.5"]
    if bits == 64:
        extremes += ["1.7976931348623157e308", "5e-324", "2.2250738585072014e-308", "0.1", "-1e-300"]
    else:
        extremes += ["3.4028235e38", "1.4e-45", "-1.1754944e-38"]

    def literal(rng: random.Random, mark: bytes) -> str:
        if bits == 64 and rng.random() < 0.1:  # the bytes of the mark, as a double
            value = struct.unpack(">d", mark[:8])[0]
            return repr(value) if math.isfinite(value) else "0"
        scale = 300 if bits == 64 else 30
        return str(_pick(rng, extremes, lambda: repr(rng.uniform(-1, 1) * 10 ** rng.randint(-scale, scale))))

    return literal


def _numeric(rng: random.Random, mark: bytes) -> str:
    extremes = [
        "NaN", "Infinity", "-Infinity", "1e400", "-1e400", "1e-400", "0", "-0", "9007199254740993",
        "1.7976931348623157e308", "1.7976931348623159e308", "4.9e-324", "9e131071", "-1e-16383", "0.1",
        "1" + "0" * 300 + ".5", "-" + "9" * 60,
    ]  # fmt: skip

    def ordinary() -> str:
        digits = "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 40)))
        return f"{rng.choice(['', '-'])}{digits}e{rng.randint(-330, 330)}"

    return quoted(_pick(rng, extremes, ordinary))


def _text(rng: random.Random, mark: bytes, *, longest: int = 3000) -> str:
    alphabet = "ab Z09'\"\\\t\n,;:$é🚀中\u2028"
    length = rng.choice([0, 1, 5, 12, 13, 40, longest]) if rng.random() < 0.3 else rng.randint(0, 20)
    return quoted("".join(rng.choice(alphabet) for _ in range(min(length, longest))))


def _json(rng: random.Random, mark: bytes) -> str:
    def value(depth: int) -> Any:
        kind = rng.randint(0, 5 if depth < 3 else 3)
        if kind == 0:
            return rng.randint(-(10**20), 10**20)
        if kind == 1:
            return rng.choice([True, False, None, 1.5, "x"])
        if kind == 2:
            return "".join(rng.choice("ab'\"é\\") for _ in range(rng.randint(0, 5)))
        if kind == 3:
            return rng.random()
        if kind == 4:
            return [value(depth + 1) for _ in range(rng.randint(0, 3))]
        return {f"k{i}": value(depth + 1) for i in range(rng.randint(0, 3))}

    return quoted(json.dumps(value(0), ensure_ascii=rng.random() < 0.5))


def _uuid(rng: random.Random, mark: bytes) -> str:
    imitating = uuid.UUID(bytes=mark + bytes(6))  # the whole row mark inside a value
    extremes = [uuid.UUID(int=0), uuid.UUID(int=2**128 - 1), imitating, uuid.UUID(bytes=bytes(6) + mark)]
    return quoted(str(_pick(rng, extremes, lambda: uuid.UUID(int=rng.getrandbits(128)))))


def _moment(rng: random.Random, *, time: bool, zone: bool) -> str:
    year = rng.choice([rng.randint(1, 9999), rng.randint(1, 4713), rng.randint(10000, 294275)])
    era = " BC" if year <= 4713 and rng.random() < 0.1 else ""  # PostgreSQL begins in 4714 BC
    text = f"{year:04d}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
    if time:
        text += (
            f" {rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}.{rng.randint(0, 999_999):06d}"
        )
        text += "+00" if zone else ""
    return text + era


def _timestamp(zone: bool) -> Callable[[random.Random, bytes], str]:
    offset = "+00" if zone else ""
    extremes = [
        "infinity", "-infinity", f"4714-11-24 00:00:00{offset} BC", f"294276-12-31 23:59:59.999999{offset}",
        f"0001-01-01 00:00:00{offset}", f"0001-12-31 23:59:59.999999{offset} BC",  # pandas' first, and 1 µs before
        f"9999-12-31 23:59:59.999999{offset}", f"10000-01-01 00:00:00{offset}",  # its last, and 1 µs after
        f"262142-12-31 23:59:59.999999{offset}", f"262143-01-01 00:00:00{offset}",  # Polars' last, and after
        f"294247-01-10 04:00:54.775807{offset}", f"294247-01-10 04:00:54.775808{offset}",  # Arrow's last, and after
        f"2000-01-01 00:00:00{offset}", f"1970-01-01 00:00:00{offset}",
    ]  # fmt: skip

    def literal(rng: random.Random, mark: bytes) -> str:
        return quoted(_pick(rng, extremes, lambda: _moment(rng, time=True, zone=zone)))

    return literal


def _date(rng: random.Random, mark: bytes) -> str:
    extremes = [
        "infinity", "-infinity", "4714-11-24 BC", "5874897-12-31", "0001-01-01", "0001-12-31 BC",
        "9999-12-31", "10000-01-01", "262142-12-31", "262143-01-01", "2000-01-01",
    ]  # fmt: skip
    return quoted(_pick(rng, extremes, lambda: _moment(rng, time=False, zone=False)))


def _interval(rng: random.Random, mark: bytes) -> str:
    extremes = [
        (0, 0, 0), (12, 0, 0), (1, 0, 0), (-13, 3, 0), (-1, 40, -1), (3_600_000, 0, 0), (3_480_000, 0, 0),
        (INT32[0], INT32[0], -INT64[1]), (INT32[1], INT32[1], INT64[1]), (0, 0, 2**62), (0, 5, -(2**62)),
        (0, 0, int.from_bytes(mark[:8], "big", signed=True)),
    ]  # fmt: skip

    def ordinary() -> tuple[int, int, int]:
        return rng.randint(-50_000, 50_000), rng.randint(-(10**6), 10**6), rng.randint(-(10**16), 10**16)

    months, days, micros = _pick(rng, extremes, ordinary)
    return quoted(f"{months} mons {days} days {micros} microseconds")


def _other(values: list[str]) -> Callable[[random.Random, bytes], str]:
    return lambda rng, mark: rng.choice(values)


TYPES = [
    PgType("smallint", "int", _int(16)),
    PgType("integer", "int", _int(32)),
    PgType("bigint", "int", _int(64)),
    PgType("real", "float", _float(32)),
    PgType("double precision", "float", _float(64)),
    PgType("numeric", "numeric", _numeric),
    PgType("boolean", "bool", lambda rng, mark: rng.choice(["true", "false"])),
    PgType("text", "text", _text),
    PgType("varchar(40)", "text", lambda rng, mark: _text(rng, mark, longest=40)),
    PgType("char(3)", "text", lambda rng, mark: quoted(rng.choice(["", "a", "ab", "abc", "é"]))),
    PgType("json", "text", _json),
    PgType("jsonb", "text", _json),
    PgType("uuid", "uuid", _uuid),
    PgType("timestamptz", "timestamptz", _timestamp(zone=True)),
    PgType("timestamp", "timestamp", _timestamp(zone=False)),
    PgType("date", "date", _date),
    PgType("interval", "interval", _interval),
    PgType("integer[]", "other", _other(["'{1,NULL,-2147483648}'", "'{}'", "'{{1,2},{3,4}}'"])),
    PgType("numeric[]", "other", _other(["'{1e400,NaN,NULL,-0}'", "'{Infinity}'"])),
    PgType("date[]", "other", _other(["'{5874897-12-31,infinity,NULL}'", "'{2000-01-01}'"])),
    PgType("interval[]", "other", _other(['\'{"300000 years",NULL,"-1 mons +3 days"}\''])),
    PgType("bytea", "other", _other(["'\\x0000a5fe'", "'\\x'", "'\\x000400000000a5fe'"])),
    PgType("inet", "other", _other(["'192.168.0.1/24'", "'::1'"])),
    PgType("time", "other", _other(["'24:00:00'", "'00:00:00.000001'"])),
]


@dataclass(frozen=True)
class Case:
    """One query: its columns' types and its rows of SQL literals (None for NULL)."""

    types: tuple[PgType, ...]
    rows: tuple[tuple[str | None, ...], ...]
    chunk_size: int
    search_block: int

    @property
    def names(self) -> list[str]:
        return [f"c{index}" for index in range(len(self.types))]

    def sql(self) -> str:
        def row(values: tuple[str | None, ...]) -> str:
            cells = (f"CAST({value or 'NULL'} AS {pg.sql})" for value, pg in zip(values, self.types, strict=True))
            return f"({', '.join(cells)})"

        rows = self.rows or (tuple(None for _ in self.types),)
        values = ",\n".join(row(values) for values in rows)
        where = "" if self.rows else " WHERE false"
        return f"SELECT * FROM (VALUES {values}) AS v({', '.join(self.names)}){where}"

    def reference_sql(self) -> str:
        """The same rows, other types as PostgreSQL's text (what ``queries.sql`` documents for them)."""
        columns = [
            f"{name}::text" if pg.family == "other" else name for name, pg in zip(self.names, self.types, strict=True)
        ]
        return f"SELECT {', '.join(columns)} FROM ({self.sql()}) AS q"


def generate(rng: random.Random, *, many: int = 2500, first: PgType | None = None) -> Case:
    """A random case: 1 to 6 columns (the first of type ``first`` if given); 0, 1, a few
    or up to ``many`` rows; 15% NULLs."""
    types = tuple(rng.choice(TYPES) for _ in range(rng.randint(1, 6)))
    if first is not None:
        types = (first, *types[1:])
    mark = struct.pack(">hii", len(types) + 1, 4, ROW_MARK)
    count = rng.choice([0, 1, 1, 2, rng.randint(3, 60), rng.randint(3, 60), rng.randint(many // 5, many)])
    rows = tuple(tuple(None if rng.random() < 0.15 else pg.literal(rng, mark) for pg in types) for _ in range(count))
    chunk = rng.choice([1, 2, 7, 64, 4096]) if count <= 60 else rng.choice([64, 999, 4096])
    return Case(types, rows, chunk, rng.choice([1 << 8, 1 << 12, 1 << 18]))


# -- what each output must hold ------------------------------------------------------------------

ARROW_TYPES = {
    "int": pa.int64(),
    "float": pa.float64(),
    "numeric": pa.float64(),
    "bool": pa.bool_(),
    "text": pa.large_string(),
    "uuid": pa.large_string(),
    "other": pa.large_string(),
    "timestamptz": pa.timestamp("us", tz="UTC"),
    "timestamp": pa.timestamp("us"),
    "date": pa.date32(),
    "interval": pa.month_day_nano_interval(),
}
PANDAS_DTYPES = {
    "int": "int64",
    "float": "float64",
    "numeric": "float64",
    "bool": "bool",
    "text": "str",
    "uuid": "str",
    "other": "str",
    "timestamptz": "datetime64[us, UTC]",
    "timestamp": "datetime64[us]",
    "date": "date32[day][pyarrow]",
    "interval": "timedelta64[us]",
}
POLARS_DTYPES = {
    "int": pl.Int64,
    "float": pl.Float64,
    "numeric": pl.Float64,
    "bool": pl.Boolean,
    "text": pl.String,
    "uuid": pl.String,
    "other": pl.String,
    "timestamptz": pl.Datetime("us", "UTC"),
    "timestamp": pl.Datetime("us"),
    "date": pl.Date,
    "interval": pl.Duration("us"),
}


def arrow_value(family: str, value: Any) -> Any:
    """What Arrow holds for asyncpg's value: temporal values as integers since 1970."""
    if value is None:
        return None
    if family == "numeric":
        return 0.0 if value == 0 else float(value)  # correctly rounded, as numeric::float8; no -0
    if family in ("uuid",):
        return str(value)
    if family in ("timestamptz", "timestamp"):
        (micros,) = value
        since_1970 = micros + EPOCH_2000_US
        return since_1970 if micros != INT64[0] and since_1970 <= INT64[1] else None
    if family == "date":
        (days,) = value
        return None if days in INT32 else days + EPOCH_2000_DAYS
    if family == "interval":
        months, days, micros = value
        if abs(micros) * 1000 > INT64[1]:  # carried into days, which PostgreSQL counts as equal
            carried = abs(micros) // DAY_US * (1 if micros > 0 else -1)
            days, micros = days + carried, micros - carried * DAY_US
            if not INT32[0] <= days <= INT32[1]:
                return None
        return (months, days, micros * 1000)
    return value


def epoch_micros(months: int, days: int, nanos: int) -> int | None:
    """PostgreSQL's extract(epoch FROM interval), in microseconds: a year 365.25 days, a month 30."""
    years = abs(months) // 12 * (1 if months >= 0 else -1)  # C's division: toward zero
    total = ((years * 1461 + (months - years * 12) * 120 + days * 4) * 21_600) * 1_000_000 + nanos // 1000
    return total if INT64[0] < total <= INT64[1] else None


def within(value: int | None, bounds: tuple[int, int]) -> int | None:
    return value if value is not None and bounds[0] <= value <= bounds[1] else None


def frame_value(family: str, value: Any, output: str) -> Any:
    """What pandas (``output="pandas"``) or Polars holds for the Arrow value."""
    if value is None:
        return None
    days, micros = (PANDAS_DAYS, PANDAS_US) if output == "pandas" else (POLARS_DAYS, POLARS_US)
    if family == "date":
        return within(value, days)
    if family in ("timestamptz", "timestamp"):
        return within(value, micros)
    if family == "interval":
        return epoch_micros(*value)
    return value


def same(a: Any, b: Any) -> bool:
    """Equal, NaN equal to NaN, -0.0 not equal to 0.0, a bool never equal to an int."""
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a) == math.copysign(1, b))
    if isinstance(a, bool | np.bool_) != isinstance(b, bool | np.bool_):
        return False
    return bool(a == b)


def arrow_values(column: pa.ChunkedArray) -> list[Any]:
    if pa.types.is_timestamp(column.type) or pa.types.is_date32(column.type):
        return column.cast(pa.int64() if pa.types.is_timestamp(column.type) else pa.int32()).to_pylist()
    if pa.types.is_interval(column.type):
        return [None if v is None else (v.months, v.days, v.nanoseconds) for v in column.to_pylist()]
    return column.to_pylist()


def pandas_values(series: pd.Series) -> list[Any]:
    kind = str(series.dtype)
    if kind.startswith(("datetime64", "timedelta64")):
        return [None if v == INT64[0] else int(v) for v in series.array.asi8]  # NaT is int64's least
    if kind.startswith("date32"):
        return pa.array(series.array).cast(pa.int32()).to_pylist()
    mask = series.isna().to_numpy()
    values = series.astype(object).tolist()
    if kind == "float64":
        return [float(v) for v in values]  # NaN is a value (NaN numerics), NULLs are NaN too
    return [None if missing else v for v, missing in zip(values, mask, strict=True)]


def polars_values(series: pl.Series) -> list[Any]:
    if series.dtype in (pl.Date,):
        return series.cast(pl.Int32).to_list()
    if isinstance(series.dtype, pl.Datetime | pl.Duration):
        return series.cast(pl.Int64).to_list()
    return series.to_list()


def lost_counts(record: list[warnings.WarningMessage]) -> Counter[str]:
    """The values each warning says were lost, by column."""
    counts: Counter[str] = Counter()
    for warning in record:
        if issubclass(warning.category, TodoDataWarning):
            found = re.match(r'column "([^"]+)": (\d+) values? read as', str(warning.message))
            assert found, warning.message
            counts[found.group(1)] += int(found.group(2))
    return counts


@asynccontextmanager
async def reference_connection(engine: AsyncEngine) -> Any:
    """asyncpg's own connection on the engine's endpoint, reading dates, timestamps and
    intervals in its raw tuple format and json as its text (SQLAlchemy's dialect parses
    it); thrown away afterwards (its codecs stay with it)."""
    async with engine.connect() as conn:
        driver = (await conn.get_raw_connection()).driver_connection
        for name in ("timestamptz", "timestamp", "date", "interval"):
            await driver.set_type_codec(name, schema="pg_catalog", encoder=tuple, decoder=tuple, format="tuple")
        for name in ("json", "jsonb"):
            await driver.set_type_codec(name, schema="pg_catalog", encoder=str, decoder=str, format="text")
        try:
            yield driver
        finally:
            await conn.invalidate()


async def reference_rows(driver: Any, case: Case) -> list[tuple[Any, ...]]:
    async with driver.transaction(readonly=True):  # one transaction: PgBouncer keeps one server
        return [tuple(record) for record in await driver.fetch(case.reference_sql())]


async def check(engine: AsyncEngine, driver: Any, case: Case) -> None:
    """``queries.sql`` in each output, and ``iter_sql`` in chunks, agree with asyncpg's decoding."""
    reference = await reference_rows(driver, case)
    families = [pg.family for pg in case.types]
    expected = [[arrow_value(f, row[i]) for row in reference] for i, f in enumerate(families)]
    query = case.sql()
    label = f"\n{query[:2000]}"

    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        arrow = await queries.sql(engine, query, output="arrow")
    assert arrow.column_names == case.names, label
    assert list(arrow.schema.types) == [ARROW_TYPES[f] for f in families], label
    lost: Counter[str] = Counter()
    for name, family, column, values in zip(case.names, families, arrow.columns, expected, strict=True):
        got = arrow_values(column)
        assert all(same(g, e) for g, e in zip(got, values, strict=True)), (name, family, got, values, label)
        sent = [row[case.names.index(name)] for row in reference]
        lost[name] = sum(1 for s, e in zip(sent, values, strict=True) if s is not None and e is None)
        if family == "numeric":
            lost[name] += sum(
                1
                for s, e in zip(sent, values, strict=True)
                if s is not None and s.is_finite() and e is not None and math.isinf(e)
            )
    assert lost_counts(record) == +lost, (lost_counts(record), lost, label)

    for output in ("pandas", "polars"):
        with warnings.catch_warnings(record=True) as record:
            warnings.simplefilter("always")
            frame = await queries.sql(engine, query, output=output)  # type: ignore[arg-type]
        assert repr(frame) and str(frame)  # always prints
        counted = Counter(lost)
        for index, (name, family) in enumerate(zip(case.names, families, strict=True)):
            want = [frame_value(family, value, output) for value in expected[index]]
            counted[name] += sum(1 for a, w in zip(expected[index], want, strict=True) if a is not None and w is None)
            if output == "pandas":
                series = frame.iloc[:, index]
                nulls = any(value is None for value in want)
                dtype = PANDAS_DTYPES[family]
                dtype = {"int64": "Int64", "bool": "boolean"}.get(dtype, dtype) if nulls else dtype
                assert str(series.dtype) == dtype, (name, family, series.dtype, dtype, label)
                got = pandas_values(series)
                if family in ("float", "numeric"):
                    want = [math.nan if w is None else w for w in want]
            else:
                series = frame.to_series(index)
                assert series.dtype == POLARS_DTYPES[family], (name, family, series.dtype, label)
                got = polars_values(series)
            assert all(same(g, w) for g, w in zip(got, want, strict=True)), (output, name, family, got, want, label)
        assert lost_counts(record) == +counted, (output, lost_counts(record), counted, label)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TodoDataWarning)
        whole = await queries.sql(engine, query)
        chunks = [chunk async for chunk in queries.iter_sql(engine, query, chunk_size=case.chunk_size)]
    sizes = [len(chunk) for chunk in chunks]  # at most chunk_size: an imitated row mark can cut one short
    assert sum(sizes) == len(reference) and all(0 < size <= case.chunk_size for size in sizes), (sizes, label)
    if chunks:
        pd.testing.assert_frame_equal(pd.concat(chunks, ignore_index=True), whole, check_dtype=False)
