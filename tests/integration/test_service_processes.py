"""The process contract every service shares through ``runtime.server.run``: a malformed
setting exits 2 naming the variable, SIGTERM flushes the buffered traces and exits 0 (at
once, even while the simulation service still loads its engine), and a trace continues
across a service-to-service call; the test harness starting them is not fooled by another
server answering on a port it picked."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import grpc
import pytest
from alea.identity.v1 import identity_pb2, identity_pb2_grpc
from alea.simulation.v1 import simulation_pb2, simulation_pb2_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.runtime.clients import channel_credentials
from tests.engine import models
from tests.support import services
from tests.support.services import REPO_ROOT, ServiceProcess, start_service

pytestmark = pytest.mark.integration

COMMANDS = {
    "identity": ["services.identity"],
    "files": ["services.files"],
    "simulation": ["services.simulation"],
    "simulation workers": ["services.simulation", "--worker"],
    "notification": ["services.notification"],
    "admin": ["services.admin"],
    "analytics": ["services.analytics"],
}
BAD_SETTINGS = [
    (command, variable, value)
    for command in COMMANDS
    for variable, value in (("ALEA_PORT", "not-a-port"), ("ALEA_SHUTDOWN_GRACE", "soon"))
] + [
    ("simulation", "ALEA_SIMULATION_WORKERS", "many"),
    ("simulation workers", "ALEA_SIMULATION_LEASE_SECONDS", "-1"),
    ("files", "ALEA_FILES_MAX_FILE_BYTES", "big"),
    ("notification", "ALEA_NOTIFICATION_RETENTION_DAYS", "a week"),
    ("notification", "ALEA_NOTIFICATION_WEBHOOK_ALLOWLIST", "localhost"),
    ("notification", "ALEA_NOTIFICATION_WEBHOOK_RETRY_JITTER", "some"),
    ("notification", "ALEA_SMTP_SECURITY", "ssl3"),
    ("admin", "ALEA_AUDIT", "sometimes"),
    ("analytics", "ALEA_USAGE_FLUSH_SECONDS", "often"),
    ("identity", "ALEA_AUDIT_FLUSH_SECONDS", "-1"),
]


@pytest.mark.parametrize(("command", "variable", "value"), BAD_SETTINGS)
def test_a_malformed_setting_stops_start_up_with_status_2(
    tmp_path: Path, command: str, variable: str, value: str
) -> None:
    env = {**os.environ, "ALEA_HOME": str(tmp_path), variable: value}
    done = subprocess.run(
        [sys.executable, "-m", *COMMANDS[command]],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert variable in done.stderr
    assert "Traceback" not in done.stderr


def _objects(text: str) -> list[dict[str, Any]]:
    """Every JSON object in a process's output: its log lines and its console spans."""
    decoder, found, at = json.JSONDecoder(), [], 0
    while (start := text.find("{", at)) != -1:
        try:
            value, at = decoder.raw_decode(text, start)
        except json.JSONDecodeError:
            at = start + 1
            continue
        found.append(value)
    return found


def _spans(process: ServiceProcess) -> dict[str, dict[str, Any]]:
    """The process's server spans by RPC name (the last of each name)."""
    return {o["name"]: o for o in _objects(process.log()) if "context" in o and "name" in o}


@pytest.mark.parametrize(
    "name", ["identity", "files", "simulation", "notification", "admin", "analytics"]
)
def test_sigterm_flushes_the_traces_and_exits_0(tmp_path: Path, name: str) -> None:
    process = start_service(name, tmp_path, {"ALEA_OTEL_EXPORTER": "console"})
    credentials = channel_credentials(tmp_path / "pki", "edge")
    with grpc.secure_channel(process.address, credentials) as channel:
        health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(), metadata=(("x-request-id", f"flush-{name}"),)
        )
    assert process.stop() == 0
    span = _spans(process)["/grpc.health.v1.Health/Check"]  # buffered until the exit
    assert span["attributes"]["alea.request_id"] == f"flush-{name}"
    lines = _objects(process.log())
    assert any(o.get("msg") == "rpc" and o.get("request_id") == f"flush-{name}" for o in lines)
    assert any(o.get("msg") == "shutting down" for o in lines)
    assert "Traceback" not in process.log()


# Imported first by every interpreter on PYTHONPATH: the engine's back ends take a minute
# to import, as on a machine far busier than any the service should wait for.
_SLOW_ENGINE = """
import importlib.abc, sys, time

class SlowEngine(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name == "services.engine.run":
            time.sleep(60)
        return None

sys.meta_path.insert(0, SlowEngine())
"""


def test_sigterm_while_the_engine_still_loads_exits_0_at_once(tmp_path: Path) -> None:
    # The worker loads the engine on a thread once the service serves; a shutdown must not
    # wait for it (it waited, and past the stop timeout the process was killed).
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(_SLOW_ENGINE)
    path = os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH")) if p)
    process = start_service("simulation", tmp_path, {"PYTHONPATH": path})
    assert process.stop(timeout=15) == 0  # well before the engine could have loaded
    log = process.log()
    assert any(o.get("msg") == "shutting down" for o in _objects(log))
    assert "Traceback" not in log and "ignored" not in log, log


def test_a_trace_continues_from_simulation_into_identity(tmp_path: Path) -> None:
    console = {"ALEA_OTEL_EXPORTER": "console"}
    identity = start_service("identity", tmp_path, console)
    simulation = start_service(
        "simulation",
        tmp_path,
        {**console, "ALEA_IDENTITY_ADDRESS": identity.address, "ALEA_SIMULATION_WORKERS": "0"},
    )
    credentials = channel_credentials(tmp_path / "pki", "edge")
    try:
        with grpc.secure_channel(identity.address, credentials) as channel:
            reply = identity_pb2_grpc.IdentityServiceStub(channel).Register(
                identity_pb2.RegisterRequest(
                    tenant_display_name="trace",
                    email=f"trace-{uuid.uuid4().hex[:8]}@example.com",
                    password="trace password 123",
                    display_name="T",
                ),
                timeout=30,
            )
        auth = (("authorization", f"Bearer {reply.tokens.access_token}"),)
        buffer = io.BytesIO()
        models.small().save(buffer)
        with grpc.secure_channel(simulation.address, credentials) as channel:
            stub = simulation_pb2_grpc.SimulationServiceStub(channel)
            model = stub.CreateModel(
                simulation_pb2.CreateModelRequest(display_name="m", workbook=buffer.getvalue()),
                metadata=auth,
                timeout=60,
            )
            stub.CreateSimulation(
                simulation_pb2.CreateSimulationRequest(model_id=model.id, trials=1000, seed=1),
                metadata=auth,
                timeout=30,
            )
    finally:
        assert simulation.stop() == 0
        assert identity.stop() == 0
    caller = _spans(simulation)["/alea.simulation.v1.SimulationService/CreateSimulation"]
    callee = _spans(identity)["/alea.identity.v1.IdentityService/ReserveTrials"]
    assert callee["context"]["trace_id"] == caller["context"]["trace_id"]
    assert callee["parent_id"] is not None


def test_a_port_taken_before_the_service_binds_it_is_not_its_health(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another test's server takes the health port picked for ours: its health says SERVING
    while ours exits on EADDRINUSE; start_service must start ours again on new ports."""
    stranger = start_service("identity", tmp_path)
    try:
        picks = iter([services.free_port(), stranger.health_port])
        real = services.free_port
        monkeypatch.setattr(services, "free_port", lambda: next(picks, 0) or real())
        ours = start_service("admin", tmp_path)
        try:
            assert ours.health_port != stranger.health_port
            assert ours.process.poll() is None
        finally:
            assert ours.stop() == 0
    finally:
        stranger.stop()
