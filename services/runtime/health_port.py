"""The plaintext health port, shared by gRPC health checks and a Prometheus scrape.

Kubernetes' native gRPC probes and ``alea status`` speak gRPC (HTTP/2) to the health port;
Prometheus scrapes ``GET /metrics`` (HTTP/1.1) on the same port. A connection is told apart
by its first bytes: an HTTP/1.1 request is answered here from the metrics registry, and
anything else (the HTTP/2 preface of gRPC) is relayed to the gRPC health server, which
listens on loopback only.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

__all__ = ["HealthPort"]

_HTTP_METHODS = (b"GET ", b"HEAD")
_MAX_HEADER_BYTES = 16 * 1024


class HealthPort:
    """Listens on ``port`` (0: any free one, see :attr:`port`) and relays gRPC to
    ``127.0.0.1:grpc_port``."""

    def __init__(self, port: int, grpc_port: int) -> None:
        self.grpc_port = grpc_port
        if socket.has_dualstack_ipv6():
            self._socket = socket.create_server(
                ("::", port), family=socket.AF_INET6, dualstack_ipv6=True
            )
        else:  # no IPv6 here (some containers): IPv4 only
            self._socket = socket.create_server(("0.0.0.0", port))
        self.port: int = self._socket.getsockname()[1]
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._connection, sock=self._socket)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            first = await reader.readexactly(4)
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()
            return
        try:
            if first in _HTTP_METHODS:
                await self._http(first, reader, writer)
            else:
                await self._relay(first, reader, writer)
        except ConnectionError:
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _http(
        self, first: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        try:
            head = first + await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            return
        if len(head) > _MAX_HEADER_BYTES:
            return
        method, path = head.split(b" ", 2)[:2]
        if path.split(b"?", 1)[0] == b"/metrics":
            body = generate_latest(REGISTRY)
            status, content_type = b"200 OK", CONTENT_TYPE_LATEST.encode()
        else:
            body = b"not found: the health port serves gRPC health and GET /metrics\n"
            status, content_type = b"404 Not Found", b"text/plain; charset=utf-8"
        headers = [
            b"HTTP/1.1 " + status,
            b"Content-Type: " + content_type,
            b"Content-Length: " + str(len(body)).encode(),
            b"Connection: close",
        ]
        writer.write(b"\r\n".join(headers) + b"\r\n\r\n" + (b"" if method == b"HEAD" else body))
        await writer.drain()

    async def _relay(
        self, first: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection(
            "127.0.0.1", self.grpc_port
        )
        upstream_writer.write(first)

        async def pump(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError):
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            with contextlib.suppress(ConnectionError, OSError):
                sink.write_eof()

        try:
            await asyncio.gather(pump(reader, upstream_writer), pump(upstream_reader, writer))
        finally:
            upstream_writer.close()
