"""Configuration, read from the environment and a ``.env`` file.

Settings are built on first use and cached; tests and notebooks that change the
environment call ``get_settings.cache_clear()`` instead of patching globals.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Final

from pydantic import ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from todo_data.errors import SettingsError
from todo_data.urls import mask_url, parse_database_url

DEFAULT_DATABASE_URL: Final = "sqlite+aiosqlite:///todo_data.db"


class Settings(BaseSettings):
    """Every setting of ``todo_data``; ``.env.example`` documents each one.

    ``repr`` and ``str`` mask passwords, so a settings object is safe to print.
    """

    # A variable set to nothing means "not set" (DATABASE_POOLED= as much as DATABASE_URL=).
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore", env_ignore_empty=True)

    database_url: str = DEFAULT_DATABASE_URL
    """The database to inspect. A Neon connection string works as pasted."""

    database_pooled: bool | None = None
    """Force (true) or disable (false) pooled-endpoint handling; unset detects Neon ``-pooler`` hosts."""

    database_direct_url: str | None = None
    """The direct endpoint for migrations when ``DATABASE_URL`` is a pooled one (derived for Neon)."""

    database_statement_timeout: float | None = None
    """Seconds after which PostgreSQL cancels a statement (unset: no limit)."""

    database_lock_timeout: float = 5.0
    """Seconds a migration waits for each lock before it retries (PostgreSQL); 0: no limit."""

    test_database_url: str | None = None
    """A PostgreSQL database the integration tests may wipe (e.g. a Neon branch)."""

    test_database_pooled_url: str | None = None
    """The pooled endpoint of ``test_database_url``, for the pooled-endpoint tests."""

    test_database_read_url: str | None = None
    """A read replica of ``test_database_url`` (e.g. a Neon read replica), for the replica tests."""

    test_database_read_pooled_url: str | None = None
    """The pooled endpoint of ``test_database_read_url``."""

    @field_validator(
        "database_url",
        "database_direct_url",
        "test_database_url",
        "test_database_pooled_url",
        "test_database_read_url",
        "test_database_read_pooled_url",
    )
    @classmethod
    def _url_is_valid(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None and value.strip():
            parse_database_url(value)
            return value.strip()
        # A blank variable means "not set": the default URL, or no URL for the others.
        return DEFAULT_DATABASE_URL if info.field_name == "database_url" else None

    @field_validator("database_lock_timeout")
    @classmethod
    def _lock_timeout_is_valid(cls, value: float) -> float:
        if not 0 <= value < float("inf"):  # also refuses NaN
            raise ValueError("must be a number of seconds, 0 (no limit) or more")
        return value

    def __repr_args__(self) -> Any:
        for name, value in super().__repr_args__():
            yield name, mask_url(value) if isinstance(value, str) else value


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The settings, read once from the environment and ``.env`` and then cached."""
    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in err['loc']).upper()}: {_reason(err)}" for err in exc.errors())
        raise SettingsError(f"Invalid settings: {problems}") from None


def _reason(err: Any) -> str:
    ctx = err.get("ctx") or {}
    inner = ctx.get("error")
    return str(inner) if inner is not None else str(err["msg"])
