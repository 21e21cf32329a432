"""The monthly report: CSV rows that add up to the usage, and an HTML page with inline SVG
charts that loads nothing from anywhere."""

from __future__ import annotations

import csv
import io
import re

from services.analytics import report
from services.analytics.usage import Usage, month_range
from tests.unit.analytics.test_usage import ANN, BOB, TENANT, scripted, usage  # noqa: F401


async def test_csv_totals_and_users_add_up(usage: Usage) -> None:  # noqa: F811
    await scripted(usage)
    built = await report.build(usage, TENANT, *month_range("2026-03"))
    rows = list(csv.DictReader(io.StringIO(report.render_csv(built).decode())))
    tenant = {r["metric"]: float(r["value"]) for r in rows if not r["user_id"]}
    assert tenant["TRIALS"] == 7000 and tenant["SIMULATIONS"] == 4
    for metric in ("TRIALS", "TRIALS_RUN", "CPU_SECONDS", "API_CALLS", "UPLOADED_BYTES"):
        users = sum(float(r["value"]) for r in rows if r["user_id"] and r["metric"] == metric)
        assert users == tenant[metric], metric
    assert {r["month"] for r in rows} == {"2026-03"} and {r["tenant_id"] for r in rows} == {TENANT}
    assert [u.user_id for u in built.users] == [BOB, ANN]  # most trials first
    assert built.by_state == {"STATE_SUCCEEDED": 3, "STATE_CANCELLED": 1}
    assert len(built.daily_trials) == 31


async def test_html_is_self_contained_with_inline_charts(usage: Usage) -> None:  # noqa: F811
    await scripted(usage)
    built = await report.build(usage, TENANT, *month_range("2026-03"))
    page = report.render_html(built).decode()
    assert page.startswith("<!DOCTYPE html>") and page.count("<svg") == 3
    assert "Trials charged per day" in page and TENANT in page
    references = re.findall(r"""(?:src|href|url)\s*[=(]\s*["']?([^"' )>]+)""", page)
    assert references == []
    assert re.findall(r"https?://", page) == ["http://"] * 3  # the SVG namespace only
    assert "<script" not in page
