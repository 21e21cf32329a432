from buf.validate import validate_pb2 as _validate_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ConvergenceSettings(_message.Message):
    __slots__ = ("check_every", "default_test")
    CHECK_EVERY_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_TEST_FIELD_NUMBER: _ClassVar[int]
    check_every: int
    default_test: ConvergenceTest
    def __init__(self, check_every: _Optional[int] = ..., default_test: _Optional[_Union[ConvergenceTest, _Mapping]] = ...) -> None: ...

class ConvergenceTest(_message.Message):
    __slots__ = ("tolerance", "absolute", "confidence", "mean", "stddev", "percentiles")
    TOLERANCE_FIELD_NUMBER: _ClassVar[int]
    ABSOLUTE_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    MEAN_FIELD_NUMBER: _ClassVar[int]
    STDDEV_FIELD_NUMBER: _ClassVar[int]
    PERCENTILES_FIELD_NUMBER: _ClassVar[int]
    tolerance: float
    absolute: bool
    confidence: float
    mean: bool
    stddev: bool
    percentiles: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, tolerance: _Optional[float] = ..., absolute: _Optional[bool] = ..., confidence: _Optional[float] = ..., mean: _Optional[bool] = ..., stddev: _Optional[bool] = ..., percentiles: _Optional[_Iterable[float]] = ...) -> None: ...

class ConvergenceStatus(_message.Message):
    __slots__ = ("converged", "trials", "check_every", "outputs")
    CONVERGED_FIELD_NUMBER: _ClassVar[int]
    TRIALS_FIELD_NUMBER: _ClassVar[int]
    CHECK_EVERY_FIELD_NUMBER: _ClassVar[int]
    OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    converged: bool
    trials: int
    check_every: int
    outputs: _containers.RepeatedCompositeFieldContainer[OutputConvergence]
    def __init__(self, converged: _Optional[bool] = ..., trials: _Optional[int] = ..., check_every: _Optional[int] = ..., outputs: _Optional[_Iterable[_Union[OutputConvergence, _Mapping]]] = ...) -> None: ...

class OutputConvergence(_message.Message):
    __slots__ = ("output", "converged", "statistics")
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    CONVERGED_FIELD_NUMBER: _ClassVar[int]
    STATISTICS_FIELD_NUMBER: _ClassVar[int]
    output: str
    converged: bool
    statistics: _containers.RepeatedCompositeFieldContainer[StatisticPrecision]
    def __init__(self, output: _Optional[str] = ..., converged: _Optional[bool] = ..., statistics: _Optional[_Iterable[_Union[StatisticPrecision, _Mapping]]] = ...) -> None: ...

class StatisticPrecision(_message.Message):
    __slots__ = ("statistic", "precision")
    STATISTIC_FIELD_NUMBER: _ClassVar[int]
    PRECISION_FIELD_NUMBER: _ClassVar[int]
    statistic: str
    precision: float
    def __init__(self, statistic: _Optional[str] = ..., precision: _Optional[float] = ...) -> None: ...
