"""Scrambled Sobol uniforms: the third sampling method, beside Monte Carlo and Latin Hypercube.

Input stream ``s`` is Sobol dimension ``s`` (so at most :data:`MAX_DIMENSIONS` inputs), trial
``t`` is point ``t`` of the sequence in Gray-code order, the order SciPy's
``scipy.stats.qmc.Sobol`` gives: with ``v_1 .. v_52`` the dimension's direction numbers
(Joe and Kuo's ``new-joe-kuo-6.21201``, as SciPy ships them, extended to 52 bits by their
recurrence), the point is the 52-bit integer ``XOR of v_k over the bits k of t ^ (t >> 1)``.
So any trial is computed directly from its index: the same numbers for any chunking and any
number of workers, and every prefix of ``2^m`` trials is a (t, m, s)-net.

Scrambling (linear matrix scrambling and a digital shift, as SciPy's ``scramble=True``): the
direction numbers are multiplied (over GF(2)) by a random lower-triangular 52×52 matrix with
a unit diagonal, and every point is XORed with a random 52-bit shift. Their bits are the top
52 bits of Philox words ``0 .. 52`` of the input's key ``(seed, s)`` in counter domain 3
(words 0-51 the matrix's rows, word 52 the shift): reproducible by seed, independent between
inputs and seeds. The integer ``k`` becomes the uniform ``(k + 0.5) * 2**-52``, as every other
uniform (never 0, never 1).
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

import numpy as np

from . import rng

__all__ = ["BITS", "DOMAIN", "MAX_DIMENSIONS", "directions", "points", "uniforms"]

BITS = 52
DOMAIN = 3
"""The Philox counter domain of the scrambling bits (0: trials, 1: LHS, 2: RiskCompound)."""
# The Joe-Kuo direction numbers (BSD-licensed, like SciPy that ships them): primitive
# polynomials and initial values m_1..m_deg of 21,201 dimensions.
# Found without importing SciPy, which services that only check a model's width never load.
_SCIPY = importlib.util.find_spec("scipy")
assert _SCIPY is not None and _SCIPY.origin is not None, "SciPy is a dependency of the engine"
_NUMBERS = Path(_SCIPY.origin).parent / "stats" / "_sobol_direction_numbers.npz"


@functools.cache
def _joe_kuo() -> tuple[np.ndarray, np.ndarray]:
    with np.load(_NUMBERS) as data:
        return data["poly"], data["vinit"]


MAX_DIMENSIONS = 21_201
"""Sobol dimensions with direction numbers: the most inputs a Sobol run may sample."""


@functools.lru_cache(maxsize=65_536)
def directions(dimension: int) -> np.ndarray:
    """The 52 direction numbers of ``dimension`` (0-based), ``uint64``, ``v_1`` first."""
    if not 0 <= dimension < MAX_DIMENSIONS:
        raise ValueError(f"Sobol sampling has {MAX_DIMENSIONS:,} dimensions, got {dimension}")
    m = [1] * BITS
    if dimension:
        poly, vinit = _joe_kuo()
        p = int(poly[dimension])
        degree = p.bit_length() - 1
        m[:degree] = (int(v) for v in vinit[dimension, :degree])
        for j in range(degree, BITS):  # Bratley and Fox's recurrence
            new = m[j - degree]
            for k in range(degree):
                if (p >> (degree - 1 - k)) & 1:
                    new ^= m[j - k - 1] << (k + 1)
            m[j] = new
    return np.array([m[j] << (BITS - 1 - j) for j in range(BITS)], dtype=np.uint64)


@functools.lru_cache(maxsize=65_536)
def _scrambled(seed: int, stream: int) -> tuple[np.ndarray, int]:
    """The dimension's direction numbers through its random matrix, and its shift."""
    words = rng.raw(seed, stream, 0, BITS + 1, DOMAIN) >> np.uint64(64 - BITS)
    v = directions(stream)
    out = np.zeros(BITS, dtype=np.uint64)
    for row in range(BITS):  # row r gives output digit r (digit 0 the most significant)
        diagonal = 1 << (BITS - 1 - row)
        below = int(words[row]) & ~((diagonal << 1) - 1) & ((1 << BITS) - 1)
        mask = np.uint64(below | diagonal)  # columns c < r random, c = r set, c > r clear
        parity = np.bitwise_count(v & mask) & np.uint8(1)
        out |= parity.astype(np.uint64) << np.uint64(BITS - 1 - row)
    return out, int(words[BITS])


def points(v: np.ndarray, first: int, count: int) -> np.ndarray:
    """The 52-bit integers of points ``[first, first + count)`` of direction numbers ``v``."""
    index = np.arange(first, first + count, dtype=np.uint64)
    gray = index ^ (index >> np.uint64(1))
    out = np.zeros(count, dtype=np.uint64)
    bit = np.empty(count, dtype=np.uint64)
    for k in range(int(first + count).bit_length()):
        np.right_shift(gray, np.uint64(k), out=bit)
        bit &= np.uint64(1)
        bit *= v[k]
        out ^= bit
    return out


def uniforms(seed: int, stream: int, first: int, count: int) -> np.ndarray:
    """Scrambled Sobol uniforms in (0, 1) of trials ``[first, first + count)`` for one input
    stream (its Sobol dimension)."""
    if first + count > 2**BITS:
        raise ValueError(f"Sobol sampling has 2**{BITS} points")
    v, shift = _scrambled(seed, stream)
    words = points(v, first, count)
    words ^= np.uint64(shift)
    return rng.words_to_unit(words)
