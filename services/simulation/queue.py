"""The shared job queue: segments leased from the database, checkpointed, completed.

A worker leases one segment with a single ``UPDATE ... WHERE id = (SELECT ... LIMIT 1)
RETURNING`` statement: on PostgreSQL the inner select takes ``FOR UPDATE SKIP LOCKED`` so
replicas never wait on each other; on SQLite the whole statement runs under the
database's single write lock, which makes the check "no live lease" and the take atomic
(the equivalent of a conditional UPDATE in a ``BEGIN IMMEDIATE`` transaction). Every lease
bumps ``lease_epoch``; every later write of the worker (checkpoint, heartbeat, completion)
is conditional on (owner, epoch, segment PENDING, simulation RUNNING), so a worker whose
lease expired, or whose simulation was cancelled, learns it on its next write and stops
without touching anything again.

When the last segment of a simulation completes, the worker that completed it merges
every segment's statistics in trial order and finishes the simulation; a simulation whose
finisher died is picked up by :meth:`Queue.unfinished` after a lease period.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ColumnElement,
    FromClause,
    and_,
    case,
    exists,
    func,
    insert,
    or_,
    select,
    update,
)

from services.runtime.db import rowcount
from services.simulation.events import headline, simulation_event
from services.simulation.store import (
    ACTIVE_STATES,
    DONE,
    FAILED,
    PENDING,
    QUEUED,
    RUNNING,
    SUCCEEDED,
    SimulationRecord,
    Store,
    drop_segments,
    read_simulation,
    results,
    segments,
    simulations,
)


@dataclass(frozen=True)
class Lease:
    """The right to run one segment, valid while (owner, epoch) still match its row."""

    simulation: SimulationRecord
    segment_id: str
    first_trial: int
    end_trial: int
    trials_done: int
    checkpoint: bytes | None
    owner: str
    epoch: int


def combine_progress(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """Running mean and standard error per output over segments' ``{"trials", "running"}``.

    Means are pooled by trial counts; variances (recovered from each standard error) by
    the usual between/within decomposition. Good enough for progress, not for results.
    """
    parts = [p for p in parts if p and p.get("trials")]
    total = sum(p["trials"] for p in parts)
    combined: dict[str, list[float | None]] = {}
    for name in parts[0]["running"] if parts else ():
        rows = [(p["trials"], *p["running"][name]) for p in parts]
        rows = [(n, m, se) for n, m, se in rows if m is not None]
        n_all = sum(n for n, _, _ in rows)
        if not n_all:
            combined[name] = [None, None]
            continue
        mean = sum(n * m for n, m, _ in rows) / n_all
        spread = sum((n - 1) * (se or 0.0) ** 2 * n + n * (m - mean) ** 2 for n, m, se in rows)
        se = math.sqrt(spread / (n_all - 1) / n_all) if n_all > 1 else None
        combined[name] = [mean, se]
    return {"trials": total, "running": combined}


def _free(table: FromClause, now: float) -> ColumnElement[bool]:
    """A segment to lease: pending and never leased, or its lease expired."""
    expired = or_(table.c.lease_expires.is_(None), table.c.lease_expires < now)
    return and_(table.c.state == PENDING, expired)


class Queue:
    """Leases and checkpoints of segments, over the simulation store."""

    def __init__(self, store: Store) -> None:
        self.db = store.db
        self.outbox = store.outbox

    async def lease(
        self,
        owner: str,
        *,
        now: float,
        lease_seconds: float,
        prefer_gpu: bool,
        max_attempts: int = 3,
    ) -> Lease | None:
        """Take the next segment: never leased, or whose lease expired (a dead worker's).

        Order: GPU-preferring work first for a GPU worker, then the tenant with the fewest
        live leases (fair share), then priority (high first), then age, then trial order.
        A segment leased ``max_attempts`` times without a checkpoint in between killed every
        worker that ran it: the next lease fails its simulation instead (None is returned).
        """
        candidate = segments.alias("candidate")
        other = segments.alias("other")
        tenant_running = (
            select(func.count())
            .select_from(other)
            .where(
                other.c.tenant_id == candidate.c.tenant_id,
                other.c.state == PENDING,
                other.c.lease_expires >= now,
            )
            .scalar_subquery()
        )
        live = exists().where(
            simulations.c.id == candidate.c.simulation_id, simulations.c.state.in_(ACTIVE_STATES)
        )
        order = [
            tenant_running.asc(),
            candidate.c.priority.desc(),
            candidate.c.create_time.asc(),
            candidate.c.simulation_id,
            candidate.c.idx,
        ]
        if prefer_gpu:
            order.insert(0, case((candidate.c.backend_preference == "GPU", 0), else_=1))
        pick = (
            select(candidate.c.id)
            .where(_free(candidate, now), live)
            .order_by(*order)
            .limit(1)
            .with_for_update(skip_locked=True)
            .scalar_subquery()
        )
        take = (
            update(segments)
            .where(
                segments.c.id == pick,
                _free(segments, now),
            )
            .values(
                lease_owner=owner,
                lease_epoch=segments.c.lease_epoch + 1,
                lease_expires=now + lease_seconds,
                attempts=segments.c.attempts + 1,
            )
            .returning(*segments.c)
        )
        async with self.db.transaction() as session:
            row = (await session.execute(take)).first()
            if row is None:
                return None
            if row.attempts > max_attempts:
                reason = (
                    f"trials {row.first_trial} to {row.end_trial - 1} were started "
                    f"{max_attempts} times and each time their worker stopped before finishing "
                    "a chunk (killed, or out of memory or time): the simulation stops rather "
                    f"than take down another worker (ALEA_SIMULATION_MAX_ATTEMPTS={max_attempts})"
                )
                await session.execute(drop_segments(row.simulation_id))
                failed = await session.execute(
                    update(simulations)
                    .where(
                        simulations.c.id == row.simulation_id,
                        simulations.c.state.in_(ACTIVE_STATES),
                    )
                    .values(state=FAILED, state_reason=reason, end_time=now, update_time=now)
                )
                if rowcount(failed) == 1:
                    record = await read_simulation(session, row.simulation_id)
                    await self.outbox.add(
                        session, simulation_event("failed", record, reason=reason)
                    )
                return None
            started = await session.execute(
                update(simulations)
                .where(simulations.c.id == row.simulation_id, simulations.c.state == QUEUED)
                .values(state=RUNNING, start_time=now, update_time=now)
            )
            # Read in the same transaction: the lease and its simulation are one snapshot.
            simulation = await read_simulation(session, row.simulation_id)
            if rowcount(started) == 1:
                await self.outbox.add(session, simulation_event("started", simulation))
        return Lease(
            simulation,
            row.id,
            row.first_trial,
            row.end_trial,
            row.trials_done,
            row.checkpoint,
            owner,
            row.lease_epoch,
        )

    def _held(self, lease: Lease) -> ColumnElement[bool]:
        running = exists().where(
            simulations.c.id == lease.simulation.id, simulations.c.state == RUNNING
        )
        return and_(
            segments.c.id == lease.segment_id,
            segments.c.lease_owner == lease.owner,
            segments.c.lease_epoch == lease.epoch,
            segments.c.state == PENDING,
            running,
        )

    async def checkpoint(
        self,
        lease: Lease,
        *,
        trials_done: int,
        checkpoint: bytes,
        progress: dict[str, Any],
        backend: str,
        now: float,
        lease_seconds: float,
        complete: bool = False,
        compute_seconds: float = 0.0,
    ) -> tuple[bool, list[dict[str, Any]]]:
        """Persist a segment's statistics and extend its lease (or complete it) in one write.

        ``progress`` is the segment's ``{"trials", "running"}``. Returns (still held, the
        other segments' progress); the simulation's ``trials_done`` and combined
        ``progress`` are refreshed from all its segments in the same transaction, and the
        engine seconds spent since the previous checkpoint (``compute_seconds``, on
        ``backend``) are added to its CPU or GPU seconds.
        """
        values: dict[str, Any] = dict(
            trials_done=trials_done,
            checkpoint=checkpoint,
            progress=progress,
            lease_expires=now + lease_seconds,
            attempts=0,  # progress: the workers that died on it were not killed by it
        )
        if complete:
            values["state"] = DONE
        sim_id = lease.simulation.id
        async with self.db.transaction() as session:
            held = update(segments).where(self._held(lease)).values(**values)
            result = await session.execute(held)
            if rowcount(result) != 1:
                return False, []
            # Concurrent checkpoints of sibling segments queue on the simulation's row
            # (PostgreSQL; SQLite has one writer anyway), so each reads the segments only
            # once the one before has committed, and the last total written is complete.
            lock = select(simulations.c.id).where(simulations.c.id == sim_id).with_for_update()
            await session.execute(lock)
            rows = (
                await session.execute(
                    select(segments.c.id, segments.c.trials_done, segments.c.progress).where(
                        segments.c.simulation_id == sim_id
                    )
                )
            ).all()
            combined = combine_progress([r.progress for r in rows])
            on_gpu = backend in ("gpu", "cuda")
            spent = simulations.c.gpu_seconds if on_gpu else simulations.c.cpu_seconds
            await session.execute(
                update(simulations)
                .where(simulations.c.id == sim_id)
                .values(
                    {
                        "trials_done": sum(r.trials_done for r in rows),
                        "progress": combined,
                        "backend": backend,
                        "update_time": now,
                        spent: spent + compute_seconds,
                    }
                )
            )
        return True, [r.progress for r in rows if r.id != lease.segment_id and r.progress]

    async def heartbeat(self, lease: Lease, *, now: float, lease_seconds: float) -> bool:
        """Extend the lease without new statistics (a long chunk); False if lost."""
        async with self.db.transaction() as session:
            result = await session.execute(
                update(segments).where(self._held(lease)).values(lease_expires=now + lease_seconds)
            )
        return rowcount(result) == 1

    async def release(self, lease: Lease, *, now: float) -> bool:
        """Give a segment back (graceful shutdown): another worker resumes it at once."""
        async with self.db.transaction() as session:
            result = await session.execute(
                update(segments)
                .where(self._held(lease))
                .values(lease_owner=None, lease_expires=now)
            )
        return rowcount(result) == 1

    async def pending_segments(self, simulation_id: str) -> int:
        query = select(func.count()).where(
            segments.c.simulation_id == simulation_id, segments.c.state == PENDING
        )
        async with self.db.reading() as session:
            return int((await session.execute(query)).scalar_one())

    async def depth(self) -> int:
        """Segments not completed yet, waiting or running: the queue depth (the same count
        KEDA scales workers on, k8s/components/keda)."""
        async with self.db.reading() as session:
            query = select(func.count()).where(segments.c.state == PENDING)
            return int((await session.execute(query)).scalar_one())

    async def segment_checkpoints(self, simulation_id: str) -> list[bytes]:
        """Every segment's final statistics, in trial order (all segments must be DONE)."""
        async with self.db.reading() as session:
            rows = await session.execute(
                select(segments.c.checkpoint)
                .where(segments.c.simulation_id == simulation_id)
                .order_by(segments.c.idx)
            )
            return [r.checkpoint for r in rows]

    async def completed_prefix(self, simulation_id: str, start: int = 0) -> list[bytes]:
        """The final statistics of the simulation's segments ``start, start + 1...`` up to
        the first that is not DONE, in trial order (a converging simulation is tested over
        the completed prefix only; ``start``: segments already tested)."""
        mine = segments.c.simulation_id == simulation_id
        async with self.db.reading() as session:
            gap = (
                await session.execute(
                    select(func.min(segments.c.idx)).where(mine, segments.c.state != DONE)
                )
            ).scalar_one()
            query = select(segments.c.checkpoint).where(mine, segments.c.idx >= start)
            if gap is not None:
                query = query.where(segments.c.idx < gap)
            rows = await session.execute(query.order_by(segments.c.idx))
            return [r.checkpoint for r in rows]

    async def unfinished(self, older_than: float) -> list[tuple[str, str]]:
        """(tenant, id) of RUNNING simulations with every segment DONE, untouched since
        ``older_than``."""
        pending = exists().where(
            segments.c.simulation_id == simulations.c.id, segments.c.state == PENDING
        )
        async with self.db.reading() as session:
            rows = await session.execute(
                select(simulations.c.tenant_id, simulations.c.id).where(
                    simulations.c.state == RUNNING,
                    ~pending,
                    simulations.c.update_time < older_than,
                )
            )
            return [(r.tenant_id, r.id) for r in rows]

    async def finish(
        self,
        simulation_id: str,
        *,
        result_data: dict[str, Any],
        backend: str,
        now: float,
        trials_done: int | None = None,
    ) -> bool:
        """SUCCEEDED with its results, atomically; False if it is no longer RUNNING.

        ``trials_done``: a converged simulation's trials; its segments still queued or
        running are dropped in the same transaction (their workers are fenced at once).
        """
        done = {} if trials_done is None else {"trials_done": trials_done}
        async with self.db.transaction() as session:
            if trials_done is not None:
                await session.execute(drop_segments(simulation_id))
            result = await session.execute(
                update(simulations)
                .where(simulations.c.id == simulation_id, simulations.c.state == RUNNING)
                .values(
                    state=SUCCEEDED,
                    state_reason="",
                    backend=backend,
                    end_time=now,
                    update_time=now,
                    **done,
                )
            )
            if rowcount(result) != 1:
                return False
            await session.execute(
                insert(results).values(
                    simulation_id=simulation_id, data=result_data, create_time=now
                )
            )
            record = await read_simulation(session, simulation_id)
            succeeded = simulation_event(
                "succeeded",
                record,
                duration_seconds=now - (record.start_time or record.create_time),
                results=headline(result_data),
            )
            await self.outbox.add(session, succeeded)
        return True

    async def fail(self, simulation_id: str, *, reason: str, now: float) -> bool:
        """The model failed at run time: the whole simulation FAILED with the reason."""
        async with self.db.transaction() as session:
            await session.execute(drop_segments(simulation_id))
            result = await session.execute(
                update(simulations)
                .where(simulations.c.id == simulation_id, simulations.c.state.in_(ACTIVE_STATES))
                .values(state=FAILED, state_reason=reason, end_time=now, update_time=now)
            )
            if rowcount(result) != 1:
                return False
            record = await read_simulation(session, simulation_id)
            await self.outbox.add(session, simulation_event("failed", record, reason=reason))
        return True
