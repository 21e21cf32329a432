"""Persistence of models, simulations, their segments (the job queue), results and workers.

The schema lives here; the queue's statements (leases, checkpoints) live in ``queue.py``.
A simulation's trials are split into segments when it is created (``segment_trials``
each) so that several workers can run one large simulation at once. Times are UNIX
seconds (floats) so both databases compare them the same way.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    ColumnElement,
    Float,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    Update,
    bindparam,
    delete,
    exists,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from services.runtime.db import Database, Reader, rowcount
from services.runtime.errors import NotFound
from services.runtime.listing import (
    Listing,
    ListRequest,
    Page,
    enum,
    flag,
    number,
    text,
    timestamp,
)
from services.runtime.outbox import Outbox
from services.simulation.events import headline, simulation_event

metadata = MetaData()

models = Table(
    "models",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("tenant_id", String(64), nullable=False),
    Column("request_id", String(128)),
    Column("display_name", String(256), nullable=False),
    Column("content_hash", String(64), nullable=False),
    Column("source_kind", String(16), nullable=False),
    Column("file_id", String(36)),
    Column("creator_id", String(64), nullable=False),
    Column("compiled", LargeBinary, nullable=False),
    Column("summary", JSON, nullable=False),
    Column("create_time", Float, nullable=False),
    Column("update_time", Float, nullable=False),
    Column("delete_time", Float),
)

simulations = Table(
    "simulations",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("tenant_id", String(64), nullable=False),
    Column("user_id", String(64), nullable=False),
    Column("request_id", String(128)),
    Column("model_id", String(36), nullable=False),
    Column("cache_key", String(64), nullable=False),
    Column("trials", BigInteger, nullable=False),
    Column("chunk_trials", BigInteger, nullable=False),
    Column("seed", BigInteger, nullable=False),
    Column("sampling", String(8), nullable=False),
    Column("backend_preference", String(8), nullable=False),
    Column("priority", Integer, nullable=False),
    Column("state", String(16), nullable=False),
    Column("state_reason", Text, nullable=False),
    Column("trials_done", BigInteger, nullable=False),
    Column("backend", String(16), nullable=False),
    Column("cached", Boolean, nullable=False),
    Column("progress", JSON),
    Column("create_time", Float, nullable=False),
    Column("update_time", Float, nullable=False),
    Column("start_time", Float),
    Column("end_time", Float),
    Column("segment_trials", BigInteger, nullable=False),
    Column("trace_context", String(128)),  # W3C traceparent of the creating request
    Column("cpu_seconds", Float, nullable=False, server_default="0"),
    Column("gpu_seconds", Float, nullable=False, server_default="0"),
    Column("options", JSON),  # engine.outcome.RunOptions as JSON; NULL: the defaults
)

segments = Table(
    "segments",
    metadata,
    Column("id", String(48), primary_key=True),
    Column("simulation_id", String(36), nullable=False),
    Column("idx", Integer, nullable=False),
    Column("tenant_id", String(64), nullable=False),
    Column("priority", Integer, nullable=False),
    Column("backend_preference", String(8), nullable=False),
    Column("first_trial", BigInteger, nullable=False),
    Column("end_trial", BigInteger, nullable=False),
    Column("state", String(8), nullable=False),
    Column("trials_done", BigInteger, nullable=False),
    Column("lease_owner", String(64)),
    Column("lease_epoch", Integer, nullable=False),
    Column("lease_expires", Float),
    Column("checkpoint", LargeBinary),
    Column("progress", JSON),
    Column("create_time", Float, nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),  # leases since progress
)

results = Table(
    "results",
    metadata,
    Column("simulation_id", String(36), primary_key=True),
    Column("data", JSON, nullable=False),
    Column("create_time", Float, nullable=False),
)

workers = Table(
    "workers",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("backend", String(16), nullable=False),
    Column("devices", JSON, nullable=False),
    Column("current_job", String(36)),
    Column("heartbeat", Float, nullable=False),
)

QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED = (
    "QUEUED",
    "RUNNING",
    "SUCCEEDED",
    "FAILED",
    "CANCELLED",
)
ACTIVE_STATES = (QUEUED, RUNNING)
PENDING, DONE, DROPPED = "PENDING", "DONE", "DROPPED"  # segment states (DROPPED: cancelled)


@dataclass(frozen=True)
class ModelRecord:
    """A stored model: the compiled IR (``engine.serial``) and a JSON summary of it."""

    id: str
    tenant_id: str
    request_id: str | None
    display_name: str
    content_hash: str
    source_kind: str
    file_id: str | None
    creator_id: str
    compiled: bytes
    summary: dict[str, Any]
    create_time: float
    update_time: float
    delete_time: float | None


@dataclass(frozen=True)
class SimulationRecord:
    """One simulation as stored; ``progress`` aggregates its segments' last checkpoints."""

    id: str
    tenant_id: str
    user_id: str
    request_id: str | None
    model_id: str
    cache_key: str
    trials: int
    chunk_trials: int
    seed: int
    sampling: str
    backend_preference: str
    priority: int
    state: str
    state_reason: str
    trials_done: int
    backend: str
    cached: bool
    progress: dict[str, Any] | None
    create_time: float
    update_time: float
    start_time: float | None
    end_time: float | None
    segment_trials: int
    trace_context: str | None = None  # W3C traceparent of the request that created it
    cpu_seconds: float = 0.0  # engine seconds the workers spent on it, as they measured them
    gpu_seconds: float = 0.0
    options: dict[str, Any] | None = None  # engine.outcome.RunOptions.to_json(); None: defaults


MODELS = Listing(
    {
        "display_name": text(models.c.display_name),
        "source": enum(
            models.c.source_kind,
            {"MODEL_SOURCE_WORKBOOK": "workbook", "MODEL_SOURCE_SPEC": "spec"},
        ),
        "create_time": timestamp(models.c.create_time, epoch=True),
        "update_time": timestamp(models.c.update_time, epoch=True),
    },
    key=models.c.id,
    default_order="create_time desc",
)
"""ListModels: the fields its ``filter`` and ``order_by`` take (see simulation.proto)."""

SIMULATIONS = Listing(
    {
        "state": enum(
            simulations.c.state,
            {f"STATE_{s}": s for s in (QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED)},
        ),
        "model_id": text(simulations.c.model_id, sortable=False),
        # The engine's back end as the contract names it: "numpy" and "cpu" both ran on
        # CPU; a cached or not yet started simulation has none.
        "backend": enum(
            simulations.c.backend,
            {
                "BACKEND_UNSPECIFIED": ("", "cache"),
                "BACKEND_CPU": ("numpy", "cpu"),
                "BACKEND_GPU": ("cuda",),
            },
        ),
        "cached": flag(simulations.c.cached),
        "trials": number(simulations.c.trials),
        "priority": number(simulations.c.priority),
        "create_time": timestamp(simulations.c.create_time, epoch=True),
        "update_time": timestamp(simulations.c.update_time, epoch=True),
    },
    key=simulations.c.id,
    default_order="create_time desc",
)
"""ListSimulations: the fields its ``filter`` and ``order_by`` take (see simulation.proto)."""


# GetSimulation, watchers and workers read a simulation constantly: the statement is
# built (and its cache key computed) once.
_SIMULATION = select(simulations).where(
    simulations.c.tenant_id == bindparam("t"), simulations.c.id == bindparam("s")
)


def _model(row: Any) -> ModelRecord:
    return ModelRecord(**dict(row._mapping))


def _simulation(row: Any) -> SimulationRecord:
    return SimulationRecord(**dict(row._mapping))


class Store:
    """All SQL of the simulation service; every method is one short transaction.

    Every method over a tenant's rows takes the tenant first: another tenant's row is
    absent. The worker registry and the queue's counts belong to the service itself.

    Reads use plain sessions, so on SQLite they never queue for the single write lock
    that checkpoints and leases hold (WAL lets them run beside a writer).
    """

    def __init__(self, database: Database, outbox: Outbox | None = None) -> None:
        self.db = database
        self.outbox = outbox or Outbox()

    # -- models ---------------------------------------------------------------------------

    async def insert_model(self, record: ModelRecord) -> ModelRecord:
        """Insert; with a request id already used by the tenant, return the earlier model."""
        try:
            async with self.db.transaction() as session:
                await session.execute(insert(models).values(**record.__dict__))
            return record
        except IntegrityError:
            existing = await self.model_by_request(record.tenant_id, record.request_id or "")
            if existing is None:
                raise
            return existing

    async def model_by_request(self, tenant_id: str, request_id: str) -> ModelRecord | None:
        async with self.db.reading() as session:
            row = (
                await session.execute(
                    select(models).where(
                        models.c.tenant_id == tenant_id, models.c.request_id == request_id
                    )
                )
            ).first()
        return _model(row) if row else None

    async def get_model(self, tenant_id: str, model_id: str) -> ModelRecord | None:
        """The tenant's live model, or None (another tenant's model is None too)."""
        async with self.db.reading() as session:
            row = (
                await session.execute(
                    select(models).where(
                        models.c.id == model_id,
                        models.c.tenant_id == tenant_id,
                        models.c.delete_time.is_(None),
                    )
                )
            ).first()
        return _model(row) if row else None

    async def compiled_model(self, tenant_id: str, model_id: str) -> bytes | None:
        """The stored IR of a model (``engine.serial``), deleted or not (running jobs keep it)."""
        query = select(models.c.compiled).where(
            models.c.tenant_id == tenant_id, models.c.id == model_id
        )
        async with self.db.reading() as session:
            return (await session.execute(query)).scalar()

    async def model_summary(self, tenant_id: str, model_id: str) -> dict[str, Any] | None:
        """A model's summary, deleted or not (results outlive their model)."""
        query = select(models.c.summary).where(
            models.c.tenant_id == tenant_id, models.c.id == model_id
        )
        async with self.db.reading() as session:
            return (await session.execute(query)).scalar()

    async def list_models(self, tenant_id: str, request: ListRequest) -> Page[ModelRecord]:
        """A page of the tenant's live models; InvalidArgument for a bad filter, order or token."""
        query = MODELS.query(request, tenant_id)
        statement = select(models).where(
            models.c.tenant_id == tenant_id, models.c.delete_time.is_(None)
        )
        async with self.db.reading() as session:
            rows = (await session.execute(query.apply(statement))).all()
        items, token = query.page(rows)
        return Page([ModelRecord(**item) for item in items], token)

    async def delete_model(
        self, tenant_id: str, model_id: str, now: float
    ) -> Literal["deleted", "absent", "in use"]:
        """Soft delete (simulations and results keep pointing at it), unless one of its
        simulations is queued or running ("in use").

        The model's row is locked first (PostgreSQL; SQLite's write lock serialises it
        anyway) and :meth:`insert_simulation` locks it too, so a simulation created
        meanwhile is either counted here or refused there.
        """
        live = (
            models.c.id == model_id,
            models.c.tenant_id == tenant_id,
            models.c.delete_time.is_(None),
        )
        async with self.db.transaction() as session:
            found = await session.scalar(select(models.c.id).where(*live).with_for_update())
            if found is None:
                return "absent"
            active = await session.scalar(
                select(func.count())
                .select_from(simulations)
                .where(
                    simulations.c.tenant_id == tenant_id,
                    simulations.c.model_id == model_id,
                    simulations.c.state.in_(ACTIVE_STATES),
                )
            )
            if active:
                return "in use"
            await session.execute(
                update(models).where(*live).values(delete_time=now, update_time=now)
            )
        return "deleted"

    # -- simulations ----------------------------------------------------------------------

    async def insert_simulation(
        self, record: SimulationRecord, result_data: dict[str, Any] | None = None
    ) -> tuple[SimulationRecord, bool]:
        """Insert with its segments, or with its results when served from the cache.

        Returns (record, created).
        A request id the tenant already used returns the earlier simulation, not a new one;
        a model deleted since the caller read it is NotFound (see :meth:`delete_model`).
        """
        try:
            async with self.db.transaction() as session:
                model = (
                    await session.execute(
                        select(models.c.delete_time, models.c.summary)
                        .where(
                            models.c.tenant_id == record.tenant_id, models.c.id == record.model_id
                        )
                        .with_for_update(read=True)
                    )
                ).first()
                if model is None or model.delete_time is not None:
                    raise NotFound("model", record.model_id)
                await session.execute(insert(simulations).values(**record.__dict__))
                inputs = len(model.summary.get("inputs", ()))
                created = simulation_event(
                    "created", record, priority=record.priority, model_inputs=inputs
                )
                if result_data is None:
                    await session.execute(insert(segments), _segments_of(record))
                    await self.outbox.add(session, created)
                else:
                    await session.execute(
                        insert(results).values(
                            simulation_id=record.id,
                            data=result_data,
                            create_time=record.create_time,
                        )
                    )
                    succeeded = simulation_event(
                        "succeeded", record, duration_seconds=0.0, results=headline(result_data)
                    )
                    await self.outbox.add(session, created, succeeded)
            return record, True
        except IntegrityError:
            if not record.request_id:
                raise
            existing = await self.simulation_by_request(record.tenant_id, record.request_id)
            if existing is None:
                raise
            return existing, False

    async def simulation_by_request(
        self, tenant_id: str, request_id: str
    ) -> SimulationRecord | None:
        async with self.db.reading() as session:
            row = (
                await session.execute(
                    select(simulations).where(
                        simulations.c.tenant_id == tenant_id,
                        simulations.c.request_id == request_id,
                    )
                )
            ).first()
        return _simulation(row) if row else None

    async def get_simulation(self, tenant_id: str, simulation_id: str) -> SimulationRecord | None:
        """The tenant's simulation, or None (another tenant's simulation is None too)."""
        async with self.db.reading() as session:
            row = (await session.execute(_SIMULATION, {"t": tenant_id, "s": simulation_id})).first()
        return _simulation(row) if row else None

    async def simulations_by_id(self, ids: Collection[str]) -> dict[str, SimulationRecord]:
        """The simulations of ``ids`` (any tenant's) found, by id: one query per 500 ids,
        which every database takes as bound parameters."""
        ids = list(ids)
        found: dict[str, SimulationRecord] = {}
        async with self.db.reading() as session:
            for start in range(0, len(ids), 500):
                batch = ids[start : start + 500]
                rows = await session.execute(select(simulations).where(simulations.c.id.in_(batch)))
                found.update((row.id, _simulation(row)) for row in rows)
        return found

    async def list_simulations(
        self, tenant_id: str, request: ListRequest
    ) -> Page[SimulationRecord]:
        """A page of the tenant's simulations; InvalidArgument for a bad filter, order or token."""
        query = SIMULATIONS.query(request, tenant_id)
        statement = select(simulations).where(simulations.c.tenant_id == tenant_id)
        async with self.db.reading() as session:
            rows = (await session.execute(query.apply(statement))).all()
        items, token = query.page(rows)
        return Page([SimulationRecord(**item) for item in items], token)

    async def cached_result(
        self, tenant_id: str, cache_key: str, not_before: float
    ) -> dict[str, Any] | None:
        """Results of the newest successful run with this key that ended after ``not_before``.

        Only runs count: a simulation served from the cache copies results as old as their
        run, so counting it would keep results alive past the age limit forever.
        """
        query = (
            select(results.c.data)
            .join(simulations, simulations.c.id == results.c.simulation_id)
            .where(
                simulations.c.tenant_id == tenant_id,
                simulations.c.cache_key == cache_key,
                simulations.c.state == SUCCEEDED,
                simulations.c.cached.is_(False),
                simulations.c.end_time >= not_before,
            )
            .order_by(simulations.c.end_time.desc())
            .limit(1)
        )
        async with self.db.reading() as session:
            return (await session.execute(query)).scalar()

    async def cancel(self, tenant_id: str, simulation_id: str, reason: str, now: float) -> bool:
        """Move an active simulation to CANCELLED; False when it is not active (or absent)."""
        async with self.db.transaction() as session:
            await session.execute(
                drop_segments(simulation_id, simulations.c.tenant_id == tenant_id)
            )
            result = await session.execute(
                update(simulations)
                .where(
                    simulations.c.id == simulation_id,
                    simulations.c.tenant_id == tenant_id,
                    simulations.c.state.in_(ACTIVE_STATES),
                )
                .values(state=CANCELLED, state_reason=reason, end_time=now, update_time=now)
            )
            if rowcount(result) != 1:
                return False
            record = await read_simulation(session, simulation_id)
            await self.outbox.add(session, simulation_event("cancelled", record, reason=reason))
        return True

    async def get_results(self, tenant_id: str, simulation_id: str) -> dict[str, Any] | None:
        query = (
            select(results.c.data)
            .join(simulations, simulations.c.id == results.c.simulation_id)
            .where(simulations.c.tenant_id == tenant_id, results.c.simulation_id == simulation_id)
        )
        async with self.db.reading() as session:
            return (await session.execute(query)).scalar()

    async def kept_statistics(self, record: SimulationRecord) -> list[bytes]:
        """The final statistics of the segments a SUCCEEDED simulation's results were merged
        from, in trial order: those ending within its ``trials_done`` (a converged run's
        prefix). A simulation served from the cache has none of its own: those of the run
        it was served from, the newest run with its key that had ended when it was created
        (the one :meth:`cached_result` picked then). Empty when none is kept."""
        source = record.id
        if record.cached:
            run = (
                select(simulations.c.id)
                .where(
                    simulations.c.tenant_id == record.tenant_id,
                    simulations.c.cache_key == record.cache_key,
                    simulations.c.state == SUCCEEDED,
                    simulations.c.cached.is_(False),
                    simulations.c.end_time <= record.create_time,
                )
                .order_by(simulations.c.end_time.desc())
                .limit(1)
            )
            async with self.db.reading() as session:
                found = (await session.execute(run)).scalar()
            if found is None:
                return []
            source = found
        query = (
            select(segments.c.checkpoint)
            .join(simulations, simulations.c.id == segments.c.simulation_id)
            .where(
                segments.c.simulation_id == source,
                simulations.c.tenant_id == record.tenant_id,
                segments.c.state == DONE,
                segments.c.end_trial <= simulations.c.trials_done,
            )
            .order_by(segments.c.idx)
        )
        async with self.db.reading() as session:
            return [r.checkpoint for r in await session.execute(query)]

    async def model_name(self, tenant_id: str, model_id: str) -> str | None:
        """A model's display name, deleted or not."""
        query = select(models.c.display_name).where(
            models.c.tenant_id == tenant_id, models.c.id == model_id
        )
        async with self.db.reading() as session:
            return (await session.execute(query)).scalar()

    # -- workers and queue status ---------------------------------------------------------

    async def register_worker(
        self, worker_id: str, backend: str, devices: Sequence[dict[str, Any]], now: float
    ) -> None:
        async with self.db.transaction() as session:
            await session.execute(delete(workers).where(workers.c.id == worker_id))
            await session.execute(
                insert(workers).values(
                    id=worker_id, backend=backend, devices=list(devices), heartbeat=now
                )
            )

    async def worker_heartbeat(self, worker_id: str, current_job: str | None, now: float) -> None:
        async with self.db.transaction() as session:
            await session.execute(
                update(workers)
                .where(workers.c.id == worker_id)
                .values(current_job=current_job, heartbeat=now)
            )

    async def remove_worker(self, worker_id: str) -> None:
        async with self.db.transaction() as session:
            await session.execute(delete(workers).where(workers.c.id == worker_id))

    async def queue_status(self, alive_after: float) -> tuple[dict[str, int], list[dict[str, Any]]]:
        """(count per active state, live workers) for the whole service; each worker row
        carries ``job_tenant``, the tenant of its current simulation (None when idle)."""
        async with self.db.reading() as session:
            per_state = await session.execute(
                select(simulations.c.state, func.count())
                .where(simulations.c.state.in_(ACTIVE_STATES))
                .group_by(simulations.c.state)
            )
            counts: dict[str, int] = {state: count for state, count in per_state}
            rows = (
                await session.execute(
                    select(workers, simulations.c.tenant_id.label("job_tenant"))
                    .select_from(
                        workers.outerjoin(simulations, simulations.c.id == workers.c.current_job)
                    )
                    .where(workers.c.heartbeat >= alive_after)
                    .order_by(workers.c.id)
                )
            ).all()
        return counts, [dict(r._mapping) for r in rows]

    async def segment_counts(self, now: float) -> tuple[int, int, float | None]:
        """(segments waiting for a worker, segments leased, create time of the oldest
        waiting one) over every tenant's active simulations."""
        live = exists().where(
            simulations.c.id == segments.c.simulation_id, simulations.c.state.in_(ACTIVE_STATES)
        )
        leased = segments.c.lease_expires >= now
        query = select(
            func.count().filter(~leased | segments.c.lease_expires.is_(None)),
            func.count().filter(leased),
            func.min(segments.c.create_time).filter(~leased | segments.c.lease_expires.is_(None)),
        ).where(segments.c.state == PENDING, live)
        async with self.db.reading() as session:
            waiting, running, oldest = (await session.execute(query)).one()
        return int(waiting), int(running), oldest


async def read_simulation(session: Reader, simulation_id: str) -> SimulationRecord:
    """A simulation as the transaction sees it (after its own changes)."""
    query = select(simulations).where(simulations.c.id == simulation_id)
    return _simulation((await session.execute(query)).one())


def drop_segments(simulation_id: str, *where: ColumnElement[bool]) -> Update:
    """The statement taking an active simulation's unfinished segments out of the queue.

    Run it just before the simulation's own update when that stops it: the lease scan
    and the fair share count then skip them (and their worker is fenced at once). Segment
    rows first, then the simulation's, is the order leases and checkpoints lock them in
    too, so PostgreSQL never sees a deadlock.
    """
    active = exists().where(
        simulations.c.id == simulation_id, simulations.c.state.in_(ACTIVE_STATES), *where
    )
    return (
        update(segments)
        .where(segments.c.simulation_id == simulation_id, segments.c.state == PENDING, active)
        .values(state=DROPPED)
    )


def _segments_of(record: SimulationRecord) -> list[dict[str, Any]]:
    """The segments of a new simulation: consecutive ranges of ``segment_trials`` trials."""
    size = record.segment_trials
    return [
        dict(
            id=f"{record.id}/{i}",
            simulation_id=record.id,
            idx=i,
            tenant_id=record.tenant_id,
            priority=record.priority,
            backend_preference=record.backend_preference,
            first_trial=first,
            end_trial=min(first + size, record.trials),
            state=PENDING,
            trials_done=0,
            lease_owner=None,
            lease_epoch=0,
            lease_expires=None,
            checkpoint=None,
            progress=None,
            create_time=record.create_time,
            attempts=0,
        )
        for i, first in enumerate(range(0, record.trials, size))
    ]
