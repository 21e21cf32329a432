"""The simulation engine: models (workbook or spec) → IR → NumPy/CUDA evaluation → statistics.

Reproducibility promise: the same model, seed and sampling method give the same bits for
every trial on one backend, however the trials are chunked or split over workers; CPU and
GPU draw the same uniforms (Philox4x64-10, see :mod:`.rng`).
"""

from .errors import (
    CircularReference,
    CorrelationError,
    FormulaError,
    ModelError,
    ParameterError,
    WorkbookRejected,
)
from .numpy_backend import Evaluator, compile_numpy
from .run import (
    BackendUnavailable,
    Cancelled,
    default_chunk_size,
    make_evaluator,
    resolve_backend,
    simulate,
)
from .spec import model_from_spec
from .stats import Partial, Results, StatsOptions
from .workbook import load_workbook

__all__ = [
    "BackendUnavailable",
    "Cancelled",
    "CircularReference",
    "CorrelationError",
    "Evaluator",
    "FormulaError",
    "ModelError",
    "ParameterError",
    "Partial",
    "Results",
    "StatsOptions",
    "WorkbookRejected",
    "compile_numpy",
    "default_chunk_size",
    "load_workbook",
    "make_evaluator",
    "model_from_spec",
    "resolve_backend",
    "simulate",
]
