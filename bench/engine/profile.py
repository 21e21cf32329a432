"""Where the NumPy back end spends a chunk: ``python -m bench.engine.profile [--trials N]``.

Times, for each benchmark model, the phases of ``Evaluator.evaluate`` redone with the engine's
own modules on one chunk: Philox uniforms (``rng.uniforms``), the copula
(``correlation.correlate``), each distribution's inverse CDF (``sampling.sample``), and the
rest (the DAG arithmetic and bookkeeping) as the difference from a whole ``evaluate``; next to
NumPy's own Philox uniforms for the same draws. Best of three, one process.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np

from services.engine import compile_numpy, load_workbook, rng, sampling
from services.engine.correlation import copula_factor, correlate
from services.engine.ir import Const, Model
from tests.engine import models as m


def _best(fn: Callable[..., object], *inputs: np.ndarray) -> float:
    """Best of three calls of ``fn(*inputs)``, each on fresh copies of ``inputs`` made untimed
    (``sampling.sample`` overwrites its uniforms, so a reused array would be garbage input)."""
    best = float("inf")
    for _ in range(3):
        args = [a.copy() for a in inputs]
        start = time.perf_counter()
        fn(*args)
        best = min(best, time.perf_counter() - start)
    return best


def phases(model: Model, n: int) -> dict[str, float]:
    """Seconds per phase for ``n`` trials."""
    out: dict[str, float] = defaultdict(float)
    u = {s.stream: rng.uniforms(1, s.stream, 0, n) for s in model.inputs}
    out["numpy Philox uniforms (reference)"] = _best(
        lambda: np.random.Generator(np.random.Philox(1)).random(n * len(model.inputs))
    )
    out["rng.uniforms"] = _best(lambda: [rng.uniforms(1, s, 0, n) for s in u])
    for c in model.correlations:
        factor = copula_factor(c.matrix)
        streams = c.streams
        out["copula"] += _best(partial(correlate, [u[s] for s in streams], factor))
    for s in model.inputs:
        consts = [p for p in s.params if isinstance(p, Const)]
        if len(consts) == len(s.params):
            params = tuple(p.value for p in consts)
            fn = partial(sampling.sample, s.distribution, params=params, truncate=s.truncate)
            out[f"inverse CDF {s.distribution}"] += _best(fn, u[s.stream])
    evaluator = compile_numpy(model, seed=1)
    total = _best(lambda: evaluator.evaluate(0, n))
    out["rest of evaluate (DAG, threads)"] = total - sum(
        v for k, v in out.items() if k != "numpy Philox uniforms (reference)"
    )
    out["evaluate total"] = total
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.engine.profile", description=__doc__)
    parser.add_argument("--trials", type=int, default=262_144)
    parser.add_argument("--models", nargs="*", default=["small", "project_npv", "portfolio"])
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models:
            model = load_workbook(m.save(m.MODELS[name]("risk"), Path(tmp), name))
            result = phases(model, args.trials)
            print(f"{name}: {args.trials:,} trials, {len(model.inputs)} inputs")
            for phase, seconds in result.items():
                print(f"  {phase:40s} {seconds * 1e9 / args.trials:9.1f} ns/trial")


if __name__ == "__main__":
    main()
