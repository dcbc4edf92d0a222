"""Connection settings as libpq reads them: the string, its service, the PG* environment, ~/.pgpass.

The grammar of connection strings (URIs and keyword/value strings, quoting, percent-decoding,
every error message) is libpq's own: :func:`parse` calls ``PQconninfoParse`` through psycopg's
binding, so there is one parser of that grammar, libpq's, and no hand-written second one.
libpq has no call that applies the defaults without connecting (``PQconnectStart`` resolves
host names and opens a socket), so what libpq does next is done here, before any network
access, in libpq's order and with libpq's messages: the service file (``service=``,
``PGSERVICE``), the PG* environment, the compiled-in defaults (the OS user, the user name as
database), then the password file (``passfile``, ``PGPASSFILE``, ``~/.pgpass``), and the
checks libpq makes before its first connect (host/port counts, port numbers). Each value
remembers where it came from, so messages and notebooks can say so.
"""

from __future__ import annotations

import getpass
import os
import stat
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Final

from todo_data.errors import SettingsError, TodoDataWarning

DEFAULT_PORT: Final = 5432
#: Where libpq builds look for the server's socket when no host is given, most common first
#: (Debian's and Red Hat's libpq: /var/run/postgresql, /run/postgresql; upstream's: /tmp).
DEFAULT_SOCKET_DIRS: Final = ("/var/run/postgresql", "/run/postgresql", "/tmp")
#: libpq's host name for a Unix-socket connection in ``.pgpass`` (its ``DefaultHost``).
PGPASS_LOCALHOST: Final = "localhost"
TARGET_SESSION_ATTRS: Final = ("any", "read-write", "read-only", "primary", "standby", "prefer-standby")
CHANNEL_BINDINGS: Final = ("disable", "prefer", "require")


@cache
def keywords() -> dict[str, str | None]:
    """libpq's connection keywords and the environment variable of each (None: none), from libpq itself."""
    from psycopg import pq

    return {
        option.keyword.decode(): option.envvar.decode() if option.envvar else None
        for option in pq.Conninfo.get_defaults()
    }


def parse(conninfo: str) -> dict[str, str]:
    """The keywords a connection string gives, as libpq parses it (``PQconninfoParse``).

    Raises :class:`SettingsError` with libpq's own message (``missing "=" after "x" in
    connection info string``, ``invalid URI query parameter: "zzz"`` …), which quotes the
    string: the caller masks it.
    """
    import psycopg
    from psycopg.conninfo import conninfo_to_dict

    try:
        parsed = conninfo_to_dict(conninfo)
    except psycopg.ProgrammingError as exc:
        raise SettingsError(" ".join(str(exc).split())) from None
    return {key: str(value) for key, value in parsed.items()}


def home() -> Path | None:
    """The home directory libpq uses: ``HOME``, else the password database's."""
    value = os.environ.get("HOME")
    if value:
        return Path(value)
    try:
        return Path.home()
    except (RuntimeError, KeyError):
        return None


def shown_path(path: Path) -> str:
    """``~/.pgpass`` for a file in the home directory, else the path as it is."""
    where = home()
    if where is not None:
        try:
            return f"~/{path.relative_to(where)}"
        except ValueError:
            pass
    return str(path)


@dataclass(frozen=True)
class Endpoint:
    """One host to try: a host name, an IP address or a Unix-socket directory, and its port."""

    host: str
    port: int
    hostaddr: str | None = None
    """libpq's ``hostaddr``: the address to connect to instead of resolving ``host``."""

    @property
    def is_socket(self) -> bool:
        """Whether this is a Unix-socket directory (libpq: a host starting with ``/``)."""
        return self.host.startswith("/") and not self.hostaddr

    @property
    def address(self) -> str:
        """What the driver connects to: ``hostaddr`` when given, else ``host``."""
        return self.hostaddr or self.host

    def __str__(self) -> str:
        if self.is_socket:
            return f"{self.host}/.s.PGSQL.{self.port}"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


@dataclass(frozen=True)
class Conninfo:
    """Connection settings after libpq's defaults: every keyword with a value, and where it came from."""

    options: Mapping[str, str]
    """libpq keyword → value (the password included: never show this mapping)."""
    endpoints: tuple[Endpoint, ...]
    sources: Mapping[str, str] = field(default_factory=dict)
    """keyword → where its value came from, for the values the string did not give."""

    @property
    def user(self) -> str:
        return self.options["user"]

    @property
    def dbname(self) -> str:
        return self.options["dbname"]

    @property
    def password(self) -> str | None:
        return self.options.get("password") or None

    def origins(self) -> list[str]:
        """Where the parts not given by the string came from, for people.

        ``["host from PGHOST", "password from ~/.pgpass", "service todo from ~/.pg_service.conf (host, dbname)"]``
        """
        services: dict[str, list[str]] = {}
        said: list[str] = []
        for key, source in self.sources.items():
            if key not in _TOLD:
                continue  # passfile, say: its effect is told as "password from …"
            if source.startswith("service "):
                services.setdefault(source, []).append(key)
            else:
                said.append(f"{_PART_NAMES.get(key, key)} from {source}")
        for source, keys in services.items():
            said.append(f"{source} ({', '.join(_PART_NAMES.get(key, key) for key in keys)})")
        return said


_PART_NAMES: Final = {"dbname": "database"}
# The parts worth telling where they came from.
_TOLD: Final = frozenset(
    {
        "service",
        "host",
        "hostaddr",
        "port",
        "user",
        "password",
        "dbname",
        "sslmode",
        "sslrootcert",
        "options",
        "application_name",
        "target_session_attrs",
        "connect_timeout",
    }
)


def resolve(given: Mapping[str, str], *, environ: Mapping[str, str] | None = None) -> Conninfo:
    """Apply libpq's defaults to the keywords a string gave, in libpq's order.

    1. the service (``service=`` or ``PGSERVICE``) fills what the string left out;
    2. then the PG* environment variables; 3. then the OS user as ``user`` and the user
    name as ``dbname``; 4. with no password, the password file is read for the first
    host that has a matching line. Empty values count as not given, as in libpq.
    Raises :class:`SettingsError` for what libpq would refuse before connecting.
    """
    env = os.environ if environ is None else environ
    options = {key: value for key, value in given.items() if value != ""}
    sources: dict[str, str] = {}
    service = options.get("service")
    if service is None and env.get("PGSERVICE"):
        service = options["service"] = env["PGSERVICE"]
        sources["service"] = "PGSERVICE"
    if service is not None:
        _apply_service(service, options, sources, env)
    for key, variable in keywords().items():
        if key not in options and variable and env.get(variable):
            options[key] = env[variable]
            sources[key] = variable
    if "user" not in options:
        options["user"] = _os_user()
        sources["user"] = f"the operating system ({options['user']})"
    if "dbname" not in options:
        options["dbname"] = options["user"]
        sources["dbname"] = "the user name"
    endpoints = _endpoints(options, sources)
    if "password" not in options:
        found = _password_from_file(options, endpoints, env)
        if found is not None:
            options["password"], sources["password"] = found
    return Conninfo(options=options, endpoints=endpoints, sources=sources)


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        raise SettingsError(
            "could not look up the local user name: give user= in the connection string or set PGUSER"
        ) from None


# -- the service file ---------------------------------------------------------------------


def service_files(env: Mapping[str, str]) -> list[Path]:
    """The service files libpq reads, in order: ``PGSERVICEFILE`` or ``~/.pg_service.conf``,
    then ``pg_service.conf`` in ``PGSYSCONFDIR`` (default: the system's)."""
    files: list[Path] = []
    if env.get("PGSERVICEFILE"):
        files.append(Path(env["PGSERVICEFILE"]))
    elif (where := home()) is not None:
        files.append(where / ".pg_service.conf")
    for directory in (env["PGSYSCONFDIR"],) if env.get("PGSYSCONFDIR") else ("/etc/postgresql-common", "/etc"):
        files.append(Path(directory) / "pg_service.conf")
    return files


def _apply_service(service: str, options: dict[str, str], sources: dict[str, str], env: Mapping[str, str]) -> None:
    """Fill the keywords the string left out from the service's section, as libpq's parseServiceFile."""
    for path in service_files(env):
        if not path.is_file():
            continue
        section = _service_section(path, service)
        if section is None:
            continue
        where = f"service {service} from {shown_path(path)}"
        for key, value in section.items():
            if key not in options:
                options[key] = value
                sources[key] = where
        if sources.get("service") is None:
            sources["service"] = where
        return
    looked = ", ".join(shown_path(path) for path in service_files(env))
    raise SettingsError(
        f'definition of service "{service}" not found (looked in {looked}): add a [{service}] section, '
        "or set PGSERVICEFILE to the file that has it"
    )


def _service_section(path: Path, service: str) -> dict[str, str] | None:
    """The ``key=value`` lines of ``[service]`` in a service file; None when it has no such section."""
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as exc:
        raise SettingsError(f'service file "{path}" could not be read: {exc.strerror}') from None
    found: dict[str, str] | None = None
    known = keywords()
    for number, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            if found is not None:
                break  # the end of the wanted section
            if line.startswith(f"[{service}]"):  # libpq ignores what follows the "]"
                found = {}
            continue
        if found is None:
            continue
        key, sep, value = line.partition("=")
        if key == "service":
            raise SettingsError(f'nested service specifications not supported in service file "{path}", line {number}')
        if not sep or key not in known:
            raise SettingsError(f'syntax error in service file "{path}", line {number}')
        found.setdefault(key, value)
    return found


# -- hosts and ports ----------------------------------------------------------------------


def _endpoints(options: dict[str, str], sources: dict[str, str]) -> tuple[Endpoint, ...]:
    """The hosts to try, in order, as libpq's connectOptions2 pairs hosts, hostaddrs and ports."""
    hosts = options["host"].split(",") if "host" in options else None
    hostaddrs = options["hostaddr"].split(",") if "hostaddr" in options else None
    count = len(hosts or hostaddrs or [""])
    if hosts is not None and hostaddrs is not None and len(hosts) != len(hostaddrs):
        raise SettingsError(f"could not match {len(hosts)} host names to {len(hostaddrs)} hostaddr values")
    ports = options["port"].split(",") if "port" in options else [""]
    if len(ports) == 1:
        ports = ports * count
    elif len(ports) != count:
        raise SettingsError(f"could not match {len(ports)} port numbers to {count} hosts")
    default_host = None
    endpoints = []
    for i in range(count):
        port = _port(ports[i].strip())
        host = hosts[i].strip() if hosts is not None else ""
        hostaddr = hostaddrs[i].strip() if hostaddrs is not None else ""
        if not host and not hostaddr:
            default_host = host = _default_socket_dir(port)
        endpoints.append(Endpoint(host=host or hostaddr, port=port, hostaddr=hostaddr or None))
    if default_host is not None and "host" not in options:
        sources["host"] = "the default socket directory"
    return tuple(endpoints)


def _port(value: str) -> int:
    if not value:
        return DEFAULT_PORT
    try:
        number = int(value)
    except ValueError:
        raise SettingsError(f'invalid integer value "{value}" for connection option "port"') from None
    if not 1 <= number <= 65535:
        raise SettingsError(f'invalid port number: "{value}"')
    return number


def _default_socket_dir(port: int) -> str:
    """libpq's default host, a socket directory: the first holding this port's socket, else the first that exists."""
    existing = [path for path in DEFAULT_SOCKET_DIRS if Path(path).is_dir()]
    for path in existing:
        if Path(path, f".s.PGSQL.{port}").exists():
            return path
    return existing[0] if existing else DEFAULT_SOCKET_DIRS[0]


# -- the password file --------------------------------------------------------------------


def _password_from_file(
    options: Mapping[str, str], endpoints: tuple[Endpoint, ...], env: Mapping[str, str]
) -> tuple[str, str] | None:
    """The password and where it was found (``~/.pgpass``) for the first endpoint with a matching line."""
    if options.get("passfile"):
        path = Path(options["passfile"]).expanduser()
    elif (where := home()) is not None:
        path = where / ".pgpass"
    else:
        return None
    lines = _pgpass_lines(path)
    if not lines:
        return None
    for endpoint in endpoints:
        host = endpoint.host
        if not host or (endpoint.is_socket and host in DEFAULT_SOCKET_DIRS):
            host = PGPASS_LOCALHOST
        wanted = (host, str(endpoint.port), options["dbname"], options["user"])
        for line in lines:
            password = pgpass_match(line, wanted)
            if password is not None:
                return password, shown_path(path)
    return None


def _pgpass_lines(path: Path) -> list[str]:
    """The lines of a password file libpq would read; none (with a warning) when others may read it."""
    try:
        status = path.stat()
    except OSError:
        return []
    if not stat.S_ISREG(status.st_mode):
        warnings.warn(f'password file "{path}" is not a plain file', TodoDataWarning, stacklevel=2)
        return []
    if status.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        warnings.warn(
            f'password file "{path}" has group or world access; permissions should be u=rw (0600) or less '
            "(libpq ignores it, and so does todo_data)",
            TodoDataWarning,
            stacklevel=2,
        )
        return []
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    return [line.rstrip("\r") for line in text.split("\n") if line.rstrip("\r") and not line.startswith("#")]


def pgpass_match(line: str, wanted: tuple[str, str, str, str]) -> str | None:
    """The password of a ``.pgpass`` line when its four fields match ``wanted``, else None.

    libpq's rules: ``*`` alone matches anything; ``\\`` escapes ``:``, ``\\`` (and ``*``);
    the password runs to the next unescaped ``:`` and is de-escaped.
    """
    rest = line
    for token in wanted:
        after = _field_matches(rest, token)
        if after is None:
            return None
        rest = after
    password: list[str] = []
    i = 0
    while i < len(rest) and rest[i] != ":":
        if rest[i] == "\\" and i + 1 < len(rest):
            i += 1
        password.append(rest[i])
        i += 1
    return "".join(password)


def _field_matches(text: str, token: str) -> str | None:
    """The text after a field that matches ``token`` (libpq's pwdfMatchesString), else None."""
    if text.startswith("*:"):
        return text[2:]
    i = j = 0
    while i < len(text):
        escaped = False
        if text[i] == "\\":
            i += 1
            escaped = True
            if i == len(text):
                return None
        if text[i] == ":" and j == len(token) and not escaped:
            return text[i + 1 :]
        if j == len(token) or text[i] != token[j]:
            return None
        i += 1
        j += 1
    return None


def validate(options: Mapping[str, str]) -> None:
    """libpq's checks of keyword values made before the first connect (sslmode is checked by the caller)."""
    attrs = options.get("target_session_attrs")
    if attrs is not None and attrs not in TARGET_SESSION_ATTRS:
        raise SettingsError(f'invalid target_session_attrs value: "{attrs}" (one of {", ".join(TARGET_SESSION_ATTRS)})')
    binding = options.get("channel_binding")
    if binding is not None and binding not in CHANNEL_BINDINGS:
        raise SettingsError(f'invalid channel_binding value: "{binding}" (one of {", ".join(CHANNEL_BINDINGS)})')
