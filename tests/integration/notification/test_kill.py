"""Nothing lost when processes die: real identity, files and notification processes on SQLite
and PostgreSQL; files' uploads are the events.

- notification SIGKILLed while uploads go on, then restarted: a subscriber that reconnects
  after the last event it saw, deduplicating by id, gets every upload's event once;
- files SIGKILLed after committing uploads whose events it could not relay yet (notification
  down): once both are back, every event arrives.
"""

from __future__ import annotations

import signal
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest
from alea.files.v1 import files_pb2, files_pb2_grpc
from alea.identity.v1 import identity_pb2, identity_pb2_grpc
from alea.notification.v1 import notification_pb2 as pb
from alea.notification.v1 import notification_pb2_grpc
from google.api import httpbody_pb2
from google.protobuf import timestamp_pb2

from services.runtime.clients import channel_credentials
from tests.support.postgres import postgres  # noqa: F401  (session fixture)
from tests.support.services import ServiceProcess, free_port, start_service

pytestmark = pytest.mark.integration
UPLOADED = pb.EVENT_TYPE_FILE_UPLOADED
FAST = {"ALEA_OUTBOX_RETRY_MAX_SECONDS": "0.3", "ALEA_OUTBOX_POLL_SECONDS": "0.1"}


@dataclass
class Cluster:
    """identity, files and notification of one home; notification on a fixed port so it
    can be killed and started again where files expects it."""

    home: Path
    env: dict[str, str]
    urls: dict[str, str]  # database per service; none: SQLite
    notification_port: int = field(default_factory=free_port)
    processes: dict[str, ServiceProcess] = field(default_factory=dict)

    def start(self, name: str) -> None:
        env = dict(self.env)
        if name == "notification":
            env["ALEA_PORT"] = str(self.notification_port)  # where files expects it
        if name in self.urls:
            env["ALEA_DATABASE_URL"] = self.urls[name]
        self.processes[name] = start_service(name, self.home, env)

    def kill(self, name: str) -> None:
        process = self.processes.pop(name).process
        process.send_signal(signal.SIGKILL)
        process.wait(10)

    def channel(self, name: str) -> grpc.Channel:
        port = self.notification_port if name == "notification" else self.processes[name].port
        credentials = channel_credentials(self.home / "pki", "edge")  # in the edge's place
        return grpc.secure_channel(f"localhost:{port}", credentials)

    def stop(self) -> None:
        for process in self.processes.values():
            process.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def cluster(request: pytest.FixtureRequest) -> Iterator[Cluster]:
    home = Path(tempfile.mkdtemp(prefix="alea-kill-"))
    urls = {}
    if request.param == "postgresql":
        server = request.getfixturevalue("postgres")
        tag = uuid.uuid4().hex[:6]
        for name in ("identity", "files", "notification"):
            urls[name] = server.create_database(f"kill_{name}_{tag}")
    running = Cluster(home, dict(FAST), urls)
    running.start("identity")
    running.env["ALEA_IDENTITY_ADDRESS"] = running.processes["identity"].address
    running.env["ALEA_NOTIFICATION_ADDRESS"] = f"localhost:{running.notification_port}"
    running.start("notification")
    running.start("files")
    yield running
    running.stop()


class Consumer:
    """Follows the feed like a careful client: on any break, resubscribes after the last
    event it received, and keeps each event id once."""

    def __init__(self, cluster: Cluster, token: str, since: timestamp_pb2.Timestamp) -> None:
        self.cluster, self.metadata, self.since = (
            cluster,
            (("authorization", f"Bearer {token}"),),
            since,
        )
        self.ids: list[str] = []
        self.resources: dict[str, str] = {}
        self.received = 0
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._follow, daemon=True)
        self.thread.start()

    def _follow(self) -> None:
        while not self.stopped.is_set():
            request = (
                pb.SubscribeRequest(after=self.ids[-1])
                if self.ids
                else pb.SubscribeRequest(start_time=self.since)
            )
            try:
                with self.cluster.channel("notification") as channel:
                    stub = notification_pb2_grpc.NotificationServiceStub(channel)
                    for event in stub.Subscribe(request, metadata=self.metadata, timeout=5):
                        self.received += 1
                        if event.id not in self.resources:
                            self.ids.append(event.id)
                            self.resources[event.id] = event.resource
            except grpc.RpcError:
                time.sleep(0.2)  # down, restarting, or the deadline: reconnect

    def wait_for(self, resources: set[str], timeout: float = 90) -> set[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not resources <= set(self.resources.values()):
            time.sleep(0.1)
        self.stopped.set()
        self.thread.join(10)
        return set(self.resources.values())


def _tenant(cluster: Cluster) -> str:
    with cluster.channel("identity") as channel:
        reply = identity_pb2_grpc.IdentityServiceStub(channel).Register(
            identity_pb2.RegisterRequest(
                tenant_display_name="kill",
                email=f"kill-{uuid.uuid4().hex[:8]}@example.com",
                password="kill test password 0123",
                display_name="k",
                request_id=str(uuid.uuid4()),
            ),
            timeout=30,
        )
    return reply.tokens.access_token


def _upload(cluster: Cluster, token: str, n: int) -> str:
    with cluster.channel("files") as channel:
        stored = files_pb2_grpc.FilesServiceStub(channel).UploadBody(
            files_pb2.UploadBodyRequest(
                file_name=f"f{n}.csv",
                body=httpbody_pb2.HttpBody(content_type="text/csv", data=b"1"),
            ),
            metadata=(("authorization", f"Bearer {token}"),),
            timeout=30,
        )
    return f"files/{stored.id}"


def _now() -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromNanoseconds(time.time_ns() - 1_000_000_000)
    return stamp


def test_notification_killed_with_events_in_flight_loses_none(cluster: Cluster) -> None:
    token = _tenant(cluster)
    consumer = Consumer(cluster, token, _now())
    uploaded: list[str] = []

    def upload_all() -> None:
        for n in range(30):
            uploaded.append(_upload(cluster, token, n))

    def until_uploaded(count: int) -> None:
        deadline = time.monotonic() + 60
        while len(uploaded) < count and uploader.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)

    # Uploads go on while notification is killed and started again: files' relay is
    # publishing some of their events at that moment.
    uploader = threading.Thread(target=upload_all, daemon=True)
    uploader.start()
    until_uploaded(10)
    cluster.kill("notification")
    until_uploaded(20)
    cluster.start("notification")
    uploader.join(120)
    assert len(uploaded) == 30
    seen = consumer.wait_for(set(uploaded))
    assert set(uploaded) <= seen, f"{len(set(uploaded) - seen)} events lost"
    assert len(consumer.ids) == len(seen)  # each recorded once: one event id per upload


def test_a_producer_killed_between_commit_and_relay_loses_none(cluster: Cluster) -> None:
    token = _tenant(cluster)
    cluster.kill("notification")  # files commits uploads but cannot relay their events
    uploaded = {_upload(cluster, token, n) for n in range(15)}
    cluster.kill("files")
    cluster.start("notification")
    consumer = Consumer(cluster, token, _now())
    time.sleep(0.5)
    assert not set(consumer.resources.values()) & uploaded  # nothing relayed yet
    cluster.start("files")  # its relay finds the committed events in its outbox
    seen = consumer.wait_for(uploaded)
    assert uploaded <= seen, f"{len(uploaded - seen)} events lost"
    assert len(consumer.ids) == len(seen)  # each recorded once: one event id per upload
