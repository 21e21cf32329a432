"""The runtime's audit trail: what is recorded (mutations, refusals, not reads), who and
on what, never a secret, and how entries reach the outbox in batches without blocking."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import grpc
import pytest
from alea.admin.v1 import admin_pb2
from alea.files.v1 import files_pb2
from alea.identity.v1 import identity_pb2
from alea.simulation.v1 import simulation_pb2
from google.protobuf import field_mask_pb2, json_format
from google.protobuf.message import Message
from sqlalchemy import select

from services.runtime import audit
from services.runtime.audit import AuditTrail, resource_of
from services.runtime.context import Principal
from services.runtime.db import Database
from services.runtime.outbox import Outbox, OutboxItem, outbox_table

USER = Principal(user_id="u-1", tenant_id="t-1", role="admin", api_key_id="k-1")
FILES = "/alea.files.v1.FilesService/"
IDENTITY = "/alea.identity.v1.IdentityService/"
SIMULATION = "/alea.simulation.v1.SimulationService/"


@dataclass
class Call:
    """A finished RPC as the interceptor hands it over."""

    method: str
    code: grpc.StatusCode = grpc.StatusCode.OK
    principal: Principal | None = USER
    request: Message | None = None
    response: Message | None = None
    error: str = ""
    request_id: str = "req-1"
    peer: str | None = "edge"
    metadata: dict[str, str] = field(default_factory=dict)

    def client_address(self) -> str:
        return "203.0.113.7"


def delete(file_id: str) -> Call:
    return Call(FILES + "DeleteFile", request=files_pb2.DeleteFileRequest(file_id=file_id))


@pytest.fixture
def db(outbox_db: Database) -> Database:
    return outbox_db


@pytest.fixture
def trail(db: Database) -> AuditTrail:
    return AuditTrail("files", db, Outbox())


async def written(db: Database) -> list[admin_pb2.AuditRecord]:
    async with db.reading() as session:
        rows = (await session.execute(select(outbox_table.c.payload))).scalars().all()
    return [r for p in rows for r in admin_pb2.RecordAuditEventsRequest.FromString(p).records]


async def test_mutations_and_refusals_are_recorded_reads_are_not(
    trail: AuditTrail, db: Database
) -> None:
    delete = files_pb2.DeleteFileRequest(file_id="f-1")
    trail.finished(Call(FILES + "DeleteFile", request=delete))
    trail.finished(Call(FILES + "GetFile", request=files_pb2.GetFileRequest(file_id="f-2")))
    trail.finished(
        Call(
            FILES + "GetFile",
            code=grpc.StatusCode.UNAUTHENTICATED,
            principal=None,
            request=files_pb2.GetFileRequest(file_id="f-3"),
            error="access token expired",
        )
    )
    trail.finished(Call(FILES + "ListFiles", code=grpc.StatusCode.PERMISSION_DENIED))
    assert await trail.flush() == 3
    first, refused, denied = await written(db)
    assert (first.actor, first.tenant_id, first.api_key_id) == ("u-1", "t-1", "k-1")
    assert (first.action, first.resource, first.outcome) == (
        "alea.files.v1.FilesService/DeleteFile",
        "files/f-1",
        "OK",
    )
    assert (first.service, first.request_id, first.client_address) == (
        "files",
        "req-1",
        "203.0.113.7",
    )
    assert (refused.actor, refused.tenant_id, refused.outcome) == (
        "anonymous",
        "",
        "UNAUTHENTICATED",
    )
    assert refused.resource == "files/f-3"
    assert refused.details["reason"] == "access token expired"
    assert denied.outcome == "PERMISSION_DENIED"


async def test_failed_mutations_are_recorded_with_their_outcome(
    trail: AuditTrail, db: Database
) -> None:
    request = files_pb2.DeleteFileRequest(file_id="f-9")
    trail.finished(Call(FILES + "DeleteFile", code=grpc.StatusCode.NOT_FOUND, request=request))
    (entry,) = [r async for r in _flushed(trail, db)]
    assert (entry.outcome, entry.resource) == ("NOT_FOUND", "files/f-9")
    assert "reason" not in entry.details  # only refusals say why


async def _flushed(trail: AuditTrail, db: Database) -> AsyncIterator[admin_pb2.AuditRecord]:
    await trail.flush()
    for record in await written(db):
        yield record


async def test_no_secret_reaches_the_trail(trail: AuditTrail, db: Database) -> None:
    login = identity_pb2.LoginRequest(email="ann@example.com", password="correct horse 12")
    response = identity_pb2.LoginResponse(
        tokens=identity_pb2.Tokens(access_token="eyJsecret", refresh_token="rt_secret"),
        user=identity_pb2.User(id="u-7", tenant_id="t-7"),
    )
    trail.finished(Call(IDENTITY + "Login", principal=None, request=login, response=response))
    key = identity_pb2.CreateApiKeyResponse(
        api_key=identity_pb2.ApiKey(id="k-9"), secret="alea_supersecret"
    )
    trail.finished(Call(IDENTITY + "CreateApiKey", response=key))
    upload = files_pb2.UploadBodyRequest(file_name="a.xlsx")
    upload.body.data = b"file contents"
    trail.finished(Call(FILES + "UploadBody", request=upload, response=files_pb2.File(id="f-5")))
    await trail.flush()
    records = await written(db)
    text = "".join(str(r) for r in records)
    for secret in ("correct horse", "eyJsecret", "rt_secret", "alea_supersecret", "file contents"):
        assert secret not in text
    login_entry, key_entry, upload_entry = records
    assert (login_entry.actor, login_entry.tenant_id, login_entry.resource) == (
        "u-7",
        "t-7",
        "users/u-7",
    )
    assert key_entry.resource == "apiKeys/k-9"
    assert upload_entry.resource == "files/f-5"


async def test_handlers_add_notes_and_updates_name_their_fields(
    trail: AuditTrail, db: Database
) -> None:
    audit.note(old_value=1, new_value=2)
    request = identity_pb2.UpdateUserRequest(
        user=identity_pb2.User(id="u-2"),
        update_mask=field_mask_pb2.FieldMask(paths=["display_name", "role"]),
    )
    trail.finished(
        Call(IDENTITY + "UpdateUser", request=request, response=identity_pb2.User(id="u-2"))
    )
    trail.finished(Call(FILES + "DeleteFile", request=files_pb2.DeleteFileRequest(file_id="x")))
    await trail.flush()
    noted, plain = await written(db)
    assert json_format.MessageToDict(noted.details) == {
        "old_value": 1.0,
        "new_value": 2.0,
        "fields": ["display_name", "role"],
    }
    assert dict(plain.details) == {}  # notes belong to one call only


def test_resources_come_from_the_response_then_the_request() -> None:
    create = simulation_pb2.CreateSimulationRequest(model_id="m-1")
    made = simulation_pb2.Simulation(id="s-1")
    assert resource_of(SIMULATION + "CreateSimulation", create, made) == "simulations/s-1"
    assert resource_of(SIMULATION + "CreateSimulation", create, None) == "models/m-1"
    share = files_pb2.ShareFileRequest(file_id="f-1", user_id="u-1")
    assert resource_of(FILES + "ShareFile", share, None) == "files/f-1"
    revoke = identity_pb2.RevokeApiKeyRequest(api_key_id="k-1")
    assert resource_of(IDENTITY + "RevokeApiKey", revoke, None) == "apiKeys/k-1"
    setting = admin_pb2.SetSettingRequest(setting=admin_pb2.Setting(key="edge.rate_limit"))
    assert resource_of("/alea.admin.v1.AdminService/SetSetting", setting, None) == (
        "settings/edge.rate_limit"
    )
    reserve = identity_pb2.ReserveTrialsRequest(tenant_id="t-1", request_id="r")
    assert resource_of(IDENTITY + "ReserveTrials", reserve, None) == "tenants/t-1"
    assert resource_of("/no.such.Service/Method", reserve, None) == ""


async def test_a_full_buffer_counts_what_it_drops_and_says_so(db: Database) -> None:
    trail = AuditTrail("files", db, Outbox(), capacity=3)
    for n in range(5):
        trail.finished(
            Call(FILES + "DeleteFile", request=files_pb2.DeleteFileRequest(file_id=str(n)))
        )
    assert trail.pending == 3
    await trail.flush()
    records = await written(db)
    assert [r.resource for r in records[:3]] == ["files/0", "files/1", "files/2"]
    assert records[3].action == "alea.audit/EntriesDropped"
    assert records[3].details["dropped"] == 2


async def test_entries_wait_in_memory_while_the_database_is_away(
    trail: AuditTrail, db: Database
) -> None:
    trail.finished(Call(FILES + "DeleteFile", request=files_pb2.DeleteFileRequest(file_id="a")))
    await db.close()
    broken = Database("sqlite+aiosqlite:////nonexistent/dir/audit.db")
    trail.db = broken
    with pytest.raises(Exception):  # noqa: B017 - whatever the driver raises
        await trail.flush()
    assert trail.pending == 1
    trail.db = db
    assert await trail.flush() == 1
    await broken.close()


async def test_batches_are_one_outbox_record_each(trail: AuditTrail, db: Database) -> None:
    for n in range(2500):
        trail.finished(
            Call(FILES + "DeleteFile", request=files_pb2.DeleteFileRequest(file_id=str(n)))
        )
    assert await trail.flush() == 2500
    async with db.reading() as session:
        keys = (await session.execute(select(outbox_table.c.key))).scalars().all()
    assert keys == ["audit/files"] * 3
    assert [r.resource for r in await written(db)] == [f"files/{n}" for n in range(2500)]


async def test_a_flush_writes_what_was_buffered_in_one_transaction(db: Database) -> None:
    """Entries recorded while a flush writes wait for the next one: a flush that chased
    them would write a tiny transaction per call for as long as calls keep coming."""
    outbox = Outbox()
    trail = AuditTrail("files", db, outbox)
    add, transactions = outbox.add, []

    async def add_while_calls_finish(session: Any, *items: OutboxItem) -> None:
        transactions.append(len(items))
        trail.finished(delete(f"during-{len(transactions)}"))
        await add(session, *items)

    outbox.add = add_while_calls_finish  # type: ignore[method-assign]
    for n in range(1500):
        trail.finished(delete(str(n)))
    assert await trail.flush() == 1500
    assert transactions == [2]  # one transaction, a record per 1000 entries
    assert trail.pending == 1
    assert await trail.flush() == 1
    assert transactions == [2, 1]
    resources = [r.resource for r in await written(db)]
    assert resources == [f"files/{n}" for n in range(1500)] + ["files/during-1"]
