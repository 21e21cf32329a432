import datetime

from alea.access.v1 import access_pb2 as _access_pb2
from alea.identity.v1 import identity_pb2 as _identity_pb2
from buf.validate import validate_pb2 as _validate_pb2
from google.api import annotations_pb2 as _annotations_pb2
from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.api import httpbody_pb2 as _httpbody_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ExportFormat(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EXPORT_FORMAT_UNSPECIFIED: _ClassVar[ExportFormat]
    EXPORT_FORMAT_CSV: _ClassVar[ExportFormat]
    EXPORT_FORMAT_NDJSON: _ClassVar[ExportFormat]

class SettingScope(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SETTING_SCOPE_UNSPECIFIED: _ClassVar[SettingScope]
    SETTING_SCOPE_PLATFORM: _ClassVar[SettingScope]
    SETTING_SCOPE_TENANT: _ClassVar[SettingScope]

class SettingType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SETTING_TYPE_UNSPECIFIED: _ClassVar[SettingType]
    SETTING_TYPE_INTEGER: _ClassVar[SettingType]
    SETTING_TYPE_NUMBER: _ClassVar[SettingType]
    SETTING_TYPE_BOOLEAN: _ClassVar[SettingType]
    SETTING_TYPE_STRING: _ClassVar[SettingType]
    SETTING_TYPE_NUMBER_LIST: _ClassVar[SettingType]
EXPORT_FORMAT_UNSPECIFIED: ExportFormat
EXPORT_FORMAT_CSV: ExportFormat
EXPORT_FORMAT_NDJSON: ExportFormat
SETTING_SCOPE_UNSPECIFIED: SettingScope
SETTING_SCOPE_PLATFORM: SettingScope
SETTING_SCOPE_TENANT: SettingScope
SETTING_TYPE_UNSPECIFIED: SettingType
SETTING_TYPE_INTEGER: SettingType
SETTING_TYPE_NUMBER: SettingType
SETTING_TYPE_BOOLEAN: SettingType
SETTING_TYPE_STRING: SettingType
SETTING_TYPE_NUMBER_LIST: SettingType

class AuditEvent(_message.Message):
    __slots__ = ("id", "tenant_id", "sequence", "actor", "action", "resource", "outcome", "request_id", "details", "event_time", "previous_hash", "hash", "create_time", "api_key_id", "client_address", "service")
    ID_FIELD_NUMBER: _ClassVar[int]
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    RESOURCE_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    DETAILS_FIELD_NUMBER: _ClassVar[int]
    EVENT_TIME_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_HASH_FIELD_NUMBER: _ClassVar[int]
    HASH_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    API_KEY_ID_FIELD_NUMBER: _ClassVar[int]
    CLIENT_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    id: str
    tenant_id: str
    sequence: int
    actor: str
    action: str
    resource: str
    outcome: str
    request_id: str
    details: _struct_pb2.Struct
    event_time: _timestamp_pb2.Timestamp
    previous_hash: str
    hash: str
    create_time: _timestamp_pb2.Timestamp
    api_key_id: str
    client_address: str
    service: str
    def __init__(self, id: _Optional[str] = ..., tenant_id: _Optional[str] = ..., sequence: _Optional[int] = ..., actor: _Optional[str] = ..., action: _Optional[str] = ..., resource: _Optional[str] = ..., outcome: _Optional[str] = ..., request_id: _Optional[str] = ..., details: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., event_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., previous_hash: _Optional[str] = ..., hash: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., api_key_id: _Optional[str] = ..., client_address: _Optional[str] = ..., service: _Optional[str] = ...) -> None: ...

class AuditRecord(_message.Message):
    __slots__ = ("id", "tenant_id", "actor", "api_key_id", "action", "resource", "outcome", "request_id", "client_address", "service", "details", "event_time")
    ID_FIELD_NUMBER: _ClassVar[int]
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    API_KEY_ID_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    RESOURCE_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    CLIENT_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    DETAILS_FIELD_NUMBER: _ClassVar[int]
    EVENT_TIME_FIELD_NUMBER: _ClassVar[int]
    id: str
    tenant_id: str
    actor: str
    api_key_id: str
    action: str
    resource: str
    outcome: str
    request_id: str
    client_address: str
    service: str
    details: _struct_pb2.Struct
    event_time: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., tenant_id: _Optional[str] = ..., actor: _Optional[str] = ..., api_key_id: _Optional[str] = ..., action: _Optional[str] = ..., resource: _Optional[str] = ..., outcome: _Optional[str] = ..., request_id: _Optional[str] = ..., client_address: _Optional[str] = ..., service: _Optional[str] = ..., details: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., event_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class RecordAuditEventsRequest(_message.Message):
    __slots__ = ("records",)
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    records: _containers.RepeatedCompositeFieldContainer[AuditRecord]
    def __init__(self, records: _Optional[_Iterable[_Union[AuditRecord, _Mapping]]] = ...) -> None: ...

class RecordAuditEventsResponse(_message.Message):
    __slots__ = ("appended",)
    APPENDED_FIELD_NUMBER: _ClassVar[int]
    appended: int
    def __init__(self, appended: _Optional[int] = ...) -> None: ...

class RecordAuditEventRequest(_message.Message):
    __slots__ = ("tenant_id", "actor", "action", "resource", "outcome", "request_id", "details", "event_time")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    RESOURCE_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    DETAILS_FIELD_NUMBER: _ClassVar[int]
    EVENT_TIME_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    actor: str
    action: str
    resource: str
    outcome: str
    request_id: str
    details: _struct_pb2.Struct
    event_time: _timestamp_pb2.Timestamp
    def __init__(self, tenant_id: _Optional[str] = ..., actor: _Optional[str] = ..., action: _Optional[str] = ..., resource: _Optional[str] = ..., outcome: _Optional[str] = ..., request_id: _Optional[str] = ..., details: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., event_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ListAuditEventsRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "filter", "order_by", "tenant_id")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    ORDER_BY_FIELD_NUMBER: _ClassVar[int]
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    filter: str
    order_by: str
    tenant_id: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., filter: _Optional[str] = ..., order_by: _Optional[str] = ..., tenant_id: _Optional[str] = ...) -> None: ...

class ExportAuditEventsRequest(_message.Message):
    __slots__ = ("filter", "order_by", "tenant_id", "format")
    FILTER_FIELD_NUMBER: _ClassVar[int]
    ORDER_BY_FIELD_NUMBER: _ClassVar[int]
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    filter: str
    order_by: str
    tenant_id: str
    format: ExportFormat
    def __init__(self, filter: _Optional[str] = ..., order_by: _Optional[str] = ..., tenant_id: _Optional[str] = ..., format: _Optional[_Union[ExportFormat, str]] = ...) -> None: ...

class ListAuditEventsResponse(_message.Message):
    __slots__ = ("audit_events", "next_page_token")
    AUDIT_EVENTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    audit_events: _containers.RepeatedCompositeFieldContainer[AuditEvent]
    next_page_token: str
    def __init__(self, audit_events: _Optional[_Iterable[_Union[AuditEvent, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class VerifyAuditChainRequest(_message.Message):
    __slots__ = ("tenant_id", "start_sequence", "end_sequence", "checkpoint")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    START_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    END_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    start_sequence: int
    end_sequence: int
    checkpoint: AuditCheckpoint
    def __init__(self, tenant_id: _Optional[str] = ..., start_sequence: _Optional[int] = ..., end_sequence: _Optional[int] = ..., checkpoint: _Optional[_Union[AuditCheckpoint, _Mapping]] = ...) -> None: ...

class VerifyAuditChainResponse(_message.Message):
    __slots__ = ("valid", "events_checked", "first_invalid_sequence", "reason", "head_sequence", "checkpoint")
    VALID_FIELD_NUMBER: _ClassVar[int]
    EVENTS_CHECKED_FIELD_NUMBER: _ClassVar[int]
    FIRST_INVALID_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    HEAD_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    valid: bool
    events_checked: int
    first_invalid_sequence: int
    reason: str
    head_sequence: int
    checkpoint: AuditCheckpoint
    def __init__(self, valid: _Optional[bool] = ..., events_checked: _Optional[int] = ..., first_invalid_sequence: _Optional[int] = ..., reason: _Optional[str] = ..., head_sequence: _Optional[int] = ..., checkpoint: _Optional[_Union[AuditCheckpoint, _Mapping]] = ...) -> None: ...

class AuditCheckpoint(_message.Message):
    __slots__ = ("tenant_id", "sequence", "head_hash", "create_time", "key_id", "public_key", "signature")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    HEAD_HASH_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    sequence: int
    head_hash: str
    create_time: _timestamp_pb2.Timestamp
    key_id: str
    public_key: bytes
    signature: bytes
    def __init__(self, tenant_id: _Optional[str] = ..., sequence: _Optional[int] = ..., head_hash: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., key_id: _Optional[str] = ..., public_key: _Optional[bytes] = ..., signature: _Optional[bytes] = ...) -> None: ...

class GetAuditCheckpointRequest(_message.Message):
    __slots__ = ("tenant_id", "sequence")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    sequence: int
    def __init__(self, tenant_id: _Optional[str] = ..., sequence: _Optional[int] = ...) -> None: ...

class CreateAuditCheckpointRequest(_message.Message):
    __slots__ = ("tenant_id",)
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    def __init__(self, tenant_id: _Optional[str] = ...) -> None: ...

class Setting(_message.Message):
    __slots__ = ("key", "value", "description", "from_default", "tenant_id", "updater_id", "create_time", "update_time", "scope", "type", "default_value", "minimum", "maximum", "allowed_values", "unit")
    KEY_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    FROM_DEFAULT_FIELD_NUMBER: _ClassVar[int]
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    UPDATER_ID_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_VALUE_FIELD_NUMBER: _ClassVar[int]
    MINIMUM_FIELD_NUMBER: _ClassVar[int]
    MAXIMUM_FIELD_NUMBER: _ClassVar[int]
    ALLOWED_VALUES_FIELD_NUMBER: _ClassVar[int]
    UNIT_FIELD_NUMBER: _ClassVar[int]
    key: str
    value: _struct_pb2.Value
    description: str
    from_default: bool
    tenant_id: str
    updater_id: str
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    scope: SettingScope
    type: SettingType
    default_value: _struct_pb2.Value
    minimum: float
    maximum: float
    allowed_values: _containers.RepeatedScalarFieldContainer[str]
    unit: str
    def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., description: _Optional[str] = ..., from_default: _Optional[bool] = ..., tenant_id: _Optional[str] = ..., updater_id: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., scope: _Optional[_Union[SettingScope, str]] = ..., type: _Optional[_Union[SettingType, str]] = ..., default_value: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., minimum: _Optional[float] = ..., maximum: _Optional[float] = ..., allowed_values: _Optional[_Iterable[str]] = ..., unit: _Optional[str] = ...) -> None: ...

class GetSettingRequest(_message.Message):
    __slots__ = ("key", "tenant_id")
    KEY_FIELD_NUMBER: _ClassVar[int]
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    key: str
    tenant_id: str
    def __init__(self, key: _Optional[str] = ..., tenant_id: _Optional[str] = ...) -> None: ...

class SetSettingRequest(_message.Message):
    __slots__ = ("setting", "tenant_id", "reason")
    SETTING_FIELD_NUMBER: _ClassVar[int]
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    setting: Setting
    tenant_id: str
    reason: str
    def __init__(self, setting: _Optional[_Union[Setting, _Mapping]] = ..., tenant_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class ListSettingsRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "filter", "order_by", "tenant_id")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    ORDER_BY_FIELD_NUMBER: _ClassVar[int]
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    filter: str
    order_by: str
    tenant_id: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., filter: _Optional[str] = ..., order_by: _Optional[str] = ..., tenant_id: _Optional[str] = ...) -> None: ...

class ListSettingsResponse(_message.Message):
    __slots__ = ("settings", "next_page_token")
    SETTINGS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    settings: _containers.RepeatedCompositeFieldContainer[Setting]
    next_page_token: str
    def __init__(self, settings: _Optional[_Iterable[_Union[Setting, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class SettingChange(_message.Message):
    __slots__ = ("id", "key", "tenant_id", "old_value", "new_value", "actor", "reason", "change_time")
    ID_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    OLD_VALUE_FIELD_NUMBER: _ClassVar[int]
    NEW_VALUE_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    CHANGE_TIME_FIELD_NUMBER: _ClassVar[int]
    id: int
    key: str
    tenant_id: str
    old_value: _struct_pb2.Value
    new_value: _struct_pb2.Value
    actor: str
    reason: str
    change_time: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[int] = ..., key: _Optional[str] = ..., tenant_id: _Optional[str] = ..., old_value: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., new_value: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., actor: _Optional[str] = ..., reason: _Optional[str] = ..., change_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ListSettingChangesRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "filter", "order_by", "tenant_id")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    ORDER_BY_FIELD_NUMBER: _ClassVar[int]
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    filter: str
    order_by: str
    tenant_id: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., filter: _Optional[str] = ..., order_by: _Optional[str] = ..., tenant_id: _Optional[str] = ...) -> None: ...

class ListSettingChangesResponse(_message.Message):
    __slots__ = ("changes", "next_page_token")
    CHANGES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    changes: _containers.RepeatedCompositeFieldContainer[SettingChange]
    next_page_token: str
    def __init__(self, changes: _Optional[_Iterable[_Union[SettingChange, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetEffectiveSettingsRequest(_message.Message):
    __slots__ = ("known_version",)
    KNOWN_VERSION_FIELD_NUMBER: _ClassVar[int]
    known_version: int
    def __init__(self, known_version: _Optional[int] = ...) -> None: ...

class SettingValue(_message.Message):
    __slots__ = ("key", "tenant_id", "value")
    KEY_FIELD_NUMBER: _ClassVar[int]
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    key: str
    tenant_id: str
    value: _struct_pb2.Value
    def __init__(self, key: _Optional[str] = ..., tenant_id: _Optional[str] = ..., value: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ...) -> None: ...

class EffectiveSettings(_message.Message):
    __slots__ = ("version", "unchanged", "values")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    UNCHANGED_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    version: int
    unchanged: bool
    values: _containers.RepeatedCompositeFieldContainer[SettingValue]
    def __init__(self, version: _Optional[int] = ..., unchanged: _Optional[bool] = ..., values: _Optional[_Iterable[_Union[SettingValue, _Mapping]]] = ...) -> None: ...

class GetSystemOverviewRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ServiceHealth(_message.Message):
    __slots__ = ("name", "status", "latency_ms", "version", "instance", "uptime_seconds", "recent_requests", "recent_errors", "recent_error_ratio", "outbox_pending")
    class Status(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        STATUS_UNSPECIFIED: _ClassVar[ServiceHealth.Status]
        STATUS_SERVING: _ClassVar[ServiceHealth.Status]
        STATUS_NOT_SERVING: _ClassVar[ServiceHealth.Status]
        STATUS_UNREACHABLE: _ClassVar[ServiceHealth.Status]
    STATUS_UNSPECIFIED: ServiceHealth.Status
    STATUS_SERVING: ServiceHealth.Status
    STATUS_NOT_SERVING: ServiceHealth.Status
    STATUS_UNREACHABLE: ServiceHealth.Status
    class OutboxPendingEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    INSTANCE_FIELD_NUMBER: _ClassVar[int]
    UPTIME_SECONDS_FIELD_NUMBER: _ClassVar[int]
    RECENT_REQUESTS_FIELD_NUMBER: _ClassVar[int]
    RECENT_ERRORS_FIELD_NUMBER: _ClassVar[int]
    RECENT_ERROR_RATIO_FIELD_NUMBER: _ClassVar[int]
    OUTBOX_PENDING_FIELD_NUMBER: _ClassVar[int]
    name: str
    status: ServiceHealth.Status
    latency_ms: float
    version: str
    instance: str
    uptime_seconds: float
    recent_requests: int
    recent_errors: int
    recent_error_ratio: float
    outbox_pending: _containers.ScalarMap[str, int]
    def __init__(self, name: _Optional[str] = ..., status: _Optional[_Union[ServiceHealth.Status, str]] = ..., latency_ms: _Optional[float] = ..., version: _Optional[str] = ..., instance: _Optional[str] = ..., uptime_seconds: _Optional[float] = ..., recent_requests: _Optional[int] = ..., recent_errors: _Optional[int] = ..., recent_error_ratio: _Optional[float] = ..., outbox_pending: _Optional[_Mapping[str, int]] = ...) -> None: ...

class SystemOverview(_message.Message):
    __slots__ = ("services", "users", "simulations_queued", "simulations_running", "workers", "gpu_devices", "storage_used_bytes", "storage_quota_bytes", "snapshot_time", "platform", "segments_queued", "segments_running", "oldest_queued_seconds", "workers_cpu", "workers_gpu", "events_backlog", "audit_backlog", "webhook_backlog", "audit_events")
    SERVICES_FIELD_NUMBER: _ClassVar[int]
    USERS_FIELD_NUMBER: _ClassVar[int]
    SIMULATIONS_QUEUED_FIELD_NUMBER: _ClassVar[int]
    SIMULATIONS_RUNNING_FIELD_NUMBER: _ClassVar[int]
    WORKERS_FIELD_NUMBER: _ClassVar[int]
    GPU_DEVICES_FIELD_NUMBER: _ClassVar[int]
    STORAGE_USED_BYTES_FIELD_NUMBER: _ClassVar[int]
    STORAGE_QUOTA_BYTES_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOT_TIME_FIELD_NUMBER: _ClassVar[int]
    PLATFORM_FIELD_NUMBER: _ClassVar[int]
    SEGMENTS_QUEUED_FIELD_NUMBER: _ClassVar[int]
    SEGMENTS_RUNNING_FIELD_NUMBER: _ClassVar[int]
    OLDEST_QUEUED_SECONDS_FIELD_NUMBER: _ClassVar[int]
    WORKERS_CPU_FIELD_NUMBER: _ClassVar[int]
    WORKERS_GPU_FIELD_NUMBER: _ClassVar[int]
    EVENTS_BACKLOG_FIELD_NUMBER: _ClassVar[int]
    AUDIT_BACKLOG_FIELD_NUMBER: _ClassVar[int]
    WEBHOOK_BACKLOG_FIELD_NUMBER: _ClassVar[int]
    AUDIT_EVENTS_FIELD_NUMBER: _ClassVar[int]
    services: _containers.RepeatedCompositeFieldContainer[ServiceHealth]
    users: int
    simulations_queued: int
    simulations_running: int
    workers: int
    gpu_devices: int
    storage_used_bytes: int
    storage_quota_bytes: int
    snapshot_time: _timestamp_pb2.Timestamp
    platform: bool
    segments_queued: int
    segments_running: int
    oldest_queued_seconds: float
    workers_cpu: int
    workers_gpu: int
    events_backlog: int
    audit_backlog: int
    webhook_backlog: int
    audit_events: int
    def __init__(self, services: _Optional[_Iterable[_Union[ServiceHealth, _Mapping]]] = ..., users: _Optional[int] = ..., simulations_queued: _Optional[int] = ..., simulations_running: _Optional[int] = ..., workers: _Optional[int] = ..., gpu_devices: _Optional[int] = ..., storage_used_bytes: _Optional[int] = ..., storage_quota_bytes: _Optional[int] = ..., snapshot_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., platform: _Optional[bool] = ..., segments_queued: _Optional[int] = ..., segments_running: _Optional[int] = ..., oldest_queued_seconds: _Optional[float] = ..., workers_cpu: _Optional[int] = ..., workers_gpu: _Optional[int] = ..., events_backlog: _Optional[int] = ..., audit_backlog: _Optional[int] = ..., webhook_backlog: _Optional[int] = ..., audit_events: _Optional[int] = ...) -> None: ...

class DisableUserRequest(_message.Message):
    __slots__ = ("user_id", "reason")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    reason: str
    def __init__(self, user_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class ChangeUserRoleRequest(_message.Message):
    __slots__ = ("user_id", "role", "reason")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    role: _access_pb2.Role
    reason: str
    def __init__(self, user_id: _Optional[str] = ..., role: _Optional[_Union[_access_pb2.Role, str]] = ..., reason: _Optional[str] = ...) -> None: ...

class EnableUserRequest(_message.Message):
    __slots__ = ("user_id", "reason")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    reason: str
    def __init__(self, user_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...
