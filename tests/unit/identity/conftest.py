"""Identity's domain on a fresh migrated SQLite database per test."""

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from services.identity.apikeys import ApiKeys
from services.identity.domain import Accounts
from services.identity.store import IdentityStore
from services.identity.tokens import SigningKeys
from services.runtime.db import Database

MIGRATIONS = Path(__file__).parents[3] / "services" / "identity" / "migrations"


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite+aiosqlite:///{tmp_path}/identity.db", MIGRATIONS)
    await database.open()
    yield database
    await database.close()


@pytest.fixture
def store(db: Database) -> IdentityStore:
    return IdentityStore(db)


@pytest.fixture
def keys(store: IdentityStore) -> SigningKeys:
    return SigningKeys(store, b"k" * 32)


@pytest.fixture
def accounts(store: IdentityStore, keys: SigningKeys) -> Accounts:
    return Accounts(store, keys)


@pytest.fixture
def api_keys(store: IdentityStore, accounts: Accounts) -> ApiKeys:
    return ApiKeys(store, accounts)
