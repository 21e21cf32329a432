"""The shared interceptor, exercised through a real in-process identity service over mTLS:
request ids, validation → field violations, peer checks, role checks, INTERNAL without leaks."""

from __future__ import annotations

import json
import logging
import uuid

import grpc
import pytest
from alea.access.v1 import access_pb2
from alea.identity.v1 import identity_pb2 as pb
from alea.identity.v1 import identity_pb2_grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from services.identity.api import IdentityServicer
from services.runtime.logs import JsonFormatter
from services.runtime.server import Mount
from tests.unit.runtime.harness import Subject, identity_in_process

PASSWORD = "correct horse battery"


def stub(subject: Subject, identity: str = "edge") -> identity_pb2_grpc.IdentityServiceStub:
    return identity_pb2_grpc.IdentityServiceStub(subject.channel(identity))


async def register(subject: Subject) -> pb.RegisterResponse:
    request = pb.RegisterRequest(
        tenant_display_name="Acme",
        email=f"{uuid.uuid4().hex}@example.com",
        password=PASSWORD,
        display_name="Ann",
    )
    return await stub(subject).Register(request)


def bearer(response) -> tuple[tuple[str, str]]:
    return (("authorization", f"Bearer {response.tokens.access_token}"),)


def violations(error: grpc.aio.AioRpcError) -> list[tuple[str, str]]:
    status = rpc_status.from_call(error)
    assert status is not None
    (detail,) = status.details
    request = error_details_pb2.BadRequest()
    assert detail.Unpack(request)
    return [(v.field, v.description) for v in request.field_violations]


async def test_bad_input_is_invalid_argument_naming_each_field(subject: Subject) -> None:
    request = pb.RegisterRequest(tenant_display_name="", email="nope", password="short")
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub(subject).Register(request)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    fields = [field for field, _ in violations(raised.value)]
    assert fields == ["tenant_display_name", "email", "password", "display_name"]


async def test_nested_field_paths_are_dotted(subject: Subject) -> None:
    admin = await register(subject)
    user = pb.User(id=admin.user.id, preferences=pb.Preferences(locale="not a locale!"))
    request = pb.UpdateUserRequest(user=user)
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub(subject).UpdateUser(request, metadata=bearer(admin))
    assert [f for f, _ in violations(raised.value)] == ["user.preferences.locale", "update_mask"]


async def test_request_id_is_echoed_or_made(subject: Subject) -> None:
    call = stub(subject).GetJwks(pb.GetJwksRequest(), metadata=(("x-request-id", "req-123"),))
    await call
    assert ("x-request-id", "req-123") in tuple(await call.trailing_metadata())
    call = stub(subject).GetJwks(pb.GetJwksRequest())
    await call
    made = dict(await call.trailing_metadata())["x-request-id"]
    assert len(made) == 32


async def test_errors_also_carry_the_request_id(subject: Subject) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub(subject).GetUser(
            pb.GetUserRequest(user_id=str(uuid.uuid4())), metadata=(("x-request-id", "r-9"),)
        )
    assert raised.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert ("x-request-id", "r-9") in tuple(raised.value.trailing_metadata())


async def test_role_below_the_rule_is_permission_denied(subject: Subject) -> None:
    admin = await register(subject)
    email = f"{uuid.uuid4().hex}@example.com"
    create = pb.CreateUserRequest(
        email=email, password=PASSWORD, display_name="Vic", role=access_pb2.ROLE_VIEWER
    )
    await stub(subject).CreateUser(create, metadata=bearer(admin))
    viewer = await stub(subject).Login(pb.LoginRequest(email=email, password=PASSWORD))
    create.email = f"x{email}"
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub(subject).CreateUser(create, metadata=bearer(viewer))
    assert raised.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_internal_rpcs_refuse_the_edge_and_users(subject: Subject) -> None:
    request = pb.VerifyApiKeyRequest(secret="alea_whatever")
    for identity in ("edge", "client"):
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await stub(subject, identity).VerifyApiKey(request)
        assert raised.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub(subject, "files").VerifyApiKey(request)
    assert raised.value.code() == grpc.StatusCode.UNAUTHENTICATED  # admitted, key unknown


async def test_the_client_certificate_goes_through_the_edge_only(subject: Subject) -> None:
    admin = await register(subject)
    calls = [
        lambda s: s.GetJwks(pb.GetJwksRequest()),  # public
        lambda s: s.GetUser(pb.GetUserRequest(user_id=admin.user.id), metadata=bearer(admin)),
    ]
    for call in calls:
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await call(stub(subject, "client"))
        assert raised.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert "through the edge" in raised.value.details()
        await call(stub(subject, "edge"))  # the same call as the edge makes it


async def test_the_development_switch_admits_the_client_certificate(tmp_path) -> None:
    async with identity_in_process(tmp_path, ALEA_DEV_DIRECT_CALLS="1") as direct:
        admin = await register(direct)
        request = pb.GetUserRequest(user_id=admin.user.id)
        user = await stub(direct, "client").GetUser(request, metadata=bearer(admin))
        assert user.id == admin.user.id
        with pytest.raises(grpc.aio.AioRpcError) as raised:  # still no internal RPCs
            await stub(direct, "client").VerifyApiKey(pb.VerifyApiKeyRequest(secret="alea_x"))
        assert raised.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_internal_rule_peers_limit_which_services(subject: Subject) -> None:
    admin = await register(subject)
    request = pb.ReserveTrialsRequest(
        tenant_id=admin.tenant.id, trials=10, request_id=str(uuid.uuid4())
    )
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub(subject, "files").ReserveTrials(request)
    assert raised.value.code() == grpc.StatusCode.PERMISSION_DENIED
    quota = await stub(subject, "simulation").ReserveTrials(request)
    assert quota.trials_used_this_month == 10


async def test_user_rpc_peers_may_call_without_a_user(subject: Subject) -> None:
    admin = await register(subject)
    request = pb.GetQuotaRequest(tenant_id=admin.tenant.id)
    quota = await stub(subject, "simulation").GetQuota(request)
    assert quota.tier == pb.TIER_FREE
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub(subject, "analytics").GetQuota(request)
    assert raised.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_unexpected_errors_are_internal_with_an_id_and_no_internals(
    tmp_path, caplog: pytest.LogCaptureFixture
) -> None:
    class Broken(IdentityServicer):
        async def GetJwks(self, request, context):
            raise RuntimeError("password=hunter2 at db.internal:5432")

    def swap(mounts: list[Mount]) -> list[Mount]:
        (mount,) = mounts
        servicer = mount.servicer
        broken = Broken(servicer.accounts, servicer.api_keys, servicer.quotas, servicer.keys)
        return [Mount(mount.descriptor, broken, mount.add)]

    async with identity_in_process(tmp_path, swap) as broken_subject:
        with caplog.at_level(logging.ERROR), pytest.raises(grpc.aio.AioRpcError) as raised:
            await stub(broken_subject).GetJwks(pb.GetJwksRequest())
    error = raised.value
    assert error.code() == grpc.StatusCode.INTERNAL
    assert "hunter2" not in error.details()
    (detail,) = rpc_status.from_call(error).details
    info = error_details_pb2.ErrorInfo()
    assert detail.Unpack(info)
    error_id = info.metadata["error_id"]
    assert error_id in error.details()
    (record,) = [r for r in caplog.records if getattr(r, "error_id", None) == error_id]
    assert record.exc_info is not None and "hunter2" in str(record.exc_info[1])


async def test_one_log_line_per_rpc_with_its_facts(
    subject: Subject, caplog: pytest.LogCaptureFixture
) -> None:
    admin = await register(subject)
    metadata = (*bearer(admin), ("x-request-id", "log-me"))
    with caplog.at_level(logging.INFO, logger="alea.rpc"):
        await stub(subject).GetUser(pb.GetUserRequest(user_id=admin.user.id), metadata=metadata)
    (record,) = [r for r in caplog.records if r.name == "alea.rpc"]
    assert record.method == "/alea.identity.v1.IdentityService/GetUser"
    assert (record.code, record.peer, record.tenant_id) == ("OK", "edge", admin.tenant.id)
    assert record.user_id == admin.user.id and record.duration_ms > 0
    line = json.loads(JsonFormatter("identity").format(record))
    assert line["method"] == record.method and line["level"] == "info"


async def test_a_service_may_relay_a_users_own_token(subject: Subject) -> None:
    admin = await register(subject)
    request = pb.GetUserRequest(user_id=admin.user.id)
    user = await stub(subject, "simulation").GetUser(request, metadata=bearer(admin))
    assert user.id == admin.user.id
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub(subject, "simulation").GetUser(request)  # GetUser names no peers
    assert raised.value.code() == grpc.StatusCode.UNAUTHENTICATED


def _raw(subject: Subject, method: str, identity: str = "edge"):
    channel = subject.channel(identity)
    return channel.unary_unary(method, request_serializer=None, response_deserializer=None)


LOGIN = "/alea.identity.v1.IdentityService/Login"
GET_USER = "/alea.identity.v1.IdentityService/GetUser"


@pytest.mark.parametrize(
    ("method", "data", "field"),
    [
        # Login is public: no credentials are needed to reach the parser.
        (
            LOGIN,
            pb.LoginRequest(email="a@b.c", password="x").SerializeToString()[:-1] + b"\xff",
            "password",
        ),
        (LOGIN, b"\x0a\x02\xc3\x28", "email"),  # field 1 (email): an invalid two-byte sequence
        (LOGIN, b"\xff\xff\xff\xff", "LoginRequest"),  # not protobuf at all
        (LOGIN, b"\x0a\x10ab", "LoginRequest"),  # a length beyond the end of the bytes
        # parses, but PostgreSQL's text cannot hold U+0000: refused before any handler
        (LOGIN, pb.LoginRequest(email="a@b.c\x00", password="x").SerializeToString(), "email"),
    ],
)
async def test_undecodable_requests_are_invalid_argument_without_internals(
    subject: Subject, method: str, data: bytes, field: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await _raw(subject, method)(data)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [f for f, _ in violations(raised.value)] == [field]
    assert "Error parsing" not in raised.value.details()
    assert "<class" not in raised.value.details()


async def test_undecodable_requests_still_need_credentials_where_the_rpc_does(
    subject: Subject,
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as anonymous:
        await _raw(subject, GET_USER)(b"\x0a\x01\xff")
    registered = await register(subject)
    with pytest.raises(grpc.aio.AioRpcError) as admitted:
        await _raw(subject, GET_USER)(b"\x0a\x01\xff", metadata=bearer(registered))
    assert anonymous.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert admitted.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violations(admitted.value) == [("user_id", "is not valid UTF-8")]
