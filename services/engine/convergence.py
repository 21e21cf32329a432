"""Convergence stopping: run until every monitored output's statistics are known well enough.

A run with :class:`Settings` checks after every ``check_every`` trials — over the prefix of
trials ``0 .. k * check_every``, never anything else — and stops at the first check where
every monitored output passes its :class:`~.ir.Convergence` test, or at ``max_trials``. So the
trial it stops at depends only on the model, the seed, the sampling and the settings: not on
chunk sizes, checkpoints or how many workers ran the blocks. Outputs with ``RiskConvergence``
use their own test; the others use ``Settings.default`` (none: they are not monitored).

How each statistic's confidence interval at level ``c`` is computed over the ``n`` finite
values of the prefix (Excel errors are not values; ``z`` is the normal quantile of
``(1 + c) / 2``), and its half-width ``h``, the larger distance from the estimate to an end:

* mean: ``h = z * s / sqrt(n)`` (``s`` the sample standard deviation, ``ddof=1``);
* standard deviation: the chi-square interval ``s * sqrt((n - 1) / chi2(1 - a/2 | a/2, n-1))``
  with ``a = 1 - c``;
* percentile ``p``: distribution-free, the values at the probabilities
  ``p -/+ z * sqrt(p (1 - p) / n)`` (the order statistics' ranks by the normal
  approximation to the binomial), read as the results read percentiles (exact while the
  samples are kept, from the quantile sketch beyond ``StatsOptions.exact_limit``).

A statistic passes when ``h <= tolerance`` (absolute) or ``h <= tolerance * |estimate|``
(relative); its *precision* is ``h`` or ``h / |estimate|``. A relative test of an estimate of
0 passes only when ``h`` is 0 too: give such an output an absolute tolerance. Fewer than two
finite values never pass.

While the prefix is within ``StatsOptions.exact_limit`` every interval comes from the values
themselves, so any chunking gives the same bits. Beyond it the mean and standard deviation are
merged moments, whose last bits may depend on how the trials were chunked (see :mod:`.stats`;
the quantile sketch does not): a check could then only differ where a half-width equals its
limit to about 1e-15 relative. The service's segments and :func:`simulate` merge the same
blocks of ``check_every`` trials.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from . import memory
from .errors import FormulaError
from .ir import Const, Convergence, Model
from .stats import Partial, StatsOptions
from .values import EMPTY

if TYPE_CHECKING:
    from .formula import Call
    from .lowering import Lowerer
    from .numpy_backend import Evaluator

__all__ = [
    "MAX_CHECKS",
    "Outcome",
    "Settings",
    "check",
    "criterion",
    "lower",
    "simulate",
]

MAX_CHECKS = 100_000
"""Most checks one run may make (``max_trials / check_every``): each reads the whole prefix."""

Progress = Callable[[int, Partial, "Outcome"], None]


def criterion(
    tolerance: float = 0.03,
    relative: bool = True,
    confidence: float = 0.95,
    mean: bool = True,
    stddev: bool = False,
    percentiles: tuple[float, ...] = (),
    field_prefix: str = "",
) -> Convergence:
    """A validated :class:`~.ir.Convergence`; ``ValueError`` names the field that is wrong
    (``field_prefix`` + its name)."""

    def bad(name: str, reason: str) -> ValueError:
        return ValueError(f"{field_prefix}{name} {reason}")

    if not (math.isfinite(tolerance) and tolerance > 0):
        raise bad("tolerance", f"must be a positive number, got {tolerance!r}")
    if relative and tolerance >= 1:
        raise bad("tolerance", f"must be below 1 (100 %) when relative, got {tolerance!r}")
    if not 0 < confidence < 1:
        raise bad("confidence", f"must be in (0, 1), got {confidence!r}")
    if not all(math.isfinite(p) and 0 < p < 1 for p in percentiles):
        raise bad("percentiles", f"must be probabilities in (0, 1), got {list(percentiles)}")
    if not (mean or stddev or percentiles):
        raise bad("mean", "or stddev or a percentile must be monitored")
    unique = tuple(sorted(set(percentiles)))
    return Convergence(tolerance, relative, confidence, mean, stddev, unique)


@dataclass(frozen=True)
class Settings:
    """A run's convergence stopping: check every ``check_every`` trials, stop at
    ``max_trials`` at the latest; ``default``: the test of outputs without RiskConvergence
    (None: only outputs with RiskConvergence are monitored)."""

    check_every: int
    max_trials: int
    default: Convergence | None = field(default_factory=Convergence)

    def __post_init__(self) -> None:
        if self.check_every < 1:
            raise ValueError(f"check_every must be a positive integer, got {self.check_every}")
        if self.max_trials < self.check_every or self.max_trials % self.check_every:
            raise ValueError(
                f"max_trials must be a multiple of check_every ({self.check_every}), "
                f"got {self.max_trials}"
            )
        if self.max_trials // self.check_every > MAX_CHECKS:
            raise ValueError(
                f"check_every must be at least max_trials / {MAX_CHECKS:,} "
                f"({-(-self.max_trials // MAX_CHECKS)}), got {self.check_every}"
            )

    def tests(self, model: Model) -> dict[str, Convergence]:
        """The test of each monitored output, by name; ``ValueError`` when none is."""
        found = {
            o.name: o.convergence or self.default
            for o in model.outputs
            if (o.convergence or self.default) is not None
        }
        if not found:
            raise ValueError(
                "default: convergence stopping monitors no output (no output has "
                "RiskConvergence): give a default tolerance"
            )
        return {k: v for k, v in found.items() if v is not None}

    def to_json(self) -> dict[str, Any]:
        """Plain JSON (stored with a simulation's run options)."""
        default = None
        if self.default is not None:
            default = {**asdict(self.default), "percentiles": list(self.default.percentiles)}
        return {"check_every": self.check_every, "max_trials": self.max_trials, "default": default}

    @staticmethod
    def from_json(data: dict[str, Any]) -> Settings:
        """Settings stored by :meth:`to_json`."""
        default = data.get("default")
        test = None if default is None else criterion(**default)
        return Settings(int(data["check_every"]), int(data["max_trials"]), test)


@dataclass(frozen=True)
class Outcome:
    """Where a convergence run stands after a check at ``trials``: ``converged`` (every
    monitored output passed at ``trials``), and each output's precision per statistic
    (``"mean"``, ``"stddev"``, ``"p95"``...; None where there is no interval yet)."""

    trials: int
    converged: bool
    precision: dict[str, dict[str, float | None]]
    passed: dict[str, bool]

    def to_dict(self, settings: Settings) -> dict[str, Any]:
        """Plain JSON: the outcome with the settings that produced it."""
        return {
            "converged": self.converged,
            "trials": self.trials,
            "check_every": settings.check_every,
            "max_trials": settings.max_trials,
            "outputs": {
                k: {"converged": self.passed[k], "precision": v} for k, v in self.precision.items()
            },
        }


def _label(p: float) -> str:
    return f"p{100 * p:g}"


def _passes(h: float, estimate: float, test: Convergence) -> tuple[bool, float | None]:
    if not math.isfinite(h) or not math.isfinite(estimate):
        return False, None
    if not test.relative:
        return h <= test.tolerance, h
    if h == 0:
        return True, 0.0
    if estimate == 0:
        return False, None
    return h <= test.tolerance * abs(estimate), h / abs(estimate)


def _intervals(partial: Partial, name: str, test: Convergence) -> dict[str, tuple[float, float]]:
    """``{statistic: (estimate, half-width)}`` of output ``name`` (see the module docstring)."""
    from scipy import stats as sps  # here: the settings above serve processes without SciPy

    values = partial.finite_values(name)
    n = int(partial.statistic(name, "count")) if values is None else values.size
    nan = (math.nan, math.inf)
    found: dict[str, tuple[float, float]] = {}
    z = float(sps.norm.ppf((1 + test.confidence) / 2))
    if values is None:
        mean, std = partial.statistic(name, "mean"), partial.statistic(name, "stddev")
    elif n > 1:
        mean, std = float(np.mean(values)), float(np.std(values, ddof=1))
    else:
        mean, std = math.nan, math.nan
    if test.mean:
        found["mean"] = (mean, z * std / math.sqrt(n)) if n > 1 else nan
    if test.stddev:
        if n > 1:
            alpha = 1 - test.confidence
            upper = std * math.sqrt((n - 1) / float(sps.chi2.ppf(alpha / 2, n - 1)))
            lower = std * math.sqrt((n - 1) / float(sps.chi2.ppf(1 - alpha / 2, n - 1)))
            found["stddev"] = (std, max(upper - std, std - lower))
        else:
            found["stddev"] = nan
    for p in test.percentiles:
        if n < 2:
            found[_label(p)] = nan
            continue
        spread = z * math.sqrt(p * (1 - p) / n)
        probs = [max(p - spread, 0.0), p, min(p + spread, 1.0)]
        if values is None:
            lo, x, hi = (partial.statistic(name, "percentile", q) for q in probs)
        else:
            lo, x, hi = (float(v) for v in np.quantile(values, probs))
        found[_label(p)] = (x, max(x - lo, hi - x))
    return found


def check(partial: Partial, tests: dict[str, Convergence]) -> Outcome:
    """Test every monitored output over all of ``partial``'s trials."""
    precision: dict[str, dict[str, float | None]] = {}
    passed: dict[str, bool] = {}
    for name, test in tests.items():
        results = {
            stat: _passes(h, estimate, test)
            for stat, (estimate, h) in _intervals(partial, name, test).items()
        }
        precision[name] = {stat: p for stat, (_, p) in results.items()}
        passed[name] = all(ok for ok, _ in results.values())
    return Outcome(partial.trials, all(passed.values()), precision, passed)


def simulate(
    model: Model,
    evaluator: Evaluator,
    settings: Settings,
    *,
    chunk_size: int | None = None,
    progress: Progress | None = None,
    stop: threading.Event | None = None,
    options: StatsOptions | None = None,
) -> tuple[Partial, Outcome]:
    """Run blocks of ``check_every`` trials from trial 0, checking after each, until every
    monitored output passes or ``max_trials`` ran; the Partial of exactly the trials run.

    ``progress(trials, partial, outcome)`` follows each check; ``stop`` is checked between
    chunks (:class:`~.run.Cancelled`). Each block is summarised on its own and merged in
    trial order, as the simulation service's segments of ``check_every`` trials are.
    """
    from .run import Cancelled, Run, default_chunk_size

    tests = settings.tests(model)
    planned = memory.plan(evaluator, model, options or StatsOptions())
    chunk = planned.chunk_within(min(chunk_size or default_chunk_size(model), settings.check_every))
    total: Partial | None = None
    for start in range(0, settings.max_trials, settings.check_every):
        block = Run(
            evaluator,
            first_trial=start,
            end_trial=start + settings.check_every,
            chunk_size=chunk,
            options=planned.options,
        )
        while not block.finished:
            if stop is not None and stop.is_set():
                raise Cancelled(f"stopped after {block.done} of at most {settings.max_trials}")
            block.step()
        assert block.partial is not None
        total = block.partial if total is None else total.merge(block.partial)
        outcome = check(total, tests)
        if progress is not None:
            progress(total.trials, total, outcome)
        if outcome.converged:
            break
    assert total is not None
    return total, outcome


# --------------------------------------------------------------------- RiskConvergence


def lower(lw: Lowerer, call: Call, sheet: str) -> Convergence:
    """``RiskConvergence(tolerance, toleranceType, confidenceLevel, useMean, useStdDev,
    usePercentile, percentile)`` inside ``RiskOutput``: @RISK's arguments, each optional
    (3 %, type 2 = relative (1 = absolute), 95 %, the mean only); constants only."""
    from . import catalog

    name = "RiskConvergence"
    catalog.check_arity(name, len(call.args), 0, 7, lw.where)
    raw = [lw.lower(a, sheet) for a in call.args] + [EMPTY] * (7 - len(call.args))
    values: list[float | None] = []
    for v in raw:
        if v is EMPTY:
            values.append(None)
        elif isinstance(v, Const) and math.isfinite(v.value):
            values.append(v.value)
        else:
            raise FormulaError("its arguments must be constant numbers or logicals", lw.where, name)
    tolerance, kind, confidence, use_mean, use_std, use_pct, pct = values
    if kind not in (None, 1.0, 2.0):
        raise FormulaError(f"toleranceType must be 1 or 2, got {kind:g}", lw.where, name)
    if use_pct and pct is None:
        raise FormulaError("usePercentile needs the percentile", lw.where, name)
    monitored = (use_mean, use_std, use_pct)
    try:
        return criterion(
            tolerance=0.03 if tolerance is None else tolerance,
            relative=kind != 1.0,
            confidence=0.95 if confidence is None else confidence,
            mean=bool(use_mean) or all(u is None for u in monitored),
            stddev=bool(use_std),
            percentiles=(pct,) if use_pct and pct is not None else (),
        )
    except ValueError as exc:
        raise FormulaError(str(exc), lw.where, name) from None
