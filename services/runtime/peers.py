"""Every call one Alea service makes to another, in one place.

:class:`Peers` opens one traced mTLS channel per peer service on first use (as the
calling service's own ``spiffe://alea/<service>`` identity, at ``ALEA_<PEER>_ADDRESS``)
and closes them all at shutdown; ``runtime.server.run`` hands it to a service's
``build``. Each peer has one client class here whose methods speak domain terms.

A failed call becomes a domain error at one boundary, :func:`_failed`: the codes a
method lists as the caller's own business (the quota it exceeded, the file it may not
read) come back as the peer's error, rebuilt by ``errors.from_rpc_error``; any other
failure means the peer could not serve and becomes :class:`Unavailable`, so the
caller's client retries rather than seeing another service's INTERNAL.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from typing import Any

import grpc
from alea.files.v1 import files_pb2, files_pb2_grpc
from alea.identity.v1 import identity_pb2, identity_pb2_grpc
from google.protobuf import json_format
from opentelemetry.instrumentation.grpc import aio_client_interceptors

from services.runtime.access import ROLE_RANK
from services.runtime.clients import secure_channel
from services.runtime.config import Settings
from services.runtime.context import Principal
from services.runtime.errors import AleaError, Unauthenticated, Unavailable, from_rpc_error

__all__ = ["FilesClient", "IdentityClient", "Peers"]

Credentials = Sequence[tuple[str, str]]
"""A user's own ``authorization`` / ``x-api-key`` metadata, forwarded on their behalf."""

_ROLE_NAMES = {rank: name for name, rank in ROLE_RANK.items()}
_CODE = grpc.StatusCode
_TIMEOUT = 10.0


def _failed(
    peer: str, what: str, error: grpc.aio.AioRpcError, passing: frozenset[grpc.StatusCode]
) -> AleaError:
    """The domain error for a failed call to ``peer`` (see the module docstring)."""
    if error.code() in passing:
        return from_rpc_error(error)
    return Unavailable(f"{peer} could not {what}: {error.code().name}")


class IdentityClient:
    """Identity: signing keys, API keys, trial quotas, storage limits, preferences."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        self._stub = identity_pb2_grpc.IdentityServiceStub(channel)

    async def jwks(self) -> list[dict[str, Any]]:
        """The public keys that verify access tokens, as JWK dictionaries."""
        try:
            response = await self._stub.GetJwks(identity_pb2.GetJwksRequest(), timeout=5)
        except grpc.aio.AioRpcError as exc:
            raise _failed("identity", "give its JWKS", exc, frozenset()) from None
        return [
            json_format.MessageToDict(k, preserving_proto_field_name=True) for k in response.keys
        ]

    async def verify_api_key(self, secret: str) -> tuple[Principal, float | None]:
        """The principal of an active API key and its expiry (epoch seconds, None: never)."""
        request = identity_pb2.VerifyApiKeyRequest(secret=secret)
        try:
            answer = await self._stub.VerifyApiKey(request, timeout=5)
        except grpc.aio.AioRpcError as exc:
            if exc.code() in (_CODE.UNAUTHENTICATED, _CODE.INVALID_ARGUMENT):
                raise Unauthenticated("invalid API key") from None
            raise _failed("identity", "verify an API key", exc, frozenset()) from None
        principal = Principal(
            user_id=answer.user_id,
            tenant_id=answer.tenant_id,
            role=_ROLE_NAMES.get(answer.role, ""),
            api_key_id=answer.api_key_id,
        )
        expires = answer.expire_time.seconds if answer.HasField("expire_time") else None
        return principal, expires

    async def reserve_trials(self, tenant_id: str, trials: int, reservation_id: str) -> None:
        """Reserve ``trials`` against the tenant's quotas (idempotent by reservation id);
        ResourceExhausted names the limit."""
        request = identity_pb2.ReserveTrialsRequest(
            tenant_id=tenant_id, trials=trials, request_id=reservation_id
        )
        try:
            await self._stub.ReserveTrials(request, timeout=_TIMEOUT)
        except grpc.aio.AioRpcError as exc:
            passing = frozenset({_CODE.RESOURCE_EXHAUSTED})
            raise _failed("identity", "reserve trials", exc, passing) from None

    async def default_seed(self, user_id: str, credentials: Credentials) -> int | None:
        """The seed the user prefers when a simulation leaves it unset (None: no
        preference), read with the user's own ``credentials``."""
        request = identity_pb2.GetUserRequest(user_id=user_id)
        try:
            user = await self._stub.GetUser(request, metadata=credentials, timeout=5)
        except grpc.aio.AioRpcError as exc:
            passing = frozenset({_CODE.UNAUTHENTICATED})
            raise _failed("identity", "read the user's preferences", exc, passing) from None
        preferences = user.preferences
        return preferences.default_seed if preferences.HasField("default_seed") else None

    async def storage_limit(self, tenant_id: str) -> int:
        """Bytes the tenant may store."""
        request = identity_pb2.GetQuotaRequest(tenant_id=tenant_id)
        try:
            quota: identity_pb2.Quota = await self._stub.GetQuota(request, timeout=5)
        except grpc.aio.AioRpcError as exc:
            raise _failed("identity", "give the storage quota", exc, frozenset()) from None
        return quota.storage_bytes


class FilesClient:
    """Files: workbooks read on a user's behalf."""

    # What files may answer about the user's own request: their file is missing, not
    # theirs, malformed, or its stored bytes fail their integrity check.
    _USERS_OWN = frozenset(
        {
            _CODE.NOT_FOUND,
            _CODE.INVALID_ARGUMENT,
            _CODE.PERMISSION_DENIED,
            _CODE.UNAUTHENTICATED,
            _CODE.DATA_LOSS,
        }
    )

    def __init__(self, channel: grpc.aio.Channel) -> None:
        self._stub = files_pb2_grpc.FilesServiceStub(channel)

    async def download(self, file_id: str, credentials: Credentials) -> bytes:
        """The bytes of a file, read with the user's ``credentials`` (their access rights)."""
        chunks = []
        try:
            call = self._stub.Download(
                files_pb2.DownloadRequest(file_id=file_id), metadata=credentials, timeout=60
            )
            async for chunk in call:
                chunks.append(chunk.data)
        except grpc.aio.AioRpcError as exc:
            raise _failed("files", "read the file", exc, self._USERS_OWN) from None
        return b"".join(chunks)


class Peers:
    """The channels this service opens to the others, one per peer, closed together."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._channels: dict[str, grpc.aio.Channel] = {}

    def channel(self, peer: str) -> grpc.aio.Channel:
        """The mTLS channel to ``peer``, opened on first use."""
        if peer not in self._channels:
            address = self._settings.address(peer)
            own = self._settings.service
            # The OpenTelemetry client interceptors carry the trace context of the RPC
            # being handled, so the peer's server span joins the caller's trace.
            self._channels[peer] = secure_channel(
                address, self._settings.pki_dir, own, aio_client_interceptors()
            )
        return self._channels[peer]

    @cached_property
    def identity(self) -> IdentityClient:
        return IdentityClient(self.channel("identity"))

    @cached_property
    def files(self) -> FilesClient:
        return FilesClient(self.channel("files"))

    async def close(self) -> None:
        """Close every channel opened so far."""
        channels, self._channels = list(self._channels.values()), {}
        for channel in channels:
            await channel.close(None)
