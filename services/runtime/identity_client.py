"""Remote user authentication for every service but identity: JWKS and API keys over mTLS."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import json_format

from services.runtime.access import ROLE_RANK
from services.runtime.auth import ApiKeyCache, Authenticator, TokenVerifier
from services.runtime.clients import secure_channel
from services.runtime.config import Settings
from services.runtime.context import Principal
from services.runtime.errors import Unauthenticated, Unavailable

__all__ = ["remote_authenticator"]

_ROLE_NAMES = {rank: name for name, rank in ROLE_RANK.items()}


def remote_authenticator(
    settings: Settings, pki_dir: Path
) -> tuple[Authenticator, Callable[[], Awaitable[None]]]:
    """An authenticator backed by identity at ``settings.identity_address``, and its closer."""
    from alea.identity.v1 import identity_pb2, identity_pb2_grpc

    channel = secure_channel(settings.identity_address, pki_dir, settings.service)
    stub = identity_pb2_grpc.IdentityServiceStub(channel)

    async def jwks() -> list[dict[str, Any]]:
        try:
            response = await stub.GetJwks(identity_pb2.GetJwksRequest(), timeout=5)
        except grpc.aio.AioRpcError as exc:
            raise Unavailable(f"identity unreachable for JWKS: {exc.code().name}") from None
        return [
            json_format.MessageToDict(k, preserving_proto_field_name=True) for k in response.keys
        ]

    async def api_key(secret: str) -> tuple[Principal, float | None]:
        request = identity_pb2.VerifyApiKeyRequest(secret=secret)
        try:
            answer = await stub.VerifyApiKey(request, timeout=5)
        except grpc.aio.AioRpcError as exc:
            if exc.code() in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.INVALID_ARGUMENT):
                raise Unauthenticated("invalid API key") from None
            raise Unavailable(f"identity unreachable for API keys: {exc.code().name}") from None
        principal = Principal(
            user_id=answer.user_id,
            tenant_id=answer.tenant_id,
            role=_ROLE_NAMES.get(answer.role, ""),
            api_key_id=answer.api_key_id,
        )
        expires = answer.expire_time.seconds if answer.HasField("expire_time") else None
        return principal, expires

    authenticator = Authenticator(TokenVerifier(jwks), ApiKeyCache(api_key))

    async def close() -> None:
        await channel.close(None)

    return authenticator, close
