"""No password anywhere: messages, log lines, reprs, frames. (CLI and notebook outputs are
checked in tests/e2e/test_cli.py and tests/e2e/test_notebooks.py.)"""

from __future__ import annotations

import logging
from urllib.parse import quote

import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.helpers import PostgresServer
from todo_data import checks, create_engine, get_settings, migrations, queries, sample
from todo_data.database import connect, describe, target_of
from todo_data.errors import TodoDataError


async def test_password_appears_in_no_message_log_line_or_repr(
    pg_engine: AsyncEngine,
    postgres_server: PostgresServer,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = make_url(postgres_server.url)
    password = url.password
    assert password
    secrets = {password, quote(password, safe="")}
    seen: list[str] = []
    caplog.set_level(logging.DEBUG)

    monkeypatch.setenv("DATABASE_URL", postgres_server.url)
    get_settings.cache_clear()
    engine = create_engine(echo=True)
    seen += [repr(get_settings()), str(get_settings()), repr(engine), str(engine.url), repr(target_of(engine))]
    seen.append(describe(engine))
    try:
        await sample.seed(engine, tasks=50)
        seen.append((await queries.tasks_frame(engine)).to_string())
        seen.append((await checks.verify(engine)).frame.to_string())
        seen.append((await migrations.drift(engine)).to_string())
    finally:
        await engine.dispose()

    for bad in (url.set(password="Wr0ng" + password), url.set(database="missing_db"), url.set(port=1)):
        failing = create_engine(bad.render_as_string(hide_password=False))
        try:
            with pytest.raises(TodoDataError) as exc:
                async with connect(failing):
                    pass
            seen += [str(exc.value), repr(exc.value)]
        finally:
            await failing.dispose()

    seen += [record.getMessage() for record in caplog.records]
    seen.append(caplog.text)
    assert len(caplog.records) > 10  # SQLAlchemy's echo did log the session
    for text in seen:
        for secret in secrets:
            assert secret not in text
