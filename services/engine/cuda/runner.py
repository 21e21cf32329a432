"""Run generated CUDA source with PyCUDA: compile once per model, launch per chunk.

``compile_cuda(model, seed=..., sampling=...)`` returns an evaluator with the backend
protocol of ``numpy_backend`` (``backend == "gpu"``, ``evaluate(first_trial, count)``).
Monte Carlo uniforms are drawn in the kernel (Philox, the same bits as ``rng.py``); Latin
Hypercube uniforms (a sort over blocks of 65,536 trials) and Sobol points are computed on the
host by :mod:`..uniforms` and uploaded. The Gaussian copula always runs in the kernel.
``summarise`` computes a chunk's statistics on the GPU too (:data:`SUMMARY`, the native back
end's C of :mod:`..summary`), so only moments, sketch counts and the reservoir's candidates
come back to the host, not every trial's values.

PyCUDA is optional: without it (or without a device) :func:`gpu_available` is False and
nothing here is imported by the CPU path. The primary context of device 0 is pushed around
every call, so an evaluator may be used from any thread, one call at a time.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from .. import rng, summary, uniforms
from ..ir import Model
from ..stats import Buckets, Partial, StatsOptions, bucket_bits
from .codegen import CudaSource, generate

__all__ = ["CudaEvaluator", "compile_cuda", "context", "devices", "gpu_available"]

_BLOCK = 128  # threads per block; each thread takes 4 trials per Philox block
_lock = threading.Lock()
_modules: dict[str, Any] = {}  # source key → compiled module (per process, device 0)
_context: Any = None
_pool: Any = None  # device memory kept for reuse between chunks


# The statistics of a chunk whose values are on the GPU: one thread per segment and output
# (moments, min and max, keys), the segments folded in trial order per output, the keys
# counted into the sketch's dense buckets, the reservoir's candidates found and gathered.
SUMMARY = (
    r"""
#include <cfloat>
#include <climits>
#include <cmath>
#include <cstdint>
typedef unsigned long long u64;
"""
    + summary.SOURCE
    + r"""
extern "C" __global__ void alea_segments(const double* y, u64 stride, const u64* bounds,
                                         long nseg, int nout, int shift, double* moments,
                                         double* extremes, int* keys, int* spans) {
  long id = (long)blockIdx.x * blockDim.x + threadIdx.x;  /* segment id / nout, output id % nout */
  if (id >= nseg * nout) return;
  long i = id / nout;
  int j = (int)(id % nout);
  u64 at = bounds[i] - bounds[0], len = bounds[i + 1] - bounds[i];
  const double* v = y + j * stride + at;
  alea_moments(v, (long)len, moments + id * 5, extremes + id * 2);
  int* span = spans + id * 4;
  span[0] = INT_MAX; span[1] = 0; span[2] = INT_MAX; span[3] = 0;
  alea_keys(v, (long)len, shift, keys + j * stride + at, span);
}

extern "C" __global__ void alea_fold(double* moments, long nseg, int nout) {
  int j = blockIdx.x * blockDim.x + threadIdx.x;
  if (j >= nout) return;
  for (long i = 1; i < nseg; ++i)
    alea_combine(moments + ((i - 1) * nout + j) * 5, moments + (i * nout + j) * 5);
}

extern "C" __global__ void alea_count_keys(const int* keys, long n, int pmin, u64* pos,
                                           int nmin, u64* neg, u64* zeros) {
  for (long i = (long)blockIdx.x * blockDim.x + threadIdx.x; i < n;
       i += (long)gridDim.x * blockDim.x) {
    int k = keys[i];
    if (k > 0) atomicAdd(pos + (k - pmin), 1ULL);
    else if (k < 0 && k != INT32_MIN) atomicAdd(neg + (-k - nmin), 1ULL);
    else if (k == 0) atomicAdd(zeros, 1ULL);
  }
}

extern "C" __global__ void alea_candidates(u64 first, u64 count, u64 limit, long long* out,
                                           u64* found, u64 cap) {
  for (u64 t = (u64)blockIdx.x * blockDim.x + threadIdx.x; t < count;
       t += (u64)gridDim.x * blockDim.x)
    if (alea_hash(first + t) <= limit) {
      u64 at = atomicAdd(found, 1ULL);
      if (at < cap) out[at] = (long long)(first + t);
    }
}

extern "C" __global__ void alea_gather(const double* y, const double* x, u64 stride, u64 origin,
                                       int nout, const int* keep, int nkeep,
                                       const long long* cand, long ncand, double* cvals) {
  long id = (long)blockIdx.x * blockDim.x + threadIdx.x;  /* row id / ncand, candidate id % ncand */
  if (id >= (nout + nkeep) * ncand) return;
  long row = id / ncand;
  u64 t = (u64)cand[id % ncand] - origin;
  cvals[id] = row < nout ? y[row * stride + t] : x[(u64)keep[row - nout] * stride + t];
}
"""
)


def gpu_available() -> bool:
    """True when PyCUDA imports and sees at least one CUDA device; never raises."""
    try:
        import pycuda.driver as drv

        drv.init()
        return bool(drv.Device.count() > 0)
    except Exception:  # no pycuda, no libcuda, no device, driver mismatch: all mean "no"
        return False


def devices() -> list[dict[str, Any]]:
    """The CUDA devices seen (name, memory in bytes, compute capability); [] when none."""
    if not gpu_available():
        return []
    import pycuda.driver as drv

    out = []
    for i in range(drv.Device.count()):
        d = drv.Device(i)
        major, minor = d.compute_capability()
        out.append(
            {
                "index": i,
                "name": d.name(),
                "memory_bytes": int(d.total_memory()),
                "compute_capability": f"{major}.{minor}",
            }
        )
    return out


class context:
    """The primary context of device 0, current for the duration of a ``with`` block."""

    def __enter__(self) -> Any:
        global _context
        import pycuda.driver as drv

        with _lock:
            if _context is None:
                drv.init()
                _context = drv.Device(0).retain_primary_context()
        _context.push()
        return _context

    def __exit__(self, *exc: object) -> None:
        import pycuda.driver as drv

        drv.Context.pop()


def _module(src: CudaSource) -> Any:
    from pycuda.compiler import SourceModule

    with _lock:
        if src.key not in _modules:
            _modules[src.key] = SourceModule(src.source, no_extern_c=True, options=["-w"])
        return _modules[src.key]


def _summary_module() -> Any:
    """:data:`SUMMARY`, built once per process; without contractions into FMA, as the native
    back end builds the same C (``-ffp-contract=off``)."""
    from pycuda.compiler import SourceModule

    with _lock:
        if "summary" not in _modules:
            _modules["summary"] = SourceModule(
                SUMMARY, no_extern_c=True, options=["-w", "--fmad=false"]
            )
        return _modules["summary"]


def _allocate(nbytes: int) -> Any:
    """Device memory from a pool: a chunk's arrays reuse the last chunk's (``cuMemAlloc`` and
    ``cuMemFree`` per array cost more than a small chunk's kernels). Call inside ``context``."""
    global _pool
    from pycuda.tools import DeviceMemoryPool

    with _lock:
        if _pool is None:
            _pool = DeviceMemoryPool()
    return _pool.allocate(nbytes)


def _empty(shape: Any, dtype: Any) -> Any:
    import pycuda.gpuarray as gpuarray

    return gpuarray.empty(shape, dtype, allocator=_allocate)


def _zeros(shape: Any, dtype: Any) -> Any:
    import pycuda.gpuarray as gpuarray

    return gpuarray.zeros(shape, dtype, allocator=_allocate)


def _to_gpu(values: Any) -> Any:
    import pycuda.gpuarray as gpuarray

    return gpuarray.to_gpu(values, allocator=_allocate)


def _grid(n: int, block: int) -> tuple[int, int]:
    """Blocks enough for ``n`` threads of ``block`` (at least one)."""
    return (max(1, -(-n // block)), 1)


class CudaEvaluator:
    """A model compiled for the GPU; ``evaluate`` any trial range, in any order."""

    backend = "gpu"

    def __init__(self, model: Model, seed: int, sampling_method: str = "mc") -> None:
        if sampling_method not in uniforms.SAMPLINGS:
            raise ValueError(
                f"sampling must be one of {uniforms.SAMPLINGS}, got {sampling_method!r}"
            )
        if not 0 <= seed <= rng.MAX_SEED:
            raise ValueError(f"seed must be in [0, 2**64), got {seed}")
        self.model, self.seed, self.sampling = model, seed, sampling_method
        self.kept = tuple(range(len(model.inputs)))
        self.source = generate(model)
        with context():
            self._kernel = _module(self.source).get_function("alea_kernel")

    def keep(self, kept: tuple[int, ...]) -> None:
        """Hand back the values of these inputs (streams) only."""
        self.kept = kept

    @property
    def bytes_per_trial(self) -> int:
        """Host memory ``evaluate`` needs per trial: every input and output comes back."""
        return 8 * 2 * (len(self.model.inputs) + len(self.model.outputs))

    def launch(self, first_trial: int, count: int) -> tuple[Any, Any]:
        """Run the kernel for ``count >= 1`` trials; (inputs, outputs) as device arrays of
        shape (rows, count), left on the GPU. Call inside ``with context():``."""
        import pycuda.driver as drv

        ni, no = len(self.source.inputs), len(self.source.outputs)
        given = uniforms.host(self.model, self.seed, self.sampling, first_trial, count)
        draw = given is None
        x = _empty((max(ni, 1), count), np.float64) if draw or not ni else _to_gpu(given)
        y = _empty((max(no, 1), count), np.float64)
        blocks = (first_trial + count + 3) // 4 - first_trial // 4
        device = drv.Context.get_device()
        sms = device.get_attribute(drv.device_attribute.MULTIPROCESSOR_COUNT)
        grid = max(1, min(-(-blocks // _BLOCK), sms * 64))
        self._kernel(
            np.uint64(self.seed),
            np.uint64(first_trial),
            np.uint64(count),
            np.int32(draw),
            x.gpudata,
            y.gpudata,
            block=(_BLOCK, 1, 1),
            grid=(grid, 1),
        )
        return x, y

    def evaluate(
        self, first_trial: int, count: int
    ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """Per-trial float64 values of every output and kept input for ``[first_trial, +count)``."""
        no = len(self.source.outputs)
        if count <= 0:
            return (
                {k: np.zeros(0) for k in self.source.outputs},
                {self.source.inputs[s]: np.zeros(0) for s in self.kept},
            )
        with context():
            x, y = self.launch(first_trial, count)
            xs, ys = x.get(), y.get()
            del x, y  # free device memory while the context is current
        return (
            dict(zip(self.source.outputs, ys[:no], strict=True)),
            {self.source.inputs[s]: xs[s] for s in self.kept},
        )

    def summarise(self, first_trial: int, count: int, options: StatsOptions) -> Partial:
        """The statistics of ``[first_trial, +count)`` in the sketch regime, computed on the
        GPU (the native back end's, see :mod:`..summary`): no per-trial value comes back."""

        nout, stride = len(self.source.outputs), np.uint64(count)
        bounds = summary.segment_bounds(first_trial, count)
        nseg = len(bounds) - 1
        shift = 52 - bucket_bits(options.sketch_alpha)
        with context():
            k = _summary_module()
            x, y = self.launch(first_trial, count)
            moments = _empty((nseg, nout, 5), np.float64)
            extremes = _empty((nseg, nout, 2), np.float64)
            keys = _empty((nout, count), np.int32)
            spans = _empty((nseg, nout, 4), np.int32)
            k.get_function("alea_segments")(
                y.gpudata,
                stride,
                _to_gpu(bounds).gpudata,
                np.int64(nseg),
                np.int32(nout),
                np.int32(shift),
                moments.gpudata,
                extremes.gpudata,
                keys.gpudata,
                spans.gpudata,
                block=(_BLOCK, 1, 1),
                grid=_grid(nseg * nout, _BLOCK),
            )
            k.get_function("alea_fold")(
                moments.gpudata,
                np.int64(nseg),
                np.int32(nout),
                block=(32, 1, 1),
                grid=_grid(nout, 32),
            )
            span = summary.joined_spans(spans.get())
            sketches = tuple(self._sketch(k, keys, j, span[j]) for j in range(nout))
            trials = self._candidates(k, first_trial, count, options.reservoir_size)
            cvals = self._gather(k, x, y, first_trial, count, trials)
            folded, lohi = moments.get(), extremes.get()
            del x, y, keys, moments, extremes, spans  # freed while the context is current
        kept = tuple(self.source.inputs[s] for s in self.kept)
        return summary.chunk_partial(
            self.source.outputs, kept, bounds, folded, lohi, sketches, trials, cvals, options
        )

    @staticmethod
    def _sketch(k: Any, keys: Any, j: int, span: np.ndarray) -> tuple[Buckets, Buckets, int]:
        """Output ``j``'s sketch buckets, its keys counted on the GPU (``summary.buckets``)."""

        count = keys.shape[1]

        def counted(pmin: int, npos: int, nmin: int, nneg: int) -> tuple[Any, Any, int]:
            pos = _zeros(max(npos, 1), np.uint64)
            neg = _zeros(max(nneg, 1), np.uint64)
            zeros = _zeros(1, np.uint64)
            k.get_function("alea_count_keys")(
                np.uintp(int(keys.gpudata) + 4 * j * count),
                np.int64(count),
                np.int32(pmin),
                pos.gpudata,
                np.int32(nmin),
                neg.gpudata,
                zeros.gpudata,
                block=(256, 1, 1),
                grid=_grid(min(count, 1 << 20), 256),
            )
            return pos.get()[:npos], neg.get()[:nneg], int(zeros.get()[0])

        return summary.buckets(span, counted, lambda: np.asarray(keys.get()[j]))

    @staticmethod
    def _candidates(k: Any, first: int, count: int, size: int) -> np.ndarray:
        """The native back end's reservoir candidates (``NativeEvaluator._candidates``): the
        trials whose hash is under the limit, ascending, or every trial if too few are."""

        limit = summary.candidate_limit(count, size)
        if limit is not None:
            cap = min(count, 3 * size + 256)
            while True:
                out = _empty(cap, np.int64)
                found = _zeros(1, np.uint64)
                k.get_function("alea_candidates")(
                    np.uint64(first),
                    np.uint64(count),
                    np.uint64(limit),
                    out.gpudata,
                    found.gpudata,
                    np.uint64(cap),
                    block=(256, 1, 1),
                    grid=_grid(min(count, 1 << 20), 256),
                )
                n = int(found.get()[0])
                if n <= cap:
                    break
                cap = n
            trials = np.sort(out.get()[:n])
            if trials.size >= min(size, count):
                return trials
        return np.arange(first, first + count, dtype=np.int64)

    def _gather(
        self, k: Any, x: Any, y: Any, first: int, count: int, trials: np.ndarray
    ) -> np.ndarray:
        """Rows of the outputs then the kept inputs, a column per trial of ``trials``."""

        rows = len(self.source.outputs) + len(self.kept)
        if not trials.size:
            return np.empty((rows, 0))
        cvals = _empty((rows, trials.size), np.float64)
        keep = _to_gpu(np.array([*self.kept, 0], dtype=np.int32))
        k.get_function("alea_gather")(
            y.gpudata,
            x.gpudata,
            np.uint64(count),
            np.uint64(first),
            np.int32(len(self.source.outputs)),
            keep.gpudata,
            np.int32(len(self.kept)),
            _to_gpu(trials).gpudata,
            np.int64(trials.size),
            cvals.gpudata,
            block=(_BLOCK, 1, 1),
            grid=_grid(rows * trials.size, _BLOCK),
        )
        return np.asarray(cvals.get())


def compile_cuda(model: Model, *, seed: int, sampling: str = "mc") -> CudaEvaluator:
    """Compile ``model`` for the GPU (cached per generated source); needs PyCUDA and a GPU."""
    return CudaEvaluator(model, seed, sampling)
