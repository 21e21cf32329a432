"""Refusals of the running service: bad tokens of every kind, peers, graceful stop."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import time

import grpc
import jwt
import pytest
from alea.identity.v1 import identity_pb2 as pb
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from services.identity.store import IdentityStore
from services.identity.tokens import SigningKeys, load_kek
from services.runtime.db import Database
from tests.integration.identity.conftest import Identity, auth

pytestmark = pytest.mark.integration


def _refused(identity: Identity, registered, metadata) -> str:
    request = pb.GetUserRequest(user_id=registered.user.id)
    with pytest.raises(grpc.RpcError) as raised:
        identity.stub().GetUser(request, metadata=metadata)
    assert raised.value.code() == grpc.StatusCode.UNAUTHENTICATED
    return raised.value.details()


def _claims(registered) -> dict:
    now = int(time.time())
    return {
        "sub": registered.user.id,
        "tid": registered.tenant.id,
        "role": "admin",
        "iat": now,
        "exp": now + 600,
        "iss": "alea-identity",
        "aud": "alea",
    }


def test_missing_token(identity: Identity) -> None:
    assert "missing credentials" in _refused(identity, identity.register(), ())


def test_alg_none_token(identity: Identity) -> None:
    registered = identity.register()
    kid = jwt.get_unverified_header(registered.tokens.access_token)["kid"]
    header = {"alg": "none", "typ": "JWT", "kid": kid}
    parts = [
        base64.urlsafe_b64encode(json.dumps(p).encode()).decode().rstrip("=")
        for p in (header, _claims(registered))
    ]
    assert "algorithm" in _refused(identity, registered, auth(".".join(parts) + "."))


def test_forged_token(identity: Identity) -> None:
    registered = identity.register()
    kid = jwt.get_unverified_header(registered.tokens.access_token)["kid"]
    forged = jwt.encode(
        _claims(registered), Ed25519PrivateKey.generate(), "EdDSA", headers={"kid": kid}
    )
    _refused(identity, registered, auth(forged))


def test_tampered_token(identity: Identity) -> None:
    registered = identity.register()
    header, _, signature = registered.tokens.access_token.split(".")
    claims = {**_claims(registered), "tid": identity.register().tenant.id}
    body = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    _refused(identity, registered, auth(f"{header}.{body}.{signature}"))


def test_expired_token(identity: Identity) -> None:
    registered = identity.register()

    async def mint() -> str:
        db = Database(identity.database_url)
        keys = SigningKeys(
            IdentityStore(db), load_kek(identity.home / "pki"), access_ttl=dt.timedelta(minutes=-5)
        )
        try:
            user = registered.user
            return (await keys.issue(user.id, user.tenant_id, "admin", "s")).token
        finally:
            await db.close()

    token = asyncio.run(mint())
    assert "expired" in _refused(identity, registered, auth(token))


def test_internal_rpcs_are_closed_to_the_edge(identity: Identity) -> None:
    request = pb.ReserveTrialsRequest(
        tenant_id=identity.register().tenant.id,
        trials=1,
        request_id="0b7e4c8e-4a57-4f0e-9a51-8d7e3c1c2b10",
    )
    with pytest.raises(grpc.RpcError) as raised:
        identity.stub("edge").ReserveTrials(request)
    assert raised.value.code() == grpc.StatusCode.PERMISSION_DENIED
