"""Signing keys and access tokens.

Keys are Ed25519 (JWT ``EdDSA``), generated on first start and stored in identity's
database so every identity replica signs with keys that all replicas publish. The
private half is sealed with AES-256-GCM under a key-encryption key kept beside the
service certificates (``$ALEA_HOME/pki/identity-signing.kek``, a mounted Secret in
Kubernetes): a database dump or backup alone cannot mint tokens. Rotation retires
the active key but keeps publishing it in the JWKS until every token it signed has
expired.
"""

from __future__ import annotations

import base64
import datetime as dt
import secrets
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from services.identity.store import IdentityStore, SigningKey
from services.runtime.auth import AUDIENCE, ISSUER
from services.runtime.pki import secret_key

__all__ = ["AccessToken", "SigningKeys", "load_kek"]

ACCESS_TTL = dt.timedelta(minutes=15)
ROTATE_AFTER = dt.timedelta(days=30)
# A retired key stays published this long after retirement: the longest token it signed
# lives ACCESS_TTL, plus the verifiers' clock leeway.
PUBLISH_AFTER_RETIRE = ACCESS_TTL + dt.timedelta(minutes=1)
_CACHE_SECONDS = 60
KEK_FILE = "identity-signing.kek"


def load_kek(pki_dir: Path) -> bytes:
    """The 32-byte key-encryption key, created (exclusively, 0600) on first start."""
    return secret_key(pki_dir / KEK_FILE)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


@dataclass(frozen=True)
class AccessToken:
    """A signed JWT and its lifetime in seconds."""

    token: str
    expires_in: int


class SigningKeys:
    """The tenant-independent key ring: sign access tokens, publish the JWKS, rotate."""

    def __init__(
        self, store: IdentityStore, kek: bytes, *, access_ttl: dt.timedelta = ACCESS_TTL
    ) -> None:
        self._store = store
        self._aead = AESGCM(kek)
        self.access_ttl = access_ttl
        self._active: tuple[str, Ed25519PrivateKey, float] | None = None

    def _seal(self, kid: str, key: Ed25519PrivateKey) -> bytes:
        raw = key.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
        nonce = secrets.token_bytes(12)
        return nonce + self._aead.encrypt(nonce, raw, kid.encode())

    def _unseal(self, row: SigningKey) -> Ed25519PrivateKey:
        nonce, sealed = row.private_key[:12], row.private_key[12:]
        return Ed25519PrivateKey.from_private_bytes(
            self._aead.decrypt(nonce, sealed, row.kid.encode())
        )

    async def rotate(self) -> str:
        """Retire the active key(s) and create a new one; returns the new ``kid``."""
        key = Ed25519PrivateKey.generate()
        kid = uuid.uuid4().hex
        public = key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        jwk = {
            "kty": "OKP",
            "crv": "Ed25519",
            "x": _b64(public),
            "kid": kid,
            "use": "sig",
            "alg": "EdDSA",
        }
        now = dt.datetime.now(dt.UTC)
        sealed = SigningKey(kid, "EdDSA", self._seal(kid, key), jwk, now, None)
        async with self._store.writing() as writes:
            await writes.rotate_signing_key(sealed)
        self._active = (kid, key, time.monotonic())
        return kid

    async def _signing_key(self) -> tuple[str, Ed25519PrivateKey]:
        cached = self._active
        if cached is not None and time.monotonic() - cached[2] < _CACHE_SECONDS:
            return cached[0], cached[1]
        async with self._store.reading() as reads:
            row = await reads.active_signing_key()
        if row is None or row.create_time < dt.datetime.now(dt.UTC) - ROTATE_AFTER:
            await self.rotate()
            assert self._active is not None
            return self._active[0], self._active[1]
        self._active = (row.kid, self._unseal(row), time.monotonic())
        return row.kid, self._active[1]

    async def jwks(self) -> list[dict[str, Any]]:
        """Public keys that verify live tokens: the active key and recently retired ones."""
        await self._signing_key()  # creates the first key on a fresh database
        horizon = dt.datetime.now(dt.UTC) - PUBLISH_AFTER_RETIRE
        async with self._store.reading() as reads:
            return await reads.published_keys(horizon)

    async def issue(
        self, user_id: str, tenant_id: str, role: str, session_id: str, *, platform: bool = False
    ) -> AccessToken:
        """A signed access token for a user's session (claim ``plt``: a platform operator)."""
        kid, key = await self._signing_key()
        now = int(time.time())
        ttl = int(self.access_ttl.total_seconds())
        claims = {
            "sub": user_id,
            "tid": tenant_id,
            "role": role,
            "sid": session_id,
            "iat": now,
            "exp": now + ttl,
            "iss": ISSUER,
            "aud": AUDIENCE,
        }
        if platform:
            claims["plt"] = True
        token = jwt.encode(claims, key, algorithm="EdDSA", headers={"kid": kid})
        return AccessToken(token, ttl)
