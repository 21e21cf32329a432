"""``python -m bench.mesh``: each service's simple read beside a bare grpc.aio server.

One run starts, on loopback under a temporary ALEA_HOME, the six services with an Envoy
edge in front of them (the code of ``alea up``, SQLite), and a bare grpc.aio server
speaking the identity contract (``bench.mesh.echo``) with a second, identically
configured Envoy in front of it. It then measures, side by side at each concurrency, the
echo's ``GetUser`` and each service's simple read — identity ``GetUser``, files
``GetFile``, simulation ``GetSimulation``, notification ``GetPreferences``, admin
``GetSetting``, analytics ``GetUsage`` (this month's totals: an aggregate, not a row) —
each three ways:

- ``direct gRPC``: straight to the server over mTLS;
- ``edge gRPC``:   through Envoy, native gRPC (mTLS both hops);
- ``edge REST``:   through Envoy, the RPC's ``GET`` route transcoded (HTTP/1.1 keep-alive).

``server us`` and ``edge us`` are the CPU time per call of the server and of Envoy (all
threads, from /proc): unlike throughput and latency they barely depend on what else the
machine runs, which on a shared 2-core host is most of the noise.

The bare server shows what the gRPC stack and the edge cost; a service's read (JWT check,
tenant scoping, database read, logs, traces, metrics) what a real call costs end to end.
The summary gives each service's server CPU per call and its direct QPS as a ratio to the
bare server's (targets: at most 1,000 us per call, at least 0.5x).

With ``--pin`` (default) the load generator runs on CPU 0 and every server process (both
Envoys, the services, echo) on CPU 1, so the two halves do not steal each other's core.
The edges' rate limit is raised so that it does not shape the measurement. Loops are
bounded by time and count.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import os
import shutil
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from alea.admin.v1 import admin_pb2, admin_pb2_grpc
from alea.analytics.v1 import analytics_pb2, analytics_pb2_grpc
from alea.files.v1 import files_pb2, files_pb2_grpc
from alea.identity.v1 import identity_pb2, identity_pb2_grpc
from alea.notification.v1 import notification_pb2, notification_pb2_grpc
from alea.simulation.v1 import simulation_pb2, simulation_pb2_grpc
from google.protobuf.message import Message

from services.cli.edge_client import ssl_context
from services.cli.mesh_procs import MeshLayout, read_pid, start_edge, start_mesh, stop_mesh
from services.cli.simulate import demo_workbook
from services.runtime.clients import channel_credentials
from services.runtime.pki import ensure_pki

Call = Callable[[], Awaitable[None]]


@dataclass(frozen=True)
class Result:
    """One measurement: requests per second and latency percentiles in milliseconds."""

    target: str
    concurrency: int
    requests: int
    errors: int
    qps: float
    p50_ms: float
    p99_ms: float
    server_cpu_us: float  # CPU time of the server process per successful call
    edge_cpu_us: float  # CPU time of Envoy per successful call (0 when not through the edge)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _pin(pid: int, cpu: int) -> None:
    # Every thread, not only the main one: Envoy's workers and gRPC's pollers already exist.
    for task in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(OSError):  # a thread may have exited meanwhile
            os.sched_setaffinity(int(task), {cpu})


def _cpu_seconds(pid: int | None) -> float:
    # utime + stime of every thread of the process: what it cost, whatever else ran.
    if pid is None:
        return 0.0
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Target:
    """What to call, and which processes serve it (their CPU time is charged to it)."""

    name: str
    make_call: Callable[[], Call]
    server_pid: int
    edge_pid: int | None = None


async def measure(target: Target, concurrency: int, seconds: float, cap: int) -> Result:
    """Run ``concurrency`` workers, each with its own call, for ``seconds`` or ``cap`` calls."""
    latencies: list[float] = []
    errors = 0
    deadline = 0.0

    async def worker(call: Call) -> None:
        nonlocal errors
        while time.perf_counter() < deadline and len(latencies) + errors < cap:
            started = time.perf_counter()
            try:
                await call()
            except (grpc.RpcError, OSError, RuntimeError):
                errors += 1
                continue
            latencies.append(time.perf_counter() - started)

    calls = [target.make_call() for _ in range(concurrency)]
    deadline = time.perf_counter() + min(0.5, seconds / 4)  # warm-up, not recorded
    await asyncio.gather(*(worker(c) for c in calls))
    latencies.clear()
    errors = 0
    cpu = [_cpu_seconds(target.server_pid), _cpu_seconds(target.edge_pid)]
    started = time.perf_counter()
    deadline = started + seconds
    await asyncio.gather(*(worker(c) for c in calls))
    elapsed = time.perf_counter() - started
    n = len(latencies)
    if not n:
        raise RuntimeError(f"{target.name}: every call failed ({errors} errors)")
    server_us = (_cpu_seconds(target.server_pid) - cpu[0]) / n * 1e6
    edge_us = (_cpu_seconds(target.edge_pid) - cpu[1]) / n * 1e6
    cuts = statistics.quantiles(latencies, n=100, method="inclusive")
    return Result(
        target.name,
        concurrency,
        n,
        errors,
        n / elapsed,
        cuts[49] * 1000,
        cuts[98] * 1000,
        server_us,
        edge_us,
    )


class RestConnection:
    """A minimal HTTP/1.1 keep-alive client on asyncio streams (the load generator's side)."""

    def __init__(self, host: str, port: int, context: ssl.SSLContext, headers: dict[str, str]):
        self._address = (host, port)
        self._context = context
        self._headers = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def get(self, path: str) -> None:
        """GET ``path``; raises RuntimeError unless the reply is 200."""
        if self._streams is None:
            self._streams = await asyncio.open_connection(*self._address, ssl=self._context)
        reader, writer = self._streams
        writer.write(f"GET {path} HTTP/1.1\r\nhost: localhost\r\n{self._headers}\r\n".encode())
        status = (await reader.readline()).split(b" ", 2)[1]
        length = 0
        while (line := await reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            if name.lower() == b"content-length":
                length = int(value)
        await reader.readexactly(length)
        if status != b"200":
            raise RuntimeError(f"HTTP {status.decode()}")


SERVICES = ("identity", "files", "simulation", "notification", "admin", "analytics")
SETTING = "simulation.result_cache_ttl_seconds"  # a tenant setting: every key reads alike
TARGET_QPS_RATIO = 0.5
TARGET_SERVER_US = 1000


READS = (
    ("identity", "GetUser"),
    ("files", "GetFile"),
    ("simulation", "GetSimulation"),
    ("notification", "GetPreferences"),
    ("admin", "GetSetting"),
    ("analytics", "GetUsage"),
)


def run(args: argparse.Namespace, home: Path) -> list[Result]:
    """Start the processes, measure every target at every concurrency, stop everything."""
    pki = ensure_pki(home)
    layout = MeshLayout(
        home=home,
        services={name: _free_port() for name in SERVICES},
        health_ports={name: _free_port() for name in SERVICES},
        edge_port=_free_port(),
        admin_port=_free_port(),
        rate_limit_per_s=1_000_000,
        owner_pid=os.getpid(),
    )
    echo_port = _free_port()
    echo_layout = dataclasses.replace(
        layout, services={"identity": echo_port}, edge_port=_free_port(), admin_port=_free_port()
    )
    # A session of its own, as the supervisor gives every service: with the kernel's
    # autogroup scheduling, CPU time is shared between sessions first, and an echo in this
    # process's session got a whole core on a busy machine while each service got a fifth.
    echo = subprocess.Popen(
        [sys.executable, "-m", "bench.mesh.echo", str(echo_port), str(pki)],
        start_new_session=True,
    )
    names = (*SERVICES, "envoy", "envoy-echo")
    try:
        start_mesh(layout)
        start_edge(echo_layout, "envoy-echo")
        if args.pin:
            _pin(os.getpid(), 0)
            for pid in [echo.pid, *(read_pid(layout, n) for n in names)]:
                _pin(pid or 0, 1)
        pids = {"echo": echo.pid, **{n: read_pid(layout, n) or 0 for n in names}}
        return asyncio.run(_measure_all(args, layout, echo_layout, pids))
    finally:
        stop_mesh(layout, names=list(reversed(names)))
        echo.terminate()
        echo.wait()


@dataclass(frozen=True)
class Read:
    """One service's simple read: its stub, method, request and REST route."""

    server: str  # "echo" or the service's name
    stub: Callable[[grpc.aio.Channel], Any]
    method: str
    request: Message
    rest_path: str


async def _fixtures(channel: Callable[[str], grpc.aio.Channel]) -> tuple[str, list[Read]]:
    """Register a tenant, upload a file and queue a simulation: (token, the reads)."""
    identity = identity_pb2_grpc.IdentityServiceStub(channel("identity"))
    reply = await identity.Register(
        identity_pb2.RegisterRequest(
            tenant_display_name="bench",
            email=f"bench-{uuid.uuid4().hex[:8]}@example.com",
            password="bench password 0123",
            display_name="Bench",
            request_id=str(uuid.uuid4()),
        ),
        timeout=30,
    )
    auth = (("authorization", f"Bearer {reply.tokens.access_token}"),)
    data = b"a small file to read the metadata of"

    async def upload() -> AsyncIterator[files_pb2.UploadRequest]:
        meta = files_pb2.FileMetadata(file_name="bench.txt", size_bytes=len(data))
        yield files_pb2.UploadRequest(metadata=meta)
        yield files_pb2.UploadRequest(chunk=data)

    files = files_pb2_grpc.FilesServiceStub(channel("files"))
    stored = await files.Upload(upload(), metadata=auth, timeout=30)
    simulations = simulation_pb2_grpc.SimulationServiceStub(channel("simulation"))
    model = await simulations.CreateModel(
        simulation_pb2.CreateModelRequest(display_name="bench", workbook=demo_workbook()),
        metadata=auth,
        timeout=60,
    )
    simulation = await simulations.CreateSimulation(
        simulation_pb2.CreateSimulationRequest(model_id=model.id, trials=1000, seed=1),
        metadata=auth,
        timeout=30,
    )
    user = identity_pb2.GetUserRequest(user_id=reply.user.id)
    reads = [
        Read(
            "echo",
            identity_pb2_grpc.IdentityServiceStub,
            "GetUser",
            user,
            f"/v1/users/{user.user_id}",
        ),
        Read(
            "identity",
            identity_pb2_grpc.IdentityServiceStub,
            "GetUser",
            user,
            f"/v1/users/{user.user_id}",
        ),
        Read(
            "files",
            files_pb2_grpc.FilesServiceStub,
            "GetFile",
            files_pb2.GetFileRequest(file_id=stored.id),
            f"/v1/files/{stored.id}",
        ),
        Read(
            "simulation",
            simulation_pb2_grpc.SimulationServiceStub,
            "GetSimulation",
            simulation_pb2.GetSimulationRequest(simulation_id=simulation.id),
            f"/v1/simulations/{simulation.id}",
        ),
        Read(
            "notification",
            notification_pb2_grpc.NotificationServiceStub,
            "GetPreferences",
            notification_pb2.GetPreferencesRequest(),
            "/v1/notificationPreferences",
        ),
        Read(
            "admin",
            admin_pb2_grpc.AdminServiceStub,
            "GetSetting",
            admin_pb2.GetSettingRequest(key=SETTING),
            f"/v1/settings/{SETTING}",
        ),
        Read(
            "analytics",
            analytics_pb2_grpc.AnalyticsServiceStub,
            "GetUsage",
            analytics_pb2.GetUsageRequest(),
            "/v1/usage",
        ),
    ]
    return reply.tokens.access_token, reads


async def _measure_all(
    args: argparse.Namespace, layout: MeshLayout, echo_layout: MeshLayout, pids: dict[str, int]
) -> list[Result]:
    # Services admit the edge's certificate, not the client's (which is for the edge only):
    # a direct call here is the call the edge makes.
    credentials = {name: channel_credentials(layout.pki, name) for name in ("client", "edge")}
    rest_context = ssl_context(
        layout.pki / "ca.crt", layout.pki / "client.crt", layout.pki / "client.key"
    )
    channels: list[grpc.aio.Channel] = []

    def channel(port: int, identity: str) -> grpc.aio.Channel:
        channels.append(grpc.aio.secure_channel(f"localhost:{port}", credentials[identity]))
        return channels[-1]

    token, reads = await _fixtures(lambda name: channel(layout.services[name], "edge"))
    auth = (("authorization", f"Bearer {token}"),)

    def grpc_target(read: Read, port: int, identity: str) -> Callable[[], Call]:
        method = getattr(read.stub(channel(port, identity)), read.method)

        async def call() -> None:
            await method(read.request, metadata=auth, timeout=10)

        return lambda: call

    def rest_target(read: Read, port: int) -> Callable[[], Call]:
        def make() -> Call:
            connection = RestConnection("localhost", port, rest_context, dict(auth))
            return lambda: connection.get(read.rest_path)

        return make

    targets = []
    for read in reads:
        ports = echo_layout if read.server == "echo" else layout
        direct = ports.services["identity" if read.server == "echo" else read.server]
        await grpc_target(read, ports.edge_port, "client")()()  # the edge routes first
        served = pids[read.server]
        edge_pid = pids["envoy-echo" if read.server == "echo" else "envoy"]
        targets += [
            Target(f"{read.server} direct gRPC", grpc_target(read, direct, "edge"), served),
            Target(
                f"{read.server} edge gRPC",
                grpc_target(read, ports.edge_port, "client"),
                served,
                edge_pid,
            ),
            Target(
                f"{read.server} edge REST", rest_target(read, ports.edge_port), served, edge_pid
            ),
        ]
    # Rounds interleave every target, so drift in the machine's load hits them alike.
    rounds: dict[tuple[str, int], list[Result]] = {}
    for _ in range(args.rounds):
        for concurrency in args.concurrency:
            for target in targets:
                result = await measure(target, concurrency, args.seconds, args.max_requests)
                rounds.setdefault((target.name, concurrency), []).append(result)
    for open_channel in channels:
        await open_channel.close(grace=None)
    return [sorted(rs, key=lambda r: r.qps)[len(rs) // 2] for rs in rounds.values()]


def report(results: list[Result], pinned: bool) -> str:
    """The results as a table, with ratios to the same server called directly, then each
    service's simple read against the bare server and the targets."""
    lines = [
        f"{'target':<24}{'conc':>5}{'QPS':>9}{'p50 ms':>9}{'p99 ms':>9}{'err':>5}"
        f"{'QPS/direct':>12}{'+p50 ms':>9}{'server us':>11}{'edge us':>9}",
    ]
    by_key = {(r.target, r.concurrency): r for r in results}

    def direct(r: Result) -> Result:
        return by_key[(r.target.split()[0] + " direct gRPC", r.concurrency)]

    for r in results:
        base = direct(r)
        lines.append(
            f"{r.target:<24}{r.concurrency:>5}{r.qps:>9.0f}{r.p50_ms:>9.2f}{r.p99_ms:>9.2f}"
            f"{r.errors:>5}{r.qps / base.qps:>12.2f}{r.p50_ms - base.p50_ms:>+9.2f}"
            f"{r.server_cpu_us:>11.0f}{r.edge_cpu_us:>9.0f}"
        )
    low, high = min(r.concurrency for r in results), max(r.concurrency for r in results)
    bare = by_key[("echo direct gRPC", high)]
    lines += [
        "",
        f"simple reads, direct gRPC at concurrency {high}, beside the bare server "
        f"({bare.qps:.0f} QPS, {bare.server_cpu_us:.0f} us server CPU per call):",
    ]
    for server, rpc in READS:
        read = by_key[(f"{server} direct gRPC", high)]
        ratio = read.qps / bare.qps
        lines.append(
            f"  {server:<11}{rpc:<14}{read.server_cpu_us:>6.0f} us per call "
            f"(target <= {TARGET_SERVER_US}), {ratio:.2f}x the bare QPS "
            f"(target >= {TARGET_QPS_RATIO})"
        )
    lines.append("")
    for server in ("echo", *SERVICES):
        rest = by_key[(f"{server} edge REST", high)]
        edge = by_key[(f"{server} edge gRPC", low)]
        lines.append(
            f"{server}: edge REST / direct gRPC QPS at concurrency {high}: "
            f"{rest.qps / direct(rest).qps:.2f}; edge gRPC adds "
            f"{edge.p50_ms - direct(edge).p50_ms:.2f} ms p50 at concurrency {low}"
        )
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    lines.append(f"load average (1, 5, 15 min) at the end: {load} on {os.cpu_count()} CPUs")
    lines.append(
        "placement: "
        + (
            "load generator on CPU 0; both Envoys (1 worker each), the services and echo on CPU 1"
            if pinned
            else "unpinned (the OS scheduler places every process)"
        )
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run the benchmark, print the table."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.mesh",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--seconds", type=float, default=2.0, help="per measurement")
    parser.add_argument(
        "--rounds", type=int, default=3, help="measurements per target; the median by QPS is shown"
    )
    parser.add_argument("--max-requests", type=int, default=200_000, help="per measurement")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16])
    parser.add_argument(
        "--no-pin", dest="pin", action="store_false", help="leave CPU placement to the OS"
    )
    args = parser.parse_args(argv)
    if args.pin and len(os.sched_getaffinity(0)) < 2:
        args.pin = False
    home = Path(tempfile.mkdtemp(prefix="alea-bench-mesh-"))
    try:
        results = run(args, home)
    finally:
        shutil.rmtree(home, ignore_errors=True)
    print(report(results, args.pin))
    return 0


if __name__ == "__main__":
    sys.exit(main())
