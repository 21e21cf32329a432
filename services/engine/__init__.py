"""The simulation engine: models (workbook or spec) → IR → NumPy/CUDA evaluation → statistics.

Reproducibility promise: the same model, seed and sampling method give the same bits for
every trial on one backend, however the trials are chunked or split over workers; CPU and
GPU draw the same uniforms (Philox4x64-10, see :mod:`.rng`).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# Names are imported on first use: a service that needs one corner of the engine (files
# checks workbooks) does not pay for SciPy and the back ends at start-up.
_EXPORTS = {
    "BackendUnavailable": "run",
    "Cancelled": "run",
    "CircularReference": "errors",
    "CorrelationError": "errors",
    "Evaluator": "numpy_backend",
    "FormulaError": "errors",
    "ModelError": "errors",
    "ParameterError": "errors",
    "Partial": "stats",
    "Results": "stats",
    "StatsOptions": "stats",
    "WorkbookRejected": "errors",
    "compile_numpy": "numpy_backend",
    "default_chunk_size": "run",
    "load_workbook": "workbook",
    "make_evaluator": "run",
    "model_from_spec": "spec",
    "resolve_backend": "run",
    "simulate": "run",
}
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

if TYPE_CHECKING:
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


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
