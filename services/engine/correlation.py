"""Rank correlations (``RiskCorrmat``) realised by a Gaussian copula on the inputs' own uniforms.

For a group of inputs with target Spearman matrix ``R``: the Pearson matrix of the normal
copula is ``S = 2 sin(pi R / 6)`` (which gives the normals, and so the uniforms and every
inverse-CDF transform of them, rank correlation exactly ``R``); ``S = L L^T`` by Cholesky;
each trial's uniforms ``u`` become ``z = ndtri(u)``, ``z' = L z`` and ``u' = ndtr(z')``,
clipped to ``[2**-53, 1 - 2**-53]``, and then go through the inputs' inverse CDFs.

``z'_i`` is summed in a fixed order, ``((L[i,0] z_0 + L[i,1] z_1) + ...) + L[i,i] z_i``,
one elementwise multiply and add per term (no BLAS, no fused multiply-add), so the bits do
not depend on the chunk size; the CUDA generator uses the same order without FMA.
The front end checks that ``R`` is a valid correlation matrix; here only the tiny negative
eigenvalues that ``2 sin(pi R / 6)`` or rounding can produce are repaired.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import special

from .errors import CorrelationError

__all__ = ["copula_factor", "correlate"]

_EIGEN_FLOOR = 1e-12
_U_MIN = 2.0**-53
_U_MAX = 1.0 - 2.0**-53


def copula_factor(rank_matrix: Sequence[Sequence[float]], name: str = "") -> np.ndarray:
    """Lower-triangular ``L`` with ``L L^T`` the normal-copula matrix of a Spearman matrix."""
    rank = np.asarray(rank_matrix, dtype=np.float64)
    if rank.ndim != 2 or rank.shape[0] != rank.shape[1]:
        raise CorrelationError(f"matrix must be square, got shape {rank.shape}", name)
    pearson = 2.0 * np.sin(np.pi * rank / 6.0)
    np.fill_diagonal(pearson, 1.0)
    try:
        return np.linalg.cholesky(pearson)
    except np.linalg.LinAlgError:
        pass
    values, vectors = np.linalg.eigh(pearson)
    if values.min() < -1e-6:
        raise CorrelationError(
            f"matrix is not positive semi-definite (eigenvalue {values.min():.3g})", name
        )
    repaired = (vectors * np.maximum(values, _EIGEN_FLOOR)) @ vectors.T
    scale = 1.0 / np.sqrt(np.diag(repaired))
    repaired = repaired * np.outer(scale, scale)
    return np.linalg.cholesky(repaired)


def correlate(uniforms: Sequence[np.ndarray], factor: np.ndarray) -> list[np.ndarray]:
    """Correlated uniforms for one group: ``uniforms[i]`` is input ``i`` of the matrix."""
    normals = [special.ndtri(u) for u in uniforms]
    out = []
    for i in range(len(normals)):
        acc = factor[i, 0] * normals[0]
        for j in range(1, i + 1):
            acc += factor[i, j] * normals[j]
        special.ndtr(acc, out=acc)
        np.clip(acc, _U_MIN, _U_MAX, out=acc)
        out.append(acc)
    return out
