"""The files domain against real SQLite and PostgreSQL databases and a real blob directory."""

from __future__ import annotations

import asyncio
import hashlib
import os
import uuid
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import update

from services.files.blobs import LocalBlobStore
from services.files.crypto import MasterKeys
from services.files.domain import Files, NewFile, rotate_master_keys
from services.files.store import FileStore
from services.files.store import files as files_table
from services.runtime.db import Database
from services.runtime.errors import (
    DataLoss,
    InvalidArgument,
    NotFound,
    OutOfRange,
    PermissionDenied,
    ResourceExhausted,
)
from services.runtime.listing import ListRequest as Query
from tests.integration.files.conftest import FixedQuota, as_caller, user

TENANT_A, TENANT_B = str(uuid.uuid4()), str(uuid.uuid4())


async def pieces(data: bytes, size: int = 700) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def collect(stream: AsyncIterator[bytes]) -> bytes:
    return b"".join([piece async for piece in stream])


async def put(files: Files, caller, data: bytes, name: str = "data.bin", **kw):
    new = NewFile(name, kw.pop("content_type", "application/octet-stream"), len(data), **kw)
    return await files.upload(caller, new, pieces(data))


async def test_round_trip_ranges_and_hash(files: Files) -> None:
    alice = user(TENANT_A)
    data = os.urandom(5000)
    info = await put(files, alice, data, sha256=hashlib.sha256(data).hexdigest())
    assert info.size == 5000 and info.sha256 == hashlib.sha256(data).hexdigest()
    _, stream = await files.download(alice, info.id)
    assert await collect(stream) == data
    for offset, length in [(0, 1), (1023, 2), (1024, 1024), (4999, 0), (5000, 0), (100, 10**6)]:
        _, stream = await files.download(alice, info.id, offset, length)
        expected = data[offset : offset + length] if length else data[offset:]
        assert await collect(stream) == expected, (offset, length)
    with pytest.raises(OutOfRange):
        await files.download(alice, info.id, 5001)


async def test_empty_file(files: Files) -> None:
    alice = user(TENANT_A)
    info = await put(files, alice, b"")
    _, stream = await files.download(alice, info.id)
    assert await collect(stream) == b""


async def test_no_plaintext_on_disk(files: Files, blobs: LocalBlobStore) -> None:
    marker = b"PLAINTEXT-MARKER-" + uuid.uuid4().hex.encode()
    await put(files, user(TENANT_A), marker * 200)
    stored = b"".join(p.read_bytes() for p in blobs.root.rglob("*") if p.is_file())
    assert stored and marker not in stored


async def test_tampered_blob_is_data_loss(files: Files, blobs: LocalBlobStore) -> None:
    alice = user(TENANT_A)
    info = await put(files, alice, os.urandom(3000))
    path = blobs.path(info.id)
    blob = bytearray(path.read_bytes())
    blob[1500] ^= 0x40
    path.write_bytes(bytes(blob))
    _, stream = await files.download(alice, info.id, 0, 1024)
    assert len(await collect(stream)) == 1024  # the first chunk is intact
    _, stream = await files.download(alice, info.id)
    with pytest.raises(DataLoss):
        await collect(stream)


async def test_truncated_blob_is_data_loss(files: Files, blobs: LocalBlobStore) -> None:
    alice = user(TENANT_A)
    info = await put(files, alice, os.urandom(3000))
    path = blobs.path(info.id)
    path.write_bytes(path.read_bytes()[: 2 * (1024 + 16)])  # drop the final chunk
    _, stream = await files.download(alice, info.id)
    with pytest.raises(DataLoss):
        await collect(stream)


@pytest.mark.parametrize(
    "content_type",
    ["text/html\r\nSet-Cookie: session=x", "text/html\nX-A: b", "text", "text/csv; a", "téxt/csv"],
)
async def test_a_content_type_that_is_no_media_type_is_refused(
    files: Files, blobs: LocalBlobStore, content_type: str
) -> None:
    # Download serves the stored type as the response's Content-Type header.
    with pytest.raises(InvalidArgument) as err:
        await put(files, user(TENANT_A), b"<p>hi</p>", content_type=content_type)
    assert err.value.violations[0][0] == "content_type"
    assert not any(p.is_file() for p in blobs.root.rglob("*"))


async def test_a_stored_type_that_is_no_media_type_is_served_as_opaque_bytes(
    files: Files, database: Database
) -> None:
    alice = user(TENANT_A)
    info = await put(files, alice, b"x", content_type="text/csv; charset=utf-8")
    assert (await files.download(alice, info.id))[0].content_type == "text/csv; charset=utf-8"
    async with database.transaction() as session:  # a row written before types were checked
        await session.execute(
            update(files_table)
            .where(files_table.c.id == info.id)
            .values(content_type="text/html\r\nSet-Cookie: a=b")
        )
    served, stream = await files.download(alice, info.id)
    assert served.content_type == "application/octet-stream" and await collect(stream) == b"x"


async def test_declared_size_and_hash_are_checked(files: Files, blobs: LocalBlobStore) -> None:
    alice = user(TENANT_A)
    with pytest.raises(InvalidArgument) as err:
        await files.upload(alice, NewFile("a", "text/plain", 10), pieces(b"x" * 11))
    assert err.value.violations[0][0] == "size_bytes"
    with pytest.raises(InvalidArgument) as err:
        await files.upload(alice, NewFile("a", "text/plain", 10), pieces(b"x" * 9))
    assert err.value.violations[0][0] == "size_bytes"
    with pytest.raises(InvalidArgument) as err:
        await put(files, alice, b"abc", sha256="0" * 64)
    assert err.value.violations[0][0] == "sha256"
    # Refused before the commit: not even a fan-out directory of objects/ was created.
    assert not any((blobs.root / "objects").iterdir())
    assert not any(p.is_file() for p in blobs.root.rglob("*"))
    assert (await files.usage(alice.tenant_id)).bytes_used == 0


async def test_quota_declared_and_streamed(files: Files, quota: FixedQuota, blobs) -> None:
    alice = user(TENANT_A)
    quota.limits[TENANT_A] = 4000
    await put(files, alice, b"x" * 3000)
    with pytest.raises(ResourceExhausted):
        await put(files, alice, b"x" * 1001)  # declared size refused up front
    with pytest.raises(ResourceExhausted):  # undeclared size refused while streaming
        await files.upload(alice, NewFile("u", "text/plain"), pieces(b"x" * 1500))
    usage = await files.usage(alice.tenant_id)
    assert (usage.bytes_used, usage.file_count, usage.limit_bytes) == (3000, 1, 4000)
    assert len([p for p in blobs.root.rglob("*") if p.is_file()]) == 1
    await put(files, alice, b"x" * 1000)  # exactly at the limit


async def test_concurrent_uploads_keep_usage_exact(files: Files, quota: FixedQuota) -> None:
    alice = user(TENANT_A)
    quota.limits[TENANT_A] = 10 * 1000
    results = await asyncio.gather(
        *(put(files, alice, os.urandom(1000)) for _ in range(14)), return_exceptions=True
    )
    stored = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, ResourceExhausted)]
    assert len(stored) + len(refused) == 14 and 1 <= len(stored) <= 10
    usage = await files.usage(alice.tenant_id)
    assert (usage.bytes_used, usage.file_count) == (1000 * len(stored), len(stored))
    for info in stored:
        await files.delete(alice, info.id)
    usage = await files.usage(alice.tenant_id)
    assert (usage.bytes_used, usage.file_count) == (0, 0)


async def test_interrupted_upload_leaves_no_trace(files: Files, blobs: LocalBlobStore) -> None:
    alice = user(TENANT_A)

    async def broken() -> AsyncIterator[bytes]:
        yield b"y" * 5000
        raise ConnectionResetError("client went away")

    with pytest.raises(ConnectionResetError):
        await files.upload(alice, NewFile("b", "text/plain", 10000), broken())
    assert not any(p.is_file() for p in blobs.root.rglob("*"))
    assert (await files.list(alice, Query())).items == []
    assert (await files.usage(alice.tenant_id)).bytes_used == 0


async def test_tenant_isolation_and_sharing(files: Files, quota: FixedQuota) -> None:
    alice, bob, admin = user(TENANT_A), user(TENANT_A, "viewer"), user(TENANT_A, "admin")
    mallory = user(TENANT_B, "admin")
    quota.users.update({bob.user_id: TENANT_A, mallory.user_id: TENANT_B})
    info = await put(files, alice, b"secret")
    for call in (files.get, files.download, files.delete):
        with pytest.raises(NotFound):
            await call(mallory, info.id)
    with pytest.raises(NotFound):
        await files.get(bob, info.id)  # same tenant, not shared
    assert (await files.get(admin, info.id)).id == info.id
    shared = await files.share(alice, info.id, bob.user_id, as_caller(alice))
    assert shared.shared_with == (bob.user_id,)
    _, stream = await files.download(bob, info.id)
    assert await collect(stream) == b"secret"
    assert [f.id for f in (await files.list(bob, Query())).items] == [info.id]
    with pytest.raises(PermissionDenied):
        await files.delete(bob, info.id)
    with pytest.raises(PermissionDenied):
        await files.share(bob, info.id, str(uuid.uuid4()), as_caller(bob))
    await files.unshare(alice, info.id, bob.user_id)
    with pytest.raises(NotFound):
        await files.get(bob, info.id)
    assert (await files.list(mallory, Query())).items == []
    await files.delete(admin, info.id)
    with pytest.raises(NotFound):
        await files.get(alice, info.id)


async def test_sharing_with_a_user_outside_the_tenant_is_not_found_like_no_user(
    files: Files, quota: FixedQuota
) -> None:
    alice, mallory = user(TENANT_A), user(TENANT_B)
    quota.users[mallory.user_id] = TENANT_B
    info = await put(files, alice, b"secret")
    nobody = str(uuid.uuid4())
    messages = []
    for stranger in (mallory.user_id, nobody):
        with pytest.raises(NotFound) as refused:
            await files.share(alice, info.id, stranger, as_caller(alice))
        messages.append(str(refused.value).replace(stranger, "ID"))
    assert messages[0] == messages[1]  # the same answer: no hint which one exists
    assert (await files.get(alice, info.id)).shared_with == ()


async def test_list_filters_orders_and_pages(files: Files) -> None:
    alice = user(TENANT_A)
    for i in range(5):
        await put(files, alice, b"z" * (i + 1), name=f"report-{i}.csv", content_type="text/csv")
    await put(files, alice, b"{}", name="other.json", content_type="application/json")
    reports = 'file_name = "report-*"'
    page = await files.list(alice, Query(page_size=2, filter=reports, order_by="size_bytes"))
    assert [f.size for f in page.items] == [1, 2]
    page = await files.list(
        alice,
        Query(
            page_size=2,
            page_token=page.next_page_token,
            filter='file_name = "report-*"',
            order_by="size_bytes",
        ),
    )
    assert [f.size for f in page.items] == [3, 4]
    page = await files.list(alice, Query(filter='content_type = "application/json"'))
    assert [f.name for f in page.items] == ["other.json"] and page.next_page_token == ""
    page = await files.list(alice, Query(filter='file_name != "*.csv"'))
    assert [f.name for f in page.items] == ["other.json"]
    page = await files.list(alice, Query(filter='create_time < "2000-01-01T00:00:00Z"'))
    assert page.items == []
    page = await files.list(alice, Query(filter="size_bytes >= 4", order_by="size_bytes desc"))
    assert [f.size for f in page.items] == [5, 4]
    for bad, field in [
        ("colour = red", "filter"),
        ('create_time > "yesterday"', "filter"),
        ("size_bytes = big", "filter"),
    ]:
        with pytest.raises(InvalidArgument) as err:
            await files.list(alice, Query(filter=bad))
        assert err.value.violations[0][0] == field
    with pytest.raises(InvalidArgument) as err:
        await files.list(alice, Query(order_by="owner"))
    assert err.value.violations[0][0] == "order_by"
    with pytest.raises(InvalidArgument) as err:
        await files.list(alice, Query(page_token="garbage"))
    assert err.value.violations[0][0] == "page_token"


async def test_rotation_rewraps_without_touching_blobs(
    database, blobs: LocalBlobStore, keys: MasterKeys, quota: FixedQuota
) -> None:
    alice = user(TENANT_A)
    old = Files(FileStore(database), blobs, keys, quota, 1 << 20, chunk_size=1024)
    data = os.urandom(4000)
    info = await put(old, alice, data)
    blob_before = blobs.path(info.id).read_bytes()
    rotated_keys = MasterKeys("k2", {**keys.keys, "k2": b"\x02" * 32})
    assert await rotate_master_keys(FileStore(database), rotated_keys) == 1
    assert await rotate_master_keys(FileStore(database), rotated_keys) == 0
    assert blobs.path(info.id).read_bytes() == blob_before
    only_new = Files(
        FileStore(database), blobs, MasterKeys("k2", {"k2": b"\x02" * 32}), quota, 1 << 20
    )
    _, stream = await only_new.download(alice, info.id)
    assert await collect(stream) == data


async def test_request_id_makes_upload_idempotent(files: Files, blobs: LocalBlobStore) -> None:
    alice = user(TENANT_A)
    request_id = str(uuid.uuid4())
    first = await put(files, alice, b"once", request_id=request_id)
    again = await put(files, alice, b"once", request_id=request_id)
    assert again.id == first.id
    for different in ({"data": b"twice"}, {"name": "other.bin"}, {"content_type": "text/plain"}):
        kw = {"data": b"once", "request_id": request_id, **different}
        with pytest.raises(InvalidArgument) as refused:
            await put(files, alice, kw.pop("data"), **kw)
        assert refused.value.violations[0][0] == "request_id"
    race_id = str(uuid.uuid4())
    racing = await asyncio.gather(*(put(files, alice, b"race", request_id=race_id) for _ in "abc"))
    assert len({info.id for info in racing}) == 1
    usage = await files.usage(alice.tenant_id)
    assert (usage.bytes_used, usage.file_count) == (4 + 4, 2)
    assert len([p for p in blobs.root.rglob("*") if p.is_file()]) == 2


async def test_another_users_request_id_is_a_different_request(files: Files) -> None:
    """A colleague reusing alice's request_id got NOT_FOUND naming alice's unshared file
    (or, as an admin, alice's file as their own upload's result): it is another request."""
    alice, bob = user(TENANT_A), user(TENANT_A)
    admin = user(TENANT_A, role="admin")
    request_id = str(uuid.uuid4())
    first = await put(files, alice, b"same", request_id=request_id)
    for other in (bob, admin):
        with pytest.raises(InvalidArgument) as refused:
            await put(files, other, b"same", request_id=request_id)
        assert refused.value.violations == [("request_id", "already used for a different request")]
    assert (await put(files, alice, b"same", request_id=request_id)).id == first.id


async def test_orphan_sweep_keeps_referenced_blobs(files: Files, blobs: LocalBlobStore) -> None:
    alice = user(TENANT_A)
    kept = await put(files, alice, b"referenced")
    orphan = str(uuid.uuid4())
    await blobs.put(orphan, pieces(b"ciphertext of a crashed upload"))
    fresh = str(uuid.uuid4())
    await blobs.put(fresh, pieces(b"an upload committing right now"))
    for key in (kept.id, orphan):
        os.utime(blobs.path(key), (1, 1))  # long ago
    assert sorted(blobs.keys_older_than(600)) == sorted([kept.id, orphan])
    assert await files.sweep_orphans(blobs.keys_older_than(600)) == 1
    assert not blobs.path(orphan).exists()
    assert blobs.path(fresh).exists()
    _, stream = await files.download(alice, kept.id)
    assert await collect(stream) == b"referenced"
