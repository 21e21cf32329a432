from buf.validate import validate_pb2 as _validate_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class DistributionKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DISTRIBUTION_KIND_UNSPECIFIED: _ClassVar[DistributionKind]
    DISTRIBUTION_KIND_NORMAL: _ClassVar[DistributionKind]
    DISTRIBUTION_KIND_TRIANG: _ClassVar[DistributionKind]
    DISTRIBUTION_KIND_TRIGEN: _ClassVar[DistributionKind]
    DISTRIBUTION_KIND_PERT: _ClassVar[DistributionKind]
    DISTRIBUTION_KIND_UNIFORM: _ClassVar[DistributionKind]
    DISTRIBUTION_KIND_LOGNORM: _ClassVar[DistributionKind]
    DISTRIBUTION_KIND_LOGNORM2: _ClassVar[DistributionKind]
    DISTRIBUTION_KIND_DISCRETE: _ClassVar[DistributionKind]
    DISTRIBUTION_KIND_BINOMIAL: _ClassVar[DistributionKind]
    DISTRIBUTION_KIND_POISSON: _ClassVar[DistributionKind]
    DISTRIBUTION_KIND_EXPON: _ClassVar[DistributionKind]
    DISTRIBUTION_KIND_GAMMA: _ClassVar[DistributionKind]
    DISTRIBUTION_KIND_BETA: _ClassVar[DistributionKind]
    DISTRIBUTION_KIND_BETA_GENERAL: _ClassVar[DistributionKind]
    DISTRIBUTION_KIND_WEIBULL: _ClassVar[DistributionKind]
    DISTRIBUTION_KIND_CUMUL: _ClassVar[DistributionKind]
    DISTRIBUTION_KIND_INT_UNIFORM: _ClassVar[DistributionKind]
    DISTRIBUTION_KIND_DUNIFORM: _ClassVar[DistributionKind]
    DISTRIBUTION_KIND_BERNOULLI: _ClassVar[DistributionKind]
    DISTRIBUTION_KIND_GEOMET: _ClassVar[DistributionKind]
    DISTRIBUTION_KIND_NEGBIN: _ClassVar[DistributionKind]
    DISTRIBUTION_KIND_HYPERGEO: _ClassVar[DistributionKind]
    DISTRIBUTION_KIND_LOGISTIC: _ClassVar[DistributionKind]
    DISTRIBUTION_KIND_LOG_LOGISTIC: _ClassVar[DistributionKind]
    DISTRIBUTION_KIND_PARETO: _ClassVar[DistributionKind]
    DISTRIBUTION_KIND_PARETO2: _ClassVar[DistributionKind]
    DISTRIBUTION_KIND_STUDENT: _ClassVar[DistributionKind]
    DISTRIBUTION_KIND_CHI_SQ: _ClassVar[DistributionKind]
    DISTRIBUTION_KIND_F: _ClassVar[DistributionKind]
    DISTRIBUTION_KIND_ERLANG: _ClassVar[DistributionKind]
    DISTRIBUTION_KIND_PEARSON5: _ClassVar[DistributionKind]
    DISTRIBUTION_KIND_PEARSON6: _ClassVar[DistributionKind]
    DISTRIBUTION_KIND_ERF: _ClassVar[DistributionKind]
    DISTRIBUTION_KIND_EXT_VALUE: _ClassVar[DistributionKind]
    DISTRIBUTION_KIND_EXT_VALUE_MIN: _ClassVar[DistributionKind]
    DISTRIBUTION_KIND_LAPLACE: _ClassVar[DistributionKind]
    DISTRIBUTION_KIND_LEVY: _ClassVar[DistributionKind]
    DISTRIBUTION_KIND_RAYLEIGH: _ClassVar[DistributionKind]
    DISTRIBUTION_KIND_KUMARASWAMY: _ClassVar[DistributionKind]
    DISTRIBUTION_KIND_DAGUM: _ClassVar[DistributionKind]
    DISTRIBUTION_KIND_FRECHET: _ClassVar[DistributionKind]
    DISTRIBUTION_KIND_CAUCHY: _ClassVar[DistributionKind]
    DISTRIBUTION_KIND_RECIPROCAL: _ClassVar[DistributionKind]
    DISTRIBUTION_KIND_INV_GAUSS: _ClassVar[DistributionKind]
    DISTRIBUTION_KIND_GENERAL: _ClassVar[DistributionKind]
    DISTRIBUTION_KIND_HISTOGRM: _ClassVar[DistributionKind]
    DISTRIBUTION_KIND_CUMULD: _ClassVar[DistributionKind]
DISTRIBUTION_KIND_UNSPECIFIED: DistributionKind
DISTRIBUTION_KIND_NORMAL: DistributionKind
DISTRIBUTION_KIND_TRIANG: DistributionKind
DISTRIBUTION_KIND_TRIGEN: DistributionKind
DISTRIBUTION_KIND_PERT: DistributionKind
DISTRIBUTION_KIND_UNIFORM: DistributionKind
DISTRIBUTION_KIND_LOGNORM: DistributionKind
DISTRIBUTION_KIND_LOGNORM2: DistributionKind
DISTRIBUTION_KIND_DISCRETE: DistributionKind
DISTRIBUTION_KIND_BINOMIAL: DistributionKind
DISTRIBUTION_KIND_POISSON: DistributionKind
DISTRIBUTION_KIND_EXPON: DistributionKind
DISTRIBUTION_KIND_GAMMA: DistributionKind
DISTRIBUTION_KIND_BETA: DistributionKind
DISTRIBUTION_KIND_BETA_GENERAL: DistributionKind
DISTRIBUTION_KIND_WEIBULL: DistributionKind
DISTRIBUTION_KIND_CUMUL: DistributionKind
DISTRIBUTION_KIND_INT_UNIFORM: DistributionKind
DISTRIBUTION_KIND_DUNIFORM: DistributionKind
DISTRIBUTION_KIND_BERNOULLI: DistributionKind
DISTRIBUTION_KIND_GEOMET: DistributionKind
DISTRIBUTION_KIND_NEGBIN: DistributionKind
DISTRIBUTION_KIND_HYPERGEO: DistributionKind
DISTRIBUTION_KIND_LOGISTIC: DistributionKind
DISTRIBUTION_KIND_LOG_LOGISTIC: DistributionKind
DISTRIBUTION_KIND_PARETO: DistributionKind
DISTRIBUTION_KIND_PARETO2: DistributionKind
DISTRIBUTION_KIND_STUDENT: DistributionKind
DISTRIBUTION_KIND_CHI_SQ: DistributionKind
DISTRIBUTION_KIND_F: DistributionKind
DISTRIBUTION_KIND_ERLANG: DistributionKind
DISTRIBUTION_KIND_PEARSON5: DistributionKind
DISTRIBUTION_KIND_PEARSON6: DistributionKind
DISTRIBUTION_KIND_ERF: DistributionKind
DISTRIBUTION_KIND_EXT_VALUE: DistributionKind
DISTRIBUTION_KIND_EXT_VALUE_MIN: DistributionKind
DISTRIBUTION_KIND_LAPLACE: DistributionKind
DISTRIBUTION_KIND_LEVY: DistributionKind
DISTRIBUTION_KIND_RAYLEIGH: DistributionKind
DISTRIBUTION_KIND_KUMARASWAMY: DistributionKind
DISTRIBUTION_KIND_DAGUM: DistributionKind
DISTRIBUTION_KIND_FRECHET: DistributionKind
DISTRIBUTION_KIND_CAUCHY: DistributionKind
DISTRIBUTION_KIND_RECIPROCAL: DistributionKind
DISTRIBUTION_KIND_INV_GAUSS: DistributionKind
DISTRIBUTION_KIND_GENERAL: DistributionKind
DISTRIBUTION_KIND_HISTOGRM: DistributionKind
DISTRIBUTION_KIND_CUMULD: DistributionKind

class Distribution(_message.Message):
    __slots__ = ("kind", "parameters", "values", "probabilities")
    KIND_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    PROBABILITIES_FIELD_NUMBER: _ClassVar[int]
    kind: DistributionKind
    parameters: _containers.RepeatedScalarFieldContainer[float]
    values: _containers.RepeatedScalarFieldContainer[float]
    probabilities: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, kind: _Optional[_Union[DistributionKind, str]] = ..., parameters: _Optional[_Iterable[float]] = ..., values: _Optional[_Iterable[float]] = ..., probabilities: _Optional[_Iterable[float]] = ...) -> None: ...

class InputSpec(_message.Message):
    __slots__ = ("name", "distribution", "truncate_min", "truncate_max", "seed", "shift", "truncate_p_min", "truncate_p_max", "static_value", "lock")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DISTRIBUTION_FIELD_NUMBER: _ClassVar[int]
    TRUNCATE_MIN_FIELD_NUMBER: _ClassVar[int]
    TRUNCATE_MAX_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    SHIFT_FIELD_NUMBER: _ClassVar[int]
    TRUNCATE_P_MIN_FIELD_NUMBER: _ClassVar[int]
    TRUNCATE_P_MAX_FIELD_NUMBER: _ClassVar[int]
    STATIC_VALUE_FIELD_NUMBER: _ClassVar[int]
    LOCK_FIELD_NUMBER: _ClassVar[int]
    name: str
    distribution: Distribution
    truncate_min: float
    truncate_max: float
    seed: int
    shift: float
    truncate_p_min: float
    truncate_p_max: float
    static_value: float
    lock: bool
    def __init__(self, name: _Optional[str] = ..., distribution: _Optional[_Union[Distribution, _Mapping]] = ..., truncate_min: _Optional[float] = ..., truncate_max: _Optional[float] = ..., seed: _Optional[int] = ..., shift: _Optional[float] = ..., truncate_p_min: _Optional[float] = ..., truncate_p_max: _Optional[float] = ..., static_value: _Optional[float] = ..., lock: _Optional[bool] = ...) -> None: ...

class ExpressionSpec(_message.Message):
    __slots__ = ("name", "formula")
    NAME_FIELD_NUMBER: _ClassVar[int]
    FORMULA_FIELD_NUMBER: _ClassVar[int]
    name: str
    formula: str
    def __init__(self, name: _Optional[str] = ..., formula: _Optional[str] = ...) -> None: ...

class OutputSpec(_message.Message):
    __slots__ = ("name", "expression")
    NAME_FIELD_NUMBER: _ClassVar[int]
    EXPRESSION_FIELD_NUMBER: _ClassVar[int]
    name: str
    expression: str
    def __init__(self, name: _Optional[str] = ..., expression: _Optional[str] = ...) -> None: ...

class CorrelationSpec(_message.Message):
    __slots__ = ("name", "inputs", "matrix")
    NAME_FIELD_NUMBER: _ClassVar[int]
    INPUTS_FIELD_NUMBER: _ClassVar[int]
    MATRIX_FIELD_NUMBER: _ClassVar[int]
    name: str
    inputs: _containers.RepeatedScalarFieldContainer[str]
    matrix: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, name: _Optional[str] = ..., inputs: _Optional[_Iterable[str]] = ..., matrix: _Optional[_Iterable[float]] = ...) -> None: ...

class ModelSpec(_message.Message):
    __slots__ = ("inputs", "expressions", "outputs", "correlations")
    INPUTS_FIELD_NUMBER: _ClassVar[int]
    EXPRESSIONS_FIELD_NUMBER: _ClassVar[int]
    OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    CORRELATIONS_FIELD_NUMBER: _ClassVar[int]
    inputs: _containers.RepeatedCompositeFieldContainer[InputSpec]
    expressions: _containers.RepeatedCompositeFieldContainer[ExpressionSpec]
    outputs: _containers.RepeatedCompositeFieldContainer[OutputSpec]
    correlations: _containers.RepeatedCompositeFieldContainer[CorrelationSpec]
    def __init__(self, inputs: _Optional[_Iterable[_Union[InputSpec, _Mapping]]] = ..., expressions: _Optional[_Iterable[_Union[ExpressionSpec, _Mapping]]] = ..., outputs: _Optional[_Iterable[_Union[OutputSpec, _Mapping]]] = ..., correlations: _Optional[_Iterable[_Union[CorrelationSpec, _Mapping]]] = ...) -> None: ...
