"""Run generated CUDA source with PyCUDA: compile once per model, launch per chunk.

``compile_cuda(model, seed=..., sampling=...)`` returns an evaluator with the backend
protocol of ``numpy_backend`` (``backend == "gpu"``, ``evaluate(first_trial, count)``).
Monte Carlo uniforms are drawn in the kernel (Philox, the same bits as ``rng.py``); Latin
Hypercube uniforms (a sort over blocks of 65,536 trials) and Sobol points are computed on the
host by :mod:`..uniforms` and uploaded. The Gaussian copula always runs in the kernel.

PyCUDA is optional: without it (or without a device) :func:`gpu_available` is False and
nothing here is imported by the CPU path. The primary context of device 0 is pushed around
every call, so an evaluator may be used from any thread, one call at a time.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from .. import rng, uniforms
from ..ir import Model
from .codegen import CudaSource, generate

__all__ = ["CudaEvaluator", "compile_cuda", "context", "devices", "gpu_available"]

_BLOCK = 128  # threads per block; each thread takes 4 trials per Philox block
_lock = threading.Lock()
_modules: dict[str, Any] = {}  # source key → compiled module (per process, device 0)
_context: Any = None


def gpu_available() -> bool:
    """True when PyCUDA imports and sees at least one CUDA device; never raises."""
    try:
        import pycuda.driver as drv

        drv.init()
        return drv.Device.count() > 0
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
        import pycuda.gpuarray as gpuarray

        ni, no = len(self.source.inputs), len(self.source.outputs)
        given = uniforms.host(self.model, self.seed, self.sampling, first_trial, count)
        draw = given is None
        if draw or not ni:
            x = gpuarray.empty((max(ni, 1), count), np.float64)
        else:
            x = gpuarray.to_gpu(given)
        y = gpuarray.empty((max(no, 1), count), np.float64)
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


def compile_cuda(model: Model, *, seed: int, sampling: str = "mc") -> CudaEvaluator:
    """Compile ``model`` for the GPU (cached per generated source); needs PyCUDA and a GPU."""
    return CudaEvaluator(model, seed, sampling)
