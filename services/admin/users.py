"""User administration through identity: disable, enable, change a role.

Identity owns users and applies its own rules (admins only, a tenant keeps an active
admin); admin calls it with the acting admin's own credentials, so nothing here can do
more than the admin could through identity. Each change notes its reason (and a role
change the old and new role) in the call's audit entry.

A change is in force everywhere when the call returns: other services trust identity's
word about a token's user (``runtime.auth.UserCheck``) and an API key
(``API_KEY_CACHE_SECONDS``) for at most a second, so the call waits out that bound
before answering — the user's next call, to any service, sees the change.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, Protocol

from services.runtime import audit
from services.runtime.access import ROLE_NAMES
from services.runtime.auth import API_KEY_CACHE_SECONDS, USER_CHECK_SECONDS
from services.runtime.context import Principal
from services.runtime.errors import FailedPrecondition

__all__ = ["SETTLE_SECONDS", "Identity", "UserAdmin"]

SETTLE_SECONDS = max(USER_CHECK_SECONDS, API_KEY_CACHE_SECONDS) + 0.1
Credentials = Sequence[tuple[str, str]]


class Identity(Protocol):
    """What user administration needs of identity (``runtime.peers.IdentityClient``)."""

    async def change_user(
        self,
        user_id: str,
        credentials: Credentials,
        *,
        disabled: bool | None = ...,
        role: str = ...,
    ) -> Any: ...

    async def user(self, user_id: str, credentials: Credentials) -> Any: ...


class UserAdmin:
    """Disable, enable and re-role users of the caller's tenant."""

    def __init__(self, identity: Identity, settle_seconds: float = SETTLE_SECONDS) -> None:
        self.identity, self.settle_seconds = identity, settle_seconds

    async def set_disabled(
        self,
        principal: Principal,
        credentials: Credentials,
        user_id: str,
        disabled: bool,
        reason: str,
    ) -> Any:
        """Disable or enable a user; an admin cannot disable themselves."""
        if disabled and user_id == principal.user_id:
            raise FailedPrecondition("an admin cannot disable themselves")
        audit.note(reason=reason, disabled=disabled)
        user = await self.identity.change_user(user_id, credentials, disabled=disabled)
        await asyncio.sleep(self.settle_seconds)
        return user

    async def change_role(
        self, principal: Principal, credentials: Credentials, user_id: str, role: str, reason: str
    ) -> Any:
        """Give a user another role; the old and new role go to the audit entry."""
        before = await self.identity.user(user_id, credentials)
        audit.note(reason=reason, old_role=ROLE_NAMES.get(before.role, ""), new_role=role)
        user = await self.identity.change_user(user_id, credentials, role=role)
        await asyncio.sleep(self.settle_seconds)
        return user
