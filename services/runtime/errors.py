"""Domain errors and their single mapping to the rich gRPC error model.

Hierarchy::

    AleaError
    ├── InvalidArgument(field, reason)     → INVALID_ARGUMENT + BadRequest
    ├── NotFound(kind, name)               → NOT_FOUND + ResourceInfo
    ├── AlreadyExists(kind, name)          → ALREADY_EXISTS + ResourceInfo
    ├── FailedPrecondition(reason)         → FAILED_PRECONDITION + ErrorInfo
    ├── PermissionDenied(reason)           → PERMISSION_DENIED + ErrorInfo
    ├── Unauthenticated(reason)            → UNAUTHENTICATED + ErrorInfo
    ├── ResourceExhausted(limit, ...)      → RESOURCE_EXHAUSTED + QuotaFailure
    ├── Aborted(reason)                    → ABORTED + ErrorInfo
    ├── Unavailable(reason)                → UNAVAILABLE + ErrorInfo
    ├── OutOfRange(reason)                 → OUT_OF_RANGE + ErrorInfo
    └── DataLoss(reason)                   → DATA_LOSS + ErrorInfo

Domain code raises these; :func:`to_status` is the only place they become gRPC
statuses. Anything else becomes INTERNAL with an opaque error id (see :func:`internal_status`).
:func:`from_rpc_error` is the inverse, the one client-side boundary: a peer service's
status becomes the same domain error again (a peer that failed or cannot be reached,
whatever the code, is :class:`Unavailable`).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import TypeVar

import grpc
from google.protobuf import any_pb2
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

__all__ = [
    "DOMAIN",
    "Aborted",
    "AleaError",
    "AlreadyExists",
    "DataLoss",
    "FailedPrecondition",
    "FieldViolation",
    "InvalidArgument",
    "NotFound",
    "OutOfRange",
    "PermissionDenied",
    "ResourceExhausted",
    "Unauthenticated",
    "Unavailable",
    "from_rpc_error",
    "from_status",
    "internal_status",
    "to_status",
]

DOMAIN = "alea.dev"
_CODES = {code.value[0]: code for code in grpc.StatusCode}
_D = TypeVar("_D", bound=Message)

FieldViolation = tuple[str, str]
"""A (field path, description) pair; the field may be ``Sheet!A1`` for workbook cells."""


class AleaError(Exception):
    """Base of every error a handler may raise on purpose."""

    code = grpc.StatusCode.UNKNOWN
    reason = "ERROR"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def details(self) -> list[Message]:
        """Typed ``google.rpc`` detail messages attached to the status."""
        return [error_details_pb2.ErrorInfo(reason=self.reason, domain=DOMAIN)]


class InvalidArgument(AleaError):
    """The request is malformed; names the offending field(s)."""

    code = grpc.StatusCode.INVALID_ARGUMENT

    def __init__(self, field: str, reason: str, *more: FieldViolation) -> None:
        self.violations: list[FieldViolation] = [(field, reason), *more]
        super().__init__("; ".join(f"{f}: {r}" for f, r in self.violations))

    @classmethod
    def of(cls, violations: Sequence[FieldViolation]) -> InvalidArgument:
        """One error carrying several field violations (at least one)."""
        first, *rest = violations
        return cls(first[0], first[1], *rest)

    def details(self) -> list[Message]:
        return [
            error_details_pb2.BadRequest(
                field_violations=[
                    error_details_pb2.BadRequest.FieldViolation(field=f, description=d)
                    for f, d in self.violations
                ]
            )
        ]


class _ResourceError(AleaError):
    def __init__(self, kind: str, name: str, message: str) -> None:
        super().__init__(message)
        self.kind, self.name = kind, name

    def details(self) -> list[Message]:
        return [error_details_pb2.ResourceInfo(resource_type=self.kind, resource_name=self.name)]


class NotFound(_ResourceError):
    """The object does not exist or belongs to another tenant (never say which)."""

    code = grpc.StatusCode.NOT_FOUND

    def __init__(self, kind: str, name: str) -> None:
        super().__init__(kind, name, f"{kind} {name} not found")


class AlreadyExists(_ResourceError):
    """An object with this unique key already exists."""

    code = grpc.StatusCode.ALREADY_EXISTS

    def __init__(self, kind: str, name: str) -> None:
        super().__init__(kind, name, f"{kind} {name} already exists")


class FailedPrecondition(AleaError):
    """The system is not in the state the operation needs."""

    code = grpc.StatusCode.FAILED_PRECONDITION
    reason = "FAILED_PRECONDITION"


class PermissionDenied(AleaError):
    """The caller is known but may not do this."""

    code = grpc.StatusCode.PERMISSION_DENIED
    reason = "PERMISSION_DENIED"


class Unauthenticated(AleaError):
    """The caller's credentials are missing, invalid, expired or revoked."""

    code = grpc.StatusCode.UNAUTHENTICATED
    reason = "UNAUTHENTICATED"


class Aborted(AleaError):
    """A concurrent change conflicted; the client may retry the whole operation."""

    code = grpc.StatusCode.ABORTED
    reason = "ABORTED"


class Unavailable(AleaError):
    """A dependency is temporarily unreachable; retry with backoff."""

    code = grpc.StatusCode.UNAVAILABLE
    reason = "UNAVAILABLE"


class OutOfRange(AleaError):
    """A position (e.g. a byte offset) lies past the end of the object."""

    code = grpc.StatusCode.OUT_OF_RANGE
    reason = "OUT_OF_RANGE"


class DataLoss(AleaError):
    """Stored data is corrupt or fails an integrity check."""

    code = grpc.StatusCode.DATA_LOSS
    reason = "DATA_LOSS"


class ResourceExhausted(AleaError):
    """A quota or limit would be exceeded; names the limit."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED

    def __init__(self, limit: str, message: str, subject: str = "") -> None:
        super().__init__(message)
        self.limit, self.subject = limit, subject

    def details(self) -> list[Message]:
        violation = error_details_pb2.QuotaFailure.Violation(
            subject=self.subject, description=self.message, quota_id=self.limit
        )
        return [error_details_pb2.QuotaFailure(violations=[violation])]


def _status(code: grpc.StatusCode, message: str, details: list[Message]) -> status_pb2.Status:
    packed = []
    for detail in details:
        item = any_pb2.Any()
        item.Pack(detail)
        packed.append(item)
    return status_pb2.Status(code=code.value[0], message=message, details=packed)


def to_status(error: AleaError) -> status_pb2.Status:
    """The ``google.rpc.Status`` for a domain error."""
    return _status(error.code, error.message, error.details())


def internal_status() -> tuple[str, status_pb2.Status]:
    """A fresh error id and an INTERNAL status that reveals nothing but that id."""
    error_id = uuid.uuid4().hex
    info = error_details_pb2.ErrorInfo(
        reason="INTERNAL", domain=DOMAIN, metadata={"error_id": error_id}
    )
    message = f"internal error (error id {error_id})"
    return error_id, _status(grpc.StatusCode.INTERNAL, message, [info])


# Codes that say the peer failed or could not be reached rather than what was wrong with
# the request: the caller sees UNAVAILABLE (retry later), never the peer's INTERNAL.
_PEER_FAILURES = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.CANCELLED,
        grpc.StatusCode.UNIMPLEMENTED,
        grpc.StatusCode.OK,
    }
)
_BY_CODE: dict[grpc.StatusCode, type[AleaError]] = {
    cls.code: cls
    for cls in (
        FailedPrecondition,
        PermissionDenied,
        Unauthenticated,
        Aborted,
        OutOfRange,
        DataLoss,
    )
}


def _detail(status: status_pb2.Status, kind: type[_D]) -> _D | None:
    for packed in status.details:
        if packed.Is(kind.DESCRIPTOR):
            detail = kind()
            packed.Unpack(detail)
            return detail
    return None


def from_status(status: status_pb2.Status) -> AleaError:
    """The domain error of a ``google.rpc.Status``: the inverse of :func:`to_status`."""
    code = _CODES.get(status.code, grpc.StatusCode.UNKNOWN)
    message = status.message
    if code in _PEER_FAILURES:
        return Unavailable(message or code.name)
    if code is grpc.StatusCode.INVALID_ARGUMENT:
        bad = _detail(status, error_details_pb2.BadRequest)
        found = [(v.field, v.description) for v in bad.field_violations] if bad else []
        return InvalidArgument.of(found or [("", message)])
    if code in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.ALREADY_EXISTS):
        info = _detail(status, error_details_pb2.ResourceInfo)
        kind, name = (info.resource_type, info.resource_name) if info else ("resource", "")
        resource = NotFound if code is grpc.StatusCode.NOT_FOUND else AlreadyExists
        return resource(kind, name)
    if code is grpc.StatusCode.RESOURCE_EXHAUSTED:
        quota = _detail(status, error_details_pb2.QuotaFailure)
        if quota and quota.violations:
            first = quota.violations[0]
            return ResourceExhausted(first.quota_id, first.description or message, first.subject)
        return ResourceExhausted("", message)
    return _BY_CODE[code](message)


def from_rpc_error(error: grpc.aio.AioRpcError) -> AleaError:
    """The domain error a peer's failed call stands for (its rich status when it sent one)."""
    status = rpc_status.from_call(error)  # type: ignore[arg-type]  # aio errors carry trailers too
    if status is None:
        status = status_pb2.Status(code=error.code().value[0], message=error.details() or "")
    return from_status(status)
