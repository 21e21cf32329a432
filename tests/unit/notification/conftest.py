"""Fixtures of notification's unit tests: a migrated SQLite store, a scripted HTTP receiver on
127.0.0.1, and a connector that fails the test if asked to connect anywhere else."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from services.notification.app import MIGRATIONS
from services.notification.store import NotificationStore
from services.runtime.db import Database
from services.runtime.outbox import Outbox


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[NotificationStore]:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'notification.db'}", MIGRATIONS)
    await db.open()
    yield NotificationStore(db, Outbox())
    await db.close()


class LoopbackOnly:
    """A connector that opens plain TCP to 127.0.0.1 only; any other address fails the
    test before a packet is sent."""

    def __init__(self) -> None:
        self.addresses: list[str] = []

    async def __call__(self, address, port, tls, server_name):
        self.addresses.append(address)
        if address != "127.0.0.1":
            pytest.fail(f"asked to connect to {address}:{port}: only 127.0.0.1 is allowed")
        return await asyncio.open_connection(address, port)


@pytest.fixture
def connector() -> LoopbackOnly:
    return LoopbackOnly()


@dataclass
class Receiver:
    """An HTTP/1.1 endpoint on 127.0.0.1 answering each request with the next scripted
    (status, extra headers, body), the last one repeated; keeps what it received and counts
    the connections it accepted. Connections stay open for further requests (keep-alive)
    unless the request says ``Connection: close``; with ``close_after``, a connection that
    gave that many answers reads the next request and closes unanswered (a server ending
    an idle connection just as a request arrives)."""

    script: list[tuple[int, dict[str, str], bytes]] = field(
        default_factory=lambda: [(204, {}, b"")]
    )
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    port: int = 0
    connections: int = 0
    close_after: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        answered = 0
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except asyncio.IncompleteReadError:  # the client closed it
                    return
                lines = head.decode().split("\r\n")
                headers = {
                    k.lower(): v.strip()
                    for k, _, v in (line.partition(":") for line in lines[1:] if line)
                }
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                self.received.append((headers, body))
                if answered == self.close_after > 0:
                    return
                status, extra, answer = self.script[min(len(self.received), len(self.script)) - 1]
                extra_lines = "".join(f"{k}: {v}\r\n" for k, v in extra.items())
                head_out = f"HTTP/1.1 {status} X\r\nContent-Length: {len(answer)}\r\n{extra_lines}"
                writer.write(f"{head_out}\r\n".encode() + answer)
                await writer.drain()
                answered += 1
                if headers.get("connection") == "close":
                    return
        finally:
            writer.close()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    endpoint = Receiver()
    server = await asyncio.start_server(endpoint.handle, "127.0.0.1", 0)
    endpoint.port = server.sockets[0].getsockname()[1]
    yield endpoint
    server.close()
    await server.wait_closed()
