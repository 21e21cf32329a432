"""Clients of the Envoy edge: a native gRPC channel and a REST (JSON over HTTPS) client.

Both present a client certificate from the mesh PKI (``client`` by default) and trust only
the mesh CA; REST uses only the standard library (``http.client`` + ``ssl``).
"""

from __future__ import annotations

import http.client
import json
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from services.runtime.clients import channel_credentials

__all__ = ["RestClient", "RestReply", "edge_channel", "ssl_context"]


def edge_channel(address: str, pki: Path, identity: str = "client") -> grpc.Channel:
    """A TLS channel to ``address`` with ``<identity>.crt``/``.key`` as client certificate.

    It accepts replies as large as the services send (a model of 100,000 inputs describes
    each of them: ~5 MB, beyond gRPC's default 4 MiB).
    """
    options = (("grpc.max_receive_message_length", 64 * 1024 * 1024),)
    return grpc.secure_channel(address, channel_credentials(pki, identity), options)


def ssl_context(ca: Path, cert: Path | None, key: Path | None) -> ssl.SSLContext:
    """A client TLS context trusting ``ca`` and presenting ``cert``/``key`` when given."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(ca))
    if cert is not None:
        context.load_cert_chain(str(cert), str(key) if key else None)
    return context


@dataclass(frozen=True)
class RestReply:
    """An HTTP reply: status, headers (lower-case names) and the body, parsed if JSON."""

    status: int
    headers: dict[str, str]
    body: Any

    @property
    def text(self) -> str:
        """The body as text (JSON re-encoded), for messages."""
        return self.body if isinstance(self.body, str) else json.dumps(self.body)


class RestClient:
    """JSON over HTTPS to the edge, one persistent connection (not thread-safe)."""

    def __init__(self, host: str, port: int, context: ssl.SSLContext, timeout: float = 30.0):
        self._connection = http.client.HTTPSConnection(host, port, context=context, timeout=timeout)

    @classmethod
    def for_pki(cls, host: str, port: int, pki: Path, identity: str = "client") -> RestClient:
        """A client presenting the PKI's ``<identity>`` certificate."""
        context = ssl_context(pki / "ca.crt", pki / f"{identity}.crt", pki / f"{identity}.key")
        return cls(host, port, context)

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        headers: dict[str, str] | None = None,
        *,
        raw: bytes | None = None,
    ) -> RestReply:
        """Send ``body`` as JSON (or ``raw`` bytes as they are) and read the whole reply."""
        data = raw if raw is not None else None if body is None else json.dumps(body).encode()
        all_headers = {"content-type": "application/json", **(headers or {})}
        self._connection.request(method, path, body=data, headers=all_headers)
        response = self._connection.getresponse()
        payload = response.read().decode(errors="replace")
        reply_headers = {k.lower(): v for k, v in response.getheaders()}
        parsed: Any = payload
        if "json" in reply_headers.get("content-type", "") and payload:
            try:
                parsed = json.loads(payload)
            except ValueError:
                parsed = payload
        return RestReply(response.status, reply_headers, parsed)

    def close(self) -> None:
        """Close the connection."""
        self._connection.close()
