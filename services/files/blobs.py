"""Blob storage: a deliberately small interface (put a stream, read a range, delete).

Blobs hold only ciphertext (see :mod:`services.files.crypto`); the store knows nothing
of files, tenants or keys, so an object store can be added by implementing
:class:`BlobStore` (``put`` maps to a multipart upload completed at the end).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import re
import time
import uuid
from collections.abc import AsyncIterable
from pathlib import Path
from typing import BinaryIO, Protocol

__all__ = ["BlobStore", "LocalBlobStore"]

_EXECUTOR = concurrent.futures.ThreadPoolExecutor(4, thread_name_prefix="blob-write")
_KEY = re.compile(r"^[0-9a-f][0-9a-f-]{7,63}$")


class BlobStore(Protocol):
    """Where sealed blobs live."""

    async def put(self, key: str, chunks: AsyncIterable[bytes]) -> int:
        """Store the stream under ``key`` and return its length.

        The blob becomes readable only once the stream is complete; if the stream
        raises or the task is cancelled, nothing is left behind.
        """
        ...

    async def read(self, key: str, offset: int, length: int) -> bytes:
        """Up to ``length`` bytes from ``offset`` (fewer only at the end of the blob)."""
        ...

    async def delete(self, key: str) -> None:
        """Remove the blob; a missing blob is not an error."""
        ...


class LocalBlobStore:
    """Blobs as files under ``root/objects``; partial uploads under ``root/tmp``.

    A finished upload is fsynced and renamed into place (atomic on one filesystem).
    ``tmp`` is emptied on construction: a crash mid-upload leaves nothing after restart.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self._objects = root / "objects"
        self._tmp = root / "tmp"
        self._objects.mkdir(parents=True, exist_ok=True)
        self._tmp.mkdir(parents=True, exist_ok=True)
        for stale in self._tmp.iterdir():
            stale.unlink(missing_ok=True)

    def path(self, key: str) -> Path:
        """The file holding blob ``key`` (fanned out by its first two characters)."""
        if not _KEY.match(key):
            raise ValueError(f"invalid blob key {key!r}")
        return self._objects / key[:2] / key

    async def put(self, key: str, chunks: AsyncIterable[bytes]) -> int:
        final = self.path(key)
        temp = self._tmp / f"{key}.{uuid.uuid4().hex}.part"
        handle = await _create(temp)
        written = 0
        # One write in flight on the executor while the next chunk is produced.
        pending: concurrent.futures.Future[int] | None = None
        try:
            async for chunk in chunks:
                if pending is not None:
                    await asyncio.wrap_future(pending)
                pending = _EXECUTOR.submit(handle.write, chunk)
                written += len(chunk)
            if pending is not None:
                await asyncio.wrap_future(pending)
            await asyncio.to_thread(_commit, handle, temp, final)
        except BaseException:
            # Synchronous clean-up, so a second cancellation cannot interrupt it; the
            # file is closed once a write still running in the executor has finished.
            temp.unlink(missing_ok=True)
            if pending is not None and not pending.done():
                pending.add_done_callback(lambda _: handle.close())
            else:
                handle.close()
            raise
        return written

    async def read(self, key: str, offset: int, length: int) -> bytes:
        return await asyncio.to_thread(_read, self.path(key), offset, length)

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self.path(key).unlink, True)

    def keys_older_than(self, seconds: float) -> list[str]:
        """Keys of blobs last written more than ``seconds`` ago (for the orphan sweep)."""
        cutoff = time.time() - seconds
        return sorted(
            path.name
            for path in self._objects.glob("*/*")
            if path.is_file() and path.stat().st_mtime < cutoff
        )

    def temp_files(self) -> list[Path]:
        """Partial uploads currently on disk (for tests and diagnostics)."""
        return sorted(self._tmp.iterdir())


def _commit(handle: BinaryIO, temp: Path, final: Path) -> None:
    handle.flush()
    os.fsync(handle.fileno())
    handle.close()
    final.parent.mkdir(exist_ok=True)
    os.replace(temp, final)


def _read(path: Path, offset: int, length: int) -> bytes:
    with path.open("rb") as handle:
        handle.seek(offset)
        return handle.read(length)


async def _create(path: Path) -> BinaryIO:
    """``path`` created and opened for writing, on a worker thread. Cancelled meanwhile (the
    client gave up), the file the thread still creates is closed and removed once it exists:
    it would otherwise stay in ``tmp`` until the next restart."""
    opening: asyncio.Future[BinaryIO] = asyncio.get_running_loop().run_in_executor(
        None, _open_new, path
    )
    try:
        return await asyncio.shield(opening)
    except asyncio.CancelledError:

        def remove(done: asyncio.Future[BinaryIO]) -> None:
            if not done.cancelled() and done.exception() is None:
                done.result().close()
                path.unlink(missing_ok=True)

        opening.add_done_callback(remove)
        raise


def _open_new(path: Path) -> BinaryIO:
    return open(path, "xb")
