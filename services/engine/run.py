"""Chunked execution: a model's trials evaluated chunk by chunk and merged into one ``Partial``.

Every trial's values depend only on (model, seed, sampling, trial index), so
``simulate(..., first_trial=0, trials=n)`` equals, bit for bit, the merge of
``simulate(..., first_trial=0, trials=k)`` and ``simulate(..., first_trial=k, trials=n-k)``
for any ``k`` and any chunk sizes: that is what lets a job be checkpointed after any chunk
and spread over workers. (Statistics beyond ``StatsOptions.exact_limit`` are merged moments
and sketches; see ``stats.py`` for what is then bit-identical.)
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable
from typing import Protocol, runtime_checkable

from . import memory, native, uniforms
from .errors import FormulaError
from .ir import Model
from .numpy_backend import Evaluator, compile_numpy
from .stats import Partial, StatsOptions

__all__ = [
    "BACKENDS",
    "Cancelled",
    "Run",
    "default_chunk_size",
    "make_evaluator",
    "resolve_backend",
    "simulate",
]

BACKENDS = ("auto", "cpu", "native", "numpy", "gpu")
MIN_CHUNK = 1 << 16
MAX_CHUNK = 1 << 20
# Per-chunk arrays handed to the statistics: one per output and input, 8 bytes a trial.
_CHUNK_BYTES = 128 << 20

Progress = Callable[[int, Partial], None]
log = logging.getLogger(__name__)


@runtime_checkable
class Summariser(Protocol):
    """A back end that computes a chunk's statistics while evaluating it (native)."""

    def summarise(self, first_trial: int, count: int, options: StatsOptions) -> Partial:
        """The Partial of trials ``[first_trial, +count)`` in the sketch regime."""
        ...


class Cancelled(Exception):
    """The simulation was stopped (its ``stop`` event set); raised between chunks."""


class BackendUnavailable(RuntimeError):
    """A back end was asked for by name where it cannot run (no GPU, no C compiler)."""


def _gpu_available() -> bool:
    try:
        from .cuda.runner import gpu_available
    except ImportError:
        return False
    return gpu_available()


def resolve_backend(backend: str = "auto") -> str:
    """The back end that runs: ``"native"``, ``"numpy"`` or ``"gpu"``.

    ``auto`` is the GPU when PyCUDA imports and sees a device, else ``cpu``; ``cpu`` is the
    native back end where a C compiler exists, else NumPy (the reason is logged). Naming
    ``gpu`` or ``native`` where it cannot run raises :class:`BackendUnavailable`.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if backend in ("auto", "gpu") and _gpu_available():
        return "gpu"
    if backend == "gpu":
        raise BackendUnavailable("the gpu back end needs PyCUDA and a CUDA device")
    if backend == "numpy":
        return "numpy"
    missing = native.available()
    if missing is None:
        return "native"
    if backend == "native":
        raise BackendUnavailable(f"the native back end cannot run here: {missing}")
    _fall_back(missing)
    return "numpy"


@functools.lru_cache(maxsize=64)
def _fall_back(reason: str) -> None:
    """Say once per reason why the NumPy back end runs where the native one was wanted."""
    log.warning("using the NumPy back end: %s", reason)


def make_evaluator(
    model: Model,
    *,
    seed: int,
    sampling: str = "mc",
    backend: str = "auto",
    threads: int | None = None,
    key: str | None = None,
) -> Evaluator:
    """The evaluator of ``model`` on ``backend`` (see :func:`resolve_backend`).

    A model the native build fails on runs on NumPy instead (logged), unless ``native`` was
    asked for by name. ``threads`` (default: one per CPU) never changes results. ``key`` (a
    hash of the model's stored form) finds a cached native library without generating it.
    """
    uniforms.check(model, sampling)
    chosen = resolve_backend(backend)
    if chosen == "gpu":
        from .cuda.runner import compile_cuda

        return compile_cuda(model, seed=seed, sampling=sampling)
    if chosen == "native":
        try:
            return native.compile_native(
                model, seed=seed, sampling=sampling, threads=threads, key=key
            )
        except native.NativeUnavailable as exc:
            if backend == "native":
                raise BackendUnavailable(f"the native back end failed: {exc}") from None
            _fall_back(f"the native build failed: {exc}")
        except FormulaError as exc:  # the NumPy back end says so too, if it lacks it as well
            if backend == "native":
                raise
            _fall_back(f"the native back end cannot compile this model: {exc}")
    return compile_numpy(model, seed=seed, sampling=sampling, threads=threads)


def default_chunk_size(model: Model) -> int:
    """Trials per chunk: the per-chunk arrays stay near 128 MiB, between 2**16 and 2**20.

    Chunks are multiples of 2**16 so that they align with the Latin Hypercube blocks.
    """
    arrays = max(1, len(model.outputs) + len(model.inputs))
    fit = _CHUNK_BYTES // (8 * arrays)
    return max(MIN_CHUNK, min(MAX_CHUNK, fit // MIN_CHUNK * MIN_CHUNK))


class Run:
    """Trials ``[first_trial, end_trial)`` of one evaluator, chunk by chunk, in one Partial.

    The engine's one chunk loop: :func:`simulate` drives it, and so does the simulation
    service's worker, which resumes a segment from its checkpoint (``partial``, covering
    ``[first_trial, partial.end_trial)``). Each :meth:`step` evaluates the next chunk and
    returns the merged Partial; chunks start at ``first_trial + k * chunk_size`` whatever
    the interruptions, so a resumed run gives the same bits as an uninterrupted one.
    """

    def __init__(
        self,
        evaluator: Evaluator,
        *,
        first_trial: int,
        end_trial: int,
        chunk_size: int,
        options: StatsOptions,
        partial: Partial | None = None,
    ) -> None:
        if not 0 <= first_trial <= end_trial:
            raise ValueError("trials must satisfy 0 <= first_trial <= end_trial")
        if chunk_size <= 0:
            raise ValueError(f"chunk_size must be positive, got {chunk_size}")
        self.evaluator, self.options = evaluator, options
        self.first_trial, self.end_trial, self.chunk_size = first_trial, end_trial, chunk_size
        self.partial = partial
        self.done = first_trial if partial is None else partial.end_trial
        self._started = partial is not None

    @property
    def finished(self) -> bool:
        """Every trial is in :attr:`partial` (a run of no trials takes one empty step)."""
        return self._started and self.done >= self.end_trial

    def step(self) -> Partial:
        """Evaluate and summarise the next chunk; the Partial of every trial so far.

        Once the run is past ``options.exact_limit`` (samples no longer kept), a back end
        that computes statistics in its own loop (:class:`Summariser`) does so; otherwise
        the chunk's values are summarised here.
        """
        count = min(self.chunk_size, self.end_trial - self.done)
        streamed = self.done + count - self.first_trial > self.options.exact_limit
        if streamed and isinstance(self.evaluator, Summariser):
            chunk = self.evaluator.summarise(self.done, count, self.options)
        else:
            outputs, inputs = self.evaluator.evaluate(self.done, count)
            chunk = Partial.from_chunk(self.done, outputs, inputs, self.options)
        self.partial = chunk if self.partial is None else self.partial.merge(chunk)
        self.done += count
        self._started = True
        return self.partial


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
    evaluator: Evaluator | None = None,
) -> Partial:
    """Run trials ``[first_trial, first_trial + trials)`` and return their statistics.

    ``progress(trials_done, partial)`` is called after each chunk; ``stop`` is checked
    before each chunk and raises :class:`Cancelled` once set. Same arguments ⇒ the same
    bits, whatever ``chunk_size``. ``evaluator`` (from :func:`make_evaluator` with the same
    seed and sampling) replaces ``backend``, so a caller can say which back end ran.
    The run stays within ``ALEA_ENGINE_MEMORY_BYTES`` (:mod:`.memory`): chunks and the
    statistics kept shrink for a wide model, and one that cannot fit is a ``ModelError``.
    """
    if trials < 0 or first_trial < 0:
        raise ValueError("trials and first_trial must be non-negative")
    if chunk_size is not None and chunk_size <= 0:
        raise ValueError(f"chunk_size must be positive, got {chunk_size}")
    if evaluator is None:
        evaluator = make_evaluator(model, seed=seed, sampling=sampling, backend=backend)
    planned = memory.plan(evaluator, model, options or StatsOptions())
    run = Run(
        evaluator,
        first_trial=first_trial,
        end_trial=first_trial + trials,
        chunk_size=planned.chunk_within(chunk_size or default_chunk_size(model)),
        options=planned.options,
    )
    while not run.finished:
        if stop is not None and stop.is_set():
            raise Cancelled(f"stopped after {run.done - first_trial} of {trials} trials")
        partial = run.step()
        if progress is not None:
            progress(run.done - first_trial, partial)
    assert run.partial is not None
    return run.partial
