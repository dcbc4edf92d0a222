"""Database URLs as users paste them: translated for asyncpg, or refused with a reason."""

from __future__ import annotations

import re
import ssl
from pathlib import Path

import pytest

from todo_data.errors import SettingsError
from todo_data.urls import (
    DEFAULT_CONNECT_TIMEOUT,
    is_neon_pooler_host,
    mask_url,
    parse_database_url,
    scrub,
)

NEON = (
    "postgresql://neondb_owner:npg_S3cret@ep-cool-darkness-123456.us-east-2.aws.neon.tech/neondb"
    "?sslmode=require&channel_binding=require"
)


def test_neon_console_string_becomes_an_asyncpg_url_with_ssl_required() -> None:
    target = parse_database_url(NEON)
    assert target.backend == "postgresql"
    assert target.url.drivername == "postgresql+asyncpg"
    assert dict(target.url.query) == {}
    assert target.connect_args["ssl"] == "require"
    assert target.connect_args["timeout"] == DEFAULT_CONNECT_TIMEOUT
    assert target.pooled is False
    assert "npg_S3cret" not in repr(target)
    assert target.describe() == (
        'database "neondb" on ep-cool-darkness-123456.us-east-2.aws.neon.tech as user "neondb_owner"'
    )


@pytest.mark.parametrize("scheme", ["postgres", "postgresql", "postgresql+asyncpg", "postgres+asyncpg"])
def test_postgres_schemes_all_use_asyncpg(scheme: str) -> None:
    assert parse_database_url(f"{scheme}://u:p@h:5433/db").url.drivername == "postgresql+asyncpg"


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("disable", False),
        ("allow", "allow"),
        ("prefer", "prefer"),
        ("require", "require"),
        ("verify-ca", "verify-ca"),
        ("verify-full", "verify-full"),
    ],
)
def test_sslmode_maps_to_asyncpg_ssl(mode: str, expected: object) -> None:
    assert parse_database_url(f"postgresql://u:p@h/db?sslmode={mode}").connect_args["ssl"] == expected


def test_sslrootcert_with_verify_full_builds_a_verifying_context(tmp_path: object) -> None:
    cafile = ssl.get_default_verify_paths().cafile or ssl.get_default_verify_paths().openssl_cafile
    target = parse_database_url(f"postgresql://u:p@h/db?sslmode=verify-full&sslrootcert={cafile}")
    context = target.connect_args["ssl"]
    assert isinstance(context, ssl.SSLContext)
    assert context.check_hostname is True
    assert context.verify_mode == ssl.CERT_REQUIRED


def test_pooler_host_is_detected_and_can_be_overridden() -> None:
    pooler = NEON.replace("ep-cool-darkness-123456.", "ep-cool-darkness-123456-pooler.")
    assert parse_database_url(pooler).pooled is True
    assert parse_database_url(pooler, pooled=False).pooled is False
    assert parse_database_url("postgresql://u:p@127.0.0.1:6432/db", pooled=True).pooled is True
    assert is_neon_pooler_host("ep-x-pooler.eu-central-1.aws.neon.tech")
    assert not is_neon_pooler_host("pooler-ep.example.com.ep-x")
    assert not is_neon_pooler_host(None)


def test_connect_timeout_options_and_application_name_are_translated() -> None:
    target = parse_database_url(
        "postgres://u:p@h/db?connect_timeout=3&application_name=nb"
        "&options=endpoint%3Dep-cool-darkness-123456%20-c%20statement_timeout%3D5000"
        "&target_session_attrs=read-write"
    )
    assert target.connect_args["timeout"] == 3.0
    assert target.connect_args["server_settings"] == {
        "application_name": "nb",
        "statement_timeout": "5000",
    }
    assert target.connect_args["target_session_attrs"] == "read-write"


def test_zero_connect_timeout_keeps_a_bound() -> None:
    assert (
        parse_database_url("postgres://u:p@h/db?connect_timeout=0").connect_args["timeout"] == DEFAULT_CONNECT_TIMEOUT
    )


def test_percent_encoded_password_is_decoded_for_the_driver_and_masked() -> None:
    target = parse_database_url("postgresql://u:p%40ss%3Aw%2Frd%3F%23x@h/db")
    assert target.url.password == "p@ss:w/rd?#x"
    assert "p@ss" not in target.masked and "p%40ss" not in target.masked


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("not a url", 'Malformed connection string \'not a url\': missing "=" after "not" in connection info string'),
        ("postgresql://u:secret@h:port/db", 'invalid integer value "port" for connection option "port"'),
        ("postgresql://u:secret@h:0/db", 'invalid port number: "0"'),
        ("mysql://u:secret@h/db", "Unsupported database URL scheme 'mysql'"),
        ("postgresql://u:secret@h/db?sslmode=maybe", "sslmode='maybe'"),
        ("postgresql://u:secret@h/db?connect_timeout=soon", "connect_timeout='soon'"),
        ("postgresql://u:secret@h/db?connect_timeout=0.5", 'invalid integer value "0.5"'),
        ("postgresql://u:secret@h/db?frobnicate=1", 'invalid URI query parameter: "frobnicate"'),
        ("postgresql://u:secret@h/db?sslcert=/c.pem", "Unsupported parameter(s) sslcert"),
        ("postgresql://u:secret@h/db?options=weird", "options='weird'"),
        ("postgresql://u:secret@h/db?options=-cnovalue", "expected name=value"),
        ("postgresql://u:secret@h/db?zzz", 'missing key/value separator "=" in URI query parameter: "zzz"'),
        ("postgresql://u:secret@h/db?a&b", 'missing key/value separator "=" in URI query parameter: "a"'),
        ("postgresql://u:secret@h/d%00b", "forbidden value %00 in percent-encoded value"),
        ("postgresql://u:secret@h1,h2/db?port=1,2,3", "could not match 3 port numbers to 2 hosts"),
        ("postgresql://u:secret@h/db?target_session_attrs=writable", 'invalid target_session_attrs value: "writable"'),
        ("postgresql://u:secret@h/db?channel_binding=maybe", 'invalid channel_binding value: "maybe"'),
        ("host=h password=secret port=", None),
        ("host=h password='secret", "unterminated quoted string in connection info string"),
        ("host=h dbname", 'missing "=" after "dbname" in connection info string'),
        ("host=h ssl=require password=secret", 'invalid connection option "ssl"'),
    ],
)
def test_bad_urls_are_refused_with_a_reason_and_no_password(url: str, message: str | None) -> None:
    if message is None:  # libpq takes it: an empty port is the default one
        assert parse_database_url(url).endpoints[0].port == 5432
        return
    with pytest.raises(SettingsError) as exc:
        parse_database_url(url)
    assert message in str(exc.value)
    assert "secret" not in str(exc.value)
    assert "\n" not in str(exc.value)


def test_sqlite_urls_use_aiosqlite() -> None:
    for url in ("sqlite:///tasks.db", "sqlite+aiosqlite:///tasks.db", "sqlite://"):
        target = parse_database_url(url)
        assert (target.backend, target.url.drivername) == ("sqlite", "sqlite+aiosqlite")
    assert parse_database_url("sqlite:///tasks.db").describe() == 'SQLite database "tasks.db"'
    assert parse_database_url("sqlite://").describe() == 'SQLite database ":memory:"'


def test_mask_and_scrub_hide_passwords_even_in_unparseable_text() -> None:
    assert mask_url("postgresql://u:hunter2@h/db") == "postgresql://u:***@h/db"
    assert mask_url("garbage://u:hunter2@") == "garbage://u:***@"
    text = "failed for postgresql://u:p%40ss@h/db with p@ss and p%40ss"
    assert "p@ss" not in scrub(text, "p@ss") and "p%40ss" not in scrub(text, "p%40ss")
    assert scrub("nothing", None) == "nothing"


def test_passwords_given_as_query_parameters_are_masked_too() -> None:
    with pytest.raises(SettingsError) as exc:
        parse_database_url("postgresql://u@h/db?password=TOPSECRET&sslpassword=KEYPASS")
    assert "TOPSECRET" not in str(exc.value) and "KEYPASS" not in str(exc.value)
    assert mask_url("postgresql://u@h/db?sslmode=require&password=TOPSECRET") == (
        "postgresql://u@h/db?sslmode=require&password=***"
    )
    from sqlalchemy.engine import make_url

    assert "TOPSECRET" not in mask_url(make_url("postgresql://u@h/db?password=TOPSECRET"))


@pytest.mark.parametrize(
    ("url", "secret"),
    [
        ("postgresql://u:p@ssw0rd@h/db", "p@ssw0rd"),
        ("postgresql://todo_app:Zq7@Xw9:Kp3@127.0.0.1:1/db", "Zq7@Xw9:Kp3"),
        # The password holds a '/': the text after it would be read as the database.
        ("postgresql://todo_app:se@cr3t/xyz@127.0.0.1:1/db", "se@cr3t/xyz"),
        ("postgres://todo_app:a@b@c@127.0.0.1/db?sslmode=require", "a@b@c"),
        ("postgresql+asyncpg://todo_app:x@/y@127.0.0.1/db", "x@/y"),
    ],
)
def test_an_unencoded_at_in_the_password_is_refused_showing_nothing_of_it(url: str, secret: str) -> None:
    with pytest.raises(SettingsError, match=r"percent-encode each '@' .* as %40") as exc:
        parse_database_url(url)
    message = str(exc.value)
    scheme, rest = url.split("://", 1)
    assert f"'{scheme}://{rest.split(':', 1)[0]}…'" in message
    for fragment in {secret, *secret.replace("/", "@").replace(":", "@").split("@")}:
        if len(fragment) > 1:
            assert not re.search(rf"(?<!\w){re.escape(fragment)}(?!\w)", message), (fragment, message)


def test_scrub_keeps_word_edges_where_the_secret_has_none() -> None:
    assert scrub("Name or service not known", "se") == "Name or service not known"
    assert scrub("auth failed for se, see logs", "se") == "auth failed for ***, see logs"
    assert scrub("password=hunter2;", "hunter2") == "password=***;"
    assert scrub("x@pw:1", "@pw") == "x***:1"  # the secret's own edges are not word characters
    assert scrub("hunter2hunter2", "hunter2") == "hunter2hunter2"
    assert scrub("p%40ss and p@ss", "p%40ss") == "*** and ***"


# --- ssl= (the asyncpg/SQLAlchemy spelling) and sslrootcert, as pasted from guides -------------


def test_sqlalchemy_and_neon_asyncpg_spelling_ssl_require_is_accepted() -> None:
    target = parse_database_url("postgresql+asyncpg://u:p@ep-x-123.us-east-2.aws.neon.tech/neondb?ssl=require")
    assert target.connect_args["ssl"] == "require"
    assert dict(target.url.query) == {}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("disable", False),
        ("false", False),
        ("allow", "allow"),
        ("prefer", "prefer"),
        ("require", "require"),
        ("verify-ca", "verify-ca"),
        ("verify-full", "verify-full"),
    ],
)
def test_ssl_takes_the_sslmode_spellings(value: str, expected: object) -> None:
    assert parse_database_url(f"postgresql://u:p@h/db?ssl={value}").connect_args["ssl"] == expected


def test_ssl_true_verifies_the_server_against_the_system_trust_store_as_asyncpg_does() -> None:
    context = parse_database_url("postgresql://u:p@h/db?ssl=true").connect_args["ssl"]
    assert isinstance(context, ssl.SSLContext)
    assert context.check_hostname is True and context.verify_mode == ssl.CERT_REQUIRED
    assert context.cert_store_stats()["x509_ca"] > 0  # the operating system's CAs are loaded


@pytest.mark.parametrize(
    ("query", "tls"),
    [
        ("ssl=require&sslmode=require", "sslmode=require"),
        ("sslmode=disable&ssl=false", "sslmode=disable (no TLS)"),
        ("ssl=TRUE", "sslmode=verify-full, sslrootcert=system"),
    ],
)
def test_ssl_and_sslmode_that_agree_are_accepted(query: str, tls: str) -> None:
    target = parse_database_url(f"postgresql://u:p@h/db?{query}")
    assert target.tls == tls
    assert dict(target.url.query) == {}  # both consumed: neither reaches asyncpg as a server setting


@pytest.mark.parametrize("query", ["ssl=require&sslmode=disable", "sslmode=require&ssl=verify-full"])
def test_ssl_and_sslmode_that_disagree_are_refused(query: str) -> None:
    with pytest.raises(SettingsError, match=r"ssl=.* and sslmode=.* disagree"):
        parse_database_url(f"postgresql://u:secret@h/db?{query}")


def test_an_unknown_ssl_value_is_refused_listing_the_accepted_ones() -> None:
    with pytest.raises(SettingsError) as exc:
        parse_database_url("postgresql://u:secret@h/db?ssl=sometimes")
    assert "ssl='sometimes'" in str(exc.value) and "verify-full" in str(exc.value) and "true" in str(exc.value)
    assert "secret" not in str(exc.value)


def test_sslrootcert_system_means_the_os_trust_store_and_verify_full() -> None:
    for query in ("sslrootcert=system", "sslrootcert=system&sslmode=verify-full", "sslrootcert=system&ssl=true"):
        context = parse_database_url(f"postgresql://u:p@h/db?{query}").connect_args["ssl"]
        assert isinstance(context, ssl.SSLContext), query
        assert context.check_hostname is True and context.verify_mode == ssl.CERT_REQUIRED
        assert context.cert_store_stats()["x509_ca"] > 0


@pytest.mark.parametrize("mode", ["require", "verify-ca", "prefer", "disable"])
def test_sslrootcert_system_with_a_weaker_sslmode_is_refused_as_libpq_does(mode: str) -> None:
    with pytest.raises(SettingsError, match=rf"sslmode={mode}.*sslrootcert=system.*verify-full"):
        parse_database_url(f"postgresql://u:p@h/db?sslmode={mode}&sslrootcert=system")


@pytest.mark.parametrize(
    "ssl_param", ["sslmode=verify-full", "sslmode=verify-ca", "sslmode=require", "ssl=verify-full"]
)
def test_a_missing_sslrootcert_file_is_a_settings_error_naming_it(ssl_param: str, tmp_path: Path) -> None:
    missing = tmp_path / "nope" / "root.crt"
    with pytest.raises(SettingsError) as exc:
        parse_database_url(f"postgresql://u:secret@h/db?{ssl_param}&sslrootcert={missing}")
    assert "sslrootcert" in str(exc.value) and str(missing) in str(exc.value) and "does not exist" in str(exc.value)
    assert "secret" not in str(exc.value)


def test_an_sslrootcert_that_is_no_certificate_is_a_settings_error(tmp_path: Path) -> None:
    bogus = tmp_path / "root.crt"
    bogus.write_text("not a certificate\n")
    with pytest.raises(SettingsError, match=r"sslrootcert=.*root\.crt.* no PEM certificate"):
        parse_database_url(f"postgresql://u:p@h/db?sslmode=verify-full&sslrootcert={bogus}")


def test_sslmode_require_with_a_root_certificate_verifies_the_ca_as_libpq_does() -> None:
    cafile = ssl.get_default_verify_paths().cafile or ssl.get_default_verify_paths().openssl_cafile
    context = parse_database_url(f"postgresql://u:p@h/db?sslmode=require&sslrootcert={cafile}").connect_args["ssl"]
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname is False


@pytest.mark.parametrize(
    ("query", "tls"),
    [
        ("", "sslmode=prefer (the default)"),
        ("?sslmode=require", "sslmode=require"),
        ("?ssl=true", "sslmode=verify-full, sslrootcert=system"),
        ("?sslrootcert=system", "sslmode=verify-full, sslrootcert=system"),
        ("?sslmode=disable", "sslmode=disable (no TLS)"),
    ],
)
def test_the_target_says_how_tls_is_used(query: str, tls: str) -> None:
    assert parse_database_url(f"postgresql://u:p@h/db{query}").tls == tls


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://todo_app:Zq7@Xw9:Kp3@127.0.0.1:1/db",
        # libpq would look up "cr3t", a fragment of the password, as the host name.
        "postgresql://todo_app:se@cr3t/xyz@127.0.0.1:1/db",
        "postgres://todo_app:p@ss:w@rd@127.0.0.1/db?sslmode=require",
        "postgresql://todo_app@Kp3:Xw9@127.0.0.1/db",
    ],
)
def test_a_url_with_several_at_signs_is_refused_showing_nothing_after_the_user_name(url: str) -> None:
    with pytest.raises(SettingsError) as refused:
        parse_database_url(url)
    message = str(refused.value)
    assert "'postgres" in message and "todo_app" in message and "%40" in message
    for fragment in ("Zq7", "Xw9", "Kp3", "cr3t", "xyz", "ss:w", "rd@", "127.0.0.1"):
        assert fragment not in message, message


def test_masking_hides_the_whole_password_of_a_url_with_several_at_signs() -> None:
    assert mask_url("postgresql://todo_app:Zq7@Xw9:Kp3@h/db") == "postgresql://todo_app:***@h/db"
    # An '@' in the user name (user@server, as Azure spells it): the password is still hidden.
    assert mask_url("postgresql://todo_app@srv:Xw9@h/db") == "postgresql://todo_app@srv:***@h/db"


def test_scrub_replaces_whole_secrets_never_parts_of_other_words() -> None:
    assert scrub("[Errno -2] Name or service not known", "se") == "[Errno -2] Name or service not known"
    assert scrub('password "se" rejected for se', "se") == 'password "***" rejected for ***'
    assert scrub("at postgresql://u:p%40ss@h/db", "p@ss") == "at postgresql://u:***@h/db"
    assert "Zq7" not in scrub("no route to Zq7@Xw9", "Zq7@Xw9") and "Xw9" not in scrub("Zq7@Xw9:", "Zq7@Xw9")


def test_a_keyword_value_password_with_a_space_shows_no_piece_of_it_when_refused() -> None:
    # libpq reads password=Zq7 and then "Xw9k" as a keyword without "=": its message quotes it.
    with pytest.raises(SettingsError, match='missing "="') as exc:
        parse_database_url("host=h password=Zq7 Xw9k dbname=db")
    assert "Zq7" not in str(exc.value) and "Xw9k" not in str(exc.value)
    assert mask_url("host=h password=Zq7 Xw9k dbname=db") == "host=h password=*** dbname=db"
    assert mask_url("host=h password='a \\' b' user=u") == "host=h password=*** user=u"


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://u:pw%00secret@h/db",
        "postgresql://u@h/db?password=pw%00secret",
        "postgresql://u:pw@h/db?sslpassword=pw%00secret",
        "host=h password=pw%00secret dbname='unterminated",
    ],
)
def test_libpq_quoting_a_refused_password_never_shows_it(url: str) -> None:
    """libpq quotes the value it refuses; when that value is the password, the message masks it."""
    with pytest.raises(SettingsError) as refused:
        parse_database_url(url)
    assert "secret" not in str(refused.value)
