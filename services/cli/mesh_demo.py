"""``alea demo``: a sequence of small steps through the edge, over native gRPC and REST.

Each step is a function ``step(demo) -> str`` that does one thing and returns what it did;
a feature appends its own steps to :data:`STEPS`, naming the service they need (skipped
when that service is not running). Steps share state on :class:`Demo`.
"""

from __future__ import annotations

import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NoReturn

import grpc
from alea.access.v1 import access_pb2
from alea.identity.v1 import identity_pb2, identity_pb2_grpc

from services.cli.admin import DEMO_AUDIT
from services.cli.edge_client import RestClient, edge_channel
from services.cli.events import DEMO_AFTER, DEMO_BEFORE
from services.cli.mesh_procs import MeshLayout
from services.cli.simulate import DEMO_STEPS
from services.cli.usage import DEMO_USAGE

__all__ = ["STEPS", "Demo", "DemoError", "StepSkipped", "run"]

DEMO_PASSWORD = "correct horse battery staple"


class DemoError(RuntimeError):
    """A demo step got an answer it did not expect."""


class StepSkipped(Exception):
    """A step this deployment cannot run (the message says why); the demo goes on."""


@dataclass
class Demo:
    """What the steps share: the two clients and what earlier steps learned."""

    layout: MeshLayout
    channel: grpc.Channel
    rest: RestClient
    suffix: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    state: dict[str, Any] = field(default_factory=dict)

    @property
    def identity(self) -> identity_pb2_grpc.IdentityServiceStub:
        return identity_pb2_grpc.IdentityServiceStub(self.channel)

    def skip(self, reason: str) -> NoReturn:
        """Leave the current step: this deployment cannot run it, for ``reason``."""
        raise StepSkipped(reason)

    def grpc_auth(self) -> tuple[tuple[str, str], ...]:
        """gRPC metadata carrying the access token from the gRPC login."""
        return (("authorization", f"Bearer {self.state['grpc_token']}"),)

    def rest_auth(self) -> dict[str, str]:
        """HTTP headers carrying the access token from the REST login."""
        return {"authorization": f"Bearer {self.state['rest_token']}"}

    def rest_call(self, method: str, path: str, body: Any = None, auth: bool = True) -> Any:
        """A REST call that must succeed; returns the JSON body."""
        reply = self.rest.request(method, path, body, self.rest_auth() if auth else None)
        if reply.status != 200:
            raise DemoError(f"{method} {path} -> HTTP {reply.status}: {reply.text}")
        return reply.body


def grpc_register(demo: Demo) -> str:
    reply = demo.identity.Register(
        identity_pb2.RegisterRequest(
            tenant_display_name=f"Demo gRPC {demo.suffix}",
            email=f"grpc-{demo.suffix}@example.com",
            password=DEMO_PASSWORD,
            display_name="Ada (gRPC)",
            request_id=str(uuid.uuid4()),
        ),
        timeout=30,
    )
    demo.state["grpc_user"] = reply.user.id
    return f"Register: tenant {reply.tenant.id}, admin {reply.user.email}"


def grpc_login(demo: Demo) -> str:
    reply = demo.identity.Login(
        identity_pb2.LoginRequest(email=f"grpc-{demo.suffix}@example.com", password=DEMO_PASSWORD),
        timeout=30,
    )
    demo.state["grpc_token"] = reply.tokens.access_token
    return f"Login: {reply.tokens.token_type} token, expires in {reply.tokens.expires_in}s"


def grpc_get_user(demo: Demo) -> str:
    user = demo.identity.GetUser(
        identity_pb2.GetUserRequest(user_id=demo.state["grpc_user"]),
        metadata=demo.grpc_auth(),
        timeout=30,
    )
    role = access_pb2.Role.Name(user.role)
    return f"GetUser: {user.display_name} <{user.email}>, role {role}"


def grpc_list_users(demo: Demo) -> str:
    reply = demo.identity.ListUsers(
        identity_pb2.ListUsersRequest(page_size=10), metadata=demo.grpc_auth(), timeout=30
    )
    return f"ListUsers: {len(reply.users)} user(s) in the tenant"


def rest_register(demo: Demo) -> str:
    body = demo.rest_call(
        "POST",
        "/v1/auth:register",
        {
            "tenantDisplayName": f"Demo REST {demo.suffix}",
            "email": f"rest-{demo.suffix}@example.com",
            "password": DEMO_PASSWORD,
            "displayName": "Grace (REST)",
            "requestId": str(uuid.uuid4()),
        },
        auth=False,
    )
    demo.state["rest_user"] = body["user"]["id"]
    return f"POST /v1/auth:register: tenant {body['tenant']['id']}, admin {body['user']['email']}"


def rest_login(demo: Demo) -> str:
    credentials = {"email": f"rest-{demo.suffix}@example.com", "password": DEMO_PASSWORD}
    body = demo.rest_call("POST", "/v1/auth:login", credentials, auth=False)
    demo.state["rest_token"] = body["tokens"]["accessToken"]
    return f"POST /v1/auth:login: token expires in {body['tokens']['expiresIn']}s"


def rest_get_user(demo: Demo) -> str:
    body = demo.rest_call("GET", f"/v1/users/{demo.state['rest_user']}")
    return f"GET /v1/users/{{id}}: {body['displayName']} <{body['email']}>, role {body['role']}"


def rest_list_users(demo: Demo) -> str:
    body = demo.rest_call("GET", "/v1/users?pageSize=10")
    return f"GET /v1/users: {len(body.get('users', []))} user(s) in the tenant"


Step = Callable[[Demo], str]
# (service the step needs, transport, step); steps of a service the mesh does not run are skipped.
STEPS: list[tuple[str, str, Step]] = [
    ("identity", "grpc", grpc_register),
    ("identity", "grpc", grpc_login),
    ("identity", "grpc", grpc_get_user),
    ("identity", "grpc", grpc_list_users),
    ("identity", "rest", rest_register),
    ("identity", "rest", rest_login),
    ("identity", "rest", rest_get_user),
    ("identity", "rest", rest_list_users),
    *[("notification", transport, step) for transport, step in DEMO_BEFORE],
    *[("simulation", transport, step) for transport, step in DEMO_STEPS],
    *[("notification", transport, step) for transport, step in DEMO_AFTER],
    *[("admin", transport, step) for transport, step in DEMO_AUDIT],
    *[("analytics", transport, step) for transport, step in DEMO_USAGE],
]


def run(layout: MeshLayout) -> int:
    """Run every step against the edge of ``layout``, printing each; 0 if all succeeded."""
    address = f"localhost:{layout.edge_port}"
    print(f"demo through the edge at {address} (mTLS client certificate {layout.pki}/client.crt)")
    demo = Demo(
        layout,
        edge_channel(address, layout.pki),
        RestClient.for_pki("localhost", layout.edge_port, layout.pki),
    )
    skipped = 0
    try:
        for service, transport, step in STEPS:
            if service not in layout.services:
                print(f"  [{transport:4}] {step.__name__} skipped: {service} is not running")
                skipped += 1
                continue
            started = time.perf_counter()
            try:
                what = step(demo)
            except StepSkipped as exc:
                print(f"  [{transport:4}] {step.__name__} skipped: {exc}")
                skipped += 1
                continue
            except (grpc.RpcError, DemoError, OSError) as exc:
                detail = (
                    f"{exc.code().name}: {exc.details()}"
                    if isinstance(exc, grpc.RpcError)
                    else str(exc)
                )
                print(f"  [{transport:4}] {step.__name__} FAILED: {detail}", file=sys.stderr)
                return 1
            print(f"  [{transport:4}] {what}  ({(time.perf_counter() - started) * 1000:.0f} ms)")
    finally:
        demo.channel.close()
        demo.rest.close()
    print(f"demo finished: {len(STEPS) - skipped} steps succeeded, {skipped} skipped")
    return 0
