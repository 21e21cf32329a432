"""Workers: lease segments from the shared queue and run them chunk by chunk with checkpoints.

A simulation's trials are split into segments (``segment_trials`` each) and each segment
into chunks of ``chunk_trials``, both fixed when the simulation is created. A worker
leases one segment at a time; after each chunk the chunk's statistics are merged, in trial
order, into the segment's :class:`Partial` and progress is published. The merged Partial
(``to_bytes``) and the segment's trial count are persisted together with the lease
extension (at most every ``checkpoint_seconds``, and before the lease could lapse). A
worker killed at any point loses at most the chunks since its last checkpoint: once its
lease expires another worker resumes from the checkpoint, evaluates the same trials with
the same counter-based random streams and merges in the same order. When the last segment
completes, the segments' Partials are merged in trial order into the results, so the
final results are bit-identical whichever workers ran which segments, interrupted or not.

NumPy work (compile, evaluate, merge, serialise) runs in a thread so the event loop keeps
serving RPCs and watchers while a chunk computes; the next chunk starts as soon as one
ends, before its progress is published and its checkpoint written, so neither a busy event
loop nor a checkpoint leaves the engine idle.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import metrics, trace

from services import engine
from services.engine import convergence, memory, outcome
from services.engine.errors import ModelError
from services.engine.memory import Plan
from services.engine.serial import load_model
from services.engine.stats import Partial, StatsOptions
from services.runtime import telemetry
from services.simulation import result_data
from services.simulation.config import SimulationConfig
from services.simulation.hub import Hub, Progress, number_or_nan, running_to_json
from services.simulation.loading import load_engine
from services.simulation.queue import Lease, Queue, combine_progress
from services.simulation.store import SimulationRecord, Store

log = logging.getLogger(__name__)
# Worker spans join the trace of the request that created the simulation (its traceparent
# is stored with it): the wait in the queue, each segment a worker runs, each checkpoint.
tracer = trace.get_tracer("alea.simulation.worker")
_meter = metrics.get_meter("alea.simulation.worker")
# Trials per second is the rate of the counter; utilisation is busy over workers.
trials_counter = _meter.create_counter(
    "alea.simulation.trials", unit="{trial}", description="Trials evaluated by workers"
)
workers_gauge = _meter.create_up_down_counter(
    "alea.simulation.workers", unit="{worker}", description="Workers serving the queue"
)
busy_gauge = _meter.create_up_down_counter(
    "alea.simulation.workers.busy", unit="{worker}", description="Workers running a segment"
)


Backend = tuple[str, list[dict[str, Any]]]  # the engine back end's name, its GPU devices


def detect_backend() -> Backend:
    """("gpu", GPU devices) when the engine sees a usable GPU, else (the CPU back end, [])."""
    load_engine()
    backend = engine.resolve_backend("auto")
    if backend != "gpu":
        return backend, []
    from services.engine.cuda import runner

    return backend, runner.devices()


async def detect_backend_until(stop: asyncio.Event) -> Backend | None:
    """:func:`detect_backend` on a daemon thread, or None if ``stop`` is set first.

    The first detection loads the engine: seconds of imports, many more on a busy machine.
    A service told to stop while they run exits at once instead of waiting for them (a
    shutdown that outlasts its grace period is killed); the thread, a daemon, ends with
    the process.
    """
    loop = asyncio.get_running_loop()
    found: asyncio.Future[Backend] = loop.create_future()

    def deliver(outcome: Backend | BaseException) -> None:
        if found.done():
            return
        if isinstance(outcome, BaseException):
            found.set_exception(outcome)
        else:
            found.set_result(outcome)

    def detect() -> None:
        outcome: Backend | BaseException
        try:
            outcome = detect_backend()
        except BaseException as exc:  # handed to the awaiting worker, which reports it
            outcome = exc
        with contextlib.suppress(RuntimeError):  # the loop closed: nobody waits any more
            loop.call_soon_threadsafe(deliver, outcome)

    threading.Thread(target=detect, name="engine-load", daemon=True).start()
    stopping = asyncio.ensure_future(stop.wait())
    either: list[asyncio.Future[Any]] = [found, stopping]
    try:
        await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
    if not found.done():
        found.cancel()
        return None
    return found.result()


# A simulation's backend preference → the engine back end a worker of each kind runs it on.
_BACKEND_OF_PREFERENCE = {"CPU": "cpu", "NATIVE": "native", "NUMPY": "numpy"}


def _timed(step: Callable[[], Partial]) -> tuple[Partial, float]:
    """``step()`` and the engine seconds it took, measured on the engine's thread: the
    usage a worker reports for its simulation."""
    started = time.perf_counter()
    partial = step()
    return partial, time.perf_counter() - started


def _merge_results(
    blobs: list[bytes], compiled: bytes | None, options: outcome.RunOptions
) -> dict[str, Any]:
    """The results of a simulation from its segments' final statistics, in trial order, as
    its model (``compiled``) and options shape them (RiskSimtable simulations), with the
    model's reports (none once the model is gone)."""
    return _results(Partial.merged(blobs), compiled, options)


#: The merged Partial of a converging simulation's first segments, none of whose ends passed
#: the test: (simulation id, segments merged, their Partial). Checks are deterministic, so a
#: later completion goes on from there instead of merging and testing the prefix again.
Checked = tuple[str, int, Partial]


def _check_prefix(
    simulation_id: str,
    blobs: list[bytes],
    compiled: bytes,
    options: outcome.RunOptions,
    known: Checked | None,
) -> tuple[dict[str, Any] | None, Checked | None, dict[str, Any] | None]:
    """Test a converging simulation at the end of each completed segment of ``blobs`` (the
    segments after those ``known`` to have been tested, in trial order): (its results at
    the first end that passes, or at ``max_trials``, with their ``"convergence"``, else
    None; what was checked; the last check, None when there was none to make)."""
    settings = options.convergence
    assert settings is not None
    expansion = outcome.prepare(load_model(compiled), options)
    tests = settings.tests(expansion.model)
    start, total = (known[1], known[2]) if known and known[0] == simulation_id else (0, None)
    status = None
    for blob in blobs:
        part = Partial.from_bytes(blob)
        total = part if total is None else total.merge(part)
        checked = convergence.check(total, tests)
        status = checked.to_dict(settings)
        if checked.converged or total.trials >= settings.max_trials:
            data = _results(total, compiled, options)
            return data | {"convergence": status}, None, status
    tested = None if total is None else (simulation_id, start + len(blobs), total)
    return None, tested, status


def _results(
    partial: Partial, compiled: bytes | None, options: outcome.RunOptions
) -> dict[str, Any]:
    if compiled is None:
        outputs = {name: r.to_dict() for name, r in partial.results().items()}
        return {"format": result_data.FORMAT, "outputs": outputs, "reports": []}
    expansion = outcome.prepare(load_model(compiled), options)
    # imported here, on the engine's thread: reports load the engine's functions, which the
    # service must not wait for as it starts (see services.simulation.loading)
    from services.engine.reports import evaluate as evaluate_reports

    reports = evaluate_reports(expansion.model, partial)
    return {
        "format": result_data.FORMAT,
        "outputs": outcome.results_data(expansion, partial, options),
        "reports": [r.to_dict() for r in reports],
    }


def _segment_progress(partial: Partial, trials: int) -> dict[str, Any]:
    return {"trials": trials, "running": running_to_json(partial.running())}


class _EngineFailure(Exception):
    """The model failed at run time (a NumPy/CUDA error, a broken model): the simulation
    fails. Anything else (the database, the network) only interrupts the segment, whose
    lease lapses so that it resumes from its last checkpoint."""


async def _engine(fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)`` on a thread; its failure is the model's."""
    try:
        return await asyncio.to_thread(fn, *args)
    except Exception as exc:
        raise _EngineFailure(failure_reason(exc)) from exc


def failure_reason(exc: Exception) -> str:
    """What a FAILED simulation tells its user: a sentence, never an exception's text."""
    if isinstance(exc, ModelError | engine.BackendUnavailable):
        return str(exc)  # written for users: names the cell, the limit or the back end
    if isinstance(exc, MemoryError):
        return (
            "the engine ran out of memory on this model: raise ALEA_ENGINE_MEMORY_BYTES "
            "or the worker's memory, or simplify the model"
        )
    error_id = uuid.uuid4().hex[:12]
    log.error("engine failure %s", error_id, exc_info=exc)
    return f"the engine failed on this model (error {error_id}, in the worker's log)"


@dataclass
class _Job:
    lease: Lease
    lost: asyncio.Event = field(default_factory=asyncio.Event)
    compute_seconds: float = 0.0  # engine seconds not yet reported in a checkpoint


class Worker:
    """One job at a time: lease, run, checkpoint, finish; loops until ``stop`` is set.

    Without a ``backend`` the worker finds its own as it starts (:func:`detect_backend_until`,
    on a thread: the engine loads then, while the service already serves).
    """

    def __init__(
        self,
        store: Store,
        hub: Hub,
        config: SimulationConfig,
        *,
        backend: str | None = None,
        devices: list[dict[str, Any]] | None = None,
        wake: asyncio.Event | None = None,
    ) -> None:
        self.id = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.store, self.hub, self.config = store, hub, config
        self.backend, self.devices = backend or "", devices or []
        self.wake = wake or asyncio.Event()
        self.options = StatsOptions(exact_limit=config.exact_limit)
        self.queue = Queue(store)
        self.job: _Job | None = None
        self._compiled: (
            tuple[tuple[str, int, str, str, str], tuple[engine.Evaluator, Plan]] | None
        ) = None
        self._checked: Checked | None = None
        # The latest check this worker made (simulation id, Outcome.to_dict()), for progress.
        self._status: tuple[str, dict[str, Any]] | None = None

    def cancel(self, simulation_id: str) -> None:
        """Stop the current job at the end of its chunk if it is ``simulation_id``."""
        if self.job is not None and self.job.lease.simulation.id == simulation_id:
            self.job.lost.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Serve the queue until ``stop``; a segment in progress is checkpointed and released."""
        if not self.backend:
            detected = await detect_backend_until(stop)
            if detected is None:
                return  # stopped while the engine loaded: nothing registered, nothing to release
            self.backend, self.devices = detected
        await self.store.register_worker(self.id, self.backend, self.devices, time.time())
        workers_gauge.add(1, {"backend": self.backend})
        try:
            while not stop.is_set():
                try:
                    await self._serve_once(stop)
                except Exception:  # the database or a peer is away: wait, then try again
                    log.exception("worker %s could not reach the queue; retrying", self.id)
                    await self._idle(stop)
        finally:
            workers_gauge.add(-1, {"backend": self.backend})
            with contextlib.suppress(Exception):
                await self.store.remove_worker(self.id)

    async def _serve_once(self, stop: asyncio.Event) -> None:
        """Lease and run one segment, or tidy up and wait when there is none."""
        lease = await self.queue.lease(
            self.id,
            now=time.time(),
            lease_seconds=self.config.lease_seconds,
            prefer_gpu=self.backend == "gpu",
            max_attempts=self.config.max_attempts,
        )
        if lease is None:
            await self.store.worker_heartbeat(self.id, None, time.time())
            await self._finish_orphans()
            await self._idle(stop)
            return
        await self.store.worker_heartbeat(self.id, lease.simulation.id, time.time())
        await self._run(lease, stop)

    async def _idle(self, stop: asyncio.Event) -> None:
        waits = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self.wake.wait())]
        await asyncio.wait(waits, timeout=self.config.poll_seconds, return_when="FIRST_COMPLETED")
        for waiter in waits:
            waiter.cancel()
        self.wake.clear()

    async def _run(self, lease: Lease, stop: asyncio.Event) -> None:
        sim = lease.simulation
        parent = telemetry.context_of(sim.trace_context)
        attributes: dict[str, str | int] = {
            "alea.simulation.id": sim.id,
            "alea.segment.id": lease.segment_id,
            "alea.worker.id": self.id,
        }
        # From the simulation's creation to this lease (a resumed segment waited that long too).
        tracer.start_span(
            "simulation.queue_wait",
            context=parent,
            start_time=int(sim.create_time * 1e9),
            attributes=attributes,
        ).end()
        segment: dict[str, str | int] = {
            **attributes,
            "alea.segment.first_trial": lease.first_trial + lease.trials_done,
            "alea.segment.end_trial": lease.end_trial,
        }
        busy_gauge.add(1, {"backend": self.backend})
        try:
            with tracer.start_as_current_span("simulation.segment", parent, attributes=segment):
                await self._run_segment(lease, stop)
        finally:
            busy_gauge.add(-1, {"backend": self.backend})

    async def _run_segment(self, lease: Lease, stop: asyncio.Event) -> None:
        job = self.job = _Job(lease)
        heartbeat = asyncio.create_task(self._heartbeat(job))
        sim_id = lease.simulation.id
        try:
            if await self._execute(job, stop):
                await self._finish(lease.simulation.tenant_id, sim_id)
        except _EngineFailure as exc:  # the job fails, not the worker
            log.exception("simulation %s failed", sim_id)
            await self.queue.fail(sim_id, reason=str(exc), now=time.time())
        except Exception:
            # Not the model's fault: the lease lapses and the segment resumes, here or on
            # another worker, from its last checkpoint.
            log.exception("simulation %s interrupted; it resumes from its checkpoint", sim_id)
        finally:
            heartbeat.cancel()
            self.job = None
        await self._publish_state(lease.simulation.tenant_id, sim_id)

    async def _heartbeat(self, job: _Job) -> None:
        """Keep the lease alive during long chunks; a refused beat means cancelled or lost."""
        while not job.lost.is_set():
            await asyncio.sleep(self.config.lease_seconds / 3)
            try:
                held = await self.queue.heartbeat(
                    job.lease, now=time.time(), lease_seconds=self.config.lease_seconds
                )
            except Exception:  # a missed beat; fencing stops us if the lease lapses meanwhile
                log.warning("lease heartbeat of %s failed", job.lease.simulation.id, exc_info=True)
                continue
            if not held:
                job.lost.set()

    async def _evaluator(self, sim: SimulationRecord) -> tuple[engine.Evaluator, Plan]:
        """The compiled model of ``sim`` and its memory plan, reused across its segments."""
        backend = _BACKEND_OF_PREFERENCE.get(
            sim.backend_preference, "gpu" if self.backend == "gpu" else "cpu"
        )
        key = (sim.model_id, sim.seed, sim.sampling, backend, repr(sim.options))
        if self._compiled is None or self._compiled[0] != key:
            compiled = await self.store.compiled_model(sim.tenant_id, sim.model_id)
            if compiled is None:
                raise _EngineFailure(f"model {sim.model_id} no longer exists")
            self._compiled = (key, await _engine(self._compile, compiled, sim, backend))
        return self._compiled[1]

    def _compile(
        self, compiled: bytes, sim: SimulationRecord, backend: str
    ) -> tuple[engine.Evaluator, Plan]:
        try:
            model = load_model(compiled)
        except ValueError as exc:
            raise ModelError(f"the stored model cannot be read: {exc}") from None
        options = outcome.RunOptions.from_json(sim.options)
        model = outcome.prepare(model, options).model
        # The cached native library, found at once: the stored model as these options shape
        # it (RiskSimtable's varied seeds make another model of the same stored bytes).
        shaped = json.dumps(options.to_json(), sort_keys=True).encode()
        key = hashlib.sha256(compiled + b"\0" + shaped).hexdigest()
        # Several worker processes on one host each take a share of the cores.
        threads = self.config.engine_threads or None
        evaluator = engine.make_evaluator(
            model, seed=sim.seed, sampling=sim.sampling, backend=backend, threads=threads, key=key
        )
        return evaluator, memory.plan(evaluator, model, self.options)

    async def _execute(self, job: _Job, stop: asyncio.Event) -> bool:
        """Run the leased segment; True when it completed (False: stopped, lost, cancelled)."""
        lease, sim = job.lease, job.lease.simulation
        evaluator, plan = await self._evaluator(sim)
        partial = None
        if lease.checkpoint is not None:
            partial = await _engine(Partial.from_bytes, lease.checkpoint)
        run = engine.Run(
            evaluator,
            first_trial=lease.first_trial,
            end_trial=lease.end_trial,
            chunk_size=plan.chunk_within(sim.chunk_trials),
            options=plan.options,
            partial=partial,
        )
        done = run.done
        await self._publish_state(sim.tenant_id, sim.id)
        # Progress from the start, so watchers hear figures before the first chunk ends.
        start = [] if partial is None else [_segment_progress(partial, lease.trials_done)]
        self._publish_progress(sim, start, 0.0)
        others: list[dict[str, Any]] = []
        started, done_at_start = time.monotonic(), done
        last_write = started
        running = self._start_chunk(run)
        try:
            while running is not None:
                count, computing = running
                partial, seconds = await computing
                job.compute_seconds += seconds
                done += count
                trials_counter.add(count, {"backend": evaluator.backend})
                if job.lost.is_set():
                    return False  # cancelled, or the lease went to another worker: touch nothing
                if stop.is_set() and done < lease.end_trial:
                    await self._checkpoint(job, partial, done, evaluator.backend)
                    await self.queue.release(lease, now=time.time())
                    return False
                # The next chunk computes while this one is published and checkpointed, so the
                # engine never waits on the event loop (busy with watchers or RPCs) in between.
                running = self._start_chunk(run)
                mine = _segment_progress(partial, done - lease.first_trial)
                elapsed = max(time.monotonic() - started, 1e-9)
                self._publish_progress(sim, [*others, mine], (done - done_at_start) / elapsed)
                due = time.monotonic() - last_write >= self.config.checkpoint_seconds
                if running is not None and due:
                    held, others = await self._checkpoint(job, partial, done, evaluator.backend)
                    if not held:
                        return False
                    last_write = time.monotonic()
        finally:
            if running is not None and not running[1].done():
                # Leaving with a chunk in flight (lease lost, or an error while checkpointing):
                # wait for its thread, so the engine is free before the next job; the chunk
                # itself is not ours any more.
                with contextlib.suppress(Exception):
                    await running[1]
        if job.lost.is_set() or partial is None:
            return False
        held, _ = await self._checkpoint(job, partial, done, evaluator.backend, complete=True)
        return held

    def _start_chunk(
        self, run: engine.Run
    ) -> tuple[int, asyncio.Future[tuple[Partial, float]]] | None:
        """(trials, the future of the Partial that includes them and its engine seconds),
        or None at the end."""
        if run.finished:
            return None
        count = min(run.chunk_size, run.end_trial - run.done)
        return count, asyncio.ensure_future(_engine(_timed, run.step))

    async def _checkpoint(
        self, job: _Job, partial: Partial, done: int, backend: str, complete: bool = False
    ) -> tuple[bool, list[dict[str, Any]]]:
        attributes = {"alea.trials_done": done - job.lease.first_trial, "alea.complete": complete}
        with tracer.start_as_current_span("simulation.checkpoint", attributes=attributes):
            return await self._write_checkpoint(job, partial, done, backend, complete)

    async def _write_checkpoint(
        self, job: _Job, partial: Partial, done: int, backend: str, complete: bool
    ) -> tuple[bool, list[dict[str, Any]]]:
        blob = await asyncio.to_thread(partial.to_bytes)
        reported = job.compute_seconds
        held, others = await self.queue.checkpoint(
            job.lease,
            trials_done=done - job.lease.first_trial,
            checkpoint=blob,
            progress=_segment_progress(partial, done - job.lease.first_trial),
            backend=backend,
            now=time.time(),
            lease_seconds=self.config.lease_seconds,
            complete=complete,
            compute_seconds=reported,
        )
        if held:
            job.compute_seconds -= reported
        else:
            job.lost.set()
        return held, others

    def _publish_progress(
        self, sim: SimulationRecord, parts: list[dict[str, Any]], rate: float
    ) -> None:
        combined = combine_progress(parts)
        total = combined["trials"]
        left = sim.trials - total
        self.hub.publish(
            sim.id,
            Progress(
                trials_done=total,
                trials_total=sim.trials,
                trials_per_second=rate,
                eta_seconds=left / rate if rate > 0 else 0.0,
                running={
                    k: (number_or_nan(m), number_or_nan(se))
                    for k, (m, se) in combined["running"].items()
                },
                convergence=self._status[1] if self._status and self._status[0] == sim.id else None,
            ),
        )

    async def _finish(self, tenant_id: str, simulation_id: str) -> None:
        """Merge the segments into results once none is pending (whoever completes last);
        a converging simulation's as soon as its completed prefix passes."""
        record = await self.store.get_simulation(tenant_id, simulation_id)
        options = outcome.RunOptions.from_json(record.options if record is not None else None)
        plain = record is None or options.convergence is None
        if plain and await self.queue.pending_segments(simulation_id):
            return
        compiled = None
        if record is not None:
            compiled = await self.store.compiled_model(tenant_id, record.model_id)
        if options.convergence is not None and compiled is not None:
            await self._finish_converging(simulation_id, compiled, options)
            return
        if await self.queue.pending_segments(simulation_id):
            return  # a converging simulation whose model is gone: all of it, as any other
        blobs = await self.queue.segment_checkpoints(simulation_id)
        data = await _engine(_merge_results, blobs, compiled, options)
        backend = self._compiled[1][0].backend if self._compiled else self.backend
        await self.queue.finish(simulation_id, result_data=data, backend=backend, now=time.time())

    async def _finish_converging(
        self, simulation_id: str, compiled: bytes, options: outcome.RunOptions
    ) -> None:
        """Test the completed prefix at each segment's end, in trial order; at the first that
        passes (or at max_trials) finish with exactly that prefix's results, dropping the
        segments still queued or running (any already done beyond it are not merged)."""
        known = self._checked if self._checked and self._checked[0] == simulation_id else None
        blobs = await self.queue.completed_prefix(simulation_id, known[1] if known else 0)
        data, self._checked, status = await _engine(
            _check_prefix, simulation_id, blobs, compiled, options, known
        )
        if status is not None:
            self._status = (simulation_id, status)
        if data is None:
            return
        backend = self._compiled[1][0].backend if self._compiled else self.backend
        await self.queue.finish(
            simulation_id,
            result_data=data,
            backend=backend,
            now=time.time(),
            trials_done=data["convergence"]["trials"],
        )

    async def _finish_orphans(self) -> None:
        """Finish simulations whose finisher died after their last segment completed."""
        older_than = time.time() - self.config.lease_seconds
        for tenant_id, simulation_id in await self.queue.unfinished(older_than):
            await self._finish(tenant_id, simulation_id)
            await self._publish_state(tenant_id, simulation_id)

    async def _publish_state(self, tenant_id: str, simulation_id: str) -> None:
        record = await self.store.get_simulation(tenant_id, simulation_id)
        if record is not None:
            self.hub.publish(simulation_id, record)
