"""Notification end to end through Envoy, on SQLite and PostgreSQL: every event type from a
real action, the resumable feed over gRPC, NDJSON and SSE (``id:``, ``Last-Event-ID``),
expired cursors, tenant and role scoping, and a Standard Webhooks delivery to a receiver on
loopback verified with the ``standardwebhooks`` package."""

from __future__ import annotations

import http.client
import http.server
import json
import threading
import time
import uuid
from collections.abc import Iterator

import grpc
import pytest
import standardwebhooks
from alea.access.v1 import access_pb2
from alea.files.v1 import files_pb2, files_pb2_grpc
from alea.identity.v1 import identity_pb2
from alea.notification.v1 import notification_pb2 as pb
from alea.notification.v1 import notification_pb2_grpc
from alea.simulation.v1 import simulation_pb2, simulation_pb2_grpc
from google.api import httpbody_pb2
from google.protobuf import field_mask_pb2, timestamp_pb2

from services.cli.edge_client import RestClient, ssl_context
from tests.e2e.conftest import PASSWORD, Account, register
from tests.e2e.test_simulation import workbook_bytes
from tests.engine import models
from tests.support.mesh import Mesh

pytestmark = pytest.mark.integration
T = pb.EventType


@pytest.fixture(scope="module")
def notify(edge: grpc.Channel) -> notification_pb2_grpc.NotificationServiceStub:
    return notification_pb2_grpc.NotificationServiceStub(edge)


@pytest.fixture(scope="module")
def owner(identity) -> Account:
    return register(identity, "feed-owner")


def _now() -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.GetCurrentTime()
    return stamp


def read_feed(
    notify, account: Account, request: pb.SubscribeRequest, until, timeout: float = 60
) -> list[pb.Event]:
    """Events of a Subscribe stream until ``until(events)`` holds (or the deadline)."""
    events: list[pb.Event] = []
    stream = notify.Subscribe(request, metadata=account.metadata, timeout=timeout)
    try:
        for event in stream:
            events.append(event)
            if until(events):
                break
    except grpc.RpcError as exc:
        if exc.code() != grpc.StatusCode.DEADLINE_EXCEEDED:
            raise
    finally:
        stream.cancel()
    return events


def run_simulation(edge: grpc.Channel, account: Account, trials: int = 20_000) -> str:
    sims = simulation_pb2_grpc.SimulationServiceStub(edge)
    model = sims.CreateModel(
        simulation_pb2.CreateModelRequest(
            display_name="feed",
            workbook=workbook_bytes(models.small()),
            request_id=str(uuid.uuid4()),
        ),
        metadata=account.metadata,
        timeout=60,
    )
    created = sims.CreateSimulation(
        simulation_pb2.CreateSimulationRequest(
            model_id=model.id,
            trials=trials,
            seed=11,
            bypass_cache=True,
            request_id=str(uuid.uuid4()),
        ),
        metadata=account.metadata,
        timeout=30,
    )
    watch = simulation_pb2.WatchSimulationRequest(simulation_id=created.id)
    list(sims.WatchSimulation(watch, metadata=account.metadata, timeout=120))
    return created.id


@pytest.fixture(scope="module")
def actions(edge: grpc.Channel, identity, owner: Account) -> dict[str, str]:
    """One real action per event type (but quota warnings and failures, see the
    integration tests), done once; returns the ids involved and the time before."""
    started = time.time()
    member = identity.CreateUser(
        identity_pb2.CreateUserRequest(
            email=f"member-{uuid.uuid4().hex[:8]}@example.com",
            password=PASSWORD,
            display_name="Member",
            role=access_pb2.ROLE_VIEWER,
            request_id=str(uuid.uuid4()),
        ),
        metadata=owner.metadata,
        timeout=30,
    )
    identity.UpdateUser(
        identity_pb2.UpdateUserRequest(
            user=identity_pb2.User(id=member.id, role=access_pb2.ROLE_ANALYST),
            update_mask=field_mask_pb2.FieldMask(paths=["role"]),
        ),
        metadata=owner.metadata,
        timeout=30,
    )
    key = identity.CreateApiKey(
        identity_pb2.CreateApiKeyRequest(
            display_name="ci", role=access_pb2.ROLE_VIEWER, request_id=str(uuid.uuid4())
        ),
        metadata=owner.metadata,
        timeout=30,
    )
    identity.RevokeApiKey(
        identity_pb2.RevokeApiKeyRequest(api_key_id=key.api_key.id),
        metadata=owner.metadata,
        timeout=30,
    )
    files = files_pb2_grpc.FilesServiceStub(edge)
    stored = files.UploadBody(
        files_pb2.UploadBodyRequest(
            file_name="notes.csv",
            body=httpbody_pb2.HttpBody(content_type="text/csv", data=b"a,b\n"),
        ),
        metadata=owner.metadata,
        timeout=30,
    )
    files.ShareFile(
        files_pb2.ShareFileRequest(file_id=stored.id, user_id=member.id),
        metadata=owner.metadata,
        timeout=30,
    )
    files.DeleteFile(
        files_pb2.DeleteFileRequest(file_id=stored.id), metadata=owner.metadata, timeout=30
    )
    simulation = run_simulation(edge, owner)
    sims = simulation_pb2_grpc.SimulationServiceStub(edge)
    heavy = sims.CreateModel(  # seconds per million trials: still running when cancelled
        simulation_pb2.CreateModelRequest(
            display_name="heavy", workbook=workbook_bytes(models.portfolio())
        ),
        metadata=owner.metadata,
        timeout=60,
    )
    doomed = sims.CreateSimulation(
        simulation_pb2.CreateSimulationRequest(
            model_id=heavy.id, trials=1_000_000, seed=1, request_id=str(uuid.uuid4())
        ),
        metadata=owner.metadata,
        timeout=30,
    )
    sims.CancelSimulation(
        simulation_pb2.CancelSimulationRequest(simulation_id=doomed.id),
        metadata=owner.metadata,
        timeout=30,
    )
    return {
        "since": str(started),
        "member": member.id,
        "api_key": key.api_key.id,
        "file": stored.id,
        "simulation": simulation,
        "cancelled": doomed.id,
    }


EXPECTED = {
    T.EVENT_TYPE_USER_INVITED: "users/{member}",
    T.EVENT_TYPE_USER_ROLE_CHANGED: "users/{member}",
    T.EVENT_TYPE_API_KEY_CREATED: "apiKeys/{api_key}",
    T.EVENT_TYPE_API_KEY_REVOKED: "apiKeys/{api_key}",
    T.EVENT_TYPE_FILE_UPLOADED: "files/{file}",
    T.EVENT_TYPE_FILE_SHARED: "files/{file}",
    T.EVENT_TYPE_FILE_DELETED: "files/{file}",
    T.EVENT_TYPE_SIMULATION_CREATED: "simulations/{simulation}",
    T.EVENT_TYPE_SIMULATION_STARTED: "simulations/{simulation}",
    T.EVENT_TYPE_SIMULATION_SUCCEEDED: "simulations/{simulation}",
    T.EVENT_TYPE_SIMULATION_CANCELLED: "simulations/{cancelled}",
}


def _since(actions: dict[str, str]) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromNanoseconds(int((float(actions["since"]) - 1) * 1e9))
    return stamp


def _has_all(events: list[pb.Event], actions: dict[str, str]) -> bool:
    seen = {(e.type, e.resource) for e in events}
    return all((t, r.format(**actions)) in seen for t, r in EXPECTED.items())


def test_every_event_type_is_published_by_a_real_action(notify, owner, actions) -> None:
    request = pb.SubscribeRequest(start_time=_since(actions))
    events = read_feed(notify, owner, request, lambda got: _has_all(got, actions))
    assert _has_all(events, actions), sorted({pb.EventType.Name(e.type) for e in events})
    assert len({e.id for e in events}) == len(events), "an event was delivered twice"
    by_type = {e.type: e for e in events if e.resource.endswith(actions["simulation"])}
    succeeded = by_type[T.EVENT_TYPE_SIMULATION_SUCCEEDED]
    assert succeeded.type_name == "simulation.succeeded"
    assert succeeded.user_id == owner.user_id
    data = succeeded.data
    assert data["trials"] == 20_000 and data["state"] == "STATE_SUCCEEDED"
    assert data["results"][0]["p50"] is not None and data["results"][0]["mean"] is not None
    order = [e.type for e in events if e.resource == f"simulations/{actions['simulation']}"]
    assert order == [
        T.EVENT_TYPE_SIMULATION_CREATED,
        T.EVENT_TYPE_SIMULATION_STARTED,
        T.EVENT_TYPE_SIMULATION_SUCCEEDED,
    ]
    uploaded = next(e for e in events if e.type == T.EVENT_TYPE_FILE_UPLOADED)
    assert uploaded.data["size_bytes"] == 4


def test_a_consumer_that_reconnects_after_its_last_event_misses_nothing(
    notify, edge, owner, actions
) -> None:
    everything = read_feed(
        notify,
        owner,
        pb.SubscribeRequest(start_time=_since(actions)),
        lambda g: _has_all(g, actions),
    )
    first = everything[:3]
    rest = read_feed(
        notify,
        owner,
        pb.SubscribeRequest(after=first[-1].id),
        lambda got: len(got) >= len(everything) - 3,
    )
    assert [e.id for e in first + rest] == [e.id for e in everything]
    # Then live: what happens after the resumed replay arrives too, once.
    new_sim: list[str] = []
    reader = threading.Thread(
        target=lambda: new_sim.extend(
            e.resource
            for e in read_feed(
                notify,
                owner,
                pb.SubscribeRequest(
                    after=everything[-1].id,
                    types=[T.EVENT_TYPE_SIMULATION_SUCCEEDED],
                    resource="simulations/",
                ),
                lambda got: any(e.resource != f"simulations/{actions['simulation']}" for e in got),
            )
        )
    )
    reader.start()
    simulation = run_simulation(edge, owner, trials=5_000)
    reader.join(60)
    assert new_sim == [f"simulations/{simulation}"]


def _stream(mesh: Mesh, path: str, headers: dict[str, str]) -> http.client.HTTPResponse:
    context = ssl_context(mesh.pki / "ca.crt", mesh.pki / "client.crt", mesh.pki / "client.key")
    connection = http.client.HTTPSConnection("localhost", mesh.layout.edge_port, context=context)
    connection.request("GET", path, headers=headers)
    return connection.getresponse()


def _sse_events(response: http.client.HTTPResponse, count: int) -> list[dict[str, str]]:
    events: list[dict[str, str]] = []
    current: dict[str, str] = {}
    while len(events) < count:
        line = response.readline().decode().rstrip("\n")
        if not line:
            if "id" in current:
                events.append(current)
            current = {}
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(": ")
        current[field] = value
    return events


def test_sse_through_the_edge_carries_ids_and_resumes_from_last_event_id(
    mesh: Mesh, owner, actions
) -> None:
    since = _since(actions).ToJsonString()
    headers = {**owner.headers, "accept": "text/event-stream"}
    response = _stream(mesh, f"/v1/events:sse?startTime={since}", headers)
    assert response.status == 200
    assert response.getheader("content-type", "").startswith("text/event-stream")
    first = _sse_events(response, 4)
    response.close()
    for event in first:
        assert json.loads(event["data"])["id"] == event["id"]
        assert event["event"] == json.loads(event["data"])["typeName"]
    resumed = _stream(mesh, "/v1/events:sse", {**headers, "last-event-id": first[1]["id"]})
    assert [e["id"] for e in _sse_events(resumed, 2)] == [first[2]["id"], first[3]["id"]]
    resumed.close()


def test_ndjson_through_the_edge(mesh: Mesh, owner, actions) -> None:
    since = _since(actions).ToJsonString()
    response = _stream(mesh, f"/v1/events:subscribe?startTime={since}", owner.headers)
    assert response.status == 200
    assert response.getheader("content-type") == "application/x-ndjson"
    lines = [json.loads(response.readline()) for _ in range(3)]
    response.close()
    assert all(uuid.UUID(line["id"]) and line["tenantId"] == owner.tenant_id for line in lines)


def test_an_expired_or_foreign_cursor_is_out_of_range_a_time_past_9999_invalid(
    notify, identity, owner, actions
) -> None:
    old = timestamp_pb2.Timestamp()
    old.FromSeconds(int(time.time()) - 30 * 86400)
    stranger = register(identity, "feed-stranger")
    mine = read_feed(notify, owner, pb.SubscribeRequest(start_time=_since(actions)), lambda g: g)
    for account, request in (
        (owner, pb.SubscribeRequest(start_time=old)),
        (owner, pb.SubscribeRequest(after=str(uuid.uuid4()))),
        (stranger, pb.SubscribeRequest(after=mine[0].id)),
    ):
        with pytest.raises(grpc.RpcError) as caught:
            list(notify.Subscribe(request, metadata=account.metadata, timeout=10))
        assert caught.value.code() == grpc.StatusCode.OUT_OF_RANGE, request
        assert "retention" in caught.value.details()
    beyond = pb.SubscribeRequest(start_time=timestamp_pb2.Timestamp(seconds=10**15))
    with pytest.raises(grpc.RpcError) as caught:
        list(notify.Subscribe(beyond, metadata=owner.metadata, timeout=10))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "start_time" in caught.value.details()


def test_each_viewer_sees_only_what_role_and_tenant_allow(notify, identity, owner, actions) -> None:
    login = identity.Login(
        identity_pb2.LoginRequest(
            email=identity.GetUser(
                identity_pb2.GetUserRequest(user_id=actions["member"]),
                metadata=owner.metadata,
                timeout=30,
            ).email,
            password=PASSWORD,
        ),
        timeout=30,
    )
    member = Account(owner.tenant_id, actions["member"], "", login.tokens.access_token)
    request = pb.SubscribeRequest(start_time=_since(actions))
    seen = read_feed(notify, member, request, lambda g: False, timeout=5)
    kinds = {e.type for e in seen}
    assert T.EVENT_TYPE_SIMULATION_SUCCEEDED in kinds  # the tenant's simulations: everyone
    assert T.EVENT_TYPE_FILE_SHARED in kinds  # shared with them
    assert T.EVENT_TYPE_USER_ROLE_CHANGED in kinds  # about them
    assert T.EVENT_TYPE_API_KEY_CREATED not in kinds  # the admin's key
    assert T.EVENT_TYPE_FILE_UPLOADED not in kinds  # not theirs (not yet shared)
    stranger = register(identity, "feed-other-tenant")
    theirs = read_feed(notify, stranger, request, lambda g: False, timeout=5)
    assert all(e.tenant_id == stranger.tenant_id for e in theirs)
    with pytest.raises(grpc.RpcError) as caught:
        notify.CreateWebhook(
            pb.CreateWebhookRequest(url="https://example.com/hook"),
            metadata=member.metadata,
            timeout=10,
        )
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED


class Receiver(http.server.ThreadingHTTPServer):
    """A webhook receiver on 127.0.0.1 that keeps every request."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.arrived = threading.Condition()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                with outer.arrived:
                    outer.requests.append(({k.lower(): v for k, v in self.headers.items()}, body))
                    outer.arrived.notify_all()
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)

    def wait_for(self, count: int, timeout: float = 60) -> None:
        with self.arrived:
            assert self.arrived.wait_for(lambda: len(self.requests) >= count, timeout)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_a_webhook_delivery_is_signed_per_standard_webhooks(
    notify, edge, owner, receiver: Receiver
) -> None:
    port = receiver.server_address[1]
    created = notify.CreateWebhook(
        pb.CreateWebhookRequest(
            url=f"http://127.0.0.1:{port}/hooks",
            event_types=[T.EVENT_TYPE_SIMULATION_SUCCEEDED],
            display_name="receiver",
            request_id=str(uuid.uuid4()),
        ),
        metadata=owner.metadata,
        timeout=30,
    )
    assert created.secret.startswith("whsec_")
    simulation = run_simulation(edge, owner, trials=5_000)
    receiver.wait_for(1)
    headers, body = receiver.requests[0]
    verified = standardwebhooks.Webhook(created.secret).verify(body, headers)
    assert verified["type"] == "simulation.succeeded"
    assert verified["data"]["simulation_id"] == simulation
    query = pb.ListDeliveriesRequest(filter=f'webhook_id = "{created.webhook.id}"')
    deadline = time.monotonic() + 30
    while True:  # the receiver has it; the outcome is saved a moment later
        deliveries = notify.ListDeliveries(query, metadata=owner.metadata, timeout=30).deliveries
        if deliveries[0].state != pb.Delivery.STATE_PENDING or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert [d.state for d in deliveries] == [pb.Delivery.STATE_SUCCEEDED]
    [attempt] = deliveries[0].attempt_log
    assert attempt.status_code == 204 and attempt.latency.ToNanoseconds() > 0
    again = notify.Redeliver(
        pb.RedeliverRequest(delivery_id=deliveries[0].id), metadata=owner.metadata, timeout=30
    )
    assert again.attempts == 2 and again.attempt_log[-1].manual
    receiver.wait_for(2)
    assert receiver.requests[1][0]["webhook-id"] == headers["webhook-id"]  # receivers dedup
    notify.DeleteWebhook(
        pb.DeleteWebhookRequest(webhook_id=created.webhook.id), metadata=owner.metadata, timeout=30
    )


def test_a_webhook_update_is_held_to_the_rules_of_creation_naming_the_request_field(
    rest: RestClient, owner: Account, receiver: Receiver
) -> None:
    """UpdateWebhook stored EVENT_TYPE_UNSPECIFIED, unknown numbers and names longer than
    CreateWebhook takes, and named a refused URL `url` where the request has `webhook.url`."""
    url = f"http://127.0.0.1:{receiver.server_address[1]}/hooks"
    created = rest.request("POST", "/v1/webhooks", {"url": url}, owner.headers)
    assert created.status == 200, created.text
    path = f"/v1/webhooks/{created.body['webhook']['id']}"
    for mask, body, field in [
        ("eventTypes", {"eventTypes": [0]}, "webhook.event_types[0]"),
        ("eventTypes", {"eventTypes": [999]}, "webhook.event_types[0]"),
        ("displayName", {"displayName": "x" * 201}, "webhook.display_name"),
        ("url", {"url": "ftp://127.0.0.1/hooks"}, "webhook.url"),
        ("url", {"url": ""}, "webhook.url"),
    ]:
        reply = rest.request("PATCH", f"{path}?updateMask={mask}", body, owner.headers)
        assert reply.status == 400, (body, reply.text)
        violations = reply.body["details"][0]["fieldViolations"]
        assert [v["field"] for v in violations] == [field], (body, reply.text)
    unchanged = rest.request("GET", path, headers=owner.headers)
    assert (unchanged.body["url"], unchanged.body["eventTypes"]) == (url, [])
    rest.request("DELETE", path, headers=owner.headers)


def test_the_edge_holds_a_replicas_worth_of_subscriptions_and_still_serves_calls(
    mesh: Mesh, identity, notify: notification_pb2_grpc.NotificationServiceStub
) -> None:
    """Live subscriptions are requests that stay open: beyond the edge's usual 1,024 per
    service it holds them, and other calls to notification still pass meanwhile."""
    account = register(identity, "many-feeds")
    count = 1_100  # more than the 1,024 requests the edge once admitted per service in all
    channels = [mesh.channel() for _ in range(count // 90 + 1)]  # 100 streams a connection
    calls = []
    try:
        for n in range(count):
            stub = notification_pb2_grpc.NotificationServiceStub(channels[n // 90])
            call = stub.Subscribe(pb.SubscribeRequest(), metadata=account.metadata, timeout=120)
            call.initial_metadata()  # it stands (or was refused, and is no longer active)
            calls.append(call)
        assert all(call.is_active() for call in calls), next(
            (call.code(), call.details()) for call in calls if not call.is_active()
        )
        preferences = notify.GetPreferences(
            pb.GetPreferencesRequest(), metadata=account.metadata, timeout=30
        )
        assert preferences.user_id == account.user_id
    finally:
        for call in calls:
            call.cancel()
        for channel in channels:
            channel.close()
