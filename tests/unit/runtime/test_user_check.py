"""An access token's user is re-checked with identity: disabled users stop, a lowered role
applies, the platform scope needs a current admin, and answers live at most the bound."""

from __future__ import annotations

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
