"""pytest-alembic's standard migration tests, on SQLite and on PostgreSQL.

They run alongside ``test_migrations`` as an outside opinion: single head,
upgrade to head, the model matches the DDL the migrations produce, and every revision
goes up and down. pytest-alembic accepts an async engine; it hands it to
``alembic/env.py`` through ``config.attributes["connection"]``. The engine uses
``NullPool`` because pytest-alembic opens a new event loop for each of its own queries.
"""

from __future__ import annotations

import pytest
from pytest_alembic.config import Config
from pytest_alembic.tests import (
    test_model_definitions_match_ddl,
    test_single_head_revision,
    test_up_down_consistency,
    test_upgrade,
)
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import NullPool

from tests.integration.scratch import scratch_url
from todo_data import create_engine, migrations

__all__ = [
    "scratch_url",
    "test_model_definitions_match_ddl",
    "test_single_head_revision",
    "test_up_down_consistency",
    "test_upgrade",
]


@pytest.fixture
def alembic_config() -> Config:
    # The tests run in a temporary directory, away from alembic.ini: name the scripts.
    return Config(config_options={"script_location": str(migrations.script_location())})


@pytest.fixture
def alembic_engine(scratch_url: str) -> AsyncEngine:
    """An empty database of each backend (``scratch_url`` is parametrized)."""
    return create_engine(scratch_url, poolclass=NullPool)
