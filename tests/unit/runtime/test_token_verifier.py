"""TokenVerifier's JWKS cache: a rotated key is fetched on first sight, forged kids are not
allowed to hammer identity, and remembered tokens stay bound to their expiry."""

from __future__ import annotations

import asyncio
import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from services.runtime.auth import TokenVerifier
from services.runtime.errors import Unauthenticated


def _jwk(key: Ed25519PrivateKey, kid: str) -> dict:
    data = json.loads(jwt.algorithms.OKPAlgorithm.to_jwk(key.public_key()))
    return {**data, "kid": kid, "alg": "EdDSA", "use": "sig"}


def _token(key: Ed25519PrivateKey, kid: str, **changes) -> str:
    now = int(time.time())
    claims = {
        "sub": "u",
        "tid": "t",
        "role": "analyst",
        "iat": now,
        "exp": now + 60,
        "iss": "alea-identity",
        "aud": "alea",
        **changes,
    }
    return jwt.encode(claims, key, "EdDSA", headers={"kid": kid})


class Source:
    """A JWKS endpoint whose keys the test controls, counting fetches."""

    def __init__(self, *keys: dict) -> None:
        self.keys, self.fetches = list(keys), 0

    async def __call__(self) -> list[dict]:
        self.fetches += 1
        return self.keys


async def test_a_rotated_key_is_fetched_on_first_sight() -> None:
    old, new = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    source = Source(_jwk(old, "old"))
    verifier = TokenVerifier(source, min_refresh=0)
    assert (await verifier.verify(_token(old, "old"))).role == "analyst"
    source.keys.append(_jwk(new, "new"))
    assert (await verifier.verify(_token(new, "new"))).tenant_id == "t"
    assert source.fetches == 2


async def test_unknown_kids_do_not_hammer_the_source() -> None:
    key = Ed25519PrivateKey.generate()
    source = Source(_jwk(key, "k"))
    verifier = TokenVerifier(source, min_refresh=60)
    await verifier.verify(_token(key, "k"))
    for n in range(5):
        with pytest.raises(Unauthenticated, match="unknown key"):
            await verifier.verify(_token(Ed25519PrivateKey.generate(), f"forged-{n}"))
    assert source.fetches == 1


async def test_a_token_past_its_expiry_is_refused_even_if_seen_before() -> None:
    key = Ed25519PrivateKey.generate()
    verifier = TokenVerifier(Source(_jwk(key, "k")), leeway=0)
    token = _token(key, "k", exp=int(time.time()) + 1)
    await verifier.verify(token)  # now remembered
    expiry = jwt.decode(token, options={"verify_signature": False})["exp"]
    await asyncio.sleep(expiry - time.time() + 0.1)
    with pytest.raises(Unauthenticated, match="expired"):
        await verifier.verify(token)
