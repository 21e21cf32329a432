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
import errno
import socket

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

__all__ = ["EVERY_INTERFACE", "HealthPort", "listening_sockets"]

EVERY_INTERFACE = ("0.0.0.0", "::")

_HTTP_METHODS = (b"GET ", b"HEAD")
_MAX_HEADER_BYTES = 16 * 1024


class HealthPort:
    """Listens on ``host:port`` (port 0: any free one, see :attr:`port`) and relays gRPC to
    ``127.0.0.1:grpc_port``. ``host`` is ``ALEA_LISTEN_ADDRESS``: ``localhost`` (both
    loopback addresses), ``0.0.0.0`` or ``::`` (every interface), or one address."""

    def __init__(self, host: str, port: int, grpc_port: int) -> None:
        self.grpc_port = grpc_port
        self._sockets = listening_sockets(host, port)
        self.port: int = self._sockets[0].getsockname()[1]
        self._servers: list[asyncio.Server] = []

    async def start(self) -> None:
        for sock in self._sockets:
            self._servers.append(await asyncio.start_server(self._connection, sock=sock))

    async def stop(self) -> None:
        for server in self._servers:
            server.close()
            await server.wait_closed()

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


def listening_sockets(host: str, port: int) -> list[socket.socket]:
    """Listening TCP sockets for ``host:port``, all on one port (the first one's, for 0)."""
    if host in EVERY_INTERFACE:
        if socket.has_dualstack_ipv6():
            return [socket.create_server(("::", port), family=socket.AF_INET6, dualstack_ipv6=True)]
        return [socket.create_server(("0.0.0.0", port))]  # no IPv6 here (some containers)
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    sockets: list[socket.socket] = []
    for family, _, _, _, address in dict.fromkeys(infos):
        bound = sockets[0].getsockname()[1] if sockets else port
        try:
            sockets.append(socket.create_server((address[0], bound), family=family))
        except OSError as exc:
            # ::1 where the kernel has no IPv6 (some containers): the other addresses do.
            if exc.errno not in (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT):
                raise
    if not sockets:
        raise OSError(errno.EADDRNOTAVAIL, f"cannot listen on {host}:{port}")
    return sockets
