"""Metalog distributions (Keelin 2016): least-squares fit to data and their quantile function.

A k-term metalog's quantile function is ``M(y) = sum_j a_j b_j(y)`` over the basis
``1, L, (y-½)L, (y-½), (y-½)², (y-½)²L, (y-½)³, (y-½)³L, ...`` with ``L = ln(y/(1-y))``
(term ``j >= 5``: ``(y-½)^((j-1)/2)`` for odd ``j``, ``(y-½)^(j/2-1) L`` for even ``j``).
Bounded forms transform it: semi-bounded below ``x = lo + e^M``, above ``x = hi - e^-M``,
bounded ``x = (lo + hi e^M) / (1 + e^M)``. The fit regresses the transformed data
(``ln(x-lo)``, ``-ln(hi-x)``, ``ln((x-lo)/(hi-x))``) on the basis at each value's probability,
by ordinary least squares (as ``pymetalog``'s ``OLS`` method). A metalog is *feasible* when
its quantile function increases (``M'(y) > 0``) over (0, 1); :func:`fit` takes the most
terms up to ``terms`` that give a feasible fit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["MAX_TERMS", "Metalog", "basis", "fit", "least_squares"]

MAX_TERMS = 30
#: Probabilities at which feasibility is checked: fine in the body, down to 1e-6 in the tails.
_TAIL = np.geomspace(1e-6, 1e-3, 30)
_CHECK = np.concatenate([_TAIL, np.linspace(1e-3, 1 - 1e-3, 2000), 1 - _TAIL[::-1]])


@dataclass(frozen=True)
class Metalog:
    """``coefficients`` a_1..a_k; ``lower``/``upper`` the bounds (None where unbounded)."""

    coefficients: tuple[float, ...]
    lower: float | None = None
    upper: float | None = None

    @property
    def terms(self) -> int:
        return len(self.coefficients)

    def quantile(self, y: np.ndarray) -> np.ndarray:
        """The value at probabilities ``y`` in (0, 1)."""
        m = basis(np.asarray(y, dtype=np.float64), self.terms) @ np.array(self.coefficients)
        return _untransform(m, self.lower, self.upper)

    def feasible(self) -> bool:
        """Whether the quantile function increases over (0, 1) (a valid distribution)."""
        slope = _basis_slope(_CHECK, self.terms) @ np.array(self.coefficients)
        return bool(np.all(slope > 0))


def basis(y: np.ndarray, terms: int) -> np.ndarray:
    """The metalog basis at probabilities ``y``: shape ``(len(y), terms)``."""
    logit = np.log(y / (1 - y))
    u = y - 0.5
    columns = [np.ones_like(y), logit, u * logit, u]
    for j in range(5, terms + 1):
        columns.append(u ** ((j - 1) // 2) if j % 2 else u ** (j // 2 - 1) * logit)
    return np.column_stack(columns[:terms])


def _basis_slope(y: np.ndarray, terms: int) -> np.ndarray:
    """d basis / dy at ``y``."""
    logit, dlogit = np.log(y / (1 - y)), 1 / (y * (1 - y))
    u = y - 0.5
    columns = [np.zeros_like(y), dlogit, logit + u * dlogit, np.ones_like(y)]
    for j in range(5, terms + 1):
        if j % 2:
            p = (j - 1) // 2
            columns.append(p * u ** (p - 1))
        else:
            p = j // 2 - 1
            columns.append(p * u ** (p - 1) * logit + u**p * dlogit)
    return np.column_stack(columns[:terms])


def _transform(x: np.ndarray, lower: float | None, upper: float | None) -> np.ndarray:
    if lower is not None and upper is not None:
        return np.log((x - lower) / (upper - x))
    if lower is not None:
        return np.log(x - lower)
    if upper is not None:
        return -np.log(upper - x)
    return x


def _untransform(m: np.ndarray, lower: float | None, upper: float | None) -> np.ndarray:
    if lower is not None and upper is not None:
        return (lower + upper * np.exp(m)) / (1 + np.exp(m))
    if lower is not None:
        return lower + np.exp(m)
    if upper is not None:
        return upper - np.exp(-m)
    return m


def fit(
    x: np.ndarray,
    y: np.ndarray,
    terms: int,
    lower: float | None = None,
    upper: float | None = None,
) -> Metalog:
    """The feasible least-squares metalog of at most ``terms`` terms through values ``x`` at
    probabilities ``y`` (0 < y < 1), bounded by ``lower``/``upper`` where given.

    Raises ValueError naming what is wrong: fewer points than 2, a probability outside
    (0, 1), a value outside the bounds, ``terms`` outside 2..30, or no feasible fit.
    """
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if not 2 <= terms <= MAX_TERMS:
        raise ValueError(f"terms must be within 2..{MAX_TERMS}, got {terms}")
    if x.shape != y.shape or x.ndim != 1 or x.size < 2:
        raise ValueError("x and y must be 1-D of one length, at least 2")
    if not (np.all((y > 0) & (y < 1)) and np.all(np.isfinite(x))):
        raise ValueError("probabilities must be in (0, 1) and values finite")
    if lower is not None and upper is not None and not lower < upper:
        raise ValueError(f"the lower bound {lower} must be below the upper bound {upper}")
    if (lower is not None and np.any(x <= lower)) or (upper is not None and np.any(x >= upper)):
        raise ValueError("every value must lie strictly inside the bounds")
    for k in range(min(terms, x.size), 1, -1):
        metalog = least_squares(x, y, k, lower, upper)
        if metalog.feasible():
            return metalog
    raise ValueError("no feasible metalog fits these values")


def least_squares(
    x: np.ndarray, y: np.ndarray, terms: int, lower: float | None, upper: float | None
) -> Metalog:
    """The ``terms``-term least-squares metalog (feasible or not) of checked data."""
    z = _transform(x, lower, upper)
    coefficients = np.linalg.lstsq(basis(y, terms), z, rcond=None)[0]
    return Metalog(tuple(float(a) for a in coefficients), lower, upper)
