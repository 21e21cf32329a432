"""The local blob store: atomic puts, ranges, clean-up (services.files.blobs)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import BinaryIO

import pytest

from services.files import blobs
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


async def test_a_put_cancelled_while_its_file_is_created_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The client gives up while a worker thread is creating the temp file: the thread
    # still creates it after the cancellation reached the upload.
    store = LocalBlobStore(tmp_path)
    creating = threading.Event()

    def slow_open(path: Path, mode: str) -> BinaryIO:
        creating.set()
        time.sleep(0.2)
        return open(path, mode)

    monkeypatch.setattr(blobs, "open", slow_open, raising=False)

    async def nothing() -> AsyncIterator[bytes]:
        return
        yield b""

    task = asyncio.create_task(store.put(KEY, nothing()))
    while not creating.is_set():  # noqa: ASYNC110  (a worker thread's event)
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(0.5)  # the thread has created it meanwhile
    assert store.temp_files() == []


def test_stale_temp_files_removed_at_start(tmp_path: Path) -> None:
    LocalBlobStore(tmp_path)
    (tmp_path / "tmp" / "left-over.part").write_bytes(b"crash")
    assert LocalBlobStore(tmp_path).temp_files() == []


@pytest.mark.parametrize("key", ["../etc/passwd", "ABC", "", "a/b/c/d/e/f/g"])
def test_rejects_unsafe_keys(tmp_path: Path, key: str) -> None:
    with pytest.raises(ValueError):
        LocalBlobStore(tmp_path).path(key)
