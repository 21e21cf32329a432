"""Workers: lease jobs from the shared queue and run them chunk by chunk with checkpoints.

A job runs as fixed-size chunks of ``chunk_trials`` (stored on the job, so a job resumed
by another worker is cut at the same trial indices). After each chunk the chunk's
statistics are merged, in trial order, into the job's running :class:`Partial` and
progress is published; the merged Partial (``to_bytes``) and the next trial index are
persisted together with the lease extension (at most every ``checkpoint_seconds``, and
always before the lease could lapse). A worker killed at any point loses at most the
chunks since its last checkpoint: once its lease expires another worker resumes from the
checkpoint, evaluates the same trials with the same counter-based random streams and
merges in the same order, so the final results are bit-identical to an uninterrupted run.

NumPy work (compile, evaluate, merge, serialise) runs in a thread so the event loop keeps
serving RPCs and watchers while a chunk computes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pickle
import socket
import time
import uuid
from dataclasses import dataclass, field

from services.simulation.config import SimulationConfig
from services.simulation.engine.run import make_evaluator, resolve_backend
from services.simulation.engine.stats import Partial, StatsOptions
from services.simulation.hub import Hub, Progress, progress_to_json
from services.simulation.store import Lease, Store

log = logging.getLogger(__name__)


def detect_backend() -> tuple[str, list[dict]]:
    """("cuda", GPU devices) when the engine sees a usable GPU, else ("cpu", [])."""
    backend = resolve_backend("auto")
    if backend != "cuda":
        return backend, []
    from services.simulation.engine.cuda import runner

    devices = getattr(runner, "devices", None)
    return backend, list(devices()) if devices is not None else []


def _advance(evaluator, partial: Partial | None, first: int, count: int, options) -> Partial:
    outputs, inputs = evaluator.evaluate(first, count)
    chunk = Partial.from_chunk(first, outputs, inputs, options)
    return chunk if partial is None else partial.merge(chunk)


def _results(partial: Partial) -> dict:
    return {name: r.to_dict() for name, r in partial.results().items()}


@dataclass
class _Job:
    lease: Lease
    lost: asyncio.Event = field(default_factory=asyncio.Event)


class Worker:
    """One job at a time: lease, run, checkpoint, finish; loops until ``stop`` is set."""

    def __init__(
        self, store: Store, hub: Hub, config: SimulationConfig, *, backend: str,
        devices: list[dict] | None = None, wake: asyncio.Event | None = None,
    ) -> None:  # fmt: skip
        self.id = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.store, self.hub, self.config = store, hub, config
        self.backend, self.devices = backend, devices or []
        self.wake = wake or asyncio.Event()
        self.options = StatsOptions(exact_limit=config.exact_limit)
        self.job: _Job | None = None

    def cancel(self, simulation_id: str) -> None:
        """Stop the current job at the end of its chunk if it is ``simulation_id``."""
        if self.job is not None and self.job.lease.simulation.id == simulation_id:
            self.job.lost.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Serve the queue until ``stop``; a job in progress is checkpointed and released."""
        await self.store.register_worker(self.id, self.backend, self.devices, time.time())
        try:
            while not stop.is_set():
                lease = await self.store.lease(
                    self.id, now=time.time(), lease_seconds=self.config.lease_seconds,
                    prefer_gpu=self.backend == "cuda",
                )  # fmt: skip
                if lease is None:
                    await self.store.worker_heartbeat(self.id, None, time.time())
                    await self._idle(stop)
                    continue
                await self.store.worker_heartbeat(self.id, lease.simulation.id, time.time())
                await self._run(lease, stop)
        finally:
            with contextlib.suppress(Exception):
                await self.store.remove_worker(self.id)

    async def _idle(self, stop: asyncio.Event) -> None:
        waits = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self.wake.wait())]
        await asyncio.wait(waits, timeout=self.config.poll_seconds, return_when="FIRST_COMPLETED")
        for waiter in waits:
            waiter.cancel()
        self.wake.clear()

    async def _run(self, lease: Lease, stop: asyncio.Event) -> None:
        job = self.job = _Job(lease)
        heartbeat = asyncio.create_task(self._heartbeat(job))
        try:
            await self._execute(job, stop)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the model failed at run time: the job fails, not the worker
            log.exception("simulation %s failed", lease.simulation.id)
            await self.store.fail(lease, reason=f"{type(exc).__name__}: {exc}", now=time.time())
        finally:
            heartbeat.cancel()
            self.job = None
            await self._publish_state(lease.simulation.id)

    async def _heartbeat(self, job: _Job) -> None:
        """Keep the lease alive during long chunks; a refused beat means cancelled or lost."""
        while not job.lost.is_set():
            await asyncio.sleep(self.config.lease_seconds / 3)
            held = await self.store.heartbeat(
                job.lease, now=time.time(), lease_seconds=self.config.lease_seconds
            )
            if not held:
                job.lost.set()

    async def _execute(self, job: _Job, stop: asyncio.Event) -> None:
        sim = job.lease.simulation
        compiled = await self.store.compiled_model(sim.model_id)
        model = pickle.loads(compiled)
        backend = "cpu" if sim.backend_preference == "CPU" else self.backend
        evaluator = await asyncio.to_thread(
            make_evaluator, model, seed=sim.seed, sampling=sim.sampling, backend=backend
        )
        partial = None
        if sim.checkpoint is not None:
            partial = await asyncio.to_thread(Partial.from_bytes, sim.checkpoint)
        done = partial.end_trial if partial is not None else 0
        await self._publish_state(sim.id)
        started, done_at_start = time.monotonic(), done
        running = partial.running() if partial is not None else {}
        progress = Progress(done, sim.trials, 0.0, 0.0, running)
        last_write = started
        while done < sim.trials:
            if job.lost.is_set():
                return  # cancelled, or the lease went to another worker: touch nothing
            if stop.is_set():
                await self._checkpoint(job, partial, done, progress, evaluator.backend)
                await self.store.release(job.lease, now=time.time())
                return
            count = min(sim.chunk_trials, sim.trials - done)
            partial = await asyncio.to_thread(
                _advance, evaluator, partial, done, count, self.options
            )
            done += count
            rate = (done - done_at_start) / max(time.monotonic() - started, 1e-9)
            progress = Progress(
                trials_done=done, trials_total=sim.trials, trials_per_second=rate,
                eta_seconds=(sim.trials - done) / rate if rate > 0 else 0.0,
                running=partial.running(),
            )  # fmt: skip
            self.hub.publish(sim.id, progress)
            due = time.monotonic() - last_write >= self.config.checkpoint_seconds
            if done < sim.trials and due:
                if not await self._checkpoint(job, partial, done, progress, evaluator.backend):
                    return
                last_write = time.monotonic()
        if job.lost.is_set():
            return
        data = await asyncio.to_thread(_results, partial)
        await self.store.finish(
            job.lease, result_data=data, trials_done=done, backend=evaluator.backend,
            progress=progress_to_json(progress), now=time.time(),
        )  # fmt: skip

    async def _checkpoint(self, job: _Job, partial, done: int, progress, backend: str) -> bool:
        if partial is None:
            return True
        blob = await asyncio.to_thread(partial.to_bytes)
        held = await self.store.checkpoint(
            job.lease, trials_done=done, checkpoint=blob, progress=progress_to_json(progress),
            backend=backend, now=time.time(), lease_seconds=self.config.lease_seconds,
        )  # fmt: skip
        if not held:
            job.lost.set()
        return held

    async def _publish_state(self, simulation_id: str) -> None:
        record = await self.store.get_simulation(simulation_id)
        if record is not None:
            self.hub.publish(simulation_id, record)
