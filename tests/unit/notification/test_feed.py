"""The event log and its feed: one record per event id, replay then live with no gap and no
duplicate, a subscriber too slow for its queue catching up from the log, and who sees what."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid

import pytest
from alea.notification.v1 import notification_pb2 as pb

from services.notification import feed as feed_module
from services.notification.api import NotificationServicer
from services.notification.domain import Notifications
from services.notification.feed import Cursor, Feed, Filter, visible
from services.notification.store import EventRecord, NotificationStore
from services.runtime.context import Principal, principal_var
from services.runtime.errors import OutOfRange
from services.runtime.events import TYPES

TENANT, OTHER = str(uuid.uuid4()), str(uuid.uuid4())
ALICE = Principal(user_id=str(uuid.uuid4()), tenant_id=TENANT, role="viewer")


def make(type_: str = "simulation.started", tenant: str = TENANT, **data) -> EventRecord:
    now = time.time()
    user = str(data.pop("user_id", ""))
    return EventRecord(
        0, str(uuid.uuid4()), tenant, TYPES[type_], user, "simulations/s", data, now, now
    )


async def nothing(session, event) -> None:
    pass


@pytest.fixture
async def feed(store: NotificationStore):
    running = Feed(store, retention_seconds=3600, poll_seconds=0.05)
    await running.open()
    stop = asyncio.Event()
    task = asyncio.create_task(running.run(stop))
    yield running
    stop.set()
    await task


async def take(stream, count: int) -> list[EventRecord]:
    async with asyncio.timeout(10):
        return [await anext(stream) for _ in range(count)]


async def test_an_event_is_recorded_once_by_id(feed: Feed) -> None:
    event = make()
    first, new = await feed.publish(event, nothing)
    again, repeated = await feed.publish(event, nothing)
    assert new and not repeated and again.seq == first.seq


async def test_replay_then_live_without_gap_or_duplicate(feed: Feed) -> None:
    recorded = [(await feed.publish(make(n=n), nothing))[0] for n in range(5)]
    stream = await feed.subscribe(ALICE, Filter(), Cursor(after=recorded[1].id))
    replayed = await take(stream, 3)
    live = [(await feed.publish(make(n=n), nothing))[0] for n in range(5, 8)]
    assert [e.id for e in replayed + await take(stream, 3)] == [e.id for e in recorded[2:] + live]
    await stream.aclose()
    assert feed.subscribers == 0


async def test_a_subscriber_too_slow_for_its_queue_catches_up_from_the_log(
    feed: Feed, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(feed_module, "QUEUE_LIMIT", 3)
    stream = await feed.subscribe(ALICE, Filter(), Cursor(start_time=time.time() - 1))
    recorded = [(await feed.publish(make(n=n), nothing))[0] for n in range(20)]
    await asyncio.sleep(0.2)  # the tailer overflows the queue meanwhile
    assert [e.id for e in await take(stream, 20)] == [e.id for e in recorded]
    await stream.aclose()


async def test_filters_and_tenants(feed: Feed) -> None:
    stream = await feed.subscribe(
        ALICE, Filter(types=frozenset({TYPES["simulation.succeeded"]})), Cursor()
    )
    pending = asyncio.ensure_future(anext(stream))
    await asyncio.sleep(0.1)
    await feed.publish(make("simulation.succeeded", tenant=OTHER), nothing)
    await feed.publish(make("simulation.started"), nothing)
    wanted, _ = await feed.publish(make("simulation.succeeded"), nothing)
    async with asyncio.timeout(10):
        assert (await pending).id == wanted.id
    await stream.aclose()


async def test_an_unknown_or_old_cursor_is_out_of_range(feed: Feed) -> None:
    with pytest.raises(OutOfRange, match="retention"):
        await feed.subscribe(ALICE, Filter(), Cursor(after=str(uuid.uuid4())))
    with pytest.raises(OutOfRange, match="retention"):
        await feed.subscribe(ALICE, Filter(), Cursor(start_time=time.time() - 7200))
    assert feed.subscribers == 0


def test_visibility_by_role_and_subject() -> None:
    bob = Principal(user_id=str(uuid.uuid4()), tenant_id=TENANT, role="analyst")
    admin = Principal(user_id=str(uuid.uuid4()), tenant_id=TENANT, role="admin")
    upload = make("file.uploaded", user_id=ALICE.user_id, owner_id=ALICE.user_id)
    shared = make("file.shared", user_id=bob.user_id, owner_id=ALICE.user_id)
    key = make("api_key.created", user_id=bob.user_id)
    disabled = make("webhook.disabled")
    assert [visible(p, upload) for p in (ALICE, bob, admin)] == [True, False, True]
    assert [visible(p, shared) for p in (ALICE, bob, admin)] == [True, True, True]
    assert [visible(p, key) for p in (ALICE, bob, admin)] == [False, True, True]
    assert [visible(p, disabled) for p in (ALICE, bob, admin)] == [False, False, True]
    assert not visible(Principal(user_id="x", tenant_id=OTHER, role="admin"), upload)


async def test_concurrent_publishes_commit_together_in_order_and_once(feed: Feed) -> None:
    events = [make(n=n) for n in range(50)]
    results = await asyncio.gather(*(feed.publish(e, nothing) for e in [*events, events[0]]))
    seqs = [stored.seq for stored, _ in results[:50]]
    assert seqs == sorted(seqs) and len(set(seqs)) == 50 and all(new for _, new in results[:50])
    assert results[50] == (results[0][0], False)  # the same id again: recorded once


async def test_a_subscription_closed_before_its_first_event_is_unregistered(feed: Feed) -> None:
    stream = await feed.subscribe(ALICE, Filter(), Cursor())
    assert feed.subscribers == 1
    await stream.aclose()  # never iterated: the client left before any event
    assert feed.subscribers == 0
    await stream.aclose()  # closing twice is harmless
    assert feed.subscribers == 0


class _Context:
    """What SubscribeSse reads of its gRPC context: the request's metadata."""

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return ()


async def test_an_sse_stream_its_client_left_leaves_no_task_pending(
    feed: Feed, store: NotificationStore
) -> None:
    servicer = NotificationServicer(Notifications(store, feed, None, False), None)  # type: ignore[arg-type]
    token = principal_var.set(ALICE)
    try:
        stream = servicer.SubscribeSse(pb.SubscribeSseRequest(), _Context())  # type: ignore[arg-type]
        await anext(stream)  # ": ok": the subscription stands
        waiting = asyncio.ensure_future(anext(stream))  # no event yet: it waits for one
        await asyncio.sleep(0.05)
        waiting.cancel()  # the client left: gRPC cancels the handler
        with contextlib.suppress(asyncio.CancelledError):
            await waiting
        await stream.aclose()
    finally:
        principal_var.reset(token)
    for _ in range(3):
        await asyncio.sleep(0)
    gets = [t for t in asyncio.all_tasks() if "Queue.get" in repr(t.get_coro())]
    assert gets == [] and feed.subscribers == 0
