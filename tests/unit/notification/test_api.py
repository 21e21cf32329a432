"""The servicer's conversions: a timestamp a client can encode but not a time (seconds past
9999-12-31, nanos out of range) is INVALID_ARGUMENT naming its field."""

from __future__ import annotations

import pytest
from alea.notification.v1 import notification_pb2 as pb
from google.protobuf import timestamp_pb2

from services.notification.api import _feed_request, event_record
from services.runtime.errors import InvalidArgument

BAD = [
    timestamp_pb2.Timestamp(seconds=10**15),
    timestamp_pb2.Timestamp(seconds=-(10**12)),
    timestamp_pb2.Timestamp(seconds=1, nanos=-5),
]


class NoMetadata:
    def invocation_metadata(self) -> tuple:
        return ()


@pytest.mark.parametrize("stamp", BAD)
def test_an_out_of_range_start_time_is_invalid_argument(stamp) -> None:
    with pytest.raises(InvalidArgument) as caught:
        _feed_request(pb.SubscribeRequest(start_time=stamp), NoMetadata())
    assert "start_time" in str(caught.value)


@pytest.mark.parametrize("stamp", BAD)
def test_an_out_of_range_event_time_is_invalid_argument(stamp) -> None:
    with pytest.raises(InvalidArgument) as caught:
        event_record(pb.Event(id="e", event_time=stamp))
    assert "event.event_time" in str(caught.value)


def test_a_valid_start_time_is_its_unix_seconds() -> None:
    stamp = timestamp_pb2.Timestamp(seconds=1_700_000_000, nanos=500_000_000)
    _, cursor = _feed_request(pb.SubscribeRequest(start_time=stamp), NoMetadata())
    assert cursor.start_time == 1_700_000_000.5
