"""All of identity's SQL: the tables (made by ``migrations/``), records, and the repository.

:meth:`IdentityStore.reading` and :meth:`IdentityStore.writing` open one transaction and
hand out a :class:`Reads` / :class:`Writes` bound to it, so that a domain rule spanning
several statements (the caller re-checked, then the target locked and changed) runs in
one transaction. Every method returns plain frozen dataclasses.

Methods over a tenant's rows take the tenant first: another tenant's row is absent.
The exceptions look rows up by a key that is global by nature and *establishes* the
tenant: a login email, a refresh token, an API key secret, a signing key, a session.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Table, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from services.runtime.access import ROLE_RANK
from services.runtime.db import Database, Reader, UtcDateTime, rowcount
from services.runtime.errors import Aborted
from services.runtime.listing import (
    Listing,
    ListRequest,
    Page,
    enum,
    flag,
    text,
    timestamp,
)
from services.runtime.outbox import Outbox, OutboxItem

__all__ = [
    "API_KEYS",
    "USERS",
    "ApiKey",
    "IdentityStore",
    "Reads",
    "RefreshToken",
    "SigningKey",
    "Tenant",
    "User",
    "Writes",
]

metadata = sa.MetaData()


def _times(*names: str, nullable: bool = False) -> list[sa.Column[Any]]:
    return [sa.Column(name, UtcDateTime(), nullable=nullable) for name in names]


tenants = Table(
    "tenants",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("display_name", sa.String(200), nullable=False),
    sa.Column("tier", sa.String(16), nullable=False),
    *_times("create_time", "update_time"),
)
users = Table(
    "users",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("tenant_id", sa.String(36), nullable=False),
    sa.Column("email", sa.String(254), nullable=False),
    sa.Column("display_name", sa.String(200), nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("password_hash", sa.String(255), nullable=False),
    sa.Column("preferences", sa.JSON(), nullable=False),
    sa.Column("disabled", sa.Boolean(), nullable=False),
    *_times("create_time", "update_time"),
    *_times("last_login_time", nullable=True),
)
sessions = Table(
    "sessions",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("user_id", sa.String(36), nullable=False),
    sa.Column("tenant_id", sa.String(36), nullable=False),
    *_times("create_time"),
    *_times("revoke_time", nullable=True),
)
refresh_tokens = Table(
    "refresh_tokens",
    metadata,
    sa.Column("token_hash", sa.String(64), primary_key=True),
    sa.Column("session_id", sa.String(36), nullable=False),
    *_times("expire_time"),
    *_times("use_time", nullable=True),
)
api_keys = Table(
    "api_keys",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("tenant_id", sa.String(36), nullable=False),
    sa.Column("user_id", sa.String(36), nullable=False),
    sa.Column("display_name", sa.String(100), nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("prefix", sa.String(16), nullable=False),
    sa.Column("secret_hash", sa.String(64), nullable=False),
    *_times("expire_time", "revoke_time", "last_used_time", nullable=True),
    *_times("create_time", "update_time"),
)
signing_keys = Table(
    "signing_keys",
    metadata,
    sa.Column("kid", sa.String(64), primary_key=True),
    sa.Column("algorithm", sa.String(16), nullable=False),
    sa.Column("private_key", sa.LargeBinary(), nullable=False),
    sa.Column("public_jwk", sa.JSON(), nullable=False),
    *_times("create_time"),
    *_times("retire_time", nullable=True),
)
idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    sa.Column("scope", sa.String(64), primary_key=True),
    sa.Column("request_id", sa.String(36), primary_key=True),
    sa.Column("fingerprint", sa.String(64), nullable=False),
    sa.Column("resource_id", sa.String(36), nullable=False),
    *_times("create_time"),
)
trial_reservations = Table(
    "trial_reservations",
    metadata,
    sa.Column("tenant_id", sa.String(36), primary_key=True),
    sa.Column("request_id", sa.String(36), primary_key=True),
    sa.Column("period", sa.String(7), nullable=False),
    sa.Column("trials", sa.BigInteger(), nullable=False),
    *_times("create_time"),
)

_ROLES = {f"ROLE_{role.upper()}": role for role in ROLE_RANK}
USERS = Listing(
    {
        "email": text(users.c.email),
        "display_name": text(users.c.display_name),
        "role": enum(users.c.role, _ROLES),
        "disabled": flag(users.c.disabled),
        "create_time": timestamp(users.c.create_time),
        "update_time": timestamp(users.c.update_time),
    },
    key=users.c.id,
    default_order="create_time",
)
"""ListUsers: the fields its ``filter`` and ``order_by`` take (see identity.proto)."""

SEARCH = Listing({"email": text(users.c.email)}, key=users.c.id, default_order="email")
"""SearchUsers pages by email."""

API_KEYS = Listing(
    {
        "user_id": text(api_keys.c.user_id, sortable=False),
        "role": enum(api_keys.c.role, _ROLES),
        "display_name": text(api_keys.c.display_name),
        "create_time": timestamp(api_keys.c.create_time),
        "revoked": flag(api_keys.c.revoke_time.is_not(None)),
    },
    key=api_keys.c.id,
    default_order="create_time",
)
"""ListApiKeys: the fields its ``filter`` and ``order_by`` take (see identity.proto)."""


@dataclass(frozen=True)
class Tenant:
    id: str
    display_name: str
    tier: str
    create_time: dt.datetime
    update_time: dt.datetime


@dataclass(frozen=True)
class User:
    id: str
    tenant_id: str
    email: str
    display_name: str
    role: str
    password_hash: str
    preferences: dict[str, Any]
    disabled: bool
    create_time: dt.datetime
    update_time: dt.datetime
    last_login_time: dt.datetime | None


@dataclass(frozen=True)
class Session:
    id: str
    user_id: str
    tenant_id: str
    create_time: dt.datetime
    revoke_time: dt.datetime | None


@dataclass(frozen=True)
class RefreshToken:
    token_hash: str
    session_id: str
    expire_time: dt.datetime
    use_time: dt.datetime | None


@dataclass(frozen=True)
class ApiKey:
    id: str
    tenant_id: str
    user_id: str
    display_name: str
    role: str
    prefix: str
    secret_hash: str
    expire_time: dt.datetime | None
    revoke_time: dt.datetime | None
    last_used_time: dt.datetime | None
    create_time: dt.datetime
    update_time: dt.datetime


@dataclass(frozen=True)
class SigningKey:
    kid: str
    algorithm: str
    private_key: bytes
    public_jwk: dict[str, Any]
    create_time: dt.datetime
    retire_time: dt.datetime | None


# Every authenticated RPC re-reads its caller: the statement is built (and its cache key
# computed) once, not per call.
_USER = select(users).where(users.c.tenant_id == sa.bindparam("t"), users.c.id == sa.bindparam("u"))
_USER_FOR_UPDATE = _USER.with_for_update()


class Reads:
    """Queries inside one transaction."""

    def __init__(self, session: Reader) -> None:
        self._session = session

    async def _one(self, statement: sa.Select[Any]) -> sa.RowMapping | None:
        row = (await self._session.execute(statement)).first()
        return row._mapping if row is not None else None

    async def tenant(self, tenant_id: str, *, lock: bool = False) -> Tenant | None:
        """The tenant; ``lock`` holds its row (PostgreSQL) until the transaction ends."""
        statement = select(tenants).where(tenants.c.id == tenant_id)
        row = await self._one(statement.with_for_update() if lock else statement)
        return Tenant(**row) if row else None

    async def user(self, tenant_id: str, user_id: str, *, lock: bool = False) -> User | None:
        """A user of the tenant; ``lock`` holds the row (PostgreSQL) until the end."""
        statement = _USER_FOR_UPDATE if lock else _USER
        row = (await self._session.execute(statement, {"t": tenant_id, "u": user_id})).first()
        return User(**row._mapping) if row else None

    async def user_by_email(self, email: str) -> User | None:
        """The user signing in with ``email`` (unique across tenants)."""
        row = await self._one(select(users).where(users.c.email == email))
        return User(**row) if row else None

    async def other_active_admins(self, tenant_id: str, user_id: str) -> int:
        """Enabled admins of the tenant besides ``user_id``."""
        count = await self._session.scalar(
            select(func.count())
            .select_from(users)
            .where(
                users.c.tenant_id == tenant_id,
                users.c.role == "admin",
                users.c.disabled.is_(False),
                users.c.id != user_id,
            )
        )
        return int(count or 0)

    async def users(self, tenant_id: str, request: ListRequest) -> Page[User]:
        """A page of the tenant's users; InvalidArgument for a bad filter, order or token."""
        query = USERS.query(request, tenant_id)
        rows = await self._session.execute(
            query.apply(select(users).where(users.c.tenant_id == tenant_id))
        )
        items, token = query.page(rows.all())
        return Page([User(**item) for item in items], token)

    async def search_users(self, tenant_id: str, needle: str, request: ListRequest) -> Page[User]:
        """The tenant's users whose email or display name contains ``needle`` (lowercase)."""
        query = SEARCH.query(request, tenant_id, "search", needle)
        statement = select(users).where(
            users.c.tenant_id == tenant_id,
            or_(
                func.lower(users.c.email).contains(needle, autoescape=True),
                func.lower(users.c.display_name).contains(needle, autoescape=True),
            ),
        )
        items, token = query.page((await self._session.execute(query.apply(statement))).all())
        return Page([User(**item) for item in items], token)

    async def contacts(
        self, tenant_id: str, user_ids: list[str], include_admins: bool
    ) -> list[User]:
        """The tenant's users among ``user_ids``, plus its admins when ``include_admins``."""
        wanted: sa.ColumnElement[bool] = users.c.id.in_(user_ids)
        if include_admins:
            wanted = or_(wanted, users.c.role == "admin")
        rows = await self._session.execute(
            select(users).where(users.c.tenant_id == tenant_id, wanted).order_by(users.c.id)
        )
        return [User(**row._mapping) for row in rows]

    async def api_key(self, tenant_id: str, key_id: str) -> ApiKey | None:
        statement = select(api_keys).where(
            api_keys.c.tenant_id == tenant_id, api_keys.c.id == key_id
        )
        row = await self._one(statement)
        return ApiKey(**row) if row else None

    async def api_key_by_secret(self, secret_hash: str) -> tuple[ApiKey, User] | None:
        """The key with this secret hash and its user."""
        key_row = await self._one(select(api_keys).where(api_keys.c.secret_hash == secret_hash))
        if key_row is None:
            return None
        key = ApiKey(**key_row)
        user = await self.user(key.tenant_id, key.user_id)
        return (key, user) if user else None

    async def api_keys(
        self, tenant_id: str, request: ListRequest, owner: str | None
    ) -> Page[ApiKey]:
        """A page of the tenant's keys (only ``owner``'s unless None)."""
        query = API_KEYS.query(request, tenant_id, owner or "")
        statement = select(api_keys).where(api_keys.c.tenant_id == tenant_id)
        if owner is not None:
            statement = statement.where(api_keys.c.user_id == owner)
        items, token = query.page((await self._session.execute(query.apply(statement))).all())
        return Page([ApiKey(**item) for item in items], token)

    async def idempotent(self, scope: str, request_id: str) -> tuple[str, str] | None:
        """(fingerprint, resource id) recorded for ``request_id`` in ``scope``."""
        row = await self._one(
            select(idempotency_keys.c.fingerprint, idempotency_keys.c.resource_id).where(
                idempotency_keys.c.scope == scope, idempotency_keys.c.request_id == request_id
            )
        )
        return (row["fingerprint"], row["resource_id"]) if row else None

    async def refresh_token(self, token_hash: str, *, lock: bool = False) -> RefreshToken | None:
        statement = select(refresh_tokens).where(refresh_tokens.c.token_hash == token_hash)
        row = await self._one(statement.with_for_update() if lock else statement)
        return RefreshToken(**row) if row else None

    async def session(self, session_id: str) -> Session | None:
        row = await self._one(select(sessions).where(sessions.c.id == session_id))
        return Session(**row) if row else None

    async def totals(self) -> tuple[int, int]:
        """(tenants, users) of the whole platform, for the operator overview."""
        tenant_count = await self._session.scalar(select(func.count()).select_from(tenants))
        user_count = await self._session.scalar(select(func.count()).select_from(users))
        return int(tenant_count or 0), int(user_count or 0)

    async def trials_used(self, tenant_id: str, period: str) -> int:
        used = await self._session.scalar(
            select(func.coalesce(func.sum(trial_reservations.c.trials), 0)).where(
                trial_reservations.c.tenant_id == tenant_id, trial_reservations.c.period == period
            )
        )
        return int(used or 0)

    async def reserved(self, tenant_id: str, request_id: str) -> bool:
        """Whether a reservation with this id exists for the tenant."""
        found = await self._session.scalar(
            select(trial_reservations.c.request_id).where(
                trial_reservations.c.tenant_id == tenant_id,
                trial_reservations.c.request_id == request_id,
            )
        )
        return found is not None

    async def active_signing_key(self) -> SigningKey | None:
        """The newest key not retired."""
        row = await self._one(
            select(signing_keys)
            .where(signing_keys.c.retire_time.is_(None))
            .order_by(signing_keys.c.create_time.desc())
            .limit(1)
        )
        return SigningKey(**row) if row else None

    async def published_keys(self, retired_after: dt.datetime) -> list[dict[str, Any]]:
        """Public JWKs of the keys not retired, or retired after ``retired_after``."""
        rows = await self._session.scalars(
            select(signing_keys.c.public_jwk)
            .where(
                or_(
                    signing_keys.c.retire_time.is_(None),
                    signing_keys.c.retire_time > retired_after,
                )
            )
            .order_by(signing_keys.c.create_time.desc())
        )
        return [dict(jwk) for jwk in rows]


class Writes(Reads):
    """Queries and changes inside one write transaction, and the events they cause."""

    def __init__(self, session: AsyncConnection, outbox: Outbox) -> None:
        super().__init__(session)
        self._transaction = session
        self._outbox = outbox

    async def record(self, *events: OutboxItem) -> None:
        """Write events (``runtime.events.event``) that commit with this transaction."""
        await self._outbox.add(self._transaction, *events)

    async def _insert(self, table: Table, record: Any) -> None:
        await self._session.execute(insert(table).values(**asdict(record)))

    async def add_tenant(self, tenant: Tenant) -> None:
        await self._insert(tenants, tenant)

    async def add_user(self, user: User) -> None:
        await self._insert(users, user)

    async def change_user(self, tenant_id: str, user_id: str, **values: Any) -> None:
        await self._session.execute(
            update(users)
            .where(users.c.tenant_id == tenant_id, users.c.id == user_id)
            .values(values)
        )

    async def add_session(self, session: Session) -> None:
        await self._insert(sessions, session)

    async def end_session(self, session_id: str, at: dt.datetime) -> None:
        """Revoke the session (a revoked one keeps its first revocation time)."""
        await self._session.execute(
            update(sessions)
            .where(sessions.c.id == session_id, sessions.c.revoke_time.is_(None))
            .values(revoke_time=at)
        )

    async def add_refresh_token(self, token: RefreshToken) -> None:
        await self._insert(refresh_tokens, token)

    async def use_refresh_token(self, token_hash: str, at: dt.datetime) -> None:
        await self._session.execute(
            update(refresh_tokens)
            .where(refresh_tokens.c.token_hash == token_hash)
            .values(use_time=at)
        )

    async def add_api_key(self, key: ApiKey) -> None:
        await self._insert(api_keys, key)

    async def revoke_api_key(self, tenant_id: str, key_id: str, at: dt.datetime) -> None:
        """Revoke the key unless it already is (revoking twice changes nothing)."""
        await self._session.execute(
            update(api_keys)
            .where(
                api_keys.c.tenant_id == tenant_id,
                api_keys.c.id == key_id,
                api_keys.c.revoke_time.is_(None),
            )
            .values(revoke_time=at, update_time=at)
        )

    async def touch_api_key(self, tenant_id: str, key_id: str, at: dt.datetime) -> None:
        await self._session.execute(
            update(api_keys)
            .where(api_keys.c.tenant_id == tenant_id, api_keys.c.id == key_id)
            .values(last_used_time=at)
        )

    async def remember(
        self, scope: str, request_id: str, fingerprint: str, resource_id: str, at: dt.datetime
    ) -> None:
        """Record that ``request_id`` in ``scope`` created ``resource_id``."""
        await self._session.execute(
            insert(idempotency_keys).values(
                scope=scope,
                request_id=request_id,
                fingerprint=fingerprint,
                resource_id=resource_id,
                create_time=at,
            )
        )

    async def reserve(
        self, tenant_id: str, request_id: str, period: str, trials: int, at: dt.datetime
    ) -> None:
        await self._session.execute(
            insert(trial_reservations).values(
                tenant_id=tenant_id,
                request_id=request_id,
                period=period,
                trials=trials,
                create_time=at,
            )
        )

    async def rotate_signing_key(self, key: SigningKey) -> int:
        """Retire every active key and add ``key``; returns how many were retired."""
        result = await self._session.execute(
            update(signing_keys)
            .where(signing_keys.c.retire_time.is_(None))
            .values(retire_time=key.create_time)
        )
        await self._insert(signing_keys, key)
        return rowcount(result)


class IdentityStore:
    """Opens the transactions that :class:`Reads` and :class:`Writes` run in."""

    def __init__(self, db: Database, outbox: Outbox | None = None) -> None:
        self.db = db
        self.outbox = outbox or Outbox()

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[Reads]:
        """A read-only unit of work (never waits for SQLite's write lock)."""
        async with self.db.reading() as session:
            yield Reads(session)

    @asynccontextmanager
    async def writing(self) -> AsyncIterator[Writes]:
        """A write transaction, committed on success. Losing a unique-key race (two
        creates of one email or one request id at once) is ABORTED, which clients retry."""
        try:
            async with self.db.transaction() as session:
                yield Writes(session, self.outbox)
        except IntegrityError:
            raise Aborted("a concurrent request changed the same data; retry") from None
