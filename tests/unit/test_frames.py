"""The decoder behind queries.tasks_frame on PostgreSQL, against payloads built in Python."""

from __future__ import annotations

import asyncio
import struct
import uuid
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from todo_data import _frames

PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


def payload(task: dict[str, object]) -> bytes:
    """What the SQL of _frames.pg_payload_select builds for one task."""
    texts = [str(task[name]).encode() if task[name] is not None else None for name in _frames.TASK_COLUMNS[1:5]]
    micros = [
        (task[name] - PG_EPOCH) // timedelta(microseconds=1)  # type: ignore[operator]
        for name in ("created_at", "updated_at")
    ]
    head = uuid.UUID(str(task["id"])).bytes + b"\x00" + struct.pack(">qq", *micros)
    head += struct.pack(">iiii", *(len(text) if text is not None else -1 for text in texts))
    return head + b"".join(text or b"" for text in texts)


def copy_stream(payloads: list[bytes]) -> bytes:
    body = b"".join(struct.pack(">hi", 1, len(value)) + value for value in payloads)
    return b"PGCOPY\n\xff\r\n\x00" + bytes(8) + body + b"\xff\xff"


def tasks(count: int, *, longest: int = 1000) -> list[dict[str, object]]:
    texts = ["", "a", "twelve bytes", "thirteen byte", "é" * 7, "🚀 rocket science", "x" * longest, "tab\tnew\nline"]
    start = datetime(1999, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC)
    return [
        {
            "id": str(uuid.uuid4()),
            "user_id": f"user {i % 5}",
            "title": texts[i % len(texts)] or "t",
            "description": None if i % 3 == 0 else texts[(i * 7) % len(texts)],
            "status": ("pending", "in_progress", "completed", "archived")[i % 4],
            "created_at": start + timedelta(days=i, microseconds=i),
            "updated_at": start + timedelta(days=i + 1),
        }
        for i in range(count)
    ]


def received(stream: bytes, chunk: int) -> _frames.CopyPayloads:
    copied = _frames.CopyPayloads()

    async def feed() -> None:
        for start in range(0, len(stream), chunk):
            await copied.receive(stream[start : start + chunk])

    asyncio.run(feed())
    return copied


@pytest.mark.parametrize("chunk", [1, 7, 65_536])
def test_copy_stream_decodes_to_the_original_values_in_any_chunking(chunk: int) -> None:
    rows = tasks(40)
    copied = received(copy_stream([payload(row) for row in rows]), chunk)
    frame = _frames.frame_from_columns(_frames.decode_payloads(copied.buffer, copied.starts()))
    assert frame["id"].tolist() == [row["id"] for row in rows]
    for name in ("user_id", "title", "status"):
        assert frame[name].tolist() == [row[name] for row in rows]
    assert [None if pd.isna(value) else value for value in frame["description"]] == [row["description"] for row in rows]
    assert frame["created_at"].tolist() == [pd.Timestamp(row["created_at"]) for row in rows]  # type: ignore[arg-type]
    assert list(frame["status"].cat.categories) == ["pending", "in_progress", "completed", "archived"]


def test_text_beyond_the_first_buffer_window_is_read_correctly(monkeypatch: pytest.MonkeyPatch) -> None:
    # Real windows are 1 GiB (texts are at most 4,000 bytes); 64-byte windows with texts
    # of at most 40 bytes exercise the same arithmetic.
    monkeypatch.setattr(_frames, "_WINDOW", 64)
    rows = tasks(25, longest=40)
    copied = received(copy_stream([payload(row) for row in rows]), 1 << 16)
    frame = _frames.frame_from_columns(_frames.decode_payloads(copied.buffer, copied.starts()))
    assert frame["title"].tolist() == [row["title"] for row in rows]


def test_broken_copy_streams_are_refused() -> None:
    with pytest.raises(ValueError, match="not a PostgreSQL binary COPY"):
        received(b"NOTCOPY" + bytes(40), 100)
    stream = copy_stream([payload(row) for row in tasks(3)])
    with pytest.raises(ValueError, match="ended early"):
        received(stream[:-10], 100).starts()
    with pytest.raises(ValueError, match="ended early"):
        _frames.CopyPayloads().starts()
