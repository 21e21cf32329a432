"""A tenant's monthly report: totals, every user's share, simulations by state, daily
trials and compute, performance — rendered as CSV or as one self-contained HTML page
whose charts are inline SVG (it loads nothing: no scripts, fonts or images from anywhere).
"""

from __future__ import annotations

import csv
import datetime as dt
import html
import io
import time
from collections import defaultdict
from dataclasses import dataclass

from services.analytics.performance import Performance, performance
from services.analytics.usage import METRICS, Usage, series

__all__ = ["Report", "UserRow", "build", "render_csv", "render_html"]

UNITS = {
    "TRIALS": "trials",
    "SIMULATIONS": "simulations",
    "COMPUTE_SECONDS": "s",
    "UPLOADED_BYTES": "bytes",
    "API_CALLS": "calls",
    "CPU_SECONDS": "s",
    "GPU_SECONDS": "s",
    "STORAGE_BYTE_DAYS": "byte-days",
    "TRIALS_RUN": "trials",
}


_USER_COLUMNS = {
    "TRIALS": "trials",
    "TRIALS_RUN": "trials run",
    "CPU_SECONDS": "CPU s",
    "GPU_SECONDS": "GPU s",
    "UPLOADED_BYTES": "uploaded bytes",
    "STORAGE_BYTE_DAYS": "byte-days",
    "API_CALLS": "API calls",
}
_PERFORMANCE_COLUMNS = (
    "back end",
    "model size",
    "simulations",
    "trials",
    "trials/s",
    "wait p50 s",
    "wait p95 s",
    "run p50 s",
    "run p95 s",
)


@dataclass(frozen=True)
class UserRow:
    """One user's total of every metric over the period."""

    user_id: str
    totals: dict[str, float]


@dataclass(frozen=True)
class Report:
    """Everything a report shows."""

    tenant_id: str
    start: float
    end: float
    totals: dict[str, float]
    users: list[UserRow]  # most trials first
    by_state: dict[str, int]
    daily_trials: list[tuple[float, float]]
    daily_compute: list[tuple[float, float]]
    performance: Performance
    create_time: float


async def build(usage: Usage, tenant_id: str, start: float, end: float) -> Report:
    """The report of ``tenant_id`` over ``[start, end)``."""
    data = await usage.data(tenant_id, start, end)
    totals: dict[str, float] = {}
    per_user: dict[str, dict[str, float]] = defaultdict(dict)
    by_state: dict[str, int] = {}
    for metric in METRICS:
        dims = frozenset({"USER", "STATE"})
        for item in series(metric, data, start, end, "MONTH", dims):
            if item.user_id:
                per_user[item.user_id][metric] = item.total
            elif item.state and metric == "SIMULATIONS":
                by_state[item.state] = int(item.total)
            elif not item.state:
                totals[metric] = item.total
    users = [UserRow(u, {m: t.get(m, 0.0) for m in METRICS}) for u, t in per_user.items()]
    users.sort(key=lambda row: (-row.totals["TRIALS"], row.user_id))
    daily = {m: series(m, data, start, end, "DAY")[0].points for m in ("TRIALS", "COMPUTE_SECONDS")}
    return Report(
        tenant_id,
        start,
        end,
        totals,
        users,
        by_state,
        daily["TRIALS"],
        daily["COMPUTE_SECONDS"],
        performance(data.simulations, start, end),
        time.time(),
    )


def _month(report: Report) -> str:
    return dt.datetime.fromtimestamp(report.start, dt.UTC).strftime("%Y-%m")


def _number(value: float) -> str:
    return f"{value:,.0f}" if value == int(value) else f"{value:,.2f}"


def render_csv(report: Report) -> bytes:
    """One row per metric for the tenant (``user_id`` empty) and for each user."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(["tenant_id", "month", "user_id", "metric", "value", "unit"])
    month = _month(report)
    for metric in METRICS:
        writer.writerow([report.tenant_id, month, "", metric, report.totals[metric], UNITS[metric]])
    for row in report.users:
        for metric in METRICS:
            value = row.totals[metric]
            writer.writerow([report.tenant_id, month, row.user_id, metric, value, UNITS[metric]])
    return buffer.getvalue().encode()


def _bars(title: str, points: list[tuple[str, float]], width: int = 720, height: int = 220) -> str:
    """An inline SVG bar chart of (label, value) pairs."""
    top = max((v for _, v in points), default=0.0) or 1.0
    left, bottom, pad = 60, 30, 4
    inner_w, inner_h = width - left - 10, height - bottom - 30
    step = inner_w / max(len(points), 1)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'role="img" aria-label="{html.escape(title)}">',
        f'<text x="{left}" y="18" font-size="14">{html.escape(title)}</text>',
        f'<text x="{left - 6}" y="{30 + 4}" font-size="10" text-anchor="end">{_number(top)}</text>',
        f'<line x1="{left}" y1="{height - bottom}" x2="{width - 10}" y2="{height - bottom}" '
        'stroke="#444"/>',
    ]
    for i, (label, value) in enumerate(points):
        bar = inner_h * value / top
        x, y = left + i * step + pad / 2, height - bottom - bar
        parts.append(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(step - pad, 1):.1f}" height="{bar:.1f}" '
            f'fill="#3b6ea5"><title>{html.escape(label)}: {_number(value)}</title></rect>'
        )
        if len(points) <= 31:
            parts.append(
                f'<text x="{x + step / 2:.1f}" y="{height - bottom + 14}" font-size="9" '
                f'text-anchor="middle">{html.escape(label)}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)


def _table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def render_html(report: Report) -> bytes:
    """A self-contained HTML page: tables and inline SVG charts, no external resource."""
    month = _month(report)

    def day(t: float) -> str:
        return dt.datetime.fromtimestamp(t, dt.UTC).strftime("%d")

    totals = _table(
        ["metric", "total", "unit"],
        [[m, _number(report.totals[m]), UNITS[m]] for m in METRICS],
    )
    states = _table(
        ["state", "simulations"], [[s, str(n)] for s, n in sorted(report.by_state.items())]
    )
    users = _table(
        [
            "user",
            "trials",
            "trials run",
            "CPU s",
            "GPU s",
            "uploaded bytes",
            "byte-days",
            "API calls",
        ],
        [
            [
                row.user_id,
                *(
                    _number(row.totals[m])
                    for m in (
                        "TRIALS",
                        "TRIALS_RUN",
                        "CPU_SECONDS",
                        "GPU_SECONDS",
                        "UPLOADED_BYTES",
                        "STORAGE_BYTE_DAYS",
                        "API_CALLS",
                    )
                ),
            ]
            for row in report.users
        ],
    )
    perf = report.performance
    backends = _table(
        list(_PERFORMANCE_COLUMNS),
        [
            [
                b.backend,
                b.size_band,
                str(b.simulations),
                _number(b.trials),
                _number(b.trials_per_second),
                f"{b.queue_wait_p50:.3f}",
                f"{b.queue_wait_p95:.3f}",
                f"{b.run_p50:.3f}",
                f"{b.run_p95:.3f}",
            ]
            for b in perf.backends
        ],
    )
    charts = [
        _bars("Trials charged per day", [(day(t), v) for t, v in report.daily_trials]),
        _bars("Compute seconds per day", [(day(t), v) for t, v in report.daily_compute]),
        _bars("Trials per user", [(u.user_id[:8], u.totals["TRIALS"]) for u in report.users[:30]]),
    ]
    created = dt.datetime.fromtimestamp(report.create_time, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>Alea usage {month} — tenant {html.escape(report.tenant_id)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; margin: 1em 0; }}
th, td {{ border: 1px solid #ccc; padding: 4px 8px; text-align: right; }}
th {{ background: #f0f0f0; }} td:first-child {{ text-align: left; }}
</style></head><body>
<h1>Usage {month}</h1>
<p>Tenant {html.escape(report.tenant_id)} · computed {created} ·
result cache hit rate {perf.cache_hit_ratio:.1%} ({perf.cache_hits} hits)</p>
<h2>Totals</h2>{totals}
<h2>Simulations by state</h2>{states}
<h2>Daily</h2>{"".join(charts[:2])}
<h2>Users</h2>{charts[2]}{users}
<h2>Performance</h2>{backends}
</body></html>
"""
    return page.encode()
