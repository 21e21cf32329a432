"""Worker processes (``python -m services.simulation --worker``) sharing one database queue.

SIGKILL mid-run: the lease expires, a second worker process resumes from the last
checkpoint and the results are bit-identical to an uninterrupted run. SIGTERM mid-run:
the worker checkpoints and releases its lease, and a new process finishes the job.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys

import pytest

from services.simulation.config import SimulationConfig
from services.simulation.domain import SimulationRequest, Simulations
from services.simulation.hub import Hub
from services.simulation.store import Store
from tests.integration.simulation.models import insert_model
from tests.integration.simulation.test_worker import reference, wait_progress, wait_state
from tests.support.services import REPO_ROOT

CONFIG = SimulationConfig(
    lease_seconds=1.0, chunk_trials=20_000, checkpoint_seconds=0.0, exact_limit=50_000
)
TRIALS = 300_000


def start_worker(url: str, home) -> subprocess.Popen:
    env = {
        **os.environ, "ALEA_HOME": str(home), "ALEA_DATABASE_URL": url,
        "ALEA_SIMULATION_LEASE_SECONDS": "1", "ALEA_SIMULATION_POLL_SECONDS": "0.05",
        "ALEA_SIMULATION_CHECKPOINT_SECONDS": "0", "ALEA_SIMULATION_EXACT_LIMIT": "50000",
    }  # fmt: skip
    return subprocess.Popen(
        [sys.executable, "-m", "services.simulation", "--worker"], cwd=REPO_ROOT, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


@pytest.fixture
def domain(store: Store) -> Simulations:
    return Simulations(store, Hub(store.get_simulation, 0.05), CONFIG)


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["sigkill", "sigterm"])
async def test_interrupted_worker_process_loses_nothing(
    domain: Simulations, store: Store, tmp_path, sig
):
    if sig == signal.SIGTERM and store.db.dialect != "sqlite":
        pytest.skip("the graceful hand-over does not depend on the database; SQLite covers it")
    url = str(store.db.engine.url.render_as_string(hide_password=False))
    model_id = await insert_model(store)
    sim = await domain.create_simulation("t1", "u1", SimulationRequest(model_id, TRIALS, 42))
    # Two worker processes share the queue; the one that leased the job is interrupted
    # and the idle one must resume it.
    processes = {p.pid: p for p in (start_worker(url, tmp_path), start_worker(url, tmp_path))}
    try:
        running = await wait_progress(store, sim.id, 60_000)
        holder = processes[int(running.lease_owner.split("-")[-2])]
        holder.send_signal(sig)
        await asyncio.to_thread(holder.wait, 30)
        interrupted = await store.get_simulation(sim.id)
        assert interrupted.trials_done < TRIALS
        if sig == signal.SIGTERM:  # a graceful stop hands the job back at once
            assert interrupted.lease_epoch == 2 or interrupted.lease_owner is None
        done = await wait_state(domain, sim.id, ("SUCCEEDED", "FAILED"))
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.kill()
                process.wait()
    assert done.state == "SUCCEEDED" and done.lease_epoch == 2
    _, data = await domain.get_results("t1", sim.id)
    assert data == await asyncio.to_thread(reference, TRIALS, 42, 20_000, CONFIG)
