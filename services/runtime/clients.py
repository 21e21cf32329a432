"""mTLS channels presenting a certificate of the platform PKI (a service's own, or the
``client`` certificate of the CLI and tests). Services open theirs through
:class:`services.runtime.peers.Peers`, which adds tracing."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import grpc

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
    # A peer that was down (restarting, or started after us) is tried again within 2 s,
    # not after gRPC's default backoff of up to two minutes: calls to it fail fast until then.
    ("grpc.initial_reconnect_backoff_ms", 500),
    ("grpc.max_reconnect_backoff_ms", 2000),
)


def channel_credentials(pki_dir: Path, identity: str) -> grpc.ChannelCredentials:
    """Client credentials presenting ``<identity>.crt`` and trusting ``ca.crt``."""
    return grpc.ssl_channel_credentials(
        root_certificates=(pki_dir / "ca.crt").read_bytes(),
        private_key=(pki_dir / f"{identity}.key").read_bytes(),
        certificate_chain=(pki_dir / f"{identity}.crt").read_bytes(),
    )


def secure_channel(
    address: str,
    pki_dir: Path,
    identity: str,
    interceptors: Sequence[grpc.aio.ClientInterceptor] | None = None,
) -> grpc.aio.Channel:
    """An mTLS ``grpc.aio`` channel to ``address`` as ``spiffe://alea/<identity>``."""
    credentials = channel_credentials(pki_dir, identity)
    return grpc.aio.secure_channel(address, credentials, _OPTIONS, interceptors=interceptors)
