"""The Gaussian copula realises target rank correlations exactly enough, chunk-invariantly."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from services.engine import rng, sampling
from services.engine.correlation import copula_factor, correlate
from services.engine.errors import CorrelationError
from services.engine.ir import Apply, Const, Correlation, Model, Output, Sample

TARGET = np.array(
    [
        [1.0, 0.6, -0.3, 0.2],
        [0.6, 1.0, -0.1, 0.0],
        [-0.3, -0.1, 1.0, 0.4],
        [0.2, 0.0, 0.4, 1.0],
    ]
)


def _uniforms(first: int, count: int, k: int = 4) -> list[np.ndarray]:
    return [rng.uniforms(99, s, first, count) for s in range(k)]


def test_achieved_spearman_within_001_of_target() -> None:
    n = 1 << 19
    u = correlate(_uniforms(0, n), copula_factor(TARGET))
    values = np.column_stack(
        [
            sampling.sample("gamma", u[0], (2.0, 1.0)),
            sampling.sample("normal", u[1], (0.0, 1.0)),
            sampling.sample("triang", u[2], (0.0, 1.0, 3.0)),
            sampling.sample("poisson", u[3], (20.0,)),
        ]
    )
    achieved = stats.spearmanr(values).statistic
    assert np.abs(achieved - TARGET).max() < 0.01


def test_a_correlated_model_reaches_its_targets(compile_model) -> None:
    """The same copula inside a model, on each CPU back end."""
    families = [("gamma", (2.0, 1.0)), ("normal", (0.0, 1.0)), ("triang", (0.0, 1.0, 3.0))]
    families.append(("poisson", (20.0,)))
    inputs = tuple(
        Sample(s, name, tuple(Const(p) for p in params), name, f"C!A{s + 1}")
        for s, (name, params) in enumerate(families)
    )
    matrix = tuple(tuple(float(v) for v in row) for row in TARGET)
    m = Model(
        inputs,
        (Output("total", "C!B1", Apply("sum", inputs)),),
        (Correlation("M", (0, 1, 2, 3), matrix),),
    )
    _, values = compile_model(m, seed=99).evaluate(0, 1 << 18)
    achieved = stats.spearmanr(np.column_stack([values[n] for n, _ in families])).statistic
    assert np.abs(achieved - TARGET).max() < 0.01


def test_marginals_stay_uniform() -> None:
    u = correlate(_uniforms(0, 1 << 16), copula_factor(TARGET))
    for v in u:
        assert stats.kstest(v, "uniform").pvalue > 1e-3
        assert v.min() > 0.0 and v.max() < 1.0


def test_first_input_keeps_its_own_uniform() -> None:
    own = _uniforms(0, 1000)
    factor = copula_factor(TARGET)
    u = correlate([x.copy() for x in own], factor)
    assert factor[0, 0] == 1.0
    np.testing.assert_allclose(u[0], own[0], rtol=1e-12)


def test_chunk_invariant_bits() -> None:
    factor = copula_factor(TARGET)
    whole = correlate(_uniforms(0, 5000), factor)
    parts = [correlate(_uniforms(a, b - a), factor) for a, b in ((0, 3), (3, 4096), (4096, 5000))]
    for i in range(4):
        assert np.array_equal(np.concatenate([p[i] for p in parts]), whole[i])


def test_rank_to_pearson_mapping() -> None:
    factor = copula_factor([[1.0, 0.5], [0.5, 1.0]])
    pearson = factor @ factor.T
    assert pearson[0, 1] == pytest.approx(2 * np.sin(np.pi * 0.5 / 6))


def test_tiny_negative_eigenvalues_are_repaired() -> None:
    # Rank matrix of three perfectly correlated inputs, rounded: singular after 2 sin(pi r/6).
    almost = np.array([[1.0, 1.0, 0.999999], [1.0, 1.0, 1.0], [0.999999, 1.0, 1.0]])
    factor = copula_factor(almost)
    assert np.all(np.isfinite(factor))
    np.testing.assert_allclose(np.diag(factor @ factor.T), 1.0)
    np.testing.assert_allclose(factor @ factor.T, 2 * np.sin(np.pi * almost / 6), atol=1e-5)


def test_clearly_indefinite_matrix_is_refused() -> None:
    bad = [[1.0, 0.9, -0.9], [0.9, 1.0, 0.9], [-0.9, 0.9, 1.0]]
    with pytest.raises(CorrelationError, match="positive semi-definite") as err:
        copula_factor(bad, "Model!F1:H3")
    assert err.value.location == "Model!F1:H3"
