"""mTLS channels for service-to-service calls, using the calling service's own certificate.

Every channel carries the OpenTelemetry client interceptors: each call is a client span,
and the W3C ``traceparent`` of the current span travels in its metadata, so the callee's
server span joins the caller's trace.
"""

from __future__ import annotations

from pathlib import Path

import grpc
from opentelemetry.instrumentation.grpc import aio_client_interceptors

__all__ = ["channel_credentials", "secure_channel"]

# Every certificate of the development PKI carries DNS ``localhost``; the name a client
# checks is therefore "signed by the platform CA", while *who* the server is rests on
# its SPIFFE URI and the server-side peer check. Without the override a Kubernetes
# address such as ``identity:50051`` would fail hostname verification.
TLS_SERVER_NAME = "localhost"
_OPTIONS = (
    ("grpc.ssl_target_name_override", TLS_SERVER_NAME),
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
)


def channel_credentials(pki_dir: Path, identity: str) -> grpc.ChannelCredentials:
    """Client credentials presenting ``<identity>.crt`` and trusting ``ca.crt``."""
    return grpc.ssl_channel_credentials(
        root_certificates=(pki_dir / "ca.crt").read_bytes(),
        private_key=(pki_dir / f"{identity}.key").read_bytes(),
        certificate_chain=(pki_dir / f"{identity}.crt").read_bytes(),
    )


def secure_channel(address: str, pki_dir: Path, identity: str) -> grpc.aio.Channel:
    """An mTLS ``grpc.aio`` channel to ``address`` as ``spiffe://alea/<identity>``."""
    return grpc.aio.secure_channel(
        address,
        channel_credentials(pki_dir, identity),
        _OPTIONS,
        interceptors=aio_client_interceptors(),
    )
