"""The native CPU back end: the generated source, compiled by the system C compiler, in-process.

The source the CUDA kernel is generated from (:mod:`.cuda.codegen`) is plain C99 once its
CUDA qualifiers are macros (:mod:`.cuda.prelude`); :data:`DRIVER` adds the CPU loop. It is
compiled once per model at ``-O3`` (``x86-64-v3`` where the host has it; a long model's
pieces, :mod:`.cuda.pieces`, as units of their own at ``-O1`` on every CPU, :mod:`.cunits`,
so the build is linear in the model's size) into a shared library, cached under
``$ALEA_HOME/cache/native/<sha256>.so`` (the hash covers the source, the flags and the
compiler), and called through ``ctypes``, which releases the GIL: a chunk is cut into
contiguous ranges of whole Philox blocks, one per CPU thread, all running at once (fewer
where their tiles would outgrow the back end's share of the memory budget, :mod:`.memory`).

Each thread runs its trials in tiles of up to 1,024 (:func:`tile_size`: the tile's inputs
and outputs stay in cache): Philox words for every input stream, two blocks at a time →
uniforms → the columns' transforms (inputs of constant parameters outside a copula, a loop
per input over the tile, vectorised where the quantile allows) → the trial function per
trial (copula, the other inputs, the model's formulas) → outputs, and statistics per
segment. Trial ``t`` draws the same uniforms as in every other back end, and its values
depend on nothing else, so results are bit-identical for any chunking and thread count.
Where no compiler exists, :func:`available` says why (the caller falls back to the NumPy
back end and logs it).
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import itertools
import os
import platform
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from services.runtime.config import alea_home

from . import rng, summary, uniforms
from .cuda.codegen import generate
from .cunits import compile_library
from .ir import Model
from .stats import (
    Buckets,
    Partial,
    StatsOptions,
    bucket_bits,
)

__all__ = ["DRIVER", "NativeEvaluator", "NativeUnavailable", "available", "compile_native"]

SAMPLINGS = uniforms.SAMPLINGS
# -Wl,--no-undefined: a C function the source calls but nobody defines fails the build
# (a shared library would otherwise build and fail only when loaded).
_FLAGS = (
    "-std=gnu11",
    "-fPIC",
    "-shared",
    "-w",
    "-ffp-contract=off",
    "-fno-math-errno",
    "-fno-trapping-math",
    "-Wl,--no-undefined",
)
_O3_LINES = 4000  # beyond, -O1 on one CPU: twice as fast to build (see cunits for more)
_BLOCK = 4  # trials per Philox block

DRIVER = (
    r"""
#include <float.h>
#include <limits.h>
#include <stdlib.h>
"""
    + summary.SOURCE
    + r"""

/* The words of Philox4x64-10 for the counters (c, 0, 0, 0) and (c + 1, 0, 0, 0) (alea_philox's)
   stored as they are into out[0 .. 7]: the multiplications of one block fill the latency of
   the other's; word by word, as alea_fill reads them back. */
static inline void alea_philox2(u64 c, u64 k0, u64 k1, double* out) {
  u64 a0 = c, a1 = 0, a2 = 0, a3 = 0, b0 = c + 1, b1 = 0, b2 = 0, b3 = 0;
  for (int r = 0; r < 10; ++r) {
    if (r) { k0 += 0x9E3779B97F4A7C15ULL; k1 += 0xBB67AE8584CAA73BULL; }
    u64 ha, hb, hc, hd;
    u64 la = alea_mul128(0xD2E7470EE14C6C93ULL, a0, &ha);
    u64 lc = alea_mul128(0xCA5A826395121157ULL, a2, &hc);
    u64 lb = alea_mul128(0xD2E7470EE14C6C93ULL, b0, &hb);
    u64 ld = alea_mul128(0xCA5A826395121157ULL, b2, &hd);
    a0 = hc ^ a1 ^ k0; a2 = ha ^ a3 ^ k1; a1 = lc; a3 = la;
    b0 = hd ^ b1 ^ k0; b2 = hb ^ b3 ^ k1; b1 = ld; b3 = lb;
  }
  u64 w[8] = {a0, a1, a2, a3, b0, b1, b2, b3};
  for (int k = 0; k < 8; ++k) memcpy(out + k, w + k, sizeof(u64));
}

/* The uniforms of Philox blocks [b0, b1) (trials 4 b0 .. 4 b1 - 1) of every input: trial t
   of input s at xs[s * ALEA_TILE + t - 4 b0]. The words are stored first, then turned into
   uniforms by a loop the compiler vectorises; an input that draws from an earlier stream
   with the same key copies its row; a RiskResample of method 1 or 3 takes its positions. */
static void alea_fill(u64 seed, u64 b0, u64 b1, double* xs) {
  for (int s = 0; s < ALEA_INPUTS; ++s) {
    u64 key = alea_key(seed, s), source = alea_source(s), b = b0;
    double* row = xs + (u64)s * ALEA_TILE;
    if (alea_resampled(s)) {
      for (u64 t = 0; t < 4 * (b1 - b0); ++t) row[t] = alea_position(seed, s, 4 * b0 + t);
      continue;
    }
    if (source < (u64)s && alea_key(seed, (int)source) == key) {  /* a copy (RiskSimtable) */
      memcpy(row, xs + source * ALEA_TILE, 4 * (b1 - b0) * sizeof(double));
      continue;
    }
    for (; b + 2 <= b1; b += 2) alea_philox2(b, key, source, row + 4 * (b - b0));
    if (b < b1) {
      u64 w[4];
      alea_philox(b, 0, key, source, w);
      for (int k = 0; k < 4; ++k) memcpy(row + 4 * (b - b0) + k, w + k, sizeof(u64));
    }
    for (u64 t = 0; t < 4 * (b1 - b0); ++t) {  /* alea_unit: 2^52 + (w >> 12), exactly, - 2^52 */
      union { u64 u; double d; } word;
      memcpy(&word.u, row + t, sizeof(u64));
      word.u = (word.u >> 12) | 0x4330000000000000ULL;
      row[t] = ((word.d - 0x1p52) + 0.5) * 0x1p-52;
    }
  }
}

/* Trials [lo, hi) of the tile of trials base .. base + ALEA_TILE - 1 (base = lo rounded down
   to a Philox block): uniforms (drawn, or given: row s of u at u + s * ustride, trial t at
   column t - origin) → the columns' transforms → the trial function, each trial's inputs and
   outputs at column t - base of xs and ys (rows of ALEA_TILE). */
static void alea_tile(u64 seed, u64 lo, u64 hi, const double* u, u64 ustride, u64 origin,
                      double* xs, double* ys, const double* q) {
  u64 base = lo - lo % 4, at = lo - base, n = hi - lo;
  if (u) {
    for (int s = 0; s < ALEA_INPUTS; ++s)
      memcpy(xs + (u64)s * ALEA_TILE + at, u + s * ustride + (lo - origin), n * sizeof(double));
  } else {
    alea_fill(seed, base / 4, (hi + 3) / 4, xs);
  }
  alea_columns(xs + at, ALEA_TILE, n, q);
  for (u64 i = at; i < at + n; ++i) alea_trial(xs + i, ys + i, ALEA_TILE, q);
}

static u64 alea_tile_end(u64 lo, u64 end) {  /* where the tile starting at lo ends */
  u64 last = lo - lo % 4 + ALEA_TILE;
  return last < end ? last : end;
}

/* Trials [first, first + count): outputs into y (row j at y + j * stride), the inputs listed
   in keep into x (row k at x + k * stride). u: uniforms given (Latin Hypercube), row s at
   u + s * ustride, or NULL to draw them here; q: the quantile tables (CudaSource.data).
   Returns 0, or -1 if out of memory. */
int alea_values(u64 seed, u64 first, u64 count, const double* u, u64 ustride, double* y,
                double* x, u64 stride, const int* keep, int nkeep, const double* q) {
  double* xs = (double*)malloc(sizeof(double) * ALEA_TILE * (ALEA_INPUTS + 1));
  double* ys = (double*)malloc(sizeof(double) * ALEA_TILE * (ALEA_OUTPUTS + 1));
  if (!xs || !ys) { free(xs); free(ys); return -1; }
  u64 end = first + count;
  for (u64 lo = first; lo < end;) {
    u64 hi = alea_tile_end(lo, end), at = lo % 4, n = (hi - lo) * sizeof(double);
    alea_tile(seed, lo, hi, u, ustride, first, xs, ys, q);
    for (int j = 0; j < ALEA_OUTPUTS; ++j)
      memcpy(y + j * stride + (lo - first), ys + (u64)j * ALEA_TILE + at, n);
    for (int k = 0; k < nkeep; ++k)
      memcpy(x + k * stride + (lo - first), xs + (u64)keep[k] * ALEA_TILE + at, n);
    lo = hi;
  }
  free(xs);
  free(ys);
  return 0;
}

/* ---- statistics in the loop (stats.ChunkSummary; summary.SOURCE): per segment, moments
   (n, mean, M2, M3, M4 of the finite values, two passes over the segment's values in cache),
   min and max, the sketch key of every value, and the values of the reservoir's candidate
   trials */

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

/* Segments [bounds[i], bounds[i + 1]) for i < nseg, each at most ALEA_SEGMENT trials:
   moments into moments + (i * ALEA_OUTPUTS + j) * 5, min and max into extremes + (i *
   ALEA_OUTPUTS + j) * 2, the key of trial t into keys[j * kstride + (t - bounds[0])] and
   the least and greatest keys of positive values and, negated, of negative ones into
   spans[4 j .. 4 j + 3] (INT_MAX, 0 when there are none); candidate r (cand ascending)
   has output j at cvals[j * cstride + r] and kept input k at cvals[(ALEA_OUTPUTS + k) *
   cstride + r]. Returns 0, or -1 if out of memory. */
int alea_summary(u64 seed, const u64* bounds, long nseg, const double* u, u64 ustride,
                 const double* q, double* moments, double* extremes, int* keys, u64 kstride,
                 int shift, int* spans, const long long* cand, long ncand, double* cvals,
                 u64 cstride, const int* keep, int nkeep) {
  double* xs = (double*)malloc(sizeof(double) * ALEA_TILE * (ALEA_INPUTS + 1));
  double* ys = (double*)malloc(sizeof(double) * ALEA_TILE * (ALEA_OUTPUTS + 1));
  double* seg = (double*)malloc(sizeof(double) * ALEA_SEGMENT * (ALEA_OUTPUTS + 1));
  if (!xs || !ys || !seg) { free(xs); free(ys); free(seg); return -1; }
  u64 origin = bounds[0];
  long r = 0;
  while (r < ncand && (u64)cand[r] < origin) ++r;
  for (int j = 0; j < ALEA_OUTPUTS; ++j) {
    int* span = spans + 4 * j;
    span[0] = INT_MAX; span[1] = 0; span[2] = INT_MAX; span[3] = 0;
  }
  for (long i = 0; i < nseg; ++i) {
    u64 first = bounds[i], end = bounds[i + 1], len = end - first;
    for (u64 lo = first; lo < end;) {
      u64 hi = alea_tile_end(lo, end), base = lo - lo % 4;
      alea_tile(seed, lo, hi, u, ustride, origin, xs, ys, q);
      for (int j = 0; j < ALEA_OUTPUTS; ++j)
        memcpy(seg + j * ALEA_SEGMENT + (lo - first), ys + (u64)j * ALEA_TILE + (lo - base),
               (hi - lo) * sizeof(double));
      for (; r < ncand && (u64)cand[r] < hi; ++r) {
        u64 at = (u64)cand[r] - base;
        for (int j = 0; j < ALEA_OUTPUTS; ++j) cvals[j * cstride + r] = ys[j * ALEA_TILE + at];
        for (int k = 0; k < nkeep; ++k)
          cvals[(ALEA_OUTPUTS + k) * cstride + r] = xs[(u64)keep[k] * ALEA_TILE + at];
      }
      lo = hi;
    }
    for (int j = 0; j < ALEA_OUTPUTS; ++j) {
      const double* v = seg + j * ALEA_SEGMENT;
      long at = (i * ALEA_OUTPUTS + j);
      alea_moments(v, (long)len, moments + at * 5, extremes + at * 2);
      alea_keys(v, (long)len, shift, keys + j * kstride + (first - origin), spans + 4 * j);
    }
  }
  free(xs);
  free(ys);
  free(seg);
  return 0;
}

/* Counts of one output's n keys (alea_key_of): key k > 0 into pos[k - pmin], key k < 0 into
   neg[-k - nmin]; returns the number of zeros. */
long alea_key_counts(const int* keys, long n, int pmin, long long* pos, int nmin, long long* neg) {
  long zeros = 0;
  for (long i = 0; i < n; ++i) {
    int k = keys[i];
    if (k > 0) ++pos[k - pmin];
    else if (k < 0 && k != INT32_MIN) ++neg[-k - nmin];
    else zeros += k == 0;
  }
  return zeros;
}

/* In place, for every output: moments of segment i become those of segments 0 .. i (the
   pairwise update of stats._combine, in trial order). */
void alea_fold(double* moments, long nseg) {
  for (long i = 1; i < nseg; ++i)
    for (int j = 0; j < ALEA_OUTPUTS; ++j)
      alea_combine(moments + ((i - 1) * ALEA_OUTPUTS + j) * 5,
                   moments + (i * ALEA_OUTPUTS + j) * 5);
}
"""
)


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


# x86-64-v3 (AVX2, BMI2, FMA...; -ffp-contract=off keeps multiplications and additions apart,
# so the bits are those of the baseline build): the Philox multiplications and the vectorised
# loops run about 20% faster. Its flags as /proc/cpuinfo names them.
_X86_64_V3 = frozenset({"avx", "avx2", "bmi1", "bmi2", "f16c", "fma", "abm", "movbe", "xsave"})


@functools.lru_cache(maxsize=8)
def _isa(cc: str) -> tuple[str, ...]:
    """``-march=x86-64-v3`` where this CPU has every instruction of the level and ``cc`` knows
    it, else nothing (the baseline of the platform). Part of the cache key: a library built on
    one host is never loaded on a host that lacks its instructions."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return ()
    flags = next(
        (line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")),
        [],
    )
    if platform.machine() != "x86_64" or not _X86_64_V3.issubset(flags):
        return ()
    try:
        done = subprocess.run(
            [cc, "-march=x86-64-v3", "-E", "-x", "c", "-"],
            input="",
            capture_output=True,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired):
        return ()
    return ("-march=x86-64-v3",) if done.returncode == 0 else ()


def cache_dir() -> Path:
    """Where compiled libraries are kept: ``$ALEA_HOME/cache/native``."""
    return alea_home() / "cache" / "native"


def _compiler() -> str:
    cc = compiler()
    if cc is None:
        raise NativeUnavailable(available() or "no C compiler")
    return cc


def build(source: str, stem: str | None = None) -> Path:
    """The shared library of ``source``, compiled once and cached under the hash of the
    source, the flags and the compiler (or under ``stem``, see :func:`library`).

    Concurrent builders (workers sharing ``$ALEA_HOME``) each compile to a private temporary
    file and rename it into place atomically, so a reader never sees a partial library.
    """
    cc = _compiler()
    flags = (*_FLAGS, *_isa(cc), "-O3" if source.count("\n") <= _O3_LINES else "-O1")
    if stem is None:
        stem = hashlib.sha256("\0".join((source, *flags, _identity(cc))).encode()).hexdigest()
    folder = cache_dir()
    target = folder / f"{stem}.so"
    if target.exists():
        return target
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{stem[:16]}-", suffix=".so")
    os.close(fd)
    try:
        failed = compile_library(cc, flags, source, tmp)
        if failed is not None:
            raise NativeUnavailable(f"the C compiler failed: {failed}")
        os.replace(tmp, target)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return target


def library(model: Model, key: str | None = None) -> tuple[Path, np.ndarray]:
    """The library of ``model`` and the tables its quantiles read.

    With ``key`` (a hash of the model's stored form, e.g. of ``serial.dump_model``), both are
    found in the cache without generating the source (a cached build in milliseconds); the
    cache name also covers the engine's own code and the compiler, so an upgrade rebuilds.
    """
    stem = None
    if key is not None:
        cc = _compiler()
        parts = (key, _engine_fingerprint(), _identity(cc), *_isa(cc))
        stem = hashlib.sha256("\0".join(parts).encode()).hexdigest()
        path, tables = cache_dir() / f"{stem}.so", cache_dir() / f"{stem}.npy"
        if path.exists() and tables.exists():
            return path, np.load(tables, allow_pickle=False)
    source, data = native_source(model)
    if stem is not None:
        _save_atomically(cache_dir() / f"{stem}.npy", data)
    return build(source, stem), data


@functools.lru_cache(maxsize=1)
def _engine_fingerprint() -> str:
    """A hash of the engine's code (codegen, the Excel registry's C, the distributions'
    tables, this driver...): any change to the engine, new libraries."""
    package = Path(__file__).parent
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*.py")):
        digest.update(str(path.relative_to(package)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def _save_atomically(path: Path, data: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem[:16]}-", suffix=".npy")
    try:
        with os.fdopen(fd, "wb") as out:
            np.save(out, data, allow_pickle=False)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


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
            _PTR,
            _LONG,
            _PTR,
            _U64,
            _PTR,
            _INT,
        ],
    ),
    "alea_fold": (None, [_PTR, _LONG]),
    "alea_key_counts": (_LONG, [_PTR, _LONG, _INT, _PTR, _INT, _PTR]),
}


def _load(path: Path) -> ctypes.CDLL:
    with _lock:
        if path not in _libraries:
            try:
                lib = ctypes.CDLL(str(path))
            except OSError as exc:
                raise NativeUnavailable(f"the compiled library does not load: {exc}") from None
            for name, (restype, argtypes) in _SIGNATURES.items():
                function = getattr(lib, name)
                function.restype, function.argtypes = restype, argtypes
            _libraries[path] = lib
        return _libraries[path]


def native_source(model: Model) -> tuple[str, np.ndarray]:
    """The C source of ``model``'s library (the generated source and :data:`DRIVER`) and the
    tables its quantiles read (constant parameters: computed once, here)."""
    generated = generate(model, tabulate=True, columns=True)
    tile = f"#define ALEA_TILE {tile_size(len(model.inputs), len(model.outputs))}\n"
    return generated.source + tile + DRIVER, generated.data


_TILE_BYTES = 256 * 1024  # a thread's tile of inputs and outputs: within its L2 cache
_MAX_TILE = 1024


def tile_size(inputs: int, outputs: int) -> int:
    """Trials per tile: a multiple of 4 (whole Philox blocks), from 4 for the widest models
    to 1024 for narrow ones, so that the rows of its inputs and outputs fit ``_TILE_BYTES``."""
    fit = _TILE_BYTES // (8 * (inputs + outputs + 2))
    return max(4, min(_MAX_TILE, fit - fit % 4))


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
        key: str | None = None,
    ) -> None:
        if sampling_method not in SAMPLINGS:
            raise ValueError(f"sampling must be one of {SAMPLINGS}, got {sampling_method!r}")
        if not 0 <= seed <= rng.MAX_SEED:
            raise ValueError(f"seed must be in [0, 2**64), got {seed}")
        self.model, self.seed, self.sampling = model, seed, sampling_method
        self.threads_asked = threads or os.cpu_count() or 1
        self.threads = self.threads_asked
        self.keep(tuple(range(len(model.inputs))) if kept is None else kept)
        self.library, self._data = library(model, key)
        self._lib = _load(self.library)

    def keep(self, kept: tuple[int, ...]) -> None:
        """Hand back the values of these inputs (streams) only."""
        self.kept = kept
        self._keep = np.array(kept, dtype=np.intc)

    @property
    def scratch_per_thread(self) -> int:
        """Bytes each thread's loop allocates: its tile's inputs and outputs (``alea_values``,
        ``alea_summary``) and a segment's outputs (``alea_summary``). A tile holds 4 trials at
        least (a Philox block), so a wide model's is about 32 bytes an input."""
        inputs, outputs = len(self.model.inputs), len(self.model.outputs)
        tile = tile_size(inputs, outputs)
        return 8 * (tile * (inputs + outputs + 2) + summary.SEGMENT * (outputs + 1))

    def fit_threads(self, limit: int) -> None:
        """Run on as many of the threads asked for as hold at most ``limit`` bytes of scratch
        in all (one at least): on many CPUs, a wide model's tiles would otherwise outgrow the
        memory budget. Results do not depend on the threads."""
        self.threads = max(1, min(self.threads_asked, limit // self.scratch_per_thread))

    @property
    def bytes_per_trial(self) -> int:
        """Memory ``evaluate`` allocates per trial: the outputs and kept inputs."""
        given = len(self.model.inputs) if self.sampling != "mc" else 0
        return 8 * (len(self.model.outputs) + len(self.kept) + given)

    def _uniforms(self, first: int, count: int) -> np.ndarray | None:
        """Latin Hypercube or Sobol uniforms, (inputs, count), or None: Monte Carlo draws
        them inside."""
        return uniforms.host(self.model, self.seed, self.sampling, first, count)

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
        bounds = summary.segment_bounds(first_trial, count)
        nseg = len(bounds) - 1
        moments = np.empty((nseg, nout, 5))
        extremes = np.empty((nseg, nout, 2))
        keys = np.empty((nout, count), dtype=np.intc)
        trials = self._candidates(first_trial, count, options.reservoir_size)
        cvals = np.empty((nout + len(self.kept), len(trials)))
        u = self._uniforms(first_trial, count)
        shift = 52 - bucket_bits(options.sketch_alpha)
        parts = _segment_parts(bounds, self.threads)
        spans = np.empty((len(parts), nout, 4), dtype=np.intc)

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
                    _at(spans, parts.index(part) * nout * 4),
                    _at(trials),
                    len(trials),
                    _at(cvals),
                    len(trials),
                    _at(self._keep),
                    len(self._keep),
                )
            )

        self._parallel(run, parts)
        self._lib.alea_fold(_at(moments), nseg)  # moments of segments 0..i, in trial order
        span = summary.joined_spans(spans)

        def sketch(j: int) -> tuple[Buckets, Buckets, int]:
            return summary.buckets(span[j], self._key_counter(keys[j]), lambda: keys[j])

        sketches = tuple(sketch(j) for j in range(nout))
        names = tuple(o.name for o in m.outputs), tuple(m.inputs[s].name for s in self.kept)
        return summary.chunk_partial(
            *names, bounds, moments, extremes, sketches, trials, cvals, options
        )

    def _candidates(self, first: int, count: int, size: int) -> np.ndarray:
        """Trials that may be among the ``size`` smallest hashes of the chunk: those below a
        limit that leaves about ``2 size + 64`` of them, or every trial if that is too few."""
        limit = summary.candidate_limit(count, size)
        if limit is not None:
            found: dict[tuple[int, int], np.ndarray] = {}

            def run(part: tuple[int, int]) -> int:
                lo, hi = part
                out = np.empty(min(hi - lo, 3 * size + 256), dtype=np.longlong)
                n = int(self._lib.alea_candidates(lo, hi - lo, limit, _at(out), out.size))
                if n > out.size:
                    out = np.empty(n, dtype=np.longlong)
                    self._lib.alea_candidates(lo, hi - lo, limit, _at(out), n)
                found[part] = out[:n]
                return 0

            parts = _parts(first, count, self.threads)
            self._parallel(run, parts)
            trials = np.concatenate([found[p] for p in parts]).astype(np.int64)
            if trials.size >= min(size, count):
                return trials
        return np.arange(first, first + count, dtype=np.int64)

    def _key_counter(
        self, keys: np.ndarray
    ) -> Callable[[int, int, int, int], tuple[np.ndarray, np.ndarray, int]]:
        """Counts one output's keys into dense arrays (``summary.buckets``'s ``count_dense``)."""

        def count(pmin: int, npos: int, nmin: int, nneg: int) -> tuple[np.ndarray, np.ndarray, int]:
            pos = np.zeros(npos, dtype=np.longlong)
            neg = np.zeros(nneg, dtype=np.longlong)
            zeros = self._lib.alea_key_counts(_at(keys), keys.size, pmin, _at(pos), nmin, _at(neg))
            return pos, neg, int(zeros)

        return count


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
    key: str | None = None,
) -> NativeEvaluator:
    """Compile ``model`` for this CPU (cached); raises :class:`NativeUnavailable` without a C
    compiler. ``threads`` defaults to the number of CPUs; results do not depend on it.
    ``key``: a hash of the model's stored form, to find its library without generating it."""
    return NativeEvaluator(model, seed, sampling, threads, kept, key)
