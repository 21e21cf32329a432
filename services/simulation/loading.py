"""The engine's heavy half (its back ends, SciPy, openpyxl), loaded once, off the serving path.

The service starts serving without it: an in-process worker loads it in a thread as it
starts (to find its back end), CreateModel when it first compiles a model, FitDistribution
when it first fits. One lock makes
the two take turns, so two threads never import the engine's modules at once (a circular
import between them could otherwise deadlock on the interpreter's per-module locks).
"""

from __future__ import annotations

import importlib
import threading

__all__ = ["load_engine"]

_HEAVY = (
    "services.engine.run",
    "services.engine.workbook",
    "services.engine.spec",
    "services.engine.fitting.dataset",
)
_lock = threading.Lock()


def load_engine() -> None:
    """Import the engine's back ends and model compilers (at once after the first time)."""
    with _lock:
        for name in _HEAVY:
            importlib.import_module(name)
