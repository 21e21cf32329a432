"""Per-RPC context visible to handlers and domain code: the principal and the request id."""

from __future__ import annotations

import contextvars
from dataclasses import dataclass
from typing import Any

import grpc

from services.runtime.errors import Unauthenticated

__all__ = [
    "Principal",
    "ServicerContext",
    "current_principal",
    "forwarded_credentials",
    "principal_var",
    "request_id_var",
]

ServicerContext = grpc.aio.ServicerContext[Any, Any]
"""The gRPC context every handler receives (its request and response types vary)."""

# The metadata that carries a user's credentials, forwarded when a service acts on their
# behalf towards another (simulation reading a workbook, admin disabling a user).
_CREDENTIALS = ("authorization", "x-api-key")


@dataclass(frozen=True)
class Principal:
    """Who is calling: a user (by JWT or API key) or, for internal RPCs, a peer service.

    ``role`` is ``viewer``/``analyst``/``admin`` for users and empty for services;
    ``service`` is the peer's name for service principals and empty for users;
    ``platform`` marks a platform operator (an admin the platform named at start-up), who
    may read every tenant's audit log, usage and settings.
    """

    user_id: str = ""
    tenant_id: str = ""
    role: str = ""
    service: str = ""
    api_key_id: str = ""
    platform: bool = False

    @property
    def is_service(self) -> bool:
        return bool(self.service) and not self.user_id


principal_var: contextvars.ContextVar[Principal | None] = contextvars.ContextVar(
    "alea_principal", default=None
)
request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("alea_request_id", default="")


def current_principal() -> Principal:
    """The caller of the RPC being handled; raises Unauthenticated outside an authenticated RPC."""
    principal = principal_var.get()
    if principal is None:
        raise Unauthenticated("no authenticated caller")
    return principal


def forwarded_credentials(context: ServicerContext) -> tuple[tuple[str, str], ...]:
    """The caller's own credentials (from a servicer context), to act on their behalf
    towards another service."""
    metadata = context.invocation_metadata() or ()
    return tuple((k, v) for k, v in metadata if k in _CREDENTIALS and isinstance(v, str))
