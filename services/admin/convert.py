"""Protobuf ↔ admin domain values: audit entries, checkpoints, settings, the overview."""

from __future__ import annotations

import math
import uuid
from typing import Any

from alea.admin.v1 import admin_pb2 as pb
from google.protobuf import json_format, struct_pb2, timestamp_pb2

from services.admin.chain import ChainEntry
from services.admin.overview import OverviewView, ServiceView
from services.admin.settings import SettingView
from services.admin.store import AuditDraft, Checkpoint, SettingChange

__all__ = [
    "checkpoint",
    "checkpoint_message",
    "draft",
    "draft_of_single",
    "event",
    "json_value",
    "overview",
    "setting",
    "setting_change",
    "timestamp",
    "value",
]

_SCOPES = {"platform": pb.SETTING_SCOPE_PLATFORM, "tenant": pb.SETTING_SCOPE_TENANT}
_TYPES = {
    "integer": pb.SETTING_TYPE_INTEGER,
    "number": pb.SETTING_TYPE_NUMBER,
    "boolean": pb.SETTING_TYPE_BOOLEAN,
    "string": pb.SETTING_TYPE_STRING,
    "number_list": pb.SETTING_TYPE_NUMBER_LIST,
}
_HEALTH = {
    "SERVING": pb.ServiceHealth.STATUS_SERVING,
    "NOT_SERVING": pb.ServiceHealth.STATUS_NOT_SERVING,
    "UNREACHABLE": pb.ServiceHealth.STATUS_UNREACHABLE,
}
# Ids of entries recorded through RecordAuditEvent, derived from (tenant, request id) so
# that a retry names the same entry.
_SINGLE = uuid.UUID("0b5e6c1e-7d43-4c55-9a57-0c3f3f6a1d2e")


def timestamp(seconds: float) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromNanoseconds(round(seconds * 1_000_000) * 1000)
    return stamp


def _seconds(stamp: timestamp_pb2.Timestamp) -> float:
    return stamp.seconds + stamp.nanos / 1e9


def _plain(value: Any) -> Any:
    """JSON from a Struct, with the numbers JSON cannot hold (NaN, infinities) as text."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def _details(details: struct_pb2.Struct) -> dict[str, Any]:
    plain: dict[str, Any] = _plain(json_format.MessageToDict(details))
    return plain


def draft(record: pb.AuditRecord) -> AuditDraft:
    return AuditDraft(
        id=record.id,
        tenant_id=record.tenant_id,
        service=record.service,
        actor=record.actor,
        api_key_id=record.api_key_id,
        action=record.action,
        resource=record.resource,
        outcome=record.outcome,
        request_id=record.request_id,
        client_address=record.client_address,
        details=_details(record.details),
        event_time=_seconds(record.event_time),
    )


def draft_of_single(request: pb.RecordAuditEventRequest, service: str) -> AuditDraft:
    """The entry of a RecordAuditEvent call; its id follows from the tenant and request id."""
    return AuditDraft(
        id=str(uuid.uuid5(_SINGLE, f"{request.tenant_id}/{request.request_id}")),
        tenant_id=request.tenant_id,
        service=service,
        actor=request.actor,
        api_key_id="",
        action=request.action,
        resource=request.resource,
        outcome=request.outcome,
        request_id=request.request_id,
        client_address="",
        details=_details(request.details),
        event_time=_seconds(request.event_time),
    )


def event(entry: ChainEntry) -> pb.AuditEvent:
    details = struct_pb2.Struct()
    details.update(entry.details)
    return pb.AuditEvent(
        id=entry.id,
        tenant_id=entry.tenant_id,
        sequence=entry.sequence,
        actor=entry.actor,
        action=entry.action,
        resource=entry.resource,
        outcome=entry.outcome,
        request_id=entry.request_id,
        details=details,
        event_time=timestamp(entry.event_time),
        previous_hash=entry.previous_hash,
        hash=entry.hash,
        create_time=timestamp(entry.create_time),
        api_key_id=entry.api_key_id,
        client_address=entry.client_address,
        service=entry.service,
    )


def checkpoint_message(found: Checkpoint) -> pb.AuditCheckpoint:
    return pb.AuditCheckpoint(
        tenant_id=found.tenant_id,
        sequence=found.sequence,
        head_hash=found.head_hash,
        create_time=timestamp(found.create_time),
        key_id=found.key_id,
        public_key=found.public_key,
        signature=found.signature,
    )


def checkpoint(message: pb.AuditCheckpoint) -> Checkpoint:
    return Checkpoint(
        tenant_id=message.tenant_id,
        sequence=message.sequence,
        head_hash=message.head_hash,
        create_time=round(_seconds(message.create_time), 6),
        key_id=message.key_id,
        public_key=message.public_key,
        signature=message.signature,
    )


def value(message: struct_pb2.Value) -> Any:
    """A google.protobuf.Value as a Python value, read field by field: json_format refuses
    a NaN or infinite number_value with a ValueError (an INTERNAL), whereas the setting's
    own check refuses it as INVALID_ARGUMENT naming ``setting.value``."""
    kind = message.WhichOneof("kind")
    if kind == "number_value":
        return message.number_value
    if kind == "string_value":
        return message.string_value
    if kind == "bool_value":
        return message.bool_value
    if kind == "list_value":
        return [value(item) for item in message.list_value.values]
    if kind == "struct_value":
        return {key: value(item) for key, item in message.struct_value.fields.items()}
    return None  # null_value, or no value at all


def json_value(python: Any) -> struct_pb2.Value:
    """A Python JSON value (a tuple as a list) as a google.protobuf.Value."""
    holder = struct_pb2.Struct()
    holder.update({"value": python})
    return holder.fields["value"]


def setting(view: SettingView) -> pb.Setting:
    spec, row = view.spec, view.row
    message = pb.Setting(
        key=spec.key,
        value=json_value(view.value),
        description=spec.description,
        from_default=row is None,
        tenant_id=view.tenant_id,
        updater_id=row.updater_id if row else "",
        scope=_SCOPES[spec.scope],
        type=_TYPES[spec.type],
        default_value=json_value(spec.default),
        allowed_values=list(spec.allowed),
        unit=spec.unit,
    )
    if row is not None:
        message.create_time.CopyFrom(timestamp(row.create_time))
        message.update_time.CopyFrom(timestamp(row.update_time))
    if spec.minimum is not None:
        message.minimum = spec.minimum
    if spec.maximum is not None:
        message.maximum = spec.maximum
    return message


def setting_change(change: SettingChange) -> pb.SettingChange:
    message = pb.SettingChange(
        id=change.id,
        key=change.key,
        tenant_id=change.tenant_id,
        new_value=json_value(change.new_value),
        actor=change.actor,
        reason=change.reason,
        change_time=timestamp(change.change_time),
    )
    if change.old_value is not None:
        message.old_value.CopyFrom(json_value(change.old_value))
    return message


def _service(view: ServiceView) -> pb.ServiceHealth:
    return pb.ServiceHealth(
        name=view.name,
        status=_HEALTH[view.status],
        latency_ms=view.latency_ms,
        version=view.version,
        instance=view.instance,
        uptime_seconds=view.uptime_seconds,
        recent_requests=view.recent_requests,
        recent_errors=view.recent_errors,
        recent_error_ratio=view.error_ratio,
        outbox_pending=view.outbox_pending,
    )


def overview(view: OverviewView) -> pb.SystemOverview:
    return pb.SystemOverview(
        services=[_service(s) for s in view.services],
        users=view.users,
        simulations_queued=view.simulations_queued,
        simulations_running=view.simulations_running,
        workers=view.workers,
        gpu_devices=view.gpu_devices,
        storage_used_bytes=view.storage_used_bytes,
        storage_quota_bytes=view.storage_quota_bytes,
        snapshot_time=timestamp(view.snapshot_time),
        platform=view.platform,
        segments_queued=view.segments_queued,
        segments_running=view.segments_running,
        oldest_queued_seconds=view.oldest_queued_seconds,
        workers_cpu=view.workers_cpu,
        workers_gpu=view.workers_gpu,
        events_backlog=view.events_backlog,
        audit_backlog=view.audit_backlog,
        webhook_backlog=view.webhook_backlog,
        audit_events=view.audit_events,
    )
