"""Mergeable statistics of simulation chunks: moments, percentiles, sensitivity, convergence.

A :class:`Partial` summarises the trials ``[first_trial, end_trial)`` of every output (and
the inputs, for sensitivity). Partials of adjacent trial ranges merge, in trial order, into
the Partial of the union, so a job can be chunked, checkpointed (``to_bytes``) and spread
over workers. Two regimes, chosen by the number of trials ``n`` of the Partial:

* ``n <= exact_limit``: every trial's value is kept. Results are computed from the samples
  concatenated in trial order, so they are **bit-identical whatever the chunking**.
* ``n > exact_limit``: samples are dropped for a relative-error quantile sketch (DDSketch
  style, ``sketch_alpha``) and a fixed-size reservoir of trials for sensitivity. Moments are
  merged with the pairwise update of Chan et al. / Pébay in float64 (identical bits for the
  same chunking, equal within ~1e-12 relative for any other); sketch counts and reservoir
  are exactly chunk-invariant.

Non-finite values (NaN for Excel errors, ±inf) are counted as ``errors`` and excluded from
every statistic. Conventions (matching NumPy/SciPy defaults): ``std`` has ``ddof=1``;
``skewness`` is the biased Fisher–Pearson g1 and ``kurtosis`` the biased *excess* kurtosis
g2 (``scipy.stats.skew/kurtosis`` defaults); exact percentiles interpolate linearly
(``numpy.percentile`` default).
"""

from __future__ import annotations

import io
import json
import math
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from .analysis import (
    DEFAULT_SCENARIOS,
    AnalysisCache,
    Contribution,
    Scenario,
    ScenarioResult,
    contribution_to_variance,
    scenario_analysis,
)

__all__ = [
    "PERCENTILES",
    "Buckets",
    "ChunkSummary",
    "Partial",
    "Results",
    "StatsOptions",
    "bucket_bits",
    "convergence_grid",
    "trial_hash",
]

PERCENTILES = (1, 5, 10, 25, 50, 75, 90, 95, 99)
_TAIL = 0.05  # VaR/CVaR level: the worst 5% of the output's lower tail
_FORMAT = 2  # version of the to_bytes layout (1: log buckets, still read)


@dataclass(frozen=True)
class StatsOptions:
    """How much a Partial keeps; every Partial merged together must share the same options.

    ``exact_limit``: trials up to which samples are kept (exact percentiles and Spearman).
    ``sketch_alpha``: relative accuracy of quantiles beyond the limit (see ``_Sketch``).
    ``reservoir_size``: trials kept for Spearman sensitivity beyond the limit (the standard
    error of rho is then about ``1/sqrt(reservoir_size)``).
    """

    exact_limit: int = 1_000_000
    histogram_bins: int = 50
    cdf_points: int = 101
    sketch_alpha: float = 0.001
    reservoir_size: int = 20_000


@dataclass
class Results:
    """The statistics of one output. ``var_95``/``cvar_95`` are in the output's own units.

    ``var_95`` is the 5th percentile of the output (the value it falls below in 5% of
    trials; for a P&L output, a loss ``L`` at 95% reads ``var_95 == -L``) and ``cvar_95``
    is the mean of the worst ``ceil(0.05 * count)`` trials. ``cdf`` holds ``(value,
    probability)`` points of the empirical CDF; ``sensitivity`` holds ``(input name,
    Spearman rho)`` sorted by ``|rho|`` descending; ``convergence`` holds ``(trials, mean,
    stderr)`` at 10 trial counts per decade and at the end. ``exact`` tells whether
    percentiles, histogram and sensitivity came from all samples (else sketch/reservoir).
    ``scenarios`` and ``contribution`` (with the regression's ``r_squared``) are the
    scenario analysis and contribution to variance of :mod:`.analysis`, over the same
    trials as ``sensitivity``.
    """

    name: str
    count: int
    errors: int
    mean: float
    std: float
    min: float
    max: float
    skewness: float
    kurtosis: float
    percentiles: dict[int, float]
    var_95: float
    cvar_95: float
    histogram: tuple[list[float], list[int]]
    cdf: list[tuple[float, float]]
    sensitivity: list[tuple[str, float]]
    convergence: list[tuple[int, float, float]]
    exact: bool = True
    scenarios: list[ScenarioResult] = field(default_factory=list)
    contribution: list[Contribution] = field(default_factory=list)
    r_squared: float = math.nan

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able data (NaN becomes ``None``; percentile keys become strings)."""
        data = asdict(self)
        data["percentiles"] = {str(k): v for k, v in self.percentiles.items()}
        data["scenarios"] = [s.to_dict() for s in self.scenarios]
        data["histogram"] = {"edges": self.histogram[0], "counts": self.histogram[1]}
        plain: dict[str, Any] = _nan_to_none(data)
        return plain


def _nan_to_none(value: Any) -> Any:
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else value
    if isinstance(value, dict):
        return {k: _nan_to_none(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_nan_to_none(v) for v in value]
    return value


# ---------------------------------------------------------------- moments (Pébay 2008)

_M = 5  # a moments vector: (n, mean, M2, M3, M4), M_k = sum (x - mean)^k


def _moments(x: np.ndarray) -> np.ndarray:
    if x.size == 0:
        return np.zeros(_M)
    with np.errstate(all="ignore"):  # values near ±1.8e308 overflow to inf, never raise
        mean = x.mean()
        d = x - mean
        d2 = d * d
        return np.array([x.size, mean, d2.sum(), (d2 * d).sum(), (d2 * d2).sum()])


def _combine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise update of (n, mean, M2, M3, M4); vectorised over leading axes."""
    na, ma, m2a, m3a, m4a = np.moveaxis(a, -1, 0)
    nb, mb, m2b, m3b, m4b = np.moveaxis(b, -1, 0)
    n = na + nb
    with np.errstate(all="ignore"):  # values near ±1.8e308 overflow to inf, never raise
        d = mb - ma
        dn = np.where(n > 0, d / n, 0.0)
        mean = np.where(nb == 0, ma, np.where(na == 0, mb, ma + dn * nb))
        m2 = m2a + m2b + d * dn * na * nb
        m3 = m3a + m3b + dn * dn * d * na * nb * (na - nb) + 3 * dn * (na * m2b - nb * m2a)
        m4 = (
            m4a
            + m4b
            + dn**3 * d * na * nb * (na * na - na * nb + nb * nb)
            + 6 * dn * dn * (na * na * m2b + nb * nb * m2a)
            + 4 * dn * (na * m3b - nb * m3a)
        )
    return np.stack([n, mean, m2, m3, m4], axis=-1)


def _describe(m: np.ndarray) -> tuple[float, float, float, float]:
    """(mean, std ddof=1, skewness g1, excess kurtosis g2) of a moments vector."""
    n, mean, m2, m3, m4 = (float(v) for v in m)
    if n == 0:
        return math.nan, math.nan, math.nan, math.nan
    std = math.sqrt(m2 / (n - 1)) if n > 1 else math.nan
    if m2 > 0:
        return mean, std, math.sqrt(n) * m3 / m2**1.5, n * m4 / (m2 * m2) - 3.0
    return mean, std, math.nan, math.nan


def convergence_grid(lo: int, hi: int) -> np.ndarray:
    """Convergence trial counts t with lo < t <= hi: 1, 1.5, 2, 2.5, 3, 4 ... 8 x 10^k, k>=1."""
    if hi <= max(lo, 9):
        return np.zeros(0, dtype=np.int64)
    steps = (10, 15, 20, 25, 30, 40, 50, 60, 70, 80)
    out: list[int] = []
    scale = 1
    while scale * 10 <= hi:
        out.extend(s * scale for s in steps if lo < s * scale <= hi)
        scale *= 10
    return np.array(out, dtype=np.int64)


# ------------------------------------------------------------------- quantile sketch


def bucket_bits(alpha: float) -> int:
    """Mantissa bits that pick a sketch bucket within its power of two, for accuracy alpha.

    A bucket holds the doubles whose bits agree above bit ``52 - b``: relative width at most
    ``2**-b``, so its midpoint is within ``2**-(b + 1) <= alpha`` of every value in it.
    """
    return max(0, min(52, math.ceil(math.log2(1.0 / alpha) - 1.0)))


def _counts(idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(distinct bucket indices ascending, their counts) of an int64 index array."""
    if idx.size == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    lo = int(idx.min())
    counts = np.bincount(idx - lo)
    hit = np.flatnonzero(counts)
    return hit + lo, counts[hit].astype(np.int64)


Buckets = tuple[np.ndarray, np.ndarray]
"""A sketch's buckets of one sign: (bucket index int64, count int64), ascending by index."""


@dataclass(frozen=True)
class _Sketch:
    """A log-linear histogram of finite values (HDR style); exactly mergeable.

    A value ``x > 0`` goes to bucket ``bits(x) >> (52 - b)`` with ``b = bucket_bits(alpha)``:
    its exponent and top ``b`` mantissa bits, an exact integer that NumPy and the native
    back end compute alike. The bucket is represented by its midpoint; negative values mirror
    this; zeros are counted apart. **Bound**: the q-quantile returned is within relative error
    ``alpha`` of the exact order statistic ``x_(floor(q (n-1)))`` (0-based), i.e.
    ``|returned - exact| <= alpha * |exact|``, for normal (not subnormal) doubles. Buckets
    are sparse, one per occupied bucket.
    """

    alpha: float
    pos: tuple[np.ndarray, np.ndarray]  # (bucket index int64, count int64), sorted by index
    neg: tuple[np.ndarray, np.ndarray]
    zeros: int

    @staticmethod
    def of(x: np.ndarray, alpha: float) -> _Sketch:
        """The sketch of finite values ``x``."""
        shift = np.uint64(52 - bucket_bits(alpha))

        def store(v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            return _counts((np.ascontiguousarray(v).view(np.uint64) >> shift).astype(np.int64))

        return _Sketch(alpha, store(x[x > 0]), store(-x[x < 0]), int(np.count_nonzero(x == 0)))

    def merge(self, other: _Sketch) -> _Sketch:
        def store(a: Buckets, b: Buckets) -> Buckets:
            idx, inv = np.unique(np.concatenate([a[0], b[0]]), return_inverse=True)
            cnt = np.zeros(idx.size, dtype=np.int64)
            np.add.at(cnt, inv, np.concatenate([a[1], b[1]]))
            return idx, cnt

        return _Sketch(
            self.alpha,
            store(self.pos, other.pos),
            store(self.neg, other.neg),
            self.zeros + other.zeros,
        )

    def sorted_values(self) -> tuple[np.ndarray, np.ndarray]:
        """(representative values ascending, counts) of all buckets."""
        shift = np.uint64(52 - bucket_bits(self.alpha))

        def rep(idx: np.ndarray) -> np.ndarray:
            lo = (idx.astype(np.uint64) << shift).view(np.float64)
            hi = ((idx + 1).astype(np.uint64) << shift).view(np.float64)
            hi = np.minimum(hi, np.finfo(np.float64).max)  # the top bucket ends at infinity
            return lo + (hi - lo) / 2

        values = np.concatenate([-rep(self.neg[0])[::-1], [0.0], rep(self.pos[0])])
        counts = np.concatenate([self.neg[1][::-1], [self.zeros], self.pos[1]])
        return values, counts

    def quantiles(self, q: np.ndarray) -> np.ndarray:
        values, counts = self.sorted_values()
        n = int(counts.sum())
        ranks = np.floor(np.asarray(q) * (n - 1))
        chosen: np.ndarray = values[np.searchsorted(np.cumsum(counts), ranks, side="right")]
        return chosen

    def tail_mean(self, k: int) -> float:
        """Mean of the ``k`` smallest values (bucket representatives)."""
        values, counts = self.sorted_values()
        taken = np.minimum(counts, np.maximum(k - (np.cumsum(counts) - counts), 0))
        return float((values * taken).sum() / k)

    @staticmethod
    def from_format_1(
        alpha: float,
        pos: tuple[np.ndarray, np.ndarray],
        neg: tuple[np.ndarray, np.ndarray],
        zeros: int,
    ) -> _Sketch:
        """A checkpoint's log-bucket sketch (format 1): each bucket's representative
        ``2 gamma**i / (gamma + 1)`` is counted in this format's bucket of that value."""
        gamma = (1 + alpha) / (1 - alpha)
        shift = np.uint64(52 - bucket_bits(alpha))

        def store(old: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
            value = 2.0 * np.power(gamma, old[0].astype(np.float64)) / (gamma + 1.0)
            idx = (value.view(np.uint64) >> shift).astype(np.int64)
            new, inv = np.unique(idx, return_inverse=True)
            cnt = np.zeros(new.size, dtype=np.int64)
            np.add.at(cnt, inv, old[1])
            return new, cnt

        return _Sketch(alpha, store(pos), store(neg), zeros)


# -------------------------------------------------------------------------- partial


def trial_hash(trials: np.ndarray) -> np.ndarray:
    """splitmix64 of the trial index: a bijection, so a bottom-k reservoir has no ties."""
    z = trials.astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


@dataclass(frozen=True)
class _Reservoir:
    """The ``size`` trials of smallest ``trial_hash``: the same set however trials are split."""

    hashes: np.ndarray  # uint64, ascending
    values: dict[str, np.ndarray]  # outputs and inputs (prefixed "o:"/"i:"), aligned

    @staticmethod
    def of(first: int, values: Mapping[str, np.ndarray], size: int) -> _Reservoir:
        n = len(next(iter(values.values()))) if values else 0
        return _Reservoir(trial_hash(np.arange(first, first + n)), dict(values)).cut(size)

    def cut(self, size: int) -> _Reservoir:
        keep = np.arange(self.hashes.size)
        if self.hashes.size > size:  # hashes are distinct, so the partition is unique
            keep = np.argpartition(self.hashes, size - 1)[:size]
        keep = keep[np.argsort(self.hashes[keep])]
        return _Reservoir(self.hashes[keep], {k: v[keep] for k, v in self.values.items()})

    def merge(self, other: _Reservoir, size: int) -> _Reservoir:
        values = {k: np.concatenate([v, other.values[k]]) for k, v in self.values.items()}
        return _Reservoir(np.concatenate([self.hashes, other.hashes]), values).cut(size)


@dataclass(frozen=True)
class _Output:
    """What a Partial keeps for one output besides samples."""

    moments: np.ndarray  # (n, mean, M2, M3, M4) over finite values
    errors: int
    lo: float
    hi: float
    conv_t: np.ndarray  # absolute trial ends on the convergence grid
    conv_m: np.ndarray  # moments of trials [first, t) for each t
    sketch: _Sketch | None = None


def _segment_moments(x: np.ndarray, ok: np.ndarray | None, bounds: np.ndarray) -> np.ndarray:
    """(n, mean, M2, M3, M4) of the finite values of each segment ``x[bounds[i]:bounds[i+1]]``
    (bounds strictly increasing), all segments at once; ``ok`` marks the finite values, None
    when all are."""
    starts, end = bounds[:-1], int(bounds[-1])
    xs = x[:end]
    with np.errstate(all="ignore"):  # values near ±1.8e308 overflow to inf, never raise
        if ok is None:
            n = np.diff(bounds).astype(np.float64)
            mean = np.add.reduceat(xs, starts) / n
            d = xs - np.repeat(mean, np.diff(bounds))
        else:
            oks = ok[:end]
            n = np.add.reduceat(oks.astype(np.float64), starts)
            total = np.add.reduceat(np.where(oks, xs, 0.0), starts)
            mean = np.where(n > 0, total / np.maximum(n, 1.0), 0.0)
            d = np.where(oks, xs - np.repeat(mean, np.diff(bounds)), 0.0)
        d2 = d * d
        m2 = np.add.reduceat(d2, starts)
        d *= d2
        m3 = np.add.reduceat(d, starts)
        d2 *= d2
        m4 = np.add.reduceat(d2, starts)
    return np.stack([n, mean, m2, m3, m4], axis=-1)


def _finite(x: np.ndarray) -> np.ndarray | None:
    """Where ``x`` is finite, or None when it is everywhere (the common case, cheaper)."""
    ok = np.isfinite(x)
    return None if ok.all() else ok


def _summaries(
    first: int, columns: Mapping[str, np.ndarray], keep_sketch: bool, alpha: float
) -> dict[str, _Output]:
    """Each output's moments, extremes, convergence and (optionally) sketch over one chunk.

    The chunk is cut at the convergence grid; each piece's moments come from a few array
    passes, and the pieces are combined in trial order for every output at once (the
    moments at each grid point, then the chunk's)."""
    if not columns:
        return {}
    count = next(iter(columns.values())).size
    ts = convergence_grid(first, first + count)
    bounds = np.unique(np.concatenate([[0], ts - first, [count]])).astype(np.int64)
    finite = {k: _finite(x) for k, x in columns.items()}
    pieces = np.stack(
        [
            _segment_moments(x, finite[k], bounds) if count else np.zeros((0, _M))
            for k, x in columns.items()
        ]
    )  # (outputs, pieces, 5)
    acc = np.zeros((len(columns), _M))
    prefix = []
    for i in range(pieces.shape[1]):
        acc = _combine(acc, pieces[:, i])
        prefix.append(acc)
    at_grid = np.isin(bounds[1:], ts - first)
    out = {}
    for j, (k, x) in enumerate(columns.items()):
        ok = finite[k]
        good = x if ok is None else x[ok]
        conv = np.array([p[j] for p, g in zip(prefix, at_grid, strict=True) if g])
        out[k] = _Output(
            moments=prefix[-1][j] if prefix else np.zeros(_M),
            errors=0 if ok is None else int(count - np.count_nonzero(ok)),
            lo=float(good.min()) if good.size else math.inf,
            hi=float(good.max()) if good.size else -math.inf,
            conv_t=ts,
            conv_m=conv.reshape(-1, _M),
            sketch=_Sketch.of(good, alpha) if keep_sketch else None,
        )
    return out


@dataclass(frozen=True)
class ChunkSummary:
    """Statistics of one chunk, computed by a back end in its evaluation loop.

    For trials ``[first_trial, first_trial + count)`` and outputs ``j`` in order:
    ``moments[j]`` = (n, mean, M2, M3, M4) of the finite values, ``extremes[j]`` = (min, max)
    of them (``inf, -inf`` if none), ``conv_m[k, j]`` the moments of trials
    ``[first_trial, conv_t[k])``, ``sketches[j]`` the buckets of its sketch (positive values',
    negative values', number of zeros; see :class:`_Sketch`); ``trials`` holds at least the
    trials of the chunk's reservoir (the smallest trial hashes) and ``values`` their values
    ("o:"/"i:" names).
    """

    first_trial: int
    count: int
    outputs: tuple[str, ...]
    inputs: tuple[str, ...]
    moments: np.ndarray  # (outputs, 5)
    extremes: np.ndarray  # (outputs, 2)
    conv_t: np.ndarray  # (points,) int64, absolute trial ends
    conv_m: np.ndarray  # (points, outputs, 5)
    sketches: tuple[tuple[Buckets, Buckets, int], ...]  # (outputs,)
    trials: np.ndarray  # (candidates,) int64
    values: Mapping[str, np.ndarray]  # name -> (candidates,)


@dataclass(frozen=True)
class Partial:
    """Statistics of trials ``[first_trial, end_trial)``; immutable, merge in trial order."""

    options: StatsOptions
    first_trial: int
    end_trial: int
    outputs: dict[str, _Output]
    input_names: tuple[str, ...]
    samples: dict[str, list[np.ndarray]] | None  # "o:"/"i:" name -> chunks, exact regime
    reservoir: _Reservoir | None = field(default=None)  # sketch regime

    @staticmethod
    def from_chunk(
        first_trial: int,
        outputs: Mapping[str, np.ndarray],
        inputs: Mapping[str, np.ndarray],
        options: StatsOptions | None = None,
    ) -> Partial:
        """Summarise one chunk: per-trial float64 values of each output and input by name."""
        options = options or StatsOptions()
        arrays = {f"o:{k}": np.asarray(v, dtype=np.float64) for k, v in outputs.items()}
        arrays |= {f"i:{k}": np.asarray(v, dtype=np.float64) for k, v in inputs.items()}
        sizes = {a.shape for a in arrays.values()}
        if len(sizes) > 1 or any(len(s) != 1 for s in sizes):
            raise ValueError(f"chunk arrays must be 1-D of one length, got {sorted(sizes)}")
        count = next(iter(sizes))[0] if sizes else 0
        exact = count <= options.exact_limit
        summaries = _summaries(
            first_trial, {k: arrays[f"o:{k}"] for k in outputs}, not exact, options.sketch_alpha
        )
        return Partial(
            options,
            first_trial,
            first_trial + count,
            summaries,
            tuple(inputs),
            samples={k: [v] for k, v in arrays.items()} if exact else None,
            reservoir=None if exact else _Reservoir.of(first_trial, arrays, options.reservoir_size),
        )

    @staticmethod
    def from_summary(summary: ChunkSummary, options: StatsOptions) -> Partial:
        """A chunk in the sketch regime from what a back end computed while evaluating it
        (the native back end's loop); merges like :meth:`from_chunk`'s, whatever its size."""
        s = summary
        outputs = {
            name: _Output(
                moments=s.moments[j],
                errors=s.count - int(s.moments[j, 0]),
                lo=float(s.extremes[j, 0]),
                hi=float(s.extremes[j, 1]),
                conv_t=s.conv_t,
                conv_m=np.ascontiguousarray(s.conv_m[:, j]).reshape(-1, _M),
                sketch=_Sketch(options.sketch_alpha, *s.sketches[j]),
            )
            for j, name in enumerate(s.outputs)
        }
        reservoir = _Reservoir(trial_hash(s.trials), dict(s.values)).cut(options.reservoir_size)
        return Partial(
            options, s.first_trial, s.first_trial + s.count, outputs, s.inputs, None, reservoir
        )

    @property
    def trials(self) -> int:
        """Trials summarised, errors included."""
        return self.end_trial - self.first_trial

    def merge(self, other: Partial) -> Partial:
        """The Partial of ``self`` followed by ``other``, which must start at ``end_trial``."""
        if other.first_trial != self.end_trial:
            raise ValueError(
                f"cannot merge trials starting at {other.first_trial} after "
                f"trials ending at {self.end_trial}: merge in trial order"
            )
        if (
            other.options != self.options
            or set(other.outputs) != set(self.outputs)
            or set(other.input_names) != set(self.input_names)
        ):
            raise ValueError("cannot merge partials with different options, outputs or inputs")
        end = other.end_trial
        if end - self.first_trial <= self.options.exact_limit:
            assert self.samples is not None and other.samples is not None
            samples = {k: v + other.samples[k] for k, v in self.samples.items()}
            return replace(
                self,
                end_trial=end,
                samples=samples,
                outputs={k: _merge_out(v, other.outputs[k], None) for k, v in self.outputs.items()},
            )
        left, right = self._sketched(), other._sketched()
        assert left.reservoir is not None and right.reservoir is not None
        outputs = {
            k: _merge_out(v, right.outputs[k], right.outputs[k].sketch)
            for k, v in left.outputs.items()
        }
        return replace(
            left,
            end_trial=end,
            outputs=outputs,
            samples=None,
            reservoir=left.reservoir.merge(right.reservoir, self.options.reservoir_size),
        )

    def _sketched(self) -> Partial:
        """This Partial in the sketch regime (samples turned into sketches and a reservoir)."""
        if self.samples is None:
            return self
        joined = self._joined()
        alpha = self.options.sketch_alpha
        outputs = {}
        for k, v in self.outputs.items():
            x = joined[f"o:{k}"]
            outputs[k] = replace(v, sketch=_Sketch.of(x[np.isfinite(x)], alpha))
        reservoir = _Reservoir.of(self.first_trial, joined, self.options.reservoir_size)
        return replace(self, outputs=outputs, samples=None, reservoir=reservoir)

    def _joined(self) -> dict[str, np.ndarray]:
        assert self.samples is not None
        return {k: np.concatenate(v) if len(v) > 1 else v[0] for k, v in self.samples.items()}

    def finite_values(self, name: str) -> np.ndarray | None:
        """Output ``name``'s finite values in trial order while samples are kept, else None."""
        if self.samples is None:
            return None
        chunks = self.samples[f"o:{name}"]
        x = np.concatenate(chunks) if len(chunks) > 1 else chunks[0]
        return x[np.isfinite(x)]

    def running(self) -> dict[str, tuple[float, float]]:
        """Mean and standard error of the mean of each output so far (for progress)."""
        out = {}
        for k, v in self.outputs.items():
            n, mean, m2 = v.moments[:3]
            se = math.sqrt(m2 / (n - 1) / n) if n > 1 else math.nan
            out[k] = (float(mean) if n else math.nan, se)
        return out

    def statistic(self, name: str, kind: str, argument: float | None = None) -> float:
        """One statistic of output ``name`` over its finite values, as a reporting cell's
        statistics function asks for it (``ir.STATISTICS``): ``kurtosis`` is not excess (3
        for a normal), ``percentile`` interpolates as :meth:`results` does, ``target`` is
        the fraction of values at or below ``argument`` and ``target_above`` the rest. NaN
        (``#NUM!``) where the output has no finite value, or one for ``stddev``."""
        out = self.outputs[name]
        n = int(out.moments[0])
        mean, std, skew, kurt = _describe(out.moments)
        simple = {
            "mean": mean,
            "stddev": std,
            "variance": std * std,
            "min": out.lo if n else math.nan,
            "max": out.hi if n else math.nan,
            "range": out.hi - out.lo if n else math.nan,
            "skewness": skew,
            "kurtosis": kurt + 3.0,
            "count": float(n),
            "errors": float(out.errors),
        }
        if kind in simple:
            return float(simple[kind])
        if not n or argument is None:
            return math.nan
        if self.samples is not None:
            x = self._joined()[f"o:{name}"]
            good = np.sort(x[np.isfinite(x)])
            if kind == "percentile":
                return float(np.quantile(good, argument))
            below = float(np.searchsorted(good, argument, side="right")) / n
        else:
            assert out.sketch is not None
            if kind == "percentile":
                value = float(out.sketch.quantiles(np.array([argument]))[0])
                return min(max(value, out.lo), out.hi)
            values, counts = out.sketch.sorted_values()
            below = float(counts[values <= argument].sum()) / n
        return below if kind == "target" else 1.0 - below

    def results(
        self, scenarios: Mapping[str, Sequence[Scenario]] | None = None
    ) -> dict[str, Results]:
        """Final statistics of every output, by name; ``scenarios`` gives each output's
        scenarios to analyse (by default, and for an output it leaves out, its top and
        bottom 10 %)."""
        joined = self._joined() if self.samples is not None else None
        cache = _RankCache()
        values = joined if joined is not None else self.kept_trials()
        analysis = AnalysisCache({i: values[f"i:{i}"] for i in self.input_names})
        wanted = scenarios or {}
        return {
            k: _results(self, k, joined, cache, analysis, wanted.get(k, DEFAULT_SCENARIOS))
            for k in self.outputs
        }

    def kept_trials(self) -> dict[str, np.ndarray]:
        """The per-trial values the statistics keep, aligned by trial (``"o:"``/``"i:"`` +
        name): every trial in the exact regime, else the reservoir's."""
        if self.samples is not None:
            return self._joined()
        assert self.reservoir is not None
        return self.reservoir.values

    # ------------------------------------------------------------------ serialisation

    def to_bytes(self) -> bytes:
        """A self-contained ``.npz`` (no pickle) that :meth:`from_bytes` restores exactly."""
        arrays: dict[str, np.ndarray] = {}
        meta = {
            "format": _FORMAT,
            "options": asdict(self.options),
            "first": self.first_trial,
            "end": self.end_trial,
            "inputs": list(self.input_names),
            "outputs": list(self.outputs),
            "exact": self.samples is not None,
        }
        for i, v in enumerate(self.outputs.values()):
            arrays[f"o{i}.m"] = v.moments
            arrays[f"o{i}.s"] = np.array([v.errors, v.lo, v.hi], dtype=np.float64)
            arrays[f"o{i}.ct"], arrays[f"o{i}.cm"] = v.conv_t, v.conv_m
            if v.sketch is not None:
                sk = v.sketch
                arrays[f"o{i}.pi"], arrays[f"o{i}.pc"] = sk.pos
                arrays[f"o{i}.ni"], arrays[f"o{i}.nc"] = sk.neg
                arrays[f"o{i}.z"] = np.array([sk.zeros], dtype=np.int64)
        keys = [f"o:{k}" for k in self.outputs] + [f"i:{k}" for k in self.input_names]
        if self.reservoir is not None:
            values = self.reservoir.values
            arrays["rh"] = self.reservoir.hashes
        else:
            values = self._joined()
        for j, key in enumerate(keys):
            arrays[f"v{j}"] = values[key]
        arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
        buf = io.BytesIO()
        np.savez(buf, allow_pickle=False, **arrays)
        return buf.getvalue()

    @staticmethod
    def merged(blobs: Sequence[bytes]) -> Partial:
        """The Partials written by :meth:`to_bytes` (one or more, in trial order), merged."""
        partial = Partial.from_bytes(blobs[0])
        for blob in blobs[1:]:
            partial = partial.merge(Partial.from_bytes(blob))
        return partial

    @staticmethod
    def from_bytes(data: bytes) -> Partial:
        """Restore a Partial written by :meth:`to_bytes`."""
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as z:
                a = {k: z[k] for k in z.files}
            meta = json.loads(a["meta"].tobytes())
        except (OSError, EOFError, ValueError, KeyError, zipfile.BadZipFile) as exc:
            raise ValueError("not a statistics checkpoint written by Partial.to_bytes") from exc
        version = meta.get("format")
        if version not in (1, _FORMAT):
            raise ValueError(f"unsupported statistics format {version!r}")
        sketch_of = _Sketch if version == _FORMAT else _Sketch.from_format_1
        options = StatsOptions(**meta["options"])
        outputs = {}
        for i, k in enumerate(meta["outputs"]):
            errors, lo, hi = a[f"o{i}.s"]
            sketch = None
            if f"o{i}.z" in a:
                sketch = sketch_of(
                    options.sketch_alpha,
                    (a[f"o{i}.pi"], a[f"o{i}.pc"]),
                    (a[f"o{i}.ni"], a[f"o{i}.nc"]),
                    int(a[f"o{i}.z"][0]),
                )
            outputs[k] = _Output(
                a[f"o{i}.m"],
                int(errors),
                float(lo),
                float(hi),
                a[f"o{i}.ct"],
                a[f"o{i}.cm"],
                sketch,
            )
        keys = [f"o:{k}" for k in meta["outputs"]] + [f"i:{k}" for k in meta["inputs"]]
        values = {key: a[f"v{j}"] for j, key in enumerate(keys)}
        exact = meta["exact"]
        return Partial(
            options,
            meta["first"],
            meta["end"],
            outputs,
            tuple(meta["inputs"]),
            samples={k: [v] for k, v in values.items()} if exact else None,
            reservoir=None if exact else _Reservoir(a["rh"], values),
        )


def _merge_out(a: _Output, b: _Output, b_sketch: _Sketch | None) -> _Output:
    conv_m = _combine(np.broadcast_to(a.moments, b.conv_m.shape), b.conv_m)
    sketch = None
    if a.sketch is not None and b_sketch is not None:
        sketch = a.sketch.merge(b_sketch)
    return _Output(
        _combine(a.moments, b.moments),
        a.errors + b.errors,
        min(a.lo, b.lo),
        max(a.hi, b.hi),
        np.concatenate([a.conv_t, b.conv_t]),
        np.concatenate([a.conv_m, conv_m]).reshape(-1, _M),
        sketch,
    )


# -------------------------------------------------------------------------- results


def _results(
    p: Partial,
    name: str,
    joined: dict[str, np.ndarray] | None,
    cache: _RankCache,
    analysis: AnalysisCache,
    scenarios: Sequence[Scenario],
) -> Results:
    out = p.outputs[name]
    opts = p.options
    probs = np.array(PERCENTILES, dtype=np.float64) / 100.0
    cdf_p = np.linspace(0.0, 1.0, opts.cdf_points)
    if joined is not None:
        x = joined[f"o:{name}"]
        good = x[np.isfinite(x)]
        moments = _moments(good)
        srt = np.sort(good)
        n = srt.size
        k = max(1, math.ceil(_TAIL * n))
        if n:
            pct = np.quantile(srt, probs)
            cdf_x = np.quantile(srt, cdf_p)
            cvar = float(srt[:k].mean())
            counts, edges = np.histogram(srt, bins=_bins(srt[0], srt[-1], opts.histogram_bins))
        sens_values = joined
    else:
        assert out.sketch is not None and p.reservoir is not None
        moments = out.moments
        n = int(moments[0])
        k = max(1, math.ceil(_TAIL * n))
        if n:
            pct = out.sketch.quantiles(probs)
            cdf_x = out.sketch.quantiles(cdf_p)
            cdf_x[0], cdf_x[-1] = out.lo, out.hi
            cvar = out.sketch.tail_mean(k)
            reps, weights = out.sketch.sorted_values()
            counts, edges = np.histogram(
                np.clip(reps, out.lo, out.hi),
                weights=weights,
                bins=_bins(out.lo, out.hi, opts.histogram_bins),
                range=(out.lo, out.hi),
            )
        sens_values = p.reservoir.values
    if not n:
        pct = np.full(probs.size, math.nan)
        cdf_x, cvar = np.full(cdf_p.size, math.nan), math.nan
        counts, edges = np.zeros(0, dtype=np.int64), np.zeros(0)
    mean, std, skew, kurt = _describe(moments)
    conv = [
        (int(t - p.first_trial), *_mean_se(m)) for t, m in zip(out.conv_t, out.conv_m, strict=True)
    ]
    y = sens_values[f"o:{name}"]
    contribution, r_squared = contribution_to_variance(y, analysis)
    if not conv or conv[-1][0] != p.trials:
        conv.append((p.trials, *_mean_se(out.moments)))
    return Results(
        name=name,
        count=n,
        errors=out.errors,
        mean=mean,
        std=std,
        min=float(out.lo) if n else math.nan,
        max=float(out.hi) if n else math.nan,
        skewness=skew,
        kurtosis=kurt,
        percentiles={q: float(v) for q, v in zip(PERCENTILES, pct, strict=True)},
        var_95=float(pct[PERCENTILES.index(5)]),
        cvar_95=cvar,
        histogram=([float(e) for e in edges], [int(c) for c in counts]),
        cdf=[(float(v), float(q)) for v, q in zip(cdf_x, cdf_p, strict=True)],
        sensitivity=_sensitivity(
            name, sens_values[f"o:{name}"], {i: sens_values[f"i:{i}"] for i in p.input_names}, cache
        ),
        convergence=conv,
        exact=joined is not None,
        scenarios=scenario_analysis(y, scenarios, analysis),
        contribution=contribution,
        r_squared=r_squared,
    )


def _bins(lo: float, hi: float, bins: int) -> int | np.ndarray:
    """``bins`` equal bins over [lo, hi] (over [lo - 0.5, hi + 0.5] when lo == hi, as NumPy
    does), or their edges where NumPy would refuse to make them: when ``hi - lo`` overflows
    a double (values near ±1.8e308), and when the span holds fewer than ``bins + 1`` doubles
    (an output constant but for rounding, or constant and beyond about 1e14, where doubles
    are further apart than a bin is wide): then the distinct edges make fewer, narrower
    bins, and a single value too large for any other gets one bin of no width."""
    low, high = (lo - 0.5, hi + 0.5) if lo == hi else (lo, hi)
    t = np.linspace(0.0, 1.0, bins + 1)
    if not math.isfinite(float(high) - float(low)):
        return low * (1.0 - t) + high * t
    edges = low + (high - low) * t
    if np.all(np.diff(edges) > 0):
        return bins
    edges = np.unique(np.append(edges, high))
    return edges if edges.size > 1 else np.array([lo, hi])


def _mean_se(m: np.ndarray) -> tuple[float, float]:
    n, mean, m2 = (float(v) for v in m[:3])
    return (mean if n else math.nan, math.sqrt(m2 / (n - 1) / n) if n > 1 else math.nan)


def _ranks(x: np.ndarray) -> np.ndarray:
    """1-based ranks, ties averaged (as ``scipy.stats.rankdata``, several times faster: the
    average rank of a tie group does not depend on the order a quicksort leaves it in)."""
    order = np.argsort(x)
    xs = x[order]
    starts = np.flatnonzero(np.concatenate(([True], xs[1:] != xs[:-1])))
    ends = np.append(starts[1:], x.size)
    ranks = np.empty(x.size)
    ranks[order] = np.repeat((starts + ends + 1) / 2.0, ends - starts)
    return ranks


class _RankCache:
    """Centred ranks of arrays over trial masks, reused across outputs and inputs."""

    def __init__(self) -> None:
        self._cache: dict[tuple[str, bytes], tuple[np.ndarray, float]] = {}

    def get(self, key: str, values: np.ndarray, ok: np.ndarray) -> tuple[np.ndarray, float]:
        """(ranks minus their mean, sum of squares) of ``values[ok]``."""
        mask = b"" if ok.all() else np.packbits(ok).tobytes()
        if (key, mask) not in self._cache:
            r = _ranks(values[ok] if mask else values)
            r -= r.mean()
            self._cache[(key, mask)] = (r, float(r @ r))
        return self._cache[(key, mask)]


def _sensitivity(
    name: str, y: np.ndarray, inputs: Mapping[str, np.ndarray], cache: _RankCache
) -> list[tuple[str, float]]:
    """Spearman rho of each input with output ``name`` (values ``y``) over trials where both
    are finite (NaN if fewer than 3 such trials or either is constant); sorted by |rho|."""
    y_ok = np.isfinite(y)
    rhos = []
    for input_name, x in inputs.items():
        ok = y_ok & np.isfinite(x)
        if ok.sum() < 3:
            rhos.append((input_name, math.nan))
            continue
        rx, sx = cache.get(f"i:{input_name}", x, ok)
        ry, sy = cache.get(f"o:{name}", y, ok)
        denom = math.sqrt(sx * sy)
        rhos.append((input_name, float(rx @ ry) / denom if denom > 0 else math.nan))
    return sorted(rhos, key=lambda r: (math.isnan(r[1]), -abs(r[1]) if r[1] == r[1] else 0))
