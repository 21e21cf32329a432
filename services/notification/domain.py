"""Notification's rules besides the feed and webhooks: publishing, email requests, preferences.

Every operation takes the caller's tenant (or ``Principal``) explicitly. Preferences
never stored are the defaults of :func:`default_preferences`: email enabled, about the
caller's own simulations' outcomes (and, for admins, tenant-wide warnings).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from services.notification.email import message_row
from services.notification.feed import Cursor, Feed, Filter, Subscription
from services.notification.store import EventRecord, NotificationStore, Preferences
from services.notification.webhooks import Webhooks
from services.runtime.context import Principal
from services.runtime.errors import FailedPrecondition, InvalidArgument

__all__ = ["PREFERENCE_FIELDS", "Notifications", "default_preferences"]

PREFERENCE_FIELDS = frozenset({"email_enabled", "email_event_types", "email_only_mine", "quiet"})


def default_preferences(principal: Principal) -> Preferences:
    """What a user who never chose gets (``email_event_types`` empty: the defaults)."""
    return Preferences(
        user_id=principal.user_id,
        tenant_id=principal.tenant_id,
        email_enabled=True,
        email_event_types=[],
        email_only_mine=True,
        quiet=False,
        create_time=0.0,
        update_time=0.0,
    )


class Notifications:
    """Publishing into the feed, subscribing to it, email requests and preferences."""

    def __init__(
        self, store: NotificationStore, feed: Feed, webhooks: Webhooks, email_on: bool
    ) -> None:
        self.store, self.feed, self.webhooks, self.email_on = store, feed, webhooks, email_on

    async def publish(self, event: EventRecord) -> EventRecord:
        """Record a service's event once (by id) and create its webhook deliveries."""
        stored, _ = await self.feed.publish(event, self.webhooks.fan_out)
        return stored

    async def subscribe(self, principal: Principal, wanted: Filter, cursor: Cursor) -> Subscription:
        """The caller's feed, registered (see ``Feed.subscribe``)."""
        return await self.feed.subscribe(principal, wanted, cursor)

    async def send_email(
        self, tenant_id: str, to: str, subject: str, text: str, page: str, request_id: str
    ) -> str:
        """Queue an email once per ``request_id``; returns its id."""
        if not self.email_on:
            raise FailedPrecondition("email is not configured (ALEA_SMTP_HOST is unset)")
        key = f"request:{tenant_id}:{request_id}"
        await self.store.add_emails([message_row(tenant_id, key, to, subject, text, page)], None)
        queued = await self.store.email_by_key(key)
        assert queued is not None
        return queued.id

    async def preferences(self, principal: Principal) -> Preferences:
        found = await self.store.preferences(principal.tenant_id, [principal.user_id])
        return found[0] if found else default_preferences(principal)

    async def update_preferences(
        self, principal: Principal, paths: Sequence[str], values: dict[str, Any]
    ) -> Preferences:
        """Change the masked fields of the caller's preferences."""
        if not paths:
            raise InvalidArgument("update_mask", "must name at least one field")
        for path in paths:
            if path not in PREFERENCE_FIELDS:
                raise InvalidArgument("update_mask", f"{path!r} cannot be updated")
        current = await self.preferences(principal)
        now = time.time()
        changed = {name: values[name] for name in paths}
        if "email_event_types" in changed:
            changed["email_event_types"] = sorted(set(changed["email_event_types"]))
        record = Preferences(
            **{
                **current.__dict__,
                **changed,
                "create_time": current.create_time or now,
                "update_time": now,
            }
        )
        await self.store.save_preferences(record)
        return record
