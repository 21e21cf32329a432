"""The event log and its live feed: record each event once, stream it to whoever may see it.

**Recording** (:meth:`Feed.publish`): an event whose id is already in the log is not
recorded again (producers' relays deliver at least once). One transaction at a time
writes the log — in this process a single writer taking every event published meanwhile
(group commit), across replicas a PostgreSQL advisory lock — so the log's ``seq`` order
is its commit order. The webhook deliveries of a new event are
created in the same transaction (``fan_out``).

**Streaming** (:meth:`Feed.subscribe`): a subscriber is registered for live events
*before* the log is replayed from its cursor, and live events not above the last
replayed ``seq`` are dropped; so a consumer that resumes after the id of the last event
it received gets every later event exactly once, then the live ones. One tailer per
process reads the log after the last ``seq`` it has seen (woken by each local commit,
and every ``poll_seconds`` for events recorded by another replica) and hands each event
to the queues of the subscribers that want it and may see it: subscribers alike (the
same caller and filter, such as one dashboard open many times) form one audience whose
filter is checked once per event, and a subscriber is woken only for what it receives.
A subscriber too slow to keep up (its queue
full) goes back to replaying from the log where it stopped: it never loses an event.

**Who sees what** (:func:`visible`): every user of the tenant sees simulation events and
quota warnings; file events are seen by the file's owner and, for a share, by the user
it was shared with; user and API key events by the user they concern; admins see
everything of their tenant, webhook events included.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from services.notification.store import EventRecord, FanOut, NotificationStore
from services.runtime.context import Principal
from services.runtime.errors import OutOfRange
from services.runtime.events import NAMES

__all__ = ["Cursor", "Feed", "Filter", "Subscription", "concerns", "visible"]

log = logging.getLogger(__name__)
REPLAY_PAGE = 500
GROUP_COMMIT = 200
QUEUE_LIMIT = 10_000
_EVERYONE = ("simulation.", "quota.")


def visible(principal: Principal, event: EventRecord) -> bool:
    """Whether ``principal`` (a user of the event's tenant) may see ``event``."""
    if principal.tenant_id != event.tenant_id:
        return False
    if principal.role == "admin" or NAMES.get(event.type, "").startswith(_EVERYONE):
        return True
    if NAMES.get(event.type, "").startswith("webhook."):
        return False
    return principal.user_id in (event.user_id, event.data.get("owner_id"))


def concerns(user_id: str, event: EventRecord) -> bool:
    """Whether ``event`` is about ``user_id`` (theirs, or tenant-wide)."""
    return not event.user_id or user_id in (event.user_id, event.data.get("owner_id"))


@dataclass(frozen=True)
class Filter:
    """What a subscriber asked for: types (empty: all), a resource or collection prefix
    (ending with ``/``), only the caller's own events, the past only (no live events)."""

    types: frozenset[int] = frozenset()
    resource: str = ""
    only_mine: bool = False
    replay_only: bool = False

    def admits(self, principal: Principal, event: EventRecord) -> bool:
        if self.types and event.type not in self.types:
            return False
        if self.resource:
            collection = self.resource.endswith("/")
            if collection and not event.resource.startswith(self.resource):
                return False
            if not collection and event.resource != self.resource:
                return False
        if self.only_mine and not concerns(principal.user_id, event):
            return False
        return visible(principal, event)


@dataclass(frozen=True)
class Cursor:
    """Where a feed starts: after an event id, at a time, or (neither) live only."""

    after: str = ""
    start_time: float | None = None


@dataclass(frozen=True)
class _Audience:
    """Live subscribers alike: who they are and what they asked for."""

    principal: Principal
    wanted: Filter

    def admits(self, event: EventRecord) -> bool:
        return self.wanted.admits(self.principal, event)


@dataclass(eq=False)
class _Subscriber:
    audience: _Audience
    queue: asyncio.Queue[EventRecord] = field(
        default_factory=lambda: asyncio.Queue(maxsize=QUEUE_LIMIT)
    )
    lagging: bool = False


class Feed:
    """The log's writer and this process's fan-out to live subscribers."""

    def __init__(
        self, store: NotificationStore, retention_seconds: float, poll_seconds: float
    ) -> None:
        self.store = store
        self.retention_seconds = retention_seconds
        self.poll_seconds = poll_seconds
        self._pending: list[tuple[EventRecord, FanOut, asyncio.Future[Any]]] = []
        self._writer: asyncio.Future[None] | None = None
        self._wake = asyncio.Event()
        # tenant -> its audiences -> their subscribers
        self._audiences: dict[str, dict[_Audience, set[_Subscriber]]] = {}
        self._seen: int | None = None

    @property
    def subscribers(self) -> int:
        return sum(len(group) for by in self._audiences.values() for group in by.values())

    async def publish(self, event: EventRecord, fan_out: FanOut) -> tuple[EventRecord, bool]:
        """Record ``event`` once (by id); returns (the recorded event, whether it is new).

        Events published while a transaction is being written wait and go together into
        the next one (group commit): one writer at a time keeps ``seq`` in commit order.
        """
        done: asyncio.Future[tuple[EventRecord, bool]] = asyncio.get_running_loop().create_future()
        self._pending.append((event, fan_out, done))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.ensure_future(self._write())
        return await done

    async def _write(self) -> None:
        while self._pending:
            batch, self._pending = self._pending[:GROUP_COMMIT], self._pending[GROUP_COMMIT:]
            try:
                outcome = await self.store.record_events([(e, f) for e, f, _ in batch])
            except BaseException as exc:
                for _, _, done in batch:
                    if not done.done():
                        done.set_exception(exc)
                if not isinstance(exc, Exception):
                    raise
                continue
            for (_, _, done), result in zip(batch, outcome, strict=True):
                if not done.done():
                    done.set_result(result)
            self._wake.set()

    # -- live fan-out ----------------------------------------------------------------------

    async def open(self) -> None:
        """Start the live fan-out at the log's current end; call it before serving. Were a
        subscriber registered first, an event committed between its replay and the
        tailer's first read of the log's end would reach it neither way."""
        self._seen = await self.store.last_seq()

    async def run(self, stop: asyncio.Event) -> None:
        """The tailer (a background task): hand new events of the log to subscribers."""
        while not stop.is_set():
            self._wake.clear()
            try:
                await self._tail()
            except Exception:  # the database is away: subscribers wait, nothing is lost
                log.warning("feed: cannot read the event log", exc_info=True)
            waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self._wake.wait())]
            await asyncio.wait(waiters, timeout=self.poll_seconds, return_when="FIRST_COMPLETED")
            for waiter in waiters:
                waiter.cancel()

    async def _tail(self) -> None:
        if self._seen is None:
            self._seen = await self.store.last_seq()
        while True:
            batch = await self.store.events_after(self._seen, REPLAY_PAGE)
            for event in batch:
                for audience, group in self._audiences.get(event.tenant_id, {}).items():
                    if not audience.admits(event):
                        continue
                    for subscriber in group:
                        if subscriber.lagging:
                            continue
                        try:
                            subscriber.queue.put_nowait(event)
                        except asyncio.QueueFull:
                            subscriber.lagging = True
                self._seen = event.seq
            if len(batch) < REPLAY_PAGE:
                return

    # -- subscribing -----------------------------------------------------------------------

    async def subscribe(self, principal: Principal, wanted: Filter, cursor: Cursor) -> Subscription:
        """The events ``principal`` may see and asked for, from ``cursor`` on, then live.

        Checks the cursor (OutOfRange when expired) and registers the subscriber before it
        returns, so a caller can tell its client the subscription stands; close it
        (``aclose``) when done, iterated or not.
        """
        last = await self._start(principal.tenant_id, cursor)
        return Subscription(self, _Audience(principal, wanted), last)

    def _register(self, audience: _Audience) -> _Subscriber:
        subscriber = _Subscriber(audience)
        tenant = self._audiences.setdefault(audience.principal.tenant_id, {})
        tenant.setdefault(audience, set()).add(subscriber)
        return subscriber

    def _unregister(self, subscriber: _Subscriber) -> None:
        """Forget ``subscriber`` (once: a closed subscription may call it again)."""
        audience = subscriber.audience
        tenant = self._audiences.get(audience.principal.tenant_id, {})
        group = tenant.get(audience, set())
        group.discard(subscriber)
        if not group:
            tenant.pop(audience, None)
        if not tenant:
            self._audiences.pop(audience.principal.tenant_id, None)

    async def _follow(
        self, audience: _Audience, last: int | None, subscription: Subscription
    ) -> AsyncGenerator[EventRecord, None]:
        subscriber = subscription.subscriber
        try:
            while True:
                if last is not None:
                    async for event in self._replay(audience.principal.tenant_id, last):
                        last = event.seq
                        if audience.admits(event):
                            yield event
                if audience.wanted.replay_only:
                    return
                while not subscriber.lagging:
                    event = await subscriber.queue.get()  # admitted by the tailer
                    if last is not None and event.seq <= last:
                        continue
                    last = event.seq
                    yield event
                # Too slow for the live queue: read on from the log where it stopped.
                self._unregister(subscriber)
                subscriber = subscription.subscriber = self._register(audience)
                if last is None:
                    last = await self.store.last_seq()
        finally:
            self._unregister(subscriber)

    async def _replay(self, tenant_id: str, after: int) -> AsyncIterator[EventRecord]:
        while True:
            page = await self.store.events_after(after, REPLAY_PAGE, tenant_id)
            for event in page:
                yield event
                after = event.seq
            if len(page) < REPLAY_PAGE:
                return

    async def _start(self, tenant_id: str, cursor: Cursor) -> int | None:
        """The ``seq`` to replay after (None: live only); OutOfRange for an expired cursor."""
        oldest = time.time() - self.retention_seconds
        days = f"{self.retention_seconds / 86400:g}"
        if cursor.after:
            event = await self.store.event(tenant_id, cursor.after)
            if event is None:
                raise OutOfRange(
                    f"event {cursor.after} is not in the event log: it is older than the "
                    f"{days}-day retention or not an event of this tenant; resubscribe "
                    "with start_time (and expect a gap) or without a cursor"
                )
            return event.seq
        if cursor.start_time is not None:
            if cursor.start_time < oldest:
                raise OutOfRange(
                    f"start_time is older than the {days}-day retention of the event log; "
                    "events before it are gone"
                )
            return await self.store.seq_before(tenant_id, cursor.start_time)
        return None

    async def purge(self, stop: asyncio.Event, every: float = 3600.0) -> None:
        """Forget what is older than the retention, every ``every`` seconds (a background task)."""
        while not stop.is_set():
            try:
                removed = await self.store.purge(time.time() - self.retention_seconds)
                if removed:
                    log.info("feed: purged events past retention", extra={"count": removed})
            except Exception:
                log.warning("feed: retention purge failed; retrying later", exc_info=True)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), every)


class Subscription:
    """One registered subscriber's events (an async iterator). ``aclose`` ends it and
    unregisters it whether or not it was ever iterated: a generator never started runs no
    ``finally``, and a client gone before its first event would stay registered, its queue
    filling, for as long as the process runs."""

    def __init__(self, feed: Feed, audience: _Audience, last: int | None) -> None:
        self._feed = feed
        self.subscriber = feed._register(audience)
        self._events = feed._follow(audience, last, self)

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> EventRecord:
        return await anext(self._events)

    async def aclose(self) -> None:
        try:
            await self._events.aclose()
        finally:
            self._feed._unregister(self.subscriber)
