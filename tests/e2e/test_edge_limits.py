"""The edge's local rate limit, on a dedicated Envoy with a tiny bucket in front of the mesh.

Its tokens refill once a second: the burst allowance is spent by a quick run of calls, and
the refusal must be RESOURCE_EXHAUSTED over gRPC and 429 with a JSON status over REST.
"""

from __future__ import annotations

import grpc
import pytest
from alea.identity.v1 import identity_pb2, identity_pb2_grpc

from services.cli.edge_client import RestClient, edge_channel
from tests.support.mesh import Mesh

pytestmark = pytest.mark.integration

BURST = 4  # rate_limit_per_s=2 gives a bucket of 2 x 2 tokens


@pytest.fixture(scope="module")
def limited_port(mesh: Mesh) -> int:
    """The port of a second edge limited to 2 requests per second."""
    return mesh.extra_edge("envoy-limited", rate_limit_per_s=2).edge_port


def test_grpc_beyond_the_bucket_is_resource_exhausted(mesh: Mesh, limited_port: int) -> None:
    codes = []
    with edge_channel(f"localhost:{limited_port}", mesh.pki) as channel:
        stub = identity_pb2_grpc.IdentityServiceStub(channel)
        for _ in range(BURST * 3):
            try:
                stub.GetJwks(identity_pb2.GetJwksRequest(), timeout=10)
                codes.append(grpc.StatusCode.OK)
            except grpc.RpcError as exc:
                codes.append(exc.code())
    assert grpc.StatusCode.OK in codes
    assert grpc.StatusCode.RESOURCE_EXHAUSTED in codes
    assert set(codes) <= {grpc.StatusCode.OK, grpc.StatusCode.RESOURCE_EXHAUSTED}


def test_rest_beyond_the_bucket_is_429(mesh: Mesh, limited_port: int) -> None:
    client = RestClient.for_pki("localhost", limited_port, mesh.pki)
    replies = [client.request("GET", "/v1/jwks") for _ in range(BURST * 3)]
    client.close()
    refused = [r for r in replies if r.status == 429]
    assert refused, [r.status for r in replies]
    assert refused[0].body == {
        "code": grpc.StatusCode.RESOURCE_EXHAUSTED.value[0],
        "message": "local_rate_limited",
    }
    assert {r.status for r in replies} <= {200, 429}


def test_the_main_edge_is_not_limited_by_the_dedicated_one(rest: RestClient) -> None:
    assert all(rest.request("GET", "/v1/jwks").status == 200 for _ in range(BURST * 3))
