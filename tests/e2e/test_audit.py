"""The audit log end to end through the edge, on SQLite and PostgreSQL: every mutating RPC
of identity, files and simulation leaves exactly one entry with the right actor and
outcome; refused calls are recorded; the chain exported over REST verifies with nothing
but SHA-256; another tenant's log is out of reach."""

from __future__ import annotations

import base64
import hashlib
import json
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import pytest
from alea.access.v1 import access_pb2
from alea.admin.v1 import admin_pb2, admin_pb2_grpc
from alea.files.v1 import files_pb2, files_pb2_grpc
from alea.identity.v1 import identity_pb2, identity_pb2_grpc
from alea.notification.v1 import notification_pb2, notification_pb2_grpc
from alea.simulation.v1 import simulation_pb2, simulation_pb2_grpc
from google.api import httpbody_pb2
from google.protobuf import field_mask_pb2

from services.cli.edge_client import RestClient
from services.runtime import access
from tests.contracts.protos import methods
from tests.e2e.conftest import PASSWORD, Account, Tenants
from tests.e2e.test_simulation import workbook_bytes
from tests.engine import models
from tests.support.mesh import Mesh

pytestmark = pytest.mark.integration
AUDITED = ("identity", "files", "simulation")


@pytest.fixture(scope="module")
def admin(edge: grpc.Channel) -> admin_pb2_grpc.AdminServiceStub:
    return admin_pb2_grpc.AdminServiceStub(edge)


def wait_for(
    admin: admin_pb2_grpc.AdminServiceStub,
    account: Account,
    request_ids: set[str],
    tenant_id: str = "",
    timeout: float = 30,
) -> dict[str, list[admin_pb2.AuditEvent]]:
    """The entries of ``request_ids`` in the log, once each has arrived (entries come off
    the request path, through the outbox); a short wait more shows no duplicate follows."""
    deadline = time.monotonic() + timeout
    while True:
        found: dict[str, list[admin_pb2.AuditEvent]] = {}
        token = ""
        while True:
            request = admin_pb2.ListAuditEventsRequest(
                page_size=1000, page_token=token, tenant_id=tenant_id
            )
            page = admin.ListAuditEvents(request, metadata=account.metadata, timeout=30)
            for entry in page.audit_events:
                if entry.request_id in request_ids:
                    found.setdefault(entry.request_id, []).append(entry)
            token = page.next_page_token
            if not token:
                break
        if set(found) == request_ids or time.monotonic() > deadline:
            return found
        time.sleep(0.3)


class Script:
    """Calls made with a fresh request id each, and what their entry must say."""

    def __init__(self) -> None:
        self.expected: dict[str, tuple[str, str, str]] = {}  # request id -> (rpc, actor, outcome)

    def call(self, rpc: Callable[..., Any], request: Any, who: str, *, metadata=(), outcome="OK"):
        request_id = str(uuid.uuid4())
        method = rpc._method.decode() if isinstance(rpc._method, bytes) else rpc._method
        self.expected[request_id] = (method.lstrip("/"), who, outcome)
        headers = (*metadata, ("x-request-id", request_id))
        if outcome == "OK":
            return rpc(request, metadata=headers, timeout=60)
        with pytest.raises(grpc.RpcError) as refused:
            rpc(request, metadata=headers, timeout=60)
        assert refused.value.code().name == outcome
        return None


def upload_messages(data: bytes) -> Iterator[files_pb2.UploadRequest]:
    yield files_pb2.UploadRequest(
        metadata=files_pb2.FileMetadata(file_name="b.bin", size_bytes=len(data))
    )
    yield files_pb2.UploadRequest(chunk=data)


def test_every_mutating_rpc_leaves_exactly_one_entry(edge: grpc.Channel, admin) -> None:
    ids = identity_pb2_grpc.IdentityServiceStub(edge)
    files = files_pb2_grpc.FilesServiceStub(edge)
    sims = simulation_pb2_grpc.SimulationServiceStub(edge)
    script = Script()
    email = f"audited-{uuid.uuid4().hex[:8]}@example.com"
    registered = script.call(
        ids.Register,
        identity_pb2.RegisterRequest(
            tenant_display_name="Audited", email=email, password=PASSWORD, display_name="Ann"
        ),
        "new user",
    )
    owner = registered.user.id
    script.expected = {k: (m, owner, o) for k, (m, _, o) in script.expected.items()}
    me = (("authorization", f"Bearer {registered.tokens.access_token}"),)
    login = script.call(ids.Login, identity_pb2.LoginRequest(email=email, password=PASSWORD), owner)
    refreshed = script.call(
        ids.Refresh, identity_pb2.RefreshRequest(refresh_token=login.tokens.refresh_token), owner
    )
    script.call(
        ids.Logout, identity_pb2.LogoutRequest(refresh_token=refreshed.tokens.refresh_token), owner
    )
    viewer = script.call(
        ids.CreateUser,
        identity_pb2.CreateUserRequest(
            email=f"v-{uuid.uuid4().hex[:8]}@example.com",
            password=PASSWORD,
            display_name="Vic",
            role=access_pb2.ROLE_VIEWER,
        ),
        owner,
        metadata=me,
    )
    script.call(
        ids.UpdateUser,
        identity_pb2.UpdateUserRequest(
            user=identity_pb2.User(id=viewer.id, display_name="Victor"),
            update_mask=field_mask_pb2.FieldMask(paths=["display_name"]),
        ),
        owner,
        metadata=me,
    )
    key = script.call(
        ids.CreateApiKey,
        identity_pb2.CreateApiKeyRequest(display_name="ci", role=access_pb2.ROLE_ANALYST),
        owner,
        metadata=me,
    )
    script.call(
        ids.RevokeApiKey,
        identity_pb2.RevokeApiKeyRequest(api_key_id=key.api_key.id),
        owner,
        metadata=me,
    )
    body = files_pb2.UploadBodyRequest(
        file_name="a.txt", body=httpbody_pb2.HttpBody(content_type="text/plain", data=b"a")
    )
    first = script.call(files.UploadBody, body, owner, metadata=me)
    second = script.call(files.Upload, upload_messages(b"b" * 100), owner, metadata=me)
    share = files_pb2.ShareFileRequest(file_id=second.id, user_id=viewer.id)
    script.call(files.ShareFile, share, owner, metadata=me)
    unshare = files_pb2.UnshareFileRequest(file_id=second.id, user_id=viewer.id)
    script.call(files.UnshareFile, unshare, owner, metadata=me)
    script.call(files.DeleteFile, files_pb2.DeleteFileRequest(file_id=first.id), owner, metadata=me)
    missing = files_pb2.DeleteFileRequest(file_id=str(uuid.uuid4()))
    script.call(files.DeleteFile, missing, owner, metadata=me, outcome="NOT_FOUND")
    model = script.call(
        sims.CreateModel,
        simulation_pb2.CreateModelRequest(
            display_name="m", workbook=workbook_bytes(models.small())
        ),
        owner,
        metadata=me,
    )
    simulation = script.call(
        sims.CreateSimulation,
        simulation_pb2.CreateSimulationRequest(model_id=model.id, trials=1000, seed=1),
        owner,
        metadata=me,
    )
    watch = simulation_pb2.WatchSimulationRequest(simulation_id=simulation.id)
    list(sims.WatchSimulation(watch, metadata=me, timeout=120))
    cancel = simulation_pb2.CancelSimulationRequest(simulation_id=simulation.id)
    script.call(sims.CancelSimulation, cancel, owner, metadata=me)
    delete = simulation_pb2.DeleteModelRequest(model_id=model.id)
    script.call(sims.DeleteModel, delete, owner, metadata=me)

    login_viewer = ids.Login(
        identity_pb2.LoginRequest(email=viewer.email, password=PASSWORD), timeout=30
    )
    as_viewer = (("authorization", f"Bearer {login_viewer.tokens.access_token}"),)
    refused = simulation_pb2.CreateModelRequest(display_name="no", workbook=b"x")
    script.call(
        sims.CreateModel, refused, viewer.id, metadata=as_viewer, outcome="PERMISSION_DENIED"
    )

    covered = {
        method.split("/")[0].split(".")[1] + "." + method.split("/")[1]
        for method, _, _ in script.expected.values()
    }
    mutating = {
        f"{m.full_name.split('.')[1]}.{m.name}"
        for m in methods()
        if m.full_name.split(".")[1] in AUDITED
        and (rule := access.method_rule(f"/{m.containing_service.full_name}/{m.name}"))
        and rule.audit_calls
        and not rule.internal
    }
    assert mutating <= covered, f"not exercised here: {sorted(mutating - covered)}"

    account = Account(registered.tenant.id, owner, email, registered.tokens.access_token)
    found = wait_for(admin, account, set(script.expected))
    for request_id, (method, actor, outcome) in script.expected.items():
        entries = found.get(request_id, [])
        assert len(entries) == 1, f"{method}: {len(entries)} entries"
        (entry,) = entries
        assert (entry.action, entry.actor, entry.outcome) == (method, actor, outcome), method
        assert entry.tenant_id == registered.tenant.id and entry.client_address
    logged = str(found)
    secrets = (PASSWORD, login.tokens.refresh_token, refreshed.tokens.access_token, key.secret)
    assert not [s for s in (*secrets, "b" * 100) if s in logged]  # nor the file's contents
    reserved = wait_for_action(admin, account, "alea.identity.v1.IdentityService/ReserveTrials")
    assert [(e.actor, e.resource) for e in reserved] == [
        ("service:simulation", f"tenants/{registered.tenant.id}")
    ]
    verdict = admin.VerifyAuditChain(
        admin_pb2.VerifyAuditChainRequest(), metadata=account.metadata, timeout=60
    )
    assert verdict.valid and verdict.events_checked >= len(script.expected)


def wait_for_action(admin, account: Account, action: str) -> list[admin_pb2.AuditEvent]:
    request = admin_pb2.ListAuditEventsRequest(filter=f'action = "{action}"')
    deadline = time.monotonic() + 30
    while True:
        found = list(admin.ListAuditEvents(request, metadata=account.metadata).audit_events)
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.3)


def test_calls_refused_for_their_credentials_go_to_the_platform_log(
    edge: grpc.Channel, admin, operator: Account, tenants: Tenants
) -> None:
    files = files_pb2_grpc.FilesServiceStub(edge)
    request_id = str(uuid.uuid4())
    with pytest.raises(grpc.RpcError) as refused:
        files.GetFile(
            files_pb2.GetFileRequest(file_id=str(uuid.uuid4())),
            metadata=(("authorization", "Bearer not.a.token"), ("x-request-id", request_id)),
            timeout=30,
        )
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    found = wait_for(admin, operator, {request_id}, tenant_id="-")
    (entry,) = found[request_id]
    assert (entry.tenant_id, entry.actor, entry.outcome) == ("", "anonymous", "UNAUTHENTICATED")
    assert (
        entry.action == "alea.files.v1.FilesService/GetFile" and "token" in entry.details["reason"]
    )
    assert "not.a.token" not in str(entry)
    # A tenant's admin does not see the platform's log.
    with pytest.raises(grpc.RpcError) as denied:
        admin.ListAuditEvents(
            admin_pb2.ListAuditEventsRequest(tenant_id="-"), metadata=tenants.a.metadata
        )
    assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED


def test_another_tenants_log_is_out_of_reach(admin, tenants: Tenants, mesh: Mesh) -> None:
    mine = admin.ListAuditEvents(admin_pb2.ListAuditEventsRequest(), metadata=tenants.b.metadata)
    assert {e.tenant_id for e in mine.audit_events} <= {tenants.b.tenant_id}
    for call, request in (
        (admin.ListAuditEvents, admin_pb2.ListAuditEventsRequest(tenant_id=tenants.a.tenant_id)),
        (admin.VerifyAuditChain, admin_pb2.VerifyAuditChainRequest(tenant_id=tenants.a.tenant_id)),
        (
            admin.GetAuditCheckpoint,
            admin_pb2.GetAuditCheckpointRequest(tenant_id=tenants.a.tenant_id),
        ),
    ):
        with pytest.raises(grpc.RpcError) as refused:
            call(request, metadata=tenants.b.metadata, timeout=30)
        assert refused.value.code() == grpc.StatusCode.NOT_FOUND
    export = admin_pb2.ExportAuditEventsRequest(tenant_id=tenants.a.tenant_id)
    with pytest.raises(grpc.RpcError) as refused:
        list(admin.ExportAuditEvents(export, metadata=tenants.b.metadata, timeout=30))
    assert refused.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as viewer:
        admin.ListAuditEvents(admin_pb2.ListAuditEventsRequest(), metadata=tenants.viewer.metadata)
    assert viewer.value.code() == grpc.StatusCode.PERMISSION_DENIED


def test_an_export_over_rest_verifies_with_sha256_alone(
    rest: RestClient, admin, tenants: Tenants
) -> None:
    """What the README promises a third party: recompute every hash from the NDJSON."""
    wait_for_action(admin, tenants.a, "alea.identity.v1.IdentityService/CreateUser")
    reply = rest.request(
        "GET",
        "/v1/auditEvents:export?format=EXPORT_FORMAT_NDJSON",
        headers=tenants.a.headers,
    )
    assert reply.status == 200 and "ndjson" in reply.headers["content-type"]
    entries = [json.loads(line) for line in reply.text.splitlines()]
    assert entries and entries[0]["sequence"] == 1
    previous = "0" * 64
    for entry in entries:
        hashes = {k: entry.pop(k) for k in ("previous_hash", "hash")}
        assert hashes["previous_hash"] == previous
        canonical = json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        digest = hashlib.sha256(f"{previous}\n{canonical}".encode()).hexdigest()
        assert digest == hashes["hash"], entry["sequence"]
        previous = digest
    csv_reply = rest.request("GET", "/v1/auditEvents:export", headers=tenants.a.headers)
    assert csv_reply.status == 200 and csv_reply.text.startswith("tenant_id,sequence,")
    verified = rest.request("POST", "/v1/auditEvents:verify", {}, headers=tenants.a.headers)
    assert verified.status == 200 and verified.body["valid"] is True


def test_checkpoints_reach_the_event_feed_and_verify_from_there(
    edge: grpc.Channel, admin, tenants: Tenants
) -> None:
    """The copy in the tenant's feed, outside admin's database, is a checkpoint
    VerifyAuditChain accepts; viewers do not see it."""
    signed = admin.CreateAuditCheckpoint(
        admin_pb2.CreateAuditCheckpointRequest(), metadata=tenants.a.metadata, timeout=30
    )
    feed = notification_pb2_grpc.NotificationServiceStub(edge)
    request = notification_pb2.SubscribeRequest(
        types=[notification_pb2.EVENT_TYPE_AUDIT_CHECKPOINT], replay_only=True
    )
    request.start_time.FromSeconds(int(time.time()) - 3600)
    deadline = time.monotonic() + 30
    while True:
        events = list(feed.Subscribe(request, metadata=tenants.a.metadata, timeout=30))
        copies = [e for e in events if e.data["sequence"] == signed.sequence]
        if copies or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    (copy,) = copies
    kept = admin_pb2.AuditCheckpoint(
        tenant_id=copy.tenant_id,
        sequence=int(copy.data["sequence"]),
        head_hash=copy.data["head_hash"],
        key_id=copy.data["key_id"],
        public_key=base64.b64decode(copy.data["public_key"]),
        signature=base64.b64decode(copy.data["signature"]),
    )
    kept.create_time.FromJsonString(copy.data["create_time"])
    assert kept == signed
    verdict = admin.VerifyAuditChain(
        admin_pb2.VerifyAuditChainRequest(checkpoint=kept), metadata=tenants.a.metadata
    )
    assert verdict.valid and verdict.checkpoint.sequence == signed.sequence
    as_viewer = list(feed.Subscribe(request, metadata=tenants.viewer.metadata, timeout=30))
    assert as_viewer == []
