"""Signing keys: sealed at rest, rotation keeps the old key published until its tokens expire."""

from __future__ import annotations

import datetime as dt

import jwt
import pytest
from cryptography.exceptions import InvalidTag
from sqlalchemy import select, update

from services.identity.store import IdentityStore, SigningKey, signing_keys
from services.identity.tokens import PUBLISH_AFTER_RETIRE, SigningKeys, load_kek
from services.runtime.db import Database


async def test_first_use_creates_one_published_key(keys: SigningKeys) -> None:
    (jwk,) = await keys.jwks()
    assert (jwk["kty"], jwk["crv"], jwk["alg"]) == ("OKP", "Ed25519", "EdDSA")
    token = await keys.issue("u", "t", "viewer", "s")
    claims = jwt.decode(
        token.token, jwt.PyJWK(jwk).key, ["EdDSA"], audience="alea", issuer="alea-identity"
    )
    assert (claims["sub"], claims["tid"], claims["role"], claims["sid"]) == (
        "u",
        "t",
        "viewer",
        "s",
    )
    assert token.expires_in == 900


async def test_private_keys_are_sealed_under_the_kek(db: Database, keys: SigningKeys) -> None:
    await keys.jwks()
    async with db.reading() as session:
        row = SigningKey(**(await session.execute(select(signing_keys))).one()._mapping)
    assert len(row.private_key) == 12 + 32 + 16  # nonce, Ed25519 seed, GCM tag
    with pytest.raises(InvalidTag):
        SigningKeys(IdentityStore(db), b"x" * 32)._unseal(row)


async def test_rotation_keeps_the_old_key_until_its_tokens_expire(
    db: Database, keys: SigningKeys
) -> None:
    old = jwt.get_unverified_header((await keys.issue("u", "t", "admin", "s")).token)["kid"]
    new = await keys.rotate()
    assert jwt.get_unverified_header((await keys.issue("u", "t", "admin", "s")).token)["kid"] == new
    assert {k["kid"] for k in await keys.jwks()} == {old, new}
    long_ago = dt.datetime.now(dt.UTC) - PUBLISH_AFTER_RETIRE - dt.timedelta(seconds=1)
    async with db.transaction() as session:
        await session.execute(
            update(signing_keys).where(signing_keys.c.kid == old).values(retire_time=long_ago)
        )
    assert {k["kid"] for k in await keys.jwks()} == {new}


async def test_a_replica_signs_with_the_shared_key(db: Database, keys: SigningKeys) -> None:
    (jwk,) = await keys.jwks()
    replica = SigningKeys(IdentityStore(db), b"k" * 32)
    token = await replica.issue("u", "t", "admin", "s")
    assert jwt.get_unverified_header(token.token)["kid"] == jwk["kid"]


def test_the_kek_is_made_once_and_kept(tmp_path) -> None:
    first = load_kek(tmp_path)
    assert len(first) == 32 and load_kek(tmp_path) == first
    assert (tmp_path / "identity-signing.kek").stat().st_mode & 0o777 == 0o600
