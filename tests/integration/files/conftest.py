"""Fixtures for the files service tests: the domain on SQLite and on a real PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest

from services.files.blobs import LocalBlobStore
from services.files.crypto import MasterKeys
from services.files.domain import Files
from services.files.store import FileStore
from services.runtime.context import Principal
from services.runtime.db import Database
from tests.support.postgres import postgres  # noqa: F401  (session fixture)

MIGRATIONS = Path(__file__).resolve().parents[3] / "services" / "files" / "migrations"


class FixedQuota:
    """Identity as the test sets it: a storage limit per tenant (GetQuota), and the users
    that exist (GetUser with the caller's credentials, which here stand for the caller's
    tenant id)."""

    def __init__(self, default: int) -> None:
        self.default = default
        self.limits: dict[str, int] = {}
        self.users: dict[str, str] = {}  # user id -> tenant id

    async def storage_limit(self, tenant_id: str) -> int:
        return self.limits.get(tenant_id, self.default)

    async def user_exists(self, user_id: str, credentials: Sequence[tuple[str, str]]) -> bool:
        return self.users.get(user_id) == dict(credentials)["authorization"]


def as_caller(caller) -> tuple[tuple[str, str], ...]:
    """The caller's credentials, as FixedQuota reads them."""
    return (("authorization", caller.tenant_id),)


def user(tenant: str, role: str = "analyst") -> Principal:
    return Principal(user_id=str(uuid.uuid4()), tenant_id=tenant, role=role)


@pytest.fixture(params=["sqlite", "postgresql"])
async def database(request, tmp_path: Path) -> AsyncIterator[Database]:
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'files.db'}"
    else:
        server = request.getfixturevalue("postgres")
        url = server.create_database(f"files_{uuid.uuid4().hex[:8]}")
    db = Database(url, MIGRATIONS)
    await db.open()
    yield db
    await db.close()


@pytest.fixture
def quota() -> FixedQuota:
    return FixedQuota(default=10 * 1024 * 1024)


@pytest.fixture
def blobs(tmp_path: Path) -> LocalBlobStore:
    return LocalBlobStore(tmp_path / "blobs")


@pytest.fixture
def keys() -> MasterKeys:
    return MasterKeys("k1", {"k1": b"\x01" * 32})


@pytest.fixture
def files(database: Database, blobs: LocalBlobStore, keys: MasterKeys, quota: FixedQuota) -> Files:
    return Files(
        FileStore(database), blobs, keys, quota, max_file_bytes=4 * 1024 * 1024, chunk_size=1024
    )
