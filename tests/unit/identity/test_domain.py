"""Domain rules that the RPC tests cannot reach: expiry of keys and tokens, queries per call."""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest
from sqlalchemy import event, update

from services.identity.apikeys import ApiKeys
from services.identity.domain import Accounts
from services.identity.store import api_keys as api_key_table
from services.identity.store import refresh_tokens
from services.runtime.context import Principal
from services.runtime.db import Database
from services.runtime.errors import InvalidArgument, Unauthenticated

PASSWORD = "correct horse battery"


async def _admin(accounts: Accounts, email: str = "a@example.com") -> Principal:
    tenant, user, _ = await accounts.register("Acme", email, PASSWORD, "Ann", "")
    return Principal(user_id=user.id, tenant_id=tenant.id, role="admin")


async def test_an_expired_api_key_is_refused(db: Database, accounts, api_keys: ApiKeys) -> None:
    admin = await _admin(accounts)
    soon = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    _, secret = await api_keys.create(admin, "ci", "viewer", soon, "")
    principal, expires = await api_keys.verify(secret)
    assert principal.role == "viewer" and expires == pytest.approx(soon.timestamp())
    async with db.transaction() as session:
        past = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
        await session.execute(update(api_key_table).values(expire_time=past))
    with pytest.raises(Unauthenticated):
        await api_keys.verify(secret)


async def test_a_key_never_outranks_its_user(db: Database, accounts, api_keys: ApiKeys) -> None:
    admin = await _admin(accounts)
    _, secret = await api_keys.create(admin, "ops", "admin", None, "")
    await accounts.create_user(admin, "b@example.com", PASSWORD, "Bob", "admin", "")
    await accounts.update_user(admin, admin.user_id, ["role"], {"role": "viewer"})
    principal, _ = await api_keys.verify(secret)
    assert principal.role == "viewer"


async def test_an_expired_refresh_token_is_refused(db: Database, accounts: Accounts) -> None:
    _, _, tokens = await accounts.register("Acme", "a@example.com", PASSWORD, "Ann", "")
    digest = hashlib.sha256(tokens.refresh_token.encode()).hexdigest()
    async with db.transaction() as session:
        await session.execute(
            update(refresh_tokens)
            .where(refresh_tokens.c.token_hash == digest)
            .values(expire_time=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1))
        )
    with pytest.raises(Unauthenticated):
        await accounts.refresh(tokens.refresh_token)


async def test_a_reused_create_id_with_other_fields_is_refused(accounts: Accounts) -> None:
    admin = await _admin(accounts)
    rid = "0b7e4c8e-4a57-4f0e-9a51-8d7e3c1c2b10"
    first = await accounts.create_user(admin, "c@example.com", PASSWORD, "C", "viewer", rid)
    again = await accounts.create_user(admin, "c@example.com", PASSWORD, "C", "viewer", rid)
    assert again.id == first.id
    with pytest.raises(InvalidArgument) as raised:
        await accounts.create_user(admin, "d@example.com", PASSWORD, "D", "viewer", rid)
    assert raised.value.violations[0][0] == "request_id"


async def test_get_user_of_oneself_reads_the_row_once(db: Database, accounts: Accounts) -> None:
    admin = await _admin(accounts)
    statements: list[str] = []

    def seen(_conn, _cursor, statement, *_rest) -> None:
        statements.append(statement)

    event.listen(db.read_engine or db.engine.sync_engine, "before_cursor_execute", seen)
    user = await accounts.get_user(admin, admin.user_id)
    assert user.id == admin.user_id
    assert sum("FROM users" in s for s in statements) == 1, statements
