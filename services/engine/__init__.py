"""The simulation engine: models (workbook or spec) → IR → native/NumPy/CUDA → statistics.

Reproducibility promise: the same model, seed and sampling method give the same bits for
every trial on one backend, however the trials are chunked or split over workers; every
backend draws the same uniforms (Philox4x64-10, see :mod:`.rng`).

Names are imported on first use, so that ``services.engine.guard`` and
``services.engine.errors`` load without NumPy, SciPy or openpyxl (the files service checks
workbooks with the guard alone).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

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
        BACKENDS,
        BackendUnavailable,
        Cancelled,
        Run,
        default_chunk_size,
        make_evaluator,
        resolve_backend,
        simulate,
    )
    from .spec import model_from_spec
    from .stats import Partial, Results, StatsOptions
    from .workbook import load_workbook

_HOMES = {
    "errors": (
        "CircularReference",
        "CorrelationError",
        "FormulaError",
        "ModelError",
        "ParameterError",
        "WorkbookRejected",
    ),
    "numpy_backend": ("Evaluator", "compile_numpy"),
    "run": (
        "BACKENDS",
        "BackendUnavailable",
        "Cancelled",
        "Run",
        "default_chunk_size",
        "make_evaluator",
        "resolve_backend",
        "simulate",
    ),
    "spec": ("model_from_spec",),
    "stats": ("Partial", "Results", "StatsOptions"),
    "workbook": ("load_workbook",),
}
_MODULE_OF = {name: module for module, names in _HOMES.items() for name in names}

__all__ = [
    "BACKENDS",
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
    "Run",
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


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
