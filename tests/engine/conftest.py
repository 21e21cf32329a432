"""Engine test fixtures: the CPU back ends every evaluation test runs on."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from services.engine import native
from services.engine.ir import Model
from services.engine.numpy_backend import Evaluator
from services.engine.run import make_evaluator

CPU_BACKENDS = ("native", "numpy")


@pytest.fixture(params=CPU_BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """Each CPU back end in turn (native needs a C compiler; without one it is skipped)."""
    if request.param == "native" and native.available() is not None:
        pytest.skip(f"native back end unavailable: {native.available()}")
    return str(request.param)


@pytest.fixture
def compile_model(backend: str) -> Callable[..., Evaluator]:
    """``compile_model(model, seed=..., sampling=..., threads=...)`` on the back end."""

    def compile_(model: Model, **kwargs: Any) -> Evaluator:
        return make_evaluator(model, backend=backend, **kwargs)

    return compile_
