"""Engine benchmark: ``python -m bench.engine [--trials N]``.

For the small model, the 10-year project NPV and the 50-input portfolio (tests/engine/models.py)
it measures, side by side in one run (best of ``--repeat``, interleaved), trials per second of:
the engine's NumPy back end (``Evaluator.evaluate`` over the engine's default chunks), the same
model written by hand in NumPy (bench/engine/hand.py), NumPy Philox uniforms for the same draw
count (raw RNG), and pycel / formulas recalculating the workbook per trial (a few seconds,
extrapolated). With a GPU and PyCUDA it adds the CUDA kernel and a raw Philox kernel. It prints
the ratios against the targets and the peak memory of one chunk (tracemalloc) and of the run.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import numpy as np

from bench.engine import excel, hand
from services.engine import compile_numpy, default_chunk_size, load_workbook, simulate
from services.engine.ir import Model
from tests.engine import models as m

TARGETS = {"numpy": 1.0, "pycel": 1000.0, "rng": 2.0, "gpu_philox": 0.5}


def _best(fn: Callable[[], None], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def _chunks(trials: int, chunk: int) -> list[tuple[int, int]]:
    return [(a, min(chunk, trials - a)) for a in range(0, trials, chunk)]


def measure(
    name: str, model: Model, trials: int, repeat: int, excel_seconds: float, workdir: Path
) -> dict[str, float]:
    """Rates (trials/s) and peak memory of one model."""
    chunk = min(default_chunk_size(model), trials)
    spans = _chunks(trials, chunk)
    evaluator = compile_numpy(model, seed=1)
    draw = hand.MODELS[name]
    draws = len(model.inputs)

    def engine() -> None:
        for first, count in spans:
            evaluator.evaluate(first, count)

    def numpy_hand() -> None:
        gen = np.random.Generator(np.random.Philox(1))
        for _, count in spans:
            draw(gen, count)

    def raw_rng() -> None:
        gen = np.random.Generator(np.random.Philox(1))
        for _, count in spans:
            gen.random(count * draws)

    times = {"engine": float("inf"), "numpy": float("inf"), "rng": float("inf")}
    for _ in range(repeat):  # interleaved, so that load from elsewhere hits all alike
        for key, fn in (("engine", engine), ("numpy", numpy_hand), ("rng", raw_rng)):
            times[key] = min(times[key], _best(fn, 1))
    start = time.perf_counter()
    simulate(model, trials=trials, seed=1, backend="cpu")
    with_stats = trials / (time.perf_counter() - start)

    tracemalloc.start()
    evaluator.evaluate(0, chunk)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()

    path, inputs, outputs = excel.plain_workbook(name, workdir)
    out = {f"{k}_rate": trials / t for k, t in times.items()}
    out |= {
        "rng_time_ratio": times["engine"] / times["rng"],
        "simulate_rate": with_stats,
        "chunk": chunk,
        "chunk_peak_mib": peak / 2**20,
        "inputs": draws,
        "pycel_rate": excel.pycel_rate(path, inputs, outputs, excel_seconds),
        "formulas_rate": excel.formulas_rate(path, inputs, outputs, excel_seconds / 2),
    }
    out |= _gpu(model, trials)
    return out


def _gpu(model: Model, trials: int) -> dict[str, float]:
    """Kernel-only rates of the model and of a raw Philox kernel (same draws), on a GPU."""
    from services.engine.cuda import runner

    if not runner.gpu_available():
        return {}
    import pycuda.driver as drv

    from services.engine.ir import Const, Output, Sample

    uniforms = tuple(
        Sample(i, "uniform", (Const(0.0), Const(1.0)), f"u{i}", "")
        for i in range(len(model.inputs))
    )
    raw = Model(uniforms, (Output("u0", "", uniforms[0]),))
    count = max(trials, 1 << 24)
    rates = {}
    with runner.context():
        for key, mdl in (("gpu", model), ("gpu_philox", raw)):
            ev = runner.compile_cuda(mdl, seed=1)
            ev.launch(0, count)  # warm up
            drv.Context.synchronize()
            start = time.perf_counter()
            for _ in range(3):
                ev.launch(0, count)
            drv.Context.synchronize()
            rates[f"{key}_rate"] = 3 * count / (time.perf_counter() - start)
        start = time.perf_counter()
        runner.compile_cuda(model, seed=1).evaluate(0, count)  # with the copy to the host
        rates["gpu_evaluate_rate"] = count / (time.perf_counter() - start)
    return rates


def _verdict(ok: bool) -> str:
    return "meets" if ok else "MISSES"


def report(name: str, r: dict[str, float]) -> list[str]:
    """Human-readable lines for one model."""
    e = r["engine_rate"]
    lines = [
        f"{name} ({int(r['inputs'])} inputs, chunk {int(r['chunk']):,} trials)",
        f"  engine (NumPy back end)  {e:14,.0f} trials/s   with statistics "
        f"{r['simulate_rate']:,.0f} trials/s",
        f"  hand-written NumPy       {r['numpy_rate']:14,.0f} trials/s   engine/NumPy "
        f"{e / r['numpy_rate']:.2f}x  ({_verdict(e / r['numpy_rate'] >= TARGETS['numpy'])} "
        f">= {TARGETS['numpy']}x)",
        f"  pycel per trial          {r['pycel_rate']:14,.0f} trials/s   engine/pycel "
        f"{e / r['pycel_rate']:,.0f}x  ({_verdict(e / r['pycel_rate'] >= TARGETS['pycel'])} "
        f">= {TARGETS['pycel']:.0f}x)",
        f"  formulas per trial       {r['formulas_rate']:14,.1f} trials/s   engine/formulas "
        f"{e / r['formulas_rate']:,.0f}x",
        f"  raw NumPy Philox draws   {r['rng_rate']:14,.0f} trials/s   engine time / RNG time "
        f"{r['rng_time_ratio']:.2f}  ({_verdict(r['rng_time_ratio'] <= TARGETS['rng'])} "
        f"<= {TARGETS['rng']})",
        f"  peak traced memory of one chunk {r['chunk_peak_mib']:.1f} MiB",
    ]
    if "gpu_rate" in r:
        ratio = r["gpu_rate"] / r["gpu_philox_rate"]
        lines.append(
            f"  GPU kernel {r['gpu_rate']:,.0f} trials/s; raw Philox kernel "
            f"{r['gpu_philox_rate']:,.0f} trials/s; ratio {ratio:.2f} "
            f"({_verdict(ratio >= TARGETS['gpu_philox'])} >= "
            f"{TARGETS['gpu_philox']}); evaluate() with the copy to the host "
            f"{r['gpu_evaluate_rate']:,.0f} trials/s"
        )
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.engine", description=__doc__)
    parser.add_argument("--trials", type=int, default=500_000)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument(
        "--excel-seconds", type=float, default=2.0, help="time given to pycel (formulas gets half)"
    )
    parser.add_argument("--models", nargs="*", default=list(hand.MODELS))
    args = parser.parse_args(argv)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models:
            model = load_workbook(m.save(m.MODELS[name]("risk"), Path(tmp), name))
            r = measure(name, model, args.trials, args.repeat, args.excel_seconds, Path(tmp))
            print("\n".join(report(name, r)), flush=True)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"peak RSS of this run {rss:,.0f} MiB; {args.trials:,} trials per model; "
        f"took {time.perf_counter() - start:.0f} s"
    )


if __name__ == "__main__":
    main()
