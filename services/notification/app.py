"""Wiring of the notification service: the servicer and its background tasks.

Background tasks: the feed's tailer (live fan-out) and retention purge, the webhook
dispatcher, the relay of notification's own events (``webhook.disabled``, written through
its outbox) into its own log, and — when ``ALEA_SMTP_HOST`` is set — the email planner
and sender.
"""

from __future__ import annotations

from pathlib import Path

from alea.notification.v1 import notification_pb2, notification_pb2_grpc

from services.notification.api import NotificationServicer, event_record
from services.notification.config import load_config
from services.notification.domain import Notifications
from services.notification.email import Mailer, Planner
from services.notification.feed import Feed
from services.notification.ssrf import Guard
from services.notification.store import NotificationStore
from services.notification.webhooks import Webhooks
from services.runtime.config import Settings
from services.runtime.db import Database
from services.runtime.events import TOPIC
from services.runtime.outbox import Outbox, OutboxRecord, Relay, RelaySettings
from services.runtime.peers import Peers
from services.runtime.platform_settings import WEBHOOK_DISABLE_AFTER, WEBHOOK_RETRY_SCHEDULE
from services.runtime.server import Background, Mount, Service

__all__ = ["MIGRATIONS", "build"]

MIGRATIONS = Path(__file__).parent / "migrations"


async def build(settings: Settings, db: Database, peers: Peers) -> Service:
    """The NotificationService servicer, with the feed, webhooks and email around it."""
    config = load_config()
    outbox = Outbox()
    store = NotificationStore(db, outbox)
    feed = Feed(store, config.retention_seconds, config.poll_seconds)
    await feed.open()
    webhooks = Webhooks(
        store,
        config,
        Guard(config.allowlist),
        lambda: (
            peers.settings.get(WEBHOOK_RETRY_SCHEDULE),
            peers.settings.get(WEBHOOK_DISABLE_AFTER),
        ),
    )
    notifications = Notifications(store, feed, webhooks, email_on=bool(config.smtp.host))

    async def record_locally(record: OutboxRecord) -> None:
        await notifications.publish(event_record(notification_pb2.Event.FromString(record.payload)))

    own_events = Relay(db, outbox, TOPIC, record_locally, RelaySettings.from_env())
    background: list[Background] = [feed.run, feed.purge, webhooks.run, own_events.run]
    if config.smtp.host:
        background.append(Planner(store, peers.identity, config.poll_seconds).run)
        background.append(Mailer(store, config.smtp, config.poll_seconds).run)
    mount = Mount(
        notification_pb2.DESCRIPTOR.services_by_name["NotificationService"],
        NotificationServicer(notifications, webhooks),
        notification_pb2_grpc.add_NotificationServiceServicer_to_server,
    )

    async def gauges() -> dict[str, float]:
        return {"webhook_backlog": await store.pending_deliveries()}

    return Service([mount], background=background, gauges=gauges)
