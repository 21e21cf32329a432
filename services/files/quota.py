"""Storage limits from identity's GetQuota, called as the ``files`` peer over mTLS."""

from __future__ import annotations

import grpc
from alea.identity.v1 import identity_pb2, identity_pb2_grpc

from services.runtime.errors import Unavailable

__all__ = ["IdentityQuota"]


class IdentityQuota:
    """Reads a tenant's ``storage_bytes`` from identity (no caching: tiers change rarely,
    but an upgrade should take effect on the next upload, and one unary call is cheap
    next to an upload)."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        self._stub = identity_pb2_grpc.IdentityServiceStub(channel)

    async def storage_limit(self, tenant_id: str) -> int:
        """Bytes the tenant may store; Unavailable if identity cannot answer."""
        try:
            quota = await self._stub.GetQuota(
                identity_pb2.GetQuotaRequest(tenant_id=tenant_id), timeout=5
            )
        except grpc.aio.AioRpcError as exc:
            message = f"identity could not give the storage quota: {exc.code().name}"
            raise Unavailable(message) from None
        return quota.storage_bytes
