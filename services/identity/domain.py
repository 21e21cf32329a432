"""Identity domain: tenants, users, passwords, sessions and refresh tokens.

Every read is scoped to the caller's tenant: a user of another tenant is NOT_FOUND.
Creates are idempotent by ``request_id`` (AIP-155): a retry returns the first
result, a different request under the same id is INVALID_ARGUMENT.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import secrets
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.identity.store import IdempotencyRow, RefreshTokenRow, SessionRow, TenantRow, UserRow
from services.identity.tokens import SigningKeys
from services.runtime.access import ROLE_RANK
from services.runtime.context import Principal
from services.runtime.db import Database
from services.runtime.errors import (
    Aborted,
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Unauthenticated,
)
from services.runtime.listing import compile_filter, compile_order, page_of

__all__ = ["Accounts", "Tokens", "fingerprint", "now", "remember", "replayed", "writing"]

REFRESH_TTL = dt.timedelta(days=30)
PREFERENCE_FIELDS = ("locale", "default_trials", "default_seed", "notify_on_completion")
SELF_PATHS = {"display_name", "preferences", *(f"preferences.{f}" for f in PREFERENCE_FIELDS)}
ADMIN_PATHS = {"role", "disabled"}
ROLE_VALUES = {f"ROLE_{r.upper()}": r for r in ROLE_RANK}
USER_COLUMNS: dict[str, Any] = {
    "email": UserRow.email,
    "display_name": UserRow.display_name,
    "role": UserRow.role,
    "disabled": UserRow.disabled,
    "create_time": UserRow.create_time,
    "update_time": UserRow.update_time,
}
# argon2id at OWASP's recommended floor (19 MiB, 2 passes, 1 lane): one lane because the
# service handles many logins concurrently on few cores; check_needs_rehash on Login
# upgrades stored hashes whenever these parameters are raised.
_hasher = PasswordHasher(time_cost=2, memory_cost=19_456, parallelism=1)
_DUMMY_HASH = _hasher.hash("timing equaliser for unknown emails")


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def fingerprint(*parts: object) -> str:
    """A stable digest of a create request, to tell a retry from a different request."""
    return hashlib.sha256(repr(parts).encode()).hexdigest()


async def replayed(session: AsyncSession, scope: str, request_id: str, digest: str) -> str | None:
    """The id created earlier under ``request_id`` in ``scope``, if any."""
    if not request_id:
        return None
    row = await session.get(IdempotencyRow, (scope, request_id))
    if row is None:
        return None
    if row.fingerprint != digest:
        raise InvalidArgument("request_id", "already used for a different request")
    return row.resource_id


def remember(session: AsyncSession, scope: str, request_id: str, digest: str, rid: str) -> None:
    """Record that ``request_id`` created ``rid`` (no-op without a request id)."""
    if request_id:
        session.add(
            IdempotencyRow(
                scope=scope,
                request_id=request_id,
                fingerprint=digest,
                resource_id=rid,
                create_time=now(),
            )
        )


@asynccontextmanager
async def writing(db: Database) -> AsyncIterator[AsyncSession]:
    """A transaction in which losing a unique-key race (two creates of one email or one
    request id at once) is ABORTED, which clients retry, rather than INTERNAL."""
    try:
        async with db.transaction() as session:
            yield session
    except IntegrityError:
        raise Aborted("a concurrent request changed the same data; retry") from None


def _token_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class Tokens:
    """An access token and a refresh token with their lifetimes (seconds)."""

    access_token: str
    expires_in: int
    refresh_token: str
    refresh_expires_in: int


class Accounts:
    """Register, sign in, manage and find users."""

    def __init__(self, db: Database, keys: SigningKeys) -> None:
        self._db = db
        self._keys = keys

    # -- credentials ---------------------------------------------------------------------

    async def _hash(self, password: str) -> str:
        return await asyncio.to_thread(_hasher.hash, password)

    async def _verify(self, stored: str, password: str) -> bool:
        try:
            return await asyncio.to_thread(_hasher.verify, stored, password)
        except (VerificationError, InvalidHashError):
            return False

    async def _open_session(self, session: AsyncSession, user: UserRow) -> tuple[str, str]:
        """Add a session and its first refresh token; returns (session id, refresh secret)."""
        session_id = str(uuid.uuid4())
        session.add(
            SessionRow(
                id=session_id,
                user_id=user.id,
                tenant_id=user.tenant_id,
                create_time=now(),
                revoke_time=None,
            )
        )
        await session.flush()  # the refresh token's foreign key needs the session row
        return session_id, self._add_refresh(session, session_id)

    @staticmethod
    def _add_refresh(session: AsyncSession, session_id: str) -> str:
        refresh = "rt_" + secrets.token_urlsafe(32)
        session.add(
            RefreshTokenRow(
                token_hash=_token_hash(refresh),
                session_id=session_id,
                expire_time=now() + REFRESH_TTL,
                use_time=None,
            )
        )
        return refresh

    async def _tokens(self, user: UserRow, session_id: str, refresh: str) -> Tokens:
        # Signed after the transaction commits: signing may create or rotate a key, which
        # is its own transaction (and SQLite has one writer at a time).
        access = await self._keys.issue(user.id, user.tenant_id, user.role, session_id)
        return Tokens(access.token, access.expires_in, refresh, int(REFRESH_TTL.total_seconds()))

    # -- public RPCs -----------------------------------------------------------------------

    async def register(
        self, tenant_name: str, email: str, password: str, display_name: str, request_id: str
    ) -> tuple[TenantRow, UserRow, Tokens]:
        """A new tenant (FREE tier) with its first user, an admin, signed in."""
        email = email.strip().lower()
        digest = fingerprint(tenant_name, email, display_name)
        password_hash = await self._hash(password)
        async with writing(self._db) as session:
            earlier = await replayed(session, "register", request_id, digest)
            if earlier is not None:
                user = await session.get_one(UserRow, earlier)
                if not await self._verify(user.password_hash, password):
                    raise InvalidArgument("request_id", "already used for a different request")
                tenant = await session.get_one(TenantRow, user.tenant_id)
            else:
                await self._ensure_email_free(session, email)
                stamp = now()
                tenant = TenantRow(
                    id=str(uuid.uuid4()),
                    display_name=tenant_name,
                    tier="free",
                    create_time=stamp,
                    update_time=stamp,
                )
                session.add(tenant)
                await session.flush()
                user = self._new_user(tenant.id, email, display_name, "admin", password_hash)
                session.add(user)
                remember(session, "register", request_id, digest, user.id)
                await session.flush()
            opened = await self._open_session(session, user)
        return tenant, user, await self._tokens(user, *opened)

    async def login(self, email: str, password: str) -> tuple[Tokens, UserRow]:
        """Tokens of a new session; one vague UNAUTHENTICATED for every failure."""
        email = email.strip().lower()
        async with self._db.sessions() as session:
            found = await session.scalar(select(UserRow).where(UserRow.email == email))
        valid = await self._verify(found.password_hash if found else _DUMMY_HASH, password)
        if found is None or not valid or found.disabled:
            raise Unauthenticated("wrong email or password, or the user is disabled")
        rehash = (
            await self._hash(password) if _hasher.check_needs_rehash(found.password_hash) else ""
        )
        async with self._db.transaction() as session:
            user = await session.get_one(UserRow, found.id)
            user.last_login_time = now()
            if rehash:
                user.password_hash = rehash
            opened = await self._open_session(session, user)
        return await self._tokens(user, *opened), user

    async def refresh(self, refresh_token: str) -> Tokens:
        """Rotate a refresh token. Reusing a rotated token revokes its whole session."""
        async with self._db.transaction() as session:
            # Locked (PostgreSQL): two refreshes racing with one token must not both rotate it.
            row = await session.get(
                RefreshTokenRow, _token_hash(refresh_token), with_for_update=True
            )
            if row is None or row.expire_time <= now():
                raise Unauthenticated("invalid or expired refresh token")
            live = await session.get_one(SessionRow, row.session_id)
            user = await session.get_one(UserRow, live.user_id)
            if live.revoke_time is not None or user.disabled:
                raise Unauthenticated("session ended")
            reused = row.use_time is not None
            if reused:
                live.revoke_time = now()  # a stolen token was replayed: end the session
            else:
                row.use_time = now()
                refresh = self._add_refresh(session, live.id)
        if reused:  # raised after the commit, so that the revocation sticks
            raise Unauthenticated("refresh token already used; session revoked")
        return await self._tokens(user, live.id, refresh)

    async def logout(self, refresh_token: str) -> None:
        """End the session of ``refresh_token``."""
        async with self._db.transaction() as session:
            row = await session.get(RefreshTokenRow, _token_hash(refresh_token))
            if row is None:
                raise Unauthenticated("invalid refresh token")
            live = await session.get_one(SessionRow, row.session_id)
            live.revoke_time = live.revoke_time or now()

    # -- tenant and users ------------------------------------------------------------------

    async def caller(self, session: AsyncSession, principal: Principal) -> UserRow:
        """The calling user, re-checked against the database: identity honours at once what
        other services learn only when the access token expires (disabled, demoted)."""
        user = await session.get(UserRow, principal.user_id)
        if user is None or user.disabled or user.tenant_id != principal.tenant_id:
            raise Unauthenticated("user is disabled or no longer exists")
        if ROLE_RANK[user.role] < ROLE_RANK.get(principal.role, 0):
            raise Unauthenticated("role changed since this token was issued; refresh it")
        return user

    async def get_tenant(self, principal: Principal, tenant_id: str) -> TenantRow:
        async with self._db.sessions() as session:
            await self.caller(session, principal)
            tenant = await session.get(TenantRow, tenant_id)
        if tenant is None or tenant.id != principal.tenant_id:
            raise NotFound("tenant", tenant_id)
        return tenant

    async def _ensure_email_free(self, session: AsyncSession, email: str) -> None:
        if await session.scalar(select(UserRow.id).where(UserRow.email == email)):
            raise AlreadyExists("user", email)

    @staticmethod
    def _new_user(tenant_id: str, email: str, name: str, role: str, password_hash: str) -> UserRow:
        stamp = now()
        return UserRow(
            id=str(uuid.uuid4()),
            tenant_id=tenant_id,
            email=email,
            display_name=name,
            role=role,
            password_hash=password_hash,
            preferences={},
            disabled=False,
            create_time=stamp,
            update_time=stamp,
            last_login_time=None,
        )

    async def create_user(
        self,
        principal: Principal,
        email: str,
        password: str,
        display_name: str,
        role: str,
        request_id: str,
    ) -> UserRow:
        """Add a user to the caller's tenant (the access rule already demands an admin)."""
        email = email.strip().lower()
        digest = fingerprint(email, display_name, role)
        password_hash = await self._hash(password)
        async with writing(self._db) as session:
            await self.caller(session, principal)
            earlier = await replayed(session, principal.tenant_id, request_id, digest)
            if earlier is not None:
                return await session.get_one(UserRow, earlier)
            await self._ensure_email_free(session, email)
            user = self._new_user(principal.tenant_id, email, display_name, role, password_hash)
            session.add(user)
            remember(session, principal.tenant_id, request_id, digest, user.id)
            return user

    async def _tenant_user(
        self, session: AsyncSession, principal: Principal, user_id: str, *, lock: bool = False
    ) -> UserRow:
        user = await session.get(UserRow, user_id, with_for_update=lock)
        if user is None or user.tenant_id != principal.tenant_id:
            raise NotFound("user", user_id)
        return user

    async def get_user(self, principal: Principal, user_id: str) -> UserRow:
        async with self._db.sessions() as session:
            caller = await self.caller(session, principal)
            if caller.id == user_id:  # reading oneself: the row is already loaded
                return caller
            return await self._tenant_user(session, principal, user_id)

    async def update_user(
        self, principal: Principal, user_id: str, paths: list[str], values: dict[str, Any]
    ) -> UserRow:
        """Apply the masked fields. Self: name and preferences; admins: anyone, role, disabled."""
        if not paths:
            raise InvalidArgument("update_mask", "must name at least one field")
        for path in paths:
            if path not in SELF_PATHS | ADMIN_PATHS:
                raise InvalidArgument("update_mask", f"{path!r} cannot be updated")
        async with self._db.transaction() as session:
            caller = await self.caller(session, principal)
            user = await self._tenant_user(session, principal, user_id, lock=True)
            needs_admin = user.id != caller.id or any(p in ADMIN_PATHS for p in paths)
            if needs_admin and caller.role != "admin":
                raise PermissionDenied("only an admin may change other users, roles or disabled")
            await self._apply(session, user, paths, values)
            user.update_time = now()
            return user

    async def _apply(self, session, user: UserRow, paths: list[str], values: dict[str, Any]):
        preferences = dict(user.preferences)
        for path in paths:
            if path == "display_name":
                if not values["display_name"].strip():
                    raise InvalidArgument("user.display_name", "must not be empty")
                user.display_name = values["display_name"]
            elif path == "preferences":
                preferences = dict(values["preferences"])
            elif path.startswith("preferences."):
                name = path.removeprefix("preferences.")
                preferences[name] = values["preferences"].get(name)
            elif path == "role":
                if values["role"] not in ROLE_RANK:
                    raise InvalidArgument("user.role", "must be a defined role")
                await self._keep_an_admin(session, user, values["role"] == "admin")
                user.role = values["role"]
            elif path == "disabled":
                await self._keep_an_admin(session, user, not values["disabled"])
                user.disabled = values["disabled"]
        user.preferences = {k: v for k, v in preferences.items() if v is not None}

    async def _keep_an_admin(self, session: AsyncSession, user: UserRow, stays: bool) -> None:
        if user.role != "admin" or user.disabled or stays:
            return
        others = await session.scalar(
            select(func.count())
            .select_from(UserRow)
            .where(
                UserRow.tenant_id == user.tenant_id,
                UserRow.role == "admin",
                UserRow.disabled.is_(False),
                UserRow.id != user.id,
            )
        )
        if not others:
            raise FailedPrecondition("a tenant must keep at least one active admin")

    async def list_users(
        self, principal: Principal, page_size: int, page_token: str, filter_: str, order_by: str
    ) -> tuple[list[UserRow], str]:
        """A page of the tenant's users and the next page token."""
        page = page_of(page_size, page_token, principal.tenant_id, filter_, order_by)
        query = select(UserRow).where(UserRow.tenant_id == principal.tenant_id)
        condition = compile_filter(filter_, USER_COLUMNS, {"role": ROLE_VALUES})
        if condition is not None:
            query = query.where(condition)
        query = query.order_by(*compile_order(order_by, USER_COLUMNS), UserRow.id)
        return await self._page(principal, query, page)

    async def search_users(
        self, principal: Principal, text: str, page_size: int, page_token: str
    ) -> tuple[list[UserRow], str]:
        """Users whose email or display name contains ``text``, case-insensitively."""
        page = page_of(page_size, page_token, principal.tenant_id, "search", text)
        needle = text.lower()
        query = (
            select(UserRow)
            .where(UserRow.tenant_id == principal.tenant_id)
            .where(
                or_(
                    func.lower(UserRow.email).contains(needle, autoescape=True),
                    func.lower(UserRow.display_name).contains(needle, autoescape=True),
                )
            )
            .order_by(UserRow.email, UserRow.id)
        )
        return await self._page(principal, query, page)

    async def _page(self, principal: Principal, query, page) -> tuple[list[UserRow], str]:
        async with self._db.sessions() as session:
            await self.caller(session, principal)
            rows = list(await session.scalars(query.offset(page.offset).limit(page.size)))
        return rows, page.next_token(len(rows))
