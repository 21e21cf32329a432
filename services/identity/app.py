"""Wiring of the identity service: domain objects, servicer, local credential checks."""

from __future__ import annotations

from pathlib import Path

from alea.identity.v1 import identity_pb2, identity_pb2_grpc

from services.identity.api import IdentityServicer
from services.identity.apikeys import ApiKeys
from services.identity.domain import Accounts
from services.identity.quota import Quotas
from services.identity.store import IdentityStore
from services.identity.tokens import SigningKeys, load_kek
from services.runtime.auth import ApiKeyCache, Authenticator, TokenVerifier
from services.runtime.config import Environment, Settings
from services.runtime.db import Database
from services.runtime.events import events_relay
from services.runtime.outbox import Outbox
from services.runtime.peers import Peers
from services.runtime.pki import ensure_pki
from services.runtime.server import Mount, Service

__all__ = ["MIGRATIONS", "build"]

MIGRATIONS = Path(__file__).parent / "migrations"


async def build(settings: Settings, db: Database, peers: Peers) -> Service:
    """The identity servicer, and an authenticator that checks credentials in-process:
    identity is the source of keys, so it neither calls itself nor caches API keys
    (a revoked key stops working at once here). ``ALEA_PLATFORM_ADMINS`` (comma-separated
    emails) names the platform operators."""
    outbox = Outbox()
    store = IdentityStore(db, outbox)
    keys = SigningKeys(store, load_kek(ensure_pki(settings.home)))
    await keys.jwks()  # creates the first signing key before the first request
    operators = Environment().text("ALEA_PLATFORM_ADMINS", "").split(",")
    accounts = Accounts(store, keys, frozenset(e for e in operators if e.strip()))
    api_keys = ApiKeys(store, accounts)
    servicer = IdentityServicer(accounts, api_keys, Quotas(store, peers.settings), keys)
    descriptor = identity_pb2.DESCRIPTOR.services_by_name["IdentityService"]
    mount = Mount(descriptor, servicer, identity_pb2_grpc.add_IdentityServiceServicer_to_server)
    verifier = TokenVerifier(keys.jwks, min_refresh=0)
    authenticator = Authenticator(verifier, ApiKeyCache(api_keys.verify, ttl=0))

    async def gauges() -> dict[str, float]:
        async with store.reading() as reads:
            tenant_count, user_count = await reads.totals()
        return {"tenants": tenant_count, "users": user_count}

    return Service(
        [mount], authenticator, background=[events_relay(db, outbox, peers)], gauges=gauges
    )
