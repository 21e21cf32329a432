"""The simulation service's operations, free of gRPC: models, simulations, results, queue.

Every operation takes the caller's tenant explicitly and treats another tenant's object
as absent (NotFound). Refused models raise InvalidArgument naming the cell (``Sheet!A1``)
or spec path; quotas raise ResourceExhausted naming the limit.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from services import engine
from services.engine import ir, memory, simtable, sobol
from services.engine.analysis import MAX_SCENARIOS
from services.engine.errors import ModelError
from services.engine.guard import MAX_WORKBOOK_BYTES, TOO_LARGE
from services.engine.outcome import RunOptions
from services.engine.serial import dump_model
from services.runtime import telemetry
from services.runtime.errors import FailedPrecondition, InvalidArgument, NotFound
from services.runtime.listing import ListRequest, Page
from services.runtime.platform_settings import CACHE_TTL, SCHEMA
from services.simulation import store as st
from services.simulation.config import SimulationConfig
from services.simulation.hub import Event, Hub
from services.simulation.loading import load_engine
from services.simulation.store import ModelRecord, SimulationRecord, Store

SAMPLINGS = ("mc", "lhs", "sobol")
BACKEND_PREFERENCES = ("AUTO", "CPU", "GPU", "NATIVE", "NUMPY")
MAX_TRIALS = 10**10
MAX_CHECKS = 10_000
"""Most convergence checks a simulation may make: each is a segment of the job queue."""
_RESERVATIONS = uuid.UUID("6f1c2d0e-5b7a-4c38-9e21-3a8d4f0b7c55")  # request id → reservation id


class Quotas(Protocol):
    """The tenant's limits (identity): raise ResourceExhausted naming the limit."""

    async def reserve_trials(self, tenant_id: str, trials: int, reservation_id: str) -> None: ...


class Users(Protocol):
    """Users' preferences (identity), read with the user's own credentials."""

    async def default_seed(
        self, user_id: str, credentials: Sequence[tuple[str, str]]
    ) -> int | None: ...


class Files(Protocol):
    """Workbooks and datasets stored in the files service, read with the user's own
    credentials; a file over ``max_bytes`` is InvalidArgument (``file_id``), read no further."""

    async def download(
        self, file_id: str, credentials: Sequence[tuple[str, str]], max_bytes: int | None = None
    ) -> bytes: ...


@dataclass(frozen=True)
class ModelSource:
    """Exactly one of a workbook (bytes), a file id in the files service, or a spec.

    A file is downloaded with the caller's ``credentials`` (so their access rights apply).
    ``spec`` is what the engine's ``model_from_spec`` takes (a ModelSpec message or its
    dict form) and ``spec_bytes`` its canonical serialisation, which the content hash uses.
    """

    workbook: bytes | None = None
    file_id: str | None = None
    credentials: tuple[tuple[str, str], ...] = ()
    spec: Any = None
    spec_bytes: bytes = b""


@dataclass(frozen=True)
class SimulationRequest:
    """What CreateSimulation asks for, already in domain terms."""

    model_id: str
    trials: int
    seed: int | None
    sampling: str = "mc"
    backend_preference: str = "AUTO"
    priority: int = 0
    request_id: str = ""
    bypass_cache: bool = False
    options: RunOptions = field(default_factory=RunOptions)
    # The caller's own credentials: their preferences are read with them when seed is None.
    credentials: tuple[tuple[str, str], ...] = ()


def _describe(value: ir.Node | ir.Table) -> str:
    if isinstance(value, ir.Const):
        return f"{value.value:g}"
    if isinstance(value, ir.Table):
        return f"[{value.rows}x{value.cols}]"
    return "…"  # another cell: varies per trial


def summarise(model: ir.Model) -> dict[str, Any]:
    """Inputs (name, address, distribution), outputs and warnings, as stored and shown."""
    return {
        "inputs": [
            {
                "name": s.name,
                "address": s.address,
                "distribution": f"{s.distribution}({', '.join(_describe(p) for p in s.params)})",
            }
            for s in model.inputs
        ],
        "outputs": [
            {"name": o.name, "address": o.address} | _convergence(o) for o in model.outputs
        ],
        "warnings": list(model.warnings),
        "simulations": simtable.simulations(model),
    }


def _convergence(output: ir.Output) -> dict[str, bool]:
    """``{"convergence": True}`` for an output with RiskConvergence (the summary of other
    outputs stays as it was)."""
    return {"convergence": True} if output.convergence is not None else {}


def _compile(source: ModelSource) -> tuple[ir.Model, str, str]:
    """(model, content hash, source kind); raises InvalidArgument for a refused model."""
    load_engine()
    try:
        if source.spec is not None:
            model = engine.model_from_spec(source.spec)
            content, kind = source.spec_bytes, "spec"
        else:
            assert source.workbook is not None
            model = engine.load_workbook(source.workbook)
            content, kind = source.workbook, "workbook"
        # one trial of every RiskSimtable simulation must fit the engine's memory budget
        memory.check_fits(simtable.expand(model).model)
        return model, hashlib.sha256(content).hexdigest(), kind
    except ModelError as exc:
        field = exc.location or ("spec" if source.spec is not None else "workbook")
        reason = f"{exc.function}: {exc.reason}" if exc.function else exc.reason
        raise InvalidArgument(field, reason) from None


def _same_model_request(earlier: ModelRecord, display_name: str, source: ModelSource) -> bool:
    """Whether a CreateModel reusing ``earlier``'s request id asks for the same model (a
    retry) rather than another one (AIP-155: refused)."""
    if earlier.display_name != display_name:
        return False
    if source.file_id is not None:
        return earlier.file_id == source.file_id
    content = source.spec_bytes if source.spec is not None else source.workbook
    return content is not None and hashlib.sha256(content).hexdigest() == earlier.content_hash


def _same_simulation_request(earlier: SimulationRecord, request: SimulationRequest) -> bool:
    """Whether a CreateSimulation reusing ``earlier``'s request id asks for the same run."""
    return (
        earlier.model_id == request.model_id
        and earlier.trials == request.trials
        and earlier.sampling == request.sampling
        and (request.seed is None or earlier.seed == request.seed)
        and earlier.backend_preference == request.backend_preference
        and earlier.priority == request.priority
        and RunOptions.from_json(earlier.options) == request.options
    )


def _default_cache_ttl(tenant_id: str) -> float:
    default: float = SCHEMA[CACHE_TTL].default
    return default


class Simulations:
    """Models, simulations and results of all tenants, over one store.

    ``cache_ttl(tenant_id)``: seconds a tenant's results are reused (the tenant setting
    ``simulation.result_cache_ttl_seconds``, read on every CreateSimulation).
    """

    def __init__(
        self,
        store: Store,
        hub: Hub,
        config: SimulationConfig,
        *,
        quotas: Quotas | None = None,
        files: Files | None = None,
        users: Users | None = None,
        wake: Callable[[], None] = lambda: None,
        cancel_local: Callable[[str], None] = lambda _id: None,
        cache_ttl: Callable[[str], float] = _default_cache_ttl,
    ) -> None:
        self.store, self.hub, self.config = store, hub, config
        self.cache_ttl = cache_ttl
        self.quotas, self.files, self.users = quotas, files, users
        self.wake, self.cancel_local = wake, cancel_local

    # -- models ---------------------------------------------------------------------------

    async def create_model(
        self,
        tenant_id: str,
        user_id: str,
        display_name: str,
        source: ModelSource,
        request_id: str = "",
    ) -> ModelRecord:
        """Compile (once) and store a model; a reused request id returns the earlier one."""
        if request_id:
            earlier = await self.store.model_by_request(tenant_id, request_id)
            if earlier is not None:
                if not _same_model_request(earlier, display_name, source):
                    raise InvalidArgument("request_id", "already used for a different request")
                return earlier
        file_id = source.file_id
        if file_id is not None:
            if self.files is None:
                raise FailedPrecondition("the files service is not configured")
            # Read no further than the workbook limit: a 5 GiB file is refused after 20 MiB.
            workbook = await self.files.download(
                file_id, source.credentials, max_bytes=MAX_WORKBOOK_BYTES
            )
            source = ModelSource(workbook=workbook)
        if source.workbook is not None and len(source.workbook) > MAX_WORKBOOK_BYTES:
            raise InvalidArgument("workbook", TOO_LARGE)
        model, content_hash, kind = await asyncio.to_thread(_compile, source)
        now = time.time()
        record = ModelRecord(
            id=str(uuid.uuid4()),
            tenant_id=tenant_id,
            request_id=request_id or None,
            display_name=display_name,
            content_hash=content_hash,
            source_kind=kind,
            file_id=file_id,
            creator_id=user_id,
            compiled=dump_model(model),
            summary=summarise(model),
            create_time=now,
            update_time=now,
            delete_time=None,
        )
        return await self.store.insert_model(record)

    async def get_model(self, tenant_id: str, model_id: str) -> ModelRecord:
        record = await self.store.get_model(tenant_id, model_id)
        if record is None:
            raise NotFound("model", model_id)
        return record

    async def output_addresses(self, tenant_id: str, model_id: str) -> dict[str, str]:
        """Output name → cell address of a model, deleted or not (for results)."""
        summary = await self.store.model_summary(tenant_id, model_id)
        return {o["name"]: o["address"] for o in summary["outputs"]} if summary else {}

    async def list_models(self, tenant_id: str, request: ListRequest) -> Page[ModelRecord]:
        return await self.store.list_models(tenant_id, request)

    async def delete_model(self, tenant_id: str, model_id: str) -> None:
        """Delete a model; FAILED_PRECONDITION while one of its simulations is queued or
        running (its results and finished simulations keep their model)."""
        outcome = await self.store.delete_model(tenant_id, model_id, time.time())
        if outcome == "absent":
            raise NotFound("model", model_id)
        if outcome == "in use":
            raise FailedPrecondition(
                f"model {model_id} has queued or running simulations; cancel them first"
            )

    # -- simulations ----------------------------------------------------------------------

    def cache_key(
        self, model: ModelRecord, trials: int, seed: int, sampling: str, options: RunOptions
    ) -> str:
        """Results depend on these alone (plus the statistics settings that shape them)."""
        parts: tuple[object, ...] = (
            model.content_hash,
            trials,
            seed,
            sampling,
            self.config.exact_limit,
        )
        if options != RunOptions():  # keys of plain simulations stay as they were
            parts += (sorted(options.to_json().items()),)
        return hashlib.sha256(repr(parts).encode()).hexdigest()

    async def create_simulation(
        self, tenant_id: str, user_id: str, request: SimulationRequest
    ) -> SimulationRecord:
        """Queue a simulation (or answer from the cache); idempotent by request id."""
        _check(request)
        stopping = request.options.convergence
        if request.request_id:
            earlier = await self.store.simulation_by_request(tenant_id, request.request_id)
            if earlier is not None:
                if not _same_simulation_request(earlier, request):
                    raise InvalidArgument("request_id", "already used for a different request")
                return earlier
        model = await self.get_model(tenant_id, request.model_id)
        _check_scenarios(request.options, model)
        _check_sampling(request, model)
        _check_monitored(request, model)
        seed = await self._seed(user_id, request)
        key = self.cache_key(model, request.trials, seed, request.sampling, request.options)
        cached = None
        ttl = self.cache_ttl(tenant_id)
        if not request.bypass_cache and ttl > 0:
            cached = await self.store.cached_result(tenant_id, key, time.time() - ttl)
        now = time.time()
        simulation_id = str(uuid.uuid4())
        chunk = min(self.config.chunk_trials, request.trials)
        if cached is None and self.quotas is not None:
            # Keyed by the request id when there is one, so a retry after a failure between
            # the reservation and the insert (or a concurrent duplicate) reserves once.
            reservation = (
                str(uuid.uuid5(_RESERVATIONS, request.request_id))
                if request.request_id
                else simulation_id
            )
            await self.quotas.reserve_trials(tenant_id, request.trials, reservation)
        record = SimulationRecord(
            id=simulation_id,
            tenant_id=tenant_id,
            user_id=user_id,
            request_id=request.request_id or None,
            model_id=model.id,
            cache_key=key,
            trials=request.trials,
            chunk_trials=chunk,
            segment_trials=(
                self._segment(chunk, request.trials) if stopping is None else stopping.check_every
            ),
            seed=seed,
            sampling=request.sampling,
            backend_preference=request.backend_preference,
            priority=request.priority,
            state=st.SUCCEEDED if cached else st.QUEUED,
            state_reason="served from the result cache" if cached else "",
            trials_done=request.trials if cached else 0,
            backend="cache" if cached else "",
            cached=cached is not None,
            progress=None,
            create_time=now,
            update_time=now,
            start_time=now if cached else None,
            end_time=now if cached else None,
            trace_context=telemetry.traceparent(),
            options=request.options.to_json(),
        )
        stored, created = await self.store.insert_simulation(record, cached)
        if created and not cached:
            self.wake()
        return stored

    async def _seed(self, user_id: str, request: SimulationRequest) -> int:
        """The request's seed; unset, the user's default seed, else a random one."""
        if request.seed is not None:
            return request.seed
        preferred = None
        if self.users is not None:
            preferred = await self.users.default_seed(user_id, request.credentials)
        if preferred is None:
            return secrets.randbits(63)
        if not 0 <= preferred < 2**63:
            raise FailedPrecondition(
                f"seed is unset and the default seed of your preferences ({preferred}) is "
                "not within 0..2^63-1: set seed, or change preferences.default_seed"
            )
        return preferred

    def _segment(self, chunk: int, trials: int) -> int:
        """Trials per segment: whole chunks, at most ``max_segments`` segments, and at
        least ``min_segment_trials`` (rounded up to whole chunks) unless that is all."""
        chunks = math.ceil(trials / chunk)
        fewest = math.ceil(self.config.min_segment_trials / chunk)
        return chunk * max(math.ceil(chunks / self.config.max_segments), fewest)

    async def get_simulation(self, tenant_id: str, simulation_id: str) -> SimulationRecord:
        record = await self.store.get_simulation(tenant_id, simulation_id)
        if record is None:
            raise NotFound("simulation", simulation_id)
        return record

    async def list_simulations(
        self, tenant_id: str, request: ListRequest
    ) -> Page[SimulationRecord]:
        return await self.store.list_simulations(tenant_id, request)

    async def cancel_simulation(self, tenant_id: str, simulation_id: str) -> SimulationRecord:
        """Cancel a queued or running simulation; a finished one is returned as it is."""
        if not await self.store.cancel(tenant_id, simulation_id, "cancelled by user", time.time()):
            return await self.get_simulation(tenant_id, simulation_id)  # ended, or NotFound
        self.cancel_local(simulation_id)
        record = await self.get_simulation(tenant_id, simulation_id)
        self.hub.publish(simulation_id, record)
        return record

    async def watch(self, tenant_id: str, simulation_id: str) -> AsyncIterator[Event]:
        """The current state, then progress, then the final state (see :meth:`Hub.watch`).

        A simulation already watched here starts from the hub's copy of its state, kept
        current by its workers and poller, so that a crowd of watchers joining at once
        costs one database read, not one each (the engine shares this process's cores).
        """
        first = self.hub.latest(simulation_id)
        if first is None or first.tenant_id != tenant_id:
            first = await self.get_simulation(tenant_id, simulation_id)
        async for event in self.hub.watch(first):
            yield event

    async def get_results(
        self, tenant_id: str, simulation_id: str
    ) -> tuple[SimulationRecord, dict[str, Any]]:
        """(simulation, results per output); FAILED_PRECONDITION until it has succeeded."""
        record = await self.get_simulation(tenant_id, simulation_id)
        data = await self.store.get_results(tenant_id, simulation_id)
        if record.state != st.SUCCEEDED or data is None:
            raise FailedPrecondition(f"simulation {simulation_id} is {record.state}, no results")
        return record, data

    async def sipmath(self, tenant_id: str, simulation_id: str, terms: int | None) -> bytes:
        """The SIPmath 3.0 library (JSON) of a SUCCEEDED simulation's kept trials, dated the
        day it ended, so every download of it is the same; FAILED_PRECONDITION before that,
        or when its trials are no longer kept."""
        record = await self.get_simulation(tenant_id, simulation_id)
        if record.state != st.SUCCEEDED:
            raise FailedPrecondition(f"simulation {simulation_id} is {record.state}, no results")
        blobs = await self.store.kept_statistics(record)
        if not blobs:
            raise FailedPrecondition(
                f"simulation {simulation_id}: the trials of the run behind its results are no "
                "longer kept"
            )
        name = await self.store.model_name(tenant_id, record.model_id) or record.model_id
        created = time.strftime("%Y-%m-%d", time.gmtime(record.end_time or record.create_time))
        try:
            return await asyncio.to_thread(_sipmath, blobs, name, record.seed, terms, created)
        except ValueError as exc:  # no feasible metalog for a variable: it names it
            raise FailedPrecondition(f"simulation {simulation_id}: {exc}") from None

    async def gauges(self) -> dict[str, float]:
        """The queue and workers of every tenant, for the operator overview."""
        now = time.time()
        counts, workers = await self.queue_status()
        waiting, running, oldest = await self.store.segment_counts(now)
        gpus = [w for w in workers if w["backend"] in ("gpu", "cuda")]
        return {
            "simulations_queued": counts.get(st.QUEUED, 0),
            "simulations_running": counts.get(st.RUNNING, 0),
            "segments_queued": waiting,
            "segments_running": running,
            "oldest_queued_seconds": max(0.0, now - oldest) if oldest is not None else 0.0,
            "workers_cpu": len(workers) - len(gpus),
            "workers_gpu": len(gpus),
            "gpu_devices": sum(len(w["devices"] or ()) for w in gpus),
        }

    async def queue_status(self) -> tuple[dict[str, int], list[dict[str, Any]]]:
        """(counts of QUEUED and RUNNING jobs, workers seen within three lease periods)."""
        return await self.store.queue_status(time.time() - 3 * self.config.lease_seconds)


def _sipmath(blobs: list[bytes], name: str, seed: int, terms: int | None, created: str) -> bytes:
    """The library of the merged segment statistics ``blobs`` (see :meth:`Simulations.sipmath`),
    written as compactly as JSON allows: its correlation matrix grows with the square of the
    variables."""
    # imported here, on a thread: SciPy is not loaded while the service starts
    from services.engine import sipmath
    from services.engine.stats import Partial

    terms = sipmath.DEFAULT_TERMS if terms is None else terms
    library = sipmath.library_of_run(
        name, Partial.merged(blobs), seed=seed, terms=terms, created=created
    )
    return json.dumps(library, separators=(",", ":")).encode()


def _check_scenarios(options: RunOptions, model: ModelRecord) -> None:
    """Every scenario is valid and names an output of the model, or none."""
    if len(options.scenarios) > MAX_SCENARIOS:
        raise InvalidArgument("scenarios", f"must hold at most {MAX_SCENARIOS} targets")
    outputs = {o["name"] for o in model.summary["outputs"]}
    for i, scenario in enumerate(options.scenarios):
        wrong = scenario.check()
        if wrong is not None:
            raise InvalidArgument(f"scenarios[{i}]", wrong)
        if scenario.output and scenario.output not in outputs:
            raise InvalidArgument(
                f"scenarios[{i}].output", f"the model has no output named {scenario.output!r}"
            )


def _check_sampling(request: SimulationRequest, model: ModelRecord) -> None:
    """Sobol samples one dimension per input: refuse a model with more (RiskSimtable copies
    with varied seeds included; a run with more copies than that fails, saying so)."""
    if request.sampling != "sobol":
        return
    inputs = len(model.summary.get("inputs", ()))
    if request.options.vary_seeds:
        inputs *= int(model.summary.get("simulations", 1))
    if inputs > sobol.MAX_DIMENSIONS:
        raise InvalidArgument(
            "sampling",
            f"Sobol samples at most {sobol.MAX_DIMENSIONS:,} inputs; the model has {inputs:,}",
        )


def _check_monitored(request: SimulationRequest, model: ModelRecord) -> None:
    """Convergence stopping without a default test needs an output with RiskConvergence."""
    stopping = request.options.convergence
    if stopping is None or stopping.default is not None:
        return
    if not any(o.get("convergence") for o in model.summary.get("outputs", ())):
        raise InvalidArgument(
            "convergence.tolerance",
            "no output of the model has RiskConvergence: give the run's own tolerance",
        )


def _check(request: SimulationRequest) -> None:
    if not 1 <= request.trials <= MAX_TRIALS:
        raise InvalidArgument("trials", f"must be within 1..{MAX_TRIALS}")
    stopping = request.options.convergence
    if stopping is not None:
        if stopping.max_trials != request.trials:
            raise InvalidArgument("convergence", "the most trials of a converging run is trials")
        if stopping.max_trials // stopping.check_every > MAX_CHECKS:
            raise InvalidArgument(
                "convergence.check_every",
                f"must be at least max_trials / {MAX_CHECKS:,} (each check is a segment)",
            )
    if request.sampling not in SAMPLINGS:
        raise InvalidArgument("sampling", f"must be one of {', '.join(SAMPLINGS)}")
    if request.backend_preference not in BACKEND_PREFERENCES:
        raise InvalidArgument("backend", f"must be one of {', '.join(BACKEND_PREFERENCES)}")
    if request.seed is not None and not 0 <= request.seed < 2**63:
        raise InvalidArgument("seed", "must be within 0..2^63-1")
