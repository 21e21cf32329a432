"""``alea usage``: a month's usage of the tenant (default: this month), and the demo's line.

Prints each metric's total — simulations by state, trials run and compute seconds by
back end — and with ``--per-user`` each user's; ``--plot out.png`` draws the daily trials
and compute seconds; ``--report FILE`` saves the month's report (``.html``: self-contained
with its charts, ``.csv``: one row per user and metric).
Connection and credentials as every command (``alea simulate --help``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
import time
from pathlib import Path
from typing import Any

from alea.analytics.v1 import analytics_pb2 as pb
from alea.analytics.v1 import analytics_pb2_grpc

from services.cli.edge_client import edge_channel
from services.cli.simulate import _add_connection, _credentials, _edge_address, _guard
from services.runtime.config import alea_home

__all__ = ["DEMO_USAGE", "format_usage", "register"]

_UNITS = {
    "TRIALS": "trials charged",
    "TRIALS_RUN": "trials run",
    "SIMULATIONS": "simulations",
    "CPU_SECONDS": "CPU s",
    "GPU_SECONDS": "GPU s",
    "COMPUTE_SECONDS": "compute s",
    "UPLOADED_BYTES": "bytes uploaded",
    "STORAGE_BYTE_DAYS": "byte-days stored",
    "API_CALLS": "API calls",
}


def _month(text: str) -> str:
    if not re.fullmatch(r"[0-9]{4}-(0[1-9]|1[0-2])", text):
        raise argparse.ArgumentTypeError(f"a month is YYYY-MM, got {text!r}")
    return text


def _bounds(month: str) -> tuple[dt.datetime, dt.datetime]:
    year, number = map(int, month.split("-"))
    start = dt.datetime(year, number, 1, tzinfo=dt.UTC)
    end = dt.datetime(year + number // 12, number % 12 + 1, 1, tzinfo=dt.UTC)
    return start, end


def _name(metric: int) -> str:
    return pb.UsageMetric.Name(metric).removeprefix("USAGE_METRIC_")


# The splits worth a line under a metric's total: simulations by the state they are in,
# work done by the back end that did it.
_SPLITS = {"SIMULATIONS": "state", "TRIALS_RUN": "backend", "COMPUTE_SECONDS": "backend"}


def _split(series: pb.UsageSeries) -> tuple[str, str]:
    """(``state`` or ``backend``, a label) of a tenant-wide split series."""
    if series.state:
        return "state", series.state.removeprefix("STATE_").lower()
    return "backend", f"on {series.backend}"


def format_usage(response: pb.GetUsageResponse) -> str:
    """Totals (simulations by state, work by back end), then each user's, as text."""
    lines = []
    splits = [s for s in response.series if not s.user_id and (s.state or s.backend)]
    for series in response.series:
        if series.user_id or series.state or series.backend:
            continue
        metric = _name(series.metric)
        lines.append(f"{series.total:>18,.2f}  {_UNITS.get(metric, '')}")
        for split in splits:
            dimension, label = _split(split)
            if split.metric == series.metric and split.total and _SPLITS.get(metric) == dimension:
                lines.append(f"{split.total:>18,.2f}    {label}")
    users = sorted({s.user_id for s in response.series if s.user_id})
    for user in users:
        lines.append(f"user {user}:")
        for series in response.series:
            if series.user_id == user and series.total:
                unit = _UNITS.get(_name(series.metric), "")
                lines.append(f"{series.total:>18,.2f}  {unit}")
    return "\n".join(lines)


def _plot(response: pb.GetUsageResponse, path: Path, month: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    wanted = {"TRIALS": "trials charged per day", "COMPUTE_SECONDS": "compute seconds per day"}
    totals = {
        _name(s.metric): s
        for s in response.series
        if not (s.user_id or s.state or s.backend) and _name(s.metric) in wanted
    }
    figure, axes = plt.subplots(len(wanted), 1, figsize=(9, 6), sharex=True)
    for axis, (metric, title) in zip(axes, wanted.items(), strict=True):
        points = totals[metric].points if metric in totals else []
        days = [p.start_time.ToDatetime(dt.UTC).day for p in points]
        axis.bar(days, [p.value for p in points], color="#3b6ea5")
        axis.set_title(title)
    last_day = (_bounds(month)[1] - dt.timedelta(days=1)).day
    axes[-1].set_xlim(0.5, last_day + 0.5)
    axes[-1].set_xticks(range(1, last_day + 1, 2))
    axes[-1].set_xlabel(f"day of {month} (UTC)")
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def cmd_usage(args: argparse.Namespace) -> int:
    month = args.month or dt.datetime.now(dt.UTC).strftime("%Y-%m")
    start, end = _bounds(month)
    request = pb.GetUsageRequest(
        granularity=pb.GRANULARITY_DAY,
        per_user=args.per_user,
        group_by=[pb.USAGE_DIMENSION_STATE, pb.USAGE_DIMENSION_BACKEND],
    )
    request.start_time.FromDatetime(start)
    request.end_time.FromDatetime(min(end, dt.datetime.now(dt.UTC)) if not args.month else end)
    with edge_channel(_edge_address(args), alea_home() / "pki") as channel:
        stub = analytics_pb2_grpc.AnalyticsServiceStub(channel)
        metadata = _credentials(args, channel)
        response = stub.GetUsage(request, metadata=metadata, timeout=60)
        if args.report is not None:
            csv = args.report.suffix.lower() == ".csv"
            download = pb.DownloadReportRequest(
                month=month, format=pb.REPORT_FORMAT_CSV if csv else pb.REPORT_FORMAT_HTML
            )
            body = stub.DownloadReport(download, metadata=metadata, timeout=60)
            args.report.write_bytes(body.data)
    print(f"usage {month}")
    print(format_usage(response))
    if args.plot is not None:
        _plot(response, args.plot, month)
        print(f"chart written to {args.plot}")
    if args.report is not None:
        print(f"report written to {args.report}")
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``usage`` subcommand."""
    usage = subparsers.add_parser("usage", help="the tenant's usage of a month")
    usage.add_argument("--month", type=_month, help="YYYY-MM (default: this month)")
    usage.add_argument("--per-user", action="store_true", help="each user's usage too")
    usage.add_argument("--plot", type=Path, help="write daily trials and compute charts (PNG)")
    usage.add_argument("--report", type=Path, help="save the month's report (.html or .csv)")
    _add_connection(usage)
    usage.set_defaults(func=_guard(cmd_usage))


def demo_usage(demo: Any) -> str:
    """alea demo step: this month's usage so far, as analytics counted it from the events
    (which reach it within a second or so of the demo's simulation ending)."""
    stub = analytics_pb2_grpc.AnalyticsServiceStub(demo.channel)
    request = pb.GetUsageRequest(granularity=pb.GRANULARITY_MONTH)
    deadline = time.monotonic() + 15
    while True:
        response = stub.GetUsage(request, metadata=demo.grpc_auth(), timeout=30)
        totals = {_name(s.metric): s.total for s in response.series if not s.user_id}
        if totals.get("TRIALS_RUN") or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    return (
        f"GetUsage: this month {totals.get('TRIALS', 0):,.0f} trials charged, "
        f"{totals.get('SIMULATIONS', 0):.0f} simulation(s), "
        f"{totals.get('CPU_SECONDS', 0) + totals.get('GPU_SECONDS', 0):.2f} compute s"
    )


DEMO_USAGE = [("grpc", demo_usage)]
