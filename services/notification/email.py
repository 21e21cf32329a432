"""Email: who gets which event by email, the messages, and their delivery through SMTP.

The planner (a background task) reads the event log after its cursor. For each event it
finds the users who want it by email — the user it concerns, the tenant's admins for
tenant-wide warnings, and users whose preferences ask for every event they may see —
checks their preferences (``domain.effective``) and what they may see
(``feed.visible``), asks identity for their addresses, and queues one message per
recipient, moving its cursor in the same transaction; a message is keyed by (event,
user), so a replayed event queues nothing twice. While identity cannot answer, the
cursor stays and the planner tries again.

The sender (another background task) hands each queued message to the SMTP server
(aiosmtplib; STARTTLS, implicit TLS or none, optional credentials) and retries a refused
or failed send with backoff for about a day before marking it failed. Messages are plain
text plus HTML (multipart/alternative), with a summary of the results and no links.
Without ``ALEA_SMTP_HOST`` email is off: nothing is planned or queued.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import logging
import time
import uuid
from email.message import EmailMessage
from typing import Any, Protocol

import aiosmtplib

from services.notification.config import SmtpConfig
from services.notification.feed import concerns, visible
from services.notification.store import Email, EventRecord, NotificationStore, Preferences
from services.runtime.context import Principal
from services.runtime.events import type_name
from services.runtime.peers import Contact

__all__ = ["Mailer", "Planner", "compose", "default_types", "wants"]

log = logging.getLogger(__name__)
PLANNER = "email-planner"
RETRY_DELAYS = (60.0, 300.0, 900.0, 1800.0, 3600.0, 3600.0, 7200.0, 7200.0, 14400.0, 28800.0)
ADMIN_WIDE = ("quota.warning", "webhook.disabled")


class Contacts(Protocol):
    """Identity's ListContacts."""

    async def contacts(
        self, tenant_id: str, user_ids: list[str], include_admins: bool
    ) -> list[Contact]: ...


def default_types(role: str) -> set[str]:
    """What a user gets by email until they choose: their simulations' outcomes, and
    for admins the tenant's quota warnings and disabled webhooks."""
    types = {"simulation.succeeded", "simulation.failed"}
    return types | set(ADMIN_WIDE) if role == "admin" else types


def wants(contact: Contact, prefs: Preferences | None, tenant_id: str, event: EventRecord) -> bool:
    """Whether ``contact`` should get ``event`` by email under their preferences."""
    if contact.disabled or not contact.email:
        return False
    principal = Principal(user_id=contact.user_id, tenant_id=tenant_id, role=contact.role)
    if not visible(principal, event):
        return False
    name = type_name(event.type)
    if prefs is None:
        enabled, quiet, only_mine = True, False, True
        types = default_types(contact.role)
    else:
        enabled, quiet, only_mine = prefs.email_enabled, prefs.quiet, prefs.email_only_mine
        types = {type_name(t) for t in prefs.email_event_types} or default_types(contact.role)
    if quiet or not enabled or name not in types:
        return False
    if name in ADMIN_WIDE:  # the tenant's business: its admins' (and the user who caused it)
        mine = contact.role == "admin" or event.user_id == contact.user_id
    else:
        mine = concerns(contact.user_id, event)
    return mine or not only_mine


def _number(value: Any) -> str:
    return "—" if value is None else f"{value:,.6g}"


def compose(event: EventRecord) -> tuple[str, str, str]:
    """(subject, plain text, HTML) of the email about ``event``; no links."""
    name, data = type_name(event.type), event.data
    lines: list[str]
    rows: list[list[str]] = []
    if name in ("simulation.succeeded", "simulation.failed"):
        sim = data.get("simulation_id", "")
        outcome = "finished" if name == "simulation.succeeded" else "failed"
        subject = f"Alea: simulation {sim[:8]} {outcome}"
        lines = [
            f"Simulation {sim} {outcome}.",
            f"Model: {data.get('model_id', '')}  Trials: {_number(data.get('trials'))}",
        ]
        if name == "simulation.failed":
            lines.append(f"Reason: {data.get('reason', '')}")
        for result in data.get("results", []):
            rows.append(
                [
                    str(result.get("output", "")),
                    *(_number(result.get(k)) for k in ("mean", "p5", "p50", "p95")),
                ]
            )
    elif name == "quota.warning":
        percent = data.get("percent")
        subject = f"Alea: storage at {percent}% of the quota"
        lines = [
            f"Your tenant uses {_number(data.get('used_bytes'))} of its "
            f"{_number(data.get('limit_bytes'))} bytes of storage ({percent}% reached).",
        ]
    else:
        subject = f"Alea: {name}"
        lines = [f"{name} on {event.resource}"]
        lines += [f"{key}: {value}" for key, value in sorted(data.items())]
    text = "\n".join(lines)
    if rows:
        header = ["output", "mean", "P5", "P50", "P95"]
        text += "\n\n" + "\n".join("  ".join(row) for row in [header, *rows])
    body = "".join(f"<p>{html.escape(line)}</p>" for line in lines)
    if rows:
        cells = "".join(f"<th>{h}</th>" for h in ("output", "mean", "P5", "P50", "P95"))
        body += f"<table><tr>{cells}</tr>"
        for row in rows:
            body += "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>"
        body += "</table>"
    return subject, text + "\n", f"<html><body>{body}</body></html>"


def message_row(tenant_id: str, key: str, to: str, subject: str, text: str, page: str) -> Email:
    """A queued email, due now."""
    now = time.time()
    return Email(
        id=str(uuid.uuid4()),
        tenant_id=tenant_id,
        dedup_key=key,
        recipient=to,
        subject=subject,
        text_body=text,
        html_body=page,
        state="pending",
        attempts=0,
        last_error="",
        next_attempt_time=now,
        create_time=now,
        update_time=now,
    )


class Planner:
    """Turns new events of the log into queued emails (a background task)."""

    def __init__(self, store: NotificationStore, contacts: Contacts, poll_seconds: float) -> None:
        self.store, self.contacts, self.poll_seconds = store, contacts, poll_seconds

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                while await self.plan_once():
                    pass
            except Exception:  # identity or the database is away: the cursor waits
                log.warning("email: cannot plan; retrying", exc_info=True)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.poll_seconds)

    async def plan_once(self) -> int:
        """Plan the next events after the cursor; returns how many were read."""
        after = await self.store.cursor(PLANNER)
        if after is None:  # first start: email from now on, not the whole history
            after = await self.store.last_seq()
            await self.store.add_emails([], (PLANNER, after))
            return 0
        batch = await self.store.events_after(after, 100)
        if not batch:
            return 0
        rows: list[Email] = []
        for event in batch:
            rows += await self._messages(event)
        await self.store.add_emails(rows, (PLANNER, batch[-1].seq))
        return len(batch)

    async def _messages(self, event: EventRecord) -> list[Email]:
        named = {event.user_id} - {""}
        broad = {p.user_id: p for p in await self.store.broad_preferences(event.tenant_id)}
        admins = type_name(event.type) in ADMIN_WIDE
        candidates = sorted(named | set(broad))
        if not candidates and not admins:
            return []
        contacts = await self.contacts.contacts(event.tenant_id, candidates, admins)
        stored = {
            p.user_id: p
            for p in await self.store.preferences(event.tenant_id, [c.user_id for c in contacts])
        }
        subject, text, page = compose(event)
        return [
            message_row(event.tenant_id, f"{event.id}:{c.user_id}", c.email, subject, text, page)
            for c in contacts
            if wants(c, stored.get(c.user_id), event.tenant_id, event)
        ]


class Mailer:
    """Sends queued emails through SMTP (a background task)."""

    def __init__(self, store: NotificationStore, smtp: SmtpConfig, poll_seconds: float) -> None:
        self.store, self.smtp, self.poll_seconds = store, smtp, poll_seconds

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                for email in await self.store.due_emails(time.time(), 20):
                    await self.send(email)
            except Exception:
                log.warning("email: cannot read the queue; retrying", exc_info=True)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.poll_seconds)

    async def send(self, email: Email) -> None:
        """One attempt; a failure is retried later, after the last delay it is given up."""
        message = EmailMessage()
        message["From"] = self.smtp.sender
        message["To"] = email.recipient
        message["Subject"] = email.subject
        message["Message-ID"] = f"<{email.id}@alea>"
        message.set_content(email.text_body)
        if email.html_body:
            message.add_alternative(email.html_body, subtype="html")
        now = time.time()
        try:
            await aiosmtplib.send(
                message,
                hostname=self.smtp.host,
                port=self.smtp.port,
                start_tls=self.smtp.security == "starttls",
                use_tls=self.smtp.security == "tls",
                username=self.smtp.username or None,
                password=self.smtp.password or None,
                cert_bundle=self.smtp.ca_file or None,
                timeout=self.smtp.timeout_seconds,
            )
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            attempts = email.attempts + 1
            given_up = attempts > len(RETRY_DELAYS)
            await self.store.save_email(
                email.id,
                state="failed" if given_up else "pending",
                attempts=attempts,
                last_error=f"{type(exc).__name__}: {exc}"[:2000],
                next_attempt_time=None if given_up else now + RETRY_DELAYS[attempts - 1],
                update_time=now,
            )
            log.warning("email not sent; will retry", extra={"email_id": email.id})
            return
        await self.store.save_email(
            email.id, state="sent", attempts=email.attempts + 1, last_error="", update_time=now
        )
