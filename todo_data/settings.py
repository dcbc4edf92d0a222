"""Configuration, read from the environment and the nearest ``.env`` file.

The ``.env`` file is looked up from the working directory upwards and the nearest one
wins, so a Jupyter kernel started in ``notebooks/`` reads the project's ``.env``. The
environment wins over ``.env``.

Settings are built on first use and cached; tests and notebooks that change the
environment call ``get_settings.cache_clear()`` instead of patching globals.

A bad value stops only what reads it: :func:`get_settings` keeps the others, and reading
the bad one raises :class:`SettingsError` naming the variable and where it came from (the
environment or the ``.env`` path). So a bad ``DATABASE_LOCK_TIMEOUT`` stops a migration,
not ``migrate current``.
"""

from __future__ import annotations

import math
import os
from functools import lru_cache
from pathlib import Path
from typing import Any, Final

from pydantic import PrivateAttr, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, DotEnvSettingsSource, PydanticBaseSettingsSource, SettingsConfigDict

from todo_data.errors import SettingsError
from todo_data.urls import mask_url, parse_database_url

DEFAULT_DATABASE_URL: Final = "sqlite+aiosqlite:///todo_data.db"
DOTENV: Final = ".env"


def find_dotenv(start: Path | None = None) -> Path | None:
    """The nearest ``.env`` file in ``start`` (default: the working directory) or above it."""
    here = (start or Path.cwd()).resolve()
    for directory in (here, *here.parents):
        candidate = directory / DOTENV
        if candidate.is_file():
            return candidate
    return None


def source_of(variable: str) -> str:
    """Where a setting is read from: ``the environment``, a ``.env`` path, or ``its default``."""
    if os.environ.get(variable, "").strip():
        return "the environment"
    dotenv = find_dotenv()
    if dotenv is not None and variable.lower() in DotEnvSettingsSource(Settings, env_file=dotenv)():
        return str(dotenv)
    return "its default"


def statement_timeout_seconds(value: object) -> float | None:
    """Seconds for a statement timeout, or None for no limit (``None`` or ``0``).

    Raises :class:`ValueError` for anything else than a finite number ≥ 0.
    """
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{value!r} is not a number of seconds (0 or unset: no limit)")
    seconds = float(value)
    if math.isnan(seconds) or math.isinf(seconds) or seconds < 0:
        raise ValueError(f"{value!r} is not a number of seconds ≥ 0 (0 or unset: no limit)")
    # PostgreSQL's statement_timeout = 0 means "no limit": keep that meaning.
    return seconds or None


class Settings(BaseSettings):
    """Every setting of ``todo_data``; ``.env.example`` documents each one.

    ``repr`` and ``str`` mask passwords, so a settings object is safe to print.
    """

    # A variable set to nothing means "not set" (DATABASE_POOLED= as much as DATABASE_URL=).
    model_config = SettingsConfigDict(env_file=DOTENV, env_file_encoding="utf-8", extra="ignore", env_ignore_empty=True)

    database_url: str = DEFAULT_DATABASE_URL
    """The database to inspect. A Neon connection string works as pasted."""

    database_pooled: bool | None = None
    """Force (true) or disable (false) pooled-endpoint handling; unset detects Neon ``-pooler`` hosts."""

    database_direct_url: str | None = None
    """The direct endpoint for migrations when ``DATABASE_URL`` is a pooled one (derived for Neon)."""

    database_statement_timeout: float | None = None
    """Seconds after which PostgreSQL cancels a statement (unset or 0: no limit)."""

    database_lock_timeout: float = 5.0
    """Seconds a migration waits for each lock before it retries (PostgreSQL); 0: no limit."""

    database_read_url: str | None = None
    """A read replica of ``database_url`` for analysis (notebooks, ``report``, ``export``); unset: ``database_url``."""

    database_read_pooled: bool | None = None
    """Like ``database_pooled``, for ``database_read_url``."""

    test_database_url: str | None = None
    """A PostgreSQL database the integration tests may wipe (e.g. a Neon branch)."""

    test_database_pooled_url: str | None = None
    """The pooled endpoint of ``test_database_url``, for the pooled-endpoint tests."""

    test_database_read_url: str | None = None
    """A read replica of ``test_database_url`` (e.g. a Neon read replica), for the replica tests."""

    test_database_read_pooled_url: str | None = None
    """The pooled endpoint of ``test_database_read_url``."""

    # Refused values: the message reading each one raises, by field name (see load_settings).
    _invalid: dict[str, str] = PrivateAttr(default_factory=dict)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The configured ".env" means the nearest one, from the working directory upwards;
        # an explicit Settings(_env_file=...) is left as it is.
        if isinstance(dotenv_settings, DotEnvSettingsSource) and dotenv_settings.env_file == DOTENV:
            dotenv_settings = DotEnvSettingsSource(settings_cls, env_file=find_dotenv())
        return init_settings, env_settings, dotenv_settings, file_secret_settings

    @field_validator(
        "database_url",
        "database_direct_url",
        "database_read_url",
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

    @field_validator("database_statement_timeout", mode="before")
    @classmethod
    def _timeout_is_seconds(cls, value: object) -> float | None:
        try:
            return statement_timeout_seconds(float(value) if isinstance(value, str) else value)
        except ValueError:
            raise ValueError(f"{value!r} is not a number of seconds ≥ 0 (0 or unset: no limit)") from None

    @field_validator("database_lock_timeout")
    @classmethod
    def _lock_timeout_is_valid(cls, value: float) -> float:
        if not 0 <= value < float("inf"):  # also refuses NaN
            raise ValueError("must be a number of seconds, 0 (no limit) or more")
        return value

    def __getattribute__(self, name: str) -> Any:
        # A setting whose value was refused raises when it is read, and only then.
        if name in _FIELDS:
            private = object.__getattribute__(self, "__pydantic_private__")
            if private and name in private["_invalid"]:
                raise SettingsError(private["_invalid"][name])
        return super().__getattribute__(name)

    def __repr_args__(self) -> Any:
        for name, value in super().__repr_args__():
            if name in self._invalid:
                yield name, "(invalid)"
            else:
                yield name, mask_url(value) if isinstance(value, str) else value


# Every setting's name, to tell them from methods and pydantic's own attributes cheaply.
_FIELDS: Final = frozenset(Settings.model_fields)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The settings, read once from the environment and the nearest ``.env``, then cached.

    Raises :class:`SettingsError` naming each variable that is wrong and why.
    """
    return load_settings()


def load_settings(**values: Any) -> Settings:
    """Settings read now (not cached); ``values`` win over the environment and ``.env``.

    A value that is wrong does not stop the others: reading it raises
    :class:`SettingsError` naming the variable, where it came from and why.
    """
    try:
        return Settings(**values)
    except ValidationError as exc:
        invalid: dict[str, str] = {}
        for err in exc.errors():
            name = str(err["loc"][0])
            where = "given to load_settings" if name in values else f"from {source_of(name.upper())}"
            invalid.setdefault(name, f"Invalid setting {name.upper()} ({where}): {_reason(err)}")
    # The refused ones at their defaults, so the others are read and validated as usual.
    defaults = {name: Settings.model_fields[name].get_default() for name in invalid}
    settings = Settings(**{**values, **defaults})
    settings._invalid.update(invalid)
    return settings


def _reason(err: Any) -> str:
    ctx = err.get("ctx") or {}
    inner = ctx.get("error")
    return str(inner) if inner is not None else str(err["msg"])
