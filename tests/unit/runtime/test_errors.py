"""Each domain error maps to one status code with its typed details."""

import grpc
import pytest
from google.rpc import error_details_pb2

from services.runtime import errors


def _unpack(status, kind):
    (detail,) = status.details
    message = kind()
    assert detail.Unpack(message)
    return message


def test_invalid_argument_lists_every_field_violation() -> None:
    error = errors.InvalidArgument.of([("email", "must be an email"), ("Sheet1!B2", "bad")])
    status = errors.to_status(error)
    assert status.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    request = _unpack(status, error_details_pb2.BadRequest)
    assert [(v.field, v.description) for v in request.field_violations] == [
        ("email", "must be an email"),
        ("Sheet1!B2", "bad"),
    ]


def test_not_found_carries_resource_info() -> None:
    status = errors.to_status(errors.NotFound("user", "42"))
    assert status.code == grpc.StatusCode.NOT_FOUND.value[0]
    info = _unpack(status, error_details_pb2.ResourceInfo)
    assert (info.resource_type, info.resource_name) == ("user", "42")


def test_resource_exhausted_names_the_limit() -> None:
    status = errors.to_status(errors.ResourceExhausted("trials_per_month", "too many", "t/1"))
    assert status.code == grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]
    (violation,) = _unpack(status, error_details_pb2.QuotaFailure).violations
    assert (violation.quota_id, violation.subject) == ("trials_per_month", "t/1")


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (errors.AlreadyExists("user", "a@b.c"), grpc.StatusCode.ALREADY_EXISTS),
        (errors.FailedPrecondition("x"), grpc.StatusCode.FAILED_PRECONDITION),
        (errors.PermissionDenied("x"), grpc.StatusCode.PERMISSION_DENIED),
        (errors.Unauthenticated("x"), grpc.StatusCode.UNAUTHENTICATED),
        (errors.Aborted("x"), grpc.StatusCode.ABORTED),
        (errors.Unavailable("x"), grpc.StatusCode.UNAVAILABLE),
        (errors.DataLoss("x"), grpc.StatusCode.DATA_LOSS),
    ],
)
def test_each_error_has_its_code(error: errors.AleaError, code: grpc.StatusCode) -> None:
    status = errors.to_status(error)
    assert status.code == code.value[0]
    assert status.message == error.message


def test_internal_status_reveals_only_an_error_id() -> None:
    error_id, status = errors.internal_status()
    assert status.code == grpc.StatusCode.INTERNAL.value[0]
    assert status.message == f"internal error (error id {error_id})"
    assert _unpack(status, error_details_pb2.ErrorInfo).metadata["error_id"] == error_id


def _rpc_error(status) -> grpc.aio.AioRpcError:
    """A failed call as a client sees it: the code, the message and the rich status."""
    trailing = grpc.aio.Metadata(("grpc-status-details-bin", status.SerializeToString()))
    code = next(c for c in grpc.StatusCode if c.value[0] == status.code)
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), trailing, status.message)


@pytest.mark.parametrize(
    "error",
    [
        errors.InvalidArgument.of([("file_id", "must be a UUID"), ("Sheet1!B2", "bad")]),
        errors.NotFound("file", "42"),
        errors.AlreadyExists("user", "a@b.c"),
        errors.ResourceExhausted("trials_per_month", "too many", "tenants/1"),
        errors.FailedPrecondition("simulation is RUNNING"),
        errors.PermissionDenied("needs role admin"),
        errors.Unauthenticated("expired"),
        errors.Aborted("retry"),
        errors.OutOfRange("offset past the end"),
        errors.DataLoss("chunk 3 failed its integrity check"),
        errors.Unavailable("database unreachable"),
    ],
)
def test_from_rpc_error_is_the_inverse_of_to_status(error: errors.AleaError) -> None:
    back = errors.from_rpc_error(_rpc_error(errors.to_status(error)))
    assert type(back) is type(error)
    assert back.message == error.message
    assert errors.to_status(back) == errors.to_status(error)


@pytest.mark.parametrize(
    "code",
    [
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.UNIMPLEMENTED,
        grpc.StatusCode.CANCELLED,
    ],
)
def test_a_peer_that_failed_is_unavailable_to_its_caller(code: grpc.StatusCode) -> None:
    failure = grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), "boom")
    assert isinstance(errors.from_rpc_error(failure), errors.Unavailable)


def test_a_status_without_details_keeps_its_code_and_message() -> None:
    plain = grpc.aio.AioRpcError(
        grpc.StatusCode.INVALID_ARGUMENT, grpc.aio.Metadata(), grpc.aio.Metadata(), "bad email"
    )
    back = errors.from_rpc_error(plain)
    assert isinstance(back, errors.InvalidArgument)
    assert back.violations == [("", "bad email")]
