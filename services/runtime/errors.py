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
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import grpc
from google.protobuf import any_pb2
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2

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
    "internal_status",
    "to_status",
]

DOMAIN = "alea.dev"

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
