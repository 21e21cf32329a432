"""Webhooks per the Standard Webhooks specification (v1): endpoints, signed deliveries, retries.

Every delivery is a POST of ``{"id", "type", "timestamp", "tenant_id", "resource",
"user_id", "data"}`` with the headers ``webhook-id`` (the event id: the same on every
retry, so receivers deduplicate by it), ``webhook-timestamp`` (UNIX seconds of the
attempt) and ``webhook-signature``: ``v1,<base64 HMAC-SHA256 of "id.timestamp.body">``
under the secret (``whsec_`` + base64 of 32 random bytes; the HMAC key is those bytes).
After a rotation, both the new and the previous secret sign until the overlap ends (two
space-separated ``v1,`` entries).

Outcome of an attempt: 2xx succeeds; 410 Gone disables the endpoint at once; anything
else (3xx included: redirects are not followed), a timeout, a refused connection or a
refused address (:mod:`ssrf`) fails, and the delivery is tried again after the next delay
of the schedule (``ALEA_NOTIFICATION_WEBHOOK_RETRY_SCHEDULE``, ± jitter), then given up
(FAILED). An endpoint whose deliveries have failed without a success for
``ALEA_NOTIFICATION_WEBHOOK_DISABLE_AFTER_SECONDS`` is disabled too. Disabling fails the
endpoint's pending deliveries and records a ``webhook.disabled`` event, in one
transaction (notification's own outbox relays that event into the log).

Deliveries are first attempted in event order; a retried delivery may arrive after a
later event's: receivers order by the payload's ``timestamp`` or the feed.

The dispatcher works in rounds: the new deliveries handed over by the transaction that
created them (with the webhook and event it read: no query to attempt them), then
whatever else is due in the table (retries; new ones another round or process did not
take), attempted concurrently; the outcomes of a round are written in one transaction.
Connections to a receiver are kept alive and reused by later deliveries to the same
checked address (:class:`ssrf.Connections`): sustained deliveries do not pay a TCP and
TLS handshake each.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import hmac
import json
import logging
import random
import secrets
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from services.notification.config import NotificationConfig
from services.notification.ssrf import Connections, Guard, Refused, post
from services.notification.store import Delivery, EventRecord, NotificationStore, Webhook
from services.runtime.db import after_commit
from services.runtime.errors import FailedPrecondition, InvalidArgument, NotFound
from services.runtime.events import event, type_name
from services.runtime.listing import ListRequest, Page

__all__ = ["Webhooks", "new_secret", "payload", "sign"]

log = logging.getLogger(__name__)
SECRET_PREFIX = "whsec_"
EXCERPT_BYTES = 1024
ATTEMPT_LOG = 50
DEFAULT_OVERLAP = 86400.0
UPDATABLE = frozenset({"url", "event_types", "display_name", "state"})
ROUND = 64  # deliveries attempted at once
HANDED_OVER = 4096  # new deliveries kept in memory; beyond, the table has them


def new_secret() -> str:
    """A signing secret: ``whsec_`` and 32 random bytes in base64."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """``v1,<signature>`` of one message under one ``whsec_`` secret."""
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def payload(event: EventRecord) -> bytes:
    """The JSON body of a delivery of ``event``."""
    stamp = dt.datetime.fromtimestamp(event.event_time, dt.UTC)
    document = {
        "id": event.id,
        "type": type_name(event.type),
        "timestamp": stamp.isoformat().replace("+00:00", "Z"),
        "tenant_id": event.tenant_id,
        "resource": event.resource,
        "user_id": event.user_id,
        "data": event.data,
    }
    return json.dumps(document, separators=(",", ":")).encode()


RetryPolicy = Callable[[], tuple[tuple[float, ...], float]]
"""(seconds before each attempt, seconds of failing before an endpoint is disabled), read
at each use: the service passes the platform settings' current values."""


@dataclass(frozen=True)
class _Attempt:
    """A delivery to attempt, with its webhook and event (None: read them first)."""

    delivery: Delivery
    webhook: Webhook | None = None
    event: EventRecord | None = None


@dataclass(frozen=True)
class _Outcome:
    """What an attempt did, to record: the delivery's new values and its webhook's
    ``failing_since``; ``disable``: why the webhook is to be disabled once recorded."""

    delivery: Delivery
    webhook: Webhook | None
    failing_since: float | None
    values: dict[str, Any]
    disable: str = ""


class Webhooks:
    """Endpoints of a tenant, and the delivery of events to them (``policy``: the retry
    policy; by default the one in ``config``)."""

    def __init__(
        self,
        store: NotificationStore,
        config: NotificationConfig,
        guard: Guard,
        policy: RetryPolicy | None = None,
    ) -> None:
        self.store, self.config, self.guard = store, config, guard
        self.policy = policy or (lambda: (config.retry_schedule, config.disable_after_seconds))
        self._wake = asyncio.Event()
        self._handed: list[_Attempt] = []
        # Kept-alive connections to receivers: each delivery still checks its URL first,
        # and reuses only a connection to the address that check yielded.
        self.connections = Connections()

    # -- endpoints -------------------------------------------------------------------------

    async def _checked(self, url: str) -> None:
        try:
            await self.guard.check(url)
        except Refused as exc:
            raise InvalidArgument("url", str(exc)) from None

    async def create(
        self, tenant_id: str, url: str, event_types: list[int], name: str, request_id: str
    ) -> tuple[Webhook, str]:
        """A new endpoint and its secret (empty on a replayed ``request_id``)."""
        await self._checked(url)
        now = time.time()
        webhook = Webhook(
            id=str(uuid.uuid4()),
            tenant_id=tenant_id,
            url=url,
            event_types=sorted(set(event_types)),
            display_name=name,
            state="active",
            disabled_reason="",
            secret=new_secret(),
            previous_secret=None,
            previous_secret_expire_time=None,
            failing_since=None,
            request_id=request_id or None,
            create_time=now,
            update_time=now,
        )
        stored = await self.store.add_webhook(webhook)
        if stored.id == webhook.id:
            return stored, webhook.secret
        if (stored.url, stored.event_types, stored.display_name) != (
            url,
            webhook.event_types,
            name,
        ):
            raise InvalidArgument("request_id", "already used for a different request")
        return stored, ""  # a retry: the secret was shown once

    async def get(self, tenant_id: str, webhook_id: str) -> Webhook:
        found = await self.store.webhook(tenant_id, webhook_id)
        if found is None:
            raise NotFound("webhook", webhook_id)
        return found

    async def list(self, tenant_id: str, request: ListRequest) -> Page[Webhook]:
        return await self.store.list_webhooks(tenant_id, request)

    async def update(
        self, tenant_id: str, webhook_id: str, paths: Sequence[str], values: dict[str, Any]
    ) -> Webhook:
        """Change the masked fields; ``state = active`` re-enables a disabled endpoint."""
        if not paths:
            raise InvalidArgument("update_mask", "must name at least one field")
        for path in paths:
            if path not in UPDATABLE:
                raise InvalidArgument("update_mask", f"{path!r} cannot be updated")
        await self.get(tenant_id, webhook_id)
        changes: dict[str, Any] = {"update_time": time.time()}
        if "url" in paths:
            await self._checked(values["url"])
            changes["url"] = values["url"]
        if "event_types" in paths:
            changes["event_types"] = sorted(set(values["event_types"]))
        if "display_name" in paths:
            changes["display_name"] = values["display_name"]
        if "state" in paths:
            if values["state"] not in ("active", "disabled"):
                raise InvalidArgument("webhook.state", "must be STATE_ACTIVE or STATE_DISABLED")
            changes["state"] = values["state"]
            changes["disabled_reason"] = (
                "" if values["state"] == "active" else "disabled by an admin"
            )
            changes["failing_since"] = None
        await self.store.change_webhook(tenant_id, webhook_id, **changes)
        return await self.get(tenant_id, webhook_id)

    async def rotate(
        self, tenant_id: str, webhook_id: str, overlap: float | None
    ) -> tuple[Webhook, str]:
        """A new secret; the current one keeps signing for ``overlap`` seconds (24 h)."""
        webhook = await self.get(tenant_id, webhook_id)
        secret, now = new_secret(), time.time()
        await self.store.change_webhook(
            tenant_id,
            webhook_id,
            secret=secret,
            previous_secret=webhook.secret,
            previous_secret_expire_time=now + (DEFAULT_OVERLAP if overlap is None else overlap),
            update_time=now,
        )
        return await self.get(tenant_id, webhook_id), secret

    async def delete(self, tenant_id: str, webhook_id: str) -> None:
        if not await self.store.delete_webhook(tenant_id, webhook_id):
            raise NotFound("webhook", webhook_id)

    # -- deliveries ------------------------------------------------------------------------

    async def fan_out(self, session: AsyncConnection, event: EventRecord) -> None:
        """Create the deliveries of a new event (inside the transaction recording it); once
        it commits, those due now are handed to the dispatcher with their webhook."""
        now = time.time()
        first_delay = self.policy()[0][0]
        due: list[_Attempt] = []
        for webhook in await self.store.active_webhooks(session, event.tenant_id):
            if webhook.event_types and event.type not in webhook.event_types:
                continue
            row = Delivery(
                id=str(uuid.uuid4()),
                tenant_id=event.tenant_id,
                webhook_id=webhook.id,
                event_id=event.id,
                event_type=event.type,
                state="pending",
                attempts=0,
                last_status_code=0,
                last_error="",
                next_attempt_time=now + first_delay,
                manual=False,
                attempt_log=[],
                create_time=now,
                update_time=now,
            )
            due.append(_Attempt(row, webhook, event))
        if not due:
            return
        await self.store.add_deliveries(session, [attempt.delivery for attempt in due])

        def committed() -> None:
            if first_delay <= 0:  # beyond HANDED_OVER, the dispatcher reads them
                self._handed += due[: max(0, HANDED_OVER - len(self._handed))]
            self._wake.set()

        after_commit(session, committed)

    async def list_deliveries(self, tenant_id: str, request: ListRequest) -> Page[Delivery]:
        return await self.store.list_deliveries(tenant_id, request)

    async def redeliver(self, tenant_id: str, delivery_id: str) -> Delivery:
        """Attempt a delivery again now, whatever its state; returns it after the attempt."""
        delivery = await self.store.delivery(tenant_id, delivery_id)
        if delivery is None:
            raise NotFound("delivery", delivery_id)
        webhook = await self.get(tenant_id, delivery.webhook_id)
        if webhook.state != "active":
            raise FailedPrecondition(
                "the webhook is disabled; enable it (UpdateWebhook state) before redelivering"
            )
        await self._settle([await self._attempt(_Attempt(delivery), manual=True)])
        found = await self.store.delivery(tenant_id, delivery_id)
        assert found is not None
        return found

    async def run(self, stop: asyncio.Event) -> None:
        """The dispatcher (a background task): attempt every delivery that is due, in
        rounds (see the module docstring)."""
        try:
            await self._dispatch(stop)
        finally:
            self.connections.close()

    async def _dispatch(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self._wake.clear()
            self.connections.prune()
            try:
                handed, self._handed = self._handed[:ROUND], self._handed[ROUND:]
                taken = {attempt.delivery.id for attempt in handed}
                due = await self.store.due_deliveries(time.time(), ROUND)
                attempts = handed + [_Attempt(d) for d in due if d.id not in taken]
                await self._settle(await asyncio.gather(*map(self._attempt, attempts)))
                if len(due) == ROUND or self._handed:
                    continue
                upcoming = await self.store.next_delivery_time()
            except Exception:
                log.warning("webhooks: cannot attempt due deliveries", exc_info=True)
                upcoming = None
            pause = 1.0 if upcoming is None else max(0.0, min(1.0, upcoming - time.time()))
            waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self._wake.wait())]
            await asyncio.wait(waiters, timeout=pause, return_when="FIRST_COMPLETED")
            for waiter in waiters:
                waiter.cancel()

    async def _attempt(self, attempt: _Attempt, manual: bool = False) -> _Outcome:
        """One attempt of a delivery (POSTed unless its webhook or event is gone); its
        outcome, to record with :meth:`_settle`."""
        delivery, webhook, event_ = attempt.delivery, attempt.webhook, attempt.event
        if webhook is None:
            webhook = await self.store.webhook(delivery.tenant_id, delivery.webhook_id)
        if event_ is None:
            event_ = await self.store.event_by_id(delivery.event_id)
        now = time.time()
        if webhook is None or webhook.state != "active" or event_ is None:
            why = "webhook disabled" if webhook else "webhook deleted"
            if event_ is None:
                why = "event past retention"
            failing_since = webhook.failing_since if webhook else None
            values: dict[str, Any] = {
                "state": "failed",
                "last_error": why,
                "next_attempt_time": None,
            }
            return _Outcome(delivery, None, failing_since, {**values, "update_time": now})
        status, error, excerpt, seconds = await self._post(webhook, event_, now)
        number = delivery.attempts + 1
        record = {
            "attempt": number,
            "attempt_time": now,
            "status_code": status,
            "error": error,
            "latency_seconds": seconds,
            "response_excerpt": excerpt,
            "manual": manual,
        }
        ok = not error
        state, next_time = "succeeded", None
        if not ok:
            state, next_time = self._after_failure(number, now, manual)
        failing_since = None if ok else (webhook.failing_since or now)
        disable = ""
        if status == 410:
            disable = "the endpoint answered 410 Gone"
        elif failing_since is not None and now - failing_since >= self.policy()[1]:
            since = dt.datetime.fromtimestamp(failing_since, dt.UTC).isoformat(timespec="seconds")
            disable = f"every delivery failed since {since}"
        values = {
            "state": state,
            "attempts": number,
            "last_status_code": status,
            "last_error": error,
            "next_attempt_time": next_time,
            "manual": manual,
            "attempt_log": [*delivery.attempt_log, record][-ATTEMPT_LOG:],
            "update_time": time.time(),
        }
        return _Outcome(delivery, webhook, failing_since, values, disable)

    async def _settle(self, outcomes: Sequence[_Outcome]) -> None:
        """Record the outcomes in one transaction, then disable the webhooks they condemn
        (an outcome another attempt of the same delivery recorded first is dropped)."""
        if not outcomes:
            return
        saved = await self.store.save_attempts(
            [(o.delivery, o.delivery.attempts, o.failing_since, o.values) for o in outcomes]
        )
        now = time.time()
        for outcome, recorded in zip(outcomes, saved, strict=True):
            if recorded and outcome.disable and outcome.webhook is not None:
                await self._disable(outcome.webhook, outcome.disable, now)

    def _after_failure(self, number: int, now: float, manual: bool) -> tuple[str, float | None]:
        """(state, next attempt time) after the ``number``-th attempt failed."""
        schedule = self.policy()[0]
        if manual or number >= len(schedule):
            return "failed", None
        jitter = 1 + random.uniform(-self.config.retry_jitter, self.config.retry_jitter)
        return "pending", now + schedule[number] * jitter

    async def _post(
        self, webhook: Webhook, event_: EventRecord, now: float
    ) -> tuple[int, str, str, float]:
        """(status, error or "", response excerpt, seconds) of one POST."""
        body = payload(event_)
        stamp = int(now)
        signatures = [sign(webhook.secret, event_.id, stamp, body)]
        if webhook.previous_secret and (webhook.previous_secret_expire_time or 0) > now:
            signatures.append(sign(webhook.previous_secret, event_.id, stamp, body))
        headers = [
            ("webhook-id", event_.id),
            ("webhook-timestamp", str(stamp)),
            ("webhook-signature", " ".join(signatures)),
        ]
        started = time.perf_counter()
        try:
            target = await self.guard.check(webhook.url)
            answer = await post(
                self.guard,
                target,
                headers,
                body,
                connect_timeout=self.config.connect_timeout_seconds,
                read_timeout=self.config.read_timeout_seconds,
                connections=self.connections,
            )
        except Refused as exc:
            return 0, f"refused: {exc}", "", time.perf_counter() - started
        except TimeoutError:
            return 0, "timed out", "", time.perf_counter() - started
        except Exception as exc:  # connection refused or reset, TLS, a broken response
            return 0, f"{type(exc).__name__}: {exc}", "", time.perf_counter() - started
        excerpt = answer.body[:EXCERPT_BYTES].decode("utf-8", "replace")
        error = "" if 200 <= answer.status < 300 else f"HTTP {answer.status}"
        return answer.status, error, excerpt, answer.seconds

    async def _disable(self, webhook: Webhook, reason: str, now: float) -> None:
        disabled = event(
            "webhook.disabled",
            webhook.tenant_id,
            f"webhooks/{webhook.id}",
            {"webhook_id": webhook.id, "url": webhook.url, "reason": reason},
            at=now,
        )
        if await self.store.disable_webhook(webhook, reason, now, disabled):
            log.warning("webhook disabled", extra={"webhook_id": webhook.id, "reason": reason})
