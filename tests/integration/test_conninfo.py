"""The honest differential: each connection string, with its PG* variables, ``.pgpass`` and
service file, reaches the same user, database and port through ``create_engine`` as
through ``psql``, over TCP and over the cluster's Unix socket. Each side runs in a process
of its own with only the case's variables, so nothing leaks between cases."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.helpers import PostgresServer
from tests.integration.libpq import Seen, clean_env, pgpass_field, psql_sees, todo_data_sees
from todo_data.testing import APP_DATABASE, APP_USER, PostgresCluster, free_port

pytestmark = pytest.mark.postgres

# Each case: the string, the variables, and the files of the home directory, given the
# cluster (c) and the home (h). "P" is the password, "S" the socket directory.
Case = tuple[str, Callable[[PostgresCluster, Path], dict[str, str]], Callable[[PostgresCluster], dict[str, str]]]


def _no_env(c: PostgresCluster, h: Path) -> dict[str, str]:
    return {}


def _no_files(c: PostgresCluster) -> dict[str, str]:
    return {}


def _pgpass(c: PostgresCluster) -> dict[str, str]:
    password = pgpass_field(c.password)
    return {
        ".pgpass": f"# written by the test\n127.0.0.1:{c.port}:*:{APP_USER}:{password}\n"
        f"{pgpass_field(str(c.socket_dir))}:{c.port}:*:{APP_USER}:{password}\n"
    }


def _service(c: PostgresCluster) -> dict[str, str]:
    return {
        ".pg_service.conf": f"[other]\nhost=/nowhere\n[todo]\nhost=127.0.0.1\nport={c.port}\n"
        f"dbname={APP_DATABASE}\nuser={APP_USER}\nsslmode=require\n",
        **_pgpass(c),
    }


CASES: dict[str, Case] = {
    "uri": ("postgresql://{U}:{PQ}@127.0.0.1:{PORT}/{D}?sslmode=require", _no_env, _no_files),
    "query parameters override the authority": (
        "postgresql://nobody@127.0.0.1:1/elsewhere?user={U}&port={PORT}&dbname={D}&password={PQ}&sslmode=require",
        _no_env,
        _no_files,
    ),
    "percent-encoded keys": (
        "postgresql://127.0.0.1:{PORT}/{D}?u%73er={U}&p%61ssword={PQ}&sslmode=require",
        _no_env,
        _no_files,
    ),
    "keyword/value": (
        "host=127.0.0.1 port={PORT} dbname={D} user={U} password='{P}' sslmode=require",
        _no_env,
        _no_files,
    ),
    "PG variables only": (
        "postgresql://",
        lambda c, h: {
            "PGHOST": "127.0.0.1",
            "PGPORT": str(c.port),
            "PGUSER": APP_USER,
            "PGPASSWORD": c.password,
            "PGDATABASE": APP_DATABASE,
            "PGSSLMODE": "require",
        },
        _no_files,
    ),
    "the string wins over PG variables": (
        "postgresql://{U}:{PQ}@127.0.0.1:{PORT}/{D}?sslmode=require",
        lambda c, h: {"PGHOST": "/nowhere", "PGPORT": "1", "PGUSER": "nobody", "PGDATABASE": "elsewhere"},
        _no_files,
    ),
    "password from ~/.pgpass": ("postgresql://{U}@127.0.0.1:{PORT}/{D}?sslmode=require", _no_env, _pgpass),
    "PGPASSFILE": (
        "postgresql://{U}@127.0.0.1:{PORT}/{D}?sslmode=require",
        lambda c, h: {"PGPASSFILE": str(h / ".pgpass"), "HOME": str(h / "elsewhere")},
        _pgpass,
    ),
    "database defaults to the user name": (
        "postgresql://{U}:{PQ}@127.0.0.1:{PORT}?sslmode=require",
        _no_env,
        _no_files,
    ),
    "service from ~/.pg_service.conf": ("service=todo", _no_env, _service),
    "PGSERVICE with PGSERVICEFILE": (
        "postgresql:///{D}",
        lambda c, h: {"PGSERVICE": "todo", "PGSERVICEFILE": str(h / ".pg_service.conf")},
        _service,
    ),
    "socket directory in the authority": ("postgresql://{U}@{SQ}:{PORT}/{D}", _no_env, _pgpass),
    "socket directory as host=": (
        "host={S} port={PORT} dbname={D} user={U}",
        lambda c, h: {"PGPASSWORD": c.password},
        _no_files,
    ),
    "socket directory from PGHOST": (
        "dbname={D}",
        lambda c, h: {"PGHOST": str(c.socket_dir), "PGPORT": str(c.port), "PGUSER": APP_USER},
        _pgpass,
    ),
    "several hosts, the first one down": (
        "postgresql://{U}:{PQ}@127.0.0.1:{CLOSED},127.0.0.1:{PORT}/{D}?sslmode=require&target_session_attrs=read-write",
        _no_env,
        _no_files,
    ),
    "a pgpass others may read is ignored": (
        "postgresql://{U}@127.0.0.1:{PORT}/{D}?sslmode=require",
        _no_env,
        lambda c: {**_pgpass(c), "mode": "0644"},
    ),
}


@pytest.fixture(scope="module")
def cluster(postgres_server: PostgresServer) -> Iterator[PostgresCluster]:
    if postgres_server.cluster is None:
        pytest.skip("the differential with psql needs the local throwaway cluster (its socket and psql)")
    cluster = postgres_server.cluster
    if not cluster.psql(f"SELECT 1 FROM pg_database WHERE datname = '{APP_USER}'"):
        cluster.psql(f"CREATE DATABASE {APP_USER} OWNER {APP_USER}")
    yield cluster


def _fill(template: str, cluster: PostgresCluster) -> str:
    return template.format(
        U=APP_USER,
        D=APP_DATABASE,
        P=cluster.password,
        PQ=quote(cluster.password, safe=""),
        PORT=cluster.port,
        S=cluster.socket_dir,
        SQ=quote(str(cluster.socket_dir), safe=""),
        CLOSED=free_port(),
    )


@pytest.mark.parametrize("name", list(CASES))
def test_create_engine_reaches_what_psql_reaches(name: str, cluster: PostgresCluster, tmp_path: Path) -> None:
    template, variables, files = CASES[name]
    home = tmp_path / "home"
    home.mkdir()
    written = files(cluster)
    mode = int(written.pop("mode", "0600"), 8)
    for filename, content in written.items():
        (home / filename).write_text(content)
        (home / filename).chmod(mode)
    conninfo = _fill(template, cluster)
    env = clean_env(home, variables(cluster, home))
    libpq = psql_sees(cluster, conninfo, env)
    ours = todo_data_sees(conninfo, env)
    assert (ours.reached is None) == (libpq.reached is None), (ours, libpq)
    assert ours.reached == libpq.reached, (ours, libpq)
    for seen in (ours.about, ours.error or ""):
        assert cluster.password not in seen and quote(cluster.password, safe="") not in seen
    if name == "a pgpass others may read is ignored":
        assert libpq.reached is None and "password" in (libpq.error or "")
        assert ours.error is not None and "password" in ours.error
        return
    assert libpq.reached is not None, libpq
    _says_where_parts_came_from(name, ours)


def _says_where_parts_came_from(name: str, ours: Seen) -> None:
    expected = {
        "password from ~/.pgpass": "password from ~/.pgpass",
        "PG variables only": "host from PGHOST",
        "service from ~/.pg_service.conf": "service todo from ~/.pg_service.conf",
        "database defaults to the user name": "database from the user name",
        "socket directory from PGHOST": "password from ~/.pgpass",
    }.get(name)
    if expected is not None:
        assert expected in ours.about, ours.about
