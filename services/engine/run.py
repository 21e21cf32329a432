"""Chunked execution: a model's trials evaluated chunk by chunk and merged into one ``Partial``.

Every trial's values depend only on (model, seed, sampling, trial index), so
``simulate(..., first_trial=0, trials=n)`` equals, bit for bit, the merge of
``simulate(..., first_trial=0, trials=k)`` and ``simulate(..., first_trial=k, trials=n-k)``
for any ``k`` and any chunk sizes: that is what lets a job be checkpointed after any chunk
and spread over workers. (Statistics beyond ``StatsOptions.exact_limit`` are merged moments
and sketches; see ``stats.py`` for what is then bit-identical.)
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from .ir import Model
from .numpy_backend import Evaluator, compile_numpy
from .stats import Partial, StatsOptions

__all__ = [
    "BACKENDS",
    "Cancelled",
    "default_chunk_size",
    "make_evaluator",
    "resolve_backend",
    "simulate",
]

BACKENDS = ("auto", "cpu", "cuda")
MIN_CHUNK = 1 << 16
MAX_CHUNK = 1 << 20
# Per-chunk arrays handed to the statistics: one per output and input, 8 bytes a trial.
_CHUNK_BYTES = 128 << 20

Progress = Callable[[int, Partial], None]


class Cancelled(Exception):
    """The simulation was stopped (its ``stop`` event set); raised between chunks."""


class BackendUnavailable(RuntimeError):
    """The CUDA backend was asked for where PyCUDA or a GPU is missing."""


def _gpu_available() -> bool:
    try:
        from .cuda.runner import gpu_available
    except ImportError:
        return False
    return gpu_available()


def resolve_backend(backend: str = "auto") -> str:
    """``"cpu"`` or ``"cuda"``: ``auto`` is CUDA when PyCUDA imports and sees a GPU.

    Raises ``BackendUnavailable`` for ``"cuda"`` without a usable GPU.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if backend == "cpu":
        return backend
    if _gpu_available():
        return "cuda"
    if backend == "cuda":
        raise BackendUnavailable("the cuda backend needs PyCUDA and a CUDA device")
    return "cpu"


def make_evaluator(
    model: Model, *, seed: int, sampling: str = "mc", backend: str = "auto"
) -> Evaluator:
    """The evaluator of ``model`` on ``backend`` (``auto``, ``cpu`` or ``cuda``)."""
    if resolve_backend(backend) == "cuda":
        from .cuda.runner import compile_cuda

        return compile_cuda(model, seed=seed, sampling=sampling)
    return compile_numpy(model, seed=seed, sampling=sampling)


def default_chunk_size(model: Model) -> int:
    """Trials per chunk: the per-chunk arrays stay near 128 MiB, between 2**16 and 2**20.

    Chunks are multiples of 2**16 so that they align with the Latin Hypercube blocks.
    """
    arrays = max(1, len(model.outputs) + len(model.inputs))
    fit = _CHUNK_BYTES // (8 * arrays)
    return max(MIN_CHUNK, min(MAX_CHUNK, fit // MIN_CHUNK * MIN_CHUNK))


def simulate(
    model: Model,
    *,
    trials: int,
    seed: int,
    sampling: str = "mc",
    backend: str = "auto",
    chunk_size: int | None = None,
    first_trial: int = 0,
    progress: Progress | None = None,
    stop: threading.Event | None = None,
    options: StatsOptions | None = None,
) -> Partial:
    """Run trials ``[first_trial, first_trial + trials)`` and return their statistics.

    ``progress(trials_done, partial)`` is called after each chunk; ``stop`` is checked
    before each chunk and raises :class:`Cancelled` once set. Same arguments ⇒ the same
    bits, whatever ``chunk_size``.
    """
    if trials < 0 or first_trial < 0:
        raise ValueError("trials and first_trial must be non-negative")
    if chunk_size is not None and chunk_size <= 0:
        raise ValueError(f"chunk_size must be positive, got {chunk_size}")
    evaluator = make_evaluator(model, seed=seed, sampling=sampling, backend=backend)
    size = chunk_size or default_chunk_size(model)
    options = options or StatsOptions()
    partial: Partial | None = None
    end = first_trial + trials
    start = first_trial
    while True:
        if stop is not None and stop.is_set():
            raise Cancelled(f"stopped after {start - first_trial} of {trials} trials")
        count = min(size, end - start)
        outputs, inputs = evaluator.evaluate(start, count)
        chunk = Partial.from_chunk(start, outputs, inputs, options)
        partial = chunk if partial is None else partial.merge(chunk)
        start += count
        if progress is not None:
            progress(start - first_trial, partial)
        if start >= end:
            return partial
