"""queries.sql and iter_sql against asyncpg's own decoding, on seeded random queries (see differential.py).

A fixed seed and one case opened by each type per endpoint (a different seed for each
endpoint, so the two together cover 48 queries) keep this to about half a minute each;
``benchmarks/differential.py --cases N`` runs as many as wanted. A failure prints the
query: paste it into ``psql`` to see what PostgreSQL holds.
"""

from __future__ import annotations

import random

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.integration.differential import TYPES, check, generate, reference_connection
from todo_data.database import about
from todo_data.queries import _pgcopy

SEED = 16
CASES = len(TYPES)  # every type opens one case


async def test_random_queries_over_every_type_read_as_asyncpg_decodes_them(
    postgres_engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = random.Random(SEED + about(postgres_engine).target.pooled)
    async with reference_connection(postgres_engine) as driver:
        for number in range(CASES):
            case = generate(rng, first=TYPES[number % len(TYPES)])
            monkeypatch.setattr(_pgcopy, "_SEARCH_BLOCK", case.search_block)
            await check(postgres_engine, driver, case)
