"""queries.sql and iter_sql against asyncpg's own decoding, on seeded random queries (see differential.py).

A fixed seed and a few dozen cases per endpoint keep this to well under a minute;
``benchmarks/differential.py --cases N`` runs as many as wanted. A failure prints the
query: paste it into ``psql`` to see what PostgreSQL holds.
"""

from __future__ import annotations

import random

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.integration.differential import TYPES, check, generate, reference_connection
from todo_data import _pgcopy

SEED = 16
CASES = 48  # every type opens at least one case


async def test_random_queries_over_every_type_read_as_asyncpg_decodes_them(
    postgres_engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = random.Random(SEED)
    async with reference_connection(postgres_engine) as driver:
        for number in range(CASES):
            case = generate(rng, first=TYPES[number % len(TYPES)])
            monkeypatch.setattr(_pgcopy, "_SEARCH_BLOCK", case.search_block)
            await check(postgres_engine, driver, case)
