"""Webhook deliveries: Standard Webhooks signatures verified by the ``standardwebhooks``
package, the retry schedule, 410 and continuous failure disabling the endpoint, redirects
and refused addresses as failures; every connection goes to 127.0.0.1 or fails the test."""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress
import itertools
import time
import uuid
from collections.abc import AsyncIterator

import pytest
import standardwebhooks
from sqlalchemy import select

from services.notification.config import NotificationConfig
from services.notification.ssrf import Guard
from services.notification.store import EventRecord, NotificationStore
from services.notification.webhooks import Webhooks
from services.runtime.errors import FailedPrecondition, InvalidArgument, NotFound
from services.runtime.events import TYPES
from services.runtime.listing import ListRequest
from services.runtime.outbox import outbox_table
from tests.unit.notification.conftest import LoopbackOnly, Receiver

TENANT = str(uuid.uuid4())
ZONE: dict[str, list[str]] = {}
FAST = NotificationConfig(
    retry_schedule=(0.0, 0.05, 0.05, 0.05), retry_jitter=0.1, connect_timeout_seconds=2
)


async def dns(host: str, port: int) -> list[str]:
    return ZONE[host]


def webhooks_of(store: NotificationStore, connector: LoopbackOnly, **config) -> Webhooks:
    guard = Guard((ipaddress.ip_network("127.0.0.1/32"),), dns, connector)
    return Webhooks(store, dataclasses.replace(FAST, **config), guard)


async def publish(store: NotificationStore, hooks: Webhooks, type_: str = "simulation.succeeded"):
    now = time.time()
    event = EventRecord(
        0, str(uuid.uuid4()), TENANT, TYPES[type_], "", "simulations/x", {"n": 1}, now, now
    )
    stored, _ = await store.record_event(event, hooks.fan_out)
    return stored


@pytest.fixture
async def running(store: NotificationStore, connector: LoopbackOnly) -> AsyncIterator[Webhooks]:
    hooks = webhooks_of(store, connector)
    stop = asyncio.Event()
    task = asyncio.create_task(hooks.run(stop))
    yield hooks
    stop.set()
    await task


async def settled(store: NotificationStore, webhook_id: str):
    """The webhook's deliveries once none is pending."""
    async with asyncio.timeout(10):
        while True:
            page = await store.list_deliveries(TENANT, _by(webhook_id))
            if page.items and all(d.state != "pending" for d in page.items):
                return page.items
            await asyncio.sleep(0.02)


def _by(webhook_id: str) -> ListRequest:
    return ListRequest(filter=f'webhook_id = "{webhook_id}"')


async def test_deliveries_verify_with_standardwebhooks_across_a_secret_rotation(
    store, running: Webhooks, receiver: Receiver
) -> None:
    webhook, secret = await running.create(TENANT, receiver.url, [], "r", "")
    assert secret.startswith("whsec_")
    await publish(store, running)
    await settled(store, webhook.id)
    headers, body = receiver.received[0]
    assert standardwebhooks.Webhook(secret).verify(body, headers)["type"] == "simulation.succeeded"

    rotated, new_secret = await running.rotate(TENANT, webhook.id, overlap=3600)
    assert rotated.previous_secret_expire_time > time.time()
    await publish(store, running)
    async with asyncio.timeout(10):
        while len(receiver.received) < 2:  # noqa: ASYNC110  (the dispatcher delivers)
            await asyncio.sleep(0.02)
    headers, body = receiver.received[1]
    assert headers["webhook-signature"].count("v1,") == 2
    for key in (secret, new_secret):  # receivers on either secret accept it
        standardwebhooks.Webhook(key).verify(body, headers)
    with pytest.raises(standardwebhooks.WebhookVerificationError):
        standardwebhooks.Webhook("whsec_" + "A" * 44).verify(body, headers)


async def test_failures_are_retried_on_the_schedule_then_given_up(
    store, running: Webhooks, receiver: Receiver
) -> None:
    receiver.script = [(500, {}, b"busy"), (503, {}, b""), (200, {}, b"ok")]
    webhook, _ = await running.create(TENANT, receiver.url, [], "r", "")
    await publish(store, running)
    [delivery] = await settled(store, webhook.id)
    assert delivery.state == "succeeded"
    log = delivery.attempt_log
    assert [a["status_code"] for a in log] == [500, 503, 200]
    assert log[0]["response_excerpt"] == "busy" and log[0]["error"] == "HTTP 500"
    gaps = [b["attempt_time"] - a["attempt_time"] for a, b in itertools.pairwise(log)]
    assert all(gap >= 0.05 * 0.9 for gap in gaps), gaps

    receiver.script = [(500, {}, b"")]
    await publish(store, running)
    deliveries = await settled(store, webhook.id)
    given_up = next(d for d in deliveries if d.state == "failed")
    assert given_up.attempts == len(FAST.retry_schedule)


async def test_a_redirect_is_a_failure_and_is_not_followed(
    store, running: Webhooks, receiver: Receiver, connector: LoopbackOnly
) -> None:
    receiver.script = [(301, {"Location": "http://10.0.0.1/"}, b"")]
    webhook, _ = await running.create(TENANT, receiver.url, [], "r", "")
    await publish(store, running)
    [delivery] = await settled(store, webhook.id)
    assert {a["error"] for a in delivery.attempt_log} == {"HTTP 301"}
    assert set(connector.addresses) == {"127.0.0.1"}


async def test_a_kept_connection_does_not_spare_a_delivery_its_address_check(
    store, running: Webhooks, receiver: Receiver, connector: LoopbackOnly
) -> None:
    ZONE["hooks.example"] = ["127.0.0.1"]
    url = f"http://hooks.example:{receiver.port}/hook"
    webhook, _ = await running.create(TENANT, url, [], "r", "")
    for _ in range(2):
        await publish(store, running)
        await settled(store, webhook.id)
    assert (receiver.connections, len(receiver.received)) == (1, 2)
    assert running.connections.idle == 1
    ZONE["hooks.example"] = ["10.1.2.3"]  # the name now points inside: refused, kept or not
    await publish(store, running)
    deliveries = await settled(store, webhook.id)
    failed = [d for d in deliveries if d.state != "succeeded"]
    assert failed and all("10.1.2.3" in d.last_error for d in failed)
    assert len(receiver.received) == 2 and connector.addresses == ["127.0.0.1"]


async def test_410_gone_disables_the_endpoint_and_says_so(
    store: NotificationStore, running: Webhooks, receiver: Receiver
) -> None:
    receiver.script = [(410, {}, b"")]
    webhook, _ = await running.create(TENANT, receiver.url, [], "r", "")
    await publish(store, running)
    [delivery] = await settled(store, webhook.id)
    assert delivery.attempts == 1 and delivery.state == "failed"
    disabled = await running.get(TENANT, webhook.id)
    assert (disabled.state, disabled.disabled_reason) == (
        "disabled",
        "the endpoint answered 410 Gone",
    )
    async with store.db.reading() as session:
        [payload] = (await session.execute(select(outbox_table.c.key))).scalars().all()
    assert payload == f"webhooks/{webhook.id}"  # webhook.disabled, relayed into the log
    await publish(store, running)
    assert len((await store.list_deliveries(TENANT, _by(webhook.id))).items) == 1
    with pytest.raises(FailedPrecondition):
        await running.redeliver(TENANT, delivery.id)
    await running.update(TENANT, webhook.id, ["state"], {"state": "active"})
    receiver.script = [(200, {}, b"")]
    again = await running.redeliver(TENANT, delivery.id)
    assert again.state == "succeeded" and again.attempt_log[-1]["manual"]


async def test_an_endpoint_failing_for_too_long_is_disabled(
    store: NotificationStore, connector: LoopbackOnly, receiver: Receiver
) -> None:
    receiver.script = [(500, {}, b"")]
    hooks = webhooks_of(store, connector, disable_after_seconds=0.08)
    stop = asyncio.Event()
    task = asyncio.create_task(hooks.run(stop))
    try:
        webhook, _ = await hooks.create(TENANT, receiver.url, [], "r", "")
        await publish(store, hooks)
        await settled(store, webhook.id)
    finally:
        stop.set()
        await task
    disabled = await hooks.get(TENANT, webhook.id)
    assert (
        disabled.state == "disabled" and "every delivery failed since" in disabled.disabled_reason
    )


async def test_addresses_are_checked_at_creation_and_again_at_every_delivery(
    store: NotificationStore, running: Webhooks, connector: LoopbackOnly
) -> None:
    ZONE["hooks.example"] = ["10.9.8.7"]
    with pytest.raises(InvalidArgument) as refused:
        await running.create(TENANT, "https://hooks.example/in", [], "r", "")
    assert refused.value.violations[0][0] == "url" and "private" in refused.value.message

    ZONE["hooks.example"] = ["93.184.215.14"]  # public at creation...
    webhook, _ = await running.create(TENANT, "https://hooks.example/in", [], "r", "")
    ZONE["hooks.example"] = ["169.254.169.254"]  # ...the metadata service at delivery
    await publish(store, running)
    [delivery] = await settled(store, webhook.id)
    assert delivery.attempt_log[0]["error"].startswith("refused: the host hooks.example resolves")
    assert connector.addresses == []


async def test_only_matching_event_types_are_delivered(store, running: Webhooks, receiver) -> None:
    webhook, _ = await running.create(TENANT, receiver.url, [TYPES["file.uploaded"]], "r", "")
    await publish(store, running, "simulation.succeeded")
    await publish(store, running, "file.uploaded")
    [delivery] = await settled(store, webhook.id)
    assert delivery.event_type == TYPES["file.uploaded"]


async def test_a_tenant_never_sees_or_receives_another_tenants_webhooks(
    store: NotificationStore, running: Webhooks, receiver: Receiver
) -> None:
    other = str(uuid.uuid4())
    webhook, _ = await running.create(TENANT, receiver.url, [], "mine", "")
    now = time.time()
    foreign = EventRecord(
        0, str(uuid.uuid4()), other, TYPES["file.uploaded"], "", "f", {}, now, now
    )
    await store.record_event(foreign, running.fan_out)
    await publish(store, running)
    [delivery] = await settled(store, webhook.id)  # only its own tenant's event
    assert delivery.event_id != foreign.id
    for attempt in (running.get, running.delete):
        with pytest.raises(NotFound):
            await attempt(other, webhook.id)
    assert (await running.list(other, ListRequest())).items == []
    assert (await store.list_deliveries(other, ListRequest())).items == []


async def test_a_request_id_returns_its_webhook_once_and_refuses_another_request(
    running: Webhooks, receiver: Receiver
) -> None:
    request_id = str(uuid.uuid4())
    first, secret = await running.create(TENANT, receiver.url, [], "mine", request_id)
    again, shown = await running.create(TENANT, receiver.url, [], "mine", request_id)
    assert again.id == first.id and secret.startswith("whsec_") and shown == ""
    with pytest.raises(InvalidArgument) as refused:
        await running.create(TENANT, receiver.url, [], "another", request_id)
    assert refused.value.violations[0][0] == "request_id"


async def test_new_deliveries_are_posted_once_each_and_recorded_together(
    store, running: Webhooks, receiver: Receiver
) -> None:
    """Handed over by their transaction and found due in the table at once: one POST each."""
    first, _ = await running.create(TENANT, receiver.url, [], "first", "")
    second, _ = await running.create(TENANT, receiver.url, [], "second", "")
    events = [await publish(store, running) for _ in range(40)]
    for webhook in (first, second):
        assert len(await settled(store, webhook.id)) == 40
    posted = [headers["webhook-id"] for headers, _ in receiver.received]
    assert sorted(posted) == sorted(e.id for e in events for _ in range(2))
    for webhook in (first, second):
        deliveries = await settled(store, webhook.id)
        assert {(d.state, d.attempts) for d in deliveries} == {("succeeded", 1)}
