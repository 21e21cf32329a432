"""``python -m bench.runtime [SECONDS] [CONCURRENCY]``: what the shared guard costs per RPC.

Three servers in this process, side by side, same servicer, same mTLS, loopback:

- ``bare``: grpc.aio with no interceptors (the reference);
- ``guard, public``: the real bootstrap (``create_server``: OpenTelemetry, peer check,
  access rule, validation, error mapping, JSON log line) on a public RPC;
- ``guard, JWT``: the same on an RPC that needs a viewer, so an EdDSA token is verified too.

Reports QPS and p50 per server and the ratio to ``bare``. Client and servers share one
event loop (and so one core): ratios, not absolute numbers, are the result.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc
import jwt
from alea.identity.v1 import identity_pb2 as pb
from alea.identity.v1 import identity_pb2_grpc
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bench.closed_loop import closed_loop
from services.runtime.auth import ApiKeyCache, Authenticator, TokenVerifier
from services.runtime.clients import secure_channel
from services.runtime.config import load_settings
from services.runtime.context import Principal, ServicerContext
from services.runtime.errors import Unauthenticated
from services.runtime.pki import ensure_pki
from services.runtime.server import Mount, create_server

TENANT = str(uuid.uuid4())
ROUNDS = 5


class Constant(identity_pb2_grpc.IdentityServiceServicer):
    """Answers without doing any work, so only the server around it is measured."""

    async def GetJwks(
        self, request: pb.GetJwksRequest, context: ServicerContext
    ) -> pb.GetJwksResponse:
        return pb.GetJwksResponse()

    async def GetTenant(self, request: pb.GetTenantRequest, context: ServicerContext) -> pb.Tenant:
        return pb.Tenant(id=request.tenant_id)


def _authenticator() -> tuple[Authenticator, str]:
    key = Ed25519PrivateKey.generate()
    now = int(time.time())
    claims = {
        "sub": str(uuid.uuid4()),
        "tid": TENANT,
        "role": "viewer",
        "iat": now,
        "exp": now + 3600,
        "iss": "alea-identity",
        "aud": "alea",
    }
    token = jwt.encode(claims, key, "EdDSA", headers={"kid": "k1"})

    async def jwks() -> list[dict[str, Any]]:
        return [_jwk(key)]

    async def no_keys(secret: str) -> tuple[Principal, float | None]:
        raise Unauthenticated("no API keys here")

    return Authenticator(TokenVerifier(jwks), ApiKeyCache(no_keys)), token


def _jwk(key: Ed25519PrivateKey) -> dict[str, str]:
    data = json.loads(jwt.algorithms.OKPAlgorithm.to_jwk(key.public_key()))
    return {**data, "kid": "k1", "alg": "EdDSA", "use": "sig"}


async def _load(
    call: Callable[[], Awaitable[object]], seconds: float, concurrency: int
) -> tuple[float, float]:
    """Calls per second and median latency (ms) of a closed loop."""
    latencies = await closed_loop(call, seconds, concurrency)
    return len(latencies) / seconds, statistics.median(latencies) * 1000


async def main(seconds: float, concurrency: int) -> None:
    logging.disable(logging.CRITICAL)  # the guard's log line is formatted but not printed
    home = Path(tempfile.mkdtemp(prefix="alea-bench-"))
    pki = ensure_pki(home)
    settings = load_settings("identity", {"ALEA_HOME": str(home), "ALEA_PORT": "0"})
    descriptor = pb.DESCRIPTOR.services_by_name["IdentityService"]
    mount = Mount(descriptor, Constant(), identity_pb2_grpc.add_IdentityServiceServicer_to_server)
    authenticator, token = _authenticator()
    guarded, guarded_port = create_server("identity", [mount], settings, authenticator)
    await guarded.start()
    bare = grpc.aio.server()
    identity_pb2_grpc.add_IdentityServiceServicer_to_server(Constant(), bare)
    credentials = grpc.ssl_server_credentials(
        [((pki / "identity.key").read_bytes(), (pki / "identity.crt").read_bytes())],
        root_certificates=(pki / "ca.crt").read_bytes(),
        require_client_auth=True,
    )
    bare_port = bare.add_secure_port("127.0.0.1:0", credentials)
    await bare.start()
    # The edge's certificate: the one services admit from users' side.
    bare_channel = secure_channel(f"localhost:{bare_port}", pki, "edge")
    guarded_channel = secure_channel(f"localhost:{guarded_port}", pki, "edge")
    bare_stub = identity_pb2_grpc.IdentityServiceStub(bare_channel)
    stub = identity_pb2_grpc.IdentityServiceStub(guarded_channel)
    jwks, tenant = pb.GetJwksRequest(), pb.GetTenantRequest(tenant_id=TENANT)
    metadata = (("authorization", f"Bearer {token}"),)
    cases = {
        "bare": lambda: bare_stub.GetJwks(jwks),
        "guard, public": lambda: stub.GetJwks(jwks),
        "guard, JWT": lambda: stub.GetTenant(tenant, metadata=metadata),
    }
    for call in cases.values():  # warm up connections, caches and code paths
        await _load(call, 0.5, concurrency)
    # Rounds interleave the cases so that load from elsewhere on the machine hits all alike.
    rounds: dict[str, list[tuple[float, float]]] = {name: [] for name in cases}
    for _ in range(ROUNDS):
        for name, call in cases.items():
            rounds[name].append(await _load(call, seconds / ROUNDS, concurrency))
    results = {
        name: (statistics.median(q for q, _ in runs), statistics.median(p for _, p in runs))
        for name, runs in rounds.items()
    }
    reference = results["bare"][0]
    print(
        f"unary RPCs, concurrency {concurrency}, {seconds:g} s per case in {ROUNDS} rounds, "
        "client and servers in one process and event loop (medians)"
    )
    for name, (qps, p50) in results.items():
        print(f"  {name:14s} {qps:8.0f} QPS  p50 {p50:6.2f} ms  {qps / reference:5.2f}x bare")
    for channel in (bare_channel, guarded_channel):
        await channel.close(None)
    await bare.stop(0)
    await guarded.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.runtime", description=__doc__)
    parser.add_argument("seconds", nargs="?", type=float, default=3.0, help="per case")
    parser.add_argument("concurrency", nargs="?", type=int, default=16)
    args = parser.parse_args()
    asyncio.run(main(args.seconds, args.concurrency))
