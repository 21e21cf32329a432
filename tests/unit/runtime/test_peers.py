"""Peer clients against a real identity service: what passes through as the caller's own
error, and what turns into UNAVAILABLE (a peer that failed or cannot be reached)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest

from services.runtime.config import load_settings
from services.runtime.errors import ResourceExhausted, Unauthenticated, Unavailable
from services.runtime.peers import Peers
from tests.support.services import free_port
from tests.unit.runtime.harness import Subject, running, settings_for
from tests.unit.runtime.test_interceptor import register


@pytest.fixture
async def peers(subject: Subject) -> AsyncIterator[Peers]:
    env = {"ALEA_HOME": str(subject.home), "ALEA_IDENTITY_ADDRESS": f"localhost:{subject.port}"}
    opened = Peers(load_settings("simulation", env))
    yield opened
    await opened.close()


async def test_a_quota_refusal_reaches_the_caller_with_its_limit(peers: Peers, subject) -> None:
    tenant = (await register(subject)).tenant.id
    with pytest.raises(ResourceExhausted) as raised:
        await peers.identity.reserve_trials(tenant, 10**10, str(uuid.uuid4()))
    assert raised.value.limit == "trials_per_simulation"
    assert raised.value.subject == f"tenants/{tenant}"


async def test_an_error_that_is_not_the_callers_becomes_unavailable(peers: Peers) -> None:
    with pytest.raises(Unavailable, match="identity could not give the storage quota: NOT_FOUND"):
        await peers.identity.storage_limit(str(uuid.uuid4()))  # identity knows no such tenant


async def test_an_unknown_api_key_is_unauthenticated(peers: Peers) -> None:
    with pytest.raises(Unauthenticated):
        await peers.identity.verify_api_key("alea_" + "x" * 43)


async def test_the_jwks_and_a_limit_come_back_in_domain_terms(peers: Peers, subject) -> None:
    keys = await peers.identity.jwks()
    assert keys and {"kid", "x", "crv"} <= set(keys[0])
    tenant = (await register(subject)).tenant.id
    assert await peers.identity.storage_limit(tenant) == 1 << 30  # the free tier


async def test_an_unreachable_peer_is_unavailable(subject: Subject) -> None:
    env = {"ALEA_HOME": str(subject.home), "ALEA_FILES_ADDRESS": f"127.0.0.1:{free_port()}"}
    peers = Peers(load_settings("simulation", env))
    try:
        with pytest.raises(Unavailable, match="files could not read the file: UNAVAILABLE"):
            await peers.files.download(str(uuid.uuid4()), [])
    finally:
        await peers.close()


async def test_reconnected_returns_when_a_peer_that_was_down_is_back(subject: Subject) -> None:
    port = free_port()
    env = {"ALEA_HOME": str(subject.home), "ALEA_FILES_ADDRESS": f"localhost:{port}"}
    peers = Peers(load_settings("simulation", env))
    files = settings_for("files", subject.home, ALEA_PORT=str(port))
    try:
        back = asyncio.ensure_future(peers.reconnected("files"))
        await asyncio.sleep(0.5)
        assert not back.done()  # nothing listens there yet
        async with running("files", [], files, None):
            await asyncio.wait_for(back, 10)  # gRPC reconnects within 2 s
            up = asyncio.ensure_future(peers.reconnected("files"))
            await asyncio.sleep(0.5)
            assert not up.done()  # READY all along: the caller's own backoff applies
        async with running("files", [], files, None):  # down, then back on the same port
            await asyncio.wait_for(up, 10)
    finally:
        await peers.close()
