"""PostgreSQL specifics not covered elsewhere: SCRAM failures, migrations from the CLI.

Connection strings and TLS are tested in test_reliability.py.
"""

from __future__ import annotations

from sqlalchemy.engine import make_url

from tests.helpers import PostgresServer, alembic_cli, connect_failure
from todo_data import create_engine, migrations


async def test_wrong_password_names_host_and_database_but_not_the_password(postgres_server: PostgresServer) -> None:
    url = make_url(postgres_server.url).set(password="Wr0ng-p@ss")
    message = str(await connect_failure(url))
    assert "password authentication failed" in message
    assert f"on {url.host}:{url.port}" in message and f'database "{url.database}"' in message
    assert "Wr0ng" not in message


async def test_alembic_cli_upgrade_check_downgrade_on_postgresql(postgres_server: PostgresServer) -> None:
    url = postgres_server.scratch_url()
    engine = create_engine(url)
    try:
        # Each run is a new interpreter importing alembic and the model: three, not more.
        for args, revision in (
            (("upgrade", "head"), migrations.head()),
            (("check",), None),
            (("downgrade", "base"), None),
        ):
            result = alembic_cli(*args, url=url)
            assert result.returncode == 0, (args, result.stderr)
            if args != ("check",):
                assert await migrations.current(engine) == revision, args
    finally:
        await engine.dispose()
