"""All of notification's SQL: the event log, webhooks and deliveries, emails, preferences.

Times are UNIX seconds (floats) so both databases compare them alike. ``events.seq`` is
the order of the log: events are recorded one at a time (see ``feed.Feed.publish``), so
a higher ``seq`` always committed later, and a feed resumed after an event's ``seq``
misses nothing. Every method over a tenant's rows takes the tenant first; the background
loops (dispatch, email, retention) read due rows across tenants by nature.
"""

from __future__ import annotations

import zlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy import delete, func, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from services.runtime.db import Database, Reader, rowcount
from services.runtime.events import ENUM_NAMES
from services.runtime.listing import Listing, ListRequest, Page, enum, timestamp
from services.runtime.listing import text as text_field
from services.runtime.outbox import Outbox, OutboxItem

__all__ = [
    "DELIVERIES",
    "WEBHOOKS",
    "Delivery",
    "Email",
    "EventRecord",
    "FanOut",
    "NotificationStore",
    "Preferences",
    "Webhook",
]

metadata = sa.MetaData()
_SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

events = sa.Table(
    "events",
    metadata,
    sa.Column("seq", _SEQ, primary_key=True),
    sa.Column("id", sa.String(36), nullable=False, unique=True),
    sa.Column("tenant_id", sa.String(36), nullable=False),
    sa.Column("type", sa.Integer(), nullable=False),
    sa.Column("user_id", sa.String(36), nullable=False),
    sa.Column("resource", sa.String(512), nullable=False),
    sa.Column("data", sa.JSON(), nullable=False),
    sa.Column("event_time", sa.Float(), nullable=False),
    sa.Column("record_time", sa.Float(), nullable=False),
)
webhooks = sa.Table(
    "webhooks",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("tenant_id", sa.String(36), nullable=False),
    sa.Column("url", sa.String(2048), nullable=False),
    sa.Column("event_types", sa.JSON(), nullable=False),
    sa.Column("display_name", sa.String(200), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("disabled_reason", sa.Text(), nullable=False),
    sa.Column("secret", sa.String(128), nullable=False),
    sa.Column("previous_secret", sa.String(128), nullable=True),
    sa.Column("previous_secret_expire_time", sa.Float(), nullable=True),
    sa.Column("failing_since", sa.Float(), nullable=True),
    sa.Column("request_id", sa.String(36), nullable=True),
    sa.Column("create_time", sa.Float(), nullable=False),
    sa.Column("update_time", sa.Float(), nullable=False),
)
deliveries = sa.Table(
    "deliveries",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("tenant_id", sa.String(36), nullable=False),
    sa.Column("webhook_id", sa.String(36), nullable=False),
    sa.Column("event_id", sa.String(36), nullable=False),
    sa.Column("event_type", sa.Integer(), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer(), nullable=False),
    sa.Column("last_status_code", sa.Integer(), nullable=False),
    sa.Column("last_error", sa.Text(), nullable=False),
    sa.Column("next_attempt_time", sa.Float(), nullable=True),
    sa.Column("manual", sa.Boolean(), nullable=False),
    sa.Column("attempt_log", sa.JSON(), nullable=False),
    sa.Column("create_time", sa.Float(), nullable=False),
    sa.Column("update_time", sa.Float(), nullable=False),
)
emails = sa.Table(
    "emails",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("tenant_id", sa.String(36), nullable=False),
    sa.Column("dedup_key", sa.String(128), nullable=False, unique=True),
    sa.Column("recipient", sa.String(254), nullable=False),
    sa.Column("subject", sa.String(200), nullable=False),
    sa.Column("text_body", sa.Text(), nullable=False),
    sa.Column("html_body", sa.Text(), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer(), nullable=False),
    sa.Column("last_error", sa.Text(), nullable=False),
    sa.Column("next_attempt_time", sa.Float(), nullable=True),
    sa.Column("create_time", sa.Float(), nullable=False),
    sa.Column("update_time", sa.Float(), nullable=False),
)
preferences = sa.Table(
    "preferences",
    metadata,
    sa.Column("user_id", sa.String(36), primary_key=True),
    sa.Column("tenant_id", sa.String(36), nullable=False),
    sa.Column("email_enabled", sa.Boolean(), nullable=False),
    sa.Column("email_event_types", sa.JSON(), nullable=False),
    sa.Column("email_only_mine", sa.Boolean(), nullable=False),
    sa.Column("quiet", sa.Boolean(), nullable=False),
    sa.Column("create_time", sa.Float(), nullable=False),
    sa.Column("update_time", sa.Float(), nullable=False),
)
cursors = sa.Table(
    "cursors",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("seq", sa.BigInteger(), nullable=False),
)

WEBHOOKS = Listing(
    {
        "url": text_field(webhooks.c.url),
        "display_name": text_field(webhooks.c.display_name),
        "state": enum(webhooks.c.state, {"STATE_ACTIVE": "active", "STATE_DISABLED": "disabled"}),
        "create_time": timestamp(webhooks.c.create_time, epoch=True),
    },
    key=webhooks.c.id,
    default_order="create_time",
)
"""ListWebhooks: the fields its ``filter`` and ``order_by`` take (see notification.proto)."""

DELIVERIES = Listing(
    {
        "webhook_id": text_field(deliveries.c.webhook_id, sortable=False),
        "event_id": text_field(deliveries.c.event_id, sortable=False),
        "event_type": enum(deliveries.c.event_type, ENUM_NAMES),
        "state": enum(
            deliveries.c.state,
            {
                "STATE_PENDING": "pending",
                "STATE_SUCCEEDED": "succeeded",
                "STATE_FAILED": "failed",
            },
        ),
        "create_time": timestamp(deliveries.c.create_time, epoch=True),
    },
    key=deliveries.c.id,
    default_order="create_time desc",
)
"""ListDeliveries: the fields its ``filter`` and ``order_by`` take (see notification.proto)."""


@dataclass(frozen=True)
class EventRecord:
    """One event of the log."""

    seq: int
    id: str
    tenant_id: str
    type: int
    user_id: str
    resource: str
    data: dict[str, Any]
    event_time: float
    record_time: float


@dataclass(frozen=True)
class Webhook:
    """A tenant's endpoint; ``state`` is ``active`` or ``disabled``."""

    id: str
    tenant_id: str
    url: str
    event_types: list[int]
    display_name: str
    state: str
    disabled_reason: str
    secret: str
    previous_secret: str | None
    previous_secret_expire_time: float | None
    failing_since: float | None
    request_id: str | None
    create_time: float
    update_time: float


@dataclass(frozen=True)
class Delivery:
    """One event to one webhook; ``state`` is ``pending``, ``succeeded`` or ``failed``."""

    id: str
    tenant_id: str
    webhook_id: str
    event_id: str
    event_type: int
    state: str
    attempts: int
    last_status_code: int
    last_error: str
    next_attempt_time: float | None
    manual: bool
    attempt_log: list[dict[str, Any]]
    create_time: float
    update_time: float


@dataclass(frozen=True)
class Email:
    """A message to send; ``state`` is ``pending``, ``sent`` or ``failed``."""

    id: str
    tenant_id: str
    dedup_key: str
    recipient: str
    subject: str
    text_body: str
    html_body: str
    state: str
    attempts: int
    last_error: str
    next_attempt_time: float | None
    create_time: float
    update_time: float


@dataclass(frozen=True)
class Preferences:
    """A user's stored choices (absent: the defaults of ``domain.default_preferences``)."""

    user_id: str
    tenant_id: str
    email_enabled: bool
    email_event_types: list[int]
    email_only_mine: bool
    quiet: bool
    create_time: float
    update_time: float


_LOG_LOCK = zlib.crc32(b"alea.notification.events")

FanOut = Callable[[AsyncConnection, EventRecord], Awaitable[None]]
"""What else a new event causes, written in the transaction that records it."""


class NotificationStore:
    """Every read and write of the notification tables; one transaction per method."""

    def __init__(self, db: Database, outbox: Outbox | None = None) -> None:
        self.db = db
        self.outbox = outbox or Outbox()

    async def pending_deliveries(self) -> int:
        """Webhook deliveries of every tenant waiting to be sent or retried (the overview)."""
        query = select(func.count()).where(deliveries.c.state == "pending")
        async with self.db.reading() as session:
            return int((await session.execute(query)).scalar() or 0)

    # -- the event log ---------------------------------------------------------------------

    async def record_events(
        self, batch: Sequence[tuple[EventRecord, FanOut]]
    ) -> list[tuple[EventRecord, bool]]:
        """Append each event whose id is not known yet, in order, in one transaction;
        returns (the stored event, new) for each.

        Each new event's ``fan_out(session, stored)`` runs in the same transaction (it adds
        the webhook deliveries). Callers serialise calls (``Feed``); on PostgreSQL an
        advisory lock also serialises replicas, so ``seq`` order is commit order.
        """
        outcome: list[tuple[EventRecord, bool]] = []
        async with self.db.transaction() as session:
            if self.db.dialect == "postgresql":
                await session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOG_LOCK})
            for event, fan_out in batch:
                found = await _event_by_id(session, event.id)
                if found is not None:
                    outcome.append((found, False))
                    continue
                values = asdict(event)
                del values["seq"]
                inserted = insert(events).values(**values).returning(events.c.seq)
                seq = (await session.execute(inserted)).scalar_one()
                stored = EventRecord(**{**asdict(event), "seq": seq})
                await fan_out(session, stored)
                outcome.append((stored, True))
        return outcome

    async def record_event(self, event: EventRecord, fan_out: FanOut) -> tuple[EventRecord, bool]:
        """:meth:`record_events` of one event."""
        [outcome] = await self.record_events([(event, fan_out)])
        return outcome

    async def event(self, tenant_id: str, event_id: str) -> EventRecord | None:
        async with self.db.reading() as session:
            found = await _event_by_id(session, event_id)
        return found if found is not None and found.tenant_id == tenant_id else None

    async def events_after(
        self, seq: int, limit: int, tenant_id: str | None = None
    ) -> list[EventRecord]:
        """Events with ``seq`` above ``seq`` in order (one tenant's, or all)."""
        query = select(events).where(events.c.seq > seq).order_by(events.c.seq).limit(limit)
        if tenant_id is not None:
            query = query.where(events.c.tenant_id == tenant_id)
        async with self.db.reading() as session:
            rows = (await session.execute(query)).all()
        return [EventRecord(**row._mapping) for row in rows]

    async def last_seq(self) -> int:
        async with self.db.reading() as session:
            return int(await session.scalar(select(func.max(events.c.seq))) or 0)

    async def seq_before(self, tenant_id: str, since: float) -> int:
        """The ``seq`` after which the tenant's events recorded at or after ``since`` lie."""
        async with self.db.reading() as session:
            first = await session.scalar(
                select(func.min(events.c.seq)).where(
                    events.c.tenant_id == tenant_id, events.c.record_time >= since
                )
            )
            if first is None:
                return int(await session.scalar(select(func.max(events.c.seq))) or 0)
        return int(first) - 1

    async def purge(self, before: float) -> int:
        """Forget events, finished deliveries and emails older than ``before``."""
        async with self.db.transaction() as session:
            gone = await session.execute(delete(events).where(events.c.record_time < before))
            await session.execute(
                delete(deliveries).where(
                    deliveries.c.create_time < before, deliveries.c.state != "pending"
                )
            )
            await session.execute(
                delete(emails).where(emails.c.create_time < before, emails.c.state != "pending")
            )
        return rowcount(gone)

    async def cursor(self, name: str) -> int | None:
        async with self.db.reading() as session:
            seq: int | None = await session.scalar(
                select(cursors.c.seq).where(cursors.c.name == name)
            )
        return seq

    # -- webhooks --------------------------------------------------------------------------

    async def add_webhook(self, webhook: Webhook) -> Webhook:
        """Insert; a request id the tenant used already returns the earlier webhook."""
        async with self.db.transaction() as session:
            if webhook.request_id:
                earlier = (
                    await session.execute(
                        select(webhooks).where(
                            webhooks.c.tenant_id == webhook.tenant_id,
                            webhooks.c.request_id == webhook.request_id,
                        )
                    )
                ).first()
                if earlier is not None:
                    return Webhook(**earlier._mapping)
            await session.execute(insert(webhooks).values(**asdict(webhook)))
        return webhook

    async def webhook(self, tenant_id: str, webhook_id: str) -> Webhook | None:
        query = select(webhooks).where(
            webhooks.c.tenant_id == tenant_id, webhooks.c.id == webhook_id
        )
        async with self.db.reading() as session:
            row = (await session.execute(query)).first()
        return Webhook(**row._mapping) if row else None

    async def list_webhooks(self, tenant_id: str, request: ListRequest) -> Page[Webhook]:
        query = WEBHOOKS.query(request, tenant_id)
        statement = select(webhooks).where(webhooks.c.tenant_id == tenant_id)
        async with self.db.reading() as session:
            rows = (await session.execute(query.apply(statement))).all()
        items, token = query.page(rows)
        return Page([Webhook(**item) for item in items], token)

    async def change_webhook(self, tenant_id: str, webhook_id: str, **values: Any) -> bool:
        async with self.db.transaction() as session:
            result = await session.execute(
                update(webhooks)
                .where(webhooks.c.tenant_id == tenant_id, webhooks.c.id == webhook_id)
                .values(**values)
            )
        return rowcount(result) == 1

    async def disable_webhook(
        self, webhook: Webhook, reason: str, now: float, *events_: OutboxItem
    ) -> bool:
        """Disable an active webhook, fail its pending deliveries and record ``events_``
        in the same transaction; False when it was not active any more."""
        async with self.db.transaction() as session:
            result = await session.execute(
                update(webhooks)
                .where(webhooks.c.id == webhook.id, webhooks.c.state == "active")
                .values(state="disabled", disabled_reason=reason, update_time=now)
            )
            if rowcount(result) != 1:
                return False
            await session.execute(
                update(deliveries)
                .where(deliveries.c.webhook_id == webhook.id, deliveries.c.state == "pending")
                .values(
                    state="failed",
                    last_error=f"webhook disabled: {reason}",
                    next_attempt_time=None,
                    update_time=now,
                )
            )
            await self.outbox.add(session, *events_)
        return True

    async def delete_webhook(self, tenant_id: str, webhook_id: str) -> bool:
        """Remove the webhook and its deliveries."""
        async with self.db.transaction() as session:
            result = await session.execute(
                delete(webhooks).where(
                    webhooks.c.tenant_id == tenant_id, webhooks.c.id == webhook_id
                )
            )
            await session.execute(delete(deliveries).where(deliveries.c.webhook_id == webhook_id))
        return rowcount(result) == 1

    # -- deliveries ------------------------------------------------------------------------

    @staticmethod
    async def add_deliveries(session: AsyncConnection, rows: Sequence[Delivery]) -> None:
        if rows:
            await session.execute(insert(deliveries), [asdict(row) for row in rows])

    @staticmethod
    async def active_webhooks(session: Reader, tenant_id: str) -> list[Webhook]:
        query = select(webhooks).where(
            webhooks.c.tenant_id == tenant_id, webhooks.c.state == "active"
        )
        return [Webhook(**row._mapping) for row in (await session.execute(query)).all()]

    async def due_deliveries(self, now: float, limit: int) -> list[Delivery]:
        query = (
            select(deliveries)
            .where(deliveries.c.state == "pending", deliveries.c.next_attempt_time <= now)
            .order_by(deliveries.c.next_attempt_time, deliveries.c.create_time)
            .limit(limit)
        )
        async with self.db.reading() as session:
            rows = (await session.execute(query)).all()
        return [Delivery(**row._mapping) for row in rows]

    async def next_delivery_time(self) -> float | None:
        async with self.db.reading() as session:
            when: float | None = await session.scalar(
                select(func.min(deliveries.c.next_attempt_time)).where(
                    deliveries.c.state == "pending"
                )
            )
        return when

    async def delivery(self, tenant_id: str, delivery_id: str) -> Delivery | None:
        query = select(deliveries).where(
            deliveries.c.tenant_id == tenant_id, deliveries.c.id == delivery_id
        )
        async with self.db.reading() as session:
            row = (await session.execute(query)).first()
        return Delivery(**row._mapping) if row else None

    async def list_deliveries(self, tenant_id: str, request: ListRequest) -> Page[Delivery]:
        query = DELIVERIES.query(request, tenant_id)
        statement = select(deliveries).where(deliveries.c.tenant_id == tenant_id)
        async with self.db.reading() as session:
            rows = (await session.execute(query.apply(statement))).all()
        items, token = query.page(rows)
        return Page([Delivery(**item) for item in items], token)

    async def save_attempts(
        self, outcomes: Sequence[tuple[Delivery, int, float | None, dict[str, Any]]]
    ) -> list[bool]:
        """Record attempts' outcomes in one transaction: each (delivery, attempts seen,
        its webhook's ``failing_since``, the delivery's new values) unless another attempt
        got there first (the row's attempt count is the fence); True for each recorded."""
        recorded: list[bool] = []
        async with self.db.transaction() as session:
            for delivery, seen, failing_since, values in outcomes:
                result = await session.execute(
                    update(deliveries)
                    .where(deliveries.c.id == delivery.id, deliveries.c.attempts == seen)
                    .values(**values)
                )
                recorded.append(rowcount(result) == 1)
                if recorded[-1]:
                    await session.execute(
                        update(webhooks)
                        .where(webhooks.c.id == delivery.webhook_id)
                        .values(failing_since=failing_since)
                    )
        return recorded

    async def event_by_id(self, event_id: str) -> EventRecord | None:
        async with self.db.reading() as session:
            return await _event_by_id(session, event_id)

    # -- emails ----------------------------------------------------------------------------

    async def add_emails(self, rows: Sequence[Email], cursor: tuple[str, int] | None) -> None:
        """Queue ``rows`` (those whose ``dedup_key`` exists are skipped) and move the
        named cursor, in one transaction."""
        async with self.db.transaction() as session:
            keys = [row.dedup_key for row in rows]
            known = set(
                await session.scalars(
                    select(emails.c.dedup_key).where(emails.c.dedup_key.in_(keys))
                )
            )
            fresh = [asdict(row) for row in rows if row.dedup_key not in known]
            if fresh:
                await session.execute(insert(emails), fresh)
            if cursor is not None:
                name, seq = cursor
                moved = await session.execute(
                    update(cursors).where(cursors.c.name == name).values(seq=seq)
                )
                if rowcount(moved) == 0:
                    await session.execute(insert(cursors).values(name=name, seq=seq))

    async def email_by_key(self, dedup_key: str) -> Email | None:
        async with self.db.reading() as session:
            row = (
                await session.execute(select(emails).where(emails.c.dedup_key == dedup_key))
            ).first()
        return Email(**row._mapping) if row else None

    async def due_emails(self, now: float, limit: int) -> list[Email]:
        query = (
            select(emails)
            .where(emails.c.state == "pending", emails.c.next_attempt_time <= now)
            .order_by(emails.c.next_attempt_time)
            .limit(limit)
        )
        async with self.db.reading() as session:
            return [Email(**row._mapping) for row in (await session.execute(query)).all()]

    async def save_email(self, email_id: str, **values: Any) -> None:
        async with self.db.transaction() as session:
            await session.execute(update(emails).where(emails.c.id == email_id).values(**values))

    # -- preferences -----------------------------------------------------------------------

    async def preferences(self, tenant_id: str, user_ids: Sequence[str]) -> list[Preferences]:
        query = select(preferences).where(
            preferences.c.tenant_id == tenant_id, preferences.c.user_id.in_(user_ids)
        )
        async with self.db.reading() as session:
            return [Preferences(**row._mapping) for row in (await session.execute(query)).all()]

    async def broad_preferences(self, tenant_id: str) -> list[Preferences]:
        """Users of the tenant who want email about more than their own events."""
        query = select(preferences).where(
            preferences.c.tenant_id == tenant_id,
            preferences.c.email_only_mine.is_(False),
            preferences.c.email_enabled.is_(True),
            preferences.c.quiet.is_(False),
        )
        async with self.db.reading() as session:
            return [Preferences(**row._mapping) for row in (await session.execute(query)).all()]

    async def save_preferences(self, record: Preferences) -> None:
        async with self.db.transaction() as session:
            await session.execute(
                delete(preferences).where(
                    preferences.c.tenant_id == record.tenant_id,
                    preferences.c.user_id == record.user_id,
                )
            )
            await session.execute(insert(preferences).values(**asdict(record)))


async def _event_by_id(session: Reader, event_id: str) -> EventRecord | None:
    row = (await session.execute(select(events).where(events.c.id == event_id))).first()
    return EventRecord(**row._mapping) if row else None
