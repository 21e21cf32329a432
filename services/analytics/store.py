"""All of analytics' SQL: the facts taken in from events, and the usage ledger.

Usage is recorded from the services' events, not polled: each simulation's facts
(``sim_facts``: created, started, ended, trials, engine seconds, model size) and each
file's (``file_facts``: size, uploaded, deleted) are kept as the events describe them,
and every count the reports show is derived from those rows. Counts that arrive as
usage records (RecordEvent: API calls) are kept in ``usage_records``. Events and records
are taken in at least once (relayed from outboxes): ``ingested`` and the records'
primary key make a repeat count once. Times are UNIX seconds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    BindParameter,
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    Row,
    Select,
    String,
    Table,
    and_,
    bindparam,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from services.runtime.db import Database, rowcount

__all__ = ["AnalyticsStore", "FileFact", "LedgerRow", "LedgerTotal", "SimulationFact", "metadata"]

metadata = MetaData()

ingested = Table(
    "ingested",
    metadata,
    Column("event_id", String(64), primary_key=True),
    Column("ingest_time", Float, nullable=False),
)

sim_facts = Table(
    "sim_facts",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("tenant_id", String(36), nullable=False),
    Column("user_id", String(36), nullable=False),
    Column("state", String(16), nullable=False),
    Column("trials", Float, nullable=False),
    Column("trials_done", Float, nullable=False),
    Column("cached", Boolean, nullable=False),
    Column("backend", String(16), nullable=False),
    Column("model_inputs", Integer, nullable=False),
    Column("create_time", Float, nullable=False),
    Column("start_time", Float),
    Column("end_time", Float),
    Column("cpu_seconds", Float, nullable=False),
    Column("gpu_seconds", Float, nullable=False),
    Index("ix_sim_facts_tenant_create", "tenant_id", "create_time"),
    Index("ix_sim_facts_tenant_end", "tenant_id", "end_time"),
)

file_facts = Table(
    "file_facts",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("tenant_id", String(36), nullable=False),
    Column("owner_id", String(36), nullable=False),
    Column("size", Float, nullable=False),
    Column("upload_time", Float, nullable=False),
    Column("delete_time", Float),
    Index("ix_file_facts_tenant_upload", "tenant_id", "upload_time"),
)

usage_records = Table(
    "usage_records",
    metadata,
    Column("id", String(128), primary_key=True),
    Column("tenant_id", String(36), nullable=False),
    Column("user_id", String(36), nullable=False),
    Column("metric", String(32), nullable=False),
    Column("quantity", Float, nullable=False),
    Column("event_time", Float, nullable=False),
    Index("ix_usage_records_tenant_time", "tenant_id", "metric", "event_time"),
)


@dataclass(frozen=True)
class SimulationFact:
    """A simulation as its events described it."""

    id: str
    tenant_id: str
    user_id: str
    state: str  # QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED
    trials: float
    trials_done: float
    cached: bool
    backend: str
    model_inputs: int
    create_time: float
    start_time: float | None
    end_time: float | None
    cpu_seconds: float
    gpu_seconds: float


@dataclass(frozen=True)
class FileFact:
    """A file's size and lifetime."""

    id: str
    tenant_id: str
    owner_id: str
    size: float
    upload_time: float
    delete_time: float | None


@dataclass(frozen=True)
class LedgerRow:
    """A quantity recorded as such (RecordEvent)."""

    id: str
    tenant_id: str
    user_id: str
    metric: str
    quantity: float
    event_time: float


@dataclass(frozen=True)
class LedgerTotal:
    """The recorded quantities of one user, metric and moment, summed."""

    user_id: str
    metric: str
    event_time: float
    quantity: float


def _insert_ignoring(db: Database, table: Table) -> Any:
    make = postgresql.insert if db.dialect == "postgresql" else sqlite.insert
    return make(table).on_conflict_do_nothing()


class AnalyticsStore:
    """Facts and ledger; every tenant's rows selected by the tenant first."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # -- taking in ----------------------------------------------------------------------------

    async def take_in(
        self,
        event_id: str,
        now: float,
        simulation: SimulationFact | None = None,
        file: FileFact | None = None,
    ) -> bool:
        """Apply one event's facts, once: False (and nothing changed) when the event was
        already taken in. The mark and the facts commit together."""
        async with self.db.transaction() as session:
            marked = await session.execute(
                _insert_ignoring(self.db, ingested).values(event_id=event_id, ingest_time=now)
            )
            if rowcount(marked) != 1:
                return False
            if simulation is not None:
                await self._put_simulation(session, simulation)
            if file is not None:
                await self._put_file(session, file)
        return True

    async def _put_simulation(self, session: AsyncConnection, fact: SimulationFact) -> None:
        """Insert the simulation's facts, or move them on: an older event (relays keep a
        simulation's events in order, but another service's copy may arrive late) never
        takes a finished simulation back."""
        values = fact.__dict__
        inserted = await session.execute(_insert_ignoring(self.db, sim_facts).values(**values))
        if rowcount(inserted) == 1:
            return
        # Fixed when the simulation was created (and only its created event knows the model).
        kept = ("id", "tenant_id", "model_inputs", "create_time")
        changes = {k: v for k, v in values.items() if k not in kept}
        if fact.state in ("QUEUED", "RUNNING"):
            await session.execute(
                update(sim_facts)
                .where(sim_facts.c.id == fact.id, sim_facts.c.end_time.is_(None))
                .values(**changes)
            )
        else:
            await session.execute(
                update(sim_facts).where(sim_facts.c.id == fact.id).values(**changes)
            )

    async def _put_file(self, session: AsyncConnection, fact: FileFact) -> None:
        """Insert a file's facts (an upload) or set its deletion time."""
        inserted = await session.execute(
            _insert_ignoring(self.db, file_facts).values(**fact.__dict__)
        )
        if rowcount(inserted) == 0 and fact.delete_time is not None:
            await session.execute(
                update(file_facts)
                .where(file_facts.c.id == fact.id)
                .values(delete_time=fact.delete_time)
            )

    async def record(self, row: LedgerRow) -> bool:
        """Add a recorded quantity; False when its id was already recorded."""
        async with self.db.transaction() as session:
            result = await session.execute(
                _insert_ignoring(self.db, usage_records).values(**row.__dict__)
            )
        return rowcount(result) == 1

    # -- reading ------------------------------------------------------------------------------

    async def simulations(self, tenant_id: str, start: float, end: float) -> list[SimulationFact]:
        """The tenant's simulations created, or ended, in ``[start, end)``."""
        rows = await self._read(_SIMULATIONS, {"t": tenant_id, "start": start, "end": end})
        return [SimulationFact(**row._mapping) for row in rows]

    async def files(self, tenant_id: str, start: float, end: float) -> list[FileFact]:
        """The tenant's files stored at some moment of ``[start, end)``."""
        rows = await self._read(_FILES, {"t": tenant_id, "start": start, "end": end})
        return [FileFact(**row._mapping) for row in rows]

    async def ledger(
        self, tenant_id: str, metrics: Sequence[str], start: float, end: float
    ) -> list[LedgerTotal]:
        """The tenant's recorded quantities of ``metrics`` in ``[start, end)``, summed per
        user, metric and moment: API-call counts arrive as one record per service every few
        seconds, all stamped with their hour, and the sums are what a report adds up."""
        parameters = {"t": tenant_id, "m": list(metrics), "start": start, "end": end}
        rows = await self._read(_LEDGER, parameters)
        return [LedgerTotal(**row._mapping) for row in rows]

    async def _read(self, query: Select[Any], parameters: dict[str, Any]) -> Sequence[Row[Any]]:
        async with self.db.reading() as session:
            return (await session.execute(query, parameters)).all()


# The reads' statements, built once: building a statement and its cache key on every call
# cost more than running it (GetUsage runs three per call).
_START: BindParameter[float] = bindparam("start", type_=Float)
_END: BindParameter[float] = bindparam("end", type_=Float)
_SIMULATIONS = select(sim_facts).where(
    sim_facts.c.tenant_id == bindparam("t"),
    or_(
        and_(sim_facts.c.create_time >= _START, sim_facts.c.create_time < _END),
        and_(sim_facts.c.end_time >= _START, sim_facts.c.end_time < _END),
    ),
)
_FILES = select(file_facts).where(
    file_facts.c.tenant_id == bindparam("t"),
    file_facts.c.upload_time < _END,
    or_(file_facts.c.delete_time.is_(None), file_facts.c.delete_time > _START),
)
_LEDGER = (
    select(
        usage_records.c.user_id,
        usage_records.c.metric,
        usage_records.c.event_time,
        func.sum(usage_records.c.quantity).label("quantity"),
    )
    .where(
        usage_records.c.tenant_id == bindparam("t"),
        usage_records.c.metric.in_(bindparam("m", expanding=True)),
        usage_records.c.event_time >= _START,
        usage_records.c.event_time < _END,
    )
    .group_by(usage_records.c.user_id, usage_records.c.metric, usage_records.c.event_time)
)
