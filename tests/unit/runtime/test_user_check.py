"""An access token's user is re-checked with identity: disabled users stop, a lowered role
applies, the platform scope needs a current admin, and answers live at most the bound."""

from __future__ import annotations

import asyncio

import pytest

from services.runtime import auth
from services.runtime.auth import UserCheck
from services.runtime.context import Principal
from services.runtime.errors import Unauthenticated

TOKEN = Principal(user_id="u-1", tenant_id="t-1", role="admin", platform=True)


class Identity:
    def __init__(self) -> None:
        self.answer = (True, "admin", True)
        self.asked = 0

    async def __call__(self, tenant_id: str, user_id: str) -> tuple[bool, str, bool]:
        assert (tenant_id, user_id) == ("t-1", "u-1")
        self.asked += 1
        return self.answer


async def test_the_users_current_state_applies(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [100.0]
    monkeypatch.setattr(auth.time, "monotonic", lambda: now[0])
    identity = Identity()
    check = UserCheck(identity, ttl=1.0)
    assert await check.current(TOKEN) == TOKEN
    identity.answer = (True, "viewer", True)
    assert (await check.current(TOKEN)).role == "admin"  # within the bound: remembered
    now[0] += 1.0
    demoted = await check.current(TOKEN)
    assert (demoted.role, demoted.platform) == ("viewer", False)
    identity.answer = (True, "admin", False)
    now[0] += 1.0
    assert (await check.current(TOKEN)).platform is False
    viewer_token = Principal(user_id="u-1", tenant_id="t-1", role="viewer")
    assert (await check.current(viewer_token)).role == "viewer"  # never raised above the token
    identity.answer = (False, "admin", False)
    now[0] += 1.0
    with pytest.raises(Unauthenticated, match="disabled"):
        await check.current(TOKEN)
    assert identity.asked == 4


async def test_users_checked_at_once_ask_identity_once() -> None:
    # A thousand open streams of one user re-checked in the same second: one question.
    release = asyncio.Event()
    identity = Identity()

    async def slow(tenant_id: str, user_id: str) -> tuple[bool, str, bool]:
        await release.wait()
        return await identity(tenant_id, user_id)

    check = UserCheck(slow, ttl=1.0)
    waiting = [asyncio.ensure_future(check.current(TOKEN)) for _ in range(1000)]
    await asyncio.sleep(0)
    waiting[0].cancel()  # one caller gives up: the others still get the answer
    release.set()
    answers = await asyncio.gather(*waiting[1:])
    assert identity.asked == 1 and all(a == TOKEN for a in answers)
    identity.answer = (False, "admin", True)
    assert await check.current(TOKEN) == TOKEN  # remembered for the bound


async def test_a_streams_recheck_takes_the_last_answer_while_a_fresh_one_is_asked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    now = [100.0]
    monkeypatch.setattr(auth.time, "monotonic", lambda: now[0])
    identity = Identity()
    check = UserCheck(identity, ttl=1.0)
    assert await check.current(TOKEN) == TOKEN
    identity.answer = (False, "admin", True)  # disabled meanwhile
    now[0] += 5.0
    assert await check.current(TOKEN, wait=False) == TOKEN  # the last answer, no waiting
    for _ in range(10):  # the question asked in the background lands
        await asyncio.sleep(0)
    assert identity.asked == 2
    with pytest.raises(Unauthenticated):
        await check.current(TOKEN, wait=False)
