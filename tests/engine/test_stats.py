"""Mergeable statistics: against NumPy/SciPy, merge invariance, serialisation, sketch bound."""

from __future__ import annotations

import io
import itertools
import json
import math
import warnings

import numpy as np
import pytest
from scipy import stats as sps

from services.engine.stats import PERCENTILES, Partial, StatsOptions


def _data(n: int = 20_000, seed: int = 7) -> tuple[dict, dict]:
    rng = np.random.default_rng(seed)
    a = rng.normal(10.0, 2.0, n)
    b = rng.lognormal(0.0, 0.8, n)
    c = rng.integers(0, 4, n).astype(np.float64)  # ties, for Spearman
    y = 3 * a - b + 0.5 * c + rng.normal(0, 1, n)
    y[[3, 17, n - 1]] = np.nan  # Excel errors
    y[n // 2] = np.inf
    return {"y": y, "z": -b}, {"a": a, "b": b, "c": c}


def _split(outputs, inputs, cuts, options=None) -> list[Partial]:
    bounds = [0, *cuts, len(next(iter(outputs.values())))]
    return [
        Partial.from_chunk(
            lo,
            {k: v[lo:hi] for k, v in outputs.items()},
            {k: v[lo:hi] for k, v in inputs.items()},
            options,
        )
        for lo, hi in itertools.pairwise(bounds)
    ]


def _fold(parts: list[Partial]) -> Partial:
    acc = parts[0]
    for p in parts[1:]:
        acc = acc.merge(p)
    return acc


def test_results_match_numpy_and_scipy():
    outputs, inputs = _data()
    r = Partial.from_chunk(0, outputs, inputs).results()["y"]
    y = outputs["y"]
    good = y[np.isfinite(y)]
    assert (r.count, r.errors) == (good.size, 4)
    assert r.mean == pytest.approx(good.mean(), rel=1e-13)
    assert r.std == pytest.approx(good.std(ddof=1), rel=1e-12)
    assert r.skewness == pytest.approx(sps.skew(good), rel=1e-9)
    assert r.kurtosis == pytest.approx(sps.kurtosis(good), rel=1e-9)
    assert (r.min, r.max) == (good.min(), good.max())
    for q in PERCENTILES:
        assert r.percentiles[q] == pytest.approx(np.percentile(good, q), rel=1e-12)
    assert r.var_95 == r.percentiles[5]
    k = math.ceil(0.05 * good.size)
    assert r.cvar_95 == pytest.approx(np.sort(good)[:k].mean(), rel=1e-12)
    counts, edges = np.histogram(good, bins=50)
    assert r.histogram == (list(edges), list(counts))
    assert r.cdf[0] == (good.min(), 0.0) and r.cdf[-1] == (good.max(), 1.0)
    ok = np.isfinite(y)
    expected = {k: sps.spearmanr(v[ok], y[ok]).statistic for k, v in inputs.items()}
    assert [name for name, _ in r.sensitivity] == ["a", "b", "c"]
    for name, rho in r.sensitivity:
        assert rho == pytest.approx(expected[name], abs=1e-12)
    trials, mean, se = r.convergence[-1]
    assert trials == y.size and mean == pytest.approx(good.mean(), rel=1e-12)
    assert se == pytest.approx(good.std(ddof=1) / math.sqrt(good.size), rel=1e-12)
    t, m, _ = r.convergence[0]
    assert t == 10 and m == pytest.approx(y[:10][np.isfinite(y[:10])].mean())
    json.dumps(r.to_dict())


@pytest.mark.parametrize(
    "cuts", [[1], [5000], [1234, 5000, 5001, 19_999], list(range(997, 20_000, 997))]
)
def test_exact_regime_is_bit_identical_whatever_the_chunking(cuts):
    outputs, inputs = _data()
    whole = Partial.from_chunk(0, outputs, inputs).results()
    merged = _fold(_split(outputs, inputs, cuts)).results()
    for name in whole:
        a, b = whole[name], merged[name]
        conv_a, conv_b = a.convergence, b.convergence
        a.convergence = b.convergence = []
        assert a == b
        assert np.allclose(conv_a, conv_b, rtol=1e-12, atol=0)


def test_sketch_regime_is_chunk_invariant_within_tolerance():
    outputs, inputs = _data()
    opts = StatsOptions(exact_limit=3000, reservoir_size=2000)
    one = _fold(_split(outputs, inputs, [2500], opts)).results()["y"]
    many = _fold(_split(outputs, inputs, list(range(701, 20_000, 701)), opts)).results()["y"]
    again = _fold(_split(outputs, inputs, list(range(701, 20_000, 701)), opts)).results()["y"]
    assert not one.exact
    assert many == again  # same order of merges: identical bits
    for field in ("mean", "std", "skewness", "kurtosis"):
        assert getattr(one, field) == pytest.approx(getattr(many, field), rel=1e-11)
    assert one.percentiles == many.percentiles  # sketch counts are exact integers
    assert one.histogram == many.histogram
    assert one.sensitivity == many.sensitivity  # the reservoir is the same set of trials


def test_sketch_moments_match_exact():
    outputs, inputs = _data()
    exact = Partial.from_chunk(0, outputs, inputs).results()["y"]
    opts = StatsOptions(exact_limit=100, reservoir_size=5000)
    sk = _fold(_split(outputs, inputs, list(range(50, 20_000, 1000)), opts)).results()["y"]
    assert (sk.count, sk.errors, sk.min, sk.max) == (
        exact.count,
        exact.errors,
        exact.min,
        exact.max,
    )
    for field in ("mean", "std", "skewness", "kurtosis"):
        assert getattr(sk, field) == pytest.approx(getattr(exact, field), rel=1e-10)
    assert sk.cvar_95 == pytest.approx(exact.cvar_95, rel=2e-3)
    assert sum(sk.histogram[1]) == sk.count
    for (name, rho), (name2, rho2) in zip(sk.sensitivity, exact.sensitivity, strict=True):
        assert name == name2 and rho == pytest.approx(rho2, abs=4 / math.sqrt(5000))


@pytest.mark.parametrize("alpha", [0.01, 0.001])
def test_sketch_quantile_error_bound(alpha):
    rng = np.random.default_rng(3)
    x = np.concatenate(
        [
            rng.lognormal(0, 3, 40_000),
            -rng.exponential(5, 20_000),
            np.zeros(100),
            rng.normal(0, 1e-6, 1000),
        ]
    )
    rng.shuffle(x)
    opts = StatsOptions(exact_limit=10, sketch_alpha=alpha)
    r = _fold(_split({"x": x}, {}, [30_000, 30_001], opts)).results()["x"]
    srt = np.sort(x)
    for q in PERCENTILES:
        exact = srt[math.floor(q / 100 * (x.size - 1))]
        assert abs(r.percentiles[q] - exact) <= alpha * abs(exact) * (1 + 1e-12)
    for value, p in r.cdf[1:-1]:
        exact = srt[math.floor(p * (x.size - 1))]
        assert abs(value - exact) <= alpha * abs(exact) * (1 + 1e-12)


def test_round_trip_both_regimes():
    outputs, inputs = _data(5000)
    for opts in (StatsOptions(), StatsOptions(exact_limit=1000, reservoir_size=300)):
        parts = _split(outputs, inputs, [1200, 3000], opts)
        p = _fold(parts)
        q = Partial.from_bytes(p.to_bytes())
        assert q.results() == p.results()
        assert q.running() == p.running()
        rest = _split(outputs, inputs, [1200, 3000], opts)
        # a restored checkpoint keeps merging like the original
        head = Partial.from_bytes(rest[0].merge(rest[1]).to_bytes())
        assert head.merge(rest[2]).results() == p.results()
    assert b"pickle" not in p.to_bytes()
    for junk in (b"", b"junk", p.to_bytes()[:100]):
        with pytest.raises(ValueError, match="checkpoint"):
            Partial.from_bytes(junk)


def test_running_reports_mean_and_standard_error():
    outputs, inputs = _data(1000)
    mean, se = Partial.from_chunk(0, outputs, inputs).running()["z"]
    z = outputs["z"]
    assert mean == pytest.approx(z.mean())
    assert se == pytest.approx(z.std(ddof=1) / math.sqrt(z.size))


def test_merge_refuses_out_of_order_and_mismatched():
    outputs, inputs = _data(100)
    a, b = _split(outputs, inputs, [50])
    with pytest.raises(ValueError, match="trial order"):
        b.merge(a)
    other = Partial.from_chunk(100, {"w": outputs["y"]}, inputs)
    with pytest.raises(ValueError, match="different"):
        a.merge(b).merge(other)
    with pytest.raises(ValueError, match="one length"):
        Partial.from_chunk(0, {"y": np.zeros(3)}, {"a": np.zeros(4)})


def test_all_errors_and_constant_output():
    n = 50
    p = Partial.from_chunk(
        0,
        {"bad": np.full(n, np.nan), "flat": np.full(n, 2.0)},
        {"a": np.arange(n, dtype=np.float64)},
    )
    bad, flat = p.results()["bad"], p.results()["flat"]
    assert (bad.count, bad.errors) == (0, n) and math.isnan(bad.mean)
    assert bad.to_dict()["mean"] is None
    assert flat.std == 0.0 and flat.percentiles[50] == 2.0
    assert math.isnan(flat.sensitivity[0][1])  # undefined for a constant output
    json.dumps(bad.to_dict())
    json.dumps(flat.to_dict())


def test_a_checkpoint_of_the_previous_format_still_loads():
    """Format 1 kept log buckets (DDSketch); they are recounted in this format's buckets."""
    outputs, inputs = _data()
    opts = StatsOptions(exact_limit=1000, reservoir_size=500)
    current = _fold(_split(outputs, inputs, [5000], opts))
    with np.load(io.BytesIO(current.to_bytes()), allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(arrays["meta"].tobytes())
    log_gamma = math.log((1 + opts.sketch_alpha) / (1 - opts.sketch_alpha))
    for i, name in enumerate(meta["outputs"]):
        x = outputs[name][np.isfinite(outputs[name])]
        for sign, v in (("p", x[x > 0]), ("n", -x[x < 0])):
            idx, cnt = np.unique(
                np.ceil(np.log(v) / log_gamma).astype(np.int64), return_counts=True
            )
            arrays[f"o{i}.{sign}i"], arrays[f"o{i}.{sign}c"] = idx, cnt.astype(np.int64)
    arrays["meta"] = np.frombuffer(json.dumps({**meta, "format": 1}).encode(), dtype=np.uint8)
    old = io.BytesIO()
    np.savez(old, allow_pickle=False, **arrays)
    restored = Partial.from_bytes(old.getvalue()).results()
    for name, r in current.results().items():
        got = restored[name]
        assert (got.count, got.mean, got.min, got.max) == (r.count, r.mean, r.min, r.max)
        for q in PERCENTILES:  # two roundings of at most alpha each
            assert got.percentiles[q] == pytest.approx(
                r.percentiles[q], rel=2.1 * opts.sketch_alpha
            )


@pytest.mark.parametrize("exact_limit", [1_000_000, 2])
def test_values_near_the_double_range_never_raise(exact_limit):
    """Spread over ±1.7e308, the histogram's range overflows a double: bins still come out."""
    x = np.array([-1.7e308, 1.7e308, 0.0, 1e300])
    opts = StatsOptions(exact_limit=exact_limit)
    parts = _split({"y": x}, {"a": np.arange(4.0)}, [2], opts)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = _fold(parts).results()["y"]
    assert (r.count, r.min, r.max) == (4, -1.7e308, 1.7e308)
    assert sum(r.histogram[1]) == 4 and all(math.isfinite(e) for e in r.histogram[0])
    json.dumps(r.to_dict())


@pytest.mark.parametrize("exact_limit", [1_000_000, 2])
def test_an_output_constant_but_for_rounding_has_a_histogram(exact_limit):
    """(x * 0.1) / x over many x: 0.1 give or take an ulp, too narrow a range for 50 bins
    of distinct edges (NumPy refuses them): fewer, narrower bins hold every value."""
    x = np.random.default_rng(3).uniform(1, 2, 1000)
    y = (x * 0.1) / x
    assert y.min() < y.max()  # the case: distinct values a few doubles apart
    parts = _split({"y": y}, {"x": x}, [400], StatsOptions(exact_limit=exact_limit))
    r = _fold(parts).results()["y"]
    edges, counts = r.histogram
    assert sum(counts) == 1000 and len(edges) == len(counts) + 1
    assert all(b > a for a, b in itertools.pairwise(edges))
    assert edges[0] == y.min() and edges[-1] == y.max()
    json.dumps(r.to_dict())


@pytest.mark.parametrize("exact_limit", [1_000_000, 2])
@pytest.mark.parametrize("value", [2.0, 2e14, 1e17, -1e300])
def test_a_constant_output_has_a_histogram_however_large(exact_limit, value):
    """Beyond about 1e14 doubles lie further apart than NumPy's bins around a single value
    (50 over value ± 0.5) are wide, and it refuses to make them."""
    parts = _split(
        {"y": np.full(100, value)}, {"x": np.arange(100.0)}, [40], StatsOptions(exact_limit)
    )
    r = _fold(parts).results()["y"]
    edges, counts = r.histogram
    assert sum(counts) == 100 and len(edges) == len(counts) + 1
    assert edges[0] <= value <= edges[-1]
    assert r.mean == pytest.approx(value, rel=1e-12)


@pytest.mark.parametrize("first", [0, 5, 99_999])
def test_convergence_is_the_mean_of_every_prefix_of_finite_values(first):
    """Each point of the convergence series: mean and standard error of the chunk's finite
    values up to it (errors and infinities skipped), however the chunk sits on the grid."""
    x = np.random.default_rng(first).normal(1e6, 30.0, 12_345)
    x[::7] = np.nan
    x[3::11] = np.inf
    x[:40] = np.nan  # the first grid points see no finite value at all
    r = Partial.from_chunk(first, {"x": x}, {}).results()["x"]
    assert r.convergence
    for trials, mean, se in r.convergence:
        seen = x[:trials][np.isfinite(x[:trials])]
        if seen.size == 0:
            continue
        assert mean == pytest.approx(seen.mean(), rel=1e-12)
        if seen.size > 1:
            assert se == pytest.approx(seen.std(ddof=1) / math.sqrt(seen.size), rel=1e-9)
    finite = x[np.isfinite(x)]
    assert (r.count, r.errors) == (finite.size, x.size - finite.size)
    assert (r.min, r.max) == (finite.min(), finite.max())
