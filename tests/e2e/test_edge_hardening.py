"""The edge against odd requests, with clients Alea did not write: oversized headers, paths
that try to reach another route, unrouted gRPC streams, HTTP/2 bodies over the limit (the
``h2`` library), reflection (``buf curl``), the JWKS (``jwcrypto``, PyJWT) and the OpenAPI
document the edge serves.
"""

from __future__ import annotations

import json
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import grpc
import h2.config
import h2.connection
import h2.events
import h2.exceptions
import jwt
import pytest
from alea.identity.v1 import identity_pb2, identity_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2
from jwcrypto import jwk, jws

from services.cli.edge_client import RestClient, edge_channel
from services.cli.mesh_envoy import OPENAPI_DOCUMENT, EdgeSettings
from services.runtime.reflection import EDGE_SERVICES_HEADER, REFLECTION_SERVICES
from tests.e2e.conftest import Tenants
from tests.support.mesh import Mesh

pytestmark = pytest.mark.integration

INVALID_ARGUMENT = grpc.StatusCode.INVALID_ARGUMENT.value[0]
BUF = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "buf"


def _field_violations(body: dict) -> list[str]:
    return [v["field"] for d in body.get("details", []) for v in d.get("fieldViolations", [])]


# --- oversized headers: 431 or a specific refusal, never 429 ------------------------------


def test_headers_over_the_edge_limit_are_431_with_a_json_status(rest: RestClient) -> None:
    limit = EdgeSettings.max_request_headers_kb
    reply = rest.request("GET", "/v1/jwks", headers={"x-padding": "a" * (limit * 1024 + 1)})
    assert reply.status == 431, reply.text
    assert reply.body["code"] == INVALID_ARGUMENT
    assert f"{limit} KiB" in reply.body["message"]


def test_a_long_path_under_the_limit_is_400_naming_the_field(rest: RestClient, tenants) -> None:
    reply = rest.request("GET", "/v1/users/" + "a" * 50_000, headers=tenants.a.headers)
    assert reply.status == 400, reply.text[:300]
    assert "user_id" in _field_violations(reply.body)


def test_a_long_token_is_unauthenticated_over_rest_and_grpc(
    rest: RestClient, identity: identity_pb2_grpc.IdentityServiceStub, tenants: Tenants
) -> None:
    token = {"authorization": "Bearer " + "a" * 50_000}
    reply = rest.request("GET", f"/v1/users/{tenants.a.user_id}", headers=token)
    with pytest.raises(grpc.RpcError) as caught:
        identity.GetUser(
            identity_pb2.GetUserRequest(user_id=tenants.a.user_id),
            metadata=tuple(token.items()),
            timeout=30,
        )
    assert reply.status == 401, reply.text[:300]
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED


# --- paths: normalised before routing, escaped slashes refused -----------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/v1//users/..%2F",
        "/v1/users/%2F",
        "/v1/users/..%5Cjwks",
        "/v1/jwks/..%2f..%2falea.identity.v1.IdentityService/VerifyApiKey",
    ],
)
def test_escaped_slashes_are_400_with_a_message(rest: RestClient, path: str) -> None:
    reply = rest.request("GET", path)
    assert reply.status == 400, reply.text
    assert reply.body == {
        "code": INVALID_ARGUMENT,
        "message": "the path has an escaped slash or backslash, or cannot be normalised",
    }


@pytest.mark.parametrize("path", ["/v1//jwks", "/v1/users/../jwks", "/v1/%2e%2e/v1/./jwks"])
def test_equivalent_spellings_reach_the_same_route(rest: RestClient, path: str) -> None:
    plain = rest.request("GET", "/v1/jwks")
    reply = rest.request("GET", path)
    assert (reply.status, reply.body) == (plain.status, plain.body)


@pytest.mark.parametrize(
    "path",
    [
        "/v1/jwks/../../alea.identity.v1.IdentityService/VerifyApiKey",
        "/v1/users/..//alea.identity.v1.IdentityService/ReserveTrials",
        "//alea.identity.v1.IdentityService/VerifyApiKey",
    ],
)
def test_dot_segments_cannot_reach_an_internal_rpc(rest: RestClient, path: str) -> None:
    assert rest.request("POST", path, {"secret": "x"}).status == 404
    grpc_like = rest.request(
        "POST", path, raw=b"\x00\x00\x00\x00\x00", headers={"content-type": "application/grpc"}
    )
    assert grpc_like.headers.get("grpc-status") == "12", grpc_like.headers  # UNIMPLEMENTED


# --- HTTP/2: a body over the limit gets the documented 400 --------------------------------


def _h2_post(mesh: Mesh, path: str, size: int) -> list[h2.events.Event]:
    """POST ``size`` bytes over raw HTTP/2 as fast as flow control allows; the server's events."""
    context = ssl.create_default_context(cafile=str(mesh.pki / "ca.crt"))
    context.load_cert_chain(str(mesh.pki / "client.crt"), str(mesh.pki / "client.key"))
    context.set_alpn_protocols(["h2"])
    raw = socket.create_connection(("127.0.0.1", mesh.layout.edge_port), timeout=30)
    sock = context.wrap_socket(raw, server_hostname="localhost")
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    headers = [(":method", "POST"), (":path", path), (":scheme", "https")]
    headers += [(":authority", "localhost"), ("content-type", "application/json")]
    conn.send_headers(1, [*headers, ("content-length", str(size))])
    events: list[h2.events.Event] = []
    sent, chunk, sending = 0, b"A" * 16384, True
    sock.settimeout(0.05)
    with sock:
        while not any(
            isinstance(e, (h2.events.StreamReset, h2.events.StreamEnded)) for e in events
        ):
            room = min(conn.local_flow_control_window(1), len(chunk), size - sent)
            if sending and room > 0:
                try:
                    conn.send_data(1, chunk[:room])
                    sent += room
                except h2.exceptions.StreamClosedError:
                    sending = False
            sock.sendall(conn.data_to_send())
            try:
                data = sock.recv(65536)
            except TimeoutError:
                continue
            if not data:
                break
            events += conn.receive_data(data)
        sock.sendall(conn.data_to_send())
    return events


def test_oversized_body_over_http2_is_the_documented_400(mesh: Mesh) -> None:
    limit = EdgeSettings.max_request_bytes
    events = _h2_post(mesh, "/v1/models", limit + 4 * 1024 * 1024)
    (response,) = [e for e in events if isinstance(e, h2.events.ResponseReceived)]
    body = b"".join(e.data for e in events if isinstance(e, h2.events.DataReceived))
    resets = [e.error_code for e in events if isinstance(e, h2.events.StreamReset)]
    assert dict(response.headers)[b":status"] == b"400"
    assert json.loads(body) == {
        "code": INVALID_ARGUMENT,
        "message": f"request body larger than {limit} bytes",
    }
    # The stream ends after the whole reply; a reset that follows only stops the upload.
    assert resets in ([], [0])


# --- gRPC: unrouted streams fail at once, reflection describes every routed service --------


@pytest.mark.parametrize(
    "method",
    [
        "/alea.simulation.v1.SimulationService/NoSuchMethod",
        "/alea.identity.v1.IdentityService/VerifyApiKey",
        "/no.such.Service/Method",
    ],
)
def test_unrouted_streams_are_unimplemented_at_once(mesh: Mesh, method: str) -> None:
    never_ends = threading.Event()

    def requests() -> Iterator[bytes]:
        yield b""
        never_ends.wait(60)

    with edge_channel(mesh.edge_address, mesh.pki) as channel:
        call = channel.stream_stream(method, lambda b: b, lambda b: b)
        with pytest.raises(grpc.RpcError) as caught:
            list(call(requests(), timeout=20))
    never_ends.set()
    # Before the fix this waited for the stream idle timeout (300 s) and hit the deadline.
    assert caught.value.code() == grpc.StatusCode.UNIMPLEMENTED


def _reflect(channel: grpc.Channel, version: str, *requests, metadata=()) -> list:
    call = channel.stream_stream(
        f"/grpc.reflection.{version}.ServerReflection/ServerReflectionInfo",
        reflection_pb2.ServerReflectionRequest.SerializeToString,
        reflection_pb2.ServerReflectionResponse.FromString,
    )
    return list(call(iter(requests), metadata=metadata, timeout=30))


def _listed(channel: grpc.Channel, version: str, metadata=()) -> set[str]:
    (reply,) = _reflect(
        channel,
        version,
        reflection_pb2.ServerReflectionRequest(list_services=""),
        metadata=metadata,
    )
    return {s.name for s in reply.list_services_response.service}


@pytest.mark.parametrize("version", ["v1", "v1alpha"])
def test_reflection_through_the_edge_describes_every_routed_service(
    mesh: Mesh, version: str
) -> None:
    routed = {f"alea.{name}.v1.{name.capitalize()}Service" for name in mesh.layout.services} | set(
        REFLECTION_SERVICES
    )
    with mesh.channel() as channel:
        listed = _listed(channel, version)
        replies = _reflect(
            channel,
            version,
            *(reflection_pb2.ServerReflectionRequest(file_containing_symbol=s) for s in listed),
        )
    assert listed == routed
    assert all(r.HasField("file_descriptor_response") for r in replies), replies


def test_buf_curl_lists_and_calls_through_reflection(mesh: Mesh) -> None:
    tls = [f"--cacert={mesh.pki / 'ca.crt'}", f"--cert={mesh.pki / 'client.crt'}"]
    tls += [f"--key={mesh.pki / 'client.key'}", "--protocol=grpc"]
    url = f"https://localhost:{mesh.layout.edge_port}"
    listed = subprocess.run(
        [str(BUF), "curl", *tls, "--list-methods", url],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.split()
    called = subprocess.run(
        [str(BUF), "curl", *tls, f"{url}/alea.identity.v1.IdentityService/GetJwks"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    assert "alea.simulation.v1.SimulationService/WatchSimulation" in listed
    assert "alea.files.v1.FilesService/Download" in listed
    assert json.loads(called)["keys"][0]["kty"] == "OKP"


def test_a_client_cannot_widen_a_services_own_reflection(mesh: Mesh) -> None:
    # The edge's header counts only from the edge: a peer service sending it sees identity's own.
    address = f"localhost:{mesh.layout.services['identity']}"
    header = ((EDGE_SERVICES_HEADER, "alea.files.v1.FilesService"),)
    with edge_channel(address, mesh.pki, "files") as channel:
        listed = _listed(channel, "v1", metadata=header)
    assert "alea.identity.v1.IdentityService" in listed
    assert "alea.files.v1.FilesService" not in listed


# --- the JWKS, read by independent JOSE libraries ------------------------------------------


@pytest.mark.parametrize("path", ["/.well-known/jwks.json", "/v1/jwks"])
def test_jwks_is_a_clean_rfc_7517_document(rest: RestClient, tenants: Tenants, path: str) -> None:
    reply = rest.request("GET", path)
    assert reply.status == 200, reply.text
    for key in reply.body["keys"]:
        assert key["kty"] == "OKP" and key["crv"] == "Ed25519"
        assert not {"y", "n", "e"} & key.keys(), key  # RFC 8037: an OKP key has none of them
        assert all(value != "" for value in key.values()), key
    keyset = jwk.JWKSet.from_json(json.dumps(reply.body))  # raises on an invalid member
    token = jws.JWS()
    token.deserialize(tenants.a.token)
    kid = jwt.get_unverified_header(tenants.a.token)["kid"]
    token.verify(keyset.get_key(kid))
    assert jwt.PyJWKSet.from_dict(reply.body)[kid].algorithm_name == "EdDSA"


# --- the OpenAPI document ------------------------------------------------------------------


def test_openapi_document_is_served_and_names_every_routed_rest_binding(
    rest: RestClient, mesh: Mesh
) -> None:
    reply = rest.request("GET", "/openapi.json")
    assert reply.status == 200
    assert reply.headers["content-type"] == "application/json"
    assert reply.body == json.loads(OPENAPI_DOCUMENT.read_text())
    tags = {f"{name.capitalize()}Service" for name in mesh.layout.services}
    operations = [
        (verb, path)
        for path, item in reply.body["paths"].items()
        for verb, op in item.items()
        if op["tags"][0] in tags
    ]
    assert ("get", "/v1/simulations/{simulation_id}:watch") in operations
    assert ("get", "/.well-known/jwks.json") in operations
    assert len(operations) >= 30


def test_headers_that_cannot_be_grpc_metadata_are_dropped(rest: RestClient, tenants) -> None:
    # Valid HTTP/1.1, invalid gRPC metadata: before, the service refused the call as INTERNAL.
    odd = {"%zk4k+": "x", "a|b": "y", "x-latin": "caf\xe9"}
    reply = rest.request(
        "GET", f"/v1/users/{tenants.a.user_id}", headers={**tenants.a.headers, **odd}
    )
    assert reply.status == 200, reply.text
