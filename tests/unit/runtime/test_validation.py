"""The shared request validation: protovalidate's rules plus the ranges of well-known times."""

from __future__ import annotations

import pytest
from alea.analytics.v1 import analytics_pb2
from alea.notification.v1 import notification_pb2
from google.protobuf import duration_pb2, timestamp_pb2

from services.runtime.errors import InvalidArgument
from services.runtime.validation import validate


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
