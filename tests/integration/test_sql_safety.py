"""Read-only that cannot be escaped: queries.sql takes one read statement and leaves nothing behind.

Each test is a reproduction of an escape found by hand (issue 16) and must fail before its fix.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.integration.attacks import ONE_KEY_ADVISORY_LOCKS, _pooled, read_only_twin, victim_table
from todo_data import create_engine, queries, session_scope
from todo_data.errors import InvalidArgumentError, QueryError
from todo_data.models import Task

ODD_TYPE = "x' AS "  # a legal type name that holds a quote


async def table_exists(engine: AsyncEngine, name: str) -> bool:
    async with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            return bool((await conn.execute(text("SELECT to_regclass(:n) IS NOT NULL"), {"n": name})).scalar())
        found = await conn.execute(text("SELECT count(*) FROM sqlite_master WHERE name = :n"), {"n": name})
        return bool(found.scalar())


# -- the statement text ---------------------------------------------------------------------------


async def test_a_type_name_with_a_quote_cannot_smuggle_a_second_statement(postgres_engine: AsyncEngine) -> None:
    async with postgres_engine.begin() as conn:
        await conn.execute(text(f"""CREATE TYPE public."{ODD_TYPE}" AS ENUM ('a')"""))
    read_only = read_only_twin(postgres_engine)
    try:
        async with victim_table(postgres_engine) as victim:
            for query in (
                f"""SELECT CAST(:x AS public."{ODD_TYPE}") AS v, ':x; COMMIT; DROP TABLE {victim}; --' AS note""",
                f"""SELECT :x::public."{ODD_TYPE}" AS v, ':x; COMMIT; DROP TABLE {victim}; --' AS note""",
            ):
                frame = await queries.sql(read_only, query, {"x": None})
                assert frame["note"].tolist() == [f":x; COMMIT; DROP TABLE {victim}; --"]
                assert frame["v"].isna().all()
                assert await table_exists(postgres_engine, victim)
                frame = await queries.sql(read_only, query, {"x": "a"})
                assert frame["v"].tolist() == ["a"]
    finally:
        await read_only.dispose()
        async with postgres_engine.begin() as conn:
            await conn.execute(text(f"""DROP TYPE public."{ODD_TYPE}" """))


async def test_several_statements_are_refused_before_anything_is_sent(engine: AsyncEngine) -> None:
    async with victim_table(engine) as victim:
        for query in (f"SELECT 1; DROP TABLE {victim}", f"SELECT 1 AS a; COMMIT; DROP TABLE {victim}; --"):
            with pytest.raises(InvalidArgumentError, match="one read statement"):
                await queries.sql(engine, query)
            assert await table_exists(engine, victim)


@pytest.mark.parametrize(
    ("query", "found"),
    [
        ("DELETE FROM tasks", "DELETE"),
        ("WITH d AS (DELETE FROM tasks RETURNING id) SELECT * FROM d", "DELETE"),
        ("SELECT * INTO copied FROM tasks", "SELECT INTO"),
        ("SELECT * FROM tasks FOR UPDATE", "FOR UPDATE"),
        ("EXPLAIN ANALYZE DELETE FROM tasks", "ANALYZE"),
        ("EXPLAIN DELETE FROM tasks", "DELETE"),
        ("LOCK TABLE tasks IN ACCESS EXCLUSIVE MODE", "LOCK"),
        ("PREPARE p AS SELECT 1", "PREPARE"),
        ("LISTEN todo", "LISTEN"),
        ("SET search_path = evil", "SET"),
        ("CREATE TEMP TABLE t AS SELECT 1", "CREATE TABLE AS"),
        ("SELECT pg_advisory_lock(4242)", "pg_advisory_lock"),
        ("SELECT pg_catalog.pg_try_advisory_lock(4242)", "pg_try_advisory_lock"),
        ("SELECT pg_terminate_backend(pg_backend_pid())", "pg_terminate_backend"),
        ("SELECT pg_cancel_backend(1)", "pg_cancel_backend"),
        ("SELECT set_config('search_path', 'evil', false)", "set_config"),
        ("SELECT (SELECT pg_notify('c', 'x'))", "pg_notify"),
    ],
)
async def test_anything_but_a_read_is_refused_on_postgresql_naming_what_was_found(
    postgres_engine: AsyncEngine, query: str, found: str
) -> None:
    await postgres_engine.dispose()
    with pytest.raises(InvalidArgumentError, match=found):
        await queries.sql(postgres_engine, query)
    async with postgres_engine.connect() as conn:
        # Nothing was sent: the refused statement never reached the server.
        assert (await conn.execute(text(ONE_KEY_ADVISORY_LOCKS))).scalar() == 0


@pytest.mark.parametrize(
    ("query", "found"),
    [
        ("DELETE FROM tasks", "DELETE"),
        ("PRAGMA query_only = OFF", "PRAGMA query_only"),
        ("CREATE TABLE t (x)", "a schema change"),
        ("WITH d AS (SELECT 1) INSERT INTO tasks (id) SELECT * FROM d", "INSERT"),
        ("SELECT load_extension('x')", "load_extension"),
        ("SELECT 1; SELECT 2", "one statement"),
    ],
)
async def test_anything_but_a_read_is_refused_on_sqlite(sqlite_engine: AsyncEngine, query: str, found: str) -> None:
    with pytest.raises(InvalidArgumentError, match=found):
        await queries.sql(sqlite_engine, query)


async def test_a_syntax_error_is_found_before_sending_with_its_position(postgres_engine: AsyncEngine) -> None:
    with pytest.raises(QueryError, match=r'syntax error at or near "FORM" \(line 2, column 10\)') as failed:
        await queries.sql(postgres_engine, "SELECT 1\n  AS a   FORM tasks")
    assert failed.value.sqlstate == "42601"


async def test_trailing_semicolons_and_comments_are_fine(engine: AsyncEngine) -> None:
    for query in (
        "SELECT 1 AS a;",
        "SELECT 1 AS a -- note",
        "SELECT 1 AS a; -- note",
        "SELECT 1 AS a /* note */ ;;  \n",
        "-- first a comment\nSELECT 1 AS a -- and one after\n",
    ):
        frame = await queries.sql(engine, query)
        assert frame["a"].tolist() == [1], query
        chunks = [chunk async for chunk in queries.iter_sql(engine, query)]
        assert [chunk["a"].tolist() for chunk in chunks] == [[1]], query


async def test_a_colon_name_is_a_parameter_only_outside_quotes_and_comments(engine: AsyncEngine) -> None:
    frame = await queries.sql(engine, "SELECT ':x' AS a, :x AS b", {"x": 7})
    assert frame.iloc[0].tolist() == [":x", 7]
    frame = await queries.sql(engine, 'SELECT 1 AS ":x", /* :y */ :x AS b -- :z', {"x": 8})
    assert list(frame.columns) == [":x", "b"] and frame["b"].tolist() == [8]
    frame = await queries.sql(engine, "SELECT 'it''s :x' AS a, :x AS b", {"x": "y"})
    assert frame.iloc[0].tolist() == ["it's :x", "y"]
    if engine.dialect.name == "postgresql":
        frame = await queries.sql(engine, "SELECT $$ :x $$ AS a, $t$:x$t$ AS c, E'\\':x' AS d, :x AS b", {"x": 1})
        assert frame.iloc[0].tolist() == [" :x ", ":x", "':x", 1]
        frame = await queries.sql(engine, "SELECT :n::int + 1 AS n", {"n": "41"})
        assert frame["n"].tolist() == [42]


async def test_literals_are_read_as_postgresqls_lexer_reads_them(postgres_engine: AsyncEngine) -> None:
    # A string goes on after a newline, an E'' string with its backslashes; a dollar tag
    # may hold any character outside ASCII.
    for query, expected in (
        ("SELECT E'x'\n'\\' :x ' AS a", "x' :x "),
        ("SELECT 'x' -- c\n' :x' AS a", "x :x"),
        ("SELECT $€$ :x $€$ AS a", " :x "),
        ("SELECT $٣$:x$٣$ AS a", ":x"),
    ):
        assert (await queries.sql(postgres_engine, query))["a"].tolist() == [expected], query


@pytest.mark.parametrize("query", ["SELECT $:x AS a", "SELECT a$:x AS a FROM (SELECT 1 AS a$) AS t"])
async def test_a_parameter_the_lexer_would_join_to_its_neighbour_is_refused(
    postgres_engine: AsyncEngine, query: str
) -> None:
    with pytest.raises(InvalidArgumentError, match=r":x at line 1, column \d+ is not read as a parameter"):
        await queries.sql(postgres_engine, query, {"x": 1})


async def test_a_literal_read_differently_cannot_hide_a_call(postgres_engine: AsyncEngine) -> None:
    """The attack of the first test again, the literal ending where only PostgreSQL sees it end."""
    async with postgres_engine.begin() as conn:
        await conn.execute(text(f"""CREATE TYPE public."{ODD_TYPE}" AS ENUM ('a')"""))
    read_only = read_only_twin(postgres_engine)
    try:
        async with victim_table(postgres_engine) as victim, postgres_engine.connect() as other:
            pid = (await other.execute(text("SELECT pg_backend_pid()"))).scalar()
            # :x once as code, once where only PostgreSQL's lexer sees a literal: what goes in
            # for it there must never end that literal.
            attack = f"' ; SELECT pg_terminate_backend({pid}); DROP TABLE {victim}; --' AS b"
            for query, shown in (
                (f"""SELECT CAST(:x AS public."{ODD_TYPE}") AS v, E'x'\n'\\' :x ' AS a, {attack}""", "x' :x "),
                (f"""SELECT CAST(:x AS public."{ODD_TYPE}") AS v, $€$ :x $€$ AS a, {attack}""", " :x "),
            ):
                for value in (None, "a"):
                    frame = await queries.sql(read_only, query, {"x": value})
                    assert frame["a"].tolist() == [shown]
                    assert frame["v"].tolist() == [value] if value else frame["v"].isna().all()
            assert (await other.execute(text("SELECT 1"))).scalar() == 1
            assert await table_exists(postgres_engine, victim)
    finally:
        await read_only.dispose()
        async with postgres_engine.begin() as conn:
            await conn.execute(text(f"""DROP TYPE public."{ODD_TYPE}" """))


async def test_a_nul_character_is_refused_before_anything_is_sent(engine: AsyncEngine) -> None:
    with pytest.raises(InvalidArgumentError, match=r"NUL character .* line 1, column 10"):
        await queries.sql(engine, "SELECT 1 \x00; DROP TABLE tasks")


async def test_a_parameter_inside_quotes_only_is_unused(engine: AsyncEngine) -> None:
    with pytest.raises(InvalidArgumentError, match="params has 'x', which the query does not use"):
        await queries.sql(engine, "SELECT ':x' AS a", {"x": 1})


async def test_positional_placeholders_are_refused(engine: AsyncEngine) -> None:
    with pytest.raises(InvalidArgumentError, match=r"\$1 at line 1, column 8: parameters are named"):
        await queries.sql(engine, "SELECT $1 AS a")


async def test_an_unclosed_literal_is_refused(engine: AsyncEngine) -> None:
    with pytest.raises(InvalidArgumentError, match="string literal opened at line 1, column 8 is not closed"):
        await queries.sql(engine, "SELECT ':x AS a", {"x": 1})


# -- read-only engines ---------------------------------------------------------------------------


async def test_read_only_cannot_be_combined_with_autocommit(postgres_engine: AsyncEngine) -> None:
    with pytest.raises(InvalidArgumentError, match="AUTOCOMMIT"):
        create_engine(postgres_engine.url, read_only=True, isolation_level="AUTOCOMMIT")
    read_only = read_only_twin(postgres_engine)
    try:
        with pytest.raises(InvalidArgumentError, match="AUTOCOMMIT"):
            read_only.execution_options(isolation_level="AUTOCOMMIT")
        async with read_only.connect() as conn:
            with pytest.raises(InvalidArgumentError, match="AUTOCOMMIT"):
                await conn.execution_options(isolation_level="AUTOCOMMIT")
        assert "read-only" in repr(read_only)
    finally:
        await read_only.dispose()


async def test_an_autocommit_connection_still_reads_in_a_read_only_transaction(postgres_engine: AsyncEngine) -> None:
    async with postgres_engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        frame = await queries.sql(conn, "SELECT current_setting('transaction_read_only') AS ro")
        assert frame["ro"].tolist() == ["off"]  # the caller's connection: as it is
    frame = await queries.sql(
        postgres_engine.execution_options(isolation_level="AUTOCOMMIT"),
        "SELECT current_setting('transaction_read_only') AS ro",
    )
    assert frame["ro"].tolist() == ["on"]


async def test_a_function_that_writes_is_refused_by_the_read_only_transaction(pg_engine: AsyncEngine) -> None:
    async with pg_engine.begin() as conn:
        await conn.execute(
            text(
                "CREATE OR REPLACE FUNCTION todo_test_writer() RETURNS int LANGUAGE sql AS "
                "$$ DELETE FROM tasks RETURNING 1 $$"
            )
        )
    async with session_scope(pg_engine) as session:
        session.add(Task(user_id="u", title="kept"))
    with pytest.raises(QueryError, match="read-only transaction") as refused:
        await queries.sql(pg_engine, "SELECT todo_test_writer() AS n")
    assert refused.value.sqlstate == "25006"
    assert (await queries.sql(pg_engine, "SELECT count(*) AS n FROM tasks"))["n"].tolist() == [1]


async def test_a_read_only_connection_holds_nothing_after_a_call(
    postgres_engine: AsyncEngine, pg_engine: AsyncEngine
) -> None:
    """A function may take a session-level advisory lock or set a session setting: both are gone
    after, a failed call included, behind PgBouncer too (whose next client would get the lock)."""
    async with pg_engine.begin() as conn:
        await conn.execute(
            text(
                "CREATE OR REPLACE FUNCTION todo_test_sticky(fail boolean) RETURNS int LANGUAGE plpgsql AS $$ "
                "BEGIN PERFORM pg_advisory_lock(4242); PERFORM set_config('todo.sticky', 'yes', false); "
                "IF fail THEN RAISE EXCEPTION 'failed on purpose'; END IF; RETURN 1; END $$"
            )
        )
    read_only = create_engine(
        postgres_engine.url, read_only=True, pooled=_pooled(postgres_engine), pool_size=1, max_overflow=0
    )
    try:
        for fail in (False, True):
            if fail:
                with pytest.raises(QueryError, match="failed on purpose"):
                    await queries.sql(read_only, "SELECT todo_test_sticky(:f) AS n", {"f": fail})
            else:
                assert (await queries.sql(read_only, "SELECT todo_test_sticky(:f) AS n", {"f": fail}))[
                    "n"
                ].tolist() == [1]
            async with pg_engine.connect() as other:
                held = await other.execute(text(ONE_KEY_ADVISORY_LOCKS))
                assert held.scalar() == 0
            setting = await queries.sql(read_only, "SELECT current_setting('todo.sticky', true) AS s")
            assert setting["s"].fillna("").tolist() == [""]
    finally:
        await read_only.dispose()


@pytest.mark.parametrize("ending", ["COMMIT", "END", "ROLLBACK", "ABORT"])
async def test_a_read_only_session_cannot_end_its_transaction_and_write(
    postgres_engine: AsyncEngine, ending: str
) -> None:
    read_only = read_only_twin(postgres_engine)
    try:
        async with victim_table(postgres_engine) as victim:
            with pytest.raises(InvalidArgumentError, match=r"(COMMIT|ROLLBACK) is refused on a read-only engine"):
                async with session_scope(read_only) as session:
                    await session.execute(text(ending))
                    await session.execute(text(f"INSERT INTO {victim} VALUES (1)"))
            with pytest.raises(InvalidArgumentError, match=r"(COMMIT|ROLLBACK) is refused on a read-only engine"):
                async with read_only.connect() as conn:
                    await conn.execute(text(ending))
                    await conn.execute(text(f"INSERT INTO {victim} VALUES (2)"))
            async with postgres_engine.connect() as conn:
                assert (await conn.execute(text(f"SELECT count(*) FROM {victim}"))).scalar() == 0
            # The engine goes on, read-only.
            assert (await queries.sql(read_only, "SELECT 1 AS a"))["a"].tolist() == [1]
    finally:
        await read_only.dispose()


async def test_sqlite_read_only_cannot_be_switched_off(sqlite_engine: AsyncEngine, tmp_path: Path) -> None:
    read_only = create_engine(sqlite_engine.url, read_only=True)
    try:
        with pytest.raises(InvalidArgumentError, match="PRAGMA query_only"):
            await queries.sql(read_only, "PRAGMA query_only = OFF")
        attached = tmp_path / "attached.db"
        with pytest.raises(InvalidArgumentError, match="ATTACH"):
            await queries.sql(read_only, f"ATTACH DATABASE '{attached}' AS a")
        assert not attached.exists()
        # Not through queries.sql either: the engine's own connections refuse it.
        async with read_only.connect() as conn:
            with pytest.raises(Exception, match="not authorized"):
                await conn.exec_driver_sql("PRAGMA query_only = OFF")
            with pytest.raises(Exception, match="not authorized"):
                await conn.exec_driver_sql(f"ATTACH DATABASE '{attached}' AS a")
        assert not attached.exists()
        with pytest.raises(Exception, match="readonly"):
            async with session_scope(read_only) as session:
                session.add(Task(user_id="u", title="must not be written"))
        assert (await queries.sql(sqlite_engine, "SELECT count(*) AS n FROM tasks"))["n"].tolist() == [0]
    finally:
        await read_only.dispose()


async def test_sqlite_query_only_is_set_again_on_every_checkout(sqlite_engine: AsyncEngine) -> None:
    read_only = create_engine(sqlite_engine.url, read_only=True, pool_size=1, max_overflow=0)
    try:
        async with read_only.connect() as conn:
            # The authorizer is the guard against this; the checkout is the second one.
            raw = await conn.get_raw_connection()
            driver = raw.driver_connection
            assert driver is not None
            await driver.set_authorizer(None)
            await driver.execute("PRAGMA query_only = OFF")
        async with read_only.connect() as conn:
            assert (await conn.exec_driver_sql("PRAGMA query_only")).scalar() == 1
    finally:
        await read_only.dispose()


async def test_standard_conforming_strings_off_is_refused(pg_engine: AsyncEngine) -> None:
    """With it off, '\\'' would end a string somewhere else than the scanner sees: refused, not guessed."""
    async with pg_engine.connect() as conn:
        await conn.exec_driver_sql("SET standard_conforming_strings = off")
        with pytest.raises(InvalidArgumentError, match="standard_conforming_strings is off"):
            await queries.sql(conn, "SELECT 'a\\' AS a, :x AS b", {"x": 1})
        await conn.rollback()


@pytest.mark.parametrize(
    "query",
    [
        "SELECT query_to_xml('DELETE FROM tasks RETURNING 1', true, false, '')",
        "SELECT nextval('some_sequence')",
        "SELECT ts_stat('SELECT to_tsvector(title) FROM tasks')",
        "SELECT ts_rewrite('a'::tsquery, 'SELECT ''a''::tsquery, ''b''::tsquery')",
        "SELECT * FROM crosstab('SELECT 1, 2, 3') AS t(a int, b int)",
        "SELECT pg_stat_statements_reset()",
        "EXPLAIN ANALYSE SELECT 1",
        "EXPLAIN (ANALYZE TRUE, FORMAT JSON) SELECT 1",
    ],
)
async def test_sql_that_runs_sql_or_changes_state_is_refused_on_a_connection_too(
    pg_engine: AsyncEngine, query: str
) -> None:
    async with pg_engine.connect() as conn:
        with pytest.raises(InvalidArgumentError):
            await queries.sql(conn, query)
