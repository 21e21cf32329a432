"""A chunk's statistics computed where its values are: the native back end's threads and the
GPU share this C source and these steps, so both summarise a chunk the same way.

The chunk's trials are cut into segments at fixed trial numbers (every :data:`SEGMENT`
trials, the convergence grid, the chunk's ends); each segment gives the moments (two passes,
four lanes, a fixed order), min and max of each output, and the sketch key of each value.
Folding the segments' moments in trial order gives the chunk's, and those at the convergence
grid; the keys are counted into the sketch's buckets; the reservoir's candidates (the trials
of smallest hash) keep their values for sensitivity. :func:`chunk_partial` turns that into a
:class:`~.stats.Partial` (see :class:`~.stats.ChunkSummary`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from .stats import Buckets, ChunkSummary, Partial, StatsOptions, convergence_grid

__all__ = [
    "MAX_BUCKETS",
    "SEGMENT",
    "SOURCE",
    "buckets",
    "candidate_limit",
    "chunk_partial",
    "joined_spans",
    "segment_bounds",
]

SEGMENT = 1024  # longest segment: its values stay in cache for the two passes
MAX_BUCKETS = 1 << 22  # dense counts up to 32 MiB; beyond, the keys are sorted
_MAX_HASH = 2**64 - 1

# C99, and CUDA where ALEA_STAT is __host__ __device__ (u64 is the prelude's typedef).
SOURCE = r"""
#ifdef __CUDACC__
#define ALEA_STAT __host__ __device__ inline
#else
#define ALEA_STAT static inline
#endif
#define ALEA_SEGMENT 1024

ALEA_STAT u64 alea_hash(u64 t) {  /* splitmix64, as stats.trial_hash */
  u64 z = t + 0x9E3779B97F4A7C15ULL;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

/* The sketch key of v: ±(bucket + 1) by its sign, the bucket its exponent and top mantissa
   bits (bits >> shift); 0 for a zero; INT32_MIN when not finite. Branch-free. */
ALEA_STAT int alea_key_of(double v, int shift) {
  union { double d; u64 u; } bits;
  bits.d = v;
  u64 magnitude = bits.u & 0x7FFFFFFFFFFFFFFFULL;
  int k = (int)(magnitude >> shift) + 1;
  k = bits.u >> 63 ? -k : k;
  k = magnitude == 0 ? 0 : k;
  return magnitude >= 0x7FF0000000000000ULL ? INT32_MIN : k;
}

/* n, mean, M2, M3, M4 and min, max of the finite values among v[0 .. n-1]: two passes, each
   in 4 lanes of partial sums (vectorised; the lanes add up in a fixed order). */
ALEA_STAT void alea_moments(const double* v, long n, double* m, double* lohi) {
  double sum[4] = {0.0, 0.0, 0.0, 0.0}, cnt[4] = {0.0, 0.0, 0.0, 0.0};
  double lo[4] = {INFINITY, INFINITY, INFINITY, INFINITY};
  double hi[4] = {-INFINITY, -INFINITY, -INFINITY, -INFINITY};
  long whole = n - n % 4;
  for (long i = 0; i < n; i += 4)
    for (int l = 0; l < 4; ++l) {
      double x = i < whole || l < n % 4 ? v[i + l] : NAN;
      bool f = fabs(x) <= DBL_MAX;
      sum[l] += f ? x : 0.0;
      cnt[l] += f ? 1.0 : 0.0;
      lo[l] = f && x < lo[l] ? x : lo[l];
      hi[l] = f && x > hi[l] ? x : hi[l];
    }
  double k = (cnt[0] + cnt[1]) + (cnt[2] + cnt[3]);
  double mean = k > 0.0 ? ((sum[0] + sum[1]) + (sum[2] + sum[3])) / k : 0.0;
  double m2[4] = {0.0, 0.0, 0.0, 0.0}, m3[4] = {0.0, 0.0, 0.0, 0.0}, m4[4] = {0.0, 0.0, 0.0, 0.0};
  for (long i = 0; i < n; i += 4)
    for (int l = 0; l < 4; ++l) {
      double x = i < whole || l < n % 4 ? v[i + l] : NAN;
      double d = fabs(x) <= DBL_MAX ? x - mean : 0.0, d2 = d * d;
      m2[l] += d2;
      m3[l] += d2 * d;
      m4[l] += d2 * d2;
    }
  m[0] = k; m[1] = mean;
  m[2] = (m2[0] + m2[1]) + (m2[2] + m2[3]);
  m[3] = (m3[0] + m3[1]) + (m3[2] + m3[3]);
  m[4] = (m4[0] + m4[1]) + (m4[2] + m4[3]);
  lohi[0] = fmin(fmin(lo[0], lo[1]), fmin(lo[2], lo[3]));
  lohi[1] = fmax(fmax(hi[0], hi[1]), fmax(hi[2], hi[3]));
}

/* The keys of v[0 .. n-1] into key, widening span (least and greatest key of the positive
   values, then of the negated negative ones; INT_MAX, 0 while there are none). */
ALEA_STAT void alea_keys(const double* v, long n, int shift, int* key, int* span) {
  int pmin = span[0], pmax = span[1], nmin = span[2], nmax = span[3];
  for (long t = 0; t < n; ++t) {
    int k = alea_key_of(v[t], shift), m = k == INT32_MIN ? 0 : -k;
    key[t] = k;
    pmin = k > 0 && k < pmin ? k : pmin;
    pmax = k > pmax ? k : pmax;
    nmin = m > 0 && m < nmin ? m : nmin;
    nmax = m > nmax ? m : nmax;
  }
  span[0] = pmin; span[1] = pmax; span[2] = nmin; span[3] = nmax;
}

/* b (moments of the trials after a's) becomes the moments of a's and b's trials together:
   the pairwise update of stats._combine. */
ALEA_STAT void alea_combine(const double* a, double* b) {
  double na = a[0], nb = b[0], n = na + nb;
  if (na == 0.0) return;
  if (nb == 0.0) { for (int k = 0; k < 5; ++k) b[k] = a[k]; return; }
  double d = b[1] - a[1], dn = d / n;
  double m2 = a[2] + b[2] + d * dn * na * nb;
  double m3 = a[3] + b[3] + dn * dn * d * na * nb * (na - nb)
              + 3 * dn * (na * b[2] - nb * a[2]);
  double m4 = a[4] + b[4] + dn * dn * dn * d * na * nb * (na * na - na * nb + nb * nb)
              + 6 * dn * dn * (na * na * b[2] + nb * nb * a[2])
              + 4 * dn * (na * b[3] - nb * a[3]);
  b[0] = n; b[1] = a[1] + dn * nb; b[2] = m2; b[3] = m3; b[4] = m4;
}
"""


def segment_bounds(first_trial: int, count: int) -> np.ndarray:
    """The segments' edges (uint64, ascending): the chunk's ends, every multiple of
    :data:`SEGMENT` and every convergence point inside it."""
    end = first_trial + count
    grid = convergence_grid(first_trial, end)
    tiles = range(first_trial - first_trial % SEGMENT + SEGMENT, end, SEGMENT)
    return np.unique(np.concatenate([[first_trial, end], grid, tiles])).astype(np.uint64)


def candidate_limit(count: int, size: int) -> int | None:
    """The trial-hash limit under which about ``2 size + 64`` of a chunk's ``count`` trials
    fall (the reservoir's candidates); None when that would be every trial."""
    limit = (_MAX_HASH + 1) * (2 * size + 64) // max(count, 1)
    return limit if limit < _MAX_HASH else None


def joined_spans(spans: np.ndarray) -> np.ndarray:
    """Per output, the key span (``alea_keys``'s four numbers) covering ``spans[i, j]`` of
    every part ``i``: least of the least keys, greatest of the greatest."""
    joined = spans.min(axis=0)
    joined[:, 1::2] = spans[:, :, 1::2].max(axis=0)
    return joined


def buckets(
    span: np.ndarray,
    count_dense: Callable[[int, int, int, int], tuple[np.ndarray, np.ndarray, int]],
    keys: Callable[[], np.ndarray],
) -> tuple[Buckets, Buckets, int]:
    """One output's sketch buckets (positive values', negative values', number of zeros).

    ``span`` = (least, greatest positive key, least, greatest negated negative key);
    ``count_dense(pmin, npos, nmin, nneg)`` counts the keys into dense arrays of those
    ranges (and the zeros); beyond :data:`MAX_BUCKETS` of them, ``keys()`` (every key of
    the chunk) are sorted instead.
    """
    pmin, pmax, nmin, nmax = (int(v) for v in span)
    npos, nneg = max(pmax - pmin + 1, 0), max(nmax - nmin + 1, 0)
    if npos + nneg > MAX_BUCKETS:  # values over too many octaves
        k = keys()
        zeros = int(np.count_nonzero(k == 0))
        negative = k[(k < 0) & (k != np.iinfo(np.int32).min)]
        return _distinct(k[k > 0]), _distinct(-negative), zeros
    pos, neg, zeros = count_dense(pmin, npos, nmin, nneg)
    return _nonzero(pos, pmin), _nonzero(neg, nmin), zeros


def _nonzero(counts: np.ndarray, least: int) -> Buckets:
    """(bucket, count) of the non-zero dense counts of keys ``least ..`` (bucket = key - 1)."""
    hit = np.flatnonzero(counts)
    return (hit + (least - 1)).astype(np.int64), counts[hit].astype(np.int64)


def _distinct(keys: np.ndarray) -> Buckets:
    """(bucket, count) of positive keys (bucket = key - 1), by sorting."""
    found, counts = np.unique(keys.astype(np.int64) - 1, return_counts=True)
    return found, counts.astype(np.int64)


def chunk_partial(
    outputs: Sequence[str],
    inputs: Sequence[str],
    bounds: np.ndarray,
    folded: np.ndarray,
    extremes: np.ndarray,
    sketches: tuple[tuple[Buckets, Buckets, int], ...],
    trials: np.ndarray,
    values: np.ndarray,
    options: StatsOptions,
) -> Partial:
    """The Partial of the chunk ``[bounds[0], bounds[-1])`` from its segments' statistics.

    ``outputs``, ``inputs``: the names of the outputs and of the inputs kept for sensitivity;
    ``folded[i, j]``: moments of output ``j`` over segments ``0 .. i``; ``extremes[i, j]``
    its min and max in segment ``i``; ``values``: rows of those outputs then inputs, one
    column per candidate trial in ``trials``.
    """
    first, end = int(bounds[0]), int(bounds[-1])
    nseg = len(bounds) - 1
    ends = bounds[1:].astype(np.int64)
    at_grid = np.isin(ends, convergence_grid(first, end))
    names = [f"o:{name}" for name in outputs] + [f"i:{name}" for name in inputs]
    summary = ChunkSummary(
        first_trial=first,
        count=end - first,
        outputs=tuple(outputs),
        inputs=tuple(inputs),
        moments=folded[-1] if nseg else np.zeros((len(outputs), 5)),
        extremes=np.stack([extremes[:, :, 0].min(axis=0), extremes[:, :, 1].max(axis=0)], 1),
        conv_t=ends[at_grid],
        conv_m=folded[at_grid],
        sketches=sketches,
        trials=trials,
        values=dict(zip(names, values, strict=True)),
    )
    return Partial.from_summary(summary, options)
