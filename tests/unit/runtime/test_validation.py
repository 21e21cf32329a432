"""The shared request validation: protovalidate's rules plus the ranges of well-known times."""

from __future__ import annotations

import pytest
from alea.analytics.v1 import analytics_pb2
from alea.files.v1 import files_pb2
from alea.notification.v1 import notification_pb2
from google.protobuf import duration_pb2, field_mask_pb2, struct_pb2, timestamp_pb2
from google.protobuf.message import Message

from services.runtime.errors import InvalidArgument
from services.runtime.validation import tolerant, validate


def _violations(message) -> dict[str, str]:
    with pytest.raises(InvalidArgument) as raised:
        validate(message)
    return dict(raised.value.violations)


@pytest.mark.parametrize(
    ("seconds", "nanos"),
    [(253_402_300_800, 0), (-62_135_596_801, 0), (2**63 - 1, 0), (0, -1), (0, 1_000_000_000)],
)
def test_a_timestamp_outside_protobufs_range_names_its_field(seconds: int, nanos: int) -> None:
    request = analytics_pb2.GetPerformanceRequest(
        start_time=timestamp_pb2.Timestamp(seconds=seconds, nanos=nanos)
    )
    assert list(_violations(request)) == ["start_time"]


def test_the_extremes_of_the_range_are_valid() -> None:
    request = analytics_pb2.GetPerformanceRequest(
        start_time=timestamp_pb2.Timestamp(seconds=-62_135_596_800),
        end_time=timestamp_pb2.Timestamp(seconds=253_402_300_799, nanos=999_999_999),
    )
    validate(request)


def test_a_duration_beyond_ten_thousand_years_names_its_field() -> None:
    request = notification_pb2.RotateWebhookSecretRequest(
        webhook_id="w", overlap=duration_pb2.Duration(seconds=315_576_000_001)
    )
    assert "overlap" in _violations(request)


def _received(message: Message) -> object:
    """``message`` as the runtime's deserializer hands it to the handler chain."""
    parse = tolerant(type(message).FromString)
    assert parse is not None
    return parse(message.SerializeToString())


def _struct(**values: object) -> struct_pb2.Struct:
    data = struct_pb2.Struct()
    data.update(values)
    return data


@pytest.mark.parametrize(
    ("message", "field"),
    [
        (files_pb2.GetFileRequest(file_id="ab\x00"), "file_id"),
        (
            notification_pb2.UpdatePreferencesRequest(
                update_mask=field_mask_pb2.FieldMask(paths=["quiet", "x\x00"])
            ),
            "update_mask.paths[1]",
        ),
        (
            notification_pb2.PublishEventRequest(
                event=notification_pb2.Event(resource="simulations/x", data=_struct(k="v\x00"))
            ),
            "event.data.fields['k'].string_value",
        ),
        (
            notification_pb2.PublishEventRequest(
                event=notification_pb2.Event(data=_struct(**{"k\x00": 1}))
            ),
            "event.data.fields",
        ),
        (
            notification_pb2.PublishEventRequest(
                event=notification_pb2.Event(data=_struct(k=["a", "b\x00"]))
            ),
            "event.data.fields['k'].list_value.values[1].string_value",
        ),
        # zero bytes that are no NUL in a string: a bytes field, a number
        (files_pb2.UploadRequest(chunk=b"\x00\x01\x00"), None),
        (files_pb2.DownloadRequest(file_id="f", offset=256), None),
    ],
)
def test_a_nul_character_in_any_string_names_its_field(message: Message, field: str | None) -> None:
    received = _received(message)
    if field is None:
        assert received == message
        return
    with pytest.raises(InvalidArgument) as raised:
        validate(received)  # type: ignore[arg-type]
    assert raised.value.violations == [(field, "must not contain NUL (U+0000) characters")]
