"""The benchmark models written by hand in NumPy, as an experienced NumPy user would.

Each function draws its inputs with ``np.random.Generator(np.random.Philox(seed))`` (NumPy's
own samplers: ziggurat normals, its triangular and beta generators) and computes the outputs
with vectorised arithmetic. Returns ``{output name: float64 array}`` for ``n`` trials.
"""

from __future__ import annotations

import numpy as np

from tests.engine import models as m


def small(gen: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """Profit = (revenue - cost) * (1 - tax)."""
    revenue = gen.normal(100.0, 10.0, n)
    cost = gen.triangular(20.0, 30.0, 50.0, n)
    tax = gen.uniform(0.1, 0.2, n)
    return {"Profit": (revenue - cost) * (1.0 - tax)}


def _pert(gen: np.random.Generator, lo: float, mode: float, hi: float, n: int) -> np.ndarray:
    a1 = 1.0 + 4.0 * (mode - lo) / (hi - lo)
    a2 = 1.0 + 4.0 * (hi - mode) / (hi - lo)
    return lo + (hi - lo) * gen.beta(a1, a2, n)


def project_npv(gen: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """Ten years of cash flows from four uncertain drivers, discounted."""
    units = gen.triangular(80.0, 100.0, 130.0, n)
    price = gen.normal(10.0, 1.0, n)
    unit_cost = _pert(gen, 4.0, 5.0, 7.0, n)
    growth = gen.uniform(0.02, 0.06, n)
    years = np.arange(m.NPV_YEARS)
    volume = units[:, None] * (1.0 + growth[:, None]) ** years  # (n, years)
    cash = volume * (price - unit_cost)[:, None] * (1.0 - m.NPV_TAX)
    discount = (1.0 + m.NPV_RATE) ** -(years + 1.0)
    return {"NPV": cash @ discount - m.NPV_INVESTMENT, "Final cash flow": cash[:, -1]}


def _portfolio_factor() -> np.ndarray:
    rank = np.full((m.CORRELATED, m.CORRELATED), m.CORR_OFF_DIAGONAL)
    np.fill_diagonal(rank, 1.0)
    return np.linalg.cholesky(2.0 * np.sin(np.pi * rank / 6.0))


_FACTOR = _portfolio_factor()
_MEANS = np.array([m._asset_mean(i) for i in range(1, m.ASSETS + 1)])
_SDS = np.array([m._asset_sd(i) for i in range(1, m.ASSETS + 1)])
_WEIGHTS = np.array([m._weight(i) for i in range(1, m.ASSETS + 1)])


def portfolio(gen: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """50 normal returns, the first five correlated by a Gaussian copula, weighted."""
    z = gen.standard_normal((n, m.ASSETS))
    z[:, : m.CORRELATED] = z[:, : m.CORRELATED] @ _FACTOR.T
    returns = _MEANS + _SDS * z
    total = returns @ _WEIGHTS
    return {"Portfolio return": total, "Portfolio value": 1e6 * (1.0 + total)}


MODELS = {"small": small, "project_npv": project_npv, "portfolio": portfolio}
