import datetime

from alea.access.v1 import access_pb2 as _access_pb2
from alea.simulation.v1 import analysis_pb2 as _analysis_pb2
from alea.simulation.v1 import convergence_pb2 as _convergence_pb2
from alea.simulation.v1 import fitting_pb2 as _fitting_pb2
from alea.simulation.v1 import model_spec_pb2 as _model_spec_pb2
from buf.validate import validate_pb2 as _validate_pb2
from google.api import annotations_pb2 as _annotations_pb2
from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.api import httpbody_pb2 as _httpbody_pb2
from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import empty_pb2 as _empty_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ModelSource(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MODEL_SOURCE_UNSPECIFIED: _ClassVar[ModelSource]
    MODEL_SOURCE_WORKBOOK: _ClassVar[ModelSource]
    MODEL_SOURCE_SPEC: _ClassVar[ModelSource]

class Sampling(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SAMPLING_UNSPECIFIED: _ClassVar[Sampling]
    SAMPLING_MONTE_CARLO: _ClassVar[Sampling]
    SAMPLING_LATIN_HYPERCUBE: _ClassVar[Sampling]
    SAMPLING_SOBOL: _ClassVar[Sampling]

class BackendPreference(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    BACKEND_PREFERENCE_UNSPECIFIED: _ClassVar[BackendPreference]
    BACKEND_PREFERENCE_AUTO: _ClassVar[BackendPreference]
    BACKEND_PREFERENCE_CPU: _ClassVar[BackendPreference]
    BACKEND_PREFERENCE_GPU: _ClassVar[BackendPreference]
    BACKEND_PREFERENCE_NATIVE: _ClassVar[BackendPreference]
    BACKEND_PREFERENCE_NUMPY: _ClassVar[BackendPreference]

class Backend(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    BACKEND_UNSPECIFIED: _ClassVar[Backend]
    BACKEND_CPU: _ClassVar[Backend]
    BACKEND_GPU: _ClassVar[Backend]
    BACKEND_NATIVE: _ClassVar[Backend]
MODEL_SOURCE_UNSPECIFIED: ModelSource
MODEL_SOURCE_WORKBOOK: ModelSource
MODEL_SOURCE_SPEC: ModelSource
SAMPLING_UNSPECIFIED: Sampling
SAMPLING_MONTE_CARLO: Sampling
SAMPLING_LATIN_HYPERCUBE: Sampling
SAMPLING_SOBOL: Sampling
BACKEND_PREFERENCE_UNSPECIFIED: BackendPreference
BACKEND_PREFERENCE_AUTO: BackendPreference
BACKEND_PREFERENCE_CPU: BackendPreference
BACKEND_PREFERENCE_GPU: BackendPreference
BACKEND_PREFERENCE_NATIVE: BackendPreference
BACKEND_PREFERENCE_NUMPY: BackendPreference
BACKEND_UNSPECIFIED: Backend
BACKEND_CPU: Backend
BACKEND_GPU: Backend
BACKEND_NATIVE: Backend

class ModelInput(_message.Message):
    __slots__ = ("name", "address", "kind", "summary")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    name: str
    address: str
    kind: _model_spec_pb2.DistributionKind
    summary: str
    def __init__(self, name: _Optional[str] = ..., address: _Optional[str] = ..., kind: _Optional[_Union[_model_spec_pb2.DistributionKind, str]] = ..., summary: _Optional[str] = ...) -> None: ...

class ModelOutput(_message.Message):
    __slots__ = ("name", "address")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    name: str
    address: str
    def __init__(self, name: _Optional[str] = ..., address: _Optional[str] = ...) -> None: ...

class ModelWarning(_message.Message):
    __slots__ = ("location", "message")
    LOCATION_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    location: str
    message: str
    def __init__(self, location: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class Model(_message.Message):
    __slots__ = ("id", "tenant_id", "display_name", "source", "file_id", "content_hash", "inputs", "outputs", "warnings", "creator_id", "create_time", "update_time", "simulations")
    ID_FIELD_NUMBER: _ClassVar[int]
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    FILE_ID_FIELD_NUMBER: _ClassVar[int]
    CONTENT_HASH_FIELD_NUMBER: _ClassVar[int]
    INPUTS_FIELD_NUMBER: _ClassVar[int]
    OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    WARNINGS_FIELD_NUMBER: _ClassVar[int]
    CREATOR_ID_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    SIMULATIONS_FIELD_NUMBER: _ClassVar[int]
    id: str
    tenant_id: str
    display_name: str
    source: ModelSource
    file_id: str
    content_hash: str
    inputs: _containers.RepeatedCompositeFieldContainer[ModelInput]
    outputs: _containers.RepeatedCompositeFieldContainer[ModelOutput]
    warnings: _containers.RepeatedCompositeFieldContainer[ModelWarning]
    creator_id: str
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    simulations: int
    def __init__(self, id: _Optional[str] = ..., tenant_id: _Optional[str] = ..., display_name: _Optional[str] = ..., source: _Optional[_Union[ModelSource, str]] = ..., file_id: _Optional[str] = ..., content_hash: _Optional[str] = ..., inputs: _Optional[_Iterable[_Union[ModelInput, _Mapping]]] = ..., outputs: _Optional[_Iterable[_Union[ModelOutput, _Mapping]]] = ..., warnings: _Optional[_Iterable[_Union[ModelWarning, _Mapping]]] = ..., creator_id: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., simulations: _Optional[int] = ...) -> None: ...

class CreateModelRequest(_message.Message):
    __slots__ = ("display_name", "workbook", "file_id", "spec", "request_id")
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    WORKBOOK_FIELD_NUMBER: _ClassVar[int]
    FILE_ID_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    display_name: str
    workbook: bytes
    file_id: str
    spec: _model_spec_pb2.ModelSpec
    request_id: str
    def __init__(self, display_name: _Optional[str] = ..., workbook: _Optional[bytes] = ..., file_id: _Optional[str] = ..., spec: _Optional[_Union[_model_spec_pb2.ModelSpec, _Mapping]] = ..., request_id: _Optional[str] = ...) -> None: ...

class GetModelRequest(_message.Message):
    __slots__ = ("model_id",)
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    model_id: str
    def __init__(self, model_id: _Optional[str] = ...) -> None: ...

class ListModelsRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "filter", "order_by")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    ORDER_BY_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    filter: str
    order_by: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., filter: _Optional[str] = ..., order_by: _Optional[str] = ...) -> None: ...

class ListModelsResponse(_message.Message):
    __slots__ = ("models", "next_page_token")
    MODELS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    models: _containers.RepeatedCompositeFieldContainer[Model]
    next_page_token: str
    def __init__(self, models: _Optional[_Iterable[_Union[Model, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class DeleteModelRequest(_message.Message):
    __slots__ = ("model_id",)
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    model_id: str
    def __init__(self, model_id: _Optional[str] = ...) -> None: ...

class Simulation(_message.Message):
    __slots__ = ("id", "tenant_id", "model_id", "creator_id", "state", "state_reason", "trials", "trials_done", "seed", "sampling", "backend_preference", "backend", "priority", "cached", "create_time", "update_time", "start_time", "end_time", "vary_simulation_seeds", "convergence", "scenarios")
    class State(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        STATE_UNSPECIFIED: _ClassVar[Simulation.State]
        STATE_QUEUED: _ClassVar[Simulation.State]
        STATE_RUNNING: _ClassVar[Simulation.State]
        STATE_SUCCEEDED: _ClassVar[Simulation.State]
        STATE_FAILED: _ClassVar[Simulation.State]
        STATE_CANCELLED: _ClassVar[Simulation.State]
    STATE_UNSPECIFIED: Simulation.State
    STATE_QUEUED: Simulation.State
    STATE_RUNNING: Simulation.State
    STATE_SUCCEEDED: Simulation.State
    STATE_FAILED: Simulation.State
    STATE_CANCELLED: Simulation.State
    ID_FIELD_NUMBER: _ClassVar[int]
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    CREATOR_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    STATE_REASON_FIELD_NUMBER: _ClassVar[int]
    TRIALS_FIELD_NUMBER: _ClassVar[int]
    TRIALS_DONE_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    SAMPLING_FIELD_NUMBER: _ClassVar[int]
    BACKEND_PREFERENCE_FIELD_NUMBER: _ClassVar[int]
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    CACHED_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    VARY_SIMULATION_SEEDS_FIELD_NUMBER: _ClassVar[int]
    CONVERGENCE_FIELD_NUMBER: _ClassVar[int]
    SCENARIOS_FIELD_NUMBER: _ClassVar[int]
    id: str
    tenant_id: str
    model_id: str
    creator_id: str
    state: Simulation.State
    state_reason: str
    trials: int
    trials_done: int
    seed: int
    sampling: Sampling
    backend_preference: BackendPreference
    backend: Backend
    priority: int
    cached: bool
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    vary_simulation_seeds: bool
    convergence: _convergence_pb2.ConvergenceSettings
    scenarios: _containers.RepeatedCompositeFieldContainer[_analysis_pb2.ScenarioTarget]
    def __init__(self, id: _Optional[str] = ..., tenant_id: _Optional[str] = ..., model_id: _Optional[str] = ..., creator_id: _Optional[str] = ..., state: _Optional[_Union[Simulation.State, str]] = ..., state_reason: _Optional[str] = ..., trials: _Optional[int] = ..., trials_done: _Optional[int] = ..., seed: _Optional[int] = ..., sampling: _Optional[_Union[Sampling, str]] = ..., backend_preference: _Optional[_Union[BackendPreference, str]] = ..., backend: _Optional[_Union[Backend, str]] = ..., priority: _Optional[int] = ..., cached: _Optional[bool] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., vary_simulation_seeds: _Optional[bool] = ..., convergence: _Optional[_Union[_convergence_pb2.ConvergenceSettings, _Mapping]] = ..., scenarios: _Optional[_Iterable[_Union[_analysis_pb2.ScenarioTarget, _Mapping]]] = ...) -> None: ...

class CreateSimulationRequest(_message.Message):
    __slots__ = ("model_id", "trials", "seed", "sampling", "backend", "priority", "request_id", "bypass_cache", "vary_simulation_seeds", "convergence", "scenarios")
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    TRIALS_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    SAMPLING_FIELD_NUMBER: _ClassVar[int]
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    BYPASS_CACHE_FIELD_NUMBER: _ClassVar[int]
    VARY_SIMULATION_SEEDS_FIELD_NUMBER: _ClassVar[int]
    CONVERGENCE_FIELD_NUMBER: _ClassVar[int]
    SCENARIOS_FIELD_NUMBER: _ClassVar[int]
    model_id: str
    trials: int
    seed: int
    sampling: Sampling
    backend: BackendPreference
    priority: int
    request_id: str
    bypass_cache: bool
    vary_simulation_seeds: bool
    convergence: _convergence_pb2.ConvergenceSettings
    scenarios: _containers.RepeatedCompositeFieldContainer[_analysis_pb2.ScenarioTarget]
    def __init__(self, model_id: _Optional[str] = ..., trials: _Optional[int] = ..., seed: _Optional[int] = ..., sampling: _Optional[_Union[Sampling, str]] = ..., backend: _Optional[_Union[BackendPreference, str]] = ..., priority: _Optional[int] = ..., request_id: _Optional[str] = ..., bypass_cache: _Optional[bool] = ..., vary_simulation_seeds: _Optional[bool] = ..., convergence: _Optional[_Union[_convergence_pb2.ConvergenceSettings, _Mapping]] = ..., scenarios: _Optional[_Iterable[_Union[_analysis_pb2.ScenarioTarget, _Mapping]]] = ...) -> None: ...

class GetSimulationRequest(_message.Message):
    __slots__ = ("simulation_id",)
    SIMULATION_ID_FIELD_NUMBER: _ClassVar[int]
    simulation_id: str
    def __init__(self, simulation_id: _Optional[str] = ...) -> None: ...

class ListSimulationsRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "filter", "order_by")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    ORDER_BY_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    filter: str
    order_by: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., filter: _Optional[str] = ..., order_by: _Optional[str] = ...) -> None: ...

class ListSimulationsResponse(_message.Message):
    __slots__ = ("simulations", "next_page_token")
    SIMULATIONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    simulations: _containers.RepeatedCompositeFieldContainer[Simulation]
    next_page_token: str
    def __init__(self, simulations: _Optional[_Iterable[_Union[Simulation, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class CancelSimulationRequest(_message.Message):
    __slots__ = ("simulation_id",)
    SIMULATION_ID_FIELD_NUMBER: _ClassVar[int]
    simulation_id: str
    def __init__(self, simulation_id: _Optional[str] = ...) -> None: ...

class WatchSimulationRequest(_message.Message):
    __slots__ = ("simulation_id",)
    SIMULATION_ID_FIELD_NUMBER: _ClassVar[int]
    simulation_id: str
    def __init__(self, simulation_id: _Optional[str] = ...) -> None: ...

class OutputProgress(_message.Message):
    __slots__ = ("name", "mean", "standard_error")
    NAME_FIELD_NUMBER: _ClassVar[int]
    MEAN_FIELD_NUMBER: _ClassVar[int]
    STANDARD_ERROR_FIELD_NUMBER: _ClassVar[int]
    name: str
    mean: float
    standard_error: float
    def __init__(self, name: _Optional[str] = ..., mean: _Optional[float] = ..., standard_error: _Optional[float] = ...) -> None: ...

class Progress(_message.Message):
    __slots__ = ("trials_done", "trials_total", "trials_per_second", "eta", "outputs", "convergence")
    TRIALS_DONE_FIELD_NUMBER: _ClassVar[int]
    TRIALS_TOTAL_FIELD_NUMBER: _ClassVar[int]
    TRIALS_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    ETA_FIELD_NUMBER: _ClassVar[int]
    OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    CONVERGENCE_FIELD_NUMBER: _ClassVar[int]
    trials_done: int
    trials_total: int
    trials_per_second: float
    eta: _duration_pb2.Duration
    outputs: _containers.RepeatedCompositeFieldContainer[OutputProgress]
    convergence: _convergence_pb2.ConvergenceStatus
    def __init__(self, trials_done: _Optional[int] = ..., trials_total: _Optional[int] = ..., trials_per_second: _Optional[float] = ..., eta: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., outputs: _Optional[_Iterable[_Union[OutputProgress, _Mapping]]] = ..., convergence: _Optional[_Union[_convergence_pb2.ConvergenceStatus, _Mapping]] = ...) -> None: ...

class SimulationEvent(_message.Message):
    __slots__ = ("event_time", "simulation", "progress")
    EVENT_TIME_FIELD_NUMBER: _ClassVar[int]
    SIMULATION_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    event_time: _timestamp_pb2.Timestamp
    simulation: Simulation
    progress: Progress
    def __init__(self, event_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., simulation: _Optional[_Union[Simulation, _Mapping]] = ..., progress: _Optional[_Union[Progress, _Mapping]] = ...) -> None: ...

class GetResultsRequest(_message.Message):
    __slots__ = ("simulation_id",)
    SIMULATION_ID_FIELD_NUMBER: _ClassVar[int]
    simulation_id: str
    def __init__(self, simulation_id: _Optional[str] = ...) -> None: ...

class GetSimulationSipmathRequest(_message.Message):
    __slots__ = ("simulation_id", "terms")
    SIMULATION_ID_FIELD_NUMBER: _ClassVar[int]
    TERMS_FIELD_NUMBER: _ClassVar[int]
    simulation_id: str
    terms: int
    def __init__(self, simulation_id: _Optional[str] = ..., terms: _Optional[int] = ...) -> None: ...

class Statistics(_message.Message):
    __slots__ = ("count", "errors", "mean", "std", "min", "max", "skewness", "kurtosis")
    COUNT_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    MEAN_FIELD_NUMBER: _ClassVar[int]
    STD_FIELD_NUMBER: _ClassVar[int]
    MIN_FIELD_NUMBER: _ClassVar[int]
    MAX_FIELD_NUMBER: _ClassVar[int]
    SKEWNESS_FIELD_NUMBER: _ClassVar[int]
    KURTOSIS_FIELD_NUMBER: _ClassVar[int]
    count: int
    errors: int
    mean: float
    std: float
    min: float
    max: float
    skewness: float
    kurtosis: float
    def __init__(self, count: _Optional[int] = ..., errors: _Optional[int] = ..., mean: _Optional[float] = ..., std: _Optional[float] = ..., min: _Optional[float] = ..., max: _Optional[float] = ..., skewness: _Optional[float] = ..., kurtosis: _Optional[float] = ...) -> None: ...

class Percentile(_message.Message):
    __slots__ = ("percent", "value")
    PERCENT_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    percent: float
    value: float
    def __init__(self, percent: _Optional[float] = ..., value: _Optional[float] = ...) -> None: ...

class Histogram(_message.Message):
    __slots__ = ("bin_edges", "counts")
    BIN_EDGES_FIELD_NUMBER: _ClassVar[int]
    COUNTS_FIELD_NUMBER: _ClassVar[int]
    bin_edges: _containers.RepeatedScalarFieldContainer[float]
    counts: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, bin_edges: _Optional[_Iterable[float]] = ..., counts: _Optional[_Iterable[int]] = ...) -> None: ...

class CdfPoint(_message.Message):
    __slots__ = ("value", "probability")
    VALUE_FIELD_NUMBER: _ClassVar[int]
    PROBABILITY_FIELD_NUMBER: _ClassVar[int]
    value: float
    probability: float
    def __init__(self, value: _Optional[float] = ..., probability: _Optional[float] = ...) -> None: ...

class Sensitivity(_message.Message):
    __slots__ = ("input_name", "spearman_rho")
    INPUT_NAME_FIELD_NUMBER: _ClassVar[int]
    SPEARMAN_RHO_FIELD_NUMBER: _ClassVar[int]
    input_name: str
    spearman_rho: float
    def __init__(self, input_name: _Optional[str] = ..., spearman_rho: _Optional[float] = ...) -> None: ...

class ConvergencePoint(_message.Message):
    __slots__ = ("trials", "mean", "standard_error")
    TRIALS_FIELD_NUMBER: _ClassVar[int]
    MEAN_FIELD_NUMBER: _ClassVar[int]
    STANDARD_ERROR_FIELD_NUMBER: _ClassVar[int]
    trials: int
    mean: float
    standard_error: float
    def __init__(self, trials: _Optional[int] = ..., mean: _Optional[float] = ..., standard_error: _Optional[float] = ...) -> None: ...

class OutputResults(_message.Message):
    __slots__ = ("name", "address", "statistics", "percentiles", "var_95", "cvar_95", "histogram", "cdf", "sensitivity", "convergence", "exact", "simulation", "scenarios", "contribution_to_variance", "regression_r_squared")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    STATISTICS_FIELD_NUMBER: _ClassVar[int]
    PERCENTILES_FIELD_NUMBER: _ClassVar[int]
    VAR_95_FIELD_NUMBER: _ClassVar[int]
    CVAR_95_FIELD_NUMBER: _ClassVar[int]
    HISTOGRAM_FIELD_NUMBER: _ClassVar[int]
    CDF_FIELD_NUMBER: _ClassVar[int]
    SENSITIVITY_FIELD_NUMBER: _ClassVar[int]
    CONVERGENCE_FIELD_NUMBER: _ClassVar[int]
    EXACT_FIELD_NUMBER: _ClassVar[int]
    SIMULATION_FIELD_NUMBER: _ClassVar[int]
    SCENARIOS_FIELD_NUMBER: _ClassVar[int]
    CONTRIBUTION_TO_VARIANCE_FIELD_NUMBER: _ClassVar[int]
    REGRESSION_R_SQUARED_FIELD_NUMBER: _ClassVar[int]
    name: str
    address: str
    statistics: Statistics
    percentiles: _containers.RepeatedCompositeFieldContainer[Percentile]
    var_95: float
    cvar_95: float
    histogram: Histogram
    cdf: _containers.RepeatedCompositeFieldContainer[CdfPoint]
    sensitivity: _containers.RepeatedCompositeFieldContainer[Sensitivity]
    convergence: _containers.RepeatedCompositeFieldContainer[ConvergencePoint]
    exact: bool
    simulation: int
    scenarios: _containers.RepeatedCompositeFieldContainer[_analysis_pb2.ScenarioResult]
    contribution_to_variance: _containers.RepeatedCompositeFieldContainer[_analysis_pb2.VarianceContribution]
    regression_r_squared: float
    def __init__(self, name: _Optional[str] = ..., address: _Optional[str] = ..., statistics: _Optional[_Union[Statistics, _Mapping]] = ..., percentiles: _Optional[_Iterable[_Union[Percentile, _Mapping]]] = ..., var_95: _Optional[float] = ..., cvar_95: _Optional[float] = ..., histogram: _Optional[_Union[Histogram, _Mapping]] = ..., cdf: _Optional[_Iterable[_Union[CdfPoint, _Mapping]]] = ..., sensitivity: _Optional[_Iterable[_Union[Sensitivity, _Mapping]]] = ..., convergence: _Optional[_Iterable[_Union[ConvergencePoint, _Mapping]]] = ..., exact: _Optional[bool] = ..., simulation: _Optional[int] = ..., scenarios: _Optional[_Iterable[_Union[_analysis_pb2.ScenarioResult, _Mapping]]] = ..., contribution_to_variance: _Optional[_Iterable[_Union[_analysis_pb2.VarianceContribution, _Mapping]]] = ..., regression_r_squared: _Optional[float] = ...) -> None: ...

class Results(_message.Message):
    __slots__ = ("simulation_id", "model_id", "trials", "seed", "sampling", "backend", "outputs", "create_time", "reports", "simulations", "convergence")
    SIMULATION_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    TRIALS_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    SAMPLING_FIELD_NUMBER: _ClassVar[int]
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    REPORTS_FIELD_NUMBER: _ClassVar[int]
    SIMULATIONS_FIELD_NUMBER: _ClassVar[int]
    CONVERGENCE_FIELD_NUMBER: _ClassVar[int]
    simulation_id: str
    model_id: str
    trials: int
    seed: int
    sampling: Sampling
    backend: Backend
    outputs: _containers.RepeatedCompositeFieldContainer[OutputResults]
    create_time: _timestamp_pb2.Timestamp
    reports: _containers.RepeatedCompositeFieldContainer[ReportResult]
    simulations: _containers.RepeatedCompositeFieldContainer[SimtableSimulation]
    convergence: _convergence_pb2.ConvergenceStatus
    def __init__(self, simulation_id: _Optional[str] = ..., model_id: _Optional[str] = ..., trials: _Optional[int] = ..., seed: _Optional[int] = ..., sampling: _Optional[_Union[Sampling, str]] = ..., backend: _Optional[_Union[Backend, str]] = ..., outputs: _Optional[_Iterable[_Union[OutputResults, _Mapping]]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., reports: _Optional[_Iterable[_Union[ReportResult, _Mapping]]] = ..., simulations: _Optional[_Iterable[_Union[SimtableSimulation, _Mapping]]] = ..., convergence: _Optional[_Union[_convergence_pb2.ConvergenceStatus, _Mapping]] = ...) -> None: ...

class ReportResult(_message.Message):
    __slots__ = ("name", "address", "value", "error")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    name: str
    address: str
    value: float
    error: str
    def __init__(self, name: _Optional[str] = ..., address: _Optional[str] = ..., value: _Optional[float] = ..., error: _Optional[str] = ...) -> None: ...

class SimtableSimulation(_message.Message):
    __slots__ = ("index", "values")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    index: int
    values: _containers.RepeatedCompositeFieldContainer[SimtableValue]
    def __init__(self, index: _Optional[int] = ..., values: _Optional[_Iterable[_Union[SimtableValue, _Mapping]]] = ...) -> None: ...

class SimtableValue(_message.Message):
    __slots__ = ("address", "value")
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    address: str
    value: float
    def __init__(self, address: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...

class GetQueueStatusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Worker(_message.Message):
    __slots__ = ("id", "backend", "current_simulation_id", "heartbeat_time")
    ID_FIELD_NUMBER: _ClassVar[int]
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    CURRENT_SIMULATION_ID_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_TIME_FIELD_NUMBER: _ClassVar[int]
    id: str
    backend: Backend
    current_simulation_id: str
    heartbeat_time: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., backend: _Optional[_Union[Backend, str]] = ..., current_simulation_id: _Optional[str] = ..., heartbeat_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class GpuDevice(_message.Message):
    __slots__ = ("worker_id", "name", "memory_bytes", "allocated_bytes")
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    MEMORY_BYTES_FIELD_NUMBER: _ClassVar[int]
    ALLOCATED_BYTES_FIELD_NUMBER: _ClassVar[int]
    worker_id: str
    name: str
    memory_bytes: int
    allocated_bytes: int
    def __init__(self, worker_id: _Optional[str] = ..., name: _Optional[str] = ..., memory_bytes: _Optional[int] = ..., allocated_bytes: _Optional[int] = ...) -> None: ...

class QueueStatus(_message.Message):
    __slots__ = ("queued", "running", "workers", "gpu_devices")
    QUEUED_FIELD_NUMBER: _ClassVar[int]
    RUNNING_FIELD_NUMBER: _ClassVar[int]
    WORKERS_FIELD_NUMBER: _ClassVar[int]
    GPU_DEVICES_FIELD_NUMBER: _ClassVar[int]
    queued: int
    running: int
    workers: _containers.RepeatedCompositeFieldContainer[Worker]
    gpu_devices: _containers.RepeatedCompositeFieldContainer[GpuDevice]
    def __init__(self, queued: _Optional[int] = ..., running: _Optional[int] = ..., workers: _Optional[_Iterable[_Union[Worker, _Mapping]]] = ..., gpu_devices: _Optional[_Iterable[_Union[GpuDevice, _Mapping]]] = ...) -> None: ...
