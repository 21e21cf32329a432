"""One in-process identity service per module, the subject of the runtime's tests."""

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from services.runtime.db import Database
from tests.unit.runtime.harness import Subject, identity_in_process


@pytest.fixture(scope="module")
async def subject(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Subject]:
    async with identity_in_process(Path(tmp_path_factory.mktemp("alea"))) as running:
        yield running


@pytest.fixture
async def outbox_db(tmp_path: Path) -> AsyncIterator[Database]:
    """A SQLite database of a service whose migrations create the outbox table."""
    from tests.unit.runtime.test_outbox import _REVISION

    versions = tmp_path / "migrations" / "versions"
    versions.mkdir(parents=True)
    (versions / "0001_initial.py").write_text(_REVISION)
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'outbox.db'}", tmp_path / "migrations")
    await database.open()
    yield database
    await database.close()
