"""The hand-built Timestamps equal protobuf's own conversions, to the nanosecond."""

import datetime as dt

import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from services.runtime.convert import timestamp, timestamp_of_seconds

MOMENTS = [
    dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    dt.datetime(2026, 7, 4, 12, 30, 59, 999_999, tzinfo=dt.UTC),
    dt.datetime(1969, 12, 31, 23, 59, 59, 500_000, tzinfo=dt.UTC),
    dt.datetime(2026, 3, 1, 1, 0, 0, 1, tzinfo=dt.timezone(dt.timedelta(hours=-5))),
]


@pytest.mark.parametrize("moment", MOMENTS)
def test_a_datetime_becomes_the_same_timestamp_as_from_datetime(moment: dt.datetime) -> None:
    expected = Timestamp()
    expected.FromDatetime(moment)
    assert timestamp(moment) == expected


@pytest.mark.parametrize("seconds", [0.0, 1_767_225_600.123456, 1.5, -1.25, 1e9 + 0.000001])
def test_unix_seconds_become_the_same_timestamp_as_from_nanoseconds(seconds: float) -> None:
    expected = Timestamp()
    expected.FromNanoseconds(int(seconds * 1e9))
    assert timestamp_of_seconds(seconds) == expected


def test_none_stays_unset() -> None:
    assert timestamp(None) is None and timestamp_of_seconds(None) is None
