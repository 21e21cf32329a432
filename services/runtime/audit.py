"""The audit trail every service keeps, recorded by the runtime rather than by handlers.

The interceptor hands each finished RPC to :meth:`AuditTrail.finished`, which records:

- every call of an RPC that changes something (``MethodRule.audit_calls``: by default
  any RPC whose name is not a read, see ``access.READ_PREFIXES``; the proto's
  ``(alea.access.v1.rule).audit`` may add reads or leave out relaying plumbing);
- every call refused for its credentials or its rights (UNAUTHENTICATED,
  PERMISSION_DENIED), whatever the RPC.

An entry says who (user, API key or service; ``anonymous`` without valid credentials),
the tenant, the RPC, the resource (an id from the request, or from the response of a
create), the outcome, the request id, the client address (the edge's
``x-forwarded-for`` for calls through the edge) and when. It never carries a request's
or a response's content — no passwords, tokens, secrets or file bytes: only resource
ids, the field names of an update mask, the reason of a refusal, and what a handler
adds with :func:`note` (a setting's old and new value, a reason).

**Off the request path.** :meth:`AuditTrail.finished` only appends the entry to a
bounded in-memory buffer (a few microseconds); the :meth:`AuditTrail.run` background task
writes the buffer in batches (one outbox record per batch, topic ``audit``) every
``flush_seconds``, and the runtime's outbox :class:`~services.runtime.outbox.Relay`
delivers the batches, at least once and in order, to the admin service, which appends
them to the tenant's hash chain and skips entries it already has (entry ids). Once an
entry is in the outbox it is never lost; before that, a process killed with SIGKILL
loses the entries of its last ``flush_seconds`` (SIGTERM flushes them). When the buffer
is full (the database unreachable for long), further entries are counted rather than
kept, and one entry saying how many were dropped is recorded once there is room.
"""

from __future__ import annotations

import asyncio
import collections
import contextvars
import logging
import re
import time
import uuid
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import grpc
from alea.admin.v1 import admin_pb2
from google.protobuf import descriptor_pool, struct_pb2
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from services.runtime import access
from services.runtime.context import Principal
from services.runtime.convert import timestamp_of_seconds
from services.runtime.db import Database
from services.runtime.interceptor import Call
from services.runtime.outbox import Outbox, OutboxItem

__all__ = ["TOPIC", "AuditEntry", "AuditTrail", "acting", "note", "resource_of"]

log = logging.getLogger(__name__)

TOPIC = "audit"
REFUSALS = frozenset({grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED})
_MAX_BATCH = 1000
_notes: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "alea_audit_notes", default=None
)
_acting: contextvars.ContextVar[tuple[str, str] | None] = contextvars.ContextVar(
    "alea_audit_acting", default=None
)


def note(**details: Any) -> None:
    """Add ``details`` (JSON values, never secrets) to the audit entry of the RPC being
    handled, e.g. ``note(old_value=1, new_value=2)``."""
    notes = _notes.get()
    if notes is None:
        notes = {}
        _notes.set(notes)
    notes.update(details)


def acting(user_id: str, tenant_id: str) -> None:
    """Name who acts in a public RPC of the call being handled (a refreshed or ended
    session's user), which no credentials named; its entry goes to their tenant's log."""
    _acting.set((user_id, tenant_id))


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One recorded call, as it waits in the buffer."""

    id: str
    tenant_id: str
    actor: str
    api_key_id: str
    action: str
    resource: str
    outcome: str
    request_id: str
    client_address: str
    details: dict[str, Any]
    event_time: float

    def to_record(self, service: str) -> admin_pb2.AuditRecord:
        details = struct_pb2.Struct()
        details.update(self.details)
        stamp = timestamp_of_seconds(self.event_time)
        return admin_pb2.AuditRecord(
            id=self.id,
            tenant_id=self.tenant_id,
            actor=self.actor,
            api_key_id=self.api_key_id,
            action=self.action,
            resource=self.resource,
            outcome=self.outcome,
            request_id=self.request_id[:128],
            client_address=self.client_address[:256],
            service=service,
            details=details,
            event_time=stamp,
        )


# -- resources: which id in a request or response names what the call acted on ----------

_SKIPPED_IDS = frozenset({"request_id", "tenant_id"})


def _collection(name: str) -> str:
    """``api_key`` or ``ApiKey`` → ``apiKeys``: the AIP-122 collection of a resource."""
    words = [w for w in re.split(r"_|(?=[A-Z])", name) if w]
    camel = words[0].lower() + "".join(w.capitalize() for w in words[1:])
    return camel if camel.endswith("s") else camel + "s"


Path = tuple[tuple[str, ...], str]  # (field path, collection)


def _paths(message: Descriptor, *, response: bool) -> list[Path]:
    """Where a resource's id sits in messages of this type, most specific first."""
    found: list[Path] = []
    fields = message.fields
    if response and "id" in message.fields_by_name:
        found.append((("id",), _collection(message.name)))
    for f in fields:
        if f.type == FieldDescriptor.TYPE_STRING and f.name.endswith("_id"):
            if f.name not in _SKIPPED_IDS and not response:
                found.append(((f.name,), _collection(f.name[:-3])))
        elif f.message_type is not None and not f.is_repeated:
            inner = f.message_type.fields_by_name
            for key in ("id", "key"):
                if key in inner and inner[key].type == FieldDescriptor.TYPE_STRING:
                    found.append(((f.name, key), _collection(f.name)))
                    break
    if not response and "tenant_id" in message.fields_by_name:
        found.append((("tenant_id",), "tenants"))
    return found


@cache
def _plan(method: str) -> tuple[list[Path], list[Path]]:
    """(request paths, response paths) of ``/package.Service/Method``."""
    try:
        rpc = descriptor_pool.Default().FindMethodByName(method.lstrip("/").replace("/", "."))
    except KeyError:
        return [], []
    return _paths(rpc.input_type, response=False), _paths(rpc.output_type, response=True)


def _get(message: Message, path: tuple[str, ...]) -> str:
    value: Any = message
    for name in path:
        value = getattr(value, name, "")
    return value if isinstance(value, str) else ""


def resource_of(method: str, request: Message | None, response: Message | None) -> str:
    """The resource a call acted on, e.g. ``simulations/<id>``; empty when none shows.

    The response names it first (what a create made, what an update returned), else the
    request (a delete, a refused call)."""
    request_paths, response_paths = _plan(method)
    for message, paths in ((response, response_paths), (request, request_paths)):
        if message is None:
            continue
        for path, collection in paths:
            value = _get(message, path)
            if value:
                return f"{collection}/{value}"
    return ""


def _tenant_of(message: Message | None) -> str:
    """A tenant a request or response names (``tenant_id``, ``user.tenant_id``, ``tenant.id``)."""
    if message is None:
        return ""
    for path in (("tenant_id",), ("user", "tenant_id"), ("tenant", "id")):
        value = _get(message, path)
        if value:
            return value
    return ""


# -- the trail ------------------------------------------------------------------------------


@dataclass
class AuditTrail:
    """Collects the audit entries of ``service``'s RPCs and writes them to its outbox."""

    service: str
    db: Database
    outbox: Outbox
    capacity: int = 100_000
    flush_seconds: float = 0.1
    _buffer: collections.deque[AuditEntry] = field(default_factory=collections.deque)
    _dropped: int = 0
    _wake: asyncio.Event = field(default_factory=asyncio.Event)

    def finished(self, call: Call) -> None:
        """Record ``call`` if it is audited (see the module docstring); never raises."""
        notes, acted = _notes.get(), _acting.get()
        if notes is not None:
            _notes.set(None)
        if acted is not None:
            _acting.set(None)
        rule = access.method_rule(call.method)
        refused = call.code in REFUSALS
        if not refused and (rule is None or not rule.audit_calls):
            return
        if len(self._buffer) >= self.capacity:
            self._dropped += 1
            return
        self._buffer.append(self._entry(call, refused, notes, acted))
        if len(self._buffer) >= _MAX_BATCH:
            self._wake.set()

    def _entry(
        self,
        call: Call,
        refused: bool,
        notes: dict[str, Any] | None,
        acted: tuple[str, str] | None,
    ) -> AuditEntry:
        principal = call.principal or Principal()
        if not principal.user_id and not principal.service and acted is not None:
            principal = Principal(user_id=acted[0], tenant_id=acted[1])
        if principal.user_id:
            actor = principal.user_id
        elif principal.service:
            actor = f"service:{principal.service}"
        else:  # a public RPC: the user it signed in or up, if any
            actor = _get(call.response, ("user", "id")) if call.response else ""
            actor = actor or "anonymous"
        details: dict[str, Any] = dict(notes or {})
        mask = getattr(call.request, "update_mask", None)
        if mask is not None and mask.paths:
            details["fields"] = list(mask.paths)
        if refused and call.error:
            details["reason"] = call.error[:300]
        tenant = principal.tenant_id or _tenant_of(call.request) or _tenant_of(call.response)
        return AuditEntry(
            id=str(uuid.uuid4()),
            tenant_id=tenant,
            actor=actor,
            api_key_id=principal.api_key_id,
            action=call.method.lstrip("/"),
            resource=resource_of(call.method, call.request, call.response),
            outcome=call.code.name,
            request_id=call.request_id,
            client_address=call.client_address(),
            details=details,
            event_time=time.time(),
        )

    @property
    def pending(self) -> int:
        """Entries waiting in memory (not yet in the outbox)."""
        return len(self._buffer)

    async def run(self, stop: asyncio.Event) -> None:
        """Write the buffer to the outbox every ``flush_seconds`` (at once when a batch is
        full) until ``stop``, then once more."""
        failures = 0
        while not stop.is_set():
            waits = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self._wake.wait())]
            delay = self.flush_seconds * min(2**failures, 100)
            await asyncio.wait(waits, timeout=delay, return_when=asyncio.FIRST_COMPLETED)
            for waiter in waits:
                waiter.cancel()
            self._wake.clear()
            try:
                await self.flush()
                failures = 0
            except Exception:  # the database is away: keep the entries, try again later
                failures += 1
                log.warning("audit: cannot write to the outbox; %d entries wait", self.pending)
        try:
            await self.flush()
        except Exception:
            log.error("audit: %d entries lost at shutdown (database unreachable)", self.pending)

    async def flush(self) -> int:
        """Write the entries buffered when called to the outbox, in one transaction (a
        record per 1000 entries); returns how many.

        Entries recorded while it writes wait for the next flush: writing them at once
        would make one flush a string of tiny transactions for as long as calls keep
        coming, each costing as much as a full one.
        """
        entries = [self._buffer.popleft() for _ in range(len(self._buffer))]
        dropped, self._dropped = self._dropped, 0
        if dropped:
            entries.append(self._dropped_entry(dropped))
        if not entries:
            return 0
        items, key = [], f"audit/{self.service}"
        for at in range(0, len(entries), _MAX_BATCH):
            batch = entries[at : at + _MAX_BATCH]
            request = admin_pb2.RecordAuditEventsRequest(
                records=[entry.to_record(self.service) for entry in batch]
            )
            items.append(OutboxItem(TOPIC, key, batch[0].id, request.SerializeToString()))
        try:
            async with self.db.transaction() as session:
                await self.outbox.add(session, *items)
        except BaseException:
            self._buffer.extendleft(reversed(entries[:-1] if dropped else entries))
            self._dropped += dropped
            raise
        return len(entries)

    def _dropped_entry(self, count: int) -> AuditEntry:
        return AuditEntry(
            id=str(uuid.uuid4()),
            tenant_id="",
            actor=f"service:{self.service}",
            api_key_id="",
            action="alea.audit/EntriesDropped",
            resource="",
            outcome=grpc.StatusCode.RESOURCE_EXHAUSTED.name,
            request_id="",
            client_address="",
            details={"dropped": count, "capacity": self.capacity},
            event_time=time.time(),
        )
