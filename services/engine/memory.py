"""The engine's memory budget: what one run of a model may hold, whatever the model's width.

One setting, ``ALEA_ENGINE_MEMORY_BYTES`` (default 512 MiB, per worker or ``alea run``),
bounds the working set. Half goes to the statistics a run keeps (samples up to the exact
limit or the sensitivity reservoir, and their copies while results are computed: 24 bytes
a value), a quarter to the chunk's per-trial arrays, a quarter to the back end's own
working set (NumPy's tiles of intermediates, the native loop's tiles: one per thread,
whatever the number of CPUs). So:

* the chunk size shrinks as the model widens (outputs, inputs kept for sensitivity);
* NumPy's tiles shrink with the intermediates a trial keeps alive at once;
* the native back end runs a model on fewer threads once their tiles (32 bytes an input
  each at least) would not fit;
* a model with more than :data:`SENSITIVITY_INPUTS` inputs keeps that many for
  sensitivity: the strongest (largest |Pearson r| with an output over the first
  :data:`PILOT_TRIALS` trials, outputs taking turns), so every worker chooses the same;
* the exact regime and the reservoir shrink when even that does not fit;
* a model whose single trial cannot fit is refused (:func:`check_fits`).

Everything planned depends on the model, the seed, the options and the budget alone, so
workers sharing one setting produce the same bits.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from .errors import ModelError
from .ir import Const, Model, postorder
from .stats import StatsOptions

if TYPE_CHECKING:
    from .numpy_backend import Evaluator

__all__ = [
    "DEFAULT_BUDGET",
    "PILOT_TRIALS",
    "SENSITIVITY_INPUTS",
    "Plan",
    "budget",
    "check_fits",
    "plan",
    "trial_bytes",
]

DEFAULT_BUDGET = 512 << 20
VARIABLE = "ALEA_ENGINE_MEMORY_BYTES"
SENSITIVITY_INPUTS = 256
"""Most inputs a run keeps for sensitivity (of a model that has more)."""
PILOT_TRIALS = 1024
"""Trials ``[0, PILOT_TRIALS)`` rank the inputs of a model that has too many to keep."""
PER_OUTPUT_BYTES = 64 << 10
"""What one output's statistics and results hold beyond samples (sketch, convergence...)."""
_MIN_SAMPLES = 1000  # the least exact limit and reservoir a plan leaves


def budget(env: Mapping[str, str] | None = None) -> int:
    """``ALEA_ENGINE_MEMORY_BYTES`` (default 512 MiB); ValueError naming the variable."""
    raw = (os.environ if env is None else env).get(VARIABLE, "")
    if not raw:
        return DEFAULT_BUDGET
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{VARIABLE} must be a whole number of bytes, got {raw!r}") from None
    if value < 16 << 20:
        raise ValueError(f"{VARIABLE} must be at least 16 MiB (16777216), got {value}")
    return value


def _values(model: Model) -> int:
    """Distinct values one trial computes: inputs, intermediates and outputs."""
    roots = [o.node for o in model.outputs] + list(model.inputs)
    return sum(1 for n in postorder(roots) if not isinstance(n, Const))


def trial_bytes(model: Model) -> int:
    """Bytes one trial needs at least: every value it computes once (an upper bound: back
    ends release intermediates early), and each output's statistics."""
    return 8 * _values(model) + PER_OUTPUT_BYTES * len(model.outputs)


def check_fits(model: Model, limit: int | None = None) -> None:
    """Refuse (ModelError) a model whose single trial cannot fit the memory budget."""
    limit = budget() if limit is None else limit
    need = trial_bytes(model)
    if need > limit // 4:
        raise ModelError(
            f"one trial of this model needs {_mib(need)} ({len(model.inputs):,} inputs, "
            f"{len(model.outputs):,} outputs, {_values(model):,} values in all), more than the "
            f"quarter of the engine's memory limit that holds a chunk's trials: the limit "
            f"({VARIABLE}) is {_mib(limit)}"
        )


@dataclass(frozen=True)
class Plan:
    """How a run of one model stays within the budget (see the module docstring)."""

    chunk: int
    options: StatsOptions
    kept: tuple[int, ...]

    def chunk_within(self, requested: int) -> int:
        """The largest chunk that fits and divides ``requested`` (so chunks still start at
        multiples of ``requested``, where segments of a simulation start)."""
        parts = math.ceil(requested / min(requested, self.chunk))
        while requested % parts:
            parts += 1
        return requested // parts


def plan(
    evaluator: Evaluator, model: Model, options: StatsOptions, limit: int | None = None
) -> Plan:
    """The plan of ``model`` on ``evaluator`` (whose kept inputs and tile it sets); a model
    whose single trial cannot fit is refused (:func:`check_fits`)."""
    limit = budget() if limit is None else limit
    check_fits(model, limit)
    quarter = limit // 4
    # Here rather than at the top: the simulation service reads the budget and checks models
    # at start-up and in CreateModel without loading the back ends (and SciPy).
    from .native import NativeEvaluator
    from .numpy_backend import TILE, NumpyEvaluator

    if isinstance(evaluator, NativeEvaluator):  # before the pilot, which runs on them too
        evaluator.fit_threads(quarter)
    outputs, inputs = len(model.outputs), len(model.inputs)
    kept = tuple(range(inputs))
    if inputs > SENSITIVITY_INPUTS:
        kept = _strongest(evaluator, model, SENSITIVITY_INPUTS, quarter)
    evaluator.keep(kept)
    width = outputs + len(kept)
    held = max(_MIN_SAMPLES, 2 * quarter // (24 * width))  # samples, joined and sorted copies
    options = replace(
        options,
        exact_limit=min(options.exact_limit, held),
        reservoir_size=min(options.reservoir_size, held),
    )
    chunk = max(1, quarter // (2 * evaluator.bytes_per_trial))  # the arrays, a copy at most
    if isinstance(evaluator, NumpyEvaluator):  # the tiles in flight, one per thread
        fit = quarter // (evaluator.threads * 8 * evaluator.live)
        evaluator.tile = int(min(TILE, max(4, fit)))
    return Plan(chunk, options, kept)


def _strongest(evaluator: Evaluator, model: Model, limit: int, quarter: int) -> tuple[int, ...]:
    """``limit`` inputs: each output's strongest in turn, by |Pearson r| over the pilot."""
    n_in, n_out = len(model.inputs), len(model.outputs)
    strength = np.zeros((n_in, n_out))
    group = max(1, quarter // (8 * 8 * n_in))  # outputs whose co-moments fit at once
    batch = max(4, quarter // (8 * 2 * (n_in + n_out)))
    evaluator.keep(tuple(range(n_in)))
    for lo in range(0, n_out, group):
        hi = min(n_out, lo + group)
        sums = _CoMoments(n_in, hi - lo)
        for first in range(0, PILOT_TRIALS, batch):
            out, ins = evaluator.evaluate(first, min(batch, PILOT_TRIALS - first))
            x = np.stack(list(ins.values()), axis=1)
            y = np.stack([out[o.name] for o in model.outputs[lo:hi]], axis=1)
            sums.add(x, y)
        strength[:, lo:hi] = sums.strength()
    ranked = np.argsort(-strength, axis=0, kind="stable")  # ties: the earlier input
    chosen: dict[int, None] = {}
    for rank in range(n_in):
        for j in range(n_out):
            chosen.setdefault(int(ranked[rank, j]))
            if len(chosen) == limit:
                return tuple(sorted(chosen))
    return tuple(sorted(chosen))


class _CoMoments:
    """Sums for Pearson r of every (input, output) pair over trials where both are finite."""

    def __init__(self, inputs: int, outputs: int) -> None:
        shape = (inputs, outputs)
        self.n, self.sx, self.sy = np.zeros(shape), np.zeros(shape), np.zeros(shape)
        self.sxx, self.syy, self.sxy = np.zeros(shape), np.zeros(shape), np.zeros(shape)

    def add(self, x: np.ndarray, y: np.ndarray) -> None:
        mx, my = np.isfinite(x).astype(float), np.isfinite(y).astype(float)
        x, y = np.where(mx > 0, x, 0.0), np.where(my > 0, y, 0.0)
        self.n += mx.T @ my
        self.sx += x.T @ my
        self.sy += mx.T @ y
        self.sxx += (x * x).T @ my
        self.syy += mx.T @ (y * y)
        self.sxy += x.T @ y

    def strength(self) -> np.ndarray:
        """|r|, 0 where undefined (fewer than 3 trials, or a constant)."""
        with np.errstate(all="ignore"):
            n = self.n
            cov = self.sxy - self.sx * self.sy / n
            var = (self.sxx - self.sx**2 / n) * (self.syy - self.sy**2 / n)
            r = np.abs(cov) / np.sqrt(var)
        return np.where((n >= 3) & np.isfinite(r), r, 0.0)


def _mib(n: int) -> str:
    return f"{n / 2**20:,.1f} MiB"
