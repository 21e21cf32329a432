"""Calls to other services over mTLS: identity for quotas, files for workbooks by id."""

from __future__ import annotations

import grpc
from alea.files.v1 import files_pb2, files_pb2_grpc
from alea.identity.v1 import identity_pb2, identity_pb2_grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from services.runtime.errors import (
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    ResourceExhausted,
    Unavailable,
)

_TIMEOUT = 10.0


def _quota_violation(error: grpc.aio.AioRpcError) -> tuple[str, str]:
    """(quota id, description) from identity's QuotaFailure detail, if it sent one."""
    status = rpc_status.from_call(error)  # type: ignore[arg-type]  # aio errors carry the trailers too
    for detail in status.details if status else ():
        failure = error_details_pb2.QuotaFailure()
        if detail.Unpack(failure) and failure.violations:
            return failure.violations[0].quota_id, failure.violations[0].description
    return "trials_per_month", error.details() or "monthly trials quota exhausted"


class IdentityQuotas:
    """The tenant's tier limits, enforced by identity's ReserveTrials (per simulation and
    per month, idempotent by reservation id)."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        self.stub = identity_pb2_grpc.IdentityServiceStub(channel)

    async def reserve(self, tenant_id: str, trials: int, reservation_id: str) -> None:
        request = identity_pb2.ReserveTrialsRequest(
            tenant_id=tenant_id, trials=trials, request_id=reservation_id
        )
        try:
            await self.stub.ReserveTrials(request, timeout=_TIMEOUT)
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED:
                limit, description = _quota_violation(exc)
                raise ResourceExhausted(limit, description, f"tenant:{tenant_id}") from None
            raise Unavailable(f"identity could not reserve trials: {exc.code().name}") from None


async def fetch_file(
    channel: grpc.aio.Channel, file_id: str, credentials: list[tuple[str, str]]
) -> bytes:
    """The bytes of a file, downloaded with the caller's own credentials (their access rights)."""
    stub = files_pb2_grpc.FilesServiceStub(channel)
    chunks = []
    try:
        call = stub.Download(
            files_pb2.DownloadRequest(file_id=file_id), metadata=credentials, timeout=60
        )
        async for chunk in call:
            chunks.append(chunk.data)
    except grpc.aio.AioRpcError as exc:
        code, details = exc.code(), exc.details() or ""
        if code == grpc.StatusCode.NOT_FOUND:
            raise NotFound("file", file_id) from None
        if code == grpc.StatusCode.INVALID_ARGUMENT:
            raise InvalidArgument("file_id", details or "refused by the files service") from None
        if code == grpc.StatusCode.PERMISSION_DENIED:
            raise FailedPrecondition(f"the files service refused the download: {details}") from None
        raise Unavailable(f"files service unavailable: {code.name}") from None
    return b"".join(chunks)
