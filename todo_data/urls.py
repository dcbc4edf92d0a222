"""Database URLs: parse what users paste, translate it for the async drivers, mask it.

A connection string copied from the Neon console is a libpq URL
(``postgresql://user:pass@ep-x.region.aws.neon.tech/neondb?sslmode=require&channel_binding=require``);
``psql`` users also write keyword/value strings, rely on PG* variables, ``~/.pgpass`` and
services. They are read as libpq reads them (:mod:`todo_data._conninfo`) and translated
here, in one place, into asyncpg's connect arguments before an engine is built.
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

from todo_data import _conninfo
from todo_data._conninfo import DEFAULT_PORT, Endpoint
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
# ... and in keyword/value strings (password=secret, password='a secret').
_SECRET_KEYWORD = re.compile(
    r"(?P<key>(?<![\w?&])(?:" + "|".join(_SECRET_PARAMS) + r")\s*=\s*)"
    # a quoted value, or a bare one and the words after it up to the next keyword=
    r"(?:'(?:[^'\\]|\\.)*'?|[^\s']\S*(?:\s+(?![\w.-]+\s*=)[^\s=]+)*)",
    re.I,
)


def mask_url(url: str | URL) -> str:
    """The URL with its password replaced by ``***``; works on URLs that don't parse."""
    if isinstance(url, URL):
        secrets = {key: "***" for key in url.query if key.lower() in _SECRET_PARAMS}
        return (url.update_query_dict(secrets) if secrets else url).render_as_string(hide_password=True)
    masked = _SECRET_QUERY.sub(r"\g<key>***", _USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}:***@", url))
    return _SECRET_KEYWORD.sub(r"\g<key>***", masked)


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
    endpoints: tuple[Endpoint, ...] = ()
    """PostgreSQL: the hosts tried in order (names, addresses, socket directories) with their ports."""
    origins: tuple[str, ...] = ()
    """Where the parts the string did not give came from (``password from ~/.pgpass``, ``host from PGHOST``)."""
    password_source: str | None = None
    """Where the password came from when not from the string (``~/.pgpass``, ``PGPASSWORD``)."""

    @property
    def masked(self) -> str:
        """The URL as given to the driver, password masked."""
        return mask_url(self.url)

    @property
    def hosts(self) -> str:
        """``h1:5433, h2`` (the port when not 5432), or a socket path: where the server is looked for."""
        if not self.endpoints:
            return self.url.host or "localhost"
        return ", ".join(
            f"socket {e}" if e.is_socket else str(e) if e.port != DEFAULT_PORT else _bracketed(e.host)
            for e in self.endpoints
        )

    def describe(self) -> str:
        """``database "db" on host:port as user "u"`` for error messages (never the password)."""
        if self.backend == "sqlite":
            return f'SQLite database "{self.url.database or ":memory:"}"'
        return f'database "{self.url.database or ""}" on {self.hosts} as user "{self.url.username or ""}"'

    def __repr__(self) -> str:
        return f"DatabaseTarget({self.masked!r}, pooled={self.pooled})"


def _bracketed(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def is_neon_pooler_host(host: str | None) -> bool:
    """Neon's pooled endpoints carry ``-pooler`` in the first label of their host name."""
    return bool(host) and "-pooler" in (host or "").split(".", 1)[0]


# A URI as libpq reads it (postgresql:// or postgres://), or as SQLAlchemy spells it (+asyncpg).
_URI = re.compile(r"\s*(?P<scheme>[a-z][a-z0-9+.-]*)://", re.I)
# libpq parameters asyncpg has no use for and that change neither the server, the database
# nor the user: transport tuning, and options of authentication methods asyncpg lacks.
_HARMLESS_PARAMS: Final = {
    "keepalives",
    "keepalives_idle",
    "keepalives_interval",
    "keepalives_count",
    "tcp_user_timeout",
    "sslcompression",
    "sslsni",
    "client_encoding",
}
# What is read from the resolved settings; anything else the string gives is refused.
_SUPPORTED_PARAMS: Final = {
    "host",
    "hostaddr",
    "port",
    "user",
    "password",
    "passfile",
    "dbname",
    "service",
    "sslmode",
    "sslrootcert",
    "connect_timeout",
    "application_name",
    "options",
    "target_session_attrs",
}


def parse_database_url(raw: str | URL, *, pooled: bool | None = None) -> DatabaseTarget:
    """Parse and translate a connection string, or raise :class:`SettingsError` saying why not.

    Every string libpq takes works: URIs (``postgresql://``, ``postgres://``, also with
    SQLAlchemy's ``+asyncpg``) whose query parameters override the authority, keyword/value
    strings (``host=… dbname=…``), Unix-socket directories, several hosts, ``service=``; what
    the string leaves out comes from the PG* environment, the OS user and ``~/.pgpass``, as
    in libpq (see :mod:`todo_data._conninfo`). ``ssl=`` (asyncpg's spelling) is taken like
    ``sslmode=``. SQLite URLs (``sqlite:///file.db``) are the other backend.
    ``pooled=None`` detects Neon's ``-pooler`` hosts; ``True``/``False`` forces it.
    Nothing here touches the network.
    """
    if isinstance(raw, URL):
        if raw.drivername in _SQLITE_SCHEMES:
            return DatabaseTarget(url=raw.set(drivername="sqlite+aiosqlite"), backend="sqlite")
        if raw.drivername not in _POSTGRES_SCHEMES:
            raise _unsupported_scheme(raw.drivername, mask_url(raw))
        shown = mask_url(raw)
        given, ssl_given = _from_url_object(raw, shown)
        return _postgres_target(given, ssl_given, shown, pooled=pooled)
    text = raw.strip()
    found = _URI.match(text)
    scheme = found["scheme"].lower() if found else None
    if scheme in _SQLITE_SCHEMES:
        try:
            url = make_url(text)
        except (ArgumentError, ValueError):
            raise SettingsError(
                f"Malformed database URL {mask_url(text)!r}: it is not of the form sqlite:///path."
            ) from None
        return DatabaseTarget(url=url.set(drivername="sqlite+aiosqlite"), backend="sqlite")
    if found is not None and scheme not in _POSTGRES_SCHEMES:
        raise _unsupported_scheme(found["scheme"], mask_url(text))
    shown = mask_url(text)
    ssl_given = None
    if found is not None:
        _refuse_several_at_signs(text)
        # libpq knows postgresql:// and postgres://; SQLAlchemy's +asyncpg names the driver.
        text, ssl_given = _take_ssl(f"{found['scheme'].lower().split('+')[0]}://{text[found.end() :]}", shown)
    try:
        given = _conninfo.parse(text)
    except SettingsError as exc:
        raise SettingsError(f"Malformed connection string {shown!r}: {_masked_reason(str(exc), text)}.") from None
    return _postgres_target(given, ssl_given, shown, pooled=pooled)


def _unsupported_scheme(scheme: str, shown: str) -> SettingsError:
    return SettingsError(
        f"Unsupported database URL scheme {scheme!r} in {shown!r}: "
        "use postgresql://… (or postgres://, postgresql+asyncpg://), a libpq keyword/value string "
        "(host=… dbname=…) or sqlite:///…"
    )


def _masked_reason(reason: str, text: str) -> str:
    """libpq's message about ``text`` (it quotes the string, or a piece of it), passwords masked."""
    reason = mask_url(reason.rstrip("."))
    for secret in _password_words(text):
        reason = scrub(reason, secret)
    return reason


# password= in a keyword/value string, quoted or not, and what follows it up to the next keyword=.
_KEYWORD_PASSWORD = re.compile(r"(?<![\w])(?:ssl)?password\s*=\s*(?P<value>.*?)(?=\s+\w+\s*=|$)", re.S)


# A URI's password: in the authority (user:password@), or a password= query parameter.
_URI_PASSWORD = re.compile(r"^[\w+.-]+://[^/?#@]*?:(?P<authority>[^/?#]*)@|[?&](?:ssl)?password=(?P<query>[^&#]*)")


def _password_words(text: str) -> list[str]:
    """The words of a password in ``text`` (and of what a parse error might take for one).

    libpq quotes the piece it refuses (``forbidden value %00 in percent-encoded value:
    "pw%00x"``), which may be the password itself, as written or percent-decoded.
    """
    words: list[str] = []
    for found in _KEYWORD_PASSWORD.finditer(text):
        value = found["value"]
        words += [value, value.strip("'"), *(word.strip("'") for word in value.split())]
    for found in _URI_PASSWORD.finditer(text):
        value = found["authority"] or found["query"] or ""
        words += [value, unquote(value)]
    return sorted({word for word in words if word}, key=len, reverse=True)


def _take_ssl(uri: str, shown: str) -> tuple[str, str | None]:
    """The URI without its ``ssl=`` query parameters (asyncpg's spelling, which libpq refuses), and their value."""
    base, sep, query = uri.partition("?")
    if not sep:
        return uri, None
    kept: list[str] = []
    values: list[str] = []
    for pair in query.split("&"):
        key, _, value = pair.partition("=")
        if unquote(key) == "ssl":
            values.append(unquote(value))
        else:
            kept.append(pair)
    if len(values) > 1:
        raise SettingsError(f"Parameter ssl is given more than once in {shown!r}.")
    return (f"{base}?{'&'.join(kept)}" if kept else base), (values[0] if values else None)


def _from_url_object(url: URL, shown: str) -> tuple[dict[str, str], str | None]:
    """A SQLAlchemy URL's parts as libpq keywords (its query overriding the authority, as in libpq)."""
    given: dict[str, str] = {}
    for keyword, part in (
        ("user", url.username),
        ("password", url.password),
        ("host", url.host),
        ("port", str(url.port) if url.port else None),
        ("dbname", url.database),
    ):
        if part:
            given[keyword] = str(part)
    ssl_given: str | None = None
    known = _conninfo.keywords()
    for key, value in url.query.items():
        if not isinstance(value, str):
            raise SettingsError(f"Parameter {key} is given more than once in {shown!r}.")
        if key == "ssl":
            ssl_given = value
        elif key not in known:
            raise SettingsError(f'Malformed connection string {shown!r}: invalid URI query parameter: "{key}".')
        else:
            given[key] = value
    return given, ssl_given


def _postgres_target(
    given: dict[str, str], ssl_given: str | None, shown: str, *, pooled: bool | None
) -> DatabaseTarget:
    """Resolve the parsed keywords as libpq does and translate them into asyncpg's arguments."""
    if "host" in given and "@" in given["host"]:
        # user:p@ss@host parses with part of the password as the host: never show it.
        raise SettingsError(
            f"Database URL for database {given.get('dbname')!r} has an '@' in its password: percent-encode it as %40."
        )
    try:
        info = _conninfo.resolve(given)
        _conninfo.validate(info.options)
    except SettingsError as exc:
        raise SettingsError(f"Connection string {shown!r} is refused: {exc}.") from None
    options = dict(info.options)
    env_vars = _conninfo.keywords()
    # What the environment sets for a parameter asyncpg cannot use is left out, as a
    # variable meant for another program; given in the string or a service, it is refused.
    unsupported = sorted(
        key
        for key in options
        if key not in _SUPPORTED_PARAMS | _HARMLESS_PARAMS | _IGNORED_PARAMS
        and not (key in info.sources and info.sources[key] == env_vars.get(key))
    )
    if unsupported:
        raise SettingsError(
            f"Unsupported parameter(s) {', '.join(unsupported)} in {shown!r}: libpq knows them but asyncpg, "
            "which todo_data connects with, cannot honour them. Supported are host, hostaddr, port, user, "
            "password, passfile, dbname, service, sslmode (or ssl), sslrootcert, channel_binding, "
            "connect_timeout, application_name, options and target_session_attrs."
        )
    connect_args: dict[str, Any] = {"timeout": DEFAULT_CONNECT_TIMEOUT}
    server_settings: dict[str, str] = {}
    tls, ssl_setting = _tls(options, ssl_given, shown, info.sources)
    connect_args["ssl"] = ssl_setting
    timeout = options.get("connect_timeout")
    if timeout is not None:
        try:
            seconds = int(timeout.strip())
        except ValueError:
            raise SettingsError(
                f"connect_timeout={timeout!r}{_from(info.sources, 'connect_timeout')} in {shown!r} is not a whole "
                f'number of seconds (libpq: invalid integer value "{timeout}" for connection option "connect_timeout").'
            ) from None
        # libpq treats 0 (or less) as "wait forever"; keep a bound so cold starts can't hang a notebook.
        connect_args["timeout"] = float(seconds) if seconds > 0 else DEFAULT_CONNECT_TIMEOUT
    if options.get("application_name"):
        server_settings["application_name"] = options["application_name"]
    if options.get("options"):
        server_settings.update(_parse_options(options["options"], shown))
    if options.get("target_session_attrs"):
        connect_args["target_session_attrs"] = options["target_session_attrs"]
    if server_settings:
        connect_args["server_settings"] = server_settings
    endpoints = info.endpoints
    many = len(endpoints) > 1
    connect_args["host"] = [e.address for e in endpoints] if many else endpoints[0].address
    connect_args["port"] = [e.port for e in endpoints] if many else endpoints[0].port
    connect_args["user"] = info.user
    connect_args["database"] = info.dbname
    if info.password is not None:
        connect_args["password"] = info.password
    first = endpoints[0]
    if many or first.is_socket or first.hostaddr:
        # libpq's spelling of several hosts or a socket directory, which this module reads back.
        location: dict[str, Any] = {
            "query": {"host": ",".join(e.host for e in endpoints), "port": ",".join(str(e.port) for e in endpoints)}
        }
    else:
        location = {"host": first.host, "port": first.port}
    url = URL.create("postgresql+asyncpg", username=info.user, password=info.password, database=info.dbname, **location)
    password_source = info.sources.get("password")
    return DatabaseTarget(
        url=url,
        backend="postgresql",
        connect_args=connect_args,
        pooled=any(is_neon_pooler_host(e.host) for e in endpoints) if pooled is None else pooled,
        tls=tls,
        endpoints=endpoints,
        origins=tuple(info.origins()),
        password_source=password_source,
    )


def _from(sources: dict[str, str] | Any, key: str) -> str:
    """`` (from PGSSLMODE)`` when the value did not come from the string."""
    source = sources.get(key)
    return f" (from {source})" if source else ""


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


def _tls(
    options: dict[str, str], ssl_given: str | None, shown: str, sources: dict[str, str] | Any
) -> tuple[str, str | bool | ssl.SSLContext]:
    """How to use TLS, from ``sslmode`` (or ``ssl``) and ``sslrootcert``, wherever they came from.

    Returns a description (``sslmode=verify-full, sslrootcert=system``) and asyncpg's
    ``ssl`` argument. A root certificate that cannot be used is refused here, when the
    URL is read, not at the first connect.
    """
    raw_mode = options.get("sslmode")
    sslmode = _sslmode(raw_mode, "sslmode" + _from(sources, "sslmode"), shown, ssl_spelling=False)
    from_ssl = _sslmode(ssl_given, "ssl", shown, ssl_spelling=True)
    if sslmode and from_ssl and sslmode != from_ssl:
        raise SettingsError(f"ssl={ssl_given} and sslmode={sslmode} disagree in {shown!r}: give one of them.")
    mode = sslmode or from_ssl
    given = "sslmode" if sslmode else "ssl"
    rootcert = options.get("sslrootcert")
    if rootcert is None and (ssl_given or "").strip().lower() == "true":
        rootcert = SYSTEM_ROOTCERT  # asyncpg's ssl=True: the default context, the system's CAs
    where = f"sslrootcert={rootcert!r}{_from(sources, 'sslrootcert')} in {shown!r}"
    if rootcert == SYSTEM_ROOTCERT:
        # libpq 16: sslrootcert=system makes verify-full the default and refuses weaker
        # modes, since anyone can get a publicly trusted certificate for a host they own.
        if mode not in (None, "verify-full"):
            raise SettingsError(
                f"{given}={mode} cannot be used with sslrootcert=system in {shown!r}: "
                "the system's trust store only proves who the server is with sslmode=verify-full "
                "(leave sslmode out, or set it to verify-full), as libpq does."
            )
        mode = "verify-full"
    elif rootcert is not None and not Path(rootcert).expanduser().is_file():
        raise SettingsError(
            f"{where}: the file does not exist. Give the path of the "
            "server's root certificate, or sslrootcert=system for the operating system's trust store."
        )
    if mode is None:
        return "sslmode=prefer (the default)", "prefer"
    if mode == "disable":
        return "sslmode=disable (no TLS)", False
    # libpq uses a root certificate in the verify modes and, for compatibility, in require
    # (which then verifies the certificate authority like verify-ca).
    if rootcert is None or mode in ("allow", "prefer"):
        return f"sslmode={mode}", mode
    return f"sslmode={mode}, sslrootcert={rootcert}", _ssl_context(
        mode, str(Path(rootcert).expanduser()) if rootcert != SYSTEM_ROOTCERT else rootcert, where
    )


def _sslmode(raw: str | None, name: str, shown: str, *, ssl_spelling: bool) -> str | None:
    """The libpq sslmode that ``name=raw`` (``sslmode=`` or ``ssl=``) means."""
    if raw is None:
        return None
    value = raw.strip().lower()
    if ssl_spelling:
        value = _SSL_BOOLEANS.get(value, value)
    if value not in SSLMODES:
        accepted = ", ".join((*SSLMODES, *(_SSL_BOOLEANS if ssl_spelling else ())))
        key, _, source = name.partition(" ")
        raise SettingsError(f"{key}={raw!r}{' ' + source if source else ''} in {shown!r} is not one of {accepted}.")
    return value


def _ssl_context(mode: str, rootcert: str, where: str) -> ssl.SSLContext:
    try:
        context = ssl.create_default_context(cafile=None if rootcert == SYSTEM_ROOTCERT else rootcert)
    except ssl.SSLError:
        raise SettingsError(f"{where}: the file holds no PEM certificate.") from None
    except OSError as exc:
        raise SettingsError(f"{where}: {exc.strerror}.") from None
    context.check_hostname = mode == "verify-full"
    return context


def _parse_options(options: str, shown: str) -> dict[str, str]:
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
            raise SettingsError(f"options={options!r} in {shown!r} is not understood: use endpoint=… or -c name=value.")
        name, sep, value = token.partition("=")
        if not sep or not name:
            raise SettingsError(f"options={options!r} in {shown!r}: expected name=value.")
        settings[name.replace("-", "_")] = value
    return settings
