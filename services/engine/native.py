"""The native CPU back end: the generated source, compiled by the system C compiler, in-process.

The source the CUDA kernel is generated from (:mod:`.cuda.codegen`) is plain C99 once its
CUDA qualifiers are macros (:mod:`.cuda.prelude`); :data:`DRIVER` adds the CPU loop. It is
compiled once per model at ``-O3`` (``-O0`` past a few thousand lines: the optimisers take
time superlinear in a function's length, a minute and more for a 50,000-cell chain) into a
shared library, cached under
``$ALEA_HOME/cache/native/<sha256>.so`` (the hash covers the source, the flags and the
compiler), and called through ``ctypes``, which releases the GIL: a chunk is cut into
contiguous ranges of whole Philox blocks, one per CPU thread, all running at once.

One fused loop per Philox block of 4 trials: the block's words for every input stream →
uniforms → the trial function (inverse CDFs, copula, the model's formulas) → outputs, with
no array between the steps. Trial ``t`` draws the same uniforms as in every other back end,
and its values depend on nothing else, so results are bit-identical for any chunking and
thread count. Where no compiler exists, :func:`available` says why (the caller falls back
to the NumPy back end and logs it).
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import itertools
import os
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from services.runtime.config import alea_home

from . import rng, sampling
from .cuda.codegen import generate
from .ir import Model
from .stats import ChunkSummary, Partial, StatsOptions, bucket_bits, convergence_grid

__all__ = ["DRIVER", "NativeEvaluator", "NativeUnavailable", "available", "compile_native"]

SAMPLINGS = ("mc", "lhs")
_FLAGS = ("-std=gnu11", "-fPIC", "-shared", "-w", "-ffp-contract=off", "-fno-math-errno")
_O3_LINES = 3000  # beyond, -O0: -O1 to -O3 take time superlinear in a function's length
_BLOCK = 4  # trials per Philox block

DRIVER = r"""
#include <limits.h>
#include <stdlib.h>

/* The uniforms of Philox block b (trials 4b .. 4b+3) of every input: row s of xs, stride 4. */
static void alea_fill(u64 seed, u64 b, double* xs) {
  for (int s = 0; s < ALEA_INPUTS; ++s) {
    u64 w[4];
    alea_philox(b, 0, alea_key(seed, s), (u64)s, w);
    for (int k = 0; k < 4; ++k) xs[s * 4 + k] = alea_unit(w[k]);
  }
}

/* Trials [first, first + count): outputs into y (row j at y + j * stride), the inputs listed
   in keep into x (row k at x + k * stride). u: uniforms given (Latin Hypercube), row s at
   u + s * ustride, or NULL to draw them here; q: the quantile tables (CudaSource.data).
   Returns 0, or -1 if out of memory. */
int alea_values(u64 seed, u64 first, u64 count, const double* u, u64 ustride, double* y,
                double* x, u64 stride, const int* keep, int nkeep, const double* q) {
  double* xs = (double*)malloc(sizeof(double) * 4 * (ALEA_INPUTS + 1));
  double* ys = (double*)malloc(sizeof(double) * 4 * (ALEA_OUTPUTS + 1));
  if (!xs || !ys) { free(xs); free(ys); return -1; }
  u64 end = first + count;
  for (u64 b = first / 4; 4 * b < end; ++b) {
    u64 t0 = 4 * b, lo = t0 < first ? first : t0, hi = t0 + 4 < end ? t0 + 4 : end;
    if (u) {
      for (int s = 0; s < ALEA_INPUTS; ++s)
        for (u64 t = lo; t < hi; ++t) xs[s * 4 + (t - t0)] = u[s * ustride + (t - first)];
    } else {
      alea_fill(seed, b, xs);
    }
    for (u64 t = lo; t < hi; ++t) alea_trial(xs + (t - t0), ys + (t - t0), 4, q);
    for (u64 t = lo; t < hi; ++t) {
      for (int j = 0; j < ALEA_OUTPUTS; ++j) y[j * stride + (t - first)] = ys[j * 4 + (t - t0)];
      for (int k = 0; k < nkeep; ++k) x[k * stride + (t - first)] = xs[keep[k] * 4 + (t - t0)];
    }
  }
  free(xs);
  free(ys);
  return 0;
}

/* ---- statistics in the loop (stats.ChunkSummary): per segment, moments (n, mean, M2, M3,
   M4 of the finite values, two passes over the segment's values in cache), min and max, the
   sketch key of every value, and the values of the reservoir's candidate trials */
#define ALEA_SEGMENT 1024  /* longest segment: its outputs stay in cache for the two passes */

static u64 alea_hash(u64 t) {  /* splitmix64, as stats.trial_hash */
  u64 z = t + 0x9E3779B97F4A7C15ULL;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

/* Trials t of [first, first + count) with hash(t) <= limit, ascending, the first cap of
   them into out; returns how many there are. */
long alea_candidates(u64 first, u64 count, u64 limit, long long* out, long cap) {
  long n = 0;
  for (u64 t = first; t < first + count; ++t)
    if (alea_hash(t) <= limit) {
      if (n < cap) out[n] = (long long)t;
      ++n;
    }
  return n;
}

static int alea_key_of(double v, int shift) {
  if (!isfinite(v)) return INT32_MIN;
  if (v == 0.0) return 0;
  union { double d; u64 u; } bits;
  bits.d = fabs(v);
  int k = (int)(bits.u >> shift) + 1;
  return v > 0.0 ? k : -k;
}

static void alea_moments(const double* v, long n, double* m, double* lohi) {
  double sum = 0.0, lo = INFINITY, hi = -INFINITY;
  long k = 0;
  for (long i = 0; i < n; ++i)
    if (isfinite(v[i])) { sum += v[i]; ++k; lo = fmin(lo, v[i]); hi = fmax(hi, v[i]); }
  double mean = k ? sum / k : 0.0, m2 = 0.0, m3 = 0.0, m4 = 0.0;
  for (long i = 0; i < n; ++i)
    if (isfinite(v[i])) {
      double d = v[i] - mean, d2 = d * d;
      m2 += d2; m3 += d2 * d; m4 += d2 * d2;
    }
  m[0] = (double)k; m[1] = mean; m[2] = m2; m[3] = m3; m[4] = m4;
  lohi[0] = lo; lohi[1] = hi;
}

/* Segments [bounds[i], bounds[i + 1]) for i < nseg, each at most ALEA_SEGMENT trials:
   moments into moments + (i * ALEA_OUTPUTS + j) * 5, min and max into extremes + (i *
   ALEA_OUTPUTS + j) * 2, the key of trial t into keys[j * kstride + (t - bounds[0])];
   candidate r (cand ascending) has output j at cvals[j * cstride + r] and kept input k at
   cvals[(ALEA_OUTPUTS + k) * cstride + r]. Returns 0, or -1 if out of memory. */
int alea_summary(u64 seed, const u64* bounds, long nseg, const double* u, u64 ustride,
                 const double* q, double* moments, double* extremes, int* keys, u64 kstride,
                 int shift, const long long* cand, long ncand, double* cvals, u64 cstride,
                 const int* keep, int nkeep) {
  double* xs = (double*)malloc(sizeof(double) * 4 * (ALEA_INPUTS + 1));
  double* ys = (double*)malloc(sizeof(double) * 4 * (ALEA_OUTPUTS + 1));
  double* seg = (double*)malloc(sizeof(double) * ALEA_SEGMENT * (ALEA_OUTPUTS + 1));
  if (!xs || !ys || !seg) { free(xs); free(ys); free(seg); return -1; }
  u64 origin = bounds[0];
  long r = 0;
  while (r < ncand && (u64)cand[r] < origin) ++r;
  for (long i = 0; i < nseg; ++i) {
    u64 first = bounds[i], end = bounds[i + 1], len = end - first;
    for (u64 b = first / 4; 4 * b < end; ++b) {
      u64 t0 = 4 * b, lo = t0 < first ? first : t0, hi = t0 + 4 < end ? t0 + 4 : end;
      if (u) {
        for (int s = 0; s < ALEA_INPUTS; ++s)
          for (u64 t = lo; t < hi; ++t) xs[s * 4 + (t - t0)] = u[s * ustride + (t - origin)];
      } else {
        alea_fill(seed, b, xs);
      }
      for (u64 t = lo; t < hi; ++t) alea_trial(xs + (t - t0), ys + (t - t0), 4, q);
      for (u64 t = lo; t < hi; ++t) {
        for (int j = 0; j < ALEA_OUTPUTS; ++j)
          seg[j * ALEA_SEGMENT + (t - first)] = ys[j * 4 + (t - t0)];
        if (r < ncand && (u64)cand[r] == t) {
          for (int j = 0; j < ALEA_OUTPUTS; ++j) cvals[j * cstride + r] = ys[j * 4 + (t - t0)];
          for (int k = 0; k < nkeep; ++k)
            cvals[(ALEA_OUTPUTS + k) * cstride + r] = xs[keep[k] * 4 + (t - t0)];
          ++r;
        }
      }
    }
    for (int j = 0; j < ALEA_OUTPUTS; ++j) {
      const double* v = seg + j * ALEA_SEGMENT;
      long at = (i * ALEA_OUTPUTS + j);
      alea_moments(v, (long)len, moments + at * 5, extremes + at * 2);
      int* key = keys + j * kstride + (first - origin);
      for (u64 t = 0; t < len; ++t) key[t] = alea_key_of(v[t], shift);
    }
  }
  free(xs);
  free(ys);
  free(seg);
  return 0;
}

/* In place, for every output: moments of segment i become those of segments 0 .. i (the
   pairwise update of stats._combine, in trial order). */
void alea_fold(double* moments, long nseg) {
  for (long i = 1; i < nseg; ++i)
    for (int j = 0; j < ALEA_OUTPUTS; ++j) {
      const double* a = moments + ((i - 1) * ALEA_OUTPUTS + j) * 5;
      double* b = moments + (i * ALEA_OUTPUTS + j) * 5;
      double na = a[0], nb = b[0], n = na + nb;
      if (na == 0.0) continue;
      if (nb == 0.0) { for (int k = 0; k < 5; ++k) b[k] = a[k]; continue; }
      double d = b[1] - a[1], dn = d / n;
      double m2 = a[2] + b[2] + d * dn * na * nb;
      double m3 = a[3] + b[3] + dn * dn * d * na * nb * (na - nb)
                  + 3 * dn * (na * b[2] - nb * a[2]);
      double m4 = a[4] + b[4] + dn * dn * dn * d * na * nb * (na * na - na * nb + nb * nb)
                  + 6 * dn * dn * (na * na * b[2] + nb * nb * a[2])
                  + 4 * dn * (na * b[3] - nb * a[3]);
      b[0] = n; b[1] = a[1] + dn * nb; b[2] = m2; b[3] = m3; b[4] = m4;
    }
}
"""


class NativeUnavailable(RuntimeError):
    """The native back end cannot run here (no C compiler, or the build failed)."""


def compiler() -> str | None:
    """The C compiler: ``$ALEA_CC``, else ``cc``, ``gcc`` or ``clang`` on the PATH."""
    for candidate in (os.environ.get("ALEA_CC"), "cc", "gcc", "clang"):
        if candidate and shutil.which(candidate):
            return candidate
    return None


def available() -> str | None:
    """None when the native back end can run here, else the reason it cannot."""
    if compiler() is None:
        return "no C compiler found (set ALEA_CC or install cc, gcc or clang)"
    return None


@functools.lru_cache(maxsize=8)
def _identity(cc: str) -> str:
    """What the cache key says of the compiler: its path and version line."""
    try:
        done = subprocess.run([cc, "--version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise NativeUnavailable(f"C compiler {cc!r} does not run: {exc}") from None
    lines = done.stdout.splitlines()
    return f"{shutil.which(cc)} {lines[0] if lines else ''}"


def cache_dir() -> Path:
    """Where compiled libraries are kept: ``$ALEA_HOME/cache/native``."""
    return alea_home() / "cache" / "native"


def build(source: str) -> Path:
    """The shared library of ``source``, compiled once and cached by hash.

    Concurrent builders (workers sharing ``$ALEA_HOME``) each compile to a private temporary
    file and rename it into place atomically, so a reader never sees a partial library.
    """
    cc = compiler()
    if cc is None:
        raise NativeUnavailable(available() or "no C compiler")
    flags = (*_FLAGS, "-O3" if source.count("\n") <= _O3_LINES else "-O0")
    key = hashlib.sha256("\0".join((source, *flags, _identity(cc))).encode()).hexdigest()
    folder = cache_dir()
    target = folder / f"{key}.so"
    if target.exists():
        return target
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{key[:16]}-", suffix=".so")
    os.close(fd)
    try:
        done = subprocess.run(
            [cc, *flags, "-o", tmp, "-x", "c", "-", "-lm"],
            input=source,
            capture_output=True,
            text=True,
            timeout=600,
        )
        if done.returncode != 0:
            raise NativeUnavailable(f"the C compiler failed: {done.stderr[-2000:]}")
        os.replace(tmp, target)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return target


_libraries: dict[Path, ctypes.CDLL] = {}
_lock = threading.Lock()
_U64, _INT, _LONG, _PTR = ctypes.c_uint64, ctypes.c_int, ctypes.c_long, ctypes.c_void_p
_SIGNATURES = {
    "alea_values": (_INT, [_U64, _U64, _U64, _PTR, _U64, _PTR, _PTR, _U64, _PTR, _INT, _PTR]),
    "alea_candidates": (_LONG, [_U64, _U64, _U64, _PTR, _LONG]),
    "alea_summary": (
        _INT,
        [
            _U64,
            _PTR,
            _LONG,
            _PTR,
            _U64,
            _PTR,
            _PTR,
            _PTR,
            _PTR,
            _U64,
            _INT,
            _PTR,
            _LONG,
            _PTR,
            _U64,
            _PTR,
            _INT,
        ],
    ),
    "alea_fold": (None, [_PTR, _LONG]),
}
_SEGMENT = 1024  # ALEA_SEGMENT of the driver


def _load(path: Path) -> ctypes.CDLL:
    with _lock:
        if path not in _libraries:
            lib = ctypes.CDLL(str(path))
            for name, (restype, argtypes) in _SIGNATURES.items():
                function = getattr(lib, name)
                function.restype, function.argtypes = restype, argtypes
            _libraries[path] = lib
        return _libraries[path]


def native_source(model: Model) -> tuple[str, np.ndarray]:
    """The C source of ``model``'s library (the generated source and :data:`DRIVER`) and the
    tables its quantiles read (constant parameters: computed once, here)."""
    generated = generate(model, tabulate=True)
    return generated.source + DRIVER, generated.data


def _at(a: np.ndarray | None, offset: int = 0) -> int | None:
    """The address of element ``offset`` of a C-contiguous array (None for no array)."""
    return None if a is None else int(a.ctypes.data) + a.itemsize * offset


class NativeEvaluator:
    """A model compiled to a native library; ``evaluate`` any trial range, in any order.

    ``kept`` (default: every input) are the streams of the inputs whose values
    :meth:`evaluate` and :meth:`summarise` hand back for sensitivity.
    """

    backend = "native"

    def __init__(
        self,
        model: Model,
        seed: int,
        sampling_method: str = "mc",
        threads: int | None = None,
        kept: tuple[int, ...] | None = None,
    ) -> None:
        if sampling_method not in SAMPLINGS:
            raise ValueError(f"sampling must be one of {SAMPLINGS}, got {sampling_method!r}")
        if not 0 <= seed <= rng.MAX_SEED:
            raise ValueError(f"seed must be in [0, 2**64), got {seed}")
        self.model, self.seed, self.sampling = model, seed, sampling_method
        self.threads = threads or os.cpu_count() or 1
        self.keep(tuple(range(len(model.inputs))) if kept is None else kept)
        source, self._data = native_source(model)
        self.library = build(source)
        self._lib = _load(self.library)

    def keep(self, kept: tuple[int, ...]) -> None:
        """Hand back the values of these inputs (streams) only."""
        self.kept = kept
        self._keep = np.array(kept, dtype=np.intc)

    @property
    def bytes_per_trial(self) -> int:
        """Memory ``evaluate`` allocates per trial: the outputs and kept inputs."""
        uniforms = len(self.model.inputs) if self.sampling == "lhs" else 0
        return 8 * (len(self.model.outputs) + len(self.kept) + uniforms)

    def _uniforms(self, first: int, count: int) -> np.ndarray | None:
        """Latin Hypercube uniforms, (inputs, count), or None: Monte Carlo draws them inside."""
        if self.sampling != "lhs":
            return None
        u = np.empty((len(self.model.inputs), count))
        for s in self.model.inputs:
            seed = self.seed if s.seed is None else s.seed
            u[s.stream] = sampling.lhs_uniforms(seed, s.stream, first, count)
        return u

    def _parallel(
        self, run: Callable[[tuple[int, int]], int], parts: list[tuple[int, int]]
    ) -> None:
        if len(parts) > 1:
            with ThreadPoolExecutor(len(parts)) as pool:
                codes = list(pool.map(run, parts))
        else:
            codes = [run(p) for p in parts]
        if any(codes):
            raise MemoryError("the native library could not allocate its scratch memory")

    def evaluate(
        self, first_trial: int, count: int
    ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """Per-trial float64 values of every output and kept input for ``[first_trial, +count)``."""
        if first_trial < 0 or count < 0:
            raise ValueError("first_trial and count must be non-negative")
        m = self.model
        y = np.empty((len(m.outputs), count))
        x = np.empty((len(self.kept), count))
        u = self._uniforms(first_trial, count)

        def run(part: tuple[int, int]) -> int:
            lo, hi = part
            at = lo - first_trial
            return int(
                self._lib.alea_values(
                    self.seed,
                    lo,
                    hi - lo,
                    _at(u, at),
                    count,
                    _at(y, at),
                    _at(x, at),
                    count,
                    _at(self._keep),
                    len(self._keep),
                    _at(self._data),
                )
            )

        self._parallel(run, _parts(first_trial, count, self.threads))
        return (
            {o.name: y[j] for j, o in enumerate(m.outputs)},
            {m.inputs[s].name: x[k] for k, s in enumerate(self.kept)},
        )

    def summarise(self, first_trial: int, count: int, options: StatsOptions) -> Partial:
        """The statistics of ``[first_trial, +count)`` in the sketch regime, computed in the
        evaluation loop: no per-trial array but the sketch keys (4 bytes an output)."""
        m = self.model
        nout = len(m.outputs)
        end = first_trial + count
        grid = convergence_grid(first_trial, end)
        tiles = range(first_trial - first_trial % _SEGMENT + _SEGMENT, end, _SEGMENT)
        bounds = np.unique(np.concatenate([[first_trial, end], grid, tiles])).astype(np.uint64)
        nseg = len(bounds) - 1
        moments = np.empty((nseg, nout, 5))
        extremes = np.empty((nseg, nout, 2))
        keys = np.empty((nout, count), dtype=np.intc)
        trials = self._candidates(first_trial, count, options.reservoir_size)
        cvals = np.empty((nout + len(self.kept), len(trials)))
        u = self._uniforms(first_trial, count)
        shift = 52 - bucket_bits(options.sketch_alpha)

        def run(part: tuple[int, int]) -> int:
            a, b = part  # segments [a, b)
            at = int(bounds[a]) - first_trial
            return int(
                self._lib.alea_summary(
                    self.seed,
                    _at(bounds, a),
                    b - a,
                    _at(u, at),
                    count,
                    _at(self._data),
                    _at(moments, a * nout * 5),
                    _at(extremes, a * nout * 2),
                    _at(keys, at),
                    count,
                    shift,
                    _at(trials),
                    len(trials),
                    _at(cvals),
                    len(trials),
                    _at(self._keep),
                    len(self._keep),
                )
            )

        self._parallel(run, _segment_parts(bounds, self.threads))
        self._lib.alea_fold(_at(moments), nseg)  # moments of segments 0..i, in trial order
        ends = bounds[1:].astype(np.int64)
        at_grid = np.isin(ends, grid)
        names = [f"o:{o.name}" for o in m.outputs] + [f"i:{m.inputs[s].name}" for s in self.kept]
        summary = ChunkSummary(
            first_trial=first_trial,
            count=count,
            outputs=tuple(o.name for o in m.outputs),
            inputs=tuple(m.inputs[s].name for s in self.kept),
            moments=moments[-1] if nseg else np.zeros((nout, 5)),
            extremes=np.stack([extremes[:, :, 0].min(axis=0), extremes[:, :, 1].max(axis=0)], 1),
            conv_t=ends[at_grid],
            conv_m=moments[at_grid],
            keys=keys,
            trials=trials,
            values=dict(zip(names, cvals, strict=True)),
        )
        return Partial.from_summary(summary, options)

    def _candidates(self, first: int, count: int, size: int) -> np.ndarray:
        """Trials that may be among the ``size`` smallest hashes of the chunk: those below a
        limit that leaves about ``2 size + 64`` of them, or every trial if that is too few."""
        limit = min(_MAX_HASH, (_MAX_HASH + 1) * (2 * size + 64) // max(count, 1))
        while True:
            cap = min(count, 3 * size + 256) if limit < _MAX_HASH else count
            out = np.empty(cap, dtype=np.longlong)
            found = int(self._lib.alea_candidates(first, count, limit, _at(out), cap))
            if found > cap:
                out = np.empty(found, dtype=np.longlong)
                self._lib.alea_candidates(first, count, limit, _at(out), found)
            if found >= min(size, count) or limit == _MAX_HASH:
                return out[:found].astype(np.int64)
            limit = _MAX_HASH


_MAX_HASH = 2**64 - 1


def _parts(first: int, count: int, threads: int) -> list[tuple[int, int]]:
    """``[first, first + count)`` cut into at most ``threads`` ranges of whole Philox blocks
    (the cut points are multiples of 4 trials, so no block is drawn twice)."""
    end = first + count
    blocks = (end + _BLOCK - 1) // _BLOCK - first // _BLOCK
    n = max(1, min(threads, blocks))
    cuts = [first] + [(first // _BLOCK + blocks * i // n) * _BLOCK for i in range(1, n)] + [end]
    return [(a, b) for a, b in itertools.pairwise(cuts) if b > a]


def _segment_parts(bounds: np.ndarray, threads: int) -> list[tuple[int, int]]:
    """The segments cut into at most ``threads`` runs of about equal trials."""
    nseg = len(bounds) - 1
    total = int(bounds[-1] - bounds[0])
    targets = [int(bounds[0]) + total * i // threads for i in range(1, threads)]
    cuts = [0, *np.searchsorted(bounds, targets).tolist(), nseg]
    return [(a, b) for a, b in itertools.pairwise(sorted(set(cuts))) if b > a]


def compile_native(
    model: Model,
    *,
    seed: int,
    sampling: str = "mc",
    threads: int | None = None,
    kept: tuple[int, ...] | None = None,
) -> NativeEvaluator:
    """Compile ``model`` for this CPU (cached); raises :class:`NativeUnavailable` without a C
    compiler. ``threads`` defaults to the number of CPUs; results do not depend on it."""
    return NativeEvaluator(model, seed, sampling, threads, kept)
