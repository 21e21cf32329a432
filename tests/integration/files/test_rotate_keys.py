"""``python -m services.files rotate-keys`` as a process against a real database."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from pathlib import Path

from services.files import store
from services.files.app import MIGRATIONS
from services.files.blobs import LocalBlobStore
from services.files.config import load_files_settings
from services.files.domain import Files, NewFile
from services.files.store import FileStore
from services.runtime.db import Database
from tests.integration.files.conftest import FixedQuota, user

ROOT = Path(__file__).resolve().parents[3]


async def _one(data: bytes):
    yield data


async def test_rotate_keys_command(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'data' / 'files.db'}"
    env = {**os.environ, "ALEA_HOME": str(tmp_path), "ALEA_DATABASE_URL": url}
    env.pop("ALEA_FILES_MASTER_KEYS", None)
    db = Database(url, MIGRATIONS)
    await db.open()
    blobs = LocalBlobStore(tmp_path / "blobs")
    old = load_files_settings(tmp_path, {}).master_keys  # creates the development key file
    alice = user(str(uuid.uuid4()))
    stored = await Files(FileStore(db), blobs, old, FixedQuota(1 << 20), 1 << 20).upload(
        alice, NewFile("a.txt", "text/plain", 5), _one(b"hello")
    )
    blob = blobs.path(stored.id).read_bytes()

    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "services.files", "rotate-keys", "--new-dev-key"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "re-wrapped 1 data keys" in done.stdout

    new = load_files_settings(tmp_path, {}).master_keys
    assert new.current_id != old.current_id
    async with db.reading() as session:
        key_id = await session.scalar(store.files.select().with_only_columns(store.files.c.key_id))
    assert key_id == new.current_id
    assert blobs.path(stored.id).read_bytes() == blob  # data not re-encrypted
    _, stream = await Files(FileStore(db), blobs, new, FixedQuota(1 << 20), 1 << 20).download(
        alice, stored.id
    )
    assert b"".join([piece async for piece in stream]) == b"hello"
    await db.close()
