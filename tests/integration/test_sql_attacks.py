"""Read-only that cannot be escaped, attacked again: each test is an escape found by hand.

The attacker may write to the database beforehand (functions, views, types, a database
setting); the reader then uses a read-only engine, its sessions or ``queries.sql``. Each
test fails on the code before its fix.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.helpers import PostgresServer
from tests.integration.attacks import read_only_twin, victim_table
from todo_data import create_engine, queries, session_scope
from todo_data.database import about
from todo_data.errors import InvalidArgumentError, QueryError


@asynccontextmanager
async def created(engine: AsyncEngine, *objects: tuple[str, str]) -> AsyncIterator[None]:
    """Each ``(create, drop)`` pair run as the attacker, the drops afterwards (newest first)."""
    done: list[str] = []
    try:
        for create, drop in objects:
            async with engine.begin() as conn:
                await conn.execute(text(create))
            done.append(drop)
        yield
    finally:
        for drop in reversed(done):
            async with engine.begin() as conn:
                await conn.execute(text(drop))


def one_connection_twin(engine: AsyncEngine) -> AsyncEngine:
    """A read-only engine of one connection, so every call reuses what the last one left."""
    return create_engine(engine.url, read_only=True, pooled=about(engine).target.pooled, pool_size=1, max_overflow=0)


async def advisory_locks(engine: AsyncEngine, key: int) -> int:
    async with engine.connect() as conn:
        found = await conn.execute(
            text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = :k"), {"k": key}
        )
        return int(found.scalar_one())


async def end_sessions_holding(engine: AsyncEngine, key: int) -> None:
    """Cleanup after a failure: a lock left on a server session behind PgBouncer outlives the engine."""
    async with engine.connect() as conn:
        await conn.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_locks "
                "WHERE locktype = 'advisory' AND objid = :k AND pid <> pg_backend_pid()"
            ),
            {"k": key},
        )


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


async def test_the_refusal_is_the_same_through_an_engine_with_options(postgres_engine: AsyncEngine) -> None:
    read_only = read_only_twin(postgres_engine)
    try:
        with pytest.raises(InvalidArgumentError, match="COMMIT is refused on a read-only engine"):
            async with read_only.execution_options(logging_token="analysis").connect() as conn:
                await conn.execute(text("COMMIT"))
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


# -- queries.sql: the SQL it adds cannot be redirected ------------------------------------------


async def test_a_search_path_a_view_sets_cannot_keep_its_lock_on_the_connection(postgres_engine: AsyncEngine) -> None:
    """The view takes a session lock, prepares a statement and puts ``public`` before
    ``pg_catalog`` for the rest of the transaction, where decoys of ``pg_advisory_unlock_all``
    and of the type ``text`` wait for the cleanup."""
    key = 4343
    name = f"todo_attack_{uuid.uuid4().hex[:8]}"
    read_only = one_connection_twin(postgres_engine)
    try:
        async with created(
            postgres_engine,
            (
                f"CREATE FUNCTION public.{name}() RETURNS int LANGUAGE plpgsql AS $$ BEGIN "
                "PERFORM pg_catalog.set_config('search_path', 'public, pg_catalog', true); "
                f"PERFORM pg_catalog.pg_advisory_lock({key}); EXECUTE 'PREPARE {name} AS SELECT 1'; "
                "RETURN 1; END $$",
                f"DROP FUNCTION public.{name}()",
            ),
            (f"CREATE VIEW public.{name}_v AS SELECT public.{name}() AS k", f"DROP VIEW public.{name}_v"),
            (
                "CREATE FUNCTION public.pg_advisory_unlock_all() RETURNS void LANGUAGE sql AS $$ SELECT NULL::void $$",
                "DROP FUNCTION public.pg_advisory_unlock_all()",
            ),
            ("CREATE TYPE public.text AS ENUM ('decoy')", "DROP TYPE public.text"),
        ):
            prepared = "SELECT count(*) AS n FROM pg_prepared_statements WHERE from_sql"
            assert (await queries.sql(read_only, f"SELECT k FROM {name}_v"))["k"].tolist() == [1]
            assert await advisory_locks(postgres_engine, key) == 0
            assert (await queries.sql(read_only, prepared))["n"].tolist() == [0]
            chunks = [chunk async for chunk in queries.iter_sql(read_only, f"SELECT k FROM {name}_v")]
            assert [chunk["k"].tolist() for chunk in chunks] == [[1]]
            assert await advisory_locks(postgres_engine, key) == 0
            assert (await queries.sql(read_only, prepared))["n"].tolist() == [0]
    finally:
        await read_only.dispose()
        await end_sessions_holding(postgres_engine, key)


async def test_a_database_search_path_cannot_forge_the_values_or_skip_the_cleanup(
    postgres_server: PostgresServer, pooled_url: str
) -> None:
    """The database's owner puts ``public`` first for every session, with decoys of the
    functions queries.sql's own SQL calls: the values bound and the lock release stay real."""
    url = postgres_server.scratch_url()
    owner = create_engine(url)
    key = 4344
    try:
        async with owner.begin() as conn:
            database = make_url(url).database
            for statement in (
                f'ALTER DATABASE "{database}" SET search_path = public, pg_catalog',
                "CREATE FUNCTION public.current_setting(text) RETURNS text LANGUAGE sql AS $$ SELECT 'forged' $$",
                "CREATE FUNCTION public.pg_advisory_unlock_all() RETURNS void LANGUAGE sql AS $$ SELECT NULL::void $$",
                "CREATE FUNCTION public.take_lock() RETURNS int LANGUAGE sql "
                f"AS $$ SELECT 1 FROM pg_catalog.pg_advisory_lock({key}) $$",
            ):
                await conn.execute(text(statement))
        pooled = make_url(pooled_url).set(database=database)
        for reader_url, is_pooled in ((url, False), (pooled, True)):
            read_only = create_engine(reader_url, read_only=True, pooled=is_pooled, pool_size=1, max_overflow=0)
            try:
                frame = await queries.sql(
                    read_only, "SELECT :x AS a, :n + 1 AS b, take_lock() AS c", {"x": "real", "n": 1}
                )
                assert frame.iloc[0].tolist() == ["real", 2, 1]
                assert await advisory_locks(owner, key) == 0
            finally:
                await read_only.dispose()
                await end_sessions_holding(owner, key)
    finally:
        await owner.dispose()


async def test_a_prepared_statement_a_function_made_is_gone_after_the_call(postgres_engine: AsyncEngine) -> None:
    """A prepared statement outlives a rollback: on a pooled connection the next client would find it."""
    name = f"todo_attack_{uuid.uuid4().hex[:8]}"
    read_only = one_connection_twin(postgres_engine)
    try:
        async with created(
            postgres_engine,
            (
                f"CREATE FUNCTION public.{name}() RETURNS int LANGUAGE plpgsql AS $$ BEGIN "
                f"EXECUTE 'PREPARE {name} AS SELECT 1'; RETURN 1; END $$",
                f"DROP FUNCTION public.{name}()",
            ),
        ):
            # After a call that returns and after one that fails once the function has run.
            assert (await queries.sql(read_only, f"SELECT {name}() AS a"))["a"].tolist() == [1]
            left = "SELECT count(*) AS n FROM pg_prepared_statements WHERE from_sql"
            assert (await queries.sql(read_only, left))["n"].tolist() == [0]
            with pytest.raises(QueryError, match="division by zero"):
                await queries.sql(read_only, f"SELECT a FROM (SELECT {name}() AS a) AS s WHERE 1 / (a - 1) = 1")
            assert (await queries.sql(read_only, left))["n"].tolist() == [0]
    finally:
        await read_only.dispose()


async def test_a_type_named_like_an_array_is_not_read_as_another_type(postgres_engine: AsyncEngine) -> None:
    """``"x[]"`` is a legal name for an enum; the value is not cast to the attacker's ``_x``."""
    name = f"todo_attack_{uuid.uuid4().hex[:8]}"
    read_only = read_only_twin(postgres_engine)
    try:
        async with created(
            postgres_engine,
            (f"""CREATE TYPE public."{name}[]" AS ENUM ('a', 'b')""", f'DROP TYPE public."{name}[]"'),
            (f"CREATE DOMAIN public._{name} AS text CHECK (VALUE = 'never')", f"DROP DOMAIN public._{name}"),
        ):
            frame = await queries.sql(
                read_only, f'SELECT :x::public."{name}[]" AS a, :y = ANY(:z) AS b', {"x": "a", "y": 2, "z": [1, 2]}
            )
            assert frame.iloc[0].tolist() == ["a", True]
    finally:
        await read_only.dispose()


@pytest.mark.parametrize(
    "query",
    [
        "SELECT * FROM pg_logical_slot_get_changes('slot', NULL, NULL)",
        "SELECT * FROM pg_catalog.pg_logical_slot_get_binary_changes('slot', NULL, NULL)",
        "SELECT pg_start_backup('x')",
        "SELECT pg_stop_backup()",
        "SELECT pg_rotate_logfile_old()",
        "SELECT bt_index_parent_check('tasks_pkey')",
        "SELECT heap_force_kill('tasks', ARRAY['(0,1)'::tid])",
        "SELECT pg_truncate_visibility_map('tasks')",
        "SELECT pg_background_launch('DELETE FROM tasks')",
    ],
)
async def test_more_functions_with_effects_outside_the_transaction_are_refused(
    pg_engine: AsyncEngine, query: str
) -> None:
    with pytest.raises(InvalidArgumentError, match="refused in read-only SQL"):
        await queries.sql(pg_engine, query)
