"""What a service loads before it serves: not the engine's back ends, SciPy or openpyxl.

A SIGKILLed service is restarted by the supervisor or the kubelet and must serve again
within seconds; the engine's heavy half (a second of CPU or more) loads in a worker's
thread after the service serves (``services.simulation.loading``). Checked in a fresh
interpreter, as a restart sees it.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from services.cli.mesh_procs import implemented_services
from tests.support.services import REPO_ROOT

HEAVY = ("scipy", "openpyxl", "services.engine.run", "services.engine.numpy_backend")


@pytest.mark.parametrize("name", implemented_services())
def test_a_service_serves_without_the_engines_heavy_half(name: str) -> None:
    # The wiring the entry point imports (``__main__`` itself would start serving).
    probe = (
        f"import importlib, json, sys; importlib.import_module('services.{name}.app'); "
        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    )
    assert json.loads(loaded.stdout) == []


def test_the_engine_loads_when_a_model_is_first_compiled() -> None:
    probe = (
        "import sys; from services.simulation.loading import load_engine; load_engine(); "
        "print('services.engine.run' in sys.modules and 'openpyxl' in sys.modules)"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    )
    assert loaded.stdout.strip() == "True"
