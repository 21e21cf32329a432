"""``alea up / status / demo / down`` as a user runs them, starting real processes.

Runs the identity service alone (quick to start) under a temporary ALEA_HOME, on ports
chosen through the environment knobs, never the defaults. ``alea up`` runs as its own
process once; the other commands call the same entry point (``services.cli.main.main``)
in this process, which spares the command's start-up time on each call.
"""

from __future__ import annotations

import contextlib
import io
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import pytest

from services.cli.main import main
from services.cli.mesh_procs import MeshLayout, is_alive, stop_mesh
from tests.support.services import REPO_ROOT, free_port, free_port_offset

pytestmark = pytest.mark.integration


def alea_process(home: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """Run the ``alea ARGS`` command as a process with ``ALEA_HOME=home`` and ``env``."""
    return subprocess.run(
        [sys.executable, "-m", "services.cli.main", *args],
        cwd=REPO_ROOT,
        text=True,
        capture_output=True,
        timeout=120,
        env={**os.environ, "ALEA_HOME": str(home), **env},
    )


def alea(home: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """Call the ``alea`` entry point with ARGS, ``ALEA_HOME=home`` and ``env``, in-process."""
    out, err = io.StringIO(), io.StringIO()
    with (
        mock.patch.dict(os.environ, {"ALEA_HOME": str(home), **env}),
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(err),
    ):
        code = main(list(args))
    return subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, str]]]:
    """``alea up --services identity`` on free ports; ``alea down`` afterwards."""
    home = tmp_path_factory.mktemp("alea-home")
    env = {
        "ALEA_EDGE_PORT": str(free_port()),
        "ALEA_EDGE_ADMIN_PORT": str(free_port()),
        "ALEA_PORT_OFFSET": str(free_port_offset()),
    }
    up = alea_process(home, env, "up", "--services", "identity")
    assert up.returncode == 0, up.stdout + up.stderr
    try:
        yield home, env
    finally:  # normally a no-op: the last test ran 'alea down'
        stop_mesh(MeshLayout.load(home))


def test_up_prints_how_to_reach_the_edge(running: tuple[Path, dict[str, str]]) -> None:
    home, env = running
    config = (home / "envoy.yaml").read_text()
    assert f"port_value: {env['ALEA_EDGE_PORT']}" in config
    assert (home / "run" / "identity.pid").exists() and (home / "run" / "envoy.pid").exists()


def test_status_shows_every_process_healthy(running: tuple[Path, dict[str, str]]) -> None:
    status = alea(*running, "status")
    assert status.returncode == 0, status.stdout + status.stderr
    assert "SERVING" in status.stdout and "READY" in status.stdout


def test_demo_runs_every_step_over_grpc_and_rest(running: tuple[Path, dict[str, str]]) -> None:
    demo = alea(*running, "demo")
    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert "[grpc] GetUser" in demo.stdout and "[rest] GET /v1/users" in demo.stdout
    assert "8 steps succeeded" in demo.stdout  # the identity steps; others need their service


def test_up_refuses_a_port_in_use_with_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        env = {
            "ALEA_EDGE_PORT": str(port),
            "ALEA_EDGE_ADMIN_PORT": str(free_port()),
            "ALEA_PORT_OFFSET": str(free_port_offset()),
        }
        up = alea(tmp_path, env, "up", "--services", "identity")
    assert up.returncode == 1
    assert f"port {port} (edge) is already in use" in up.stderr


def test_up_shows_the_log_of_a_service_that_dies_during_start(tmp_path: Path) -> None:
    env = {
        "ALEA_EDGE_PORT": str(free_port()),
        "ALEA_EDGE_ADMIN_PORT": str(free_port()),
        "ALEA_PORT_OFFSET": str(free_port_offset()),
    }
    up = alea(
        tmp_path,
        env,
        "up",
        "--services",
        "identity",
        "--database-url-template",
        "mysql://db/{service}",
    )
    assert up.returncode == 1
    assert "identity exited during start" in up.stderr
    assert "ALEA_DATABASE_URL" in up.stderr  # the service's own error, from its log
    assert not list((tmp_path / "run").glob("*.pid"))


def test_down_stops_everything(running: tuple[Path, dict[str, str]]) -> None:
    # Last in this module: it ends the mesh the tests above shared.
    home, env = running
    pids = [int((home / "run" / f"{n}.pid").read_text()) for n in ("identity", "envoy")]

    down = alea(home, env, "down")

    assert down.returncode == 0 and "stopped: envoy, identity" in down.stdout
    assert not any(is_alive(pid) for pid in pids)
    assert not list((home / "run").glob("*.pid"))
