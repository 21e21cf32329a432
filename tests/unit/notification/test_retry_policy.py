"""The webhook retry policy is read at each use: a change of the platform setting applies to
the next failure, without a restart."""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress

from services.notification.config import NotificationConfig
from services.notification.ssrf import Guard
from services.notification.store import NotificationStore
from services.notification.webhooks import Webhooks
from services.runtime.platform_settings import SCHEMA, WEBHOOK_DISABLE_AFTER, WEBHOOK_RETRY_SCHEDULE
from tests.unit.notification.conftest import LoopbackOnly, Receiver
from tests.unit.notification.test_webhooks import FAST, TENANT, dns, publish, settled


async def test_the_schedule_in_force_when_a_delivery_fails_applies(
    store: NotificationStore, connector: LoopbackOnly, receiver: Receiver
) -> None:
    policy = {"schedule": (0.0, 0.05, 0.05, 0.05, 0.05), "disable_after": 3600.0}
    guard = Guard((ipaddress.ip_network("127.0.0.1/32"),), dns, connector)
    hooks = Webhooks(
        store,
        dataclasses.replace(FAST, retry_schedule=(0.0,)),  # overridden by the policy
        guard,
        lambda: (policy["schedule"], policy["disable_after"]),
    )
    stop = asyncio.Event()
    task = asyncio.create_task(hooks.run(stop))
    try:
        webhook, _ = await hooks.create(TENANT, receiver.url, [], "r", "")
        receiver.script = [(500, {}, b"")]
        await publish(store, hooks)
        [first] = await settled(store, webhook.id)
        assert (first.state, first.attempts) == ("failed", 5)
        policy["schedule"] = (0.0, 0.05)
        await publish(store, hooks)
        deliveries = await settled(store, webhook.id)
        assert sorted(d.attempts for d in deliveries) == [2, 5]
    finally:
        stop.set()
        await task


def test_the_service_defaults_are_the_settings_schema() -> None:
    assert NotificationConfig().retry_schedule == SCHEMA[WEBHOOK_RETRY_SCHEDULE].default
    assert NotificationConfig().disable_after_seconds == SCHEMA[WEBHOOK_DISABLE_AFTER].default
