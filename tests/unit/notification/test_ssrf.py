"""The SSRF guard decides before any connection: refused URLs never reach the connector, which
would fail the test for any address but 127.0.0.1. Names resolve through an injected resolver,
so no DNS query leaves the machine either."""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress

import pytest

from services.notification.ssrf import Connections, Guard, Refused, post
from tests.unit.notification.conftest import LoopbackOnly, Receiver

ZONE = {
    "internal.example": ["10.1.2.3"],
    "metadata.example": ["169.254.169.254"],
    "mixed.example": ["93.184.215.14", "192.168.1.10"],
    "public.example": ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"],
    "rebinding.example": ["127.0.0.1"],
}
LOOPBACK = (ipaddress.ip_network("127.0.0.1/32"),)


async def fake_dns(host: str, port: int) -> list[str]:
    if host not in ZONE:
        raise OSError(f"no such host {host}")
    return ZONE[host]


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1:8080/hook", "loopback"),
        ("https://127.0.0.1/hook", "loopback"),
        ("https://localhost.:443/hook", "does not resolve"),
        ("https://10.0.0.1/hook", "private"),
        ("https://169.254.169.254/latest/meta-data", "metadata"),
        ("https://metadata.example/", "metadata"),
        ("https://internal.example/hook", "10.1.2.3, a private"),
        ("https://mixed.example/hook", "192.168.1.10"),
        ("https://[::1]/hook", "loopback"),
        ("https://[::ffff:127.0.0.1]/hook", "loopback"),
        ("https://[fd00:ec2::254]/", "metadata"),
        ("https://100.100.100.200/", "metadata"),
        ("https://100.64.0.1/", "not a public address"),
        ("https://0.0.0.0/", "unspecified"),
        ("https://224.0.0.1/", "multicast"),
        ("http://public.example/hook", "must be https"),
        ("https://user:pw@public.example/hook", "credentials"),
        ("ftp://public.example/hook", "must be https"),
    ],
)
async def test_refusals_are_decided_before_any_connection(url: str, reason: str) -> None:
    connector = LoopbackOnly()
    guard = Guard((), fake_dns, connector)
    with pytest.raises(Refused, match=reason):
        await guard.check(url)
    assert connector.addresses == []


async def test_a_public_host_is_pinned_to_the_address_that_was_checked() -> None:
    target = await Guard((), fake_dns, LoopbackOnly()).check("https://public.example:8443/a?b=1")
    assert (target.address, target.port, target.path, target.host) == (
        "93.184.215.14",
        8443,
        "/a?b=1",
        "public.example",
    )


async def test_the_allowlist_admits_loopback_and_plain_http_to_it(
    receiver: Receiver, connector: LoopbackOnly
) -> None:
    guard = Guard(LOOPBACK, fake_dns, connector)
    target = await guard.check(receiver.url)
    answer = await post(guard, target, [("x-test", "1")], b"{}", connect_timeout=5, read_timeout=5)
    assert answer.status == 204 and connector.addresses == ["127.0.0.1"]
    assert receiver.received[0][0]["x-test"] == "1"
    with pytest.raises(Refused, match=r"10\.1\.2\.3"):  # the allowlist is for what it lists only
        await guard.check("https://internal.example/hook")
    with pytest.raises(Refused, match="loopback"):  # a name resolving to loopback (rebinding)
        await Guard((), fake_dns, connector).check("https://rebinding.example/")


async def test_a_redirect_is_not_followed_and_the_body_is_capped(
    receiver: Receiver, connector: LoopbackOnly
) -> None:
    receiver.script = [(302, {"Location": "http://169.254.169.254/"}, b"x" * 200_000)]
    guard = Guard(LOOPBACK, fake_dns, connector)
    answer = await post(
        guard, await guard.check(receiver.url), [], b"{}", connect_timeout=5, read_timeout=5
    )
    assert answer.status == 302
    assert len(answer.body) == 64 * 1024
    assert connector.addresses == ["127.0.0.1"]


async def test_a_kept_connection_serves_the_same_checked_target_only(
    receiver: Receiver, connector: LoopbackOnly
) -> None:
    guard, connections = Guard(LOOPBACK, fake_dns, connector), Connections()
    for _ in range(3):
        target = await guard.check(receiver.url)
        answer = await post(
            guard, target, [], b"{}", connect_timeout=5, read_timeout=5, connections=connections
        )
        assert answer.status == 204
    assert (receiver.connections, len(receiver.received), connections.idle) == (1, 3, 1)
    assert "connection" not in receiver.received[0][0]
    # Another name for the same address (TLS would verify another name): its own connection.
    alias = await guard.check(f"http://rebinding.example:{receiver.port}/hook")
    await post(guard, alias, [], b"{}", connect_timeout=5, read_timeout=5, connections=connections)
    assert receiver.connections == 2
    # A check that yields another address never gets a connection opened to the first one.
    assert connections.take(dataclasses.replace(target, address="127.0.0.2")) is None
    connections.close()
    assert connections.idle == 0 and connector.addresses == ["127.0.0.1"] * 2


async def test_a_request_on_a_connection_the_receiver_closed_is_sent_again_on_a_new_one(
    receiver: Receiver, connector: LoopbackOnly
) -> None:
    receiver.close_after = 1
    guard, connections = Guard(LOOPBACK, fake_dns, connector), Connections()
    target = await guard.check(receiver.url)
    for _ in range(2):
        answer = await post(
            guard, target, [], b"{}", connect_timeout=5, read_timeout=5, connections=connections
        )
        assert answer.status == 204
    # the second request reached the closing connection, then a new one: at least once
    assert (receiver.connections, len(receiver.received)) == (2, 3)
    connections.close()


async def test_idle_connections_are_closed_after_the_idle_time(
    receiver: Receiver, connector: LoopbackOnly
) -> None:
    guard, connections = Guard(LOOPBACK, fake_dns, connector), Connections(idle_seconds=0.05)
    target = await guard.check(receiver.url)
    await post(guard, target, [], b"{}", connect_timeout=5, read_timeout=5, connections=connections)
    assert connections.idle == 1
    await asyncio.sleep(0.1)
    connections.prune()
    assert connections.idle == 0
    await post(guard, target, [], b"{}", connect_timeout=5, read_timeout=5, connections=connections)
    assert receiver.connections == 2
    connections.close()
