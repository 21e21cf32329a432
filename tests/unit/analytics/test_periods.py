"""The periods usage queries and reports cover: at most MAX_PERIOD_DAYS, refused beyond."""

from __future__ import annotations

import pytest
from alea.analytics.v1 import analytics_pb2 as pb
from google.protobuf import timestamp_pb2

from services.analytics.api import MAX_PERIOD_DAYS, _period, _report_period
from services.analytics.usage import month_range
from services.runtime.errors import InvalidArgument

END = 1_800_000_000
DAY = 86_400


def _stamp(seconds: int) -> timestamp_pb2.Timestamp:
    return timestamp_pb2.Timestamp(seconds=seconds)


def test_a_report_from_the_year_309_names_start_time() -> None:
    request = pb.GetReportRequest(start_time=_stamp(-52_000_000_000), end_time=_stamp(END))
    with pytest.raises(InvalidArgument) as refused:
        _report_period(request)
    assert "start_time" in str(refused.value)


def test_usage_over_the_longest_period_is_answered_and_one_day_more_refused() -> None:
    longest = pb.GetUsageRequest(
        start_time=_stamp(END - MAX_PERIOD_DAYS * DAY), end_time=_stamp(END)
    )
    assert _period(longest, 0.0) == (END - MAX_PERIOD_DAYS * DAY, END)
    longer = pb.GetUsageRequest(
        start_time=_stamp(END - (MAX_PERIOD_DAYS + 1) * DAY), end_time=_stamp(END)
    )
    with pytest.raises(InvalidArgument):
        _period(longer, 0.0)


def test_the_month_0000_names_month() -> None:
    # The contract's pattern (`[0-9]{4}-...`) lets the year 0 through; datetime raised
    # "year 0 is out of range", an INTERNAL, for GetReport and DownloadReport alike.
    with pytest.raises(InvalidArgument) as refused:
        _report_period(pb.GetReportRequest(month="0000-01"))
    assert refused.value.violations == [
        ("month", "'0000-01' is not a month of the years 0001 to 9999")
    ]
    with pytest.raises(InvalidArgument):
        month_range("0000-12")
    first, last = month_range("0001-01"), month_range("9999-12")
    assert first[1] - first[0] == last[1] - last[0] == 31 * DAY
