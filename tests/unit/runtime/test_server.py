"""The bootstrap: mTLS only with platform certificates, health and reflection, and a
graceful stop that turns health NOT_SERVING before the server goes away."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import grpc
import pytest
from alea.identity.v1 import identity_pb2 as pb
from alea.identity.v1 import identity_pb2_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from tests.support.pki import expired_cert, foreign_cert
from tests.support.services import REPO_ROOT, listening_addresses
from tests.unit.runtime.harness import Subject, identity_in_process

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def _channel(subject: Subject, crt: Path, key: Path) -> grpc.aio.Channel:
    credentials = grpc.ssl_channel_credentials(
        (subject.home / "pki" / "ca.crt").read_bytes(), key.read_bytes(), crt.read_bytes()
    )
    return grpc.aio.secure_channel(f"localhost:{subject.port}", credentials)


@pytest.mark.parametrize("make", ["foreign", "expired"])
async def test_client_certificates_outside_the_platform_are_refused(
    subject: Subject, tmp_path: Path, make: str
) -> None:
    if make == "foreign":
        crt, key = foreign_cert(tmp_path)
    else:
        crt, key = expired_cert(subject.home / "pki", tmp_path)
    stub = identity_pb2_grpc.IdentityServiceStub(_channel(subject, crt, key))
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.GetJwks(pb.GetJwksRequest(), timeout=5)
    assert raised.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_no_client_certificate_is_refused(subject: Subject) -> None:
    credentials = grpc.ssl_channel_credentials((subject.home / "pki" / "ca.crt").read_bytes())
    channel = grpc.aio.secure_channel(f"localhost:{subject.port}", credentials)
    stub = identity_pb2_grpc.IdentityServiceStub(channel)
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.GetJwks(pb.GetJwksRequest(), timeout=5)
    assert raised.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_health_and_reflection_on_the_mtls_port(subject: Subject) -> None:
    channel = subject.channel()
    health = health_pb2_grpc.HealthStub(channel)
    answer = await health.Check(
        health_pb2.HealthCheckRequest(service="alea.identity.v1.IdentityService")
    )
    assert answer.status == SERVING
    reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
    request = reflection_pb2.ServerReflectionRequest(list_services="")
    async for response in reflection.ServerReflectionInfo(iter([request])):
        names = {s.name for s in response.list_services_response.service}
        assert "alea.identity.v1.IdentityService" in names
        break


LOOPBACK = {"127.0.0.1", "::1"}


async def test_both_ports_listen_on_loopback_only_by_default(subject: Subject) -> None:
    assert listening_addresses(subject.port) <= LOOPBACK
    assert "127.0.0.1" in listening_addresses(subject.port)
    assert listening_addresses(subject.server.health_port) <= LOOPBACK
    assert "127.0.0.1" in listening_addresses(subject.server.health_port)


@pytest.mark.parametrize("address", ["0.0.0.0", "::"])
async def test_containers_listen_on_every_interface(tmp_path: Path, address: str) -> None:
    async with identity_in_process(tmp_path, ALEA_LISTEN_ADDRESS=address) as running:
        for port in (running.port, running.server.health_port):
            assert listening_addresses(port) & {"0.0.0.0", "::"}, port
        answer = await health_pb2_grpc.HealthStub(running.channel()).Check(
            health_pb2.HealthCheckRequest(), timeout=5
        )  # still reached on loopback
        assert answer.status == SERVING


async def test_stop_turns_health_not_serving_first(tmp_path: Path) -> None:
    async with identity_in_process(tmp_path) as running:
        port = running.server.health_port
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
        watch = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest())
        seen = [(await watch.read()).status]
        stopping = asyncio.create_task(running.server.stop())
        seen.append((await watch.read()).status)
        await stopping
    assert seen == [SERVING, NOT_SERVING]


_BACKGROUND_SERVICE = """
import asyncio, sys
from services.runtime.server import Service, run

async def task(stop):
    if sys.argv[1] == "fail":
        raise RuntimeError("the queue is gone")
    await asyncio.sleep(0.1)
    stop.set()  # a task may end the process cleanly, as SIGTERM would

async def build(settings, db, peers):
    return Service([], background=[task])

run("simulation", build)
"""


@pytest.mark.parametrize(("outcome", "status"), [("fail", 1), ("stop", 0)])
def test_background_tasks_run_until_stop_and_a_failure_exits_1(
    tmp_path: Path, outcome: str, status: int
) -> None:
    env = {**os.environ, "ALEA_HOME": str(tmp_path), "ALEA_PORT": "0"}
    done = subprocess.run(
        [sys.executable, "-c", _BACKGROUND_SERVICE, outcome],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == status, done.stderr
    failed = '"msg": "background task failed; stopping"' in done.stderr
    assert failed == (outcome == "fail")
    if failed:
        assert "the queue is gone" in done.stderr
