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
from pathlib import Path
from typing import Any, Final, Literal
from urllib.parse import quote, unquote

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from todo_data.errors import SettingsError

Backend = Literal["sqlite", "postgresql"]

DEFAULT_CONNECT_TIMEOUT: Final = 10.0

_SQLITE_SCHEMES: Final = {"sqlite", "sqlite+aiosqlite"}
_POSTGRES_SCHEMES: Final = {"postgresql", "postgres", "postgresql+asyncpg", "postgres+asyncpg"}
# libpq's sslmode values, weakest first.
SSLMODES: Final = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
# ssl= is asyncpg's and SQLAlchemy's spelling of sslmode. Its booleans mean what asyncpg's
# ssl=True/False mean: True verifies the server against the system trust store.
_SSL_BOOLEANS: Final = {"true": "verify-full", "false": "disable"}
#: ``sslrootcert=system``: the operating system's trust store (libpq 16).
SYSTEM_ROOTCERT: Final = "system"
# libpq parameters with no asyncpg equivalent that are safe to leave out.
# channel_binding: asyncpg authenticates with SCRAM-SHA-256 but has no channel binding
# (SCRAM-SHA-256-PLUS); Neon accepts plain SCRAM over TLS, so the URL works as pasted.
_IGNORED_PARAMS: Final = {
    "channel_binding",
    "gssencmode",
    "krbsrvname",
    "fallback_application_name",
}
# user:password@ in text that may not parse: the password runs to the last '@' of the
# word (an unencoded '@' in it must not leave its end visible), the user name may hold '@'.
_USERINFO = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<user>[^:/?#\s]*):(?P<password>\S*)@", re.I)
_SCHEME_USER = re.compile(r"\s*(?P<scheme>[a-z][a-z0-9+.-]*)://(?P<user>[^:/@?#\s]*)", re.I)
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
    """``text`` with every given secret (and its percent-decoded and -encoded forms) replaced by ``***``.

    Only whole: a secret is replaced where no letter or digit continues it, so a short
    password masks itself, never part of another word ("Name or service not known").
    """
    for secret in secrets:
        if not secret:
            continue
        # Longest first: a form inside another must not leave the rest of it showing.
        for form in sorted({secret, unquote(secret), quote(secret, safe="")}, key=len, reverse=True):
            start = r"(?<!\w)" if re.match(r"\w", form[0]) else ""
            end = r"(?!\w)" if re.match(r"\w", form[-1]) else ""
            text = re.sub(start + re.escape(form) + end, "***", text)
    return _USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}:***@", text)


@dataclass(frozen=True)
class DatabaseTarget:
    """A parsed database URL, ready for :func:`sqlalchemy.ext.asyncio.create_async_engine`."""

    url: URL
    backend: Backend
    connect_args: dict[str, Any] = field(default_factory=dict)
    pooled: bool = False
    tls: str | None = None
    """How TLS is used (``sslmode=verify-full, sslrootcert=system``); None for SQLite."""

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
    if isinstance(raw, str):
        _refuse_several_at_signs(raw)
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
    tls, ssl_setting = _tls(query, url)
    if ssl_setting is not None:
        connect_args["ssl"] = ssl_setting
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
            "supported are sslmode (or ssl), sslrootcert, channel_binding, connect_timeout, "
            "application_name, options and target_session_attrs."
        )
    if server_settings:
        connect_args["server_settings"] = server_settings
    return DatabaseTarget(
        url=url.set(drivername="postgresql+asyncpg", query={}),
        backend="postgresql",
        connect_args=connect_args,
        pooled=is_neon_pooler_host(url.host) if pooled is None else pooled,
        tls=tls,
    )


def _refuse_several_at_signs(raw: str) -> None:
    """Refuse a PostgreSQL URL with more than one ``@``, showing nothing after its user name.

    Where the password ends is then a guess: libpq ends the user part at the first ``@``
    and would look up what follows, a piece of the password, as the host name; SQLAlchemy
    reads it differently. Refused before any network access.
    """
    found = _SCHEME_USER.match(raw)
    if found is None or found["scheme"].lower() not in _POSTGRES_SCHEMES or raw.count("@", found.end()) < 2:
        return
    raise SettingsError(
        f"Database URL '{found['scheme']}://{found['user']}…' holds more than one '@', so where its password "
        "ends and its host begins is ambiguous: percent-encode each '@' in the password (or user name) as %40, "
        "as in postgresql://user:p%40ss@host/db."
    )


def _single(value: str | tuple[str, ...] | None, name: str, url: URL) -> str | None:
    if isinstance(value, tuple):
        raise SettingsError(f"Parameter {name} is given more than once in {mask_url(url)!r}.")
    return value


def _tls(query: dict[str, Any], url: URL) -> tuple[str, str | bool | ssl.SSLContext | None]:
    """How to use TLS, from ``sslmode``/``ssl`` and ``sslrootcert`` (removed from ``query``).

    Returns a description (``sslmode=verify-full, sslrootcert=system``) and asyncpg's
    ``ssl`` argument (None: the driver's default, ``prefer``). A root certificate that
    cannot be used is refused here, when the URL is read, not at the first connect.
    """
    ssl_given = _single(query.pop("ssl", None), "ssl", url)
    sslmode = _sslmode(_single(query.pop("sslmode", None), "sslmode", url), "sslmode", url)
    from_ssl = _sslmode(ssl_given, "ssl", url)
    if sslmode and from_ssl and sslmode != from_ssl:
        raise SettingsError(f"ssl={ssl_given} and sslmode={sslmode} disagree in {mask_url(url)!r}: give one of them.")
    mode = sslmode or from_ssl
    given = "sslmode" if sslmode else "ssl"
    rootcert = _single(query.pop("sslrootcert", None), "sslrootcert", url)
    if rootcert is None and (ssl_given or "").strip().lower() == "true":
        rootcert = SYSTEM_ROOTCERT  # asyncpg's ssl=True: the default context, the system's CAs
    if rootcert == SYSTEM_ROOTCERT:
        # libpq 16: sslrootcert=system makes verify-full the default and refuses weaker
        # modes, since anyone can get a publicly trusted certificate for a host they own.
        if mode not in (None, "verify-full"):
            raise SettingsError(
                f"{given}={mode} cannot be used with sslrootcert=system in {mask_url(url)!r}: "
                "the system's trust store only proves who the server is with sslmode=verify-full "
                "(leave sslmode out, or set it to verify-full), as libpq does."
            )
        mode = "verify-full"
    elif rootcert is not None and not Path(rootcert).is_file():
        raise SettingsError(
            f"sslrootcert={rootcert!r} in {mask_url(url)!r}: the file does not exist. Give the path of the "
            "server's root certificate, or sslrootcert=system for the operating system's trust store."
        )
    if mode is None:
        return "sslmode=prefer (the default)", None
    if mode == "disable":
        return "sslmode=disable (no TLS)", False
    # libpq uses a root certificate in the verify modes and, for compatibility, in require
    # (which then verifies the certificate authority like verify-ca).
    if rootcert is None or mode in ("allow", "prefer"):
        return f"sslmode={mode}", mode
    return f"sslmode={mode}, sslrootcert={rootcert}", _ssl_context(mode, rootcert, url)


def _sslmode(raw: str | None, name: str, url: URL) -> str | None:
    """The libpq sslmode that ``name=raw`` (``sslmode=`` or ``ssl=``) means."""
    if raw is None:
        return None
    value = raw.strip().lower()
    if name == "ssl":
        value = _SSL_BOOLEANS.get(value, value)
    if value not in SSLMODES:
        accepted = ", ".join((*SSLMODES, *(_SSL_BOOLEANS if name == "ssl" else ())))
        raise SettingsError(f"{name}={raw!r} in {mask_url(url)!r} is not one of {accepted}.")
    return value


def _ssl_context(mode: str, rootcert: str, url: URL) -> ssl.SSLContext:
    try:
        context = ssl.create_default_context(cafile=None if rootcert == SYSTEM_ROOTCERT else rootcert)
    except ssl.SSLError:
        raise SettingsError(
            f"sslrootcert={rootcert!r} in {mask_url(url)!r}: the file holds no PEM certificate."
        ) from None
    except OSError as exc:
        raise SettingsError(f"sslrootcert={rootcert!r} in {mask_url(url)!r}: {exc.strerror}.") from None
    context.check_hostname = mode == "verify-full"
    return context


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
