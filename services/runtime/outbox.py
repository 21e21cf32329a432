"""The transactional outbox: records written with the change they describe, relayed at least once.

A service that must tell another one about a change (an event for notification, an audit
entry for admin) does not call it from the request path: it writes an
:class:`OutboxItem` into its own ``outbox`` table **in the same transaction** as the
change (:meth:`Outbox.add`). Either both commit or neither does, so a crash can never
lose the record of a committed change, nor announce a change that was rolled back.

A :class:`Relay` (a ``Service.background`` task, one per topic and process) delivers the
pending records of its topic to a sink (a peer RPC) and deletes each once the sink has
accepted it:

- **At least once.** A record is deleted only after the sink accepted it; a process
  killed in between delivers it again after restarting, so sinks deduplicate by
  ``record_id`` (notification's PublishEvent by event id, admin's RecordAuditEvent by
  request id).
- **In order per key.** Records are read in commit order (``seq``) and those sharing a
  ``key`` (a resource, e.g. ``simulations/<id>``) are delivered one after the other, each
  only once the previous one was accepted; different keys go concurrently. Writers
  change the resource's row before adding the record, so the row lock (PostgreSQL) or
  the single writer (SQLite) makes ``seq`` order per key equal to commit order. Several
  processes sharing one database (simulation's worker processes) each run a relay: a
  record may then reach the sink twice, never out of order, since every relay sends a
  key's records in ``seq`` order and waits for each to be accepted.
- **Nothing lost while the sink is down.** A sink that fails (:class:`Unavailable`,
  a timeout, anything but :class:`Rejected`) stops its key for this pass; the relay then
  backs off exponentially with jitter (``ALEA_OUTBOX_RETRY_MAX_SECONDS`` at most) and
  tries again, keeping every record meanwhile. ``attempts`` and ``last_error`` on the
  waiting record say why it waits. A relay given its peer's ``reconnected`` (a peer
  service's channel coming back, :meth:`services.runtime.peers.Peers.reconnected`) tries
  again as soon as the peer is back rather than when the backoff ends; a peer that
  answers but fails only sees the backoff.
- **A record the sink refuses for good** (:class:`Rejected`: it is malformed) would
  block its key forever; it is kept, marked ``dead`` and logged as an error, and the
  key's later records go on.

A topic may be copied (:meth:`Outbox.copy`): each of its records is also written under
the other topics, each relayed on its own, so one sink being down never holds up
another (events go to notification and, for usage, to analytics).

New records wake the relay of the same process as soon as their transaction commits;
records written by other processes are found by polling every
``ALEA_OUTBOX_POLL_SECONDS``.

Each service's migrations create the table with :func:`create_outbox_table` (one
Alembic revision calling it); its shape is fixed: a change gets a new function and
revision.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import sqlalchemy as sa
from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from services.runtime.config import Environment
from services.runtime.db import Database, after_commit

__all__ = [
    "Outbox",
    "OutboxItem",
    "OutboxRecord",
    "Rejected",
    "Relay",
    "RelaySettings",
    "Sink",
    "create_outbox_table",
    "outbox_table",
]

log = logging.getLogger(__name__)


def _columns() -> list[sa.Column[Any]]:
    return [
        # SQLite's INTEGER PRIMARY KEY is the rowid: always above every row present.
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
        sa.Column("topic", sa.String(32), nullable=False),
        sa.Column("key", sa.String(512), nullable=False),
        sa.Column("record_id", sa.String(128), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.Column("create_time", sa.Float(), nullable=False),  # UNIX seconds
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=False),
        sa.Column("dead", sa.Boolean(), nullable=False),
    ]


outbox_table = sa.Table("outbox", sa.MetaData(), *_columns())
"""Pending records of every topic, ``seq`` in commit order."""

_INDEX = ("ix_outbox_topic_seq", ["topic", "dead", "seq"])


def create_outbox_table(op: Any) -> None:
    """Create the ``outbox`` table; call it from one Alembic revision of a service
    (``op`` is ``alembic.op``)."""
    op.create_table("outbox", *_columns())
    op.create_index(_INDEX[0], "outbox", _INDEX[1])


@dataclass(frozen=True)
class OutboxItem:
    """A record to deliver: ``topic`` names the relay (``events``, ``audit``), ``key`` the
    resource whose records keep their order, ``record_id`` the id the sink deduplicates
    by, ``payload`` the serialised message."""

    topic: str
    key: str
    record_id: str
    payload: bytes


@dataclass(frozen=True)
class OutboxRecord:
    """A pending record as the relay reads it."""

    seq: int
    topic: str
    key: str
    record_id: str
    payload: bytes
    create_time: float
    attempts: int


Sink = Callable[[OutboxRecord], Awaitable[None]]
"""Delivers one record; returns once the receiver has it (or already had it). Raises
:class:`Rejected` for a record that can never be accepted, anything else to retry."""


class Rejected(Exception):
    """The sink refuses the record for good (it is malformed): it is marked dead."""


class Outbox:
    """Writes records inside a caller's transaction and wakes this process's relays."""

    def __init__(self) -> None:
        self._wakes: dict[str, asyncio.Event] = {}
        self._copies: dict[str, tuple[str, ...]] = {}

    def copy(self, topic: str, *others: str) -> None:
        """From now on, write every record of ``topic`` under each of ``others`` too."""
        self._copies[topic] = tuple(dict.fromkeys((*self._copies.get(topic, ()), *others)))

    def wakeup(self, topic: str) -> asyncio.Event:
        """The event set whenever records of ``topic`` were committed in this process."""
        return self._wakes.setdefault(topic, asyncio.Event())

    async def add(self, session: AsyncConnection, *items: OutboxItem) -> None:
        """Write ``items`` in ``session``'s transaction (after the change they describe,
        so that its row lock orders them); the relays wake once it commits."""
        items = tuple(
            copy
            for item in items
            for copy in (item, *(replace(item, topic=t) for t in self._copies.get(item.topic, ())))
        )
        if not items:
            return
        now = time.time()
        await session.execute(
            insert(outbox_table),
            [
                {
                    "topic": item.topic,
                    "key": item.key,
                    "record_id": item.record_id,
                    "payload": item.payload,
                    "create_time": now,
                    "attempts": 0,
                    "last_error": "",
                    "dead": False,
                }
                for item in items
            ],
        )
        topics = {item.topic for item in items}

        def committed() -> None:
            for topic in topics:
                self.wakeup(topic).set()

        after_commit(session, committed)


@dataclass(frozen=True)
class RelaySettings:
    """How a relay polls, batches and backs off."""

    poll_seconds: float = 0.5
    batch: int = 200
    concurrency: int = 8
    retry_initial_seconds: float = 0.2
    retry_max_seconds: float = 30.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> RelaySettings:
        """``ALEA_OUTBOX_POLL_SECONDS`` (0.5) and ``ALEA_OUTBOX_RETRY_MAX_SECONDS`` (30)."""
        environment = Environment(env)
        return cls(
            poll_seconds=environment.number("ALEA_OUTBOX_POLL_SECONDS", 0.5, minimum=0.01),
            retry_max_seconds=environment.number(
                "ALEA_OUTBOX_RETRY_MAX_SECONDS", 30.0, minimum=0.01
            ),
        )

    def backoff(self, failures: int) -> float:
        """Seconds to wait after ``failures`` failed passes in a row: exponential, capped,
        with full jitter over its upper half (relays of several processes spread out)."""
        ceiling = min(self.retry_max_seconds, self.retry_initial_seconds * 2.0 ** (failures - 1))
        return ceiling * random.uniform(0.5, 1.0)


@dataclass
class _Pass:
    """What one pass over the pending records achieved."""

    delivered: list[int]
    dead: list[tuple[int, str]]
    failed: list[tuple[int, str]]
    full: bool


class Relay:
    """Delivers the pending records of one topic to ``sink``; see the module docstring.

    ``run`` is a ``Service.background`` task; :meth:`deliver_pending` is one pass (tests).
    """

    def __init__(
        self,
        db: Database,
        outbox: Outbox,
        topic: str,
        sink: Sink,
        settings: RelaySettings | None = None,
        reconnected: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.db, self.topic, self.sink = db, topic, sink
        self.settings = settings or RelaySettings()
        self.reconnected = reconnected
        self._wake = outbox.wakeup(topic)
        self._failures = 0
        # Built once: a relay polls every poll interval, and building the statement cost
        # more than running it on an empty outbox.
        table = outbox_table
        self._pending_query = (
            select(
                table.c.seq,
                table.c.topic,
                table.c.key,
                table.c.record_id,
                table.c.payload,
                table.c.create_time,
                table.c.attempts,
            )
            .where(table.c.topic == topic, table.c.dead.is_(False))
            .order_by(table.c.seq)
            .limit(self.settings.batch)
        )

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until ``stop``: at once when woken, else every poll interval, backing
        off while the sink (or the database) fails."""
        while not stop.is_set():
            self._wake.clear()
            try:
                outcome = await self._pass()
                failing, more = bool(outcome.failed), outcome.full
            except Exception:  # the database is away: keep trying, lose nothing
                log.warning("outbox %s: cannot reach the database", self.topic, exc_info=True)
                failing, more = True, False
            if failing:
                self._failures += 1
                back = () if self.reconnected is None else (self.reconnected(),)
                await _wait(stop, self.settings.backoff(self._failures), *back)
                continue
            self._failures = 0
            if not more:  # a full batch means more is waiting: go on at once
                await _wait(stop, self.settings.poll_seconds, self._wake.wait())

    async def deliver_pending(self) -> tuple[int, int]:
        """One pass: (records delivered, records that failed and wait)."""
        outcome = await self._pass()
        return len(outcome.delivered), len(outcome.failed)

    async def _pass(self) -> _Pass:
        records = await self._pending()
        by_key: dict[str, list[OutboxRecord]] = {}
        for record in records:
            by_key.setdefault(record.key, []).append(record)
        outcome = _Pass([], [], [], len(records) >= self.settings.batch)
        gate = asyncio.Semaphore(self.settings.concurrency)

        async def deliver_key(queue: list[OutboxRecord]) -> None:
            async with gate:
                for record in queue:
                    try:
                        await self.sink(record)
                    except Rejected as exc:
                        log.error(
                            "outbox %s: record %s refused for good; kept as dead: %s",
                            self.topic,
                            record.record_id,
                            exc,
                        )
                        outcome.dead.append((record.seq, str(exc)))
                    except Exception as exc:  # retried: the key waits behind this record
                        outcome.failed.append((record.seq, f"{type(exc).__name__}: {exc}"))
                        return
                    else:
                        outcome.delivered.append(record.seq)

        await asyncio.gather(*(deliver_key(queue) for queue in by_key.values()))
        await self._settle(outcome)
        if outcome.failed:
            log.warning(
                "outbox %s: %d key(s) wait for the sink: %s",
                self.topic,
                len(outcome.failed),
                outcome.failed[0][1],
            )
        return outcome

    async def _pending(self) -> list[OutboxRecord]:
        async with self.db.reading() as session:
            rows = (await session.execute(self._pending_query)).all()
        return [OutboxRecord(**row._mapping) for row in rows]

    async def _settle(self, outcome: _Pass) -> None:
        """Delete what was delivered, mark the dead, count the failed attempts."""
        if not (outcome.delivered or outcome.dead or outcome.failed):
            return
        table = outbox_table
        async with self.db.transaction() as session:
            if outcome.delivered:
                await session.execute(delete(table).where(table.c.seq.in_(outcome.delivered)))
            for seq, error in outcome.dead:
                await session.execute(
                    update(table)
                    .where(table.c.seq == seq)
                    .values(dead=True, last_error=error[:2000], attempts=table.c.attempts + 1)
                )
            for seq, error in outcome.failed:
                await session.execute(
                    update(table)
                    .where(table.c.seq == seq)
                    .values(last_error=error[:2000], attempts=table.c.attempts + 1)
                )


async def _wait(stop: asyncio.Event, seconds: float, *wakes: Awaitable[Any]) -> None:
    """Until ``stop`` is set, any of ``wakes`` is done, or ``seconds`` pass."""
    waiters = [asyncio.ensure_future(stop.wait()), *map(asyncio.ensure_future, wakes)]
    try:
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*waiters, return_exceptions=True)
