"""The process contract of ``python -m services.identity``: clean SIGTERM, traces, bad config."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import grpc
import pytest
from alea.identity.v1 import identity_pb2 as pb
from alea.identity.v1 import identity_pb2_grpc

from services.runtime.clients import channel_credentials
from tests.support.services import REPO_ROOT, start_service

pytestmark = pytest.mark.integration


def test_sigterm_drains_traces_and_exits_cleanly(tmp_path: Path) -> None:
    process = start_service("identity", tmp_path, {"ALEA_OTEL_EXPORTER": "console"})
    credentials = channel_credentials(tmp_path / "pki", "client")
    with grpc.secure_channel(process.address, credentials) as channel:
        stub = identity_pb2_grpc.IdentityServiceStub(channel)
        stub.GetJwks(pb.GetJwksRequest(), metadata=(("x-request-id", "trace-me-42"),))
    assert process.stop() == 0
    log = process.log()
    assert '"msg": "shutting down"' in log
    assert '"alea.request_id": "trace-me-42"' in log  # the RPC's span, flushed at exit
    assert '"request_id": "trace-me-42"' in log  # and its JSON access log line
    assert "Traceback" not in log


def test_a_malformed_setting_stops_start_up_naming_it(tmp_path: Path) -> None:
    env = {**os.environ, "ALEA_HOME": str(tmp_path), "ALEA_PORT": "not-a-port"}
    done = subprocess.run(
        [sys.executable, "-m", "services.identity"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "ALEA_PORT" in done.stderr and "Traceback" not in done.stderr
