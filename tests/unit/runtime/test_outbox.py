"""The transactional outbox: written with the change, relayed at least once, in order per key,
kept while the sink is down; on SQLite and a real PostgreSQL, the table made by the
migration helper."""

from __future__ import annotations

import asyncio
import itertools
import random
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import select

from services.runtime.config import ConfigError
from services.runtime.db import Database
from services.runtime.outbox import (
    Outbox,
    OutboxItem,
    OutboxRecord,
    Rejected,
    Relay,
    RelaySettings,
    outbox_table,
)
from tests.support.postgres import postgres  # noqa: F401  (session fixture)

_REVISION = '''"""A service's first revision: one table of its own, and the outbox."""
import sqlalchemy as sa
from alembic import op

from services.runtime.outbox import create_outbox_table

revision = "0001"
down_revision = None


def upgrade() -> None:
    op.create_table("things", sa.Column("id", sa.String(36), primary_key=True))
    create_outbox_table(op)
'''
things = sa.Table("things", sa.MetaData(), sa.Column("id", sa.String(36), primary_key=True))
_names = itertools.count()
FAST = RelaySettings(poll_seconds=30, retry_initial_seconds=0.01, retry_max_seconds=0.05)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    """A database migrated by a revision that calls ``create_outbox_table``."""
    versions = tmp_path / "migrations" / "versions"
    versions.mkdir(parents=True)
    (versions / "0001_initial.py").write_text(_REVISION)
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'outbox.db'}"
    else:
        url = request.getfixturevalue("postgres").create_database(f"outbox{next(_names)}")
    database = Database(url, tmp_path / "migrations")
    await database.open()
    yield database
    await database.close()


def item(key: str, n: int, topic: str = "events") -> OutboxItem:
    return OutboxItem(topic, key, f"{key}#{n}", f"{key}#{n}".encode())


async def change(db: Database, outbox: Outbox, *items: OutboxItem) -> None:
    """A change (a row of ``things``) and its records in one transaction."""
    async with db.transaction() as session:
        await session.execute(sa.insert(things).values(id=items[0].record_id))
        await outbox.add(session, *items)


async def pending(db: Database) -> list[dict]:
    async with db.reading() as session:
        rows = await session.execute(select(outbox_table).order_by(outbox_table.c.seq))
        return [dict(row._mapping) for row in rows]


class Receiver:
    """A sink that records what it accepted; it can be down, slow, or refuse a record."""

    def __init__(self) -> None:
        self.received: list[str] = []
        self.down = False
        self.refuse: set[str] = set()
        self.jitter = 0.0

    async def __call__(self, record: OutboxRecord) -> None:
        if self.jitter:
            await asyncio.sleep(random.uniform(0, self.jitter))
        if self.down:
            raise ConnectionError("receiver down")
        if record.record_id in self.refuse:
            raise Rejected("malformed")
        assert record.payload == record.record_id.encode()
        self.received.append(record.record_id)


async def test_records_commit_with_the_change_and_are_deleted_once_delivered(db) -> None:
    outbox, receiver = Outbox(), Receiver()
    await change(db, outbox, item("sim/1", 1), item("sim/1", 2))
    with pytest.raises(RuntimeError):
        async with db.transaction() as session:
            await outbox.add(session, item("sim/2", 1))
            raise RuntimeError("the change fails")
    assert [r["record_id"] for r in await pending(db)] == ["sim/1#1", "sim/1#2"]

    assert await Relay(db, outbox, "events", receiver, FAST).deliver_pending() == (2, 0)
    assert receiver.received == ["sim/1#1", "sim/1#2"]
    assert await pending(db) == []


async def test_each_key_keeps_its_order_while_keys_go_concurrently(db) -> None:
    outbox, receiver = Outbox(), Receiver()
    receiver.jitter = 0.005  # deliveries finish out of order unless the relay orders them
    for n in range(8):
        for key in ("a", "b", "c"):
            await change(db, outbox, item(key, n))
    relay = Relay(db, outbox, "events", receiver, RelaySettings(batch=5))
    while (await relay.deliver_pending())[0]:
        pass
    for key in ("a", "b", "c"):
        assert [r for r in receiver.received if r.startswith(f"{key}#")] == [
            f"{key}#{n}" for n in range(8)
        ]
    assert len(receiver.received) == 24


async def test_a_sink_that_is_down_loses_nothing_and_counts_attempts(db) -> None:
    outbox, receiver = Outbox(), Receiver()
    receiver.down = True
    await change(db, outbox, item("k", 1), item("k", 2))
    relay = Relay(db, outbox, "events", receiver, FAST)
    assert await relay.deliver_pending() == (0, 1)
    assert await relay.deliver_pending() == (0, 1)
    rows = await pending(db)
    assert [(r["record_id"], r["attempts"]) for r in rows] == [("k#1", 2), ("k#2", 0)]
    assert rows[0]["last_error"] == "ConnectionError: receiver down"

    receiver.down = False
    assert await relay.deliver_pending() == (2, 0)
    assert receiver.received == ["k#1", "k#2"]


async def test_a_refused_record_is_kept_dead_and_its_key_goes_on(db) -> None:
    outbox, receiver = Outbox(), Receiver()
    receiver.refuse = {"k#1"}
    await change(db, outbox, item("k", 1), item("k", 2))
    assert await Relay(db, outbox, "events", receiver, FAST).deliver_pending() == (1, 0)
    assert receiver.received == ["k#2"]
    [dead] = await pending(db)
    assert (dead["record_id"], dead["dead"], dead["last_error"]) == ("k#1", True, "malformed")
    assert await Relay(db, outbox, "events", receiver, FAST).deliver_pending() == (0, 0)


async def test_topics_have_their_own_relays(db) -> None:
    outbox, events, audit = Outbox(), Receiver(), Receiver()
    await change(db, outbox, item("k", 1, "events"), item("k", 2, "audit"))
    assert await Relay(db, outbox, "audit", audit, FAST).deliver_pending() == (1, 0)
    assert (events.received, audit.received) == ([], ["k#2"])
    assert [r["topic"] for r in await pending(db)] == ["events"]


async def test_the_running_relay_is_woken_by_a_commit_and_retries_with_backoff(db) -> None:
    outbox, receiver = Outbox(), Receiver()
    stop = asyncio.Event()
    task = asyncio.create_task(Relay(db, outbox, "events", receiver, FAST).run(stop))
    try:
        await asyncio.sleep(0.05)  # idle: the poll interval is 30 s
        await change(db, outbox, item("k", 1))
        await _until(lambda: receiver.received == ["k#1"])
        receiver.down = True
        await change(db, outbox, item("k", 2))
        await asyncio.sleep(0.2)  # several failed passes, backing off
        assert (await pending(db))[0]["attempts"] >= 2
        receiver.down = False
        await _until(lambda: receiver.received == ["k#1", "k#2"])
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)
    assert await pending(db) == []


async def test_a_relay_backing_off_tries_again_as_soon_as_its_peer_is_back(db) -> None:
    outbox, receiver, back = Outbox(), Receiver(), asyncio.Event()
    receiver.down = True
    await change(db, outbox, item("k", 1))
    slow = RelaySettings(poll_seconds=30, retry_initial_seconds=60, retry_max_seconds=60)
    stop = asyncio.Event()
    relay = Relay(db, outbox, "events", receiver, slow, back.wait)
    task = asyncio.create_task(relay.run(stop))
    try:
        await _until(lambda: relay._failures == 1)  # failed once: backing off 30-60 s
        receiver.down = False
        await asyncio.sleep(0.3)
        assert receiver.received == []  # still backing off
        back.set()  # the peer's channel is READY again
        await _until(lambda: receiver.received == ["k#1"])
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)


async def test_two_relays_on_one_database_deliver_every_record_in_order(db) -> None:
    """Two processes sharing a database: duplicates possible, gaps and reordering not."""
    outbox, receiver = Outbox(), Receiver()
    receiver.jitter = 0.003
    for n in range(10):
        await change(db, outbox, item("k", n))
    first = Relay(db, outbox, "events", receiver, RelaySettings(batch=3))
    second = Relay(db, outbox, "events", receiver, RelaySettings(batch=4))
    for _ in range(10):
        await asyncio.gather(first.deliver_pending(), second.deliver_pending())
    assert await pending(db) == []
    firsts = list(dict.fromkeys(receiver.received))  # a subscriber deduplicating by id
    assert firsts == [f"k#{n}" for n in range(10)]


def test_relay_settings_come_from_the_environment() -> None:
    settings = RelaySettings.from_env(
        {"ALEA_OUTBOX_POLL_SECONDS": "0.1", "ALEA_OUTBOX_RETRY_MAX_SECONDS": "2"}
    )
    assert (settings.poll_seconds, settings.retry_max_seconds) == (0.1, 2.0)
    assert all(1.0 <= settings.backoff(20) <= 2.0 for _ in range(50))
    assert settings.backoff(1) <= settings.retry_initial_seconds
    with pytest.raises(ConfigError, match="ALEA_OUTBOX_POLL_SECONDS"):
        RelaySettings.from_env({"ALEA_OUTBOX_POLL_SECONDS": "soon"})


async def _until(condition) -> None:
    async with asyncio.timeout(5):
        while not condition():  # noqa: ASYNC110  (polls state another task changes)
            await asyncio.sleep(0.01)
