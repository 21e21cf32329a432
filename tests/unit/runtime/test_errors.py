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
