"""The memory plan: chunks, tiles and kept statistics shrink with the model; the strongest
inputs are kept for sensitivity, the same on every back end; a model too big is refused."""

from __future__ import annotations

import json
import subprocess
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from services import engine
from services.engine import memory, native
from services.engine.errors import ModelError
from services.engine.ir import Apply, Const, Model, Output, Sample
from services.engine.stats import StatsOptions


def wide(n: int, strong: tuple[int, ...] = (), outputs: int = 1) -> Model:
    """y_j = sum of n standard normals, the ``strong`` ones weighted 50 (output j: shifted)."""
    xs = tuple(
        Sample(i, "normal", (Const(0.0), Const(1.0)), f"x{i}", f"A{i + 1}") for i in range(n)
    )
    terms = tuple(Apply("mul", (x, Const(50.0))) if i in strong else x for i, x in enumerate(xs))
    total = Apply("sum", terms)
    outs = tuple(
        Output(f"y{j}", f"B{j + 1}", Apply("add", (total, Const(float(j))))) for j in range(outputs)
    )
    return Model(xs, outs)


def test_the_budget_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    assert memory.budget({}) == 512 << 20
    assert memory.budget({"ALEA_ENGINE_MEMORY_BYTES": str(64 << 20)}) == 64 << 20
    for bad in ("lots", "1000"):
        with pytest.raises(ValueError, match="ALEA_ENGINE_MEMORY_BYTES"):
            memory.budget({"ALEA_ENGINE_MEMORY_BYTES": bad})


def test_a_narrow_model_keeps_everything(compile_model) -> None:
    m = wide(3)
    ev = compile_model(m, seed=1)
    plan = memory.plan(ev, m, StatsOptions())
    assert plan.kept == (0, 1, 2) and plan.options == StatsOptions()
    assert plan.chunk_within(1 << 20) == 1 << 20


def test_a_wide_model_keeps_its_strongest_inputs_on_every_back_end(compile_model) -> None:
    strong = (7, 400, 1999)
    m = wide(2000, strong, outputs=2)
    ev = compile_model(m, seed=3)
    plan = memory.plan(ev, m, StatsOptions(exact_limit=100_000))
    assert len(plan.kept) == memory.SENSITIVITY_INPUTS and set(strong) <= set(plan.kept)
    assert plan.kept == memory.plan(compile_model(m, seed=3, threads=1), m, StatsOptions()).kept
    _, inputs = ev.evaluate(0, 100)
    assert len(inputs) == memory.SENSITIVITY_INPUTS and {"x7", "x400", "x1999"} <= set(inputs)
    r = engine.simulate(m, trials=5000, seed=3, evaluator=ev).results()["y0"]
    assert len(r.sensitivity) == memory.SENSITIVITY_INPUTS
    assert {name for name, _ in r.sensitivity[:3]} == {"x7", "x400", "x1999"}


def test_chunks_and_kept_samples_shrink_with_the_budget(compile_model) -> None:
    m = wide(200, outputs=50)
    ev = compile_model(m, seed=1)
    small = memory.plan(ev, m, StatsOptions(), limit=16 << 20)
    large = memory.plan(ev, m, StatsOptions(), limit=1 << 30)
    assert small.chunk < large.chunk and small.options.exact_limit < large.options.exact_limit
    assert 4 * 2 * small.chunk * ev.bytes_per_trial <= 16 << 20
    assert (1 << 18) % small.chunk_within(1 << 18) == 0


def test_numpy_tiles_shrink_with_the_intermediates() -> None:
    m = wide(1500)
    ev = engine.make_evaluator(m, seed=1, backend="numpy", threads=2)
    memory.plan(ev, m, StatsOptions(), limit=16 << 20)
    assert 4 <= ev.tile < 200 and 2 * ev.tile * 8 * ev.live <= 4 << 20
    tracemalloc.start()
    outputs, _ = ev.evaluate(0, 2000)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert outputs["y0"].shape == (2000,) and np.isfinite(outputs["y0"]).all()
    assert peak < 16 << 20


# In a process of its own: VmHWM is that process's peak alone (a child's ru_maxrss carries
# its parent's over fork and exec), reset after the pilot once malloc_trim has handed back
# what the pilot freed. No input is kept, so what the run adds is the threads' scratch.
_NATIVE_PEAK = """
import ctypes, json, sys
from services.engine import memory, native
from services.engine.stats import StatsOptions
from tests.engine.test_memory import wide
n, threads, limit, trials = (int(a) for a in sys.argv[1:])
model = wide(n)
ev = native.compile_native(model, seed=1, threads=threads)
memory.plan(ev, model, StatsOptions(), limit=limit)
ev.keep(())
ev.evaluate(0, 64)
def status(key):
    return next(int(s.split()[1]) * 1024 for s in open("/proc/self/status") if s.startswith(key))
ctypes.CDLL(None).malloc_trim(0)
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")
base = status("VmRSS:")
ev.evaluate(0, trials)
print(json.dumps({"threads": ev.threads, "scratch": ev.scratch_per_thread,
                  "peak": status("VmHWM:") - base}))
"""


@pytest.mark.slow
@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc/self")
@pytest.mark.skipif(native.available() is not None, reason="no C compiler")
def test_native_threads_fit_the_back_ends_quarter_whatever_the_cpus() -> None:
    """A wide model asked to run on 16 threads: each thread's tile of 40,000 inputs (4
    trials, 1.3 MB) came to 21 MB of scratch (14 MiB measured at once on 2 CPUs) against a
    budget of 16 MiB, whose quarter is the back end's; now as many threads run as that
    quarter holds (3), and the run adds at most the quarter (about 1 MiB measured)."""
    n, limit, trials = 40_000, 16 << 20, 16384
    done = subprocess.run(
        [sys.executable, "-c", _NATIVE_PEAK, str(n), "16", str(limit), str(trials)],
        cwd=Path(__file__).parents[2],
        capture_output=True,
        text=True,
        check=True,
        timeout=240,
    )
    measured = json.loads(done.stdout.strip().splitlines()[-1])
    quarter = limit // 4
    assert 1 <= measured["threads"] < 16 and measured["threads"] * measured["scratch"] <= quarter
    assert measured["peak"] < quarter + (4 << 20)


def test_a_model_whose_trial_cannot_fit_is_refused() -> None:
    m = wide(3, outputs=100)
    memory.check_fits(m)
    with pytest.raises(ModelError) as err:
        memory.check_fits(m, limit=16 << 20)
    message = str(err.value)
    assert "one trial of this model needs 6.3 MiB (3 inputs, 100 outputs" in message
    assert "ALEA_ENGINE_MEMORY_BYTES) is 16.0 MiB" in message


def test_the_simulation_service_refuses_a_bad_budget_at_start() -> None:
    from services.runtime.config import ConfigError
    from services.simulation.config import load_config

    with pytest.raises(ConfigError, match="ALEA_ENGINE_MEMORY_BYTES must be a whole number"):
        load_config({"ALEA_ENGINE_MEMORY_BYTES": "half"})
