"""Fixtures for the simulation service tests: its store on SQLite and on a real PostgreSQL."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from services.runtime.db import Database
from services.simulation.store import Store
from tests.integration.simulation.models import TENANTS, insert_model, model_of
from tests.support.postgres import postgres  # noqa: F401  (session fixture)

MIGRATIONS = Path(__file__).resolve().parents[3] / "services" / "simulation" / "migrations"
_names = itertools.count()


@pytest.fixture(params=["sqlite", "postgresql"])
async def store(request, tmp_path) -> AsyncIterator[Store]:
    """A migrated simulation database on each engine, with a model per tenant of TENANTS."""
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'simulation.db'}"
    else:
        url = request.getfixturevalue("postgres").create_database(f"sim{next(_names)}")
    database = Database(url, MIGRATIONS)
    await database.open()
    try:
        store = Store(database)
        for tenant in TENANTS:
            await insert_model(store, tenant, model_id=model_of(tenant))
        yield store
    finally:
        await database.close()
