"""Connection settings as libpq reads them, without a server: its URI regression list, the
PG* environment, services and ``.pgpass`` (each test runs with no PG* variable and with
libpq's files pointed at nothing; see tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from todo_data._conninfo import parse, pgpass_match, resolve
from todo_data.errors import SettingsError, TodoDataWarning
from todo_data.urls import parse_database_url

# PostgreSQL's own list, src/interfaces/libpq/t/001_uri.pl: the string, what libpq parses
# it into ("(local)": a Unix socket, "(inet)": TCP), or the message it refuses it with.
LIBPQ_URI_CASES = [
    (
        "postgresql://uri-user:secret@host:12345/db",
        "user='uri-user' password='secret' dbname='db' host='host' port='12345' (inet)",
    ),
    ("postgresql://uri-user@host:12345/db", "user='uri-user' dbname='db' host='host' port='12345' (inet)"),
    ("postgresql://uri-user@host/db", "user='uri-user' dbname='db' host='host' (inet)"),
    ("postgresql://host:12345/db", "dbname='db' host='host' port='12345' (inet)"),
    ("postgresql://host/db", "dbname='db' host='host' (inet)"),
    ("postgresql://uri-user@host:12345/", "user='uri-user' host='host' port='12345' (inet)"),
    ("postgresql://uri-user@host/", "user='uri-user' host='host' (inet)"),
    ("postgresql://uri-user@", "user='uri-user' (local)"),
    ("postgresql://host:12345/", "host='host' port='12345' (inet)"),
    ("postgresql://host:12345", "host='host' port='12345' (inet)"),
    ("postgresql://host/", "host='host' (inet)"),
    ("postgresql://host", "host='host' (inet)"),
    ("postgresql://", "(local)"),
    ("postgresql://?hostaddr=127.0.0.1", "hostaddr='127.0.0.1' (inet)"),
    ("postgresql://example.com?hostaddr=63.1.2.4", "host='example.com' hostaddr='63.1.2.4' (inet)"),
    ("postgresql://%68ost/", "host='host' (inet)"),
    ("postgresql://host/db?user=uri-user", "user='uri-user' dbname='db' host='host' (inet)"),
    ("postgresql://host/db?user=uri-user&port=12345", "user='uri-user' dbname='db' host='host' port='12345' (inet)"),
    (
        "postgresql://host/db?u%73er=someotheruser&port=12345",
        "user='someotheruser' dbname='db' host='host' port='12345' (inet)",
    ),
    ("postgresql://host/db?u%7aer=someotheruser&port=12345", 'invalid URI query parameter: "uzer"'),
    ("postgresql://host:12345?user=uri-user", "user='uri-user' host='host' port='12345' (inet)"),
    ("postgresql://host?user=uri-user", "user='uri-user' host='host' (inet)"),
    ("postgresql://host?", "host='host' (inet)"),
    ("postgresql://[::1]:12345/db", "dbname='db' host='::1' port='12345' (inet)"),
    ("postgresql://[::1]/db", "dbname='db' host='::1' (inet)"),
    ("postgresql://[2001:db8::1234]/", "host='2001:db8::1234' (inet)"),
    ("postgresql://[200z:db8::1234]/", "host='200z:db8::1234' (inet)"),
    ("postgresql://[::1]", "host='::1' (inet)"),
    ("postgres://", "(local)"),
    ("postgres:///", "(local)"),
    ("postgres:///db", "dbname='db' (local)"),
    ("postgres://uri-user@/db", "user='uri-user' dbname='db' (local)"),
    ("postgres://?host=/path/to/socket/dir", "host='/path/to/socket/dir' (local)"),
    ("postgresql://host?uzer=", 'invalid URI query parameter: "uzer"'),
    ("postgre://", "Unsupported database URL scheme 'postgre'"),
    (
        "postgres://[::1",
        'end of string reached when looking for matching "]" in IPv6 host address in URI: "postgres://[::1"',
    ),
    ("postgres://[]", 'IPv6 host address may not be empty in URI: "postgres://[]"'),
    ("postgres://[::1]z", 'unexpected character "z" at position 17 in URI (expected ":" or "/"): "postgres://[::1]z"'),
    ("postgresql://host?zzz", 'missing key/value separator "=" in URI query parameter: "zzz"'),
    ("postgresql://host?value1&value2", 'missing key/value separator "=" in URI query parameter: "value1"'),
    ("postgresql://host?key=key=value", 'extra key/value separator "=" in URI query parameter: "key"'),
    ("postgres://host?dbname=%XXfoo", 'invalid percent-encoded token: "%XXfoo"'),
    ("postgresql://a%00b", 'forbidden value %00 in percent-encoded value: "a%00b"'),
    ("postgresql://%zz", 'invalid percent-encoded token: "%zz"'),
    ("postgresql://%1", 'invalid percent-encoded token: "%1"'),
    ("postgresql://%", 'invalid percent-encoded token: "%"'),
    ("postgres://@host", "host='host' (inet)"),
    ("postgres://host:/", "host='host' (inet)"),
    ("postgres://:12345/", "port='12345' (local)"),
    ("postgres://otheruser@?host=/no/such/directory", "user='otheruser' host='/no/such/directory' (local)"),
    ("postgres://otheruser@/?host=/no/such/directory", "user='otheruser' host='/no/such/directory' (local)"),
    (
        "postgres://otheruser@:12345?host=/no/such/socket/path",
        "user='otheruser' host='/no/such/socket/path' port='12345' (local)",
    ),
    (
        "postgres://otheruser@:12345/db?host=/path/to/socket",
        "user='otheruser' dbname='db' host='/path/to/socket' port='12345' (local)",
    ),
    ("postgres://:12345/db?host=/path/to/socket", "dbname='db' host='/path/to/socket' port='12345' (local)"),
    ("postgres://:12345?host=/path/to/socket", "host='/path/to/socket' port='12345' (local)"),
    ("postgres://%2Fvar%2Flib%2Fpostgresql/dbname", "dbname='dbname' host='/var/lib/postgresql' (local)"),
]


def _expected(line: str) -> tuple[dict[str, str], bool]:
    """libpq_uri_regress's output as keywords and whether it is a socket connection."""
    body, _, kind = line.rpartition(" ")
    if body == "":
        body, kind = "", line
    pairs = [pair.split("=", 1) for pair in body.split()] if body else []
    return {key: value.strip("'") for key, value in pairs}, kind == "(local)"


@pytest.mark.parametrize(("uri", "expected"), LIBPQ_URI_CASES, ids=[case[0] for case in LIBPQ_URI_CASES])
def test_libpq_uri_regression_list(uri: str, expected: str) -> None:
    if not expected.endswith(("(local)", "(inet)")):
        with pytest.raises(SettingsError) as refused:
            parse_database_url(uri)
        assert expected in str(refused.value)
        assert "secret" not in str(refused.value) and "\n" not in str(refused.value)
        return
    keywords, local = _expected(expected)
    assert parse(uri) == keywords
    target = parse_database_url(uri)
    assert target.endpoints[0].is_socket is local
    assert "secret" not in repr(target) and "secret" not in target.describe()


def test_keyword_value_strings_follow_libpq_quoting() -> None:
    assert parse(r"host=h port = 5433 dbname='my db' user=o\'brien password='a\'b\\c'") == {
        "host": "h",
        "port": "5433",
        "dbname": "my db",
        "user": "o'brien",
        "password": "a'b\\c",
    }
    target = parse_database_url("host=h dbname='my db' user=u password='p w'")
    assert (target.url.database, target.url.username, target.connect_args["password"]) == ("my db", "u", "p w")
    assert "p w" not in repr(target) and "p w" not in str(target.describe())


def test_query_parameters_override_the_authority_as_in_libpq() -> None:
    target = parse_database_url("postgresql://a:pw@h1:1/d1?user=b&host=h2&port=2&dbname=d2")
    assert target.describe() == 'database "d2" on h2:2 as user "b"'
    assert (target.connect_args["host"], target.connect_args["port"]) == ("h2", 2)


def test_a_repeated_query_parameter_takes_the_last_value_as_libpq_does() -> None:
    assert parse_database_url("postgresql://u@h/db?sslmode=require&sslmode=disable").tls == "sslmode=disable (no TLS)"


def test_several_hosts_are_tried_in_order_with_their_ports() -> None:
    target = parse_database_url("postgresql://u@h1:5432,[::1]:5433,h3/db?target_session_attrs=read-write")
    assert target.connect_args["host"] == ["h1", "::1", "h3"]
    assert target.connect_args["port"] == [5432, 5433, 5432]
    assert target.connect_args["target_session_attrs"] == "read-write"
    assert target.describe() == 'database "db" on h1, [::1]:5433, h3 as user "u"'
    # One port for every host, or one per host.
    assert parse_database_url("host=a,b port=6000 dbname=d user=u").connect_args["port"] == [6000, 6000]
    with pytest.raises(SettingsError, match="could not match 2 port numbers to 3 hosts"):
        parse_database_url("host=a,b,c port=1,2 dbname=d user=u")


def test_a_sqlalchemy_url_of_several_hosts_or_a_socket_reads_back_the_same() -> None:
    for raw in ("postgresql://u:pw@h1:5432,h2:5433/db", "postgres://u:pw@%2Ftmp%2Fsock:5444/db"):
        target = parse_database_url(raw)
        again = parse_database_url(target.url)
        assert (again.endpoints, again.url, again.connect_args) == (target.endpoints, target.url, target.connect_args)


def test_pg_variables_fill_what_the_string_leaves_out(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "PGHOST": "db.example",
        "PGPORT": "6543",
        "PGUSER": "envuser",
        "PGPASSWORD": "env-secret",
        "PGDATABASE": "envdb",
        "PGSSLMODE": "require",
        "PGAPPNAME": "notebook",
        "PGCONNECT_TIMEOUT": "4",
        "PGOPTIONS": "-c search_path=app",
        "PGTARGETSESSIONATTRS": "read-only",
    }.items():
        monkeypatch.setenv(name, value)
    target = parse_database_url("postgresql://")
    assert target.describe() == 'database "envdb" on db.example:6543 as user "envuser"'
    assert target.connect_args["password"] == "env-secret" and target.password_source == "PGPASSWORD"
    assert target.connect_args["ssl"] == "require" and target.connect_args["timeout"] == 4.0
    assert target.connect_args["server_settings"] == {"application_name": "notebook", "search_path": "app"}
    assert target.connect_args["target_session_attrs"] == "read-only"
    assert "host from PGHOST" in target.origins and "password from PGPASSWORD" in target.origins
    assert "env-secret" not in repr(target) and "env-secret" not in " ".join(target.origins)
    # The string wins over the environment.
    given = parse_database_url("postgresql://me:pw@h:5432/mine?sslmode=disable")
    assert given.describe() == 'database "mine" on h as user "me"'
    assert given.tls == "sslmode=disable (no TLS)" and given.connect_args["password"] == "pw"
    assert not any(origin.startswith(("host ", "user ", "database ", "port ")) for origin in given.origins)


def test_a_bad_value_from_the_environment_is_refused_naming_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PGSSLMODE", "sometimes")
    with pytest.raises(SettingsError, match=r"sslmode='sometimes' \(from PGSSLMODE\)"):
        parse_database_url("postgresql://u@h/db")
    monkeypatch.setenv("PGSSLMODE", "require")
    monkeypatch.setenv("PGPORT", "fifty")
    with pytest.raises(SettingsError, match='invalid integer value "fifty" for connection option "port"'):
        parse_database_url("postgresql://u@h/db")


def test_without_user_and_database_libpq_uses_the_os_user_and_its_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("getpass.getuser", lambda: "analyst")
    target = parse_database_url("postgresql://h")
    assert target.describe() == 'database "analyst" on h as user "analyst"'
    assert "user from the operating system (analyst)" in target.origins
    assert "database from the user name" in target.origins
    assert parse_database_url("postgresql://u:pw@h:5432/").url.database == "u"


# -- services -----------------------------------------------------------------------------


def _service_file(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_a_service_fills_what_the_string_leaves_out(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    services = _service_file(
        tmp_path / "services.conf",
        "# team databases\n[other]\nhost=wrong\n\n[todo]\nhost=db.example\nport=6000\ndbname=todo\n"
        "user=svc\npassword=svc-secret\nsslmode=require\n[after]\nhost=wrong\n",
    )
    monkeypatch.setenv("PGSERVICEFILE", str(services))
    target = parse_database_url("service=todo dbname=mine")
    assert target.describe() == 'database "mine" on db.example:6000 as user "svc"'
    assert target.connect_args["ssl"] == "require" and target.connect_args["password"] == "svc-secret"
    assert any(o.startswith(f"service todo from {services} (") and "host" in o for o in target.origins)
    assert "svc-secret" not in repr(target) and "svc-secret" not in " ".join(target.origins)
    # PGSERVICE names it too; the service wins over the PG* variables.
    monkeypatch.setenv("PGSERVICE", "todo")
    monkeypatch.setenv("PGHOST", "env.example")
    assert parse_database_url("postgresql:///mine").endpoints[0].host == "db.example"


def test_the_service_file_is_looked_up_as_libpq_does(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("PGSERVICEFILE")
    monkeypatch.setenv("HOME", str(tmp_path))
    system = tmp_path / "etc"
    system.mkdir()
    monkeypatch.setenv("PGSYSCONFDIR", str(system))
    _service_file(system / "pg_service.conf", "[todo]\nhost=system.example\n[shared]\nhost=shared.example\n")
    assert parse_database_url("service=todo user=u").endpoints[0].host == "system.example"
    _service_file(tmp_path / ".pg_service.conf", "[todo]\nhost=home.example\n")
    target = parse_database_url("service=todo user=u")
    assert target.endpoints[0].host == "home.example"  # the user's file first
    assert any(origin.startswith("service todo from ~/.pg_service.conf") for origin in target.origins)
    assert parse_database_url("service=shared user=u").endpoints[0].host == "shared.example"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[todo]\nhost db.example\n", r'syntax error in service file ".*", line 2'),
        ("[todo]\nhots=db.example\n", r'syntax error in service file ".*", line 2'),
        ("[todo]\nservice=other\n", "nested service specifications not supported"),
        ("[other]\nhost=h\n", 'definition of service "todo" not found'),
    ],
)
def test_a_broken_or_missing_service_is_refused_as_libpq_does(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, text: str, message: str
) -> None:
    monkeypatch.setenv("PGSERVICEFILE", str(_service_file(tmp_path / "s.conf", text)))
    with pytest.raises(SettingsError, match=message):
        parse_database_url("postgresql://u@/db?service=todo")


# -- the password file --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "password"),
    [
        ("h:5432:db:u:pw", "pw"),
        ("*:*:*:*:pw", "pw"),
        ("h:*:db:*:pw:ignored", "pw"),
        (r"h:5432:db:u:p\:w\\x", "p:w\\x"),
        ("other:5432:db:u:pw", None),
        ("h:5433:db:u:pw", None),
        (r"\*:5432:db:u:pw", None),  # an escaped * is a literal star
        ("h:5432:db:u", None),
    ],
)
def test_pgpass_lines_match_as_libpq_reads_them(line: str, password: str | None) -> None:
    assert pgpass_match(line, ("h", "5432", "db", "u")) == password


def test_pgpass_field_escapes(tmp_path: Path) -> None:
    assert pgpass_match(r"a\:b:1:d:u:pw", ("a:b", "1", "d", "u")) == "pw"
    assert pgpass_match(r"\*:1:d:u:pw", ("*", "1", "d", "u")) == "pw"


def _pgpass(path: Path, text: str, mode: int = 0o600) -> Path:
    path.write_text(text)
    path.chmod(mode)
    return path


def test_the_password_comes_from_pgpass_and_says_so(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("PGPASSFILE")
    monkeypatch.setenv("HOME", str(tmp_path))
    _pgpass(
        tmp_path / ".pgpass",
        "# comment\nother.example:*:*:*:nope\nep-x.aws.neon.tech:5432:neondb:owner:npg_pgpass\n",
    )
    target = parse_database_url("postgresql://owner@ep-x.aws.neon.tech/neondb?sslmode=require")
    assert target.connect_args["password"] == "npg_pgpass" and target.url.password == "npg_pgpass"
    assert target.password_source == "~/.pgpass" and "password from ~/.pgpass" in target.origins
    assert "npg_pgpass" not in repr(target) and "npg_pgpass" not in target.masked
    # A password in the string wins; PGPASSWORD wins over the file, as in libpq.
    assert parse_database_url("postgresql://owner:given@ep-x.aws.neon.tech/neondb").connect_args["password"] == "given"
    monkeypatch.setenv("PGPASSWORD", "from-env")
    assert parse_database_url("postgresql://owner@ep-x.aws.neon.tech/neondb").password_source == "PGPASSWORD"


def test_pgpass_matches_a_socket_by_its_directory_and_the_default_one_as_localhost(tmp_path: Path) -> None:
    passfile = _pgpass(tmp_path / "pw", f"{tmp_path}:5432:db:u:by-dir\nlocalhost:5432:db:u:by-localhost\n")
    by_dir = parse_database_url(f"host={tmp_path} dbname=db user=u passfile={passfile}")
    assert by_dir.connect_args["password"] == "by-dir"
    default = parse_database_url(f"host=/var/run/postgresql dbname=db user=u passfile={passfile}")
    assert default.connect_args["password"] == "by-localhost"


def test_several_hosts_take_the_password_of_the_first_that_has_one(tmp_path: Path) -> None:
    passfile = _pgpass(tmp_path / "pw", "h2:5433:db:u:second\n")
    target = parse_database_url(f"postgresql://u@h1:5432,h2:5433/db?passfile={passfile}")
    assert target.connect_args["password"] == "second"
    assert target.password_source == str(passfile)


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660])
def test_a_pgpass_others_may_read_is_ignored_with_a_warning(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, mode: int
) -> None:
    passfile = _pgpass(tmp_path / "pgpass", "*:*:*:*:leaked\n", mode)
    monkeypatch.setenv("PGPASSFILE", str(passfile))
    with pytest.warns(TodoDataWarning, match="has group or world access; permissions should be u=rw"):
        target = parse_database_url("postgresql://u@h/db")
    assert "password" not in target.connect_args and target.password_source is None


def test_resolve_reads_the_environment_it_is_given() -> None:
    info = resolve({"dbname": "d"}, environ={"PGHOST": "envhost", "PGUSER": "envuser"})
    assert (info.endpoints[0].host, info.user, info.dbname) == ("envhost", "envuser", "d")
    assert info.sources == {"host": "PGHOST", "user": "PGUSER"}
