"""``python -m bench.mesh.echo PORT PKI_DIR``: the reference, a bare grpc.aio server.

It answers ``IdentityService.GetUser`` by echoing the requested id, with no interceptors,
validation or database, over mTLS with the identity certificate. Because it speaks the
identity contract, the edge can route (and transcode REST) to it exactly as to the real
service: the gap between the two is the service's own work, the gap between it direct and
it through Envoy is the edge's.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import grpc
from alea.identity.v1 import identity_pb2, identity_pb2_grpc
from grpc_health.v1 import health, health_pb2_grpc

from services.runtime.context import ServicerContext


class EchoIdentity(identity_pb2_grpc.IdentityServiceServicer):
    """GetUser only: the user whose id was asked for."""

    async def GetUser(
        self, request: identity_pb2.GetUserRequest, context: ServicerContext
    ) -> identity_pb2.User:
        return identity_pb2.User(id=request.user_id, email="echo@example.com")


async def serve(port: int, pki: Path) -> None:
    """Serve on 127.0.0.1:``port`` until killed."""
    credentials = grpc.ssl_server_credentials(
        [((pki / "identity.key").read_bytes(), (pki / "identity.crt").read_bytes())],
        root_certificates=(pki / "ca.crt").read_bytes(),
        require_client_auth=True,
    )
    server = grpc.aio.server()
    identity_pb2_grpc.add_IdentityServiceServicer_to_server(EchoIdentity(), server)
    servicer = health.aio.HealthServicer()  # type: ignore[attr-defined]
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    server.add_secure_port(f"127.0.0.1:{port}", credentials)
    await server.start()
    await server.wait_for_termination()


if __name__ == "__main__":
    asyncio.run(serve(int(sys.argv[1]), Path(sys.argv[2])))
