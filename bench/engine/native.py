"""What the native back end's time goes to, and what it costs to build and to hold.

* :func:`split`: seconds per trial of RNG (the model's inputs as ``Uniform(0,1)``: Philox
  words and their conversion), transforms (the model's own distributions and copula, the
  inputs summed into one output), formulas (the whole model) and statistics (``simulate`` over
  ``evaluate``), each the difference of two runs of the same size on the same threads.
* :func:`compile_times`: a model's build with an empty cache and with the cached library.
* :func:`wide_model_rss`: the peak memory of a 100,000-input model simulated for 10,000
  trials, in a child process of its own.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from services.engine import native, simulate
from services.engine.ir import Apply, Const, Model, Output, Sample
from services.engine.serial import dump_model
from services.engine.stats import StatsOptions

SERVICE_OPTIONS = StatsOptions(exact_limit=100_000)  # the simulation service's default


def best(fn: Callable[[], object], repeat: int) -> float:
    """Fastest of ``repeat`` calls of ``fn``, in seconds."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def _uniforms_of(model: Model) -> Model:
    inputs = tuple(
        Sample(s.stream, "uniform", (Const(0.0), Const(1.0)), s.name, s.address, seed=s.seed)
        for s in model.inputs
    )
    return Model(inputs, (Output("u", "", inputs[0]),))


def _inputs_of(model: Model) -> Model:
    """The model's inputs (distributions, copula) and one output, their sum: every input is
    computed, but a trial stores one value, as few as the whole model or fewer (inputs as
    outputs stored more than the model does, and its formulas measured as nothing)."""
    total = Output("inputs", "", Apply("sum", model.inputs))
    return replace(model, outputs=(total,))


def split(model: Model, trials: int, repeat: int) -> dict[str, float]:
    """Nanoseconds per trial of each phase (see the module docstring), and the total."""

    def evaluate(m: Model) -> float:
        ev = native.compile_native(m, seed=1)
        return best(lambda: ev.evaluate(0, trials), repeat)

    rng, transforms = evaluate(_uniforms_of(model)), evaluate(_inputs_of(model))
    ev = native.compile_native(model, seed=1)
    whole = best(lambda: ev.evaluate(0, trials), repeat)
    stats = best(
        lambda: simulate(model, trials=trials, seed=1, evaluator=ev, options=SERVICE_OPTIONS),
        repeat,
    )
    per = 1e9 / trials
    return {
        "rng": rng * per,
        "transforms": max(transforms - rng, 0.0) * per,
        "formulas": max(whole - transforms, 0.0) * per,
        "statistics": max(stats - whole, 0.0) * per,
        "total": stats * per,
    }


def compile_times(model: Model) -> tuple[float, float, float]:
    """(seconds to build with an empty cache, the compiler's CPU seconds in that build,
    seconds when the library is cached), as a worker does: the model's stored form at hand,
    its hash finds the library. On a loaded machine the CPU seconds divided by the CPUs the
    build can use say what the wall time would be on an idle one."""
    stored = dump_model(model)
    saved = os.environ.get("ALEA_HOME")
    with tempfile.TemporaryDirectory() as home:
        os.environ["ALEA_HOME"] = home
        try:
            start, before = time.perf_counter(), os.times()
            native.compile_native(model, seed=1, key=hashlib.sha256(stored).hexdigest())
            cold, after = time.perf_counter() - start, os.times()
            native._libraries.clear()  # the cached path dlopens the library again
            start = time.perf_counter()
            native.compile_native(model, seed=1, key=hashlib.sha256(stored).hexdigest())
            cached = time.perf_counter() - start
        finally:
            if saved is None:
                os.environ.pop("ALEA_HOME")
            else:
                os.environ["ALEA_HOME"] = saved
    compiler = after.children_user + after.children_system
    return cold, compiler - before.children_user - before.children_system, cached


_WIDE = """
import json, sys, time
from services.engine import simulate
from services.engine.ir import Apply, Const, Model, Output, Sample
n, trials = int(sys.argv[1]), int(sys.argv[2])
normal = (Const(1.0), Const(0.1))
xs = tuple(Sample(i, "normal", normal, f"A{i + 1}", f"Model!A{i + 1}") for i in range(n))
model = Model(xs, (Output("total", "Model!B1", Apply("sum", xs)),))
start = time.perf_counter()
result = simulate(model, trials=trials, seed=1, backend="native").results()["total"]
# VmHWM, not ru_maxrss: Linux carries the parent's peak into a child's ru_maxrss over fork
# and exec, and the benchmark's own process holds gigabytes by then.
hwm = next(line for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(json.dumps({"seconds": time.perf_counter() - start, "mean": result.mean,
                  "rss": int(hwm.split()[1]) * 1024}))
"""


def wide_model_rss(inputs: int = 100_000, trials: int = 10_000) -> dict[str, float]:
    """Peak RSS (bytes), seconds and mean of the wide model, in a child process."""
    root = Path(__file__).parents[2]
    done = subprocess.run(
        [sys.executable, "-c", _WIDE, str(inputs), str(trials)],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
        timeout=3600,
    )
    measured: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return measured
