"""``todo_data.show``: frames as a person reads them, in text and in JupyterLab's HTML."""

from __future__ import annotations

import html
import re
from datetime import date

import numpy as np
import pandas as pd
import pytest

from todo_data import show
from todo_data._display import MAX_ROWS_SHOWN, MISSING, ROWS_SHOWN, TEXT_SHOWN


def rows(table: object) -> list[list[str]]:
    """The text cells of each line of a table's text (columns split on two spaces or more)."""
    return [re.split(r"\s{2,}", line.strip()) for line in repr(table).splitlines()]


def cells(table: object) -> list[str]:
    """The text of every ``<td>`` of a table's HTML (the summary, for a shortened one)."""
    found = re.findall(r"<td[^>]*>(.*?)</td>", table._repr_html_(), flags=re.S)  # type: ignore[attr-defined]
    return [html.unescape(re.sub(r"<details.*?<summary>(.*?)</summary>.*", r"\1", c, flags=re.S)) for c in found]


def test_status_counts_read_like_the_cli_counts_with_separators_shares_as_percentages() -> None:
    frame = pd.DataFrame({"status": ["pending", "completed"], "count": [2777, 12_024], "share": [0.27677, 0.72323]})
    assert rows(show(frame)) == [
        ["status", "count", "share"],
        ["pending", "2,777", "27.7%"],
        ["completed", "12,024", "72.3%"],
    ]
    assert show(frame).frame is frame  # the data itself is untouched


def test_a_sorted_frame_shows_no_leftover_index_but_a_meaningful_one_stays() -> None:
    frame = pd.DataFrame({"user_id": ["b", "a"], "total": [5, 9]}, index=[71, 37])
    assert rows(show(frame))[0] == ["user_id", "total"]
    assert "71" not in repr(show(frame))
    grouped = pd.Series([3, 4], index=pd.Index(["pending", "completed"], name="status"), name="tasks")
    assert rows(show(grouped)) == [["status", "tasks"], ["pending", "3"], ["completed", "4"]]


def test_buckets_at_midnight_are_dates_and_instants_are_seconds_in_utc() -> None:
    periods = pd.Series(pd.to_datetime(["2026-11-16", "2026-11-23"], utc=True))
    instants = pd.Series(
        pd.to_datetime(["2026-11-16 14:24:46.922471", "2026-11-17 00:00:00"], utc=True, format="ISO8601")
    )
    table = show(pd.DataFrame({"period": periods, "created_at": instants}))
    assert rows(table)[1:] == [["2026-11-16", "2026-11-16 14:24:46 UTC"], ["2026-11-23", "2026-11-17 00:00:00 UTC"]]


def test_short_durations_are_milliseconds_and_ages_days_and_hours() -> None:
    table = show(
        pd.DataFrame(
            {
                "duration": pd.to_timedelta([4_214_907, 1_250_000_000], unit="ns"),
                "age": pd.to_timedelta(["181 days 18:45:17", "3 hours 12 minutes"]),
            }
        )
    )
    assert rows(table)[1:] == [["4.2 ms", "181 d 18 h"], ["1,250.0 ms", "3 h 12 min"]]


def test_a_summary_of_ages_counts_tasks_and_gives_ages_in_days_and_hours() -> None:
    ages = pd.Series(pd.to_timedelta([1.5, 2, 3], unit="D"), name="age").astype("timedelta64[us]")
    table = dict(rows(show(ages.describe()))[1:])  # type: ignore[arg-type]
    assert table["count"] == "3" and table["min"] == "1 d 12 h" and table["max"] == "3 d 0 h"


def test_nan_na_nat_and_none_read_as_one_mark() -> None:
    frame = pd.DataFrame(
        {
            "replica": pd.array([None], dtype="string"),
            "replay_paused": pd.array([None], dtype="boolean"),
            "lag_bytes": pd.array([None], dtype="Int64"),
            "lag_seconds": [float("nan")],
            "last_replayed_at": pd.Series([pd.NaT], dtype="datetime64[us, UTC]"),
            "relation": [None],
        }
    )
    assert rows(show(frame))[1] == [MISSING] * 6
    assert cells(show(frame, missing="NULL")) == ["NULL"] * 6
    text = repr(show(frame)) + show(frame)._repr_html_()
    for mark in ("NaN", "<NA>", "NaT", "None", "nan"):
        assert mark not in text


def test_booleans_are_yes_and_no_and_other_numbers_three_decimals() -> None:
    frame = pd.DataFrame({"ok": [True, False], "x": [1.23456, 2.0], "big": [np.int64(10**12), np.int64(-3)]})
    assert rows(show(frame))[1:] == [["yes", "1.235", "1,000,000,000,000"], ["no", "2", "-3"]]


def test_long_text_is_shortened_with_all_of_it_one_click_away() -> None:
    body = "CREATE FUNCTION f() RETURNS trigger AS $$ BEGIN NEW.updated_at = now(); RETURN NEW; END $$ LANGUAGE plpgsql"
    table = show(pd.DataFrame({"statement": [body], "relation": ["tasks"]}))
    shown = rows(table)[1][0]
    assert len(shown) == TEXT_SHOWN and shown.endswith("…") and body.startswith(shown[:-1])
    page = table._repr_html_()
    assert "<details" in page and html.escape(body).replace("$", "&#36;") in page  # the whole text, escaped


def test_sql_is_never_typeset_as_math_nor_read_as_html() -> None:
    table = show(pd.DataFrame({"sql": ["SELECT '$$x$$', '<b>bold</b>' & 1"]}))
    page = table._repr_html_()
    assert "tex2jax_ignore" in page and "mathjax_ignore" in page
    assert "$" not in page and "<b>" not in page
    assert "&#36;&#36;x&#36;&#36;" in page and "&lt;b&gt;bold&lt;/b&gt;" in page


def test_column_names_are_escaped_too() -> None:
    page = show(pd.DataFrame({"<script>": [1], "$cost$": [2]}))._repr_html_()
    assert "<script>" not in page and "&lt;script&gt;" in page and "&#36;cost&#36;" in page


def test_a_long_result_shows_its_size_once_and_its_first_and_last_rows() -> None:
    frame = pd.DataFrame({"n": range(MAX_ROWS_SHOWN + 1)})
    lines = repr(show(frame)).splitlines()
    assert lines[0] == f"{MAX_ROWS_SHOWN + 1} rows, 1 column (the first 5 and the last 5 shown)"
    assert len(lines) == 1 + 1 + ROWS_SHOWN + 1 and "…" in [line.strip() for line in lines]
    assert cells(show(frame))[: ROWS_SHOWN // 2 + 1] == ["0", "1", "2", "3", "4", "…"]


def test_an_empty_frame_says_so_with_its_columns() -> None:
    table = show(pd.DataFrame({"operation": pd.Series([], dtype="string"), "name": []}))
    assert repr(table).splitlines() == ["no rows", "operation  name"]
    assert "no rows" in table._repr_html_() and "<th" in table._repr_html_()


def test_a_caption_comes_first_and_numbers_are_aligned_right() -> None:
    table = show(pd.DataFrame({"user": ["a"], "n": [1]}), caption="1 row, 2 columns")
    assert repr(table).splitlines()[0] == "1 row, 2 columns"
    page = table._repr_html_()
    assert "<p>1 row, 2 columns</p>" in page
    assert '<td style="text-align: right">1</td>' in page and '<td style="text-align: left">a</td>' in page


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (float("inf"), "∞"),
        (float("-inf"), "-∞"),
        (0.0001234, "0.000123"),
        (date(2026, 1, 2), "2026-01-02"),
        ("", ""),
    ],
)
def test_odd_values_read_plainly(value: object, shown: str) -> None:
    assert cells(show(pd.DataFrame({"v": [value]}))) == [shown]


def test_every_arrow_type_a_query_returns_is_shown_never_nothing() -> None:
    """IPython shows nothing when a display method raises: every column type must render."""
    from decimal import Decimal

    import pyarrow as pa

    columns = {
        "day": (pa.date32(), [date(2025, 1, 2), None]),
        "far": (pa.date32(), [None, None]),  # a date past pandas' range reads as missing
        "at": (pa.time64("us"), [None, None]),
        "amount": (pa.decimal128(10, 2), [Decimal("1.50"), None]),
        "tags": (pa.list_(pa.string()), [["a", "b"], None]),
        "blob": (pa.binary(), [b"\x00\xff", None]),
        "span": (pa.month_day_nano_interval(), [None, None]),
    }
    frame = pd.DataFrame(
        {name: pd.array(values, dtype=pd.ArrowDtype(kind)) for name, (kind, values) in columns.items()}
    )
    shown = show(frame, missing="NULL")
    text, page = repr(shown), shown._repr_html_()
    header, first, second = text.splitlines()
    assert header.split() == list(columns)
    assert first.split()[0] == "2025-01-02" and "1.5" in first
    assert second.split() == ["NULL"] * len(columns)
    assert page.count("<tr>") == 3 and "2025-01-02" in page
