"""``python -m bench.mesh.echo PORT PKI_DIR``: the reference, a bare grpc.aio unary echo.

Serves ``/bench.Echo/Echo`` (bytes in, the same bytes out, no protobuf) over mTLS with the
identity service's certificate, so the only difference from the real service is the work
the service does (interceptors, validation, database), not the transport.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import grpc

METHOD = "/bench.Echo/Echo"


async def _echo(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    return request


async def serve(port: int, pki: Path) -> None:
    """Serve the echo on 127.0.0.1:``port`` until killed."""
    credentials = grpc.ssl_server_credentials(
        [((pki / "identity.key").read_bytes(), (pki / "identity.crt").read_bytes())],
        root_certificates=(pki / "ca.crt").read_bytes(),
        require_client_auth=True,
    )
    server = grpc.aio.server()
    handler = grpc.unary_unary_rpc_method_handler(_echo)
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler("bench.Echo", {"Echo": handler}),)
    )
    server.add_secure_port(f"127.0.0.1:{port}", credentials)
    await server.start()
    await server.wait_for_termination()


if __name__ == "__main__":
    asyncio.run(serve(int(sys.argv[1]), Path(sys.argv[2])))
