"""Subscription tiers, their limits, and monthly trial reservations.

A tier's limits are platform settings (``quota.<tier>.*`` in
``runtime.platform_settings.SCHEMA``), read on every answer and reservation, so a changed
limit applies within the settings' poll interval, without a restart.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import dataclass

from services.identity.domain import Accounts, now
from services.identity.store import IdentityStore, Reads, Tenant
from services.runtime.context import Principal
from services.runtime.errors import InvalidArgument, NotFound, ResourceExhausted
from services.runtime.platform_settings import LiveSettings

__all__ = ["Limits", "QuotaView", "Quotas", "limits"]


@dataclass(frozen=True)
class Limits:
    """What a tier allows."""

    trials_per_month: int
    trials_per_simulation: int
    storage_bytes: int


def limits(settings: LiveSettings, tier: str) -> Limits:
    """What ``tier`` allows under the current platform settings."""
    return Limits(
        settings.get(f"quota.{tier}.trials_per_month"),
        settings.get(f"quota.{tier}.trials_per_simulation"),
        settings.get(f"quota.{tier}.storage_bytes"),
    )


@dataclass(frozen=True)
class QuotaView:
    """A tenant's limits and its use in the current period."""

    tenant_id: str
    tier: str
    limits: Limits
    trials_used: int
    period_start: dt.datetime


def _period(at: dt.datetime) -> tuple[str, dt.datetime]:
    start = at.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return start.strftime("%Y-%m"), start


class Quotas:
    """Read quotas and reserve trials against them."""

    def __init__(self, store: IdentityStore, settings: LiveSettings) -> None:
        self._store = store
        self._settings = settings
        # Check-then-insert must not interleave: the lock covers one process (all of SQLite),
        # the tenant row's FOR UPDATE covers PostgreSQL replicas.
        self._lock = asyncio.Lock()

    async def _view(self, reads: Reads, tenant: Tenant) -> QuotaView:
        period, start = _period(now())
        used = await reads.trials_used(tenant.id, period)
        return QuotaView(tenant.id, tenant.tier, limits(self._settings, tenant.tier), used, start)

    async def get(self, principal: Principal, tenant_id: str) -> QuotaView:
        """The quota of ``tenant_id`` (default: the caller's). Users see only their own."""
        if principal.is_service:
            if not tenant_id:
                raise InvalidArgument("tenant_id", "required when a service asks")
        elif tenant_id and tenant_id != principal.tenant_id:
            raise NotFound("tenant", tenant_id)
        wanted = tenant_id or principal.tenant_id
        async with self._store.reading() as reads:
            if not principal.is_service:  # a disabled or demoted user, as every identity RPC
                await Accounts.caller(reads, principal)
            tenant = await reads.tenant(wanted)
            if tenant is None:
                raise NotFound("tenant", wanted)
            return await self._view(reads, tenant)

    async def reserve(self, tenant_id: str, trials: int, request_id: str) -> QuotaView:
        """Reserve ``trials`` this month; a repeated ``request_id`` reserves nothing more."""
        async with self._lock, self._store.writing() as writes:
            tenant = await writes.tenant(tenant_id, lock=True)
            if tenant is None:
                raise NotFound("tenant", tenant_id)
            if await writes.reserved(tenant_id, request_id):
                return await self._view(writes, tenant)
            view = await self._view(writes, tenant)
            if trials > view.limits.trials_per_simulation:
                raise ResourceExhausted(
                    "trials_per_simulation",
                    f"{trials} trials exceed the {tenant.tier} tier's "
                    f"{view.limits.trials_per_simulation} per simulation",
                    subject=f"tenants/{tenant_id}",
                )
            if view.trials_used + trials > view.limits.trials_per_month:
                raise ResourceExhausted(
                    "trials_per_month",
                    f"{trials} more trials exceed the monthly {view.limits.trials_per_month} "
                    f"({view.trials_used} used)",
                    subject=f"tenants/{tenant_id}",
                )
            period, _ = _period(now())
            await writes.reserve(tenant_id, request_id, period, trials, now())
            return await self._view(writes, tenant)
