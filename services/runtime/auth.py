"""Authentication of user credentials: JWT access tokens and API keys.

Tokens are verified locally against identity's JWKS, fetched through a source
callable and cached; an unknown ``kid`` triggers one refresh (rate limited, so a
stream of forged ``kid`` values cannot hammer identity). Only ``EdDSA`` is accepted:
``alg: none``, HMAC-with-the-public-key and other algorithm confusions fail before
any signature check. A verified token's principal is remembered (by the token's hash)
until the token expires, so a client repeating its token costs one dictionary lookup
rather than a signature check. API keys are resolved by a source callable (identity's
internal VerifyApiKey) and cached for a second, keyed by the secret's hash.

An access token says who its user was when it was issued; services other than identity
also ask identity (CheckUser, through :class:`UserCheck`) whether the user is still
active and with which role, trusting each answer for at most :data:`USER_CHECK_SECONDS`:
a disabled user's tokens stop working, and a changed role applies, everywhere within
that bound rather than when the token expires.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import jwt

from services.runtime.access import ROLE_RANK
from services.runtime.context import Principal
from services.runtime.errors import Unauthenticated

__all__ = [
    "ALGORITHMS",
    "API_KEY_CACHE_SECONDS",
    "AUDIENCE",
    "ISSUER",
    "USER_CHECK_SECONDS",
    "ApiKeyCache",
    "Authenticator",
    "TokenVerifier",
    "UserCheck",
]

ISSUER = "alea-identity"
AUDIENCE = "alea"
ALGORITHMS = ("EdDSA",)
JwksSource = Callable[[], Awaitable[list[dict[str, Any]]]]
ApiKeySource = Callable[[str], Awaitable[tuple[Principal, float | None]]]
"""Resolves a secret to (principal, expiry as epoch seconds or None); raises Unauthenticated."""
UserSource = Callable[[str, str], Awaitable[tuple[bool, str, bool]]]
"""(tenant id, user id) -> (active, current role, platform operator)."""


class TokenVerifier:
    """Verifies access tokens against a cached JWKS."""

    def __init__(
        self,
        source: JwksSource,
        *,
        leeway: float = 30,
        min_refresh: float = 5,
        max_remembered: int = 10_000,
    ) -> None:
        self._source = source
        self._verified: dict[bytes, tuple[Principal, float]] = {}
        self._max_remembered = max_remembered
        self._keys: dict[str, Any] = {}
        self._fetched_at = float("-inf")
        self._leeway = leeway
        self._min_refresh = min_refresh

    async def _refresh(self) -> None:
        if time.monotonic() - self._fetched_at < self._min_refresh:
            return
        keys = await self._source()
        self._keys = {k["kid"]: jwt.PyJWK(k).key for k in keys if k.get("kid")}
        self._fetched_at = time.monotonic()

    async def _key(self, kid: str) -> Any:
        if kid not in self._keys:
            await self._refresh()
        try:
            return self._keys[kid]
        except KeyError:
            raise Unauthenticated("access token signed by an unknown key") from None

    async def verify(self, token: str) -> Principal:
        """The principal of a valid token; Unauthenticated for anything else."""
        digest = hashlib.sha256(token.encode()).digest()
        remembered = self._verified.get(digest)
        if remembered is not None and remembered[1] + self._leeway > time.time():
            return remembered[0]
        principal, expires = await self._verify(token)
        if len(self._verified) >= self._max_remembered:
            self._verified.clear()
        self._verified[digest] = (principal, expires)
        return principal

    async def _verify(self, token: str) -> tuple[Principal, float]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise Unauthenticated("malformed access token") from None
        if header.get("alg") not in ALGORITHMS:
            raise Unauthenticated(f"access token algorithm must be one of {', '.join(ALGORITHMS)}")
        key = await self._key(str(header.get("kid", "")))
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=list(ALGORITHMS),
                audience=AUDIENCE,
                issuer=ISSUER,
                leeway=self._leeway,
                options={"require": ["exp", "iat", "sub", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("access token expired") from None
        except jwt.PyJWTError as exc:
            raise Unauthenticated(f"invalid access token: {exc}") from None
        role = claims.get("role")
        if role not in ROLE_RANK or not claims.get("tid"):
            raise Unauthenticated("access token lacks a valid tenant or role")
        principal = Principal(
            user_id=str(claims["sub"]),
            tenant_id=str(claims["tid"]),
            role=role,
            platform=claims.get("plt") is True and role == "admin",
        )
        return principal, float(claims["exp"])


API_KEY_CACHE_SECONDS = 1.0
"""How long a service other than identity trusts a verified API key without asking again:
a revoked key is refused everywhere at most this long after RevokeApiKey returns (identity
itself asks its database on every call)."""


class ApiKeyCache:
    """Resolves API keys through a source, remembering answers for ``ttl`` seconds."""

    def __init__(
        self, source: ApiKeySource, *, ttl: float = API_KEY_CACHE_SECONDS, max_entries: int = 10_000
    ) -> None:
        self._source = source
        self._ttl = ttl
        self._max = max_entries
        self._entries: dict[bytes, tuple[Principal, float]] = {}

    async def verify(self, secret: str) -> Principal:
        """The principal of an active key; Unauthenticated for unknown/expired/revoked keys."""
        digest = hashlib.sha256(secret.encode()).digest()
        now = time.time()
        hit = self._entries.get(digest)
        if hit is not None and hit[1] > now:
            return hit[0]
        principal, expires = await self._source(secret)
        if len(self._entries) >= self._max:
            self._entries.clear()
        self._entries[digest] = (principal, min(now + self._ttl, expires or float("inf")))
        return principal


USER_CHECK_SECONDS = 1.0
"""How long a service other than identity trusts identity's word that a token's user is
active with a role: a disabled user (or a changed role) holds everywhere at most this long
after identity changed it."""


class UserCheck:
    """Re-checks the user of an access token through a source, remembering each answer for
    ``ttl`` seconds counted from when the question was asked (so an answer can never
    outlive the bound, however slow it was)."""

    def __init__(
        self, source: UserSource, *, ttl: float = USER_CHECK_SECONDS, max_entries: int = 10_000
    ) -> None:
        self._source = source
        self._ttl = ttl
        self._max = max_entries
        self._entries: dict[tuple[str, str], tuple[bool, str, bool, float]] = {}

    async def current(self, principal: Principal) -> Principal:
        """``principal`` as its user stands now: Unauthenticated when disabled or gone; the
        lower of the token's and the current role; platform only for a current admin."""
        key = (principal.tenant_id, principal.user_id)
        hit = self._entries.get(key)
        asked = time.monotonic()
        if hit is None or hit[3] <= asked:
            active, role, platform = await self._source(*key)
            if len(self._entries) >= self._max:
                self._entries.clear()
            hit = (active, role, platform, asked + self._ttl)
            self._entries[key] = hit
        active, role, platform, _ = hit
        if not active:
            raise Unauthenticated("user is disabled or no longer exists")
        role = min(principal.role, role, key=lambda r: ROLE_RANK.get(r, 0))
        return Principal(
            user_id=principal.user_id,
            tenant_id=principal.tenant_id,
            role=role,
            platform=platform and role == "admin",
        )


class Authenticator:
    """Finds and checks the user credentials in request metadata (``users``: re-check the
    user of an access token, see :class:`UserCheck`; identity, the source, passes none)."""

    def __init__(
        self, tokens: TokenVerifier, api_keys: ApiKeyCache, users: UserCheck | None = None
    ) -> None:
        self.tokens = tokens
        self.api_keys = api_keys
        self.users = users

    async def recheck(self, principal: Principal, metadata: Mapping[str, str]) -> Principal:
        """The caller of an open stream, authenticated from ``metadata`` as ``principal``,
        as they stand now: Unauthenticated once the user is disabled or gone or the API key
        revoked; the lower role after a demotion. The access token's expiry was checked
        when the stream opened; a stream may outlive it (the user's state may not)."""
        if "authorization" in metadata:
            return principal if self.users is None else await self.users.current(principal)
        secret = metadata.get("x-api-key")
        return await self.api_keys.verify(secret) if secret else principal

    async def authenticate(self, metadata: Mapping[str, str]) -> Principal | None:
        """The principal, None when the request carries no credentials, or Unauthenticated."""
        authorization = metadata.get("authorization")
        if authorization is not None:
            scheme, _, token = authorization.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise Unauthenticated("authorization must be 'Bearer <access token>'")
            principal = await self.tokens.verify(token.strip())
            return principal if self.users is None else await self.users.current(principal)
        secret = metadata.get("x-api-key")
        if secret is not None:
            if not secret:
                raise Unauthenticated("empty x-api-key")
            return await self.api_keys.verify(secret)
        return None
