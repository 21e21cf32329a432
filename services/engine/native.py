"""The native CPU back end: the generated source, compiled by the system C compiler, in-process.

The source the CUDA kernel is generated from (:mod:`.cuda.codegen`) is plain C99 once its
CUDA qualifiers are macros (:mod:`.cuda.prelude`); :data:`DRIVER` adds the CPU loop. It is
compiled once per model at ``-O3`` into a shared library, cached under
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
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from services.runtime.config import alea_home

from . import rng, sampling
from .cuda.codegen import generate
from .ir import Model

__all__ = ["DRIVER", "NativeEvaluator", "NativeUnavailable", "available", "compile_native"]

SAMPLINGS = ("mc", "lhs")
_FLAGS = ("-std=gnu11", "-O3", "-fPIC", "-shared", "-w", "-ffp-contract=off", "-fno-math-errno")
_BLOCK = 4  # trials per Philox block

DRIVER = r"""
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
    key = hashlib.sha256("\0".join((source, *_FLAGS, _identity(cc))).encode()).hexdigest()
    folder = cache_dir()
    target = folder / f"{key}.so"
    if target.exists():
        return target
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{key[:16]}-", suffix=".so")
    os.close(fd)
    try:
        done = subprocess.run(
            [cc, *_FLAGS, "-o", tmp, "-x", "c", "-", "-lm"],
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


def _load(path: Path) -> ctypes.CDLL:
    with _lock:
        if path not in _libraries:
            lib = ctypes.CDLL(str(path))
            lib.alea_values.restype = ctypes.c_int
            lib.alea_values.argtypes = [
                ctypes.c_uint64,
                ctypes.c_uint64,
                ctypes.c_uint64,
                ctypes.c_void_p,
                ctypes.c_uint64,
                ctypes.c_void_p,
                ctypes.c_void_p,
                ctypes.c_uint64,
                ctypes.c_void_p,
                ctypes.c_int,
                ctypes.c_void_p,
            ]
            _libraries[path] = lib
        return _libraries[path]


def native_source(model: Model) -> tuple[str, np.ndarray]:
    """The C source of ``model``'s library (the generated source and :data:`DRIVER`) and the
    tables its quantiles read (constant parameters: computed once, here)."""
    generated = generate(model, tabulate=True)
    return generated.source + DRIVER, generated.data


def _address(a: np.ndarray | None) -> int | None:
    return None if a is None else int(a.ctypes.data)


class NativeEvaluator:
    """A model compiled to a native library; ``evaluate`` any trial range, in any order."""

    backend = "native"

    def __init__(
        self, model: Model, seed: int, sampling_method: str = "mc", threads: int | None = None
    ) -> None:
        if sampling_method not in SAMPLINGS:
            raise ValueError(f"sampling must be one of {SAMPLINGS}, got {sampling_method!r}")
        if not 0 <= seed <= rng.MAX_SEED:
            raise ValueError(f"seed must be in [0, 2**64), got {seed}")
        self.model, self.seed, self.sampling = model, seed, sampling_method
        self.threads = threads or os.cpu_count() or 1
        source, self._data = native_source(model)
        self.library = build(source)
        self._lib = _load(self.library)

    def _uniforms(self, first: int, count: int) -> np.ndarray:
        """Latin Hypercube uniforms, (inputs, count): they need a sort per block of trials."""
        u = np.empty((len(self.model.inputs), count))
        for s in self.model.inputs:
            seed = self.seed if s.seed is None else s.seed
            u[s.stream] = sampling.lhs_uniforms(seed, s.stream, first, count)
        return u

    def evaluate(
        self, first_trial: int, count: int
    ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """Per-trial float64 values of every output and input for ``[first_trial, +count)``."""
        if first_trial < 0 or count < 0:
            raise ValueError("first_trial and count must be non-negative")
        m = self.model
        y = np.empty((len(m.outputs), count))
        x = np.empty((len(m.inputs), count))
        keep = np.arange(len(m.inputs), dtype=np.intc)
        u = self._uniforms(first_trial, count) if self.sampling == "lhs" else None

        def run(part: tuple[int, int]) -> int:
            lo, hi = part
            offset = lo - first_trial
            return int(
                self._lib.alea_values(
                    self.seed,
                    lo,
                    hi - lo,
                    None if u is None else _address(u) + 8 * offset,  # type: ignore[operator]
                    count,
                    _address(y) + 8 * offset,  # type: ignore[operator]
                    _address(x) + 8 * offset,  # type: ignore[operator]
                    count,
                    _address(keep),
                    len(keep),
                    _address(self._data),
                )
            )

        parts = _parts(first_trial, count, self.threads)
        if len(parts) > 1:
            with ThreadPoolExecutor(len(parts)) as pool:
                codes = list(pool.map(run, parts))
        else:
            codes = [run(p) for p in parts]
        if any(codes):
            raise MemoryError("the native library could not allocate its scratch memory")
        return (
            {o.name: y[j] for j, o in enumerate(m.outputs)},
            {s.name: x[s.stream] for s in m.inputs},
        )


def _parts(first: int, count: int, threads: int) -> list[tuple[int, int]]:
    """``[first, first + count)`` cut into at most ``threads`` ranges of whole Philox blocks
    (the cut points are multiples of 4 trials, so no block is drawn twice)."""
    end = first + count
    blocks = (end + _BLOCK - 1) // _BLOCK - first // _BLOCK
    n = max(1, min(threads, blocks))
    cuts = [first] + [(first // _BLOCK + blocks * i // n) * _BLOCK for i in range(1, n)] + [end]
    return [(a, b) for a, b in itertools.pairwise(cuts) if b > a]


def compile_native(
    model: Model, *, seed: int, sampling: str = "mc", threads: int | None = None
) -> NativeEvaluator:
    """Compile ``model`` for this CPU (cached); raises :class:`NativeUnavailable` without a C
    compiler. ``threads`` defaults to the number of CPUs; results do not depend on it."""
    return NativeEvaluator(model, seed, sampling, threads)
