"""RiskSimtable benchmark: ``python -m bench.engine.simtable [--trials N] [--scenarios K]``.

One run of K RiskSimtable simulations against one plain simulation of the same model, side by
side (interleaved, best of ``--repeat``) on the native back end, with statistics (what a
worker computes per chunk) and without (``evaluate`` alone). Target: K = 10 costs at most
4× one simulation. Two models:

- ``npv``: the 10-year project NPV (tests/engine/models.py) with its discount rate a
  RiskSimtable — the scenarios change a formula's constant, the inputs are shared;
- ``price``: the README's example (tests/engine/examples.py) with the price's mean a
  RiskSimtable — each scenario samples its own copy of the input from the same uniforms.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

from openpyxl import Workbook

from services.engine import load_workbook, make_evaluator, outcome, simulate
from services.engine.ir import Model
from tests.engine import examples
from tests.engine import models as m

TARGET = 4.0


def _scenarios(k: int, low: float, high: float) -> str:
    values = ",".join(repr(round(low + (high - low) * i / max(k - 1, 1), 6)) for i in range(k))
    return f"RiskSimtable({{{values}}})"


def npv(k: int | None) -> Workbook:
    """The project NPV; with ``k``, its discount rate takes k values from 4% to 13%."""
    book = m.project_npv("risk")
    if k is not None:
        book["Assumptions"]["B6"] = "=" + _scenarios(k, 0.04, 0.13)
    return book


def price(k: int | None) -> Workbook:
    """The README's example; with ``k``, the price's mean takes k values from 50 to 59."""
    book = examples.simtable(0)
    if k is not None:
        book["Model"]["B2"] = f'=RiskNormal({_scenarios(k, 50, 59)},5,RiskName("Price"))'
    return book


MODELS: dict[str, Callable[[int | None], Workbook]] = {"npv": npv, "price": price}


def _time(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def measure(one: Model, many: Model, trials: int, repeat: int) -> dict[str, float]:
    """Best seconds of each run, interleaved so that outside load hits both alike."""
    runs: dict[str, Callable[[], object]] = {}
    for key, model in (("one", one), ("many", many)):
        ev = make_evaluator(model, seed=1, backend="native")
        runs[f"{key}_stats"] = partial(simulate, model, trials=trials, seed=1, evaluator=ev)
        runs[f"{key}_evaluate"] = partial(ev.evaluate, 0, trials)
    best = dict.fromkeys(runs, float("inf"))
    for _ in range(repeat):
        for name, fn in runs.items():
            best[name] = min(best[name], _time(fn))
    return best


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.engine.simtable", description=__doc__)
    parser.add_argument("--trials", type=int, default=200_000)
    parser.add_argument("--scenarios", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        for name, build in MODELS.items():
            one = load_workbook(m.save(build(None), Path(tmp), f"{name}_one"))
            table = load_workbook(m.save(build(args.scenarios), Path(tmp), f"{name}_many"))
            many = outcome.prepare(table, outcome.RunOptions()).model
            t = measure(one, many, args.trials, args.repeat)
            for part in ("stats", "evaluate"):
                ratio = t[f"many_{part}"] / t[f"one_{part}"]
                verdict = "meets" if ratio <= TARGET else "MISSES"
                print(
                    f"{name:6} {part:8} one simulation {t[f'one_{part}']:.3f} s, "
                    f"{args.scenarios} RiskSimtable simulations {t[f'many_{part}']:.3f} s: "
                    f"{ratio:.2f}x ({verdict} <= {TARGET:g}x; {args.scenarios}x if run apart)",
                    flush=True,
                )
    print(f"{args.trials:,} trials per run, native back end, best of {args.repeat}")


if __name__ == "__main__":
    main()
