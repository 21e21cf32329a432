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

import asyncio
import hashlib
import time
from collections.abc import Awaitable, Callable, Hashable, Mapping
from typing import Any, Generic, TypeVar

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


_T = TypeVar("_T")


class _SharedCalls(Generic[_T]):
    """One call of a source per key at a time: whoever asks while it runs awaits its answer.

    A cache's entry expires for every caller at once; a thousand open streams of one user
    re-checked in the same second would otherwise ask identity a thousand times."""

    def __init__(self) -> None:
        self._running: dict[Hashable, asyncio.Future[tuple[float, _T]]] = {}
        self._refreshing: set[asyncio.Future[None]] = set()

    async def ask(self, key: Hashable, call: Callable[[], Awaitable[_T]]) -> tuple[float, _T]:
        """(when the shared call started, its answer)."""
        running = self._running.get(key)
        if running is None:

            async def timed() -> tuple[float, _T]:
                return time.monotonic(), await call()

            running = self._running[key] = asyncio.ensure_future(timed())
            running.add_done_callback(lambda done: self._finished(key, done))
        # shielded: a caller that gives up does not cancel the others' answer
        return await asyncio.shield(running)

    def refresh(
        self,
        key: Hashable,
        call: Callable[[], Awaitable[_T]],
        store: Callable[[float, _T], Any],
        forget: Callable[[], Any],
    ) -> None:
        """Start ``call`` for ``key`` in the background unless one runs, and hand its answer
        to ``store``; a refusal (Unauthenticated) to ``forget``, so that the next check
        asks and is refused. Any other failure (identity away) stores nothing: the next
        check starts another call."""
        if key in self._running:
            return

        async def update() -> None:
            try:
                store(*await self.ask(key, call))
            except Unauthenticated:
                forget()
            except Exception:  # the answer kept stands; the next check asks again
                pass

        task = asyncio.ensure_future(update())
        self._refreshing.add(task)  # held: the loop keeps only a weak reference to tasks
        task.add_done_callback(self._refreshing.discard)

    def _finished(self, key: Hashable, done: asyncio.Future[tuple[float, _T]]) -> None:
        self._running.pop(key, None)
        if not done.cancelled():
            done.exception()  # retrieved: every caller may have given up


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
        # digest -> (principal, trusted until, the key's own expiry)
        self._entries: dict[bytes, tuple[Principal, float, float]] = {}
        self._calls: _SharedCalls[tuple[Principal, float | None]] = _SharedCalls()

    async def verify(self, secret: str, *, wait: bool = True) -> Principal:
        """The principal of an active key; Unauthenticated for unknown/expired/revoked keys.

        ``wait=False`` (an open stream's re-check) takes an answer past its ``ttl`` while
        a fresh one is asked for in the background, never past the key's own expiry."""
        digest = hashlib.sha256(secret.encode()).digest()
        hit = self._entries.get(digest)
        now = time.time()
        if hit is not None and hit[1] > now:
            return hit[0]
        if hit is not None and not wait and hit[2] > now:
            self._calls.refresh(
                digest,
                lambda: self._source(secret),
                lambda t, a: self._store(digest, t, a),
                lambda: self._entries.pop(digest, None),
            )
            return hit[0]
        started, answer = await self._calls.ask(digest, lambda: self._source(secret))
        return self._store(digest, started, answer)

    def _store(
        self, digest: bytes, started: float, answer: tuple[Principal, float | None]
    ) -> Principal:
        principal, expires = answer
        asked = time.time() - (time.monotonic() - started)  # when the shared question went
        if len(self._entries) >= self._max:
            self._entries.clear()
        until = expires or float("inf")
        self._entries[digest] = (principal, min(asked + self._ttl, until), until)
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
        self._calls: _SharedCalls[tuple[bool, str, bool]] = _SharedCalls()

    async def current(self, principal: Principal, *, wait: bool = True) -> Principal:
        """``principal`` as its user stands now: Unauthenticated when disabled or gone; the
        lower of the token's and the current role; platform only for a current admin.

        ``wait=False`` (an open stream's re-check) takes an answer past ``ttl`` while a
        fresh one is asked for in the background: a thousand streams of one user then cost
        one question a second and none of them waits for it."""
        key = (principal.tenant_id, principal.user_id)
        hit = self._entries.get(key)
        if hit is None or hit[3] <= time.monotonic():
            if hit is not None and not wait:
                self._calls.refresh(
                    key,
                    lambda: self._source(*key),
                    lambda t, a: self._store(key, t, a),
                    lambda: self._entries.pop(key, None),
                )
            else:
                asked, answer = await self._calls.ask(key, lambda: self._source(*key))
                hit = self._store(key, asked, answer)
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

    def _store(
        self, key: tuple[str, str], asked: float, answer: tuple[bool, str, bool]
    ) -> tuple[bool, str, bool, float]:
        if len(self._entries) >= self._max:
            self._entries.clear()
        self._entries[key] = (*answer, asked + self._ttl)
        return self._entries[key]


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
        when the stream opened; a stream may outlive it (the user's state may not). Answers
        come from the caches without waiting, a second or two old at most."""
        if "authorization" in metadata:
            if self.users is None:
                return principal
            return await self.users.current(principal, wait=False)
        secret = metadata.get("x-api-key")
        return await self.api_keys.verify(secret, wait=False) if secret else principal

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
