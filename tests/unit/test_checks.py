"""How checks shows values and verdicts (no database)."""

from __future__ import annotations

import pandas as pd
from sqlalchemy.ext.asyncio import AsyncEngine

from todo_data.checks import DISPLAY_LENGTH, Verification, display


def test_long_text_is_shown_by_its_start_and_length() -> None:
    assert display("d" * 1001) == "'ddd…' (1001 chars)"


def test_short_text_null_and_other_values_are_shown_as_they_are() -> None:
    assert display("x" * DISPLAY_LENGTH) == repr("x" * DISPLAY_LENGTH)
    assert display("") == "''"
    assert display(None) == "NULL"
    assert display(3) == "3"


def test_the_start_of_a_text_is_shown_with_its_full_length() -> None:
    assert display("abcdef", length=5000) == "'abc…' (5000 chars)"


def test_a_verification_is_a_table_and_a_boolean() -> None:
    frame = pd.DataFrame(
        {"check": ["revision", "drift"], "ok": [True, False], "detail": ["at head (0001)", "add_check ck"]}
    )
    empty = pd.DataFrame()
    result = Verification(frame=frame, revision="0001", head="0001", drift=empty, probe=empty, violations=empty)
    assert not result
    assert result.failures == ["drift"]
    assert str(result).splitlines()[0] == "FAILED: drift"
    assert "add_check ck" in result._repr_html_()


async def test_verify_on_a_read_only_engine_fails_the_probe_instead_of_raising(
    sqlite_engine: AsyncEngine, sqlite_url: str
) -> None:
    from todo_data import checks, create_engine

    reader = create_engine(sqlite_url, read_only=True)
    try:
        verdict = await checks.verify(reader)
    finally:
        await reader.dispose()
    assert verdict.failures == ["probe"]
    assert "write" in verdict.frame.set_index("check").loc["probe", "detail"]
