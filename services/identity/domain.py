"""Identity domain: tenants, users, passwords, sessions and refresh tokens.

Every read is scoped to the caller's tenant: a user of another tenant is NOT_FOUND.
Creates are idempotent by ``request_id`` (AIP-155): a retry returns the first
result, a different request under the same id is INVALID_ARGUMENT.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import hashlib
import secrets
import uuid
from dataclasses import dataclass
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from services.identity.store import (
    IdentityStore,
    Reads,
    RefreshToken,
    Session,
    Tenant,
    User,
    Writes,
)
from services.identity.tokens import SigningKeys
from services.runtime import audit
from services.runtime.access import ROLE_RANK
from services.runtime.context import Principal
from services.runtime.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Unauthenticated,
)
from services.runtime.events import event
from services.runtime.listing import ListRequest, Page

__all__ = ["Accounts", "Tokens", "fingerprint", "now", "replayed", "role_name"]

REFRESH_TTL = dt.timedelta(days=30)
PREFERENCE_FIELDS = ("locale", "default_trials", "default_seed", "notify_on_completion")
SELF_PATHS = {"display_name", "preferences", *(f"preferences.{f}" for f in PREFERENCE_FIELDS)}
ADMIN_PATHS = {"role", "disabled"}
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


async def replayed(reads: Reads, scope: str, request_id: str, digest: str) -> str | None:
    """The id created earlier under ``request_id`` in ``scope``, if any."""
    if not request_id:
        return None
    earlier = await reads.idempotent(scope, request_id)
    if earlier is None:
        return None
    if earlier[0] != digest:
        raise InvalidArgument("request_id", "already used for a different request")
    return earlier[1]


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
    """Register, sign in, manage and find users.

    ``operators``: emails of the platform operators, named at start-up
    (``ALEA_PLATFORM_ADMINS``); such a user has the platform scope while an admin.
    """

    def __init__(
        self, store: IdentityStore, keys: SigningKeys, operators: frozenset[str] = frozenset()
    ) -> None:
        self._store = store
        self._keys = keys
        self._operators = frozenset(email.strip().lower() for email in operators)

    def is_platform(self, user: User) -> bool:
        """Whether ``user`` acts with the platform scope (an admin named an operator)."""
        return user.role == "admin" and user.email in self._operators

    # -- credentials ---------------------------------------------------------------------

    async def _hash(self, password: str) -> str:
        return await asyncio.to_thread(_hasher.hash, password)

    async def _verify(self, stored: str, password: str) -> bool:
        try:
            return await asyncio.to_thread(_hasher.verify, stored, password)
        except (VerificationError, InvalidHashError):
            return False

    async def _open_session(self, writes: Writes, user: User) -> tuple[str, str]:
        """Add a session and its first refresh token; returns (session id, refresh secret)."""
        session_id = str(uuid.uuid4())
        await writes.add_session(Session(session_id, user.id, user.tenant_id, now(), None))
        return session_id, await self._add_refresh(writes, session_id)

    @staticmethod
    async def _add_refresh(writes: Writes, session_id: str) -> str:
        refresh = "rt_" + secrets.token_urlsafe(32)
        token = RefreshToken(_token_hash(refresh), session_id, now() + REFRESH_TTL, None)
        await writes.add_refresh_token(token)
        return refresh

    async def _tokens(self, user: User, session_id: str, refresh: str) -> Tokens:
        # Signed after the transaction commits: signing may create or rotate a key, which
        # is its own transaction (and SQLite has one writer at a time).
        access = await self._keys.issue(
            user.id, user.tenant_id, user.role, session_id, platform=self.is_platform(user)
        )
        return Tokens(access.token, access.expires_in, refresh, int(REFRESH_TTL.total_seconds()))

    # -- public RPCs -----------------------------------------------------------------------

    async def register(
        self, tenant_name: str, email: str, password: str, display_name: str, request_id: str
    ) -> tuple[Tenant, User, Tokens]:
        """A new tenant (FREE tier) with its first user, an admin, signed in."""
        email = email.strip().lower()
        digest = fingerprint(tenant_name, email, display_name)
        password_hash = await self._hash(password)
        async with self._store.writing() as writes:
            earlier = await replayed(writes, "register", request_id, digest)
            if earlier is not None:
                user = await writes.user_by_email(email)
                if user is None or user.id != earlier:
                    raise InvalidArgument("request_id", "already used for a different request")
                if not await self._verify(user.password_hash, password):
                    raise InvalidArgument("request_id", "already used for a different request")
                tenant = await writes.tenant(user.tenant_id)
                assert tenant is not None
            else:
                await self._ensure_email_free(writes, email)
                stamp = now()
                tenant = Tenant(str(uuid.uuid4()), tenant_name, "free", stamp, stamp)
                await writes.add_tenant(tenant)
                user = _new_user(tenant.id, email, display_name, "admin", password_hash)
                await writes.add_user(user)
                if request_id:
                    await writes.remember("register", request_id, digest, user.id, stamp)
            opened = await self._open_session(writes, user)
        return tenant, user, await self._tokens(user, *opened)

    async def login(self, email: str, password: str) -> tuple[Tokens, User]:
        """Tokens of a new session; one vague UNAUTHENTICATED for every failure."""
        email = email.strip().lower()
        async with self._store.reading() as reads:
            found = await reads.user_by_email(email)
        valid = await self._verify(found.password_hash if found else _DUMMY_HASH, password)
        if found is None or not valid or found.disabled:
            raise Unauthenticated("wrong email or password, or the user is disabled")
        rehash = (
            await self._hash(password) if _hasher.check_needs_rehash(found.password_hash) else ""
        )
        stamp = now()
        changes: dict[str, Any] = {"last_login_time": stamp}
        if rehash:
            changes["password_hash"] = rehash
        async with self._store.writing() as writes:
            await writes.change_user(found.tenant_id, found.id, **changes)
            opened = await self._open_session(writes, found)
        user = dataclasses.replace(found, **changes)
        return await self._tokens(user, *opened), user

    async def refresh(self, refresh_token: str) -> Tokens:
        """Rotate a refresh token. Reusing a rotated token revokes its whole session."""
        async with self._store.writing() as writes:
            # Locked (PostgreSQL): two refreshes racing with one token must not both rotate it.
            token = await writes.refresh_token(_token_hash(refresh_token), lock=True)
            if token is None or token.expire_time <= now():
                raise Unauthenticated("invalid or expired refresh token")
            live = await writes.session(token.session_id)
            user = await writes.user(live.tenant_id, live.user_id) if live else None
            if live is not None:
                audit.acting(live.user_id, live.tenant_id)
            if live is None or user is None or live.revoke_time is not None or user.disabled:
                raise Unauthenticated("session ended")
            reused = token.use_time is not None
            if reused:
                await writes.end_session(live.id, now())  # a stolen token was replayed
            else:
                await writes.use_refresh_token(token.token_hash, now())
                refresh = await self._add_refresh(writes, live.id)
        if reused:  # raised after the commit, so that the revocation sticks
            raise Unauthenticated("refresh token already used; session revoked")
        return await self._tokens(user, live.id, refresh)

    async def logout(self, refresh_token: str) -> None:
        """End the session of ``refresh_token``."""
        async with self._store.writing() as writes:
            token = await writes.refresh_token(_token_hash(refresh_token))
            if token is None:
                raise Unauthenticated("invalid refresh token")
            session = await writes.session(token.session_id)
            if session is not None:
                audit.acting(session.user_id, session.tenant_id)
            await writes.end_session(token.session_id, now())

    # -- tenant and users ------------------------------------------------------------------

    @staticmethod
    async def caller(reads: Reads, principal: Principal) -> User:
        """The calling user, re-checked against the database: identity honours at once what
        other services learn only when the access token expires (disabled, demoted)."""
        user = await reads.user(principal.tenant_id, principal.user_id)
        if user is None or user.disabled:
            raise Unauthenticated("user is disabled or no longer exists")
        if ROLE_RANK[user.role] < ROLE_RANK.get(principal.role, 0):
            raise Unauthenticated("role changed since this token was issued; refresh it")
        return user

    async def check_user(self, tenant_id: str, user_id: str) -> tuple[bool, str, bool]:
        """(active, current role, platform operator) of a user; (False, "", False) when gone."""
        async with self._store.reading() as reads:
            user = await reads.user(tenant_id, user_id)
        if user is None:
            return False, "", False
        return not user.disabled, user.role, self.is_platform(user)

    async def get_tenant(self, principal: Principal, tenant_id: str) -> Tenant:
        if tenant_id != principal.tenant_id:
            raise NotFound("tenant", tenant_id)
        async with self._store.reading() as reads:
            await self.caller(reads, principal)
            tenant = await reads.tenant(tenant_id)
        if tenant is None:
            raise NotFound("tenant", tenant_id)
        return tenant

    @staticmethod
    async def _ensure_email_free(reads: Reads, email: str) -> None:
        if await reads.user_by_email(email) is not None:
            raise AlreadyExists("user", email)

    async def create_user(
        self,
        principal: Principal,
        email: str,
        password: str,
        display_name: str,
        role: str,
        request_id: str,
    ) -> User:
        """Add a user to the caller's tenant (the access rule already demands an admin)."""
        email = email.strip().lower()
        digest = fingerprint(email, display_name, role)
        password_hash = await self._hash(password)
        tenant = principal.tenant_id
        async with self._store.writing() as writes:
            await self.caller(writes, principal)
            earlier = await replayed(writes, tenant, request_id, digest)
            if earlier is not None:
                user = await writes.user(tenant, earlier)
                assert user is not None
                return user
            await self._ensure_email_free(writes, email)
            user = _new_user(tenant, email, display_name, role, password_hash)
            await writes.add_user(user)
            if request_id:
                await writes.remember(tenant, request_id, digest, user.id, user.create_time)
            await writes.record(
                event(
                    "user.invited",
                    tenant,
                    f"users/{user.id}",
                    {
                        "user_id": user.id,
                        "email": user.email,
                        "display_name": user.display_name,
                        "role": role_name(user.role),
                        "invited_by": principal.user_id,
                    },
                    user_id=user.id,
                )
            )
            return user

    async def get_user(self, principal: Principal, user_id: str) -> User:
        async with self._store.reading() as reads:
            caller = await self.caller(reads, principal)
            if caller.id == user_id:  # reading oneself: the row is already loaded
                return caller
            user = await reads.user(principal.tenant_id, user_id)
        if user is None:
            raise NotFound("user", user_id)
        return user

    async def update_user(
        self, principal: Principal, user_id: str, paths: list[str], values: dict[str, Any]
    ) -> User:
        """Apply the masked fields. Self: name and preferences; admins: anyone, role, disabled."""
        if not paths:
            raise InvalidArgument("update_mask", "must name at least one field")
        for path in paths:
            if path not in SELF_PATHS | ADMIN_PATHS:
                raise InvalidArgument("update_mask", f"{path!r} cannot be updated")
        async with self._store.writing() as writes:
            caller = await self.caller(writes, principal)
            user = await writes.user(principal.tenant_id, user_id, lock=True)
            if user is None:
                raise NotFound("user", user_id)
            needs_admin = user.id != caller.id or any(p in ADMIN_PATHS for p in paths)
            if needs_admin and caller.role != "admin":
                raise PermissionDenied("only an admin may change other users, roles or disabled")
            changes = await self._changes(writes, user, paths, values)
            changes["update_time"] = now()
            await writes.change_user(user.tenant_id, user.id, **changes)
            if changes.get("role", user.role) != user.role:
                await writes.record(
                    event(
                        "user.role_changed",
                        user.tenant_id,
                        f"users/{user.id}",
                        {
                            "user_id": user.id,
                            "previous_role": role_name(user.role),
                            "role": role_name(changes["role"]),
                            "changed_by": caller.id,
                        },
                        user_id=user.id,
                    )
                )
        return dataclasses.replace(user, **changes)

    async def _changes(
        self, reads: Reads, user: User, paths: list[str], values: dict[str, Any]
    ) -> dict[str, Any]:
        changes: dict[str, Any] = {}
        preferences = dict(user.preferences)
        for path in paths:
            if path == "display_name":
                if not values["display_name"].strip():
                    raise InvalidArgument("user.display_name", "must not be empty")
                changes["display_name"] = values["display_name"]
            elif path == "preferences":
                preferences = dict(values["preferences"])
            elif path.startswith("preferences."):
                name = path.removeprefix("preferences.")
                preferences[name] = values["preferences"].get(name)
            elif path == "role":
                if values["role"] not in ROLE_RANK:
                    raise InvalidArgument("user.role", "must be a defined role")
                await self._keep_an_admin(reads, user, values["role"] == "admin")
                changes["role"] = values["role"]
            elif path == "disabled":
                await self._keep_an_admin(reads, user, not values["disabled"])
                changes["disabled"] = values["disabled"]
        changes["preferences"] = {k: v for k, v in preferences.items() if v is not None}
        return changes

    @staticmethod
    async def _keep_an_admin(reads: Reads, user: User, stays: bool) -> None:
        if user.role != "admin" or user.disabled or stays:
            return
        if not await reads.other_active_admins(user.tenant_id, user.id):
            raise FailedPrecondition("a tenant must keep at least one active admin")

    async def list_users(self, principal: Principal, request: ListRequest) -> Page[User]:
        """A page of the tenant's users."""
        async with self._store.reading() as reads:
            await self.caller(reads, principal)
            return await reads.users(principal.tenant_id, request)

    async def search_users(
        self, principal: Principal, text: str, request: ListRequest
    ) -> Page[User]:
        """Users whose email or display name contains ``text``, case-insensitively."""
        async with self._store.reading() as reads:
            await self.caller(reads, principal)
            return await reads.search_users(principal.tenant_id, text.lower(), request)

    async def contacts(
        self, tenant_id: str, user_ids: list[str], include_admins: bool
    ) -> list[User]:
        """The tenant's users named (unknown ids left out), and its admins if asked: whom
        notification may email (a service's question, not a user's)."""
        async with self._store.reading() as reads:
            return await reads.contacts(tenant_id, user_ids, include_admins)


def role_name(role: str) -> str:
    """A role as the contracts spell it (``admin`` → ``ROLE_ADMIN``), for event data."""
    return f"ROLE_{role.upper()}"


def _new_user(tenant_id: str, email: str, name: str, role: str, password_hash: str) -> User:
    stamp = now()
    return User(
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
