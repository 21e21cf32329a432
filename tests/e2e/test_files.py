"""The files service through Envoy (native gRPC) and, where the point is the service itself,
directly: round trips, encryption at rest, tampering, quotas, tenancy, sharing, interruptions.

Starts the whole mesh (every implemented service and Envoy as processes) on SQLite and on
PostgreSQL; the files service keeps its blobs under the mesh's ``$ALEA_HOME/blobs``.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from alea.access.v1 import access_pb2
from alea.files.v1 import files_pb2, files_pb2_grpc
from alea.identity.v1 import identity_pb2, identity_pb2_grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from tests.e2e.conftest import PASSWORD, Account, register
from tests.support.mesh import Mesh

pytestmark = pytest.mark.integration

MIB = 1024 * 1024
Metadata = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class FileUsers:
    """A fresh tenant: its admin, an analyst who uploads, a viewer; and another tenant."""

    admin: Account
    analyst: Account
    viewer: Account
    stranger: Account


def _add_user(identity, admin: Account, role: int, label: str) -> Account:
    email = f"{label}-{uuid.uuid4().hex[:8]}@example.com"
    user = identity.CreateUser(
        identity_pb2.CreateUserRequest(
            email=email,
            password=PASSWORD,
            display_name=label,
            role=role,
            request_id=str(uuid.uuid4()),
        ),
        metadata=admin.metadata,
        timeout=30,
    )
    login = identity.Login(identity_pb2.LoginRequest(email=email, password=PASSWORD), timeout=30)
    return Account(admin.tenant_id, user.id, email, login.tokens.access_token)


@pytest.fixture(scope="module")
def users(identity: identity_pb2_grpc.IdentityServiceStub) -> FileUsers:
    admin = register(identity, "files")
    return FileUsers(
        admin,
        _add_user(identity, admin, access_pb2.ROLE_ANALYST, "analyst"),
        _add_user(identity, admin, access_pb2.ROLE_VIEWER, "viewer"),
        register(identity, "stranger"),
    )


@pytest.fixture(scope="module")
def files(edge: grpc.Channel) -> files_pb2_grpc.FilesServiceStub:
    """The files service through the edge."""
    return files_pb2_grpc.FilesServiceStub(edge)


@pytest.fixture(scope="module")
def direct(mesh: Mesh) -> Iterator[files_pb2_grpc.FilesServiceStub]:
    """The files service without Envoy (the edge's certificate, straight to its port)."""
    with mesh.direct_channel("files") as channel:
        yield files_pb2_grpc.FilesServiceStub(channel)


def blob_root(mesh: Mesh) -> Path:
    return mesh.layout.home / "blobs"


def messages(data: bytes, name: str = "data.bin", declared: int | None = None, **meta):
    size = len(data) if declared is None else declared
    yield files_pb2.UploadRequest(
        metadata=files_pb2.FileMetadata(file_name=name, size_bytes=size, **meta)
    )
    for start in range(0, len(data), MIB):
        yield files_pb2.UploadRequest(chunk=data[start : start + MIB])


def upload(stub, account: Account, data: bytes, **kw) -> files_pb2.File:
    return stub.Upload(messages(data, **kw), metadata=account.metadata, timeout=120)


def download(stub, account: Account, file_id: str, offset: int = 0, length: int = 0) -> bytes:
    request = files_pb2.DownloadRequest(file_id=file_id, offset=offset, length=length)
    return b"".join(m.data for m in stub.Download(request, metadata=account.metadata, timeout=120))


def usage(stub, account: Account) -> files_pb2.StorageUsage:
    return stub.GetStorageUsage(
        files_pb2.GetStorageUsageRequest(), metadata=account.metadata, timeout=30
    )


def code_of(call, *args, metadata: Metadata) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as err:
        result = call(*args, metadata=metadata, timeout=60)
        if not isinstance(result, files_pb2.File | files_pb2.StorageUsage):
            list(result)  # drain a stream
    return err.value.code()


def disk_bytes(root: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file())


def test_100_mb_round_trip_through_the_edge(files, users: FileUsers) -> None:
    data = os.urandom(100 * MIB)
    digest = hashlib.sha256(data).hexdigest()
    stored = upload(files, users.analyst, data, name="big.bin", sha256=digest)
    try:
        assert (stored.size_bytes, stored.sha256) == (len(data), digest)
        back = download(files, users.analyst, stored.id)
        assert hashlib.sha256(back).hexdigest() == digest
        middle = download(files, users.analyst, stored.id, offset=50 * MIB - 7, length=3 * MIB)
        assert middle == data[50 * MIB - 7 : 53 * MIB - 7]
    finally:
        files.DeleteFile(
            files_pb2.DeleteFileRequest(file_id=stored.id),
            metadata=users.analyst.metadata,
            timeout=30,
        )


def test_no_plaintext_on_disk(mesh: Mesh, files, users: FileUsers) -> None:
    marker = f"ALEA-PLAINTEXT-MARKER-{uuid.uuid4().hex}".encode()
    stored = upload(files, users.analyst, marker * 5000, name="marker.txt")
    assert download(files, users.analyst, stored.id) == marker * 5000
    assert blob_root(mesh).is_dir()
    # Every file the mesh wrote: blobs, temp area, SQLite databases, logs, keys.
    assert marker not in disk_bytes(mesh.layout.home)


def test_tampered_ciphertext_is_data_loss(mesh: Mesh, files, direct, users: FileUsers) -> None:
    data = os.urandom(700_000)
    stored = upload(files, users.analyst, data)
    [blob] = [p for p in blob_root(mesh).rglob(stored.id) if p.is_file()]
    sealed = bytearray(blob.read_bytes())
    sealed[400_000] ^= 0x01
    blob.write_bytes(bytes(sealed))
    request = files_pb2.DownloadRequest(file_id=stored.id)
    for stub in (files, direct):
        assert code_of(stub.Download, request, metadata=users.analyst.metadata) == (
            grpc.StatusCode.DATA_LOSS
        )
    # Chunks before the damaged one are intact and still readable.
    assert download(files, users.analyst, stored.id, 0, 200_000) == data[:200_000]


def test_quota_exceeded_before_storing(files, users: FileUsers) -> None:
    before = usage(files, users.analyst)
    too_big = before.quota_bytes - before.used_bytes + 1
    with pytest.raises(grpc.RpcError) as err:
        upload(files, users.analyst, b"x" * 10, declared=too_big)
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    status = rpc_status.from_call(err.value)
    failure = error_details_pb2.QuotaFailure()
    assert status is not None and status.details[0].Unpack(failure)
    assert failure.violations[0].quota_id == "storage_bytes"
    after = usage(files, users.analyst)
    assert (after.used_bytes, after.file_count) == (before.used_bytes, before.file_count)


def test_other_tenant_gets_not_found(files, direct, users: FileUsers) -> None:
    stored = upload(files, users.analyst, b"tenant secret")
    stranger = users.stranger.metadata
    for stub in (files, direct):
        for call, request in [
            (stub.GetFile, files_pb2.GetFileRequest(file_id=stored.id)),
            (stub.Download, files_pb2.DownloadRequest(file_id=stored.id)),
            (stub.DeleteFile, files_pb2.DeleteFileRequest(file_id=stored.id)),
            (
                stub.ShareFile,
                files_pb2.ShareFileRequest(file_id=stored.id, user_id=users.stranger.user_id),
            ),
        ]:
            assert code_of(call, request, metadata=stranger) == grpc.StatusCode.NOT_FOUND
    listed = files.ListFiles(files_pb2.ListFilesRequest(), metadata=stranger, timeout=30)
    assert stored.id not in {f.id for f in listed.files}
    other = files_pb2.GetStorageUsageRequest(tenant_id=users.analyst.tenant_id)
    assert code_of(files.GetStorageUsage, other, metadata=stranger) == grpc.StatusCode.NOT_FOUND
    assert download(files, users.analyst, stored.id) == b"tenant secret"


def test_sharing_is_read_only_and_revocable(files, users: FileUsers) -> None:
    stored = upload(files, users.analyst, b"shared report")
    viewer, analyst = users.viewer.metadata, users.analyst.metadata
    get = files_pb2.GetFileRequest(file_id=stored.id)
    assert code_of(files.GetFile, get, metadata=viewer) == grpc.StatusCode.NOT_FOUND
    share = files_pb2.ShareFileRequest(file_id=stored.id, user_id=users.viewer.user_id)
    shared = files.ShareFile(share, metadata=analyst, timeout=30)
    assert list(shared.shared_with) == [users.viewer.user_id]
    assert download(files, users.viewer, stored.id) == b"shared report"
    # A viewer may not delete, and a viewer is below the analyst role DeleteFile requires.
    delete = files_pb2.DeleteFileRequest(file_id=stored.id)
    assert code_of(files.DeleteFile, delete, metadata=viewer) == grpc.StatusCode.PERMISSION_DENIED
    unshare = files_pb2.UnshareFileRequest(file_id=stored.id, user_id=users.viewer.user_id)
    assert list(files.UnshareFile(unshare, metadata=analyst, timeout=30).shared_with) == []
    assert code_of(files.GetFile, get, metadata=viewer) == grpc.StatusCode.NOT_FOUND
    # The tenant admin sees every file of the tenant.
    assert files.GetFile(get, metadata=users.admin.metadata, timeout=30).id == stored.id


def test_sharing_with_another_tenants_user_or_nobody_is_not_found_alike(
    files, direct, users: FileUsers
) -> None:
    stored = upload(files, users.analyst, b"not for strangers")
    details = set()
    for stub in (files, direct):
        for user_id in (users.stranger.user_id, str(uuid.uuid4())):
            share = files_pb2.ShareFileRequest(file_id=stored.id, user_id=user_id)
            with pytest.raises(grpc.RpcError) as refused:
                stub.ShareFile(share, metadata=users.analyst.metadata, timeout=30)
            assert refused.value.code() == grpc.StatusCode.NOT_FOUND, user_id
            details.add((refused.value.details() or "").replace(user_id, "ID"))
    assert details == {"user ID not found"}  # one answer: nothing tells which one exists
    get = files_pb2.GetFileRequest(file_id=stored.id)
    assert list(files.GetFile(get, metadata=users.analyst.metadata, timeout=30).shared_with) == []
    assert code_of(files.GetFile, get, metadata=users.stranger.metadata) == (
        grpc.StatusCode.NOT_FOUND
    )


def test_interrupted_upload_leaves_no_trace(mesh: Mesh, files, users: FileUsers) -> None:
    before = usage(files, users.analyst)
    objects_before = sorted(p.name for p in (blob_root(mesh) / "objects").rglob("*"))
    sent_half, release = threading.Event(), threading.Event()

    def half_then_hang():
        yield from messages(b"y" * (2 * MIB), declared=8 * MIB)
        sent_half.set()
        release.wait(60)  # the client "hangs" until the call is cancelled

    call = files.Upload.future(half_then_hang(), metadata=users.analyst.metadata, timeout=120)
    assert sent_half.wait(30)
    temp = blob_root(mesh) / "tmp"
    deadline = time.monotonic() + 30
    while not any(temp.iterdir()) and time.monotonic() < deadline:
        time.sleep(0.05)  # wait for the server to start writing the partial blob
    assert any(temp.iterdir()), "the partial upload never reached the temp area"
    call.cancel()
    release.set()
    deadline = time.monotonic() + 30
    while any(temp.iterdir()) and time.monotonic() < deadline:
        time.sleep(0.05)  # the server learns of the cancellation asynchronously
    assert not any(temp.iterdir())
    assert sorted(p.name for p in (blob_root(mesh) / "objects").rglob("*")) == objects_before
    after = usage(files, users.analyst)
    assert (after.used_bytes, after.file_count) == (before.used_bytes, before.file_count)


def test_concurrent_uploads_keep_usage_exact(files, users: FileUsers) -> None:
    before = usage(files, users.analyst)
    sizes = [100_000 + 4099 * i for i in range(8)]
    with ThreadPoolExecutor(len(sizes)) as pool:
        stored = list(pool.map(lambda n: upload(files, users.analyst, os.urandom(n)), sizes))
    after = usage(files, users.analyst)
    assert after.used_bytes - before.used_bytes == sum(sizes)
    assert after.file_count - before.file_count == len(sizes)
    with ThreadPoolExecutor(len(sizes)) as pool:
        list(
            pool.map(
                lambda f: files.DeleteFile(
                    files_pb2.DeleteFileRequest(file_id=f.id),
                    metadata=users.analyst.metadata,
                    timeout=30,
                ),
                stored,
            )
        )
    final = usage(files, users.analyst)
    assert (final.used_bytes, final.file_count) == (before.used_bytes, before.file_count)


def test_bad_uploads_name_the_field(files, users: FileUsers) -> None:
    analyst = users.analyst.metadata
    cases = [
        ([files_pb2.UploadRequest(chunk=b"no metadata first")], "metadata"),
        (list(messages(b"abc", declared=4)), "metadata.size_bytes"),
        (list(messages(b"abc", sha256="0" * 64)), "metadata.sha256"),
        (list(messages(b"not a zip", name="model.xlsx")), "metadata.content_type"),
        (list(messages(b"abc", name="a/b.txt")), "metadata.file_name"),
        ([*messages(b""), files_pb2.UploadRequest(chunk=b"z" * (MIB + 1))], "chunk"),
    ]
    for requests, field in cases:
        with pytest.raises(grpc.RpcError) as err:
            files.Upload(iter(requests), metadata=analyst, timeout=30)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, field
        status = rpc_status.from_call(err.value)
        bad = error_details_pb2.BadRequest()
        assert status is not None and status.details[0].Unpack(bad)
        assert bad.field_violations[0].field == field
    viewer_upload = list(messages(b"abc"))
    with pytest.raises(grpc.RpcError) as err:
        files.Upload(iter(viewer_upload), metadata=users.viewer.metadata, timeout=30)
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED


def test_range_beyond_the_end_is_out_of_range(files, users: FileUsers) -> None:
    stored = upload(files, users.analyst, b"0123456789")
    assert download(files, users.analyst, stored.id, 3, 4) == b"3456"
    assert download(files, users.analyst, stored.id, 10) == b""
    beyond = files_pb2.DownloadRequest(file_id=stored.id, offset=11)
    assert code_of(files.Download, beyond, metadata=users.analyst.metadata) == (
        grpc.StatusCode.OUT_OF_RANGE
    )


def test_idempotent_upload_by_request_id(files, users: FileUsers) -> None:
    request_id = str(uuid.uuid4())
    first = upload(files, users.analyst, b"once", request_id=request_id)
    again = upload(files, users.analyst, b"once", request_id=request_id)
    assert again.id == first.id


def test_service_peer_downloads_only_with_forwarded_user_credentials(
    mesh: Mesh, files, users: FileUsers
) -> None:
    """The simulation service reads a user's workbook with that user's credentials."""
    stored = upload(files, users.analyst, b"model bytes")
    request = files_pb2.DownloadRequest(file_id=stored.id)
    with mesh.direct_channel("files", identity="simulation") as channel:
        as_simulation = files_pb2_grpc.FilesServiceStub(channel)
        try:
            forwarded = b"".join(
                m.data for m in as_simulation.Download(request, metadata=users.analyst.metadata)
            )
        except grpc.RpcError as exc:
            raise AssertionError(f"forwarded credentials refused: {exc.details()}") from None
        assert forwarded == b"model bytes"
        with pytest.raises(grpc.RpcError) as err:
            list(as_simulation.Download(request, timeout=30))
        assert err.value.code() in (
            grpc.StatusCode.UNAUTHENTICATED,
            grpc.StatusCode.PERMISSION_DENIED,
        )
        stranger = users.stranger.metadata
        assert code_of(as_simulation.Download, request, metadata=stranger) == (
            grpc.StatusCode.NOT_FOUND
        )


def test_admin_service_reads_any_tenants_usage(mesh: Mesh, files, users: FileUsers) -> None:
    """GetStorageUsage names admin and analytics as peers: no user, any tenant by id."""
    expected = usage(files, users.analyst)
    with mesh.direct_channel("files", identity="admin") as channel:
        as_admin = files_pb2_grpc.FilesServiceStub(channel)
        request = files_pb2.GetStorageUsageRequest(tenant_id=users.analyst.tenant_id)
        seen = as_admin.GetStorageUsage(request, timeout=30)
        assert (seen.used_bytes, seen.file_count) == (expected.used_bytes, expected.file_count)
        with pytest.raises(grpc.RpcError) as err:
            as_admin.GetStorageUsage(files_pb2.GetStorageUsageRequest(), timeout=30)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
