"""Read-only that cannot be escaped, attacked again: each test is an escape found by hand.

The attacker may write to the database beforehand (functions, views, types, a database
setting); the reader then uses a read-only engine, its sessions or ``queries.sql``. Each
test fails on the code before its fix.
"""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.integration.test_sql_safety import read_only_twin, victim_table
from todo_data import create_engine, session_scope
from todo_data.errors import InvalidArgumentError

# -- a read-only session stays read-only ---------------------------------------------------------


@pytest.mark.parametrize(
    ("statements", "found"),
    [
        # Accepted by PostgreSQL before the transaction's first query (no snapshot yet).
        (["SET TRANSACTION READ WRITE"], "SET TRANSACTION READ WRITE"),
        (["SET transaction_read_only = off"], "SET transaction_read_only"),
        (['SET LOCAL "Transaction_Read_Only" TO 0'], "SET Transaction_Read_Only"),
        (["RESET transaction_read_only"], "SET transaction_read_only"),
        (["SET transaction_read_only TO DEFAULT"], "SET transaction_read_only"),
        (["BEGIN READ WRITE"], "BEGIN"),
        (["START TRANSACTION ISOLATION LEVEL READ COMMITTED, READ WRITE"], "START TRANSACTION"),
        # The chained transaction is read-only, but has taken no snapshot either.
        (["SELECT 1", "COMMIT AND CHAIN", "SET TRANSACTION READ WRITE"], "COMMIT AND CHAIN"),
        (["SELECT 1", "ROLLBACK AND CHAIN", "SET TRANSACTION READ WRITE"], "ROLLBACK AND CHAIN"),
        # The session's default, which outlives the transaction on a pooled server session.
        (["SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE"], "SET SESSION CHARACTERISTICS READ WRITE"),
        (["SET default_transaction_read_only = off"], "SET default_transaction_read_only"),
    ],
)
@pytest.mark.parametrize("through", ["session", "connection"])
async def test_a_read_only_session_cannot_make_its_transaction_read_write(
    postgres_engine: AsyncEngine, statements: list[str], found: str, through: str
) -> None:
    read_only = read_only_twin(postgres_engine)
    try:
        async with victim_table(postgres_engine) as victim:
            with pytest.raises(InvalidArgumentError, match=f"{found} is refused on a read-only engine"):
                if through == "session":
                    async with session_scope(read_only) as session:
                        for statement in statements:
                            await session.execute(text(statement))
                        await session.execute(text(f"INSERT INTO {victim} VALUES (1)"))
                else:
                    async with read_only.connect() as conn:
                        for statement in statements:
                            await conn.execute(text(statement))
                        await conn.execute(text(f"INSERT INTO {victim} VALUES (2)"))
                        await conn.commit()
            async with postgres_engine.connect() as conn:
                assert (await conn.execute(text(f"SELECT count(*) FROM {victim}"))).scalar() == 0
    finally:
        await read_only.dispose()


async def test_a_read_only_session_keeps_its_savepoints_and_settings(postgres_engine: AsyncEngine) -> None:
    read_only = read_only_twin(postgres_engine)
    try:
        async with session_scope(read_only) as session:
            await session.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"))
            await session.execute(text("SET LOCAL work_mem = '8MB'"))
            async with session.begin_nested():
                assert (await session.execute(text("SHOW work_mem"))).scalar() == "8MB"
            await session.execute(text("SAVEPOINT mine"))
            await session.execute(text("ROLLBACK TO SAVEPOINT mine"))
            await session.execute(text("RELEASE SAVEPOINT mine"))
            isolation = await session.execute(text("SELECT current_setting('transaction_isolation')"))
            assert isolation.scalar() == "repeatable read"
    finally:
        await read_only.dispose()


async def test_read_only_cannot_be_switched_off_by_execution_options(postgres_engine: AsyncEngine) -> None:
    for options in ({"postgresql_readonly": False}, {"isolation_level": "autocommit"}):
        with pytest.raises(InvalidArgumentError, match="read-only"):
            create_engine(postgres_engine.url, read_only=True, execution_options=options)
    with pytest.raises(InvalidArgumentError, match="AUTOCOMMIT"):
        create_engine(postgres_engine.url, read_only=True, isolation_level="Autocommit")
    read_only = read_only_twin(postgres_engine)
    try:
        async with victim_table(postgres_engine) as victim:
            for options in (
                {"postgresql_readonly": False},
                {"postgresql_readonly": None},
                {"isolation_level": "autocommit"},
            ):
                with pytest.raises(InvalidArgumentError, match="read-only"):
                    read_only.execution_options(**options)
                with pytest.raises(InvalidArgumentError, match="read-only"):
                    async with read_only.connect() as conn:
                        await conn.execution_options(**options)
                        await conn.execute(text(f"INSERT INTO {victim} VALUES (1)"))
                        await conn.commit()
                with pytest.raises(InvalidArgumentError, match="read-only"):
                    async with session_scope(read_only) as session:
                        await session.connection(execution_options=options)
                        await session.execute(text(f"INSERT INTO {victim} VALUES (2)"))
            async with postgres_engine.connect() as conn:
                assert (await conn.execute(text(f"SELECT count(*) FROM {victim}"))).scalar() == 0
    finally:
        await read_only.dispose()
