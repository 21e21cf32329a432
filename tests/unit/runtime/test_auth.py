"""Every kind of bad credential is UNAUTHENTICATED before a handler runs."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import time
import uuid

import grpc
import jwt
import pytest
from alea.identity.v1 import identity_pb2 as pb
from alea.identity.v1 import identity_pb2_grpc
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from services.identity.store import IdentityStore
from services.identity.tokens import SigningKeys, load_kek
from tests.unit.runtime.harness import Subject
from tests.unit.runtime.test_interceptor import register


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _claims(user: pb.User, **changes) -> dict:
    now = int(time.time())
    claims = {
        "sub": user.id,
        "tid": user.tenant_id,
        "role": "admin",
        "sid": "s",
        "iat": now,
        "exp": now + 600,
        "iss": "alea-identity",
        "aud": "alea",
    }
    return {**claims, **changes}


async def _get_user(subject: Subject, user: pb.User, metadata) -> pb.User:
    stub = identity_pb2_grpc.IdentityServiceStub(subject.channel())
    return await stub.GetUser(pb.GetUserRequest(user_id=user.id), metadata=metadata)


async def _refused(subject: Subject, user: pb.User, metadata) -> str:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await _get_user(subject, user, metadata)
    assert raised.value.code() == grpc.StatusCode.UNAUTHENTICATED
    return raised.value.details()


@pytest.fixture(scope="module")
async def admin(subject: Subject) -> pb.RegisterResponse:
    return await register(subject)


async def _real_key(subject: Subject) -> tuple[str, Ed25519PrivateKey]:
    return await subject.keys._signing_key()


async def test_a_valid_token_is_accepted(subject: Subject, admin: pb.RegisterResponse) -> None:
    metadata = (("authorization", f"Bearer {admin.tokens.access_token}"),)
    assert (await _get_user(subject, admin.user, metadata)).id == admin.user.id


async def test_missing_credentials(subject: Subject, admin: pb.RegisterResponse) -> None:
    assert "missing credentials" in await _refused(subject, admin.user, ())


@pytest.mark.parametrize("value", ["Basic abc", "Bearer", "Bearer not.a.jwt", "token"])
async def test_malformed_authorization(
    subject: Subject, admin: pb.RegisterResponse, value: str
) -> None:
    await _refused(subject, admin.user, (("authorization", value),))


async def test_alg_none_is_refused(subject: Subject, admin: pb.RegisterResponse) -> None:
    kid, _ = await _real_key(subject)
    header = _b64(json.dumps({"alg": "none", "typ": "JWT", "kid": kid}).encode())
    token = f"{header}.{_b64(json.dumps(_claims(admin.user)).encode())}."
    assert "algorithm" in await _refused(
        subject, admin.user, (("authorization", f"Bearer {token}"),)
    )


async def test_hmac_with_the_public_key_is_refused(
    subject: Subject, admin: pb.RegisterResponse
) -> None:
    kid, key = await _real_key(subject)
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": kid}).encode())
    body = _b64(json.dumps(_claims(admin.user)).encode())
    public = key.public_key().public_bytes_raw()
    signature = _b64(hmac.new(public, f"{header}.{body}".encode(), hashlib.sha256).digest())
    token = f"{header}.{body}.{signature}"
    await _refused(subject, admin.user, (("authorization", f"Bearer {token}"),))


async def test_wrong_signature_under_a_real_kid(
    subject: Subject, admin: pb.RegisterResponse
) -> None:
    kid, _ = await _real_key(subject)
    forged = jwt.encode(
        _claims(admin.user), Ed25519PrivateKey.generate(), "EdDSA", headers={"kid": kid}
    )
    assert "invalid" in await _refused(
        subject, admin.user, (("authorization", f"Bearer {forged}"),)
    )


async def test_unknown_kid(subject: Subject, admin: pb.RegisterResponse) -> None:
    forged = jwt.encode(
        _claims(admin.user),
        Ed25519PrivateKey.generate(),
        "EdDSA",
        headers={"kid": uuid.uuid4().hex},
    )
    assert "unknown key" in await _refused(
        subject, admin.user, (("authorization", f"Bearer {forged}"),)
    )


async def test_expired_token(subject: Subject, admin: pb.RegisterResponse) -> None:
    kek = load_kek(subject.home / "pki")
    stale = SigningKeys(IdentityStore(subject.db), kek, access_ttl=dt.timedelta(minutes=-5))
    token = await stale.issue(admin.user.id, admin.user.tenant_id, "admin", "s")
    assert "expired" in await _refused(
        subject, admin.user, (("authorization", f"Bearer {token.token}"),)
    )


@pytest.mark.parametrize(
    "changes",
    [{"iss": "someone-else"}, {"aud": "other"}, {"role": "root"}, {"tid": ""}, {"exp": None}],
)
async def test_bad_claims_are_refused(
    subject: Subject, admin: pb.RegisterResponse, changes: dict
) -> None:
    kid, key = await _real_key(subject)
    claims = {k: v for k, v in _claims(admin.user, **changes).items() if v is not None}
    token = jwt.encode(claims, key, "EdDSA", headers={"kid": kid})
    await _refused(subject, admin.user, (("authorization", f"Bearer {token}"),))


async def test_unknown_and_empty_api_keys(subject: Subject, admin: pb.RegisterResponse) -> None:
    await _refused(subject, admin.user, (("x-api-key", "alea_" + "x" * 43),))
    await _refused(subject, admin.user, (("x-api-key", ""),))
