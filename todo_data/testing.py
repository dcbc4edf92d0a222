"""Throwaway PostgreSQL clusters shaped like Neon, for tests, benchmarks and notebooks in CI.

:func:`start_cluster` runs ``initdb``/``pg_ctl`` from the PostgreSQL server binaries
(``pg_config --bindir``; as the ``postgres`` user when running as root) on a free
loopback port, with TLS on (a self-signed certificate), SCRAM-only password
authentication over TCP and a non-superuser application role that owns its database,
as a Neon project does. :func:`start_pgbouncer` puts PgBouncer in transaction mode with
client TLS in front of it, like Neon's ``-pooler`` endpoint. :func:`start_standby` makes a
hot standby of a cluster (``pg_basebackup -R`` over TLS and SCRAM, streaming through a
replication slot): a read replica, reachable with the same role and password, which
PgBouncer can front too. Each server lives in one temporary directory, removed on stop.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from todo_data.errors import ClusterUnavailable as ClusterUnavailable
from todo_data.errors import TodoDataError

APP_USER = "todo_app"
APP_DATABASE = "todo_test"
#: The role standbys replicate as (REPLICATION, no superuser), like any streaming setup.
REPLICATION_USER = "todo_replication"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def postgres_bindir() -> Path:
    """Where ``initdb`` and ``pg_ctl`` live, from ``pg_config --bindir`` or ``PATH``."""
    pg_config = shutil.which("pg_config")
    candidates: list[Path] = []
    if pg_config:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
        candidates.append(Path(out.stdout.strip()))
    initdb = shutil.which("initdb")
    if initdb:
        candidates.append(Path(initdb).parent)
    candidates.extend(sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True))
    for path in candidates:
        if (path / "initdb").is_file() and (path / "pg_ctl").is_file():
            return path
    raise ClusterUnavailable(
        "PostgreSQL server binaries (initdb, pg_ctl) not found: install the postgresql package or set TEST_DATABASE_URL"
    )


@dataclass
class PostgresCluster:
    """A running throwaway cluster; :meth:`stop` removes it."""

    root: Path
    bindir: Path
    port: int
    password: str
    host: str = "127.0.0.1"
    run_as: list[str] = field(default_factory=list)
    replication_password: str = ""

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def socket_dir(self) -> Path:
        return self.root

    def url(self, database: str = APP_DATABASE, *, sslmode: str = "require", user: str = APP_USER) -> str:
        """A libpq URL for the application role, as Neon's console would show it."""
        query = f"?sslmode={sslmode}" if sslmode else ""
        return f"postgresql://{user}:{quote(self.password, safe='')}@{self.host}:{self.port}/{database}{query}"

    def psql(self, sql: str, *, database: str = "postgres") -> str:
        """Run SQL as the superuser over the cluster's private Unix socket."""
        psql = self.bindir / "psql" if (self.bindir / "psql").is_file() else Path(shutil.which("psql") or "psql")
        cmd = [*self.run_as, str(psql)]
        cmd += [
            "-X",
            "-q",
            "-At",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            str(self.socket_dir),
            "-p",
            str(self.port),
            "-U",
            "postgres",
            "-d",
            database,
            "-c",
            sql,
        ]
        result = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise TodoDataError(f"psql failed: {result.stderr.strip()}")
        return result.stdout.strip()

    def pg_ctl(self, *args: str) -> None:
        log = self.root / "server.log"
        subprocess.run(
            [
                *self.run_as,
                str(self.bindir / "pg_ctl"),
                "-D",
                str(self.data),
                "-l",
                str(log),
                "-w",
                "-t",
                "60",
                *args,
            ],
            check=True,
            capture_output=True,
        )

    def restart(self) -> None:
        """Restart the server (every connection is dropped, as on a Neon compute restart)."""
        self.pg_ctl("-m", "fast", "restart")

    def shutdown(self) -> None:
        """Stop the server as ``pg_ctl stop`` does (fast: every session ends), keeping its data.

        :meth:`start` starts it again on the same port.
        """
        self.pg_ctl("-m", "fast", "stop")

    def start(self) -> None:
        """Start the server again after :meth:`shutdown`."""
        self.pg_ctl("start")

    def stop(self) -> None:
        try:
            self.pg_ctl("-m", "immediate", "stop")
        except subprocess.CalledProcessError:  # pragma: no cover - already stopped
            pass
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


def start_cluster() -> PostgresCluster:
    """Start a Neon-like throwaway cluster; raises :class:`ClusterUnavailable` if impossible."""
    bindir = postgres_bindir()
    openssl = shutil.which("openssl")
    if openssl is None:
        raise ClusterUnavailable("openssl is needed to make the test server's TLS certificate")
    run_as: list[str] = []
    root = Path(tempfile.mkdtemp(prefix="todo-data-pg-"))
    if os.geteuid() == 0:
        # initdb refuses to run as root: run the server as the postgres system user.
        runuser = shutil.which("runuser")
        if runuser is None:
            raise ClusterUnavailable("running as root needs runuser to start PostgreSQL as 'postgres'")
        run_as = [runuser, "-u", "postgres", "--"]
    # A password with every character that needs percent-encoding in a URL.
    password = f"p@ss:w/rd?#{secrets.token_hex(8)}"
    superuser_password = secrets.token_hex(16)
    (root / "pw").write_text(superuser_password + "\n")
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
            "-keyout",
            str(root / "server.key"),
            "-out",
            str(root / "server.crt"),
        ],
        check=True,
        capture_output=True,
    )
    (root / "server.key").chmod(0o600)
    if run_as:
        shutil.chown(root, "postgres")
        for path in root.iterdir():
            shutil.chown(path, "postgres")
    port = free_port()
    cluster = PostgresCluster(
        root=root,
        bindir=bindir,
        port=port,
        password=password,
        run_as=run_as,
        replication_password=secrets.token_hex(16),
    )
    try:
        subprocess.run(
            [
                *run_as,
                str(bindir / "initdb"),
                "-D",
                str(cluster.data),
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                f"--pwfile={root / 'pw'}",
            ],
            check=True,
            capture_output=True,
        )
        (root / "pw").unlink()
        conf = cluster.data / "postgresql.conf"
        with conf.open("a") as out:
            out.write(
                "\n# todo_data test cluster: loopback only, TLS on, durability off (throwaway data)\n"
                f"listen_addresses = '127.0.0.1'\nport = {port}\n"
                f"unix_socket_directories = '{root}'\n"
                f"ssl = on\nssl_cert_file = '{root / 'server.crt'}'\nssl_key_file = '{root / 'server.key'}'\n"
                "password_encryption = 'scram-sha-256'\n"
                "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
                "max_connections = 200\n"
                # Ready to stream to a hot standby (start_standby); these are PostgreSQL's
                # defaults, stated because the replica tests depend on them.
                "wal_level = replica\nmax_wal_senders = 10\nmax_replication_slots = 10\n"
            )
        # Like Neon: TCP only with TLS and SCRAM; the superuser without a password only on the
        # private socket, where the other roles need their password (SCRAM) as over TCP.
        # Replication connections ("all" does not match them) only for the replication role.
        (cluster.data / "pg_hba.conf").write_text(
            "local all postgres trust\nlocal all all scram-sha-256\nhostssl all all 127.0.0.1/32 scram-sha-256\n"
            f"hostssl replication {REPLICATION_USER} 127.0.0.1/32 scram-sha-256\n"
            "host all all 127.0.0.1/32 reject\nhost replication all 127.0.0.1/32 reject\n"
        )
        cluster.pg_ctl("start")
        escaped = password.replace("'", "''")
        cluster.psql(f"CREATE ROLE {APP_USER} LOGIN CREATEDB PASSWORD '{escaped}'")
        cluster.psql(f"CREATE ROLE {REPLICATION_USER} LOGIN REPLICATION PASSWORD '{cluster.replication_password}'")
        cluster.psql(f"CREATE DATABASE {APP_DATABASE} OWNER {APP_USER}")
    except (subprocess.CalledProcessError, TodoDataError) as exc:
        log = root / "server.log"
        detail = log.read_text()[-2000:] if log.exists() else ""
        stderr = getattr(exc, "stderr", b"") or b""
        cluster.stop()
        raise ClusterUnavailable(
            f"could not start a PostgreSQL test cluster: {exc} {stderr.decode(errors='replace')} {detail}"
        ) from exc
    return cluster


def pgbouncer_binary() -> Path:
    """The ``pgbouncer`` executable (Debian installs it in /usr/sbin)."""
    found = shutil.which("pgbouncer") or ("/usr/sbin/pgbouncer" if Path("/usr/sbin/pgbouncer").is_file() else None)
    if found is None:
        raise ClusterUnavailable("pgbouncer not found: install the pgbouncer package")
    return Path(found)


@dataclass
class PgBouncer:
    """PgBouncer in transaction mode in front of a :class:`PostgresCluster`."""

    cluster: PostgresCluster
    port: int
    process: subprocess.Popen[bytes]
    host: str = "127.0.0.1"

    def url(self, database: str = APP_DATABASE, *, sslmode: str = "require") -> str:
        """The pooled endpoint's URL (same role and password as the direct one)."""
        query = f"?sslmode={sslmode}" if sslmode else ""
        password = quote(self.cluster.password, safe="")
        return f"postgresql://{APP_USER}:{password}@{self.host}:{self.port}/{database}{query}"

    def stop(self) -> None:
        """Stop PgBouncer at once (SIGTERM is its immediate shutdown)."""
        if self.process.poll() is None:
            os.kill(self._pgbouncer_pid(), signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:  # pragma: no cover - pgbouncer ignores SIGTERM
            self.process.kill()
            self.process.wait()

    def _pgbouncer_pid(self) -> int:
        """PgBouncer's own process: ``runuser`` (as root) waits two seconds after passing a signal on."""
        pid = self.process.pid
        children = Path(f"/proc/{pid}/task/{pid}/children")
        found = children.read_text().split() if self.cluster.run_as and children.exists() else []
        return int(found[0]) if found else pid

    def restart(self) -> None:
        """Stop PgBouncer at once (SIGTERM: every client and server connection drops) and
        start it again on the same port, as when a pooler is redeployed."""
        self.stop()
        self.process = _launch_pgbouncer(self.cluster, self.port)


def start_pgbouncer(cluster: PostgresCluster) -> PgBouncer:
    """Start PgBouncer (``pool_mode = transaction``, TLS to clients and to the server, SCRAM).

    Transaction mode hands each transaction to any server connection, which is what
    breaks session state and asyncpg's named prepared statements on Neon's pooler.
    """
    pgbouncer_binary()  # missing: unavailable, before anything is written
    port = free_port()
    root = cluster.root
    escaped = cluster.password.replace('"', '""')
    (root / "userlist.txt").write_text(f'"{APP_USER}" "{escaped}"\n')
    (root / "userlist.txt").chmod(0o600)
    ini = root / "pgbouncer.ini"
    ini.write_text(
        "[databases]\n"
        f"* = host={cluster.host} port={cluster.port}\n"
        "[pgbouncer]\n"
        f"listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
        f"auth_type = scram-sha-256\nauth_file = {root / 'userlist.txt'}\n"
        "pool_mode = transaction\nmax_client_conn = 500\ndefault_pool_size = 20\n"
        f"client_tls_sslmode = require\nclient_tls_key_file = {root / 'server.key'}\n"
        f"client_tls_cert_file = {root / 'server.crt'}\n"
        "server_tls_sslmode = require\n"
        # PgBouncer waits 15 s after a failed server login by default; Neon's pooler
        # retries promptly, and so does this harness.
        "server_login_retry = 0.25\n"
        f"logfile = {root / 'pgbouncer.log'}\n"
    )
    if cluster.run_as:
        for path in (ini, root / "userlist.txt"):
            shutil.chown(path, "postgres")
    return PgBouncer(cluster=cluster, port=port, process=_launch_pgbouncer(cluster, port))


def _launch_pgbouncer(cluster: PostgresCluster, port: int) -> subprocess.Popen[bytes]:
    """Run PgBouncer with the cluster's ``pgbouncer.ini``; returns once it listens on ``port``."""
    root = cluster.root
    process = subprocess.Popen(
        [*cluster.run_as, str(pgbouncer_binary()), str(root / "pgbouncer.ini")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log = root / "pgbouncer.log"
            detail = log.read_text()[-2000:] if log.exists() else ""
            raise ClusterUnavailable(f"pgbouncer exited with status {process.returncode}: {detail}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return process
        time.sleep(0.05)
    process.kill()  # pragma: no cover - pgbouncer never listened
    raise ClusterUnavailable("pgbouncer did not start listening within 15 s")  # pragma: no cover


@dataclass
class Standby:
    """A hot standby of a :class:`PostgresCluster`: a read replica streaming its WAL.

    ``server`` is the standby as a cluster of its own (its port, its private socket for
    the superuser's :meth:`PostgresCluster.psql`, its URL with the application role);
    :meth:`stop` stops it and drops its replication slot on the primary.
    """

    server: PostgresCluster
    primary: PostgresCluster
    slot: str

    def url(self, database: str = APP_DATABASE, *, sslmode: str = "require") -> str:
        """The replica's URL: the application role and password, as on the primary."""
        return self.server.url(database, sslmode=sslmode)

    def wait_for_replay(self, *, timeout: float = 30.0) -> None:
        """Wait until the standby has replayed everything the primary has written so far."""
        # The insert position, not pg_current_wal_lsn(): with synchronous_commit = off a
        # commit record may not be written yet when its transaction has returned.
        target = self.primary.psql("SELECT pg_current_wal_insert_lsn()")
        deadline = time.monotonic() + timeout
        while self.server.psql(f"SELECT pg_last_wal_replay_lsn() >= '{target}'::pg_lsn") != "t":
            if time.monotonic() > deadline:
                raise TodoDataError(f"the standby did not replay up to {target} within {timeout} s")
            time.sleep(0.05)

    def pause_replay(self) -> None:
        """Stop applying WAL (it is still received): the replica falls behind."""
        self.server.psql("SELECT pg_wal_replay_pause()")

    def resume_replay(self) -> None:
        self.server.psql("SELECT pg_wal_replay_resume()")

    def stop(self) -> None:
        self.server.stop()
        # Without its standby the slot would keep the primary's WAL forever.
        with contextlib.suppress(TodoDataError):  # the primary may be gone already
            self.primary.psql(
                f"SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = '{self.slot}'"
            )


def start_standby(primary: PostgresCluster, *, name: str = "todo_replica") -> Standby:
    """Start a hot standby of ``primary``, as a read replica is set up anywhere.

    ``pg_basebackup -R`` copies the primary over a TLS + SCRAM replication connection as
    :data:`REPLICATION_USER` and writes the standby's ``primary_conninfo``; it streams
    through a physical replication slot named ``name`` (also its ``application_name`` in
    the primary's ``pg_stat_replication``). The standby gets its own free port and private
    socket, the primary's TLS certificate and the same roles, so the application role
    connects to it with the same password. ``hot_standby_feedback`` is on, as on Neon's
    read replicas, so replay does not cancel long analysis queries.
    """
    root = Path(tempfile.mkdtemp(prefix="todo-data-pg-standby-"))
    for name_ in ("server.crt", "server.key"):
        shutil.copy2(primary.root / name_, root / name_)
    if primary.run_as:
        shutil.chown(root, "postgres")
        for path in root.iterdir():
            shutil.chown(path, "postgres")
    server = PostgresCluster(
        root=root,
        bindir=primary.bindir,
        port=free_port(),
        password=primary.password,
        run_as=primary.run_as,
        replication_password=primary.replication_password,
    )
    standby = Standby(server=server, primary=primary, slot=name)
    conninfo = (
        f"host={primary.host} port={primary.port} user={REPLICATION_USER} sslmode=require application_name={name}"
    )
    try:
        subprocess.run(
            [
                *primary.run_as,
                str(primary.bindir / "pg_basebackup"),
                "-d",
                conninfo,
                "-D",
                str(server.data),
                "--write-recovery-conf",
                "--wal-method=stream",
                "--create-slot",
                f"--slot={name}",
                "--checkpoint=fast",
                "--no-sync",
            ],
            check=True,
            capture_output=True,
            env={**os.environ, "PGPASSWORD": primary.replication_password},
        )
        with (server.data / "postgresql.conf").open("a") as out:
            # Later lines win: the standby's own port, socket and certificate paths.
            out.write(
                "\n# todo_data test standby\n"
                f"port = {server.port}\nunix_socket_directories = '{root}'\n"
                f"ssl_cert_file = '{root / 'server.crt'}'\nssl_key_file = '{root / 'server.key'}'\n"
                "hot_standby = on\nhot_standby_feedback = on\n"
                # Report replay progress to the primary every second, not every ten.
                "wal_receiver_status_interval = 1s\n"
            )
        server.pg_ctl("start")
    except (subprocess.CalledProcessError, TodoDataError) as exc:
        log = root / "server.log"
        detail = log.read_text()[-2000:] if log.exists() else ""
        stderr = getattr(exc, "stderr", b"") or b""
        standby.stop()
        raise ClusterUnavailable(
            f"could not start a PostgreSQL standby: {exc} {stderr.decode(errors='replace')} {detail}"
        ) from exc
    return standby
