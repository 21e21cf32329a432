"""Where a webhook may be delivered: the SSRF guard, and the one HTTP POST that honours it.

A webhook URL is chosen by a tenant admin, so it must never make Alea reach inside its
own network. Before any connection the host is resolved and **every** address it
resolves to is checked: an address that is loopback, private, link-local (169.254.0.0/16
holds the cloud metadata service), multicast, reserved, unspecified, carrier-grade NAT,
or otherwise not globally routable, and the known metadata addresses, refuse the URL —
unless the address is inside the allowlist (``ALEA_NOTIFICATION_WEBHOOK_ALLOWLIST``, for
local development and tests). Plain ``http`` is accepted only when every address is on
the allowlist; anything else must be ``https``. The check runs when the webhook is
created and again at every delivery (DNS can change), and the connection then goes to
the very address that was checked (no second lookup a rebinding DNS could answer
differently), with TLS verified against the URL's host name.

:func:`post` sends one request with connect and read timeouts, never follows a redirect
(a 3xx is just the status), and reads at most :data:`MAX_RESPONSE_BYTES` of the answer.
Given :class:`Connections`, it keeps the connection open afterwards (HTTP/1.1 keep-alive)
for the next request to the **same checked target**: a connection is filed under the
scheme, host name (what TLS verified), port and the address it was opened to, and a later
request takes it only when its own check, made just before, yielded that very address.
The check still runs at every delivery; reuse never skips it nor goes elsewhere.
Both the resolver and the connector are parameters, so tests can prove that a refused
URL never opens a connection.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

import h11

from services.notification.config import Network

__all__ = [
    "MAX_RESPONSE_BYTES",
    "Connections",
    "Connector",
    "Guard",
    "Refused",
    "Resolver",
    "Response",
    "Target",
    "open_tcp",
    "post",
    "resolve",
]

MAX_RESPONSE_BYTES = 64 * 1024
IDLE_SECONDS = 4.0  # below the usual servers' keep-alive timeouts (Node's 5 s), so that
# an idle connection is seldom one the receiver is closing
IDLE_PER_TARGET = 16  # a round's concurrent deliveries to one receiver, mostly
IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[list[str]]]
"""(host, port) → the addresses it resolves to."""
Connector = Callable[
    [str, int, ssl.SSLContext | None, str | None],
    Awaitable[tuple[asyncio.StreamReader, asyncio.StreamWriter]],
]
"""(address, port, TLS context or None, TLS server name) → an open connection."""

_METADATA = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack, DigitalOcean
        "169.254.170.2",  # AWS ECS task metadata
        "168.63.129.16",  # Azure wire server (a public address)
        "100.100.100.200",  # Alibaba Cloud
        "fd00:ec2::254",  # AWS over IPv6
    )
)


class Refused(Exception):
    """The URL may not be delivered to; the message says why (no connection was made)."""


async def resolve(host: str, port: int) -> list[str]:
    """The system resolver: every address of ``host``."""
    infos = await asyncio.get_running_loop().getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
    )
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


async def open_tcp(
    address: str, port: int, tls: ssl.SSLContext | None, server_name: str | None
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """The real connector."""
    return await asyncio.open_connection(address, port, ssl=tls, server_hostname=server_name)


def _why_refused(address: IpAddress) -> str | None:
    mapped = getattr(address, "ipv4_mapped", None)
    if mapped is not None:
        return _why_refused(mapped)
    if address in _METADATA:
        return "a cloud metadata address"
    for label, flag in (
        ("unspecified", address.is_unspecified),
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("private", address.is_private),
        ("reserved", address.is_reserved),
    ):
        if flag:
            return f"a {label} address"
    if not address.is_global:
        return "not a public address"
    return None


@dataclass(frozen=True)
class Target:
    """A checked URL: where to connect (an address that passed), and how to ask."""

    scheme: str
    host: str
    port: int
    address: str
    path: str


@dataclass(frozen=True)
class Guard:
    """The SSRF policy: an allowlist, a resolver and a connector."""

    allowlist: tuple[Network, ...] = ()
    resolver: Resolver = resolve
    connector: Connector = open_tcp

    def _allowed(self, address: IpAddress) -> bool:
        return any(address in network for network in self.allowlist)

    async def check(self, url: str) -> Target:
        """The target of ``url``, or :class:`Refused` saying why (no connection made)."""
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https"):
            raise Refused("the URL must be https")
        if parts.username is not None or parts.password is not None:
            raise Refused("the URL must not carry credentials")
        host = parts.hostname or ""
        if not host:
            raise Refused("the URL has no host")
        try:
            port = parts.port or (443 if scheme == "https" else 80)
        except ValueError:
            raise Refused("the URL's port is not a number from 0 to 65535") from None
        try:
            literal: IpAddress | None = ipaddress.ip_address(host)
        except ValueError:
            literal = None
        if literal is not None:
            found = [literal]
        else:
            try:
                found = [ipaddress.ip_address(a) for a in await self.resolver(host, port)]
            except (OSError, ValueError) as exc:
                raise Refused(f"the host {host} does not resolve: {exc}") from None
        if not found:
            raise Refused(f"the host {host} does not resolve")
        for address in found:
            reason = _why_refused(address)
            if reason is not None and not self._allowed(address):
                raise Refused(f"the host {host} resolves to {address}, {reason}")
        if scheme == "http" and not all(self._allowed(a) for a in found):
            raise Refused("the URL must be https (http only to allowlisted addresses)")
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        return Target(scheme, host, port, str(found[0]), path)


@dataclass
class _Open:
    """A connection to a checked target and its HTTP/1.1 state."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    http: h11.Connection
    idle_since: float = 0.0


def _where(target: Target) -> tuple[str, str, int, str]:
    return (target.scheme, target.host, target.port, target.address)


class Connections:
    """Idle kept-alive connections, filed under the checked target they were opened to
    (see the module docstring); at most ``per_target`` each, closed after ``idle_seconds``."""

    def __init__(
        self, idle_seconds: float = IDLE_SECONDS, per_target: int = IDLE_PER_TARGET
    ) -> None:
        self.idle_seconds, self.per_target = idle_seconds, per_target
        self._idle: dict[tuple[str, str, int, str], list[_Open]] = {}

    def take(self, target: Target) -> _Open | None:
        """An idle connection to exactly ``target``'s scheme, host, port and address."""
        idle = self._idle.get(_where(target), [])
        while idle:
            found = idle.pop()
            fresh = time.monotonic() - found.idle_since < self.idle_seconds
            if fresh and not (found.writer.is_closing() or found.reader.at_eof()):
                return found
            found.writer.close()
        return None

    def give(self, target: Target, found: _Open) -> None:
        idle = self._idle.setdefault(_where(target), [])
        if len(idle) >= self.per_target:
            found.writer.close()
            return
        found.idle_since = time.monotonic()
        idle.append(found)

    def prune(self) -> None:
        """Close the connections idle for longer than ``idle_seconds``."""
        oldest = time.monotonic() - self.idle_seconds
        for where, idle in list(self._idle.items()):
            for found in [c for c in idle if c.idle_since < oldest]:
                idle.remove(found)
                found.writer.close()
            if not idle:
                del self._idle[where]

    def close(self) -> None:
        for idle in self._idle.values():
            for found in idle:
                found.writer.close()
        self._idle.clear()

    @property
    def idle(self) -> int:
        return sum(len(idle) for idle in self._idle.values())


class _Unanswered(ConnectionError):
    """The connection closed before a status line came back."""


@dataclass(frozen=True)
class Response:
    """What an endpoint answered: status, the first bytes of the body, the latency."""

    status: int
    body: bytes
    seconds: float


async def post(
    guard: Guard,
    target: Target,
    headers: Sequence[tuple[str, str]],
    body: bytes,
    *,
    connect_timeout: float,
    read_timeout: float,
    connections: Connections | None = None,
) -> Response:
    """POST ``body`` to a checked ``target``; raises OSError/TimeoutError/h11 errors when
    no complete status line comes back. Redirects are not followed. With ``connections``,
    an idle connection to the same target is used (and, should the receiver have closed
    it meanwhile, the request is sent again on a new one), and the connection is kept
    for the next request when the exchange leaves it reusable."""
    started = time.perf_counter()
    reused = connections.take(target) if connections is not None else None
    if reused is not None:
        try:
            return await _exchange(
                reused, target, headers, body, started, read_timeout, connections
            )
        except (_Unanswered, ConnectionResetError, BrokenPipeError):
            pass  # the receiver closed it (while idle, mostly): send again on a new one
    tls = ssl.create_default_context() if target.scheme == "https" else None
    reader, writer = await asyncio.wait_for(
        guard.connector(target.address, target.port, tls, target.host if tls else None),
        connect_timeout,
    )
    opened = _Open(reader, writer, h11.Connection(h11.CLIENT))
    return await _exchange(opened, target, headers, body, started, read_timeout, connections)


async def _exchange(
    opened: _Open,
    target: Target,
    headers: Sequence[tuple[str, str]],
    body: bytes,
    started: float,
    read_timeout: float,
    connections: Connections | None,
) -> Response:
    """One request and its response on ``opened``; the connection goes back to
    ``connections`` when both sides are done with this cycle, else it is closed."""
    kept = False
    try:
        async with asyncio.timeout(read_timeout):
            answer = await _request(opened, target, headers, body, started, connections is not None)
        http = opened.http
        if connections is not None and http.our_state is http.their_state is h11.DONE:
            http.start_next_cycle()
            connections.give(target, opened)
            kept = True
        return answer
    finally:
        if not kept:
            opened.writer.close()


async def _request(
    opened: _Open,
    target: Target,
    headers: Sequence[tuple[str, str]],
    body: bytes,
    started: float,
    keep_alive: bool,
) -> Response:
    reader, writer, connection = opened.reader, opened.writer, opened.http
    default_port = 443 if target.scheme == "https" else 80
    host = target.host if target.port == default_port else f"{target.host}:{target.port}"
    if ":" in target.host:
        host = f"[{target.host}]" + ("" if target.port == default_port else f":{target.port}")
    request = h11.Request(
        method="POST",
        target=target.path,
        headers=[
            ("Host", host),
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(body))),
            ("User-Agent", "Alea-Webhooks/1"),
            *(() if keep_alive else (("Connection", "close"),)),
            *headers,
        ],
    )
    writer.write(
        connection.send(request)
        + connection.send(h11.Data(data=body))
        + connection.send(h11.EndOfMessage())
    )
    await writer.drain()
    status = 0
    received = bytearray()
    while True:
        event = connection.next_event()
        if event is h11.NEED_DATA:
            chunk = await reader.read(16384)
            if not chunk and not status:
                raise _Unanswered("the endpoint closed the connection without answering")
            connection.receive_data(chunk)
            continue
        if isinstance(event, h11.Response):
            status = event.status_code
        elif isinstance(event, h11.Data):
            received += event.data[: MAX_RESPONSE_BYTES - len(received)]
            if len(received) >= MAX_RESPONSE_BYTES:
                break
        elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
            break
    return Response(status, bytes(received), time.perf_counter() - started)
