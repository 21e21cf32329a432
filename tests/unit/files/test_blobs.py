"""The local blob store: atomic puts, ranges, clean-up (services.files.blobs)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from services.files.blobs import LocalBlobStore

KEY = "3f2b8c1e-1111-4222-8333-444455556666"


async def stream(*chunks: bytes) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk


async def test_put_read_delete(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    assert await store.put(KEY, stream(b"abc", b"defg")) == 7
    assert await store.read(KEY, 0, 100) == b"abcdefg"
    assert await store.read(KEY, 2, 3) == b"cde"
    await store.delete(KEY)
    assert not store.path(KEY).exists()
    await store.delete(KEY)  # idempotent


async def test_failing_stream_leaves_nothing(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)

    async def broken() -> AsyncIterator[bytes]:
        yield b"partial data"
        raise RuntimeError("client went away")

    with pytest.raises(RuntimeError):
        await store.put(KEY, broken())
    assert not store.path(KEY).exists()
    assert store.temp_files() == []


async def test_cancelled_put_leaves_nothing(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    started = asyncio.Event()

    async def endless() -> AsyncIterator[bytes]:
        while True:
            yield b"x" * 1024
            started.set()
            await asyncio.sleep(0)

    task = asyncio.create_task(store.put(KEY, endless()))
    await started.wait()
    assert store.temp_files()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert store.temp_files() == []
    assert not store.path(KEY).exists()


def test_stale_temp_files_removed_at_start(tmp_path: Path) -> None:
    LocalBlobStore(tmp_path)
    (tmp_path / "tmp" / "left-over.part").write_bytes(b"crash")
    assert LocalBlobStore(tmp_path).temp_files() == []


@pytest.mark.parametrize("key", ["../etc/passwd", "ABC", "", "a/b/c/d/e/f/g"])
def test_rejects_unsafe_keys(tmp_path: Path, key: str) -> None:
    with pytest.raises(ValueError):
        LocalBlobStore(tmp_path).path(key)
