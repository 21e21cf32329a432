"""Worker processes (``python -m services.simulation --worker``) sharing one database queue.

SIGKILL mid-run: the lease expires, the other worker process resumes the segment from its
last checkpoint and the results are bit-identical to an uninterrupted run. SIGTERM
mid-run: the worker checkpoints and releases its lease, and the other one finishes.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace

import pytest
from sqlalchemy import select

from services.simulation.config import SimulationConfig
from services.simulation.domain import SimulationRequest, Simulations
from services.simulation.hub import Hub
from services.simulation.store import Store, segments
from tests.integration.simulation.models import insert_model
from tests.integration.simulation.test_worker import reference, wait_progress, wait_state
from tests.support.services import REPO_ROOT

CONFIG = SimulationConfig(
    lease_seconds=1.0,
    chunk_trials=50_000,
    checkpoint_seconds=0.0,
    exact_limit=50_000,
    max_segments=4,
    min_segment_trials=1,
)
TRIALS = 3_000_000


def start_worker(url: str, home, **settings: str) -> subprocess.Popen:
    env = {
        **os.environ,
        **settings,
        "ALEA_HOME": str(home),
        "ALEA_DATABASE_URL": url,
        "ALEA_SIMULATION_LEASE_SECONDS": "1",
        "ALEA_SIMULATION_POLL_SECONDS": "0.05",
        "ALEA_SIMULATION_CHECKPOINT_SECONDS": "0",
        "ALEA_SIMULATION_EXACT_LIMIT": "50000",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "services.simulation", "--worker"],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def holders(store: Store) -> set[int]:
    """Pids of the worker processes holding a segment lease now."""
    query = select(segments.c.lease_owner).where(
        segments.c.state == "PENDING", segments.c.lease_expires > time.time()
    )
    async with store.db.transaction() as session:
        owners = (await session.execute(query)).scalars().all()
    return {int(owner.split("-")[-2]) for owner in owners if owner}


async def until_held(store: Store, held: bool) -> None:
    """Wait (at most a minute) until some worker holds a lease, or none does."""
    for _ in range(6000):
        if bool(await holders(store)) == held:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"no lease {'taken' if held else 'lapsed'} within a minute")


@pytest.fixture
def domain(store: Store) -> Simulations:
    return Simulations(store, Hub(store.simulations_by_id, 0.05), CONFIG)


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["sigkill", "sigterm"])
async def test_interrupted_worker_process_loses_nothing(
    domain: Simulations, store: Store, tmp_path, sig
):
    if sig == signal.SIGTERM and store.db.dialect != "sqlite":
        pytest.skip("the graceful hand-over does not depend on the database; SQLite covers it")
    url = str(store.db.engine.url.render_as_string(hide_password=False))
    model_id = await insert_model(store)
    sim = await domain.create_simulation("t1", "u1", SimulationRequest(model_id, TRIALS, 42))
    # Two worker processes share the simulation's segments; one of them is interrupted
    # and the other must finish its own segments and the interrupted one's.
    processes = {p.pid: p for p in (start_worker(url, tmp_path), start_worker(url, tmp_path))}
    try:
        await wait_progress(store, sim.id, 100_000)
        held = await holders(store)
        while not held:  # between two segments, for a moment, nobody holds a lease
            await asyncio.sleep(0.01)
            held = await holders(store)
        pid = next(iter(held))
        processes[pid].send_signal(sig)
        await asyncio.to_thread(processes[pid].wait, 30)
        interrupted = await store.get_simulation("t1", sim.id)
        assert interrupted.trials_done < TRIALS
        if sig == signal.SIGTERM:  # a graceful stop hands its segment back at once
            assert pid not in await holders(store)
        done = await wait_state(domain, sim.id, ("SUCCEEDED", "FAILED"))
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.kill()
                process.wait()
    assert done.state == "SUCCEEDED" and done.trials_done == TRIALS
    _, data = await domain.get_results("t1", sim.id)
    expected = reference(TRIALS, 42, 50_000, sim.segment_trials, CONFIG)
    assert data == expected


async def test_a_segment_that_keeps_killing_its_workers_fails(store: Store, tmp_path):
    """A worker killed before its first checkpoint, twice: the third lease fails it."""
    if store.db.dialect != "sqlite":
        pytest.skip("the lease rule is the queue's (test_queue runs it on both databases)")
    url = str(store.db.engine.url.render_as_string(hide_password=False))
    domain = Simulations(store, Hub(store.simulations_by_id, 0.05), replace(CONFIG, max_segments=1))
    model_id = await insert_model(store)
    sim = await domain.create_simulation("t1", "u1", SimulationRequest(model_id, 10**9, 7))
    settings = {
        "ALEA_SIMULATION_MAX_ATTEMPTS": "2",
        "ALEA_SIMULATION_CHECKPOINT_SECONDS": "3600",  # no checkpoint before the kill
    }
    for _ in range(2):
        worker = start_worker(url, tmp_path, **settings)
        try:
            await until_held(store, True)
        finally:
            worker.kill()
            worker.wait()
        await until_held(store, False)  # the dead worker's lease lapses
    worker = start_worker(url, tmp_path, **settings)
    try:
        failed = await wait_state(domain, sim.id, ("SUCCEEDED", "FAILED"))
    finally:
        worker.kill()
        worker.wait()
    assert failed.state == "FAILED"
    assert "were started 2 times and each time their worker stopped" in failed.state_reason
