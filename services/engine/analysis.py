"""Scenario analysis and contribution to variance of an output over a run's trials.

Both read the per-trial values the statistics keep for sensitivity (:mod:`.stats`): every
trial while the run is within ``StatsOptions.exact_limit``, else the reservoir (a uniform
sample of ``reservoir_size`` trials, the same however the run was chunked), of the inputs
kept for sensitivity (at most 256, :mod:`.memory`). The memory is therefore the
statistics' own; nothing more is kept per trial.

**Scenario analysis** (@RISK's definition): the *target trials* are those where the output
reaches the scenario (its top or bottom ``x`` % of trials, or values above or below ``X``).
For each input, ``significance = (median of the input over the target trials - median over
all trials) / standard deviation over all trials`` (ddof=1, finite values only); an input is
significant where ``|significance| >= 0.5`` (:data:`SIGNIFICANCE`).

**Contribution to variance**: the least-squares regression of the output on the inputs (the
trials where the output and every input are finite); input ``i``'s share is
``R² · b_i² / sum_j b_j²`` with ``b`` the standardized coefficients, so the shares sum to the
regression's R² (the part of the output's variance a linear model of the inputs explains).
For independent inputs of a linear output this is each input's exact share of the variance
(``a² var(X) / var(Y)``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

__all__ = [
    "DEFAULT_SCENARIOS",
    "KINDS",
    "MAX_SCENARIOS",
    "SIGNIFICANCE",
    "AnalysisCache",
    "Contribution",
    "Scenario",
    "ScenarioInput",
    "ScenarioResult",
    "contribution_to_variance",
    "scenario_analysis",
]

SIGNIFICANCE = 0.5  # @RISK's threshold of |significance|
MAX_SCENARIOS = 16
#: top/bottom: the output's top or bottom ``threshold`` % of trials; above/below: values.
KINDS = ("top", "bottom", "above", "below")
_BLOCK = 1 << 15  # trials per block of the regression's cross products


@dataclass(frozen=True)
class Scenario:
    """A target of an output: ``kind`` in :data:`KINDS`, ``threshold`` a percent (0, 100)
    for top/bottom, a value for above/below; ``output`` names the output ("" for every one).
    """

    kind: str
    threshold: float
    output: str = ""

    def check(self) -> str | None:
        """What is wrong with the scenario (None when it is valid)."""
        if self.kind not in KINDS:
            return f"kind must be one of {', '.join(KINDS)}, got {self.kind!r}"
        if not math.isfinite(self.threshold):
            return "threshold must be a finite number"
        if self.kind in ("top", "bottom") and not 0 < self.threshold < 100:
            return f"a {self.kind} percent must be in (0, 100), got {self.threshold:g}"
        return None

    def label(self) -> str:
        """As @RISK writes it: ``>90%``, ``<10%``, ``>1000``, ``<0``."""
        if self.kind == "top":
            return f">{100 - self.threshold:g}%"
        if self.kind == "bottom":
            return f"<{self.threshold:g}%"
        return f"{'>' if self.kind == 'above' else '<'}{self.threshold:g}"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @staticmethod
    def parse(text: str) -> Scenario:
        """A scenario as the command line writes it: ``[OUTPUT:]>90%`` (the top 10 %),
        ``<10%`` (the bottom 10 %), ``>1000`` or ``<0`` (values); ValueError if malformed."""
        output, _, target = text.rpartition(":")
        target = target.strip()
        if target[:1] not in (">", "<"):
            raise ValueError(f"{text!r}: a scenario is >P%, <P%, >VALUE or <VALUE")
        above, number = target[0] == ">", target[1:].strip()
        try:
            value = float(number.removesuffix("%"))
        except ValueError:
            raise ValueError(f"{text!r}: {number!r} is not a number") from None
        if number.endswith("%"):
            if not 0 < value < 100:
                raise ValueError(f"{text!r}: the percent must be in (0, 100)")
            scenario = Scenario("top" if above else "bottom", 100 - value if above else value)
        else:
            scenario = Scenario("above" if above else "below", value)
        scenario = Scenario(scenario.kind, scenario.threshold, output.strip())
        wrong = scenario.check()
        if wrong is not None:
            raise ValueError(f"{text!r}: {wrong}")
        return scenario

    @staticmethod
    def from_json(data: Mapping[str, Any]) -> Scenario:
        return Scenario(str(data["kind"]), float(data["threshold"]), str(data.get("output", "")))


#: The output's top and bottom 10 % of trials, for every output.
DEFAULT_SCENARIOS = (Scenario("top", 10.0), Scenario("bottom", 10.0))


@dataclass(frozen=True)
class ScenarioInput:
    """One input in one scenario (NaN where the input is constant or has no target trial)."""

    name: str
    subset_median: float
    overall_median: float
    std: float
    significance: float

    @property
    def significant(self) -> bool:
        return abs(self.significance) >= SIGNIFICANCE


@dataclass(frozen=True)
class ScenarioResult:
    """The inputs of one scenario of one output, by decreasing ``|significance|``."""

    scenario: Scenario
    trials: int  # target trials
    inputs: list[ScenarioInput]

    def to_dict(self) -> dict[str, Any]:
        """JSON-able (NaN becomes None), with each input's ``significant`` flag."""
        return {
            "scenario": self.scenario.to_json(),
            "label": self.scenario.label(),
            "trials": self.trials,
            "inputs": [
                {k: _finite(v) for k, v in asdict(i).items()} | {"significant": i.significant}
                for i in self.inputs
            ],
        }


@dataclass(frozen=True)
class Contribution:
    """Input ``name``'s share of the output's variance and its standardized coefficient."""

    name: str
    share: float
    coefficient: float


def _finite(value: Any) -> Any:
    return None if isinstance(value, float) and not math.isfinite(value) else value


class AnalysisCache:
    """What every output's analysis shares: each input's median and standard deviation over
    all trials, and the inputs' cross products over a set of trials."""

    def __init__(self, inputs: Mapping[str, np.ndarray]) -> None:
        self.inputs = inputs
        self._overall: dict[str, tuple[float, float]] = {}
        self._gram: dict[bytes, np.ndarray] = {}
        arrays = [np.isfinite(x) for x in inputs.values()]
        self.finite = np.logical_and.reduce(arrays) if arrays else np.ones(0, dtype=bool)

    def overall(self, name: str) -> tuple[float, float]:
        """(median, standard deviation ddof=1) of input ``name`` over its finite values."""
        if name not in self._overall:
            x = self.inputs[name]
            x = x[np.isfinite(x)]
            with np.errstate(all="ignore"):  # values near ±1.8e308 overflow, never raise
                median = float(np.median(x)) if x.size else math.nan
                std = float(x.std(ddof=1)) if x.size > 1 else math.nan
            self._overall[name] = (median, std)
        return self._overall[name]

    def gram(self, ok: np.ndarray) -> np.ndarray:
        """The centred cross products of the inputs over the trials ``ok``."""
        key = b"" if ok.all() else np.packbits(ok).tobytes()
        if key not in self._gram:
            rows = np.flatnonzero(ok)
            xs = list(self.inputs.values())
            means = np.array([x[rows].mean() for x in xs])
            gram = np.zeros((len(xs), len(xs)))
            block = np.empty((min(_BLOCK, rows.size), len(xs)))
            for start in range(0, rows.size, _BLOCK):
                idx = rows[start : start + _BLOCK]
                part = block[: idx.size]
                for j, x in enumerate(xs):
                    np.subtract(x[idx], means[j], out=part[:, j])
                gram += part.T @ part
            self._gram[key] = gram
        return self._gram[key]


def scenario_analysis(
    y: np.ndarray, scenarios: Sequence[Scenario], cache: AnalysisCache
) -> list[ScenarioResult]:
    """Each scenario of output values ``y`` (trials aligned with the cache's inputs)."""
    ok = np.isfinite(y)
    good = y[ok]
    results = []
    for scenario in scenarios:
        if scenario.kind == "top":
            cut = np.quantile(good, 1 - scenario.threshold / 100) if good.size else math.nan
            target = ok & (y >= cut)
        elif scenario.kind == "bottom":
            cut = np.quantile(good, scenario.threshold / 100) if good.size else math.nan
            target = ok & (y <= cut)
        elif scenario.kind == "above":
            target = ok & (y > scenario.threshold)
        else:
            target = ok & (y < scenario.threshold)
        inputs = [_input(name, x[target], cache) for name, x in cache.inputs.items()]
        inputs.sort(key=lambda i: -abs(i.significance) if i.significance == i.significance else 1)
        results.append(ScenarioResult(scenario, int(target.sum()), inputs))
    return results


def _input(name: str, subset: np.ndarray, cache: AnalysisCache) -> ScenarioInput:
    subset = subset[np.isfinite(subset)]
    median, std = cache.overall(name)
    with np.errstate(all="ignore"):  # values near ±1.8e308 overflow, never raise
        sub = float(np.median(subset)) if subset.size else math.nan
        significance = (sub - median) / std if std > 0 else math.nan
    return ScenarioInput(name, sub, median, std, significance)


def contribution_to_variance(
    y: np.ndarray, cache: AnalysisCache
) -> tuple[list[Contribution], float]:
    """(each input's contribution by decreasing share, the regression's R²) for output
    values ``y``; NaN where there are fewer trials than inputs + 2 or the output is constant."""
    names = list(cache.inputs)
    if not names:
        return [], math.nan
    ok = cache.finite & np.isfinite(y)
    m = int(ok.sum())
    nothing = [Contribution(n, math.nan, math.nan) for n in names]
    if m < len(names) + 2:
        return nothing, math.nan
    with np.errstate(all="ignore"):  # values near ±1.8e308 overflow: no contribution then
        yc = y[ok] - y[ok].mean()
        syy = float(yc @ yc)
        gram = cache.gram(ok)
        sxy = np.array([x[ok] @ yc for x in cache.inputs.values()])
        if not (0 < syy < math.inf and np.isfinite(gram).all() and np.isfinite(sxy).all()):
            return nothing, math.nan
        beta = np.linalg.lstsq(gram, sxy, rcond=None)[0]
        r_squared = min(max(float(sxy @ beta) / syy, 0.0), 1.0)
        standard = beta * np.sqrt(np.clip(np.diag(gram), 0.0, None) / syy)
        total = float(standard @ standard)
        if not math.isfinite(total):
            return nothing, math.nan
        shares = r_squared * standard**2 / total if total > 0 else np.zeros(len(names))
    found = [
        Contribution(n, float(s), float(b)) for n, s, b in zip(names, shares, standard, strict=True)
    ]
    found.sort(key=lambda c: -c.share)
    return found, r_squared
