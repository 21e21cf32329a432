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
    "principal_var",
    "request_id_var",
]

ServicerContext = grpc.aio.ServicerContext[Any, Any]
"""The gRPC context every handler receives (its request and response types vary)."""


@dataclass(frozen=True)
class Principal:
    """Who is calling: a user (by JWT or API key) or, for internal RPCs, a peer service.

    ``role`` is ``viewer``/``analyst``/``admin`` for users and empty for services;
    ``service`` is the peer's name for service principals and empty for users.
    """

    user_id: str = ""
    tenant_id: str = ""
    role: str = ""
    service: str = ""
    api_key_id: str = ""

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
