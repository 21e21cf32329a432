"""Files domain: upload, download, metadata, sharing, quotas and master-key rotation.

Who sees a file: its owner, the users it is shared with (read-only), and the admins of
its tenant; for anyone else, and for every other tenant, it does not exist (NotFound).
Only the owner or a tenant admin may delete or share it.

An upload streams through SHA-256 and the chunk sealer straight into the blob store;
the blob becomes visible only when the metadata row and the usage charge commit in one
transaction. Any failure before that removes the blob, so an interrupted upload leaves
nothing behind (the blob store's temp area is emptied at start for crashes).
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from services.files import content
from services.files.blobs import BlobStore
from services.files.crypto import (
    CHUNK_SIZE,
    TAG_SIZE,
    ChunkCipher,
    IntegrityError,
    MasterKeys,
    Sealer,
    chunk_count,
    chunk_span,
)
from services.files.store import FileRecord, FileStore
from services.runtime.context import Principal
from services.runtime.errors import (
    AlreadyExists,
    DataLoss,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    OutOfRange,
    PermissionDenied,
    ResourceExhausted,
)
from services.runtime.listing import ListRequest, Page

__all__ = [
    "FileInfo",
    "Files",
    "Identity",
    "NewFile",
    "StorageUsage",
    "rotate_master_keys",
]


class Identity(Protocol):
    """What files asks identity (``runtime.peers.IdentityClient``)."""

    async def storage_limit(self, tenant_id: str) -> int:
        """Bytes the tenant may store (GetQuota)."""
        ...

    async def user_exists(self, user_id: str, credentials: Sequence[tuple[str, str]]) -> bool:
        """Whether ``user_id`` is a user of the caller's tenant, asked with the caller's own
        ``credentials`` (GetUser): another tenant's user does not exist either."""
        ...


@dataclass(frozen=True)
class NewFile:
    """What an upload declares before its bytes.

    ``size`` is -1 when unknown, ``sha256`` lowercase hex or empty, ``request_id`` an
    idempotency key or empty: a retry with the same key returns the first upload.
    """

    name: str
    content_type: str
    size: int = -1
    sha256: str = ""
    request_id: str = ""


@dataclass(frozen=True)
class FileInfo:
    """A stored file as callers see it."""

    id: str
    tenant_id: str
    owner_id: str
    name: str
    content_type: str
    size: int
    sha256: str
    create_time: datetime
    update_time: datetime
    shared_with: tuple[str, ...] = ()


@dataclass(frozen=True)
class StorageUsage:
    """A tenant's stored bytes and files against its limit."""

    tenant_id: str
    bytes_used: int
    file_count: int
    limit_bytes: int


class Files:
    """The files service's operations; every method acts for ``caller``."""

    def __init__(
        self,
        store: FileStore,
        blobs: BlobStore,
        keys: MasterKeys,
        identity: Identity,
        max_file_bytes: int,
        chunk_size: int = CHUNK_SIZE,
    ) -> None:
        self._store, self._blobs, self._keys, self._identity = store, blobs, keys, identity
        self._max_file_bytes = max_file_bytes
        self._chunk_size = chunk_size

    # -- upload --------------------------------------------------------------------------

    async def upload(self, caller: Principal, new: NewFile, data: AsyncIterable[bytes]) -> FileInfo:
        """Store ``data`` encrypted; RESOURCE_EXHAUSTED before storing when over quota."""
        content.check_media_type(new.content_type)
        too_big = f"exceeds the {self._max_file_bytes}-byte file limit"
        if new.size > self._max_file_bytes:
            raise InvalidArgument("size_bytes", too_big)
        tenant = caller.tenant_id
        if new.request_id and (earlier := await self._by_request(caller, new.request_id)):
            if (
                (earlier.name, earlier.content_type) != (new.name, new.content_type)
                or (new.size >= 0 and new.size != earlier.size)
                or (new.sha256 and new.sha256 != earlier.sha256)
            ):
                raise InvalidArgument("request_id", "already used for a different request")
            return earlier
        limit = await self._identity.storage_limit(tenant)
        used, _ = await self._store.usage(tenant)
        if new.size > 0 and used + new.size > limit:
            raise _over_quota(tenant, used, new.size, limit)

        file_id = str(uuid.uuid4())
        cipher, data_key, prefix = ChunkCipher.generate(file_id)
        digest = hashlib.sha256()
        checker = content.checker_for(new.name, new.content_type)
        received = 0

        sealer = Sealer(cipher, self._chunk_size)

        def absorb(piece: bytes) -> list[bytes]:
            digest.update(piece)  # hashlib and the file writes release the GIL
            checker.feed(piece)
            return sealer.feed(piece)

        async def sealed() -> AsyncIterator[bytes]:
            nonlocal received
            loop = asyncio.get_running_loop()
            # One piece is hashed and sealed on a worker thread while the next arrives.
            absorbing: asyncio.Future[list[bytes]] | None = None
            try:
                async for piece in data:
                    received += len(piece)
                    if received > self._max_file_bytes:
                        raise InvalidArgument("size_bytes", too_big)
                    if new.size >= 0 and received > new.size:
                        raise InvalidArgument("size_bytes", f"more than the {new.size} declared")
                    if used + received > limit:
                        raise _over_quota(tenant, used, received, limit)
                    if absorbing is not None:
                        for chunk in await absorbing:
                            yield chunk
                    absorbing = loop.run_in_executor(None, absorb, piece)
                if absorbing is not None:
                    for chunk in await absorbing:
                        yield chunk
            finally:
                if absorbing is not None and not absorbing.done():
                    # The upload failed first; this piece's outcome no longer matters.
                    absorbing.add_done_callback(lambda f: f.cancelled() or f.exception())
            # Refused before the last chunk, so an incomplete upload never reaches objects/.
            _check_complete(new, received, digest.hexdigest())
            checker.finish()
            yield sealer.finish()

        await self._blobs.put(file_id, sealed())
        try:
            key_id, wrapped = self._keys.wrap(data_key, file_id)
            now = datetime.now(UTC)
            record = FileRecord(
                id=file_id,
                tenant_id=tenant,
                owner_id=caller.user_id,
                name=new.name,
                content_type=new.content_type,
                size=received,
                sha256=digest.hexdigest(),
                key_id=key_id,
                wrapped_key=wrapped,
                nonce_prefix=prefix,
                chunk_size=self._chunk_size,
                create_time=now,
                update_time=now,
                request_id=new.request_id or None,
            )
            if not await self._store.insert(record, limit):
                used, _ = await self._store.usage(tenant)
                raise _over_quota(tenant, used, received, limit)
        except AlreadyExists:
            await self._blobs.delete(file_id)
            # Only the (tenant, request_id) key can clash: a concurrent retry won the race.
            earlier = await self._by_request(caller, new.request_id) if new.request_id else None
            if earlier is None:
                raise
            return earlier
        except BaseException:
            await self._blobs.delete(file_id)
            raise
        return _info(record)

    async def _by_request(self, caller: Principal, request_id: str) -> FileInfo | None:
        file_id = await self._store.id_by_request(caller.tenant_id, request_id)
        found = await self._store.get(caller.tenant_id, file_id) if file_id else None
        if found is None:
            return None
        record, shared_with = found
        if record.owner_id != caller.user_id:
            # Another user's upload is not this caller's retry, and may be a file they cannot
            # see: answering with it (or with NOT_FOUND for it) would name it to them.
            raise InvalidArgument("request_id", "already used for a different request")
        return _info(record, shared_with)

    # -- reads ---------------------------------------------------------------------------

    async def get(self, caller: Principal, file_id: str) -> FileInfo:
        """A file visible to the caller (NotFound otherwise)."""
        record, shared_with = await self._visible(caller, file_id)
        return _info(record, shared_with)

    async def list(self, caller: Principal, request: ListRequest) -> Page[FileInfo]:
        """Files visible to the caller, filtered, ordered and paged."""
        visible_to = None if caller.role == "admin" else caller.user_id
        page = await self._store.list(caller.tenant_id, request, visible_to)
        return Page([_info(record) for record in page.items], page.next_page_token)

    async def download(
        self, caller: Principal, file_id: str, offset: int = 0, length: int = 0
    ) -> tuple[FileInfo, AsyncIterator[bytes]]:
        """The file and its plaintext bytes ``[offset, offset + length)`` (0 = to the end).

        Chunks are authenticated as they are read: a tampered or truncated blob raises
        DataLoss before any byte of the affected chunk is returned.
        """
        record, _ = await self._visible(caller, file_id)
        size = record.size
        if offset < 0 or length < 0:
            raise InvalidArgument("offset" if offset < 0 else "length", "must not be negative")
        if offset > size:
            raise OutOfRange(f"offset {offset} is beyond the end of the {size}-byte file")
        length = length or size - offset
        cipher = ChunkCipher(self._data_key(record), record.nonce_prefix, file_id)
        info = _info(record)
        if not content.is_media_type(info.content_type):
            # stored before uploads were checked: never a Content-Type header as given
            info = dataclasses.replace(info, content_type=content.OPAQUE)
        return info, self._plaintext(cipher, record, offset, length)

    async def _plaintext(
        self, cipher: ChunkCipher, record: FileRecord, offset: int, length: int
    ) -> AsyncIterator[bytes]:
        size, chunk_size, file_id = record.size, record.chunk_size, record.id
        last = chunk_count(size, chunk_size) - 1
        stride = chunk_size + TAG_SIZE
        for index, start, end in chunk_span(offset, length, size, chunk_size):
            plain_len = min(chunk_size, size - index * chunk_size)
            try:
                sealed = await self._blobs.read(file_id, index * stride, plain_len + TAG_SIZE)
            except FileNotFoundError:
                raise DataLoss(f"the blob of file {file_id} is missing") from None
            try:
                if len(sealed) != plain_len + TAG_SIZE:
                    raise IntegrityError(f"chunk {index} is truncated")
                plain = cipher.open(index, sealed, final=index == last)
            except IntegrityError as exc:
                raise DataLoss(f"file {file_id} failed its integrity check: {exc}") from None
            yield plain[start:end]

    async def usage(self, tenant_id: str) -> StorageUsage:
        """A tenant's storage usage and limit (the caller's tenant is checked by the API)."""
        limit = await self._identity.storage_limit(tenant_id)
        used, count = await self._store.usage(tenant_id)
        return StorageUsage(tenant_id, used, count, limit)

    # -- changes -------------------------------------------------------------------------

    async def delete(self, caller: Principal, file_id: str) -> None:
        """Remove the file, its shares and its blob, and give back its bytes."""
        record, _ = await self._visible(caller, file_id)
        _require_manager(caller, record)
        if not await self._store.delete(caller.tenant_id, file_id, caller.user_id):
            raise NotFound("file", file_id)  # a concurrent delete came first
        await self._blobs.delete(file_id)

    async def share(
        self,
        caller: Principal,
        file_id: str,
        user_id: str,
        credentials: Sequence[tuple[str, str]],
    ) -> FileInfo:
        """Let ``user_id`` (a user of the same tenant) read the file; idempotent.

        Identity is asked with the caller's ``credentials`` whether the user exists in
        their tenant: one of another tenant and one that does not exist are the same
        NotFound, so sharing reveals nothing about other tenants' users.
        """
        record, _ = await self._visible(caller, file_id)
        _require_manager(caller, record)
        if user_id == record.owner_id:
            raise InvalidArgument("user_id", "the owner already has access")
        if not await self._identity.user_exists(user_id, credentials):
            raise NotFound("user", user_id)
        shared = await self._store.share(
            caller.tenant_id, file_id, user_id, datetime.now(UTC), caller.user_id
        )
        if not shared:
            raise NotFound("file", file_id)
        return await self.get(caller, file_id)

    async def unshare(self, caller: Principal, file_id: str, user_id: str) -> FileInfo:
        """Revoke ``user_id``'s access; idempotent."""
        record, _ = await self._visible(caller, file_id)
        _require_manager(caller, record)
        await self._store.unshare(caller.tenant_id, file_id, user_id)
        return await self.get(caller, file_id)

    async def sweep_orphans(self, keys: Sequence[str]) -> int:
        """Delete the blobs among ``keys`` that no file refers to; returns how many.

        Such a blob is left only by a crash between an upload's rename into place and
        its metadata commit: ciphertext that nothing can read or count. Callers pass
        keys old enough that no upload can still be committing them.
        """
        removed = 0
        for start in range(0, len(keys), 500):
            batch = keys[start : start + 500]
            known = await self._store.known(batch)
            for key in batch:
                if key not in known:
                    await self._blobs.delete(key)
                    removed += 1
        return removed

    # -- helpers -------------------------------------------------------------------------

    def _data_key(self, record: FileRecord) -> bytes:
        try:
            return self._keys.unwrap(record.key_id, record.wrapped_key, record.id)
        except KeyError:
            raise FailedPrecondition(f"master key {record.key_id!r} is not configured") from None
        except IntegrityError as exc:
            raise DataLoss(str(exc)) from None

    async def _visible(self, caller: Principal, file_id: str) -> tuple[FileRecord, tuple[str, ...]]:
        """The file and whom it is shared with, if the caller may see it; else NotFound."""
        found = await self._store.get(caller.tenant_id, file_id)
        if found is None:
            raise NotFound("file", file_id)
        record, shared_with = found
        if caller.role == "admin" or record.owner_id == caller.user_id:
            return found
        if caller.user_id not in shared_with:
            raise NotFound("file", file_id)
        return found


async def rotate_master_keys(store: FileStore, keys: MasterKeys, batch: int = 500) -> int:
    """Re-wrap every data key not under ``keys.current_id``; returns how many were re-wrapped.

    Blobs are untouched. Safe to rerun and to run while serving (see ``rewrap_keys``).
    """

    def rewrap(file_id: str, key_id: str, wrapped: bytes) -> tuple[str, bytes]:
        try:
            return keys.rewrap(key_id, wrapped, file_id)
        except KeyError:
            raise FailedPrecondition(f"master key {key_id!r} is not configured") from None

    done = 0
    while True:
        count = await store.rewrap_keys(keys.current_id, rewrap, batch)
        done += count
        if count < batch:
            return done


def _require_manager(caller: Principal, record: FileRecord) -> None:
    if caller.role != "admin" and record.owner_id != caller.user_id:
        raise PermissionDenied("only the owner or a tenant admin may change this file")


def _check_complete(new: NewFile, received: int, sha256: str) -> None:
    if new.size >= 0 and received != new.size:
        raise InvalidArgument("size_bytes", f"declared {new.size} bytes but received {received}")
    if new.sha256 and new.sha256.lower() != sha256:
        raise InvalidArgument("sha256", "does not match the SHA-256 of the received bytes")


def _over_quota(tenant: str, used: int, adding: int, limit: int) -> ResourceExhausted:
    return ResourceExhausted(
        "storage_bytes",
        f"the tenant would store {used + adding} bytes, over its {limit}-byte quota",
        subject=f"tenant:{tenant}",
    )


def _info(record: FileRecord, shared_with: tuple[str, ...] = ()) -> FileInfo:
    return FileInfo(
        id=record.id,
        tenant_id=record.tenant_id,
        owner_id=record.owner_id,
        name=record.name,
        content_type=record.content_type,
        size=record.size,
        sha256=record.sha256,
        create_time=record.create_time,
        update_time=record.update_time,
        shared_with=shared_with,
    )
