"""The simulation's events are written in the transactions that change its state, on SQLite and
PostgreSQL: created, started (only by the first lease), succeeded with headline results,
failed with the reason, cancelled; a transition that does not happen writes nothing."""

from __future__ import annotations

from alea.notification.v1 import notification_pb2 as pb
from google.protobuf import json_format
from sqlalchemy import select

from services.runtime.outbox import outbox_table
from services.simulation.queue import Queue
from services.simulation.store import Store
from tests.integration.simulation.test_queue import NOW, checkpoint, job, lease

RESULTS = {"y": {"mean": 2.5, "std": 1.0, "percentiles": {"5": 1.0, "50": 2.5, "95": 4.0}}}


async def events(store: Store) -> list[tuple[str, dict]]:
    async with store.db.reading() as session:
        payloads = (
            await session.execute(select(outbox_table.c.payload).order_by(outbox_table.c.seq))
        ).scalars()
        found = [pb.Event.FromString(p) for p in payloads]
    return [(pb.EventType.Name(e.type), json_format.MessageToDict(e.data)) for e in found]


async def test_a_run_writes_created_started_succeeded(store: Store) -> None:
    record = job()
    await store.insert_simulation(record)
    first = await lease(store)
    await checkpoint(store, first, 1000, NOW + 1, complete=True)
    assert await Queue(store).finish(record.id, result_data=RESULTS, backend="cpu", now=NOW + 3)
    assert not await Queue(store).finish(record.id, result_data=RESULTS, backend="cpu", now=NOW)
    written = await events(store)
    assert [name for name, _ in written] == [
        "EVENT_TYPE_SIMULATION_CREATED",
        "EVENT_TYPE_SIMULATION_STARTED",
        "EVENT_TYPE_SIMULATION_SUCCEEDED",
    ]
    succeeded = written[2][1]
    assert succeeded["simulation_id"] == record.id and succeeded["trials"] == 1000
    assert succeeded["state"] == "STATE_SUCCEEDED" and succeeded["duration_seconds"] == 3
    assert succeeded["results"] == [
        {"output": "y", "mean": 2.5, "std": 1.0, "p5": 1.0, "p50": 2.5, "p95": 4.0}
    ]


async def test_failed_and_cancelled_carry_their_reason(store: Store) -> None:
    failing, cancelled = job(), job()
    await store.insert_simulation(failing)
    await lease(store)  # starts the failing one (the only one queued)
    await store.insert_simulation(cancelled)
    assert await Queue(store).fail(failing.id, reason="ZeroDivisionError: x", now=NOW + 1)
    assert await store.cancel("t1", cancelled.id, "cancelled by user", NOW + 2)
    assert not await store.cancel("t1", cancelled.id, "again", NOW + 3)  # no second event
    written = [(n, d) for n, d in await events(store) if "CREATED" not in n]
    assert [(n, d["simulation_id"], d.get("reason")) for n, d in written] == [
        ("EVENT_TYPE_SIMULATION_STARTED", failing.id, None),
        ("EVENT_TYPE_SIMULATION_FAILED", failing.id, "ZeroDivisionError: x"),
        ("EVENT_TYPE_SIMULATION_CANCELLED", cancelled.id, "cancelled by user"),
    ]


async def test_a_cached_answer_is_created_and_succeeded_at_once(store: Store) -> None:
    record = job(state="SUCCEEDED", cached=True, trials_done=1000, backend="cache")
    await store.insert_simulation(record, RESULTS)
    assert [n for n, _ in await events(store)] == [
        "EVENT_TYPE_SIMULATION_CREATED",
        "EVENT_TYPE_SIMULATION_SUCCEEDED",
    ]
