"""Start any ``services.<name>`` as a real process and wait until it is healthy.

Example::

    proc = start_service("identity", home, {"ALEA_DATABASE_URL": url})
    ...  # talk to localhost:proc.port over mTLS
    proc.stop()  # SIGTERM, graceful; killed if it does not exit in time

The process inherits ``os.environ`` plus ``ALEA_HOME``, free ``ALEA_PORT`` and
``ALEA_HEALTH_PORT`` and whatever ``env`` adds; its stdout and stderr go to
``$ALEA_HOME/logs/<name>-<port>-<health port>.log`` (shown in the error if it fails to
start). It is healthy once *its* health port answers SERVING: the listening socket is
checked to be the process's own, since a port found free may be taken by another test's
server before the service binds it (the service then exits, and is started again on new
ports).
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

from services.runtime.config import DEFAULT_PORTS, HEALTH_PORT_OFFSET

REPO_ROOT = Path(__file__).resolve().parents[2]
_STARTS = 3  # attempts when a port found free was taken before the service bound it


# Test servers listen below Linux's ephemeral range (32768-60999): a port taken from that
# range with bind(port 0) can be grabbed by any outgoing connection (a health check, Envoy
# dialling an upstream) before the server it was meant for binds it.
_PORTS = range(20000, 32000)
_handed_out: set[int] = set()


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A TCP port on 127.0.0.1, free a moment ago and not handed out before by this process."""
    for _ in range(1000):
        port = random.choice(_PORTS)
        if port not in _handed_out and _bindable(port):
            _handed_out.add(port)
            return port
    raise RuntimeError("no free port found in 20000-31999")


def free_port_offset() -> int:
    """An ``ALEA_PORT_OFFSET`` (``alea up``) whose every port, each service's and its health
    port, was free a moment ago and is not handed out again by this process: checking the
    first service's port alone left the others to collide with another test's servers."""
    first = min(DEFAULT_PORTS.values())
    span = max(DEFAULT_PORTS.values()) - first + HEALTH_PORT_OFFSET
    for _ in range(1000):
        offset = random.choice(range(_PORTS.start, _PORTS.stop - span)) - first
        ports = [p + offset + h for p in DEFAULT_PORTS.values() for h in (0, HEALTH_PORT_OFFSET)]
        if not _handed_out.intersection(ports) and all(map(_bindable, ports)):
            _handed_out.update(ports)
            return offset
    raise RuntimeError("no free range of service ports found in 20000-31999")


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
    return {address for address, _ in _listening(port)}


def _listening(port: int) -> list[tuple[str, int]]:
    """(local address, socket inode) of each TCP socket listening on ``port``."""
    found: list[tuple[str, int]] = []
    for table, family in (("tcp", socket.AF_INET), ("tcp6", socket.AF_INET6)):
        for line in Path(f"/proc/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            local, state, inode = fields[1], fields[3], int(fields[9])
            address, port_hex = local.split(":")
            if state != "0A" or int(port_hex, 16) != port:  # 0A: LISTEN
                continue
            raw = bytes.fromhex(address)
            # /proc prints each 32-bit word in host (little-endian) order.
            words = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
            text = socket.inet_ntop(family, words)
            if family == socket.AF_INET6:
                text = text.removeprefix("::ffff:")
            found.append((text, inode))
    return found


def _listens_on(pid: int, port: int) -> bool:
    """Whether process ``pid`` holds a socket listening on ``port``: a port found free a
    moment ago may have been taken by another test's server since, whose health check
    would answer SERVING for a process of ours that could not bind it."""
    inodes = {f"socket:[{inode}]" for _, inode in _listening(port)}
    fds = Path(f"/proc/{pid}/fd")
    try:
        return any(os.readlink(fd) in inodes for fd in fds.iterdir())
    except (FileNotFoundError, ProcessLookupError):  # it exited meanwhile
        return False


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
    for _ in range(_STARTS):
        port, health_port = free_port(), free_port()
        full_env = {
            **os.environ,
            "ALEA_HOME": str(home),
            "ALEA_PORT": str(port),
            "ALEA_HEALTH_PORT": str(health_port),
            **(env or {}),
        }
        port, health_port = int(full_env["ALEA_PORT"]), int(full_env["ALEA_HEALTH_PORT"])
        logs = home / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        log_path = logs / f"{name}-{port}-{health_port}.log"
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
                break
            if health_status(health_port) == health_pb2.HealthCheckResponse.SERVING and (
                _listens_on(process.pid, health_port)
            ):
                return service
            time.sleep(0.1)
        else:
            service.stop()
            raise RuntimeError(f"{name} not healthy after {timeout}s:\n{service.log()}")
        if "Address already in use" not in service.log():
            break
        # Another test's server took a port between free_port() and our bind: new ports.
    raise RuntimeError(f"{name} exited with {process.returncode}:\n{service.log()}")
