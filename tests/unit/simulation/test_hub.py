"""The hub's watchers, driven by hand: what a watcher hears however events bunch up."""

from __future__ import annotations

import asyncio
import dataclasses

from services.simulation.hub import Hub, Progress
from services.simulation.store import SimulationRecord
from tests.unit.simulation.records import CREATED, simulation_record


async def _nothing_stored(ids: object) -> dict[str, SimulationRecord]:
    return {}


def _later(record: SimulationRecord, seconds: float, **changes: object) -> SimulationRecord:
    return dataclasses.replace(record, update_time=CREATED + seconds, **changes)


async def test_a_run_that_starts_reports_and_ends_between_two_wake_ups_still_reports() -> None:
    hub = Hub(_nothing_stored, poll_interval=60, tick=60)
    queued = simulation_record()
    events = hub.watch(queued)
    assert await anext(events) is queued
    following = asyncio.ensure_future(anext(events))
    while hub.watchers < 1:  # noqa: ASYNC110  (the watcher subscribed)
        await asyncio.sleep(0)
    # The whole run lands before the watcher's loop gets a turn.
    last = Progress(1000, 1000, 5e6, 0.0, {"y": (1.0, 0.01)})
    hub.publish(queued.id, _later(queued, 1, state="RUNNING"))
    hub.publish(queued.id, Progress(500, 1000, 5e6, 0.0, {"y": (1.0, 0.02)}))
    hub.publish(queued.id, last)
    hub.publish(queued.id, _later(queued, 2, state="SUCCEEDED", trials_done=1000))
    heard = [await following] + [event async for event in events]
    assert heard[0] == last
    assert [e.state for e in heard[1:] if isinstance(e, SimulationRecord)] == ["SUCCEEDED"]
    assert hub.watchers == 0


async def test_progress_already_heard_is_not_repeated_at_the_end() -> None:
    hub = Hub(_nothing_stored, poll_interval=60, tick=60)
    queued = simulation_record()
    events = hub.watch(queued)
    await anext(events)
    following = asyncio.ensure_future(anext(events))
    while hub.watchers < 1:  # noqa: ASYNC110  (the watcher subscribed)
        await asyncio.sleep(0)
    hub.publish(queued.id, _later(queued, 1, state="RUNNING"))
    assert (await following).state == "RUNNING"
    progress = Progress(1000, 1000, 5e6, 0.0, {})
    hub.publish(queued.id, progress)
    assert await anext(events) == progress
    hub.publish(queued.id, _later(queued, 2, state="SUCCEEDED", trials_done=1000))
    assert [getattr(e, "state", e) for e in [event async for event in events]] == ["SUCCEEDED"]
