"""Load and faults against the whole mesh: clients creating, watching and reading simulations.

The driver of ``python -m bench.load`` (50 clients for 60 s) and of
``tests/e2e/test_load.py`` (the same, smaller). Each client is one tenant's user with one
channel to the edge, as the CLI has: half speak native gRPC, half REST (JSON over HTTPS),
both presenting the client certificate to Envoy. A client's *session* is one simulation:
CreateSimulation (with a request id, so a retry never creates a second one), WatchSimulation
until its final event, GetResults. Sessions run back to back for ``seconds``
(``bench.closed_loop``), then every session under way finishes.

A fault may strike once, half-way through: ``kill`` SIGKILLs the simulation service (the
supervisor restarts it, as ``alea up`` does), ``postgres`` restarts PostgreSQL. While a
dependency is down a client sees UNAVAILABLE (503 ``{"code": 14}`` over REST), waits
:data:`RETRY_PAUSE_S` and retries; a watch that breaks is opened again (over gRPC the
edge's reset of a stream whose service died reads as INTERNAL "RST_STREAM": the transport's
status, not a service's). Anything else a service answers is an error. The verdict is read
back from the mesh afterwards: each tenant's simulations are exactly those its clients
created, every one SUCCEEDED with results of its trials.

Recovery is timed from the fault to the first call, begun after it, that the simulation
service answered (``first_success_s``) and to every service's health SERVING again with
a new process where one was killed (``serving_s``). Memory is each process's resident set
(VmRSS) after a warm-up and after the load.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import io
import json
import os
import shutil
import signal
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from alea.identity.v1 import identity_pb2, identity_pb2_grpc
from alea.simulation.v1 import simulation_pb2 as pb
from alea.simulation.v1 import simulation_pb2_grpc

from bench.closed_loop import closed_loop
from services.cli.edge_client import RestClient, edge_channel, ssl_context
from services.cli.mesh_procs import MeshLayout, implemented_services, read_pid, service_health
from tests.engine import models
from tests.support.mesh import start_test_mesh
from tests.support.postgres import PostgresServer, running_postgres

__all__ = ["FAULTS", "LoadReport", "errors_logged", "load_mesh", "resident_memory", "run_load"]

FAULTS = ("none", "kill", "postgres")
TRIALS = 2_000  # a small simulation: its run is short beside the calls around it
CLIENTS_PER_TENANT = 10  # well inside a FREE tenant's monthly trials for a 60 s run
RETRY_PAUSE_S = 0.2
CALL_TIMEOUT_S = 30.0  # a call that takes longer hangs: an error, not a retry
WATCH_TIMEOUT_S = 90.0  # a watch is opened again after this long
GIVE_UP_S = 120.0  # how long one call is retried through an outage before it is an error
PASSWORD = "load password 0123456"
FINAL = {pb.Simulation.STATE_SUCCEEDED, pb.Simulation.STATE_FAILED, pb.Simulation.STATE_CANCELLED}
FINAL_NAMES = {pb.Simulation.State.Name(s) for s in FINAL}


class Transient(Exception):
    """The mesh or a dependency is away for now (UNAVAILABLE / 503): retry."""


class Refused(Exception):
    """An answer that no client should see under load or during a fault."""


@dataclass
class Tally:
    """What every client saw, shared between the client threads."""

    created: dict[str, set[str]] = field(default_factory=dict)  # tenant id -> simulations
    sessions: int = 0
    retries: Counter[str] = field(default_factory=Counter)  # status -> count
    errors: list[str] = field(default_factory=list)
    successes: list[float] = field(default_factory=list)  # start of each answered attempt
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answered(self, started: float) -> None:
        with self.lock:
            self.successes.append(started)


def _retrying(tally: Tally, attempt: Callable[[], Any]) -> Any:
    """``attempt()`` until it does not raise :class:`Transient` (bounded by GIVE_UP_S)."""
    deadline = time.monotonic() + GIVE_UP_S
    while True:
        started = time.monotonic()
        try:
            result = attempt()
        except Transient as exc:
            with tally.lock:
                tally.retries[str(exc)] += 1
            if time.monotonic() > deadline:
                raise Refused(f"still {exc} after {GIVE_UP_S:.0f} s") from None
            time.sleep(RETRY_PAUSE_S)
            continue
        tally.answered(started)
        return result


class User:
    """One user with one connection to the edge; subclasses speak gRPC or REST."""

    protocol = ""

    def __init__(self, layout: MeshLayout, tenant_id: str, token: str, model_id: str):
        self.tenant_id, self.token, self.model_id = tenant_id, token, model_id
        self.seeds = iter(range(int(uuid.uuid4().int % 10**9), 10**10))

    def session(self, tally: Tally) -> None:
        """Create one simulation, watch it to its end and read its results."""
        request_id, seed = str(uuid.uuid4()), next(self.seeds)
        try:
            simulation_id = _retrying(tally, lambda: self.create(request_id, seed))
            with tally.lock:
                tally.created.setdefault(self.tenant_id, set()).add(simulation_id)
            state = _retrying(tally, lambda: self.watch(simulation_id))
            if state != "STATE_SUCCEEDED":
                raise Refused(f"{simulation_id} ended {state}")
            count = _retrying(tally, lambda: self.result_count(simulation_id))
            if count != TRIALS:
                raise Refused(f"{simulation_id}: results of {count} trials, not {TRIALS}")
        except Refused as exc:
            with tally.lock:
                tally.errors.append(f"{self.protocol}: {exc}")
        with tally.lock:
            tally.sessions += 1

    def create(self, request_id: str, seed: int) -> str:
        raise NotImplementedError

    def watch(self, simulation_id: str) -> str:
        """The final state's name, once the watch delivers it; :class:`Transient` when the
        stream breaks first (it is opened again)."""
        raise NotImplementedError

    def result_count(self, simulation_id: str) -> int:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


def _grpc_call(call: Callable[[], Any], watch: bool = False) -> Any:
    try:
        return call()
    except grpc.RpcError as exc:
        code = exc.code()
        if code == grpc.StatusCode.UNAVAILABLE:
            raise Transient(code.name) from None
        if code == grpc.StatusCode.DEADLINE_EXCEEDED and watch:
            raise Transient("watch deadline") from None
        if code == grpc.StatusCode.INTERNAL and watch and "RST_STREAM" in (exc.details() or ""):
            # The edge resets a stream whose service died mid-way (HTTP/2 RST_STREAM), which
            # gRPC reports as INTERNAL; no service answered it. Opened again, like REST's.
            raise Transient("watch reset") from None
        raise Refused(f"{code.name}: {exc.details()}") from None


class GrpcUser(User):
    protocol = "grpc"

    def __init__(self, layout: MeshLayout, tenant_id: str, token: str, model_id: str):
        super().__init__(layout, tenant_id, token, model_id)
        self.channel = edge_channel(f"localhost:{layout.edge_port}", layout.pki)
        self.stub = simulation_pb2_grpc.SimulationServiceStub(self.channel)
        self.metadata = (("authorization", f"Bearer {token}"),)

    def create(self, request_id: str, seed: int) -> str:
        request = pb.CreateSimulationRequest(
            model_id=self.model_id, trials=TRIALS, seed=seed, request_id=request_id
        )
        created = _grpc_call(
            lambda: self.stub.CreateSimulation(
                request, metadata=self.metadata, timeout=CALL_TIMEOUT_S
            )
        )
        return str(created.id)

    def watch(self, simulation_id: str) -> str:
        request = pb.WatchSimulationRequest(simulation_id=simulation_id)

        def follow() -> str:
            events = self.stub.WatchSimulation(
                request, metadata=self.metadata, timeout=WATCH_TIMEOUT_S
            )
            for event in events:
                if event.WhichOneof("event") == "simulation" and event.simulation.state in FINAL:
                    events.cancel()
                    return str(pb.Simulation.State.Name(event.simulation.state))
            raise Refused(f"{simulation_id}: the watch ended without a final state")

        return str(_grpc_call(follow, watch=True))

    def result_count(self, simulation_id: str) -> int:
        request = pb.GetResultsRequest(simulation_id=simulation_id)
        results = _grpc_call(
            lambda: self.stub.GetResults(request, metadata=self.metadata, timeout=CALL_TIMEOUT_S)
        )
        return min((int(o.statistics.count) for o in results.outputs), default=0)

    def close(self) -> None:
        self.channel.close()


class RestUser(User):
    protocol = "rest"

    def __init__(self, layout: MeshLayout, tenant_id: str, token: str, model_id: str):
        super().__init__(layout, tenant_id, token, model_id)
        pki = layout.pki
        context = ssl_context(pki / "ca.crt", pki / "client.crt", pki / "client.key")
        # a watch may go quiet while a killed worker's lease runs out (30 s by default)
        self.rest = RestClient("localhost", layout.edge_port, context, WATCH_TIMEOUT_S)
        self.headers = {"authorization": f"Bearer {token}"}

    def _request(self, method: str, path: str, body: Any = None, watch: bool = False) -> Any:
        try:
            reply = self.rest.request(method, path, body, self.headers)
        except (OSError, http.client.HTTPException) as exc:
            self.rest.close()  # the next request opens a new connection
            if watch and isinstance(exc, http.client.IncompleteRead):
                raise Transient("watch broken") from None  # the service went away mid-stream
            if watch and isinstance(exc, TimeoutError):
                raise Transient("watch deadline") from None
            raise Refused(f"{method} {path}: {type(exc).__name__}: {exc}") from None
        if reply.status == 503 and isinstance(reply.body, dict) and reply.body.get("code") == 14:
            raise Transient("503")
        if reply.status != 200:
            raise Refused(f"{method} {path}: {reply.status} {reply.text[:300]}")
        return reply.body

    def create(self, request_id: str, seed: int) -> str:
        body = {
            "modelId": self.model_id,
            "trials": str(TRIALS),
            "seed": str(seed),
            "requestId": request_id,
        }
        return str(self._request("POST", "/v1/simulations", body)["id"])

    def watch(self, simulation_id: str) -> str:
        path = f"/v1/simulations/{simulation_id}:watch"
        body = self._request("GET", path, watch=True)
        text = body if isinstance(body, str) else json.dumps(body)
        for line in reversed(text.splitlines()):
            if not line.strip():
                continue
            event = json.loads(line)
            if "error" in event:  # the transcoder's last line of a stream the service ended
                if event["error"].get("code") == 14:
                    raise Transient("watch ended UNAVAILABLE")
                raise Refused(f"{path}: {event['error']}")
            state = event.get("simulation", {}).get("state")
            if state in FINAL_NAMES:
                return str(state)
        raise Refused(f"{path}: the watch ended without a final state: {text[-300:]}")

    def result_count(self, simulation_id: str) -> int:
        results = self._request("GET", f"/v1/simulations/{simulation_id}/results")
        return min((int(o["statistics"]["count"]) for o in results["outputs"]), default=0)

    def close(self) -> None:
        self.rest.close()


@contextlib.contextmanager
def load_mesh(
    database: str, env: dict[str, str] | None = None
) -> Iterator[tuple[MeshLayout, PostgresServer | None]]:
    """The supervised mesh (as ``alea up`` runs it) on ``database`` (``sqlite`` or
    ``postgresql``: a server of its own, which the ``postgres`` fault restarts), its
    processes started with ``env`` added to this one's; stopped and removed on exit."""
    home = Path(tempfile.mkdtemp(prefix=f"alea-load-{database}-"))
    saved = {name: os.environ.get(name) for name in env or {}}
    with contextlib.ExitStack() as stack:
        stack.callback(shutil.rmtree, home, ignore_errors=True)
        postgres, template = None, None
        if database == "postgresql":
            postgres = stack.enter_context(running_postgres())
            for name in implemented_services():
                postgres.create_database(f"alea_{name}")
            template = postgres.url("alea_{service}")
        os.environ.update(env or {})  # the supervisor passes its environment on, restarts too
        try:
            mesh = start_test_mesh(home, template, database)
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
        stack.callback(mesh.stop)
        yield mesh.layout, postgres


@dataclass(frozen=True)
class Recovery:
    """Seconds from the fault to the first answered call begun after it, and to every
    service SERVING again (a new process where one was killed)."""

    fault: str
    first_success_s: float
    serving_s: float


@dataclass
class LoadReport:
    """One run's figures and verdict."""

    clients: int
    seconds: float
    fault: str
    tally: Tally
    session_latencies: list[float]
    settle_s: float
    simulations: int
    lost: list[str]  # created but not listed, listed but not created, or not final with results
    memory_before: dict[str, int]
    memory_after: dict[str, int]
    restarted: set[str]  # processes replaced during the run (their "after" is the new one's)
    logged: list[str]  # error lines the services logged during the run (see errors_logged)
    recovery: Recovery | None

    @property
    def errors(self) -> list[str]:
        return self.tally.errors + self.lost


def resident_memory(layout: MeshLayout) -> dict[str, int]:
    """VmRSS in bytes of every process of the mesh (services, Envoy, the supervisor)."""
    found = {}
    for name in [*layout.services, "envoy", "supervisor"]:
        pid = read_pid(layout, name)
        with contextlib.suppress(FileNotFoundError, TypeError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    found[name] = int(line.split()[1]) * 1024
    return found


def _log_sizes(layout: MeshLayout) -> dict[str, int]:
    """How far each service's log has been written."""
    return {
        name: layout.log_path(name).stat().st_size if layout.log_path(name).exists() else 0
        for name in layout.services
    }


def _an_error(line: str) -> bool:
    return (
        '"level": "error"' in line
        or '"level": "critical"' in line
        or line.startswith(("Traceback", "Exception ignored"))
    )


def errors_logged(layout: MeshLayout, since: dict[str, int]) -> list[str]:
    """The error lines each service logged after ``since`` (JSON lines of level error or
    critical, and what the interpreter prints outside the logs: tracebacks, ignored
    exceptions)."""
    found = []
    for name, offset in since.items():
        with layout.log_path(name).open("rb") as log:
            log.seek(offset)
            text = log.read().decode(errors="replace")
        found += [f"{name}: {_shortened(line)}" for line in text.splitlines() if _an_error(line)]
    return found


def _shortened(line: str) -> str:
    """A log line cut to its start (message, ids) and its end (where a traceback ends)."""
    return line if len(line) <= 1_000 else f"{line[:300]} ... {line[-700:]}"


def _register(layout: MeshLayout, label: str) -> tuple[str, str, str]:
    """A new tenant: (tenant id, its admin's token, a model of the small test workbook)."""
    with edge_channel(f"localhost:{layout.edge_port}", layout.pki) as channel:
        reply = identity_pb2_grpc.IdentityServiceStub(channel).Register(
            identity_pb2.RegisterRequest(
                tenant_display_name=f"Load {label}",
                email=f"load-{label}-{uuid.uuid4().hex[:8]}@example.com",
                password=PASSWORD,
                display_name=label,
                request_id=str(uuid.uuid4()),
            ),
            timeout=CALL_TIMEOUT_S,
        )
        token = reply.tokens.access_token
        workbook = io.BytesIO()
        models.small().save(workbook)
        model = simulation_pb2_grpc.SimulationServiceStub(channel).CreateModel(
            pb.CreateModelRequest(display_name="load", workbook=workbook.getvalue()),
            metadata=(("authorization", f"Bearer {token}"),),
            timeout=CALL_TIMEOUT_S * 2,
        )
    return reply.tenant.id, token, model.id


def _clients(layout: MeshLayout, count: int) -> list[User]:
    """``count`` clients, gRPC and REST alternately, ten to a tenant."""
    clients: list[User] = []
    tenant = ("", "", "")
    for index in range(count):
        if index % CLIENTS_PER_TENANT == 0:
            tenant = _register(layout, str(index // CLIENTS_PER_TENANT))
        kind = GrpcUser if index % 2 == 0 else RestUser
        clients.append(kind(layout, *tenant))
    return clients


def _listed(layout: MeshLayout, token: str) -> dict[str, pb.Simulation]:
    """Every simulation of ``token``'s tenant, as ListSimulations pages them."""
    found: dict[str, pb.Simulation] = {}
    metadata = (("authorization", f"Bearer {token}"),)
    with edge_channel(f"localhost:{layout.edge_port}", layout.pki) as channel:
        stub = simulation_pb2_grpc.SimulationServiceStub(channel)
        token_ = ""
        for _ in range(10_000):
            page = stub.ListSimulations(
                pb.ListSimulationsRequest(page_size=1000, page_token=token_),
                metadata=metadata,
                timeout=CALL_TIMEOUT_S,
            )
            found.update((s.id, s) for s in page.simulations)
            token_ = page.next_page_token
            if not token_:
                break
    return found


def _verify(layout: MeshLayout, clients: list[User], tally: Tally) -> tuple[int, list[str]]:
    """(simulations listed, what is wrong with them): exactly the created ones, all final."""
    wrong: list[str] = []
    total = 0
    tokens = {c.tenant_id: c.token for c in clients}
    for tenant_id, token in tokens.items():
        listed = _listed(layout, token)
        total += len(listed)
        created = tally.created.get(tenant_id, set())
        wrong += [f"{s}: created but not listed" for s in sorted(created - listed.keys())]
        wrong += [f"{s}: listed but never created" for s in sorted(listed.keys() - created)]
        wrong += [
            f"{s.id}: {pb.Simulation.State.Name(s.state)}"
            for s in listed.values()
            if s.state != pb.Simulation.STATE_SUCCEEDED
        ]
    return total, wrong


def _all_serving(layout: MeshLayout) -> bool:
    return all(service_health(layout.health_port(n)) == "SERVING" for n in layout.services)


def _strike(fault: str, layout: MeshLayout, postgres: PostgresServer | None) -> Callable[[], bool]:
    """Cause ``fault`` now; returns a test of whether the mesh is whole again."""
    if fault == "kill":
        pid = read_pid(layout, "simulation")
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        return lambda: read_pid(layout, "simulation") != pid and _all_serving(layout)
    if fault == "postgres":
        assert postgres is not None, "the postgres fault needs the mesh on PostgreSQL"
        postgres.stop()
        postgres.start()
        return lambda: _all_serving(layout)
    raise ValueError(f"unknown fault {fault!r}; known: {', '.join(FAULTS)}")


async def _fault(
    fault: str,
    after: float,
    layout: MeshLayout,
    postgres: PostgresServer | None,
    tally: Tally,
) -> Recovery:
    await asyncio.sleep(after)
    struck = time.monotonic()
    whole = await asyncio.to_thread(_strike, fault, layout, postgres)
    serving_at = None
    while time.monotonic() - struck < GIVE_UP_S:
        if serving_at is None and await asyncio.to_thread(whole):
            serving_at = time.monotonic()
        with tally.lock:
            answered = [t for t in tally.successes if t >= struck]
        if serving_at is not None and answered:
            return Recovery(fault, min(answered) - struck, serving_at - struck)
        await asyncio.sleep(0.05)
    raise AssertionError(f"the mesh was not back {GIVE_UP_S:.0f} s after the {fault} fault")


async def _drive(
    clients: list[User],
    seconds: float,
    tally: Tally,
    fault: str,
    layout: MeshLayout,
    postgres: PostgresServer | None,
) -> tuple[list[float], Recovery | None]:
    idle: asyncio.Queue[User] = asyncio.Queue()
    for client in clients:
        idle.put_nowait(client)
    loop = asyncio.get_running_loop()
    with ThreadPoolExecutor(len(clients), thread_name_prefix="load-client") as pool:

        async def session() -> None:
            client = idle.get_nowait()  # as many callers as clients: one is always idle
            try:
                await loop.run_in_executor(pool, client.session, tally)
            finally:
                idle.put_nowait(client)

        load = closed_loop(session, seconds, len(clients))
        if fault == "none":
            return await load, None
        latencies, recovery = await asyncio.gather(
            load, _fault(fault, seconds / 2, layout, postgres, tally)
        )
        return latencies, recovery


@contextlib.contextmanager
def _closing(clients: list[User]) -> Iterator[None]:
    try:
        yield
    finally:
        for client in clients:
            client.close()


def run_load(
    layout: MeshLayout,
    clients: int,
    seconds: float,
    fault: str = "none",
    postgres: PostgresServer | None = None,
) -> LoadReport:
    """``clients`` clients for ``seconds`` against the running mesh of ``layout``, with
    ``fault`` half-way through (``postgres``: the server the mesh's databases are on)."""
    if fault not in FAULTS:
        raise ValueError(f"unknown fault {fault!r}; known: {', '.join(FAULTS)}")
    crowd = _clients(layout, clients)
    with _closing(crowd):
        warm_up = Tally()
        with ThreadPoolExecutor(len(crowd)) as pool:  # the engine loaded, connections open
            list(pool.map(lambda client: client.session(warm_up), crowd))
        if warm_up.errors:
            raise AssertionError(f"the warm-up failed: {warm_up.errors[:5]}")
        before = resident_memory(layout)
        pids = {name: read_pid(layout, name) for name in before}
        logs = _log_sizes(layout)
        tally = Tally()
        started = time.monotonic()
        latencies, recovery = asyncio.run(_drive(crowd, seconds, tally, fault, layout, postgres))
        settle = time.monotonic() - started - seconds
        # the warm-up's simulations are listed too (they were checked as they ran)
        for tenant_id, created in warm_up.created.items():
            tally.created.setdefault(tenant_id, set()).update(created)
        simulations, wrong = _verify(layout, crowd, tally)
        after = resident_memory(layout)
        restarted = {name for name, pid in pids.items() if read_pid(layout, name) != pid}
        logged = errors_logged(layout, logs)
    return LoadReport(
        clients,
        seconds,
        fault,
        tally,
        latencies,
        settle,
        simulations,
        wrong,
        before,
        after,
        restarted,
        logged,
        recovery,
    )
