"""Start any ``services.<name>`` as a real process and wait until it is healthy.

Example::

    proc = start_service("identity", home, {"ALEA_DATABASE_URL": url})
    ...  # talk to localhost:proc.port over mTLS
    proc.stop()  # SIGTERM, graceful; killed if it does not exit in time

The process inherits ``os.environ`` plus ``ALEA_HOME``, free ``ALEA_PORT`` and
``ALEA_HEALTH_PORT`` and whatever ``env`` adds; its stdout and stderr go to
``$ALEA_HOME/logs/<name>-<port>.log`` (shown in the error if it fails to start).
"""

from __future__ import annotations

import os
import random
import resource
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

REPO_ROOT = Path(__file__).resolve().parents[2]


# Test servers listen below Linux's ephemeral range (32768-60999): a port taken from that
# range with bind(port 0) can be grabbed by any outgoing connection (a health check, Envoy
# dialling an upstream) before the server it was meant for binds it.
_PORTS = range(20000, 32000)
_handed_out: set[int] = set()


def free_port() -> int:
    """A TCP port on 127.0.0.1, free a moment ago and not handed out before by this process."""
    for _ in range(1000):
        port = random.choice(_PORTS)
        if port in _handed_out:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise RuntimeError("no free port found in 20000-31999")


@dataclass
class ServiceProcess:
    """A running service: its process, gRPC (mTLS) port, plaintext health port and log."""

    name: str
    process: subprocess.Popen[bytes]
    port: int
    health_port: int
    log_path: Path

    @property
    def address(self) -> str:
        return f"localhost:{self.port}"

    def log(self) -> str:
        """Everything the process has written so far."""
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float = 15.0) -> int:
        """SIGTERM and wait (graceful shutdown); SIGKILL after ``timeout``. Returns the code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def health_status(port: int, service: str = "") -> int | None:
    """The ``grpc.health.v1`` status on plaintext ``port``, or None if unreachable."""
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            return stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=1).status
        except grpc.RpcError:
            return None


def listening_addresses(port: int) -> set[str]:
    """The local addresses with a TCP socket listening on ``port`` (from /proc/net: no traffic
    is sent), e.g. ``{"127.0.0.1", "::1"}`` or ``{"::"}`` for every interface."""
    found: set[str] = set()
    for table, family in (("tcp", socket.AF_INET), ("tcp6", socket.AF_INET6)):
        for line in Path(f"/proc/net/{table}").read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, port_hex = local.split(":")
            if state != "0A" or int(port_hex, 16) != port:  # 0A: LISTEN
                continue
            raw = bytes.fromhex(address)
            # /proc prints each 32-bit word in host (little-endian) order.
            words = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
            text = socket.inet_ntop(family, words)
            found.add(text.removeprefix("::ffff:") if family == socket.AF_INET6 else text)
    return found


def _limit_memory(limit: int) -> Callable[[], None]:
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    return apply


def start_service(
    name: str,
    home: Path,
    env: dict[str, str] | None = None,
    *,
    timeout: float = 60.0,
    memory_limit: int | None = None,
) -> ServiceProcess:
    """Start ``python -m services.<name>`` and return once its health port says SERVING.

    ``memory_limit`` caps the process's address space (bytes): a test that pushes a service's
    memory cannot take the machine down with it.
    """
    port, health_port = free_port(), free_port()
    logs = home / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    log_path = logs / f"{name}-{port}.log"
    full_env = {
        **os.environ,
        "ALEA_HOME": str(home),
        "ALEA_PORT": str(port),
        "ALEA_HEALTH_PORT": str(health_port),
        **(env or {}),
    }
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", f"services.{name}"],
            cwd=REPO_ROOT,
            env=full_env,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=None if memory_limit is None else _limit_memory(memory_limit),
        )
    service = ServiceProcess(name, process, port, health_port, log_path)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with {process.returncode}:\n{service.log()}")
        if health_status(health_port) == health_pb2.HealthCheckResponse.SERVING:
            return service
        time.sleep(0.1)
    service.stop()
    raise RuntimeError(f"{name} not healthy after {timeout}s:\n{service.log()}")
