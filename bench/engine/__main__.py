"""Engine benchmark: ``python -m bench.engine [--trials N] [--repeat R]``.

For the small model, the 10-year project NPV and the 50-input portfolio (tests/engine/models.py)
it measures, side by side in one run (best of ``--repeat``, interleaved), trials per second of:
the engine with statistics (``simulate``: evaluation and every chunk's statistics, the
simulation service's options) on the native back end and on the NumPy back end; the same
model written by hand in NumPy on one thread, without statistics (bench/engine/hand.py); and
NumPy's Philox uniforms for the same draw count (raw RNG). It splits the native back end's
time per trial into RNG, transforms, formulas and statistics, times each model's build
(empty cache and cached) and a 500-cell model's, and measures the peak RSS of a
100,000-input model simulated for 10,000 trials. pycel / formulas recalculating the workbook
per trial (a few seconds each, extrapolated) and, with a GPU and PyCUDA, the CUDA kernel are
reported too. Targets are printed beside each ratio; the machine's load (``uptime``) first.
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from bench.engine import excel, hand
from bench.engine.native import SERVICE_OPTIONS, best, compile_times, split, wide_model_rss
from services.engine import load_workbook, make_evaluator, simulate
from services.engine.cuda.runner import gpu_available
from services.engine.ir import Model
from services.engine.numpy_backend import Evaluator
from tests.engine import models as m

TARGETS = {
    "native_hand": 2.0,
    "pycel": 1000.0,
    "gpu_philox": 0.5,
    "compile_500": 1.0,
    "cached": 0.010,
}


def measure(
    name: str, model: Model, trials: int, repeat: int, excel_seconds: float, workdir: Path
) -> dict[str, float]:
    """Rates (trials/s), the native split (ns/trial) and build times of one model."""
    native = make_evaluator(model, seed=1, backend="native")
    numpy = make_evaluator(model, seed=1, backend="numpy")
    draw = hand.MODELS[name]
    draws = len(model.inputs)

    def engine(evaluator: Evaluator) -> Callable[[], None]:
        def run() -> None:
            simulate(model, trials=trials, seed=1, evaluator=evaluator, options=SERVICE_OPTIONS)

        return run

    def numpy_hand() -> None:
        gen = np.random.Generator(np.random.Philox(1))
        for first in range(0, trials, 1 << 20):
            draw(gen, min(1 << 20, trials - first))

    def raw_rng() -> None:
        gen = np.random.Generator(np.random.Philox(1))
        for first in range(0, trials, 1 << 20):
            gen.random(min(1 << 20, trials - first) * draws)

    runs = {"native": engine(native), "numpy": engine(numpy), "hand": numpy_hand, "rng": raw_rng}
    if gpu_available():  # the GPU back end as the service runs it: kernel, copy, statistics
        runs["gpu_engine"] = engine(make_evaluator(model, seed=1, backend="gpu"))
    times = dict.fromkeys(runs, float("inf"))
    for _ in range(repeat):  # interleaved, so that load from elsewhere hits all alike
        for key, fn in runs.items():
            times[key] = min(times[key], best(fn, 1))
    out = {f"{k}_rate": trials / t for k, t in times.items()}
    out |= {f"split_{k}": v for k, v in split(model, trials, repeat).items()}
    out["compile"], out["compile_cpu"], out["cached"] = compile_times(model)
    path, inputs, outputs = excel.plain_workbook(name, workdir)
    out["pycel_rate"] = excel.pycel_rate(path, inputs, outputs, excel_seconds)
    out["formulas_rate"] = excel.formulas_rate(path, inputs, outputs, excel_seconds / 2)
    out["inputs"] = draws
    out |= _gpu(model, trials)
    return out


def cells_model(cells: int, workdir: Path) -> Model:
    """A workbook of ``cells`` cells: 50 inputs of four distributions, then formula cells
    as a cash-flow sheet has them (arithmetic over inputs and the cell above, every tenth
    an IF or a MAX), the last five as outputs."""
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.title = "Model"
    kinds = ("RiskNormal(100,10)", "RiskTriang(1,2,5)", "RiskPert(4,5,7)", "RiskUniform(0,1)")
    for r in range(1, 51):
        ws.cell(r, 1, f"={kinds[r % 4]}")
    for r in range(1, cells - 49):
        a, b = f"A{r % 50 + 1}", f"A{(r * 7) % 50 + 1}"
        above = f"B{r - 1}" if r > 1 else "1"
        formula = f"={above}*(1+{a}/1000)-{b}/10"
        if r % 10 == 0:
            formula = f"=IF({a}>{b},{above}+{a},MAX({above},{b}))"
        ws.cell(r, 2, formula)
    for k in range(5):
        ws.cell(k + 1, 3, f"=RiskOutput()+B{cells - 50 - 7 * k}")
    wb.save(workdir / "cells.xlsx")
    return load_workbook(workdir / "cells.xlsx")


def _gpu(model: Model, trials: int) -> dict[str, float]:
    """Kernel-only rates of the model and of a raw Philox kernel (same draws), on a GPU."""
    from services.engine.cuda import runner

    if not gpu_available():
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
    nat, hand_rate = r["native_rate"], r["hand_rate"]
    ratio = nat / hand_rate
    lines = [
        f"{name} ({int(r['inputs'])} inputs; engine rates include every chunk's statistics)",
        f"  native back end          {nat:14,.0f} trials/s   native/hand-written {ratio:.2f}x  "
        f"({_verdict(ratio >= TARGETS['native_hand'])} >= {TARGETS['native_hand']}x)",
        f"  NumPy back end           {r['numpy_rate']:14,.0f} trials/s   native/NumPy back end "
        f"{nat / r['numpy_rate']:.2f}x",
        f"  hand-written NumPy       {hand_rate:14,.0f} trials/s   (one thread, no statistics)",
        f"  raw NumPy Philox draws   {r['rng_rate']:14,.0f} trials/s",
        f"  native per trial: RNG {r['split_rng']:.1f} ns, transforms "
        f"{r['split_transforms']:.1f} ns, formulas {r['split_formulas']:.1f} ns, statistics "
        f"{r['split_statistics']:.1f} ns (total {r['split_total']:.1f} ns, all threads)",
        f"  native build {r['compile'] * 1e3:.0f} ms (compiler CPU "
        f"{r['compile_cpu'] * 1e3:.0f} ms), cached {r['cached'] * 1e3:.1f} ms "
        f"({_verdict(r['cached'] <= TARGETS['cached'])} <= 10 ms)",
        f"  pycel per trial          {r['pycel_rate']:14,.0f} trials/s   native/pycel "
        f"{nat / r['pycel_rate']:,.0f}x  ({_verdict(nat / r['pycel_rate'] >= TARGETS['pycel'])} "
        f">= {TARGETS['pycel']:.0f}x); formulas {r['formulas_rate']:,.1f} trials/s",
    ]
    if "gpu_rate" in r:
        gpu = r["gpu_rate"] / r["gpu_philox_rate"]
        lines.append(
            f"  GPU kernel {r['gpu_rate']:,.0f} trials/s; raw Philox kernel "
            f"{r['gpu_philox_rate']:,.0f} trials/s; ratio {gpu:.2f} "
            f"({_verdict(gpu >= TARGETS['gpu_philox'])} >= {TARGETS['gpu_philox']}); "
            f"evaluate() with the copy to the host {r['gpu_evaluate_rate']:,.0f} trials/s; "
            f"engine with statistics on the GPU back end {r['gpu_engine_rate']:,.0f} trials/s "
            f"(GPU/native {r['gpu_engine_rate'] / nat:.2f}x)"
        )
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.engine", description=__doc__)
    parser.add_argument("--trials", type=int, default=2_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--excel-seconds", type=float, default=2.0, help="time given to pycel (formulas gets half)"
    )
    parser.add_argument("--models", nargs="*", default=list(hand.MODELS))
    parser.add_argument("--wide-inputs", type=int, default=100_000)
    args = parser.parse_args(argv)
    start = time.perf_counter()
    load = os.getloadavg()
    print(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models:
            model = load_workbook(m.save(m.MODELS[name]("risk"), Path(tmp), name))
            r = measure(name, model, args.trials, args.repeat, args.excel_seconds, Path(tmp))
            print("\n".join(report(name, r)), flush=True)
        cold, cpu, cached = compile_times(cells_model(500, Path(tmp)))
        print(
            f"500-cell model: native build {cold:.2f} s "
            f"({_verdict(cold <= TARGETS['compile_500'])} <= 1 s; compiler CPU {cpu:.2f} s on "
            f"{os.cpu_count()} CPUs), cached {cached * 1e3:.1f} ms "
            f"({_verdict(cached <= TARGETS['cached'])} <= 10 ms)"
        )
    wide = wide_model_rss(args.wide_inputs)
    print(
        f"{args.wide_inputs:,}-input model, 10,000 trials on the native back end: peak RSS "
        f"{wide['rss'] / 2**20:,.0f} MiB, {wide['seconds']:.1f} s (mean {wide['mean']:,.1f})"
    )
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    load = os.getloadavg()
    print(
        f"peak RSS of this run {rss:,.0f} MiB; {args.trials:,} trials per model; took "
        f"{time.perf_counter() - start:.0f} s; load average now {load[0]:.2f} {load[1]:.2f}"
    )


if __name__ == "__main__":
    main()
