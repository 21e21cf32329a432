"""Streaming handlers get the same guard: a files-shaped server authenticating remotely
against the in-process identity (JWKS over mTLS), with client- and server-streaming RPCs."""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import AsyncIterator

import grpc
import pytest
from alea.access.v1 import access_pb2
from alea.files.v1 import files_pb2, files_pb2_grpc
from alea.identity.v1 import identity_pb2
from google.api import httpbody_pb2
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from services.runtime.auth import API_KEY_CACHE_SECONDS, USER_CHECK_SECONDS
from services.runtime.clients import secure_channel
from services.runtime.context import current_principal
from services.runtime.errors import NotFound
from services.runtime.server import Mount
from tests.unit.runtime.harness import Subject, running, settings_for
from tests.unit.runtime.test_interceptor import bearer, register, stub, violations


class FilesProbe(files_pb2_grpc.FilesServiceServicer):
    """Echoes who called and how much arrived; fails on demand."""

    async def Upload(self, request_iterator, context) -> files_pb2.File:
        size = 0
        async for message in request_iterator:
            size += len(message.chunk)
        return files_pb2.File(size_bytes=size, tenant_id=current_principal().tenant_id)

    async def GetFile(self, request, context) -> files_pb2.File:
        return files_pb2.File(id=request.file_id)

    async def Download(self, request, context) -> AsyncIterator[httpbody_pb2.HttpBody]:
        yield httpbody_pb2.HttpBody(data=b"first")
        while request.offset == 2:  # until the client goes away: its window fills up first
            yield httpbody_pb2.HttpBody(data=bytes(1 << 20))
        if request.offset == 3:  # open, quiet, until the client goes away
            await asyncio.Event().wait()
        while request.offset == 4:  # a message every 0.2 s, until the client goes away
            await asyncio.sleep(0.2)
            yield httpbody_pb2.HttpBody(data=b"tick")
        if request.offset == 1:
            raise NotFound("file", request.file_id)
        raise RuntimeError("secret path /var/lib/keys")


@pytest.fixture(scope="module")
async def files(subject: Subject):
    settings = settings_for(
        "files", subject.home, ALEA_IDENTITY_ADDRESS=f"localhost:{subject.port}"
    )
    descriptor = files_pb2.DESCRIPTOR.services_by_name["FilesService"]
    mount = Mount(descriptor, FilesProbe(), files_pb2_grpc.add_FilesServiceServicer_to_server)
    async with running("files", [mount], settings, None) as (_, port):
        yield f"localhost:{port}"


@pytest.fixture(scope="module")
async def bounded(subject: Subject):
    """The same server holding at most 2 response streams, 1 per tenant."""
    settings = settings_for(
        "files",
        subject.home,
        ALEA_IDENTITY_ADDRESS=f"localhost:{subject.port}",
        ALEA_MAX_STREAMS="2",
        ALEA_MAX_STREAMS_PER_TENANT="1",
    )
    descriptor = files_pb2.DESCRIPTOR.services_by_name["FilesService"]
    mount = Mount(descriptor, FilesProbe(), files_pb2_grpc.add_FilesServiceServicer_to_server)
    async with running("files", [mount], settings, None) as (_, port):
        yield f"localhost:{port}"


_channels: dict[tuple[str, str], grpc.aio.Channel] = {}


def _stub(subject: Subject, address: str, identity: str = "edge"):
    # The channel is kept: a stub alone does not keep an intercepted channel from being
    # collected (and closed) mid-call.
    if (address, identity) not in _channels:
        _channels[address, identity] = secure_channel(address, subject.home / "pki", identity)
    return files_pb2_grpc.FilesServiceStub(_channels[address, identity])


@pytest.fixture(scope="module")
async def analyst(subject: Subject):
    admin = await register(subject)  # admins outrank the analyst rule of Upload
    return admin, (("authorization", f"Bearer {admin.tokens.access_token}"),)


def _upload(*messages: files_pb2.UploadRequest):
    async def stream():
        for message in messages:
            yield message

    return stream()


async def test_client_stream_is_authenticated_remotely(subject: Subject, files, analyst) -> None:
    admin, metadata = analyst
    metadata_message = files_pb2.UploadRequest(metadata=files_pb2.FileMetadata(file_name="a.csv"))
    chunks = [files_pb2.UploadRequest(chunk=b"x" * 10) for _ in range(3)]
    result = await _stub(subject, files).Upload(
        _upload(metadata_message, *chunks), metadata=metadata
    )
    assert (result.size_bytes, result.tenant_id) == (30, admin.tenant.id)


async def test_client_stream_without_credentials_is_refused(subject: Subject, files) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await _stub(subject, files).Upload(_upload(files_pb2.UploadRequest(chunk=b"x")))
    assert raised.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_every_streamed_message_is_validated(subject: Subject, files, analyst) -> None:
    _, metadata = analyst
    good = files_pb2.UploadRequest(chunk=b"x")
    too_big = files_pb2.UploadRequest(chunk=b"x" * (1024 * 1024 + 1))
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await _stub(subject, files).Upload(_upload(good, good, too_big), metadata=metadata)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [f for f, _ in violations(raised.value)] == ["chunk"]


async def test_server_stream_maps_domain_errors_after_messages(
    subject: Subject, files, analyst
) -> None:
    _, metadata = analyst
    call = _stub(subject, files).Download(
        files_pb2.DownloadRequest(file_id=_ID, offset=1), metadata=metadata
    )
    received = []
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        async for body in call:
            received.append(body.data)
    assert received == [b"first"]
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND


async def test_server_stream_hides_unexpected_errors(subject: Subject, files, analyst) -> None:
    _, metadata = analyst
    call = _stub(subject, files).Download(files_pb2.DownloadRequest(file_id=_ID), metadata=metadata)
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        async for _ in call:
            pass
    assert raised.value.code() == grpc.StatusCode.INTERNAL
    assert "secret" not in raised.value.details()
    assert rpc_status.from_call(raised.value) is not None


_ID = "0b7e4c8e-4a57-4f0e-9a51-8d7e3c1c2b10"


async def test_a_stream_the_client_abandons_ends_without_an_error(
    subject: Subject, files, analyst, caplog: pytest.LogCaptureFixture
) -> None:
    # The server's generator is left suspended at a yield (its last message not written);
    # asyncio closes it later in a task of its own, where the guard's end of call ran in a
    # context it had not set up (and failed, logged as "Task exception was never retrieved").
    _, metadata = analyst
    caplog.set_level(logging.INFO, logger="alea.rpc")
    call = _stub(subject, files).Download(
        files_pb2.DownloadRequest(file_id=_ID, offset=2), metadata=metadata
    )
    async for body in call:
        assert body.data == b"first"
        break
    await asyncio.sleep(0.5)  # the server blocks writing: suspended at its generator's yield
    call.cancel()

    def finished() -> list[logging.LogRecord]:
        return [r for r in caplog.records if getattr(r, "method", "").endswith("/Download")]

    for _ in range(100):  # the abandoned generator is closed within a moment (bounded)
        await asyncio.sleep(0.05)
        gc.collect()
        if finished():
            break
    for _ in range(5):  # a task that failed logs so only once it is collected
        await asyncio.sleep(0.05)
        gc.collect()
    # (gRPC's own logger reports the write the cancellation interrupted: not the guard's.)
    errors = [
        r for r in caplog.records if r.levelno >= logging.ERROR and not r.name.startswith("grpc")
    ]
    assert errors == [], [r.getMessage()[:300] for r in errors]
    assert finished()  # the call was accounted for, once closed


async def test_an_open_stream_ends_once_its_api_key_is_revoked(subject: Subject, files) -> None:
    # Admitted when it opened, a stream is checked again as it goes: a revoked key (or a
    # disabled user) must not go on receiving what it may no longer read.
    admin = await register(subject)
    created = await stub(subject).CreateApiKey(
        identity_pb2.CreateApiKeyRequest(display_name="feed", role=access_pb2.ROLE_ANALYST),
        metadata=bearer(admin),
    )
    call = _stub(subject, files).Download(
        files_pb2.DownloadRequest(file_id=_ID, offset=4),
        metadata=(("x-api-key", created.secret),),
    )
    ticks = aiter(call)
    assert (await anext(ticks)).data == b"first"
    await stub(subject).RevokeApiKey(
        identity_pb2.RevokeApiKeyRequest(api_key_id=created.api_key.id), metadata=bearer(admin)
    )
    revoked = time.monotonic()
    with pytest.raises(grpc.aio.AioRpcError) as ended:
        async with asyncio.timeout(10):
            async for _ in ticks:
                pass
    assert ended.value.code() == grpc.StatusCode.UNAUTHENTICATED
    # within a few seconds, not at the deadline: the check after a revocation takes the last
    # answer and asks again in the background, and the next check, a second later, refuses
    assert time.monotonic() - revoked < API_KEY_CACHE_SECONDS + 2 * USER_CHECK_SECONDS + 3


async def test_a_peer_missing_from_the_table_is_refused(subject: Subject, files) -> None:
    stub = _stub(subject, files, "notification")  # PEERS: notification never calls files
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.GetFile(files_pb2.GetFileRequest(file_id=_ID))
    assert raised.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def _open_stream(stub, metadata) -> grpc.aio.UnaryStreamCall:
    call = stub.Download(files_pb2.DownloadRequest(file_id=_ID, offset=3), metadata=metadata)
    assert (await call.read()).data == b"first"  # it stands
    return call


async def _refusal(stub, metadata) -> tuple[str, str]:
    """(the limit, the message) of a Download refused for being one stream too many."""
    call = stub.Download(files_pb2.DownloadRequest(file_id=_ID, offset=3), metadata=metadata)
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await call.read()
    assert raised.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    status = rpc_status.from_call(raised.value)
    assert status is not None
    failure = error_details_pb2.QuotaFailure()
    assert status.details[0].Unpack(failure)
    return failure.violations[0].quota_id, raised.value.details()


async def test_open_streams_are_bounded_per_tenant_and_per_replica(
    subject: Subject, bounded, analyst
) -> None:
    _, alice = analyst
    bob, carol = bearer(await register(subject)), bearer(await register(subject))
    stub = _stub(subject, bounded)
    held = [await _open_stream(stub, alice)]
    limit, message = await _refusal(stub, alice)
    assert limit == "streams_per_tenant" and "1 streams open" in message
    held.append(await _open_stream(stub, bob))  # another tenant has a share of its own
    limit, message = await _refusal(stub, carol)
    assert limit == "streams" and "2 streams open" in message
    # calls other than streams go on
    assert (await stub.GetFile(files_pb2.GetFileRequest(file_id=_ID), metadata=carol)).id == _ID

    held.pop(0).cancel()  # alice leaves: her stream's slot is free again
    for _ in range(100):  # the server learns of the cancellation within a moment (bounded)
        await asyncio.sleep(0.05)
        call = stub.Download(files_pb2.DownloadRequest(file_id=_ID, offset=3), metadata=alice)
        try:
            assert (await call.read()).data == b"first"
        except grpc.aio.AioRpcError as exc:
            assert exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            continue
        held.append(call)
        break
    assert len(held) == 2, "the slot was never freed"
    for call in held:
        call.cancel()
