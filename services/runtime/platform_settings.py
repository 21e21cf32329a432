"""Platform and tenant settings: the one schema, and the values as a service sees them live.

:data:`SCHEMA` declares every setting once — key, scope, type, range, default, unit and
what it does. The admin service validates every SetSetting against it and keeps the
values and their history; services never parse a setting themselves.

A service reads the values through :class:`LiveSettings`: the schema's defaults overlaid
with the values admin returns (``GetEffectiveSettings``), fetched at start-up and then
polled every ``poll_seconds`` (2 s), so a change applies within a few seconds and without
a restart. Polling rather than a stream keeps admin replicas stateless: the version is
the id of the newest change in admin's database, and an unchanged version costs one small
answer. While admin cannot be reached the last values (at first: the defaults) stay in
force, and a warning is logged.

The settings that change behaviour live:

- ``quota.<tier>.*``: identity's tier limits (trials per month and per simulation, bytes
  stored), read on every reservation and quota answer;
- ``simulation.result_cache_ttl_seconds`` (per tenant): how long simulation reuses an
  identical simulation's results, read on every CreateSimulation;
- ``edge.rate_limit_per_second``: the request rate clients are asked to keep, advertised
  by every service in each response's ``ratelimit-policy`` (the edge's own token bucket is
  deployment configuration, ``alea up --rate-limit``);
- ``notification.webhook_*``: when notification retries a webhook delivery and when it
  disables a webhook that keeps failing;
- ``audit.checkpoint_interval_seconds``: how often admin signs audit checkpoints.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from alea.admin.v1 import admin_pb2
from google.protobuf import json_format

from services.runtime.errors import InvalidArgument

__all__ = [
    "CACHE_TTL",
    "PLATFORM",
    "RATE_LIMIT",
    "SCHEMA",
    "TENANT",
    "WEBHOOK_DISABLE_AFTER",
    "WEBHOOK_RETRY_SCHEDULE",
    "LiveSettings",
    "SettingSpec",
]

log = logging.getLogger(__name__)

PLATFORM, TENANT = "platform", "tenant"
INTEGER, NUMBER, BOOLEAN, STRING = "integer", "number", "boolean", "string"
NUMBER_LIST = "number_list"
_MAX_ITEMS = 50
_EXACT = 2**53  # integers beyond it do not survive a JSON number (a double)
CACHE_TTL = "simulation.result_cache_ttl_seconds"
RATE_LIMIT = "edge.rate_limit_per_second"
WEBHOOK_RETRY_SCHEDULE = "notification.webhook_retry_schedule_seconds"
WEBHOOK_DISABLE_AFTER = "notification.webhook_disable_after_seconds"


@dataclass(frozen=True)
class SettingSpec:
    """One setting: who it applies to, its type and range, its default and meaning."""

    key: str
    scope: str  # PLATFORM or TENANT
    type: str  # INTEGER, NUMBER, BOOLEAN, STRING or NUMBER_LIST
    default: Any
    description: str
    minimum: float | None = None
    maximum: float | None = None
    allowed: tuple[str, ...] = ()
    unit: str = ""

    def check(self, value: Any) -> Any:
        """``value`` as this setting's type, or InvalidArgument naming ``setting.value``."""
        field = "setting.value"
        if self.type == BOOLEAN:
            if not isinstance(value, bool):
                raise InvalidArgument(field, f"{self.key} takes true or false")
            return value
        if self.type == STRING:
            if not isinstance(value, str):
                raise InvalidArgument(field, f"{self.key} takes a string")
            if self.allowed and value not in self.allowed:
                raise InvalidArgument(field, f"{self.key} takes one of {', '.join(self.allowed)}")
            return value
        if self.type == NUMBER_LIST:
            if not isinstance(value, list) or not 0 < len(value) <= _MAX_ITEMS:
                reason = f"{self.key} takes a list of 1 to {_MAX_ITEMS} numbers"
                raise InvalidArgument(field, reason)
            return tuple(self._number(field, item) for item in value)
        return self._number(field, value)

    def _number(self, field: str, value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidArgument(field, f"{self.key} takes a number")
        if not math.isfinite(value):
            raise InvalidArgument(field, f"{self.key} takes a finite number")
        if self.type == INTEGER:
            if value != int(value) or abs(value) > _EXACT:
                raise InvalidArgument(field, f"{self.key} takes a whole number")
            value = int(value)
        if self.minimum is not None and value < self.minimum:
            raise InvalidArgument(field, f"{self.key} must be at least {_show(self.minimum)}")
        if self.maximum is not None and value > self.maximum:
            raise InvalidArgument(field, f"{self.key} must be at most {_show(self.maximum)}")
        return value


def _show(bound: float) -> str:
    return str(int(bound)) if bound == int(bound) else str(bound)


def _quota(tier: str, trials_month: int, trials_simulation: int, storage: int) -> list[SettingSpec]:
    name = tier.capitalize()
    return [
        SettingSpec(
            f"quota.{tier}.trials_per_month",
            PLATFORM,
            INTEGER,
            trials_month,
            f"{name} tier: trials a tenant may run per calendar month (UTC).",
            minimum=0,
            maximum=_EXACT,
            unit="trials",
        ),
        SettingSpec(
            f"quota.{tier}.trials_per_simulation",
            PLATFORM,
            INTEGER,
            trials_simulation,
            f"{name} tier: most trials one simulation may request.",
            minimum=1,
            maximum=10_000_000_000,
            unit="trials",
        ),
        SettingSpec(
            f"quota.{tier}.storage_bytes",
            PLATFORM,
            INTEGER,
            storage,
            f"{name} tier: bytes a tenant may store in the files service.",
            minimum=0,
            maximum=_EXACT,
            unit="bytes",
        ),
    ]


SCHEMA: dict[str, SettingSpec] = {
    spec.key: spec
    for spec in [
        *_quota("free", 10_000_000, 1_000_000, 1 << 30),
        *_quota("pro", 1_000_000_000, 100_000_000, 100 << 30),
        *_quota("enterprise", 100_000_000_000, 10_000_000_000, 10 << 40),
        SettingSpec(
            CACHE_TTL,
            TENANT,
            NUMBER,
            86_400.0,
            "How long the results of a simulation are reused for an identical request "
            "(same model, trials, seed and sampling); 0 turns the result cache off.",
            minimum=0,
            maximum=365 * 86_400,
            unit="seconds",
        ),
        SettingSpec(
            RATE_LIMIT,
            PLATFORM,
            INTEGER,
            1000,
            "Requests per second each client is asked to keep, advertised in every "
            "response's ratelimit-policy; the edge's enforced bucket is set at deployment.",
            minimum=1,
            maximum=1_000_000,
            unit="requests/s",
        ),
        SettingSpec(
            WEBHOOK_RETRY_SCHEDULE,
            PLATFORM,
            NUMBER_LIST,
            (0.0, 5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0),
            "Seconds before each attempt of a webhook delivery (the first is the first "
            "attempt); a delivery that failed them all is given up.",
            minimum=0,
            maximum=7 * 86_400,
            unit="seconds",
        ),
        SettingSpec(
            WEBHOOK_DISABLE_AFTER,
            PLATFORM,
            NUMBER,
            5 * 86_400.0,
            "A webhook whose deliveries keep failing this long is disabled.",
            minimum=0,
            maximum=365 * 86_400,
            unit="seconds",
        ),
        SettingSpec(
            "audit.checkpoint_interval_seconds",
            PLATFORM,
            NUMBER,
            300.0,
            "How often the admin service signs a checkpoint of every audit log that grew.",
            minimum=1,
            maximum=86_400,
            unit="seconds",
        ),
    ]
}
"""Every setting, by key."""


EffectiveSource = Callable[[int], Awaitable[admin_pb2.EffectiveSettings]]
"""Admin's GetEffectiveSettings: the values set, unless nothing changed since a version."""


class LiveSettings:
    """The settings as this process sees them now; see the module docstring."""

    def __init__(self, source: EffectiveSource | None, poll_seconds: float = 2.0) -> None:
        self._source = source
        self.poll_seconds = poll_seconds
        self.version = 0
        self._platform: dict[str, Any] = {}
        self._tenants: dict[tuple[str, str], Any] = {}

    def get(self, key: str, tenant_id: str = "") -> Any:
        """The value of ``key`` (for ``tenant_id`` when it is a tenant setting)."""
        spec = SCHEMA[key]
        if spec.scope == TENANT:
            return self._tenants.get((key, tenant_id), spec.default)
        return self._platform.get(key, spec.default)

    def apply(self, answer: admin_pb2.EffectiveSettings) -> bool:
        """Take admin's answer; True when the values changed."""
        if answer.unchanged or answer.version == self.version:
            return False
        platform: dict[str, Any] = {}
        tenants: dict[tuple[str, str], Any] = {}
        for item in answer.values:
            spec = SCHEMA.get(item.key)
            if spec is None:  # a key this build does not know (a newer admin): ignore it
                continue
            try:
                value = spec.check(json_format.MessageToDict(item.value))
            except InvalidArgument:
                log.warning("setting %s: admin sent a value this build refuses", item.key)
                continue
            if item.tenant_id:
                tenants[(item.key, item.tenant_id)] = value
            else:
                platform[item.key] = value
        self._platform, self._tenants, self.version = platform, tenants, answer.version
        log.info("settings at version %d", answer.version)
        return True

    async def refresh(self) -> bool:
        """Ask admin once; True when the values changed."""
        if self._source is None:
            return False
        return self.apply(await self._source(self.version))

    async def run(self, stop: asyncio.Event) -> None:
        """Poll every ``poll_seconds`` until ``stop`` (a background task)."""
        warned = False
        while not stop.is_set():
            try:
                await self.refresh()
                warned = False
            except Exception as exc:
                if not warned:
                    log.warning("settings: admin unreachable (kept %d): %s", self.version, exc)
                    warned = True
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.poll_seconds)
