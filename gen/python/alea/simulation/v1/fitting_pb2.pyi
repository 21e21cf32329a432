from buf.validate import validate_pb2 as _validate_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class FitKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FIT_KIND_UNSPECIFIED: _ClassVar[FitKind]
    FIT_KIND_CONTINUOUS: _ClassVar[FitKind]
    FIT_KIND_DISCRETE: _ClassVar[FitKind]
FIT_KIND_UNSPECIFIED: FitKind
FIT_KIND_CONTINUOUS: FitKind
FIT_KIND_DISCRETE: FitKind

class FitDistributionRequest(_message.Message):
    __slots__ = ("file_id", "values", "column_name", "column_index", "sheet", "kind", "bootstrap_replicates", "seed")
    FILE_ID_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    COLUMN_NAME_FIELD_NUMBER: _ClassVar[int]
    COLUMN_INDEX_FIELD_NUMBER: _ClassVar[int]
    SHEET_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    BOOTSTRAP_REPLICATES_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    file_id: str
    values: _containers.RepeatedScalarFieldContainer[float]
    column_name: str
    column_index: int
    sheet: str
    kind: FitKind
    bootstrap_replicates: int
    seed: int
    def __init__(self, file_id: _Optional[str] = ..., values: _Optional[_Iterable[float]] = ..., column_name: _Optional[str] = ..., column_index: _Optional[int] = ..., sheet: _Optional[str] = ..., kind: _Optional[_Union[FitKind, str]] = ..., bootstrap_replicates: _Optional[int] = ..., seed: _Optional[int] = ...) -> None: ...

class FitPoint(_message.Message):
    __slots__ = ("x", "y")
    X_FIELD_NUMBER: _ClassVar[int]
    Y_FIELD_NUMBER: _ClassVar[int]
    x: float
    y: float
    def __init__(self, x: _Optional[float] = ..., y: _Optional[float] = ...) -> None: ...

class FitParameter(_message.Message):
    __slots__ = ("name", "value")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    name: str
    value: float
    def __init__(self, name: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...

class DistributionFit(_message.Message):
    __slots__ = ("function", "parameters", "formula", "log_likelihood", "aic", "bic", "aic_rank", "bic_rank", "ks_statistic", "ks_p_value", "ad_statistic", "ad_p_value", "chi_square_statistic", "chi_square_p_value", "chi_square_bins", "bootstrap_replicates", "pp_points", "qq_points")
    FUNCTION_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    FORMULA_FIELD_NUMBER: _ClassVar[int]
    LOG_LIKELIHOOD_FIELD_NUMBER: _ClassVar[int]
    AIC_FIELD_NUMBER: _ClassVar[int]
    BIC_FIELD_NUMBER: _ClassVar[int]
    AIC_RANK_FIELD_NUMBER: _ClassVar[int]
    BIC_RANK_FIELD_NUMBER: _ClassVar[int]
    KS_STATISTIC_FIELD_NUMBER: _ClassVar[int]
    KS_P_VALUE_FIELD_NUMBER: _ClassVar[int]
    AD_STATISTIC_FIELD_NUMBER: _ClassVar[int]
    AD_P_VALUE_FIELD_NUMBER: _ClassVar[int]
    CHI_SQUARE_STATISTIC_FIELD_NUMBER: _ClassVar[int]
    CHI_SQUARE_P_VALUE_FIELD_NUMBER: _ClassVar[int]
    CHI_SQUARE_BINS_FIELD_NUMBER: _ClassVar[int]
    BOOTSTRAP_REPLICATES_FIELD_NUMBER: _ClassVar[int]
    PP_POINTS_FIELD_NUMBER: _ClassVar[int]
    QQ_POINTS_FIELD_NUMBER: _ClassVar[int]
    function: str
    parameters: _containers.RepeatedCompositeFieldContainer[FitParameter]
    formula: str
    log_likelihood: float
    aic: float
    bic: float
    aic_rank: int
    bic_rank: int
    ks_statistic: float
    ks_p_value: float
    ad_statistic: float
    ad_p_value: float
    chi_square_statistic: float
    chi_square_p_value: float
    chi_square_bins: int
    bootstrap_replicates: int
    pp_points: _containers.RepeatedCompositeFieldContainer[FitPoint]
    qq_points: _containers.RepeatedCompositeFieldContainer[FitPoint]
    def __init__(self, function: _Optional[str] = ..., parameters: _Optional[_Iterable[_Union[FitParameter, _Mapping]]] = ..., formula: _Optional[str] = ..., log_likelihood: _Optional[float] = ..., aic: _Optional[float] = ..., bic: _Optional[float] = ..., aic_rank: _Optional[int] = ..., bic_rank: _Optional[int] = ..., ks_statistic: _Optional[float] = ..., ks_p_value: _Optional[float] = ..., ad_statistic: _Optional[float] = ..., ad_p_value: _Optional[float] = ..., chi_square_statistic: _Optional[float] = ..., chi_square_p_value: _Optional[float] = ..., chi_square_bins: _Optional[int] = ..., bootstrap_replicates: _Optional[int] = ..., pp_points: _Optional[_Iterable[_Union[FitPoint, _Mapping]]] = ..., qq_points: _Optional[_Iterable[_Union[FitPoint, _Mapping]]] = ...) -> None: ...

class SkippedFit(_message.Message):
    __slots__ = ("function", "reason")
    FUNCTION_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    function: str
    reason: str
    def __init__(self, function: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class FitDistributionResponse(_message.Message):
    __slots__ = ("column", "count", "discrete", "mean", "sd", "min", "max", "fits", "skipped")
    COLUMN_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    DISCRETE_FIELD_NUMBER: _ClassVar[int]
    MEAN_FIELD_NUMBER: _ClassVar[int]
    SD_FIELD_NUMBER: _ClassVar[int]
    MIN_FIELD_NUMBER: _ClassVar[int]
    MAX_FIELD_NUMBER: _ClassVar[int]
    FITS_FIELD_NUMBER: _ClassVar[int]
    SKIPPED_FIELD_NUMBER: _ClassVar[int]
    column: str
    count: int
    discrete: bool
    mean: float
    sd: float
    min: float
    max: float
    fits: _containers.RepeatedCompositeFieldContainer[DistributionFit]
    skipped: _containers.RepeatedCompositeFieldContainer[SkippedFit]
    def __init__(self, column: _Optional[str] = ..., count: _Optional[int] = ..., discrete: _Optional[bool] = ..., mean: _Optional[float] = ..., sd: _Optional[float] = ..., min: _Optional[float] = ..., max: _Optional[float] = ..., fits: _Optional[_Iterable[_Union[DistributionFit, _Mapping]]] = ..., skipped: _Optional[_Iterable[_Union[SkippedFit, _Mapping]]] = ...) -> None: ...
