from buf.validate import validate_pb2 as _validate_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ScenarioKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SCENARIO_KIND_UNSPECIFIED: _ClassVar[ScenarioKind]
    SCENARIO_KIND_TOP_PERCENT: _ClassVar[ScenarioKind]
    SCENARIO_KIND_BOTTOM_PERCENT: _ClassVar[ScenarioKind]
    SCENARIO_KIND_ABOVE_VALUE: _ClassVar[ScenarioKind]
    SCENARIO_KIND_BELOW_VALUE: _ClassVar[ScenarioKind]
SCENARIO_KIND_UNSPECIFIED: ScenarioKind
SCENARIO_KIND_TOP_PERCENT: ScenarioKind
SCENARIO_KIND_BOTTOM_PERCENT: ScenarioKind
SCENARIO_KIND_ABOVE_VALUE: ScenarioKind
SCENARIO_KIND_BELOW_VALUE: ScenarioKind

class ScenarioTarget(_message.Message):
    __slots__ = ("output", "kind", "threshold")
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    output: str
    kind: ScenarioKind
    threshold: float
    def __init__(self, output: _Optional[str] = ..., kind: _Optional[_Union[ScenarioKind, str]] = ..., threshold: _Optional[float] = ...) -> None: ...

class ScenarioInput(_message.Message):
    __slots__ = ("input_name", "subset_median", "overall_median", "std", "significance", "significant")
    INPUT_NAME_FIELD_NUMBER: _ClassVar[int]
    SUBSET_MEDIAN_FIELD_NUMBER: _ClassVar[int]
    OVERALL_MEDIAN_FIELD_NUMBER: _ClassVar[int]
    STD_FIELD_NUMBER: _ClassVar[int]
    SIGNIFICANCE_FIELD_NUMBER: _ClassVar[int]
    SIGNIFICANT_FIELD_NUMBER: _ClassVar[int]
    input_name: str
    subset_median: float
    overall_median: float
    std: float
    significance: float
    significant: bool
    def __init__(self, input_name: _Optional[str] = ..., subset_median: _Optional[float] = ..., overall_median: _Optional[float] = ..., std: _Optional[float] = ..., significance: _Optional[float] = ..., significant: _Optional[bool] = ...) -> None: ...

class ScenarioResult(_message.Message):
    __slots__ = ("target", "label", "trials", "inputs")
    TARGET_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    TRIALS_FIELD_NUMBER: _ClassVar[int]
    INPUTS_FIELD_NUMBER: _ClassVar[int]
    target: ScenarioTarget
    label: str
    trials: int
    inputs: _containers.RepeatedCompositeFieldContainer[ScenarioInput]
    def __init__(self, target: _Optional[_Union[ScenarioTarget, _Mapping]] = ..., label: _Optional[str] = ..., trials: _Optional[int] = ..., inputs: _Optional[_Iterable[_Union[ScenarioInput, _Mapping]]] = ...) -> None: ...

class VarianceContribution(_message.Message):
    __slots__ = ("input_name", "share", "standardized_coefficient")
    INPUT_NAME_FIELD_NUMBER: _ClassVar[int]
    SHARE_FIELD_NUMBER: _ClassVar[int]
    STANDARDIZED_COEFFICIENT_FIELD_NUMBER: _ClassVar[int]
    input_name: str
    share: float
    standardized_coefficient: float
    def __init__(self, input_name: _Optional[str] = ..., share: _Optional[float] = ..., standardized_coefficient: _Optional[float] = ...) -> None: ...
