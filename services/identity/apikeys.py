"""API keys: long-lived credentials for machine clients, stored only as hashes.

A secret carries 256 random bits, so a single SHA-256 is a sound verifier (unlike
passwords, there is nothing to brute-force) and lookups stay one indexed read.
A key acts with the lower of its own role and its user's current role.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import uuid

from services.identity.domain import Accounts, fingerprint, now, replayed, role_name
from services.identity.store import ApiKey, IdentityStore, User
from services.runtime.access import ROLE_RANK
from services.runtime.context import Principal
from services.runtime.errors import NotFound, PermissionDenied, Unauthenticated
from services.runtime.events import event
from services.runtime.listing import ListRequest, Page
from services.runtime.outbox import OutboxItem

__all__ = ["ApiKeys"]

SECRET_PREFIX = "alea_"
# Writing last_used_time on every request would turn each read into a write.
TOUCH_EVERY = dt.timedelta(minutes=1)


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class ApiKeys:
    """Create, list, revoke and verify API keys."""

    def __init__(self, store: IdentityStore, accounts: Accounts) -> None:
        self._store = store
        self._accounts = accounts

    async def create(
        self,
        principal: Principal,
        display_name: str,
        role: str,
        expire_time: dt.datetime | None,
        request_id: str,
    ) -> tuple[ApiKey, str]:
        """A new key and its secret. On an idempotent replay the secret is empty:
        it was shown once and identity cannot show it again."""
        if ROLE_RANK[role] > ROLE_RANK[principal.role]:
            raise PermissionDenied("an API key's role cannot exceed its creator's")
        digest = fingerprint(principal.user_id, display_name, role, expire_time)
        tenant = principal.tenant_id
        async with self._store.writing() as writes:
            await self._accounts.caller(writes, principal)
            earlier = await replayed(writes, tenant, request_id, digest)
            if earlier is not None:
                key = await writes.api_key(tenant, earlier)
                assert key is not None
                return key, ""
            secret = SECRET_PREFIX + secrets.token_urlsafe(32)
            stamp = now()
            key = ApiKey(
                id=str(uuid.uuid4()),
                tenant_id=tenant,
                user_id=principal.user_id,
                display_name=display_name,
                role=role,
                prefix=secret[:12],
                secret_hash=_hash(secret),
                expire_time=expire_time,
                revoke_time=None,
                last_used_time=None,
                create_time=stamp,
                update_time=stamp,
            )
            await writes.add_api_key(key)
            if request_id:
                await writes.remember(tenant, request_id, digest, key.id, stamp)
            await writes.record(_key_event("api_key.created", key, principal))
            return key, secret

    async def list(self, principal: Principal, request: ListRequest) -> Page[ApiKey]:
        """The caller's keys, or all of the tenant's keys for an admin."""
        owner = None if principal.role == "admin" else principal.user_id
        async with self._store.reading() as reads:
            await self._accounts.caller(reads, principal)
            return await reads.api_keys(principal.tenant_id, request, owner)

    async def revoke(self, principal: Principal, key_id: str) -> ApiKey:
        """Revoke a key (own, or any in the tenant for an admin); revoking twice is a no-op."""
        async with self._store.writing() as writes:
            await self._accounts.caller(writes, principal)
            key = await writes.api_key(principal.tenant_id, key_id)
            if key is None or not _visible(key, principal):
                raise NotFound("api key", key_id)
            await writes.revoke_api_key(key.tenant_id, key.id, now())
            revoked = await writes.api_key(key.tenant_id, key.id)
            assert revoked is not None
            if key.revoke_time is None:
                await writes.record(_key_event("api_key.revoked", revoked, principal))
        return revoked

    async def verify(self, secret: str) -> tuple[Principal, float | None]:
        """The principal of an active key and its expiry (epoch seconds), else Unauthenticated."""
        async with self._store.reading() as reads:
            found = await reads.api_key_by_secret(_hash(secret))
        stamp = now()
        if found is None or not _usable(*found, stamp):
            raise Unauthenticated("invalid, expired or revoked API key")
        key, user = found
        if key.last_used_time is None or key.last_used_time < stamp - TOUCH_EVERY:
            async with self._store.writing() as writes:
                await writes.touch_api_key(key.tenant_id, key.id, stamp)
        role = min(key.role, user.role, key=ROLE_RANK.__getitem__)
        principal = Principal(
            user_id=key.user_id,
            tenant_id=key.tenant_id,
            role=role,
            api_key_id=key.id,
            platform=role == "admin" and self._accounts.is_platform(user),
        )
        return principal, key.expire_time.timestamp() if key.expire_time else None


def _key_event(type_: str, key: ApiKey, actor: Principal) -> OutboxItem:
    return event(
        type_,
        key.tenant_id,
        f"apiKeys/{key.id}",
        {
            "api_key_id": key.id,
            "display_name": key.display_name,
            "prefix": key.prefix,
            "role": role_name(key.role),
            "user_id": key.user_id,
            "actor_id": actor.user_id,
        },
        user_id=key.user_id,
    )


def _visible(key: ApiKey, principal: Principal) -> bool:
    mine = principal.role == "admin" or key.user_id == principal.user_id
    return key.tenant_id == principal.tenant_id and mine


def _usable(key: ApiKey, user: User, at: dt.datetime) -> bool:
    expired = key.expire_time is not None and key.expire_time <= at
    return key.revoke_time is None and not expired and not user.disabled
