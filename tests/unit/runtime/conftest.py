"""One in-process identity service per module, the subject of the runtime's tests."""

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.unit.runtime.harness import Subject, identity_in_process


@pytest.fixture(scope="module")
async def subject(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Subject]:
    async with identity_in_process(Path(tmp_path_factory.mktemp("alea"))) as running:
        yield running
