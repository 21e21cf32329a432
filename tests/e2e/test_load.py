"""Load and faults through the edge: clients creating, watching and reading simulations.

``tests/support/load.py`` drives it (``python -m bench.load`` runs the same at full size,
50 clients for 60 s, and prints the figures); here 8 clients, half over native gRPC and
half over REST, for 12 s per scenario, within CI's budget. On SQLite and PostgreSQL: the
load alone, then with the simulation service SIGKILLed half-way (the supervisor restarts
it), and on PostgreSQL with the server restarted half-way. Each time: no client saw an
error other than UNAVAILABLE (retried), every simulation created is listed, SUCCEEDED, with
results of its trials, none other appeared, and the mesh was whole again.

Each mesh is the test's own (its processes are killed and its database restarted on
purpose), with a 3 s worker lease so that a segment interrupted by the kill resumes soon.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from services.cli.mesh_procs import MeshLayout
from tests.support.load import LoadReport, load_mesh, run_load
from tests.support.postgres import PG_BIN, PostgresServer

pytestmark = pytest.mark.integration
CLIENTS = 8
SECONDS = 12.0
MIB = 1024 * 1024
ENV = {"ALEA_SIMULATION_LEASE_SECONDS": "3"}

Loaded = tuple[MeshLayout, PostgresServer | None]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def loaded(request: pytest.FixtureRequest) -> Iterator[Loaded]:
    if request.param == "postgresql" and not (PG_BIN / "initdb").exists():
        pytest.skip(f"PostgreSQL binaries not found in {PG_BIN}")
    with load_mesh(request.param, ENV) as running:
        yield running


def _nothing_lost(run: LoadReport) -> None:
    if run.tally.errors:
        # Each error in full, then the lines the services logged with an INTERNAL's error id
        # (its traceback), else every error line logged meanwhile.
        ids = set(re.findall(r"error id ([0-9a-f]{32})", " ".join(run.tally.errors)))
        traced = [line for line in run.logged if any(i in line for i in ids)] or run.logged
        pytest.fail("\n".join(["errors:", *run.tally.errors[:10], "logged:", *traced[:10]]))
    assert run.lost == [], run.lost[:10]
    assert run.tally.sessions >= CLIENTS  # every client completed sessions under the load
    created = sum(len(ids) for ids in run.tally.created.values())
    assert run.simulations == created


def test_load_alone_loses_nothing_and_keeps_memory_flat(loaded: Loaded) -> None:
    layout, postgres = loaded
    run = run_load(layout, CLIENTS, SECONDS, "none", postgres)
    _nothing_lost(run)
    assert run.tally.retries == {}  # nothing was down: nothing to retry
    assert run.logged == []  # nor any error in a service's log
    assert run.memory_before.keys() == run.memory_after.keys()
    for name, before in run.memory_before.items():
        # a bound no steady process comes near in 12 s (they grow by a few MiB at most),
        # which a leak per call or per simulation would pass
        assert run.memory_after[name] < before + max(64 * MIB, before // 2), name


def test_simulation_service_killed_mid_run_loses_nothing(loaded: Loaded) -> None:
    layout, postgres = loaded
    run = run_load(layout, CLIENTS, SECONDS, "kill", postgres)
    _nothing_lost(run)
    assert run.recovery is not None  # a new simulation process served, and a call was answered
    print(f"recovered: {run.recovery}; retries: {dict(run.tally.retries)}")


@pytest.mark.parametrize("loaded", ["postgresql"], indirect=True)
def test_postgres_restarted_mid_run_loses_nothing(loaded: Loaded) -> None:
    layout, postgres = loaded
    run = run_load(layout, CLIENTS, SECONDS, "postgres", postgres)
    _nothing_lost(run)
    assert run.recovery is not None
    print(f"recovered: {run.recovery}; retries: {dict(run.tally.retries)}")
