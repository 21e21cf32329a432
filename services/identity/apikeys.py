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
from typing import Any

from sqlalchemy import select, update

from services.identity.domain import Accounts, fingerprint, now, remember, replayed, writing
from services.identity.store import ApiKeyRow, UserRow
from services.runtime.access import ROLE_RANK
from services.runtime.context import Principal
from services.runtime.db import Database
from services.runtime.errors import NotFound, PermissionDenied, Unauthenticated
from services.runtime.listing import compile_filter, compile_order, page_of

__all__ = ["ApiKeys"]

SECRET_PREFIX = "alea_"
# Writing last_used_time on every request would turn each read into a write.
TOUCH_EVERY = dt.timedelta(minutes=1)
KEY_COLUMNS: dict[str, Any] = {
    "user_id": ApiKeyRow.user_id,
    "role": ApiKeyRow.role,
    "display_name": ApiKeyRow.display_name,
    "create_time": ApiKeyRow.create_time,
    "revoked": ApiKeyRow.revoke_time.is_not(None),
}
ROLE_VALUES = {f"ROLE_{r.upper()}": r for r in ROLE_RANK}


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class ApiKeys:
    """Create, list, revoke and verify API keys."""

    def __init__(self, db: Database, accounts: Accounts) -> None:
        self._db = db
        self._accounts = accounts

    async def create(
        self,
        principal: Principal,
        display_name: str,
        role: str,
        expire_time: dt.datetime | None,
        request_id: str,
    ) -> tuple[ApiKeyRow, str]:
        """A new key and its secret. On an idempotent replay the secret is empty:
        it was shown once and identity cannot show it again."""
        if ROLE_RANK[role] > ROLE_RANK[principal.role]:
            raise PermissionDenied("an API key's role cannot exceed its creator's")
        digest = fingerprint(principal.user_id, display_name, role, expire_time)
        async with writing(self._db) as session:
            await self._accounts.caller(session, principal)
            earlier = await replayed(session, principal.tenant_id, request_id, digest)
            if earlier is not None:
                return await session.get_one(ApiKeyRow, earlier), ""
            secret = SECRET_PREFIX + secrets.token_urlsafe(32)
            stamp = now()
            key = ApiKeyRow(
                id=str(uuid.uuid4()),
                tenant_id=principal.tenant_id,
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
            session.add(key)
            remember(session, principal.tenant_id, request_id, digest, key.id)
            return key, secret

    async def list(
        self, principal: Principal, page_size: int, page_token: str, filter_: str, order_by: str
    ) -> tuple[list[ApiKeyRow], str]:
        """The caller's keys, or all of the tenant's keys for an admin."""
        page = page_of(
            page_size, page_token, principal.tenant_id, principal.user_id, filter_, order_by
        )
        query = select(ApiKeyRow).where(ApiKeyRow.tenant_id == principal.tenant_id)
        if principal.role != "admin":
            query = query.where(ApiKeyRow.user_id == principal.user_id)
        condition = compile_filter(filter_, KEY_COLUMNS, {"role": ROLE_VALUES})
        if condition is not None:
            query = query.where(condition)
        query = query.order_by(*compile_order(order_by, KEY_COLUMNS), ApiKeyRow.id)
        async with self._db.sessions() as session:
            await self._accounts.caller(session, principal)
            rows = list(await session.scalars(query.offset(page.offset).limit(page.size)))
        return rows, page.next_token(len(rows))

    async def revoke(self, principal: Principal, key_id: str) -> ApiKeyRow:
        """Revoke a key (own, or any in the tenant for an admin); revoking twice is a no-op."""
        async with self._db.transaction() as session:
            await self._accounts.caller(session, principal)
            key = await session.get(ApiKeyRow, key_id)
            if key is None or not _visible(key, principal):
                raise NotFound("api key", key_id)
            if key.revoke_time is None:
                key.revoke_time = key.update_time = now()
            return key

    async def verify(self, secret: str) -> tuple[Principal, float | None]:
        """The principal of an active key and its expiry (epoch seconds), else Unauthenticated."""
        async with self._db.sessions() as session:
            query = select(ApiKeyRow).where(ApiKeyRow.secret_hash == _hash(secret))
            key = await session.scalar(query)
            user = await session.get(UserRow, key.user_id) if key else None
        stamp = now()
        if key is None or user is None or not _usable(key, user, stamp):
            raise Unauthenticated("invalid, expired or revoked API key")
        if key.last_used_time is None or key.last_used_time < stamp - TOUCH_EVERY:
            async with self._db.transaction() as session:
                touch = update(ApiKeyRow).where(ApiKeyRow.id == key.id)
                await session.execute(touch.values(last_used_time=stamp))
        role = min(key.role, user.role, key=ROLE_RANK.__getitem__)
        principal = Principal(
            user_id=key.user_id, tenant_id=key.tenant_id, role=role, api_key_id=key.id
        )
        return principal, key.expire_time.timestamp() if key.expire_time else None


def _visible(key: ApiKeyRow, principal: Principal) -> bool:
    mine = principal.role == "admin" or key.user_id == principal.user_id
    return key.tenant_id == principal.tenant_id and mine


def _usable(key: ApiKeyRow, user: UserRow, at: dt.datetime) -> bool:
    expired = key.expire_time is not None and key.expire_time <= at
    return key.revoke_time is None and not expired and not user.disabled
