"""The NotificationService servicer: proto → domain values → await the domain → proto."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator

from alea.notification.v1 import notification_pb2 as pb
from alea.notification.v1 import notification_pb2_grpc
from google.api import httpbody_pb2
from google.protobuf import duration_pb2, empty_pb2, json_format, struct_pb2

from services.notification.domain import Notifications
from services.notification.feed import Cursor, Filter
from services.notification.store import Delivery, EventRecord, Preferences, Webhook
from services.notification.webhooks import Webhooks
from services.runtime.context import ServicerContext, current_principal
from services.runtime.convert import timestamp_of_seconds
from services.runtime.errors import InvalidArgument
from services.runtime.events import type_name
from services.runtime.listing import ListRequest

__all__ = ["NotificationServicer", "event_message", "event_record"]

SSE_KEEPALIVE_SECONDS = 15.0
CONVERTED_EVENTS = 4096
_WEBHOOK_STATES = {"active": pb.Webhook.STATE_ACTIVE, "disabled": pb.Webhook.STATE_DISABLED}
_DELIVERY_STATES = {
    "pending": pb.Delivery.STATE_PENDING,
    "succeeded": pb.Delivery.STATE_SUCCEEDED,
    "failed": pb.Delivery.STATE_FAILED,
}


def _duration(seconds: float) -> duration_pb2.Duration:
    value = duration_pb2.Duration()
    value.FromNanoseconds(int(seconds * 1e9))
    return value


def event_message(event: EventRecord) -> pb.Event:
    data = struct_pb2.Struct()
    data.update(event.data)
    return pb.Event(
        id=event.id,
        tenant_id=event.tenant_id,
        type=event.type,  # type: ignore[arg-type]
        user_id=event.user_id,
        resource=event.resource,
        data=data,
        event_time=timestamp_of_seconds(event.event_time),
        type_name=type_name(event.type),
    )


def event_record(given: pb.Event) -> EventRecord:
    """A published event as the log records it (its time defaults to now)."""
    now = time.time()
    when = given.event_time.ToNanoseconds() / 1e9 if given.HasField("event_time") else now
    return EventRecord(
        seq=0,
        id=given.id,
        tenant_id=given.tenant_id,
        type=given.type,
        user_id=given.user_id,
        resource=given.resource,
        data=json_format.MessageToDict(given.data),
        event_time=when,
        record_time=now,
    )


def _webhook(row: Webhook) -> pb.Webhook:
    return pb.Webhook(
        id=row.id,
        tenant_id=row.tenant_id,
        url=row.url,
        event_types=row.event_types,  # type: ignore[arg-type]
        display_name=row.display_name,
        create_time=timestamp_of_seconds(row.create_time),
        update_time=timestamp_of_seconds(row.update_time),
        state=_WEBHOOK_STATES[row.state],
        disabled_reason=row.disabled_reason,
        previous_secret_expire_time=timestamp_of_seconds(row.previous_secret_expire_time),
    )


def _delivery(row: Delivery) -> pb.Delivery:
    return pb.Delivery(
        id=row.id,
        tenant_id=row.tenant_id,
        webhook_id=row.webhook_id,
        event_id=row.event_id,
        event_type=row.event_type,  # type: ignore[arg-type]
        state=_DELIVERY_STATES[row.state],
        attempts=row.attempts,
        last_status_code=row.last_status_code,
        last_error=row.last_error,
        next_attempt_time=timestamp_of_seconds(row.next_attempt_time),
        create_time=timestamp_of_seconds(row.create_time),
        update_time=timestamp_of_seconds(row.update_time),
        attempt_log=[
            pb.DeliveryAttempt(
                attempt=a["attempt"],
                attempt_time=timestamp_of_seconds(a["attempt_time"]),
                status_code=a["status_code"],
                error=a["error"],
                latency=_duration(a["latency_seconds"]),
                response_excerpt=a["response_excerpt"],
                manual=a["manual"],
            )
            for a in row.attempt_log
        ],
    )


def _preferences(row: Preferences) -> pb.NotificationPreferences:
    return pb.NotificationPreferences(
        user_id=row.user_id,
        tenant_id=row.tenant_id,
        email_enabled=row.email_enabled,
        email_event_types=row.email_event_types,  # type: ignore[arg-type]
        email_only_mine=row.email_only_mine,
        quiet=row.quiet,
        create_time=timestamp_of_seconds(row.create_time or None),
        update_time=timestamp_of_seconds(row.update_time or None),
    )


def _feed_request(
    request: pb.SubscribeRequest | pb.SubscribeSseRequest, context: ServicerContext
) -> tuple[Filter, Cursor]:
    """The filter and cursor of a subscription; ``last-event-id`` resumes an SSE client."""
    wanted = Filter(
        frozenset(request.types), request.resource, request.only_mine, request.replay_only
    )
    if request.after:
        return wanted, Cursor(after=request.after)
    if request.HasField("start_time"):
        return wanted, Cursor(start_time=request.start_time.ToNanoseconds() / 1e9)
    metadata = dict(context.invocation_metadata() or ())
    last = metadata.get("last-event-id", "")
    if last:
        try:
            uuid.UUID(last)
        except ValueError:
            raise InvalidArgument("last-event-id", "must be the id (UUID) of an event") from None
        return wanted, Cursor(after=last)
    return wanted, Cursor()


def _sse(event: EventRecord) -> bytes:
    document = json_format.MessageToDict(
        event_message(event), always_print_fields_with_no_presence=True
    )
    data = json.dumps(document, separators=(",", ":"))
    return f"id: {event.id}\nevent: {type_name(event.type)}\ndata: {data}\n\n".encode()


class NotificationServicer(notification_pb2_grpc.NotificationServiceServicer):
    """Every RPC of alea.notification.v1.NotificationService."""

    def __init__(self, notifications: Notifications, webhooks: Webhooks) -> None:
        self.notifications, self.webhooks = notifications, webhooks
        # An event goes to every subscriber of its tenant: serialise it once for all the
        # streams (they send these bytes as they are, see runtime.interceptor).
        self._serialized: OrderedDict[tuple[str, bool], bytes] = OrderedDict()

    def _bytes(self, event: EventRecord, sse: bool = False) -> bytes:
        """``event`` as the serialised ``Event`` (or SSE ``HttpBody``) a stream sends."""
        key = (event.id, sse)
        found = self._serialized.get(key)
        if found is None:
            message = httpbody_pb2.HttpBody(data=_sse(event)) if sse else event_message(event)
            found = self._serialized[key] = message.SerializeToString()
            if len(self._serialized) > CONVERTED_EVENTS:
                self._serialized.popitem(last=False)
        return found

    async def Subscribe(
        self, request: pb.SubscribeRequest, context: ServicerContext
    ) -> AsyncIterator[bytes]:  # serialised Events
        wanted, cursor = _feed_request(request, context)
        events = await self.notifications.subscribe(current_principal(), wanted, cursor)
        try:
            await context.send_initial_metadata(())  # the subscription stands
            async for event in events:
                yield self._bytes(event)
        finally:
            await events.aclose()

    async def SubscribeSse(
        self, request: pb.SubscribeSseRequest, context: ServicerContext
    ) -> AsyncIterator[httpbody_pb2.HttpBody | bytes]:
        wanted, cursor = _feed_request(request, context)
        events = await self.notifications.subscribe(current_principal(), wanted, cursor)
        ready: asyncio.Queue[EventRecord] = asyncio.Queue(maxsize=1)

        async def pump() -> None:
            try:
                async for event in events:
                    await ready.put(event)
            finally:
                await events.aclose()

        pumping = asyncio.ensure_future(pump())
        getting: asyncio.Future[EventRecord] | None = None
        try:
            yield httpbody_pb2.HttpBody(content_type="text/event-stream", data=b": ok\n\n")
            while True:
                getting = asyncio.ensure_future(ready.get())
                done, _ = await asyncio.wait(
                    {getting, pumping}, timeout=SSE_KEEPALIVE_SECONDS, return_when="FIRST_COMPLETED"
                )
                if getting in done:
                    yield self._bytes(getting.result(), sse=True)
                    continue
                getting.cancel()
                if pumping in done:
                    pumping.result()  # the feed failed (e.g. an expired cursor): raise it
                    return
                yield httpbody_pb2.HttpBody(data=b": keepalive\n\n")
        finally:
            # A client gone while a get waited: that task too, or asyncio reports it
            # destroyed while pending.
            for task in (getting, pumping):
                if task is not None:
                    task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await pumping

    async def PublishEvent(
        self, request: pb.PublishEventRequest, context: ServicerContext
    ) -> pb.Event:
        return event_message(await self.notifications.publish(event_record(request.event)))

    async def CreateWebhook(
        self, request: pb.CreateWebhookRequest, context: ServicerContext
    ) -> pb.CreateWebhookResponse:
        webhook, secret = await self.webhooks.create(
            current_principal().tenant_id,
            request.url,
            list(request.event_types),
            request.display_name,
            request.request_id,
        )
        return pb.CreateWebhookResponse(webhook=_webhook(webhook), secret=secret)

    async def GetWebhook(
        self, request: pb.GetWebhookRequest, context: ServicerContext
    ) -> pb.Webhook:
        return _webhook(await self.webhooks.get(current_principal().tenant_id, request.webhook_id))

    async def UpdateWebhook(
        self, request: pb.UpdateWebhookRequest, context: ServicerContext
    ) -> pb.Webhook:
        given = request.webhook
        states = {v: k for k, v in _WEBHOOK_STATES.items()}
        values = {
            "url": given.url,
            "event_types": list(given.event_types),
            "display_name": given.display_name,
            "state": states.get(given.state, ""),
        }
        try:
            uuid.UUID(given.id)
        except ValueError:
            raise InvalidArgument("webhook.id", "must be a UUID") from None
        paths = list(request.update_mask.paths)
        try:
            updated = await self.webhooks.update(
                current_principal().tenant_id, given.id, paths, values
            )
        except InvalidArgument as exc:
            # The domain names the URL as CreateWebhook's `url`; here it is `webhook.url`.
            renamed = [("webhook.url" if f == "url" else f, r) for f, r in exc.violations]
            raise InvalidArgument.of(renamed) from None
        return _webhook(updated)

    async def RotateWebhookSecret(
        self, request: pb.RotateWebhookSecretRequest, context: ServicerContext
    ) -> pb.RotateWebhookSecretResponse:
        overlap = request.overlap.ToNanoseconds() / 1e9 if request.HasField("overlap") else None
        webhook, secret = await self.webhooks.rotate(
            current_principal().tenant_id, request.webhook_id, overlap
        )
        return pb.RotateWebhookSecretResponse(webhook=_webhook(webhook), secret=secret)

    async def ListWebhooks(
        self, request: pb.ListWebhooksRequest, context: ServicerContext
    ) -> pb.ListWebhooksResponse:
        query = ListRequest(request.page_size, request.page_token, request.filter, request.order_by)
        page = await self.webhooks.list(current_principal().tenant_id, query)
        return pb.ListWebhooksResponse(
            webhooks=[_webhook(w) for w in page.items], next_page_token=page.next_page_token
        )

    async def DeleteWebhook(
        self, request: pb.DeleteWebhookRequest, context: ServicerContext
    ) -> empty_pb2.Empty:
        await self.webhooks.delete(current_principal().tenant_id, request.webhook_id)
        return empty_pb2.Empty()

    async def ListDeliveries(
        self, request: pb.ListDeliveriesRequest, context: ServicerContext
    ) -> pb.ListDeliveriesResponse:
        query = ListRequest(request.page_size, request.page_token, request.filter, request.order_by)
        page = await self.webhooks.list_deliveries(current_principal().tenant_id, query)
        return pb.ListDeliveriesResponse(
            deliveries=[_delivery(d) for d in page.items], next_page_token=page.next_page_token
        )

    async def Redeliver(
        self, request: pb.RedeliverRequest, context: ServicerContext
    ) -> pb.Delivery:
        tenant = current_principal().tenant_id
        return _delivery(await self.webhooks.redeliver(tenant, request.delivery_id))

    async def SendEmail(
        self, request: pb.SendEmailRequest, context: ServicerContext
    ) -> pb.SendEmailResponse:
        message_id = await self.notifications.send_email(
            request.tenant_id,
            request.to,
            request.subject,
            request.body,
            request.html_body,
            request.request_id,
        )
        return pb.SendEmailResponse(message_id=message_id)

    async def GetPreferences(
        self, request: pb.GetPreferencesRequest, context: ServicerContext
    ) -> pb.NotificationPreferences:
        return _preferences(await self.notifications.preferences(current_principal()))

    async def UpdatePreferences(
        self, request: pb.UpdatePreferencesRequest, context: ServicerContext
    ) -> pb.NotificationPreferences:
        given = request.preferences
        values = {
            "email_enabled": given.email_enabled,
            "email_event_types": list(given.email_event_types),
            "email_only_mine": given.email_only_mine,
            "quiet": given.quiet,
        }
        updated = await self.notifications.update_preferences(
            current_principal(), list(request.update_mask.paths), values
        )
        return _preferences(updated)
