"""Domain values → the well-known protobuf types every ``api.py`` fills in.

Built from integers directly: protobuf's ``Timestamp.FromDatetime`` and
``FromNanoseconds`` are Python code that showed in the profile of every simple read.
"""

from __future__ import annotations

import datetime as dt
from typing import overload

from google.protobuf.timestamp_pb2 import Timestamp

__all__ = ["timestamp", "timestamp_of_seconds"]

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_NANOS = 1_000_000_000


def timestamp(value: dt.datetime | None) -> Timestamp | None:
    """The Timestamp of an aware datetime (None stays unset)."""
    if value is None:
        return None
    since = value - _EPOCH
    return Timestamp(seconds=since.days * 86_400 + since.seconds, nanos=since.microseconds * 1000)


@overload
def timestamp_of_seconds(seconds: float) -> Timestamp: ...
@overload
def timestamp_of_seconds(seconds: None) -> None: ...
def timestamp_of_seconds(seconds: float | None) -> Timestamp | None:
    """The Timestamp of UNIX seconds (None stays unset)."""
    if seconds is None:
        return None
    nanos = int(seconds * _NANOS)
    return Timestamp(seconds=nanos // _NANOS, nanos=nanos % _NANOS)
