"""``python -m bench.mesh``: unary RPC throughput and latency through the edge vs direct.

One run starts, on loopback under a temporary ALEA_HOME, the identity service and an
Envoy edge in front of it (the code of ``alea up``), plus a bare grpc.aio echo server, then
measures the same authenticated ``GetUser`` four ways, side by side, at each concurrency:

- ``echo``:        bare grpc.aio unary echo over mTLS (the transport floor);
- ``direct gRPC``: identity service straight over mTLS;
- ``edge gRPC``:   through Envoy, native gRPC (mTLS both hops);
- ``edge REST``:   through Envoy, ``GET /v1/users/{id}`` transcoded to gRPC (HTTP/1.1 keep-alive).

With ``--pin`` (default) the load generator runs on CPU 0 and every server process (Envoy,
identity, echo) on CPU 1, so the two halves do not steal each other's core. The edge's rate
limit is raised so that it does not shape the measurement. Loops are bounded by time and count.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
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
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import grpc
from alea.identity.v1 import identity_pb2, identity_pb2_grpc

from bench.mesh.echo import METHOD as ECHO_METHOD
from services.cli.edge_client import ssl_context
from services.cli.mesh_procs import MeshLayout, read_pid, start_mesh, stop_mesh
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


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _pin(pid: int, cpu: int) -> None:
    # Every thread, not only the main one: Envoy's workers and gRPC's pollers already exist.
    for task in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(OSError):  # a thread may have exited meanwhile
            os.sched_setaffinity(int(task), {cpu})


async def measure(
    target: str, make_call: Callable[[], Call], concurrency: int, seconds: float, cap: int
) -> Result:
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

    calls = [make_call() for _ in range(concurrency)]
    deadline = time.perf_counter() + min(0.5, seconds / 4)  # warm-up, not recorded
    await asyncio.gather(*(worker(c) for c in calls))
    latencies.clear()
    errors = 0
    started = time.perf_counter()
    deadline = started + seconds
    await asyncio.gather(*(worker(c) for c in calls))
    elapsed = time.perf_counter() - started
    if not latencies:
        raise RuntimeError(f"{target}: every call failed ({errors} errors)")
    cuts = statistics.quantiles(latencies, n=100, method="inclusive")
    return Result(target, concurrency, len(latencies), errors, len(latencies) / elapsed,
                  cuts[49] * 1000, cuts[98] * 1000)  # fmt: skip


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


def _grpc_credentials(pki: Path) -> grpc.ChannelCredentials:
    return grpc.ssl_channel_credentials(
        (pki / "ca.crt").read_bytes(), (pki / "client.key").read_bytes(),
        (pki / "client.crt").read_bytes(),
    )  # fmt: skip


def run(args: argparse.Namespace, home: Path) -> list[Result]:
    """Start the processes, measure every target at every concurrency, stop everything."""
    pki = ensure_pki(home)
    layout = MeshLayout(
        home=home, services={"identity": _free_port()}, health_ports={"identity": _free_port()},
        edge_port=_free_port(), admin_port=_free_port(), rate_limit_per_s=1_000_000,
    )  # fmt: skip
    echo_port = _free_port()
    echo = subprocess.Popen([sys.executable, "-m", "bench.mesh.echo", str(echo_port), str(pki)])
    try:
        start_mesh(layout)
        if args.pin:
            _pin(os.getpid(), 0)
            for pid in (echo.pid, read_pid(layout, "identity"), read_pid(layout, "envoy")):
                _pin(pid or 0, 1)
        return asyncio.run(_measure_all(args, layout, echo_port))
    finally:
        stop_mesh(layout)
        echo.terminate()
        echo.wait()


async def _measure_all(
    args: argparse.Namespace, layout: MeshLayout, echo_port: int
) -> list[Result]:
    credentials = _grpc_credentials(layout.pki)
    direct = grpc.aio.secure_channel(f"localhost:{layout.services['identity']}", credentials)
    edge = grpc.aio.secure_channel(f"localhost:{layout.edge_port}", credentials)
    echo = grpc.aio.secure_channel(f"localhost:{echo_port}", credentials)
    password = "bench password 0123"
    registered = await identity_pb2_grpc.IdentityServiceStub(direct).Register(
        identity_pb2.RegisterRequest(
            tenant_display_name="bench", email=f"bench-{uuid.uuid4().hex[:8]}@example.com",
            password=password, display_name="Bench", request_id=str(uuid.uuid4()),
        ), timeout=30,
    )  # fmt: skip
    token = registered.tokens.access_token
    user_id = registered.user.id
    auth = (("authorization", f"Bearer {token}"),)
    request = identity_pb2.GetUserRequest(user_id=user_id)
    rest_context = ssl_context(layout.pki / "ca.crt", layout.pki / "client.crt",
                               layout.pki / "client.key")  # fmt: skip
    rest_headers = {"authorization": f"Bearer {token}"}
    echo_call = echo.unary_unary(ECHO_METHOD)
    payload = request.SerializeToString()
    await echo_call(payload, timeout=30, wait_for_ready=True)  # started beside the mesh

    def grpc_get(channel: grpc.aio.Channel) -> Callable[[], Call]:
        stub = identity_pb2_grpc.IdentityServiceStub(channel)

        async def call() -> None:
            await stub.GetUser(request, metadata=auth, timeout=10)

        return lambda: call

    def echo_maker() -> Call:
        async def call() -> None:
            await echo_call(payload, timeout=10)

        return call

    def rest_maker() -> Call:
        connection = RestConnection("localhost", layout.edge_port, rest_context, rest_headers)
        return lambda: connection.get(f"/v1/users/{user_id}")

    targets = [
        ("echo", echo_maker), ("direct gRPC", grpc_get(direct)),
        ("edge gRPC", grpc_get(edge)), ("edge REST", rest_maker),
    ]  # fmt: skip
    results = []
    for concurrency in args.concurrency:
        for name, maker in targets:
            results.append(await measure(name, maker, concurrency, args.seconds, args.max_requests))
    for channel in (direct, edge, echo):
        await channel.close()
    return results


def report(results: list[Result], pinned: bool) -> str:
    """The results as a table, with ratios to the direct call at the same concurrency."""
    lines = [
        f"{'target':<13}{'conc':>5}{'QPS':>9}{'p50 ms':>9}{'p99 ms':>9}{'err':>5}"
        f"{'QPS/direct':>12}{'+p50 ms':>9}",
    ]
    by_key = {(r.target, r.concurrency): r for r in results}
    for r in results:
        base = by_key[("direct gRPC", r.concurrency)]
        lines.append(
            f"{r.target:<13}{r.concurrency:>5}{r.qps:>9.0f}{r.p50_ms:>9.2f}{r.p99_ms:>9.2f}"
            f"{r.errors:>5}{r.qps / base.qps:>12.2f}{r.p50_ms - base.p50_ms:>+9.2f}"
        )
    concurrencies = sorted({r.concurrency for r in results})
    low, high = concurrencies[0], concurrencies[-1]
    rest_ratio = by_key[("edge REST", high)].qps / by_key[("direct gRPC", high)].qps
    added = by_key[("edge gRPC", low)].p50_ms - by_key[("direct gRPC", low)].p50_ms
    lines += [
        "",
        f"edge REST / direct gRPC QPS at concurrency {high}: {rest_ratio:.2f} (target >= 0.7)",
        f"edge gRPC adds {added:.2f} ms p50 at concurrency {low} (target <= 0.5)",
        "placement: " + ("load generator on CPU 0; Envoy (1 worker), identity and echo on CPU 1"
                         if pinned else "unpinned (the OS scheduler places every process)"),
    ]  # fmt: skip
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run the benchmark, print the table."""
    parser = argparse.ArgumentParser(prog="python -m bench.mesh", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=3.0, help="per measurement")
    parser.add_argument("--max-requests", type=int, default=200_000, help="per measurement")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--no-pin", dest="pin", action="store_false",
                        help="leave CPU placement to the OS")  # fmt: skip
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
