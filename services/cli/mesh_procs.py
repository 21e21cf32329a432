"""Start, watch and stop the mesh's background processes (services and Envoy).

``start_mesh`` starts the supervisor (``services/cli/mesh_supervisor.py``) in its own
session, so it outlives the ``alea up`` that started it; the supervisor starts every
process, restarts those that die and answers requests on ``run/supervisor.sock``
(:func:`supervisor_request`). Each process logs to ``$ALEA_HOME/logs/<name>.log`` and
leaves ``$ALEA_HOME/run/<name>.pid``; the layout of the whole mesh (ports, database
template) is kept in ``$ALEA_HOME/run/mesh.json`` so that ``status``, ``down`` and ``demo``
find it again.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.cli import mesh_envoy
from services.runtime.config import DEFAULT_PORTS, HEALTH_PORT_OFFSET
from services.runtime.pki import ensure_pki

__all__ = [
    "ADMIN_PORT",
    "EDGE_PORT",
    "MeshError",
    "MeshLayout",
    "envoy_argv",
    "envoy_ready",
    "implemented_services",
    "is_alive",
    "log_tail",
    "read_pid",
    "render_envoy",
    "service_env",
    "service_health",
    "start_edge",
    "start_mesh",
    "stop_mesh",
    "supervisor_alive",
    "supervisor_request",
]

ROOT = Path(__file__).resolve().parents[2]
EDGE_PORT = 8443
ADMIN_PORT = 9901
START_TIMEOUT = 60.0
STOP_GRACE = 10.0
WEBHOOK_ALLOWLIST = "ALEA_NOTIFICATION_WEBHOOK_ALLOWLIST"


class MeshError(RuntimeError):
    """The mesh could not be started or stopped; the message says why and what to do."""


def implemented_services() -> list[str]:
    """Services with a ``services/<name>/__main__.py``, in the default port order."""
    return [name for name in DEFAULT_PORTS if (ROOT / "services" / name / "__main__.py").exists()]


@dataclass
class MeshLayout:
    """Where everything of one mesh lives: home directory, ports, database URL template."""

    home: Path
    services: dict[str, int] = field(default_factory=dict)  # name -> mTLS gRPC port
    edge_port: int = EDGE_PORT
    admin_port: int = ADMIN_PORT
    database_url_template: str | None = None  # e.g. "postgresql+asyncpg://.../alea_{service}"
    envoy_concurrency: int = 1
    rate_limit_per_s: int = 1000
    health_ports: dict[str, int] = field(default_factory=dict)
    port_offset: int = 0  # where services not started (yet) will listen: default + offset
    # The mesh stops when this process is gone: set by tests and benchmarks, so that one
    # killed before its cleanup leaves no mesh running. ``alea up`` leaves it unset.
    owner_pid: int | None = None

    def health_port(self, name: str) -> int:
        """Plaintext health port of ``name`` (gRPC port + 1000 unless set)."""
        return self.health_ports.get(name) or self.services[name] + HEALTH_PORT_OFFSET

    @property
    def pki(self) -> Path:
        return self.home / "pki"

    @property
    def run_dir(self) -> Path:
        return self.home / "run"

    @property
    def logs_dir(self) -> Path:
        return self.home / "logs"

    def log_path(self, name: str) -> Path:
        return self.logs_dir / f"{name}.log"

    def pid_path(self, name: str) -> Path:
        return self.run_dir / f"{name}.pid"

    def save(self) -> None:
        """Record the layout in ``run/mesh.json``."""
        data = {**asdict(self), "home": str(self.home)}
        (self.run_dir / "mesh.json").write_text(json.dumps(data, indent=2))

    @classmethod
    def load(cls, home: Path) -> MeshLayout:
        """The layout saved by the last ``alea up`` in ``home``."""
        path = home / "run" / "mesh.json"
        if not path.exists():
            raise MeshError(f"no mesh recorded in {home} (run 'alea up' first)")
        data = json.loads(path.read_text())
        return cls(**{**data, "home": Path(data["home"])})


def _check_port_free(port: int, what: str) -> None:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            raise MeshError(
                f"port {port} ({what}) is already in use: is a mesh already running "
                "('alea status')? Otherwise choose other ports (see 'alea up --help')."
            ) from None


def _spawn(layout: MeshLayout, name: str, argv: list[str], env: dict[str, str]) -> int:
    with layout.log_path(name).open("ab") as log:
        process = subprocess.Popen(
            argv,
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    layout.pid_path(name).write_text(f"{process.pid}\n")
    return process.pid


def service_env(layout: MeshLayout, name: str) -> dict[str, str]:
    """The environment of service ``name`` in ``layout`` (on top of the caller's)."""
    env = {
        "ALEA_HOME": str(layout.home),
        "ALEA_PORT": str(layout.services[name]),
        "ALEA_HEALTH_PORT": str(layout.health_port(name)),
    }
    # Where each service finds the others (ALEA_IDENTITY_ADDRESS, ALEA_FILES_ADDRESS, ...),
    # those 'alea up --services' may add later included.
    ports = {n: p + layout.port_offset for n, p in DEFAULT_PORTS.items()} | layout.services
    for other, port in ports.items():
        env[f"ALEA_{other.upper()}_ADDRESS"] = f"localhost:{port}"
    if layout.database_url_template:
        env["ALEA_DATABASE_URL"] = layout.database_url_template.format(service=name)
    # A development mesh delivers webhooks to receivers on this machine ('alea demo' runs
    # one); deployments set no allowlist, so loopback and private addresses are refused.
    if name == "notification" and not os.environ.get(WEBHOOK_ALLOWLIST):
        env[WEBHOOK_ALLOWLIST] = "127.0.0.0/8,::1/128"
    return env


def read_pid(layout: MeshLayout, name: str) -> int | None:
    """The pid recorded for ``name``, or None."""
    try:
        return int(layout.pid_path(name).read_text())
    except (FileNotFoundError, ValueError):
        return None


def is_alive(pid: int | None) -> bool:
    """Whether ``pid`` is a running (not zombie) process."""
    if pid is None:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def service_health(port: int) -> str:
    """``SERVING``, ``NOT_SERVING``… from the plaintext health port, or ``UNREACHABLE``."""
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=1
            )
        except grpc.RpcError:
            return "UNREACHABLE"
    return str(health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status))


def envoy_ready(admin_port: int) -> bool:
    """Whether Envoy's admin ``/ready`` answers 200 (listeners up, clusters initialised)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{admin_port}/ready", timeout=1) as r:
            return bool(r.status == 200)
    except OSError:
        return False


def log_tail(path: Path, lines: int = 30) -> str:
    """The last ``lines`` lines of a log file (empty if missing)."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return ""


def _wait(layout: MeshLayout, name: str, ready: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not is_alive(read_pid(layout, name)):
            raise MeshError(
                f"{name} exited during start; the end of {layout.log_path(name)}:\n"
                f"{log_tail(layout.log_path(name))}"
            )
        if ready():
            return
        time.sleep(0.1)
    raise MeshError(
        f"{name} not ready after {timeout:.0f}s; the end of {layout.log_path(name)}:\n"
        f"{log_tail(layout.log_path(name))}"
    )


def start_mesh(layout: MeshLayout, timeout: float = START_TIMEOUT) -> None:
    """Start the supervisor of ``layout``, which starts every service and Envoy in front of
    them; return once all are ready.

    On failure everything already started is stopped again before :class:`MeshError`.
    """
    if supervisor_alive(layout):
        raise MeshError(f"a mesh is already running in {layout.home} ('alea down' first)")
    for name in ["envoy", *layout.services]:
        if is_alive(read_pid(layout, name)):
            raise MeshError(f"{name} is already running in {layout.home} ('alea down' first)")
    for name, port in layout.services.items():
        _check_port_free(port, name)
        _check_port_free(layout.health_port(name), f"{name} health")
    _check_port_free(layout.edge_port, "edge")
    _check_port_free(layout.admin_port, "Envoy admin")
    for directory in (layout.run_dir, layout.logs_dir, layout.home / "data"):
        directory.mkdir(parents=True, exist_ok=True)
    ensure_pki(layout.home)
    layout.save()
    (layout.run_dir / "supervisor.failed").unlink(missing_ok=True)
    argv = [sys.executable, "-m", "services.cli.mesh_supervisor", str(layout.home)]
    _spawn(layout, "supervisor", argv, {})
    names = [*layout.services, "envoy"]
    deadline = time.monotonic() + timeout * 2
    try:
        while time.monotonic() < deadline:
            if not is_alive(read_pid(layout, "supervisor")):
                failed = layout.run_dir / "supervisor.failed"
                raise MeshError(
                    failed.read_text()
                    if failed.exists()
                    else f"the supervisor exited; see {layout.log_path('supervisor')}:\n"
                    f"{log_tail(layout.log_path('supervisor'))}"
                )
            with contextlib.suppress(MeshError):
                status = supervisor_request(layout, {"op": "status"})
                states = {p["name"]: p["state"] for p in status["processes"]}
                if all(states.get(n) == "RUNNING" for n in names):
                    return
            time.sleep(0.1)
        raise MeshError(f"the mesh was not ready after {timeout * 2:.0f}s; see {layout.logs_dir}")
    except BaseException:
        stop_mesh(layout)
        raise


def supervisor_alive(layout: MeshLayout) -> bool:
    """Whether the supervisor of the mesh in ``layout.home`` is running."""
    pid = read_pid(layout, "supervisor")
    return is_alive(pid) and _ours(pid)  # type: ignore[arg-type]


def supervisor_request(
    layout: MeshLayout, request: dict[str, Any], timeout: float = START_TIMEOUT
) -> dict[str, Any]:
    """Send one request to the supervisor over its socket; its JSON reply."""
    path = layout.run_dir / "supervisor.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect(str(path))
            sock.sendall(json.dumps(request).encode() + b"\n")
            reply = b""
            while not reply.endswith(b"\n"):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                reply += chunk
        except OSError as exc:
            raise MeshError(f"the supervisor of {layout.home} does not answer: {exc}") from None
    try:
        answer: dict[str, Any] = json.loads(reply)
    except ValueError:
        raise MeshError(f"the supervisor of {layout.home} gave no answer") from None
    return answer


def start_edge(layout: MeshLayout, name: str = "envoy", timeout: float = START_TIMEOUT) -> None:
    """Start an Envoy (pid/log/config named ``name``) in front of the layout's services."""
    _check_port_free(layout.edge_port, "edge")
    _check_port_free(layout.admin_port, "Envoy admin")
    config = render_envoy(layout, name)
    _spawn(layout, name, envoy_argv(layout, config), {})
    _wait(layout, name, lambda: envoy_ready(layout.admin_port), timeout)


def render_envoy(layout: MeshLayout, name: str = "envoy") -> Path:
    """Write ``$ALEA_HOME/<name>.yaml`` for the layout's services; return its path."""
    settings = mesh_envoy.EdgeSettings(
        edge_port=layout.edge_port,
        admin_port=layout.admin_port,
        pki=layout.pki,
        access_log=layout.logs_dir / f"{name}-access.log",
        rate_limit_per_s=layout.rate_limit_per_s,
        rate_limit_burst=layout.rate_limit_per_s * 2,
        # The edge's spans go where the services send theirs.
        otlp_collector=mesh_envoy.otlp_collector(os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")),
    )
    upstreams = [mesh_envoy.upstream(svc, port) for svc, port in layout.services.items()]
    return mesh_envoy.render(settings, upstreams, layout.home / f"{name}.yaml")


def envoy_argv(layout: MeshLayout, config: Path) -> list[str]:
    """Envoy's command line; hot restart is off so several meshes can share a host."""
    return [
        str(mesh_envoy.ENVOY_BINARY),
        "-c",
        str(config),
        "--concurrency",
        str(layout.envoy_concurrency),
        "--disable-hot-restart",
        "--log-level",
        "warning",
    ]


def _ours(pid: int) -> bool:
    # A pid file can outlive its process and the pid be reused: only signal our own kinds.
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return False
    return b"services." in cmdline or b"envoy" in cmdline


def stop_mesh(
    layout: MeshLayout, grace: float = STOP_GRACE, names: list[str] | None = None
) -> list[str]:
    """SIGTERM Envoy and every service (or just ``names``), SIGKILL what outlives ``grace``.

    When the supervisor is running and any of ``names`` is one of its processes, it is
    asked to stop everything first (so that nothing is restarted meanwhile); what still
    runs after it (processes it does not own, such as :func:`start_edge`'s) is stopped by
    pid. Returns the names of the processes that were running.
    """
    running: list[str] = []
    supervised = {"envoy", *layout.services}
    if (names is None or supervised & set(names)) and supervisor_alive(layout):
        with contextlib.suppress(MeshError):
            status = supervisor_request(layout, {"op": "status"})
            running = [p["name"] for p in status["processes"] if p["state"] != "STOPPED"]
            supervisor_request(layout, {"op": "stop"}, timeout=grace * 3)
        _wait_gone(read_pid(layout, "supervisor"), grace)
    names = names or ["supervisor", "envoy", *layout.services]
    pids = {n: p for n in names if (p := read_pid(layout, n)) and is_alive(p) and _ours(p)}
    for pid in pids.values():
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while any(is_alive(p) for p in pids.values()) and time.monotonic() < deadline:
        time.sleep(0.05)
    for pid in pids.values():
        if is_alive(pid):
            os.kill(pid, signal.SIGKILL)
    for name in names:
        layout.pid_path(name).unlink(missing_ok=True)
    stopped = [*running, *(n for n in pids if n not in running and n != "supervisor")]
    return sorted(stopped, key=lambda n: (n != "envoy", names.index(n) if n in names else 0))


def _wait_gone(pid: int | None, grace: float) -> None:
    deadline = time.monotonic() + grace
    while is_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
