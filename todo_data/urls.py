"""Database URLs: parse what users paste, translate it for the async drivers, mask it.

A connection string copied from the Neon console is a libpq URL
(``postgresql://user:pass@ep-x.region.aws.neon.tech/neondb?sslmode=require&channel_binding=require``).
asyncpg rejects libpq-only query parameters, so they are translated into connect
arguments here, in one place, before an engine is built.
"""

from __future__ import annotations

import re
import ssl
from dataclasses import dataclass, field
from typing import Any, Final, Literal
from urllib.parse import unquote

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from todo_data.errors import SettingsError

Backend = Literal["sqlite", "postgresql"]

DEFAULT_CONNECT_TIMEOUT: Final = 10.0

_SQLITE_SCHEMES: Final = {"sqlite", "sqlite+aiosqlite"}
_POSTGRES_SCHEMES: Final = {"postgresql", "postgres", "postgresql+asyncpg", "postgres+asyncpg"}
_SSLMODES: Final = {"disable", "allow", "prefer", "require", "verify-ca", "verify-full"}
# libpq parameters with no asyncpg equivalent that are safe to leave out.
# channel_binding: asyncpg authenticates with SCRAM-SHA-256 but has no channel binding
# (SCRAM-SHA-256-PLUS); Neon accepts plain SCRAM over TLS, so the URL works as pasted.
_IGNORED_PARAMS: Final = {
    "channel_binding",
    "gssencmode",
    "krbsrvname",
    "fallback_application_name",
}
_USERINFO = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<user>[^:/@?#]*):(?P<password>[^@]*)@", re.I)
# libpq also takes secrets as query parameters (?password=…).
_SECRET_PARAMS: Final = ("password", "sslpassword", "passfile")
_SECRET_QUERY = re.compile(r"(?P<key>[?&](?:" + "|".join(_SECRET_PARAMS) + r")=)[^&#]*", re.I)


def mask_url(url: str | URL) -> str:
    """The URL with its password replaced by ``***``; works on URLs that don't parse."""
    if isinstance(url, URL):
        secrets = {key: "***" for key in url.query if key.lower() in _SECRET_PARAMS}
        return (url.update_query_dict(secrets) if secrets else url).render_as_string(hide_password=True)
    return _SECRET_QUERY.sub(r"\g<key>***", _USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}:***@", url))


def scrub(text: str, *secrets: str | None) -> str:
    """``text`` with every given secret (and its percent-decoded form) replaced by ``***``."""
    for secret in secrets:
        if not secret:
            continue
        for form in {secret, unquote(secret)}:
            text = text.replace(form, "***")
    return _USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}:***@", text)


@dataclass(frozen=True)
class DatabaseTarget:
    """A parsed database URL, ready for :func:`sqlalchemy.ext.asyncio.create_async_engine`."""

    url: URL
    backend: Backend
    connect_args: dict[str, Any] = field(default_factory=dict)
    pooled: bool = False

    @property
    def masked(self) -> str:
        """The URL as given to the driver, password masked."""
        return mask_url(self.url)

    def describe(self) -> str:
        """``database "db" on host:port`` for error messages (never the password)."""
        if self.backend == "sqlite":
            return f'SQLite database "{self.url.database or ":memory:"}"'
        port = f":{self.url.port}" if self.url.port else ""
        host = self.url.host or "localhost"
        return f'database "{self.url.database or ""}" on {host}{port} as user "{self.url.username or ""}"'

    def __repr__(self) -> str:
        return f"DatabaseTarget({self.masked!r}, pooled={self.pooled})"


def is_neon_pooler_host(host: str | None) -> bool:
    """Neon's pooled endpoints carry ``-pooler`` in the first label of their host name."""
    return bool(host) and "-pooler" in (host or "").split(".", 1)[0]


def parse_database_url(raw: str | URL, *, pooled: bool | None = None) -> DatabaseTarget:
    """Parse and translate a database URL, or raise :class:`SettingsError` saying why not.

    ``pooled=None`` detects Neon's ``-pooler`` hosts; ``True``/``False`` forces it.
    """
    try:
        url = raw if isinstance(raw, URL) else make_url(raw.strip())
    except (ArgumentError, ValueError) as exc:
        reason = "it is not of the form scheme://user:password@host:port/database"
        if isinstance(exc, ValueError) and "int()" in str(exc):
            reason = "its port is not a number"
        raise SettingsError(f"Malformed database URL {mask_url(str(raw))!r}: {reason}.") from None

    scheme = url.drivername
    if scheme in _SQLITE_SCHEMES:
        return DatabaseTarget(url=url.set(drivername="sqlite+aiosqlite"), backend="sqlite")
    if scheme not in _POSTGRES_SCHEMES:
        raise SettingsError(
            f"Unsupported database URL scheme {scheme!r} in {mask_url(url)!r}: "
            "use postgresql://… (or postgres://, postgresql+asyncpg://) or sqlite:///…"
        )
    if not url.host:
        raise SettingsError(f"Database URL {mask_url(url)!r} has no host name.")
    if "@" in url.host:
        # user:p@ss@host parses with part of the password as the host: never show it.
        raise SettingsError(
            f"Database URL for database {url.database!r} has an '@' in its password: percent-encode it as %40."
        )
    if not url.database:
        raise SettingsError(f"Database URL {mask_url(url)!r} names no database.")
    query = dict(url.query)
    connect_args: dict[str, Any] = {"timeout": DEFAULT_CONNECT_TIMEOUT}
    server_settings: dict[str, str] = {}
    sslmode = _single(query.pop("sslmode", None), "sslmode", url)
    sslrootcert = _single(query.pop("sslrootcert", None), "sslrootcert", url)
    if sslmode is not None:
        if sslmode not in _SSLMODES:
            raise SettingsError(
                f"sslmode={sslmode!r} in {mask_url(url)!r} is not one of {', '.join(sorted(_SSLMODES))}."
            )
        connect_args["ssl"] = _ssl_setting(sslmode, sslrootcert)
    timeout = _single(query.pop("connect_timeout", None), "connect_timeout", url)
    if timeout is not None:
        try:
            seconds = float(timeout)
        except ValueError:
            raise SettingsError(
                f"connect_timeout={timeout!r} in {mask_url(url)!r} is not a number of seconds."
            ) from None
        # libpq treats 0 as "wait forever"; keep a bound so cold starts can't hang a notebook.
        connect_args["timeout"] = seconds if seconds > 0 else DEFAULT_CONNECT_TIMEOUT
    application_name = _single(query.pop("application_name", None), "application_name", url)
    if application_name:
        server_settings["application_name"] = application_name
    options = _single(query.pop("options", None), "options", url)
    if options:
        server_settings.update(_parse_options(options, url))
    target_session_attrs = _single(query.pop("target_session_attrs", None), "target_session_attrs", url)
    if target_session_attrs:
        connect_args["target_session_attrs"] = target_session_attrs
    for name in _IGNORED_PARAMS:
        query.pop(name, None)
    if query:
        raise SettingsError(
            f"Unsupported parameter(s) {', '.join(sorted(query))} in {mask_url(url)!r}: "
            "supported are sslmode, sslrootcert, channel_binding, connect_timeout, "
            "application_name, options and target_session_attrs."
        )
    if server_settings:
        connect_args["server_settings"] = server_settings
    return DatabaseTarget(
        url=url.set(drivername="postgresql+asyncpg", query={}),
        backend="postgresql",
        connect_args=connect_args,
        pooled=is_neon_pooler_host(url.host) if pooled is None else pooled,
    )


def _single(value: str | tuple[str, ...] | None, name: str, url: URL) -> str | None:
    if isinstance(value, tuple):
        raise SettingsError(f"Parameter {name} is given more than once in {mask_url(url)!r}.")
    return value


def _ssl_setting(sslmode: str, sslrootcert: str | None) -> str | bool | ssl.SSLContext:
    if sslmode == "disable":
        return False
    if sslrootcert and sslmode in {"verify-ca", "verify-full"}:
        context = ssl.create_default_context(cafile=sslrootcert)
        context.check_hostname = sslmode == "verify-full"
        return context
    return sslmode


def _parse_options(options: str, url: URL) -> dict[str, str]:
    """Translate libpq ``options`` into server settings.

    ``endpoint=ep-…`` is Neon's routing hint for clients without SNI; asyncpg sends SNI,
    so it is dropped. ``-c name=value`` (or ``--name=value``) become server settings.
    """
    settings: dict[str, str] = {}
    tokens = options.split()
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token.startswith("endpoint="):
            i += 1
            continue
        if token == "-c" and i + 1 < len(tokens):
            token, i = tokens[i + 1], i + 2
        elif token.startswith("-c") or token.startswith("--"):
            token, i = token[2:], i + 1
        else:
            raise SettingsError(
                f"options={options!r} in {mask_url(url)!r} is not understood: use endpoint=… or -c name=value."
            )
        name, sep, value = token.partition("=")
        if not sep or not name:
            raise SettingsError(f"options={options!r} in {mask_url(url)!r}: expected name=value.")
        settings[name.replace("-", "_")] = value
    return settings
