"""Frames formatted for people: what a notebook cell shows of a DataFrame, in the CLI's terms.

pandas shows a frame as it holds it: the index left over from a sort (71, 37, 137…),
shares to five digits, ``2026-11-16 00:00:00+00:00`` for a week, ``0 days
00:00:00.004214907`` for 4 ms, and a mix of ``NaN``, ``<NA>`` and ``NaT`` for "nothing
here"; JupyterLab typesets a function body between ``$$`` as a formula. :func:`show`
returns a :class:`Table` that a cell displays the way ``todo-data`` prints: integers with
thousands separators, shares and rates as percentages, other numbers to three decimals,
dates as dates, times to the second (``UTC`` said once per value), durations under a
minute in milliseconds and longer ones in days and hours, ``yes``/``no``, one mark for a
missing value, long text shortened with the whole of it a click away, no index but a
meaningful one, and no math. The frame itself is untouched (``Table.frame``).
"""

from __future__ import annotations

import html
import math
import numbers
import re
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Final, cast

import pandas as pd
import pyarrow as pa

#: Longer results show their first and last :data:`ROWS_SHOWN` // 2 rows only, whatever
#: the notebook's pandas display options: a million-row result must not freeze the browser.
MAX_ROWS_SHOWN: Final = 60
ROWS_SHOWN: Final = 10
#: Text longer than this is shortened (``…``); the whole of it is a click away in HTML.
TEXT_SHOWN: Final = 60
#: How a missing value reads (pandas' NaN, <NA>, NaT and None alike).
MISSING: Final = "—"

# Columns holding a fraction of a whole, shown as percentages.
_FRACTION = re.compile(r"(^|_)(share|rate|ratio|completion)$")
_Formatter = Callable[[object], str]


def show(
    data: pd.DataFrame | pd.Series,
    *,
    caption: str | None = None,
    missing: str = MISSING,
    max_rows: int = MAX_ROWS_SHOWN,
) -> Table:
    """``data`` as a cell should show it to a person (see the module's docstring).

    ``caption`` is a line above the table (the table's size is added when rows are left
    out); ``missing`` how a missing value reads; results longer than ``max_rows`` show
    their first and last rows. A Series shows its index as the first column.

    >>> show(await queries.status_counts(engine))   # doctest: +SKIP
    status       count  share
    pending      2,777  27.8%
    """
    frame = data.to_frame(name="" if data.name is None else data.name) if isinstance(data, pd.Series) else data
    return Table(frame, caption=caption, missing=missing, max_rows=max_rows)


@dataclass(frozen=True, eq=False)
class Table:
    """A frame and how a cell shows it: ``_repr_html_`` for JupyterLab, ``repr`` as text."""

    frame: pd.DataFrame
    caption: str | None = None
    missing: str = MISSING
    max_rows: int = MAX_ROWS_SHOWN

    def _visible(self) -> tuple[pd.DataFrame, int | None]:
        """The columns to show (a meaningful index among them) and where rows were left out."""
        frame = self.frame
        index = frame.index
        meaningful = any(name is not None for name in index.names) or not pd.api.types.is_integer_dtype(index)
        frame = frame.reset_index() if meaningful else frame.reset_index(drop=True)
        frame.columns = [_column_name(c) for c in frame.columns]
        if len(frame) <= self.max_rows:
            return frame, None
        half = ROWS_SHOWN // 2
        return pd.concat([frame.head(half), frame.tail(half)], ignore_index=True), half

    def _cells(self) -> tuple[pd.DataFrame, list[str], list[bool], int | None]:
        """Each cell's text (shortened), each column's alignment, the full texts, the gap."""
        frame, gap = self._visible()
        texts: dict[str, list[str]] = {}
        right: list[bool] = []
        for position, name in enumerate(frame.columns):
            column = frame.iloc[:, position]
            try:
                formatter, numeric = _formatter(name, column, self.missing)
                texts[str(position)] = [formatter(value) for value in column.tolist()]
            except (TypeError, ValueError, AttributeError, NotImplementedError, OverflowError):
                # A type no rule here knows (IPython would show nothing at all if this raised):
                # each value as its text.
                plain = _or_missing(str, self.missing)
                texts[str(position)], numeric = [plain(value) for value in column.tolist()], False
            right.append(numeric)
        cells = pd.DataFrame(texts, index=range(len(frame)))
        return cells, list(frame.columns), right, gap

    def _size(self) -> str:
        rows, columns = self.frame.shape
        size = f"{rows:,} row{'s' * (rows != 1)}, {columns} column{'s' * (columns != 1)}"
        if rows > self.max_rows:
            size += f" (the first {ROWS_SHOWN // 2} and the last {ROWS_SHOWN // 2} shown)"
        return size

    def _heading(self) -> str | None:
        if self.frame.empty:
            return self.caption or "no rows"
        if self.caption is not None:
            return self.caption
        return self._size() if len(self.frame) > self.max_rows else None

    def __repr__(self) -> str:
        cells, names, right, gap = self._cells()
        widths = [max([len(name), *(len(_shortened(t)) for t in cells.iloc[:, i])]) for i, name in enumerate(names)]

        def line(values: list[str]) -> str:
            padded = [v.rjust(w) if r else v.ljust(w) for v, w, r in zip(values, widths, right, strict=True)]
            return "  ".join(padded).rstrip()

        lines = [line(names)]
        for row in range(len(cells)):
            if row == gap:
                lines.append(line(["…".rjust(w) if r else "…".ljust(w) for w, r in zip(widths, right, strict=True)]))
            lines.append(line([_shortened(text) for text in cells.iloc[row]]))
        heading = self._heading()
        return "\n".join([heading, *lines] if heading else lines)

    def _repr_html_(self) -> str:
        cells, names, right, gap = self._cells()

        def cell(tag: str, text: str, align_right: bool) -> str:
            style = ' style="text-align: right"' if align_right else ' style="text-align: left"'
            return f"<{tag}{style}>{_html(text) if tag == 'th' else _html_cell(text)}</{tag}>"

        head = "".join(cell("th", name, r) for name, r in zip(names, right, strict=True))
        rows = []
        for row in range(len(cells)):
            if row == gap:
                rows.append("<tr>" + "".join(cell("td", "…", r) for r in right) + "</tr>")
            texts = zip(cells.iloc[row], right, strict=True)
            rows.append("<tr>" + "".join(cell("td", t, r) for t, r in texts) + "</tr>")
        heading = self._heading()
        caption = f"<p>{_html(heading)}</p>" if heading else ""
        # tex2jax_ignore / mathjax_ignore: JupyterLab's MathJax leaves the table alone.
        return (
            f'<div class="todo-data-table tex2jax_ignore mathjax_ignore">{caption}'
            f'<table class="dataframe"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table></div>'
        )


def cells(frame: pd.DataFrame, *, missing: str = MISSING) -> tuple[list[str], list[list[str]], list[bool]]:
    """Every cell of ``frame`` as :func:`show` writes it, for a terminal table (the ``todo-data`` command).

    Returns the column names, each row's texts (in full: the terminal wraps them) and which
    columns hold numbers (aligned right).
    """
    texts, names, right, _ = Table(frame, missing=missing, max_rows=max(len(frame), 1))._cells()
    return names, [list(row) for row in texts.itertuples(index=False)], right


def _column_name(name: Hashable) -> str:
    if isinstance(name, tuple):
        return " ".join(str(part) for part in name if str(part))
    return "" if name is None or name == "index" else str(name)


def _is_missing(value: object) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, float) and math.isnan(value)


def _formatter(name: str, column: pd.Series, missing: str) -> tuple[_Formatter, bool]:
    """How each value of ``column`` reads, and whether the column is aligned right (numbers)."""
    dtype = column.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return _or_missing(lambda v: "yes" if v else "no", missing), False
    if isinstance(dtype, pd.ArrowDtype) and pa.types.is_date(dtype.pyarrow_dtype):
        return _or_missing(lambda v: v.isoformat() if isinstance(v, date) else str(v), missing), False
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return _or_missing(_timestamp_formatter(column), missing), False
    durations = [v for v in column.tolist() if isinstance(v, timedelta) and not _is_missing(v)]
    if durations or pd.api.types.is_timedelta64_dtype(dtype):
        # One unit for the column: milliseconds when every duration is under a minute.
        short = bool(durations) and max(abs(pd.Timedelta(v)) for v in durations) < pd.Timedelta(minutes=1)

        def duration_or_other(value: object) -> str:  # describe() puts its count among the durations
            return _duration(value, short=short) if isinstance(value, timedelta) else _text(value)

        return _or_missing(duration_or_other, missing), True
    if pd.api.types.is_numeric_dtype(dtype):
        if pd.api.types.is_float_dtype(dtype) and _FRACTION.search(name.lower()):
            return _or_missing(lambda v: f"{cast(float, v):.1%}", missing), True
        return _or_missing(_number, missing), True
    values = [v for v in column.tolist() if not _is_missing(v)]
    numeric = bool(values) and all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in values)
    return _or_missing(_number if numeric else _text, missing), numeric


def _or_missing(formatter: _Formatter, missing: str) -> _Formatter:
    return lambda value: missing if _is_missing(value) else formatter(value)


def _number(value: object) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, numbers.Integral):
        return f"{int(value):,}"
    if isinstance(value, numbers.Real):
        value = float(value)
        if math.isinf(value):
            return "∞" if value > 0 else "-∞"
        if value.is_integer() and abs(value) < 1e15:
            return f"{int(value):,}"
        return f"{value:,.3f}".rstrip("0").rstrip(".") if abs(value) >= 0.001 else f"{value:.3g}"
    return _text(value)


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, pd.Timestamp):
        return _timestamp_formatter(pd.Series([value]))(value)
    if isinstance(value, timedelta):
        return _duration(value, short=abs(pd.Timedelta(value)) < pd.Timedelta(minutes=1))
    if isinstance(value, numbers.Real):
        return _number(value)
    return str(value)


def _timestamp_formatter(column: pd.Series) -> _Formatter:
    """Dates when every value is a midnight (days, weeks, months), else times to the second."""
    values = pd.Series(column).dropna()
    dates = bool(len(values)) and bool((values == values.dt.normalize()).all())
    zone = " UTC" if getattr(values.dt, "tz", None) is not None and str(values.dt.tz) == "UTC" else ""

    def formatted(value: object) -> str:
        stamp = pd.Timestamp(value)  # type: ignore[arg-type]
        if dates:
            return stamp.strftime("%Y-%m-%d")
        if stamp.tzinfo is not None and not zone:
            return stamp.isoformat(sep=" ", timespec="seconds")
        return stamp.strftime("%Y-%m-%d %H:%M:%S") + zone

    return formatted


def _duration(value: object, *, short: bool) -> str:
    """``4.2 ms`` for a column of short durations; ``181 d 18 h``, ``5 h 12 min``, ``42 s`` otherwise."""
    delta = pd.Timedelta(value)  # type: ignore[arg-type]
    if short:
        return f"{delta.total_seconds() * 1000:,.1f} ms"
    sign, delta = ("-", -delta) if delta < pd.Timedelta(0) else ("", delta)
    seconds = int(delta.total_seconds())
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, seconds = divmod(rest, 60)
    if days:
        return f"{sign}{days:,} d {hours} h"
    if hours:
        return f"{sign}{hours} h {minutes} min"
    if minutes:
        return f"{sign}{minutes} min {seconds} s"
    return f"{sign}{delta.total_seconds():.1f} s"


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _shortened(text: str) -> str:
    flat = _one_line(text)
    return flat if len(flat) <= TEXT_SHOWN else flat[: TEXT_SHOWN - 1] + "…"


def _html(text: str) -> str:
    # `$` as an entity too, for front ends that typeset math without honouring the class.
    return html.escape(text).replace("$", "&#36;")


def _html_cell(text: str) -> str:
    """A cell: the text, or its first characters with the whole of it one click away."""
    short = _shortened(text)
    if short == text:
        return _html(text)
    return (
        f'<details title="click to show it all"><summary>{_html(short)}</summary>'
        f'<pre style="white-space: pre-wrap; max-width: 80ch; text-align: left">{_html(text)}</pre></details>'
    )
