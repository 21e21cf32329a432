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


async def test_what_is_published_while_the_first_message_is_sent_reaches_the_watcher() -> None:
    # The servicer sends the state it read first; a run of one chunk can start, report
    # and end before the client has taken that message and asked for the next.
    hub = Hub(_nothing_stored, poll_interval=60, tick=60)
    queued = simulation_record()
    events = hub.watch(queued)
    assert await anext(events) is queued  # being sent: nothing asked for after it yet
    last = Progress(1000, 1000, 5e6, 0.0, {"y": (1.0, 0.01)})
    hub.publish(queued.id, _later(queued, 1, state="RUNNING"))
    hub.publish(queued.id, last)
    hub.publish(queued.id, _later(queued, 2, state="SUCCEEDED", trials_done=1000))
    async with asyncio.timeout(5):  # (not registered in time, it would wait for a poll)
        heard = [event async for event in events]
    assert heard[0] == last
    assert [e.state for e in heard[1:] if isinstance(e, SimulationRecord)] == ["SUCCEEDED"]
    assert hub.watchers == 0


async def test_a_watcher_joining_a_run_hears_its_progress_so_far_at_once() -> None:
    hub = Hub(_nothing_stored, poll_interval=60, tick=60)
    running = _later(
        simulation_record(),
        1,
        state="RUNNING",
        start_time=CREATED,
        trials_done=400,
        progress={"trials": 400, "running": {"y": [1.0, 0.1]}},
    )
    events = hub.watch(running)
    assert await anext(events) is running
    joined = await asyncio.wait_for(anext(events), 5)  # no chunk ends meanwhile
    assert isinstance(joined, Progress) and joined.trials_done == 400
    assert joined.running == {"y": (1.0, 0.1)}
    await events.aclose()
    assert hub.watchers == 0
