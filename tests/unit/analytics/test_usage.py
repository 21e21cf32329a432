"""Usage from events, exactly: each metric from the facts the events carry, split by user,
state and backend, in UTC buckets; an event taken in twice counts once."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from services.analytics.app import MIGRATIONS
from services.analytics.store import AnalyticsStore, LedgerRow
from services.analytics.usage import EventView, Usage, buckets, month_range
from services.runtime.context import Principal
from services.runtime.db import Database
from services.runtime.errors import InvalidArgument, NotFound

T0 = dt.datetime(2026, 3, 1, tzinfo=dt.UTC).timestamp()
DAY = 86_400.0
TENANT = "11111111-1111-4111-8111-111111111111"
ANN, BOB = "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa", "bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb"
ADMIN = Principal(user_id=ANN, tenant_id=TENANT, role="admin")


@pytest.fixture
async def usage(tmp_path: Path) -> AsyncIterator[Usage]:
    db = Database(f"sqlite+aiosqlite:///{tmp_path}/analytics.db", MIGRATIONS)
    await db.open()
    yield Usage(AnalyticsStore(db))
    await db.close()


_ids = iter(range(10**6))


def sim_event(action: str, sim: str, user: str, at: float, **data: object) -> EventView:
    body = {"simulation_id": sim, "user_id": user, "trials": 1000, "create_time": T0, **data}
    return EventView(f"e{next(_ids)}", TENANT, f"simulation.{action}", user, body, at)


def file_event(action: str, file: str, user: str, at: float, size: int) -> EventView:
    body = {"file_id": file, "owner_id": user, "size_bytes": size}
    return EventView(f"e{next(_ids)}", TENANT, f"file.{action}", user, body, at)


async def scripted(usage: Usage) -> None:
    """Ann: two simulations run on CPU (one cancelled after 300 trials) and one answered
    from the cache; Bob: one on GPU. Ann keeps a 1 GiB file for 1.5 days."""
    t1 = T0 + 3600
    events = [
        sim_event("created", "s1", ANN, T0, model_inputs=5, create_time=T0),
        sim_event("started", "s1", ANN, T0 + 10, start_time=T0 + 10),
        sim_event(
            "succeeded",
            "s1",
            ANN,
            T0 + 20,
            trials_done=1000,
            backend="numpy",
            start_time=T0 + 10,
            end_time=T0 + 20,
            cpu_seconds=4.0,
        ),
        sim_event("created", "s2", ANN, t1, model_inputs=5, create_time=t1),
        sim_event(
            "cancelled",
            "s2",
            ANN,
            t1 + 5,
            trials_done=300,
            backend="cpu",
            start_time=t1 + 1,
            end_time=t1 + 5,
            cpu_seconds=1.5,
        ),
        sim_event("created", "s3", ANN, t1, cached=True, create_time=t1, backend="cache"),
        sim_event(
            "succeeded",
            "s3",
            ANN,
            t1,
            cached=True,
            trials_done=1000,
            backend="cache",
            start_time=t1,
            end_time=t1,
        ),
        sim_event(
            "created", "s4", BOB, T0 + DAY, trials=5000, model_inputs=500, create_time=T0 + DAY
        ),
        sim_event(
            "succeeded",
            "s4",
            BOB,
            T0 + DAY + 60,
            trials=5000,
            trials_done=5000,
            backend="cuda",
            start_time=T0 + DAY + 30,
            end_time=T0 + DAY + 60,
            gpu_seconds=2.0,
            create_time=T0 + DAY,
        ),
        file_event("uploaded", "f1", ANN, T0, 1 << 30),
        file_event("deleted", "f1", ANN, T0 + 1.5 * DAY, 1 << 30),
    ]
    for event in events:
        assert await usage.ingest(event)
    assert not await usage.ingest(events[2])  # relayed twice: counted once
    await usage.record(LedgerRow("r1", TENANT, BOB, "API_CALLS", 7, T0 + 5))
    assert not await usage.record(LedgerRow("r1", TENANT, BOB, "API_CALLS", 7, T0 + 5))


async def totals(usage: Usage, dims: frozenset[str] = frozenset()) -> dict:
    found = await usage.usage(ADMIN, "", T0, T0 + 3 * DAY, "DAY", [], dims)
    return {(s.metric, s.user_id, s.state, s.backend): s.total for s in found}


async def test_each_metric_counts_exactly_what_its_events_say(usage: Usage) -> None:
    await scripted(usage)
    got = await totals(usage)
    assert got[("TRIALS", "", "", "")] == 1000 + 1000 + 5000  # the cached one charges nothing
    assert got[("TRIALS_RUN", "", "", "")] == 1000 + 300 + 5000
    assert got[("SIMULATIONS", "", "", "")] == 4
    assert got[("CPU_SECONDS", "", "", "")] == 5.5
    assert got[("GPU_SECONDS", "", "", "")] == 2.0
    assert got[("COMPUTE_SECONDS", "", "", "")] == 7.5
    assert got[("UPLOADED_BYTES", "", "", "")] == 1 << 30
    assert got[("STORAGE_BYTE_DAYS", "", "", "")] == pytest.approx(1.5 * (1 << 30))
    assert got[("API_CALLS", "", "", "")] == 7


async def test_series_split_by_user_state_and_backend(usage: Usage) -> None:
    await scripted(usage)
    got = await totals(usage, frozenset({"USER", "STATE", "BACKEND"}))
    assert got[("TRIALS", ANN, "", "")] == 2000 and got[("TRIALS", BOB, "", "")] == 5000
    assert got[("SIMULATIONS", "", "STATE_SUCCEEDED", "")] == 3
    assert got[("SIMULATIONS", "", "STATE_CANCELLED", "")] == 1
    assert got[("TRIALS_RUN", "", "", "cpu")] == 1300  # numpy and native alike
    assert got[("TRIALS_RUN", "", "", "gpu")] == 5000
    assert got[("API_CALLS", BOB, "", "")] == 7


async def test_buckets_are_utc_days_and_byte_days_split_across_them(usage: Usage) -> None:
    await scripted(usage)
    found = await usage.usage(
        ADMIN, "", T0, T0 + 3 * DAY, "DAY", ["STORAGE_BYTE_DAYS", "TRIALS"], frozenset()
    )
    by_metric = {s.metric: s.points for s in found}
    gib = 1 << 30
    assert by_metric["STORAGE_BYTE_DAYS"] == [(T0, gib), (T0 + DAY, gib / 2), (T0 + 2 * DAY, 0.0)]
    assert by_metric["TRIALS"] == [(T0, 2000.0), (T0 + DAY, 5000.0), (T0 + 2 * DAY, 0.0)]
    hourly = await usage.usage(ADMIN, "", T0, T0 + 2 * 3600, "HOUR", ["TRIALS"], frozenset())
    assert hourly[0].points == [(T0, 1000.0), (T0 + 3600, 1000.0)]


async def test_performance_from_the_same_facts(usage: Usage) -> None:
    await scripted(usage)
    found = await usage.performance(ADMIN, "", T0, T0 + 3 * DAY)
    by_backend = {(b.backend, b.size_band): b for b in found.backends}
    cpu, gpu = by_backend[("cpu", "small")], by_backend[("gpu", "large")]
    assert (cpu.simulations, cpu.trials, cpu.trials_per_second) == (1, 1000, 250.0)
    assert (cpu.queue_wait_p50, cpu.run_p50) == (10.0, 10.0)
    assert (gpu.trials_per_second, gpu.queue_wait_p95) == (2500.0, 30.0)
    assert (found.cache_hits, found.cache_hit_ratio) == (1, 0.25)


async def test_other_tenants_and_bad_periods_are_refused(usage: Usage) -> None:
    other = "22222222-2222-4222-8222-222222222222"
    with pytest.raises(NotFound):
        await usage.usage(ADMIN, other, T0, T0 + DAY, "DAY", [], frozenset())
    operator = Principal(user_id=BOB, tenant_id=other, role="admin", platform=True)
    await usage.usage(operator, TENANT, T0, T0 + DAY, "DAY", [], frozenset())
    with pytest.raises(InvalidArgument) as bad:
        await usage.usage(ADMIN, "", T0, T0, "DAY", [], frozenset())
    assert bad.value.violations[0][0] == "end_time"
    with pytest.raises(InvalidArgument):
        await usage.usage(ADMIN, "", T0, T0 + 2000 * DAY, "HOUR", [], frozenset())


def test_month_buckets_follow_the_calendar() -> None:
    start, end = month_range("2024-02")
    assert (end - start) / DAY == 29
    assert [lo for lo, _ in buckets(start, start + 70 * DAY, "MONTH")] == [
        start,
        end,
        dt.datetime(2024, 4, 1, tzinfo=dt.UTC).timestamp(),
    ]
