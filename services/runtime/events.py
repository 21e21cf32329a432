"""Platform events: what a service records when something happens, for notification.

A producer builds an event with :func:`event` and writes it with ``Outbox.add`` in the
transaction of the change it describes; :func:`events_relay` is the background task that
relays the service's events to notification's PublishEvent (deduplicated there by event
id) and a copy of each (topic ``analytics``) to analytics' IngestEvents, which records
the usage they carry. Each event is ordered after the earlier events of its ``resource``.

Event types have two spellings: the proto enum (``EVENT_TYPE_SIMULATION_SUCCEEDED``) and
the dotted name of webhook payloads and the CLI (``simulation.succeeded``); :data:`TYPES`
maps one to the other.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Mapping
from functools import partial
from typing import TYPE_CHECKING, Any

from alea.notification.v1 import notification_pb2 as pb
from google.protobuf import struct_pb2

from services.runtime.convert import timestamp_of_seconds
from services.runtime.db import Database
from services.runtime.outbox import Outbox, OutboxItem, Relay, RelaySettings
from services.runtime.peers import Peers

if TYPE_CHECKING:
    from services.runtime.server import Background

__all__ = ["ENUM_NAMES", "NAMES", "TOPIC", "TYPES", "event", "events_relay", "type_name"]

TOPIC = "events"
ANALYTICS_TOPIC = "analytics"

TYPES: dict[str, int] = {
    "simulation.created": pb.EVENT_TYPE_SIMULATION_CREATED,
    "simulation.started": pb.EVENT_TYPE_SIMULATION_STARTED,
    "simulation.succeeded": pb.EVENT_TYPE_SIMULATION_SUCCEEDED,
    "simulation.failed": pb.EVENT_TYPE_SIMULATION_FAILED,
    "simulation.cancelled": pb.EVENT_TYPE_SIMULATION_CANCELLED,
    "file.uploaded": pb.EVENT_TYPE_FILE_UPLOADED,
    "file.shared": pb.EVENT_TYPE_FILE_SHARED,
    "file.deleted": pb.EVENT_TYPE_FILE_DELETED,
    "quota.warning": pb.EVENT_TYPE_QUOTA_WARNING,
    "user.invited": pb.EVENT_TYPE_USER_INVITED,
    "user.role_changed": pb.EVENT_TYPE_USER_ROLE_CHANGED,
    "api_key.created": pb.EVENT_TYPE_API_KEY_CREATED,
    "api_key.revoked": pb.EVENT_TYPE_API_KEY_REVOKED,
    "webhook.disabled": pb.EVENT_TYPE_WEBHOOK_DISABLED,
    "audit.checkpoint": pb.EVENT_TYPE_AUDIT_CHECKPOINT,
}
"""Dotted name → ``EventType`` number, for every event type."""

NAMES: dict[int, str] = {number: name for name, number in TYPES.items()}
"""``EventType`` number → dotted name."""

ENUM_NAMES: dict[str, int] = {pb.EventType.Name(number): number for number in NAMES}
"""``EventType`` value name (``EVENT_TYPE_SIMULATION_SUCCEEDED``) → number."""


def type_name(number: int) -> str:
    """The dotted name of an ``EventType`` number (``unknown`` for one this build lacks)."""
    return NAMES.get(number, "unknown")


def event(
    type_: str,
    tenant_id: str,
    resource: str,
    data: Mapping[str, Any],
    *,
    user_id: str = "",
    at: float | None = None,
) -> OutboxItem:
    """The outbox record of a new event (a fresh id) of dotted type ``type_``.

    ``resource`` (``simulations/<id>``) also orders it after that resource's earlier
    events; ``user_id`` is the user it concerns; ``data`` must be JSON-like.
    """
    payload = struct_pb2.Struct()
    payload.update(dict(data))
    stamp = timestamp_of_seconds(time.time() if at is None else at)
    message = pb.Event(
        id=str(uuid.uuid4()),
        tenant_id=tenant_id,
        type=TYPES[type_],  # type: ignore[arg-type]
        user_id=user_id,
        resource=resource,
        data=payload,
        event_time=stamp,
    )
    return OutboxItem(TOPIC, resource, message.id, message.SerializeToString())


def events_relay(db: Database, outbox: Outbox, peers: Peers) -> Background:
    """The background task relaying this service's events to notification, and their
    copies to analytics (each its own relay: either sink may be down alone)."""
    outbox.copy(TOPIC, ANALYTICS_TOPIC)
    settings = RelaySettings.from_env()
    relays = (
        Relay(
            db,
            outbox,
            TOPIC,
            peers.notification.publish,
            settings,
            partial(peers.reconnected, "notification"),
        ),
        Relay(
            db,
            outbox,
            ANALYTICS_TOPIC,
            peers.analytics.ingest_event,
            settings,
            partial(peers.reconnected, "analytics"),
        ),
    )

    async def run(stop: asyncio.Event) -> None:
        await asyncio.gather(*(relay.run(stop) for relay in relays))

    return run
