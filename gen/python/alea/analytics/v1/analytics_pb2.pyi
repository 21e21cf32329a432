import datetime

from alea.access.v1 import access_pb2 as _access_pb2
from alea.notification.v1 import notification_pb2 as _notification_pb2
from alea.simulation.v1 import simulation_pb2 as _simulation_pb2
from buf.validate import validate_pb2 as _validate_pb2
from google.api import annotations_pb2 as _annotations_pb2
from google.api import httpbody_pb2 as _httpbody_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class UsageMetric(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    USAGE_METRIC_UNSPECIFIED: _ClassVar[UsageMetric]
    USAGE_METRIC_TRIALS: _ClassVar[UsageMetric]
    USAGE_METRIC_SIMULATIONS: _ClassVar[UsageMetric]
    USAGE_METRIC_COMPUTE_SECONDS: _ClassVar[UsageMetric]
    USAGE_METRIC_UPLOADED_BYTES: _ClassVar[UsageMetric]
    USAGE_METRIC_API_CALLS: _ClassVar[UsageMetric]
    USAGE_METRIC_CPU_SECONDS: _ClassVar[UsageMetric]
    USAGE_METRIC_GPU_SECONDS: _ClassVar[UsageMetric]
    USAGE_METRIC_STORAGE_BYTE_DAYS: _ClassVar[UsageMetric]
    USAGE_METRIC_TRIALS_RUN: _ClassVar[UsageMetric]

class UsageDimension(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    USAGE_DIMENSION_UNSPECIFIED: _ClassVar[UsageDimension]
    USAGE_DIMENSION_USER: _ClassVar[UsageDimension]
    USAGE_DIMENSION_STATE: _ClassVar[UsageDimension]
    USAGE_DIMENSION_BACKEND: _ClassVar[UsageDimension]

class ReportFormat(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    REPORT_FORMAT_UNSPECIFIED: _ClassVar[ReportFormat]
    REPORT_FORMAT_HTML: _ClassVar[ReportFormat]
    REPORT_FORMAT_CSV: _ClassVar[ReportFormat]

class Granularity(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    GRANULARITY_UNSPECIFIED: _ClassVar[Granularity]
    GRANULARITY_HOUR: _ClassVar[Granularity]
    GRANULARITY_DAY: _ClassVar[Granularity]
    GRANULARITY_MONTH: _ClassVar[Granularity]
USAGE_METRIC_UNSPECIFIED: UsageMetric
USAGE_METRIC_TRIALS: UsageMetric
USAGE_METRIC_SIMULATIONS: UsageMetric
USAGE_METRIC_COMPUTE_SECONDS: UsageMetric
USAGE_METRIC_UPLOADED_BYTES: UsageMetric
USAGE_METRIC_API_CALLS: UsageMetric
USAGE_METRIC_CPU_SECONDS: UsageMetric
USAGE_METRIC_GPU_SECONDS: UsageMetric
USAGE_METRIC_STORAGE_BYTE_DAYS: UsageMetric
USAGE_METRIC_TRIALS_RUN: UsageMetric
USAGE_DIMENSION_UNSPECIFIED: UsageDimension
USAGE_DIMENSION_USER: UsageDimension
USAGE_DIMENSION_STATE: UsageDimension
USAGE_DIMENSION_BACKEND: UsageDimension
REPORT_FORMAT_UNSPECIFIED: ReportFormat
REPORT_FORMAT_HTML: ReportFormat
REPORT_FORMAT_CSV: ReportFormat
GRANULARITY_UNSPECIFIED: Granularity
GRANULARITY_HOUR: Granularity
GRANULARITY_DAY: Granularity
GRANULARITY_MONTH: Granularity

class RecordEventRequest(_message.Message):
    __slots__ = ("tenant_id", "user_id", "metric", "quantity", "event_time", "attributes", "request_id")
    class AttributesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    METRIC_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    EVENT_TIME_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    user_id: str
    metric: UsageMetric
    quantity: float
    event_time: _timestamp_pb2.Timestamp
    attributes: _containers.ScalarMap[str, str]
    request_id: str
    def __init__(self, tenant_id: _Optional[str] = ..., user_id: _Optional[str] = ..., metric: _Optional[_Union[UsageMetric, str]] = ..., quantity: _Optional[float] = ..., event_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., attributes: _Optional[_Mapping[str, str]] = ..., request_id: _Optional[str] = ...) -> None: ...

class RecordEventResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class IngestEventsRequest(_message.Message):
    __slots__ = ("events",)
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[_notification_pb2.Event]
    def __init__(self, events: _Optional[_Iterable[_Union[_notification_pb2.Event, _Mapping]]] = ...) -> None: ...

class IngestEventsResponse(_message.Message):
    __slots__ = ("recorded",)
    RECORDED_FIELD_NUMBER: _ClassVar[int]
    recorded: int
    def __init__(self, recorded: _Optional[int] = ...) -> None: ...

class GetUsageRequest(_message.Message):
    __slots__ = ("start_time", "end_time", "granularity", "metrics", "per_user", "tenant_id", "group_by")
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    GRANULARITY_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    PER_USER_FIELD_NUMBER: _ClassVar[int]
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    GROUP_BY_FIELD_NUMBER: _ClassVar[int]
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    granularity: Granularity
    metrics: _containers.RepeatedScalarFieldContainer[UsageMetric]
    per_user: bool
    tenant_id: str
    group_by: _containers.RepeatedScalarFieldContainer[UsageDimension]
    def __init__(self, start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., granularity: _Optional[_Union[Granularity, str]] = ..., metrics: _Optional[_Iterable[_Union[UsageMetric, str]]] = ..., per_user: _Optional[bool] = ..., tenant_id: _Optional[str] = ..., group_by: _Optional[_Iterable[_Union[UsageDimension, str]]] = ...) -> None: ...

class UsagePoint(_message.Message):
    __slots__ = ("start_time", "value")
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    start_time: _timestamp_pb2.Timestamp
    value: float
    def __init__(self, start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., value: _Optional[float] = ...) -> None: ...

class UsageSeries(_message.Message):
    __slots__ = ("metric", "user_id", "points", "total", "state", "backend")
    METRIC_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    POINTS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    metric: UsageMetric
    user_id: str
    points: _containers.RepeatedCompositeFieldContainer[UsagePoint]
    total: float
    state: str
    backend: str
    def __init__(self, metric: _Optional[_Union[UsageMetric, str]] = ..., user_id: _Optional[str] = ..., points: _Optional[_Iterable[_Union[UsagePoint, _Mapping]]] = ..., total: _Optional[float] = ..., state: _Optional[str] = ..., backend: _Optional[str] = ...) -> None: ...

class GetUsageResponse(_message.Message):
    __slots__ = ("start_time", "end_time", "series")
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    SERIES_FIELD_NUMBER: _ClassVar[int]
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    series: _containers.RepeatedCompositeFieldContainer[UsageSeries]
    def __init__(self, start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., series: _Optional[_Iterable[_Union[UsageSeries, _Mapping]]] = ...) -> None: ...

class GetPerformanceRequest(_message.Message):
    __slots__ = ("start_time", "end_time", "tenant_id")
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    tenant_id: str
    def __init__(self, start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., tenant_id: _Optional[str] = ...) -> None: ...

class BackendPerformance(_message.Message):
    __slots__ = ("backend", "simulations", "trials", "trials_per_second", "queue_wait_seconds_p50", "queue_wait_seconds_p95", "run_seconds_p50", "run_seconds_p95", "model_size_band")
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    SIMULATIONS_FIELD_NUMBER: _ClassVar[int]
    TRIALS_FIELD_NUMBER: _ClassVar[int]
    TRIALS_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    QUEUE_WAIT_SECONDS_P50_FIELD_NUMBER: _ClassVar[int]
    QUEUE_WAIT_SECONDS_P95_FIELD_NUMBER: _ClassVar[int]
    RUN_SECONDS_P50_FIELD_NUMBER: _ClassVar[int]
    RUN_SECONDS_P95_FIELD_NUMBER: _ClassVar[int]
    MODEL_SIZE_BAND_FIELD_NUMBER: _ClassVar[int]
    backend: _simulation_pb2.Backend
    simulations: int
    trials: int
    trials_per_second: float
    queue_wait_seconds_p50: float
    queue_wait_seconds_p95: float
    run_seconds_p50: float
    run_seconds_p95: float
    model_size_band: str
    def __init__(self, backend: _Optional[_Union[_simulation_pb2.Backend, str]] = ..., simulations: _Optional[int] = ..., trials: _Optional[int] = ..., trials_per_second: _Optional[float] = ..., queue_wait_seconds_p50: _Optional[float] = ..., queue_wait_seconds_p95: _Optional[float] = ..., run_seconds_p50: _Optional[float] = ..., run_seconds_p95: _Optional[float] = ..., model_size_band: _Optional[str] = ...) -> None: ...

class GetPerformanceResponse(_message.Message):
    __slots__ = ("start_time", "end_time", "backends", "cache_hit_ratio", "cache_hits")
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    BACKENDS_FIELD_NUMBER: _ClassVar[int]
    CACHE_HIT_RATIO_FIELD_NUMBER: _ClassVar[int]
    CACHE_HITS_FIELD_NUMBER: _ClassVar[int]
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    backends: _containers.RepeatedCompositeFieldContainer[BackendPerformance]
    cache_hit_ratio: float
    cache_hits: int
    def __init__(self, start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., backends: _Optional[_Iterable[_Union[BackendPerformance, _Mapping]]] = ..., cache_hit_ratio: _Optional[float] = ..., cache_hits: _Optional[int] = ...) -> None: ...

class GetReportRequest(_message.Message):
    __slots__ = ("start_time", "end_time", "top_users", "month", "tenant_id")
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    TOP_USERS_FIELD_NUMBER: _ClassVar[int]
    MONTH_FIELD_NUMBER: _ClassVar[int]
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    top_users: int
    month: str
    tenant_id: str
    def __init__(self, start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., top_users: _Optional[int] = ..., month: _Optional[str] = ..., tenant_id: _Optional[str] = ...) -> None: ...

class DownloadReportRequest(_message.Message):
    __slots__ = ("month", "format", "tenant_id")
    MONTH_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    month: str
    format: ReportFormat
    tenant_id: str
    def __init__(self, month: _Optional[str] = ..., format: _Optional[_Union[ReportFormat, str]] = ..., tenant_id: _Optional[str] = ...) -> None: ...

class MetricTotal(_message.Message):
    __slots__ = ("metric", "value")
    METRIC_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    metric: UsageMetric
    value: float
    def __init__(self, metric: _Optional[_Union[UsageMetric, str]] = ..., value: _Optional[float] = ...) -> None: ...

class UserUsage(_message.Message):
    __slots__ = ("user_id", "trials", "simulations", "compute_seconds", "trials_run", "cpu_seconds", "gpu_seconds", "uploaded_bytes", "storage_byte_days", "api_calls")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    TRIALS_FIELD_NUMBER: _ClassVar[int]
    SIMULATIONS_FIELD_NUMBER: _ClassVar[int]
    COMPUTE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    TRIALS_RUN_FIELD_NUMBER: _ClassVar[int]
    CPU_SECONDS_FIELD_NUMBER: _ClassVar[int]
    GPU_SECONDS_FIELD_NUMBER: _ClassVar[int]
    UPLOADED_BYTES_FIELD_NUMBER: _ClassVar[int]
    STORAGE_BYTE_DAYS_FIELD_NUMBER: _ClassVar[int]
    API_CALLS_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    trials: float
    simulations: float
    compute_seconds: float
    trials_run: float
    cpu_seconds: float
    gpu_seconds: float
    uploaded_bytes: float
    storage_byte_days: float
    api_calls: float
    def __init__(self, user_id: _Optional[str] = ..., trials: _Optional[float] = ..., simulations: _Optional[float] = ..., compute_seconds: _Optional[float] = ..., trials_run: _Optional[float] = ..., cpu_seconds: _Optional[float] = ..., gpu_seconds: _Optional[float] = ..., uploaded_bytes: _Optional[float] = ..., storage_byte_days: _Optional[float] = ..., api_calls: _Optional[float] = ...) -> None: ...

class Report(_message.Message):
    __slots__ = ("tenant_id", "start_time", "end_time", "totals", "top_users", "backends", "create_time", "simulations_by_state", "daily_trials", "cache_hit_ratio")
    class SimulationsByStateEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    TOTALS_FIELD_NUMBER: _ClassVar[int]
    TOP_USERS_FIELD_NUMBER: _ClassVar[int]
    BACKENDS_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    SIMULATIONS_BY_STATE_FIELD_NUMBER: _ClassVar[int]
    DAILY_TRIALS_FIELD_NUMBER: _ClassVar[int]
    CACHE_HIT_RATIO_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    totals: _containers.RepeatedCompositeFieldContainer[MetricTotal]
    top_users: _containers.RepeatedCompositeFieldContainer[UserUsage]
    backends: _containers.RepeatedCompositeFieldContainer[BackendPerformance]
    create_time: _timestamp_pb2.Timestamp
    simulations_by_state: _containers.ScalarMap[str, int]
    daily_trials: _containers.RepeatedCompositeFieldContainer[UsagePoint]
    cache_hit_ratio: float
    def __init__(self, tenant_id: _Optional[str] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., totals: _Optional[_Iterable[_Union[MetricTotal, _Mapping]]] = ..., top_users: _Optional[_Iterable[_Union[UserUsage, _Mapping]]] = ..., backends: _Optional[_Iterable[_Union[BackendPerformance, _Mapping]]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., simulations_by_state: _Optional[_Mapping[str, int]] = ..., daily_trials: _Optional[_Iterable[_Union[UsagePoint, _Mapping]]] = ..., cache_hit_ratio: _Optional[float] = ...) -> None: ...
