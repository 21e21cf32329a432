"""Platform and tenant settings: read, set (validated against the schema), history.

The schema is ``runtime.platform_settings.SCHEMA``. Platform settings have one value, set
by platform operators and readable by every admin; tenant settings have a value per
tenant, set by the tenant's admins (or an operator naming the tenant). Every change is
kept in the history and noted in the audit entry of the call with its old and new value.
Services read the values through ``GetEffectiveSettings`` (:meth:`SettingValues.effective`).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from services.admin.store import SettingChange, SettingRow, SettingsStore
from services.runtime import audit
from services.runtime.context import Principal
from services.runtime.errors import InvalidArgument, NotFound, PermissionDenied
from services.runtime.listing import ListRequest, Page
from services.runtime.platform_settings import PLATFORM, SCHEMA, SettingSpec

__all__ = ["SettingValues", "SettingView"]

_TERM = re.compile(r'\s*(key|from_default)\s*=\s*(?:"([^"]*)"|(\S+))\s*')
_AND = re.compile(r"\s+AND\s+")


@dataclass(frozen=True)
class SettingView:
    """A setting as it applies to one tenant (``""`` for a platform setting)."""

    spec: SettingSpec
    tenant_id: str
    row: SettingRow | None  # None: never set, the default applies

    @property
    def value(self) -> Any:
        return self.spec.default if self.row is None else self.row.value


def _spec(key: str, field: str) -> SettingSpec:
    spec = SCHEMA.get(key)
    if spec is None:
        raise InvalidArgument(field, f"unknown setting {key!r}; known: {', '.join(sorted(SCHEMA))}")
    return spec


def _matcher(text: str) -> Callable[[SettingView], bool]:
    """A predicate over views for the documented filter (``key``, ``from_default``)."""
    terms: list[tuple[str, str]] = []
    for term in _AND.split(text.strip()) if text.strip() else []:
        match = _TERM.fullmatch(term)
        if match is None:
            raise InvalidArgument(
                "filter",
                f"cannot parse {term.strip()!r}: expected `key = ...` or `from_default = true`",
            )
        value = match[2] if match[2] is not None else match[3]
        if match[1] == "from_default" and value not in ("true", "false"):
            raise InvalidArgument("filter", f"from_default needs true or false, got {value!r}")
        terms.append((match[1], value))
    patterns = [re.compile(re.escape(v).replace(r"\*", ".*")) for f, v in terms if f == "key"]
    defaults = [v == "true" for f, v in terms if f == "from_default"]

    def matches(view: SettingView) -> bool:
        keys_match = all(p.fullmatch(view.spec.key) for p in patterns)
        return keys_match and all((view.row is None) == d for d in defaults)

    return matches


class SettingValues:
    """The settings domain over :class:`SettingsStore`."""

    def __init__(self, store: SettingsStore) -> None:
        self.store = store

    @staticmethod
    def _caller_tenant(principal: Principal, tenant_id: str) -> str:
        """The tenant the caller means: its own unless an operator (or a service) names one."""
        if principal.is_service:
            return tenant_id
        if tenant_id and tenant_id != principal.tenant_id and not principal.platform:
            raise NotFound("tenant", tenant_id)
        return tenant_id or principal.tenant_id

    def _tenant(self, principal: Principal, spec: SettingSpec, tenant_id: str) -> str:
        """Whose value of ``spec`` the caller means (``""`` for a platform setting)."""
        if spec.scope == PLATFORM:
            return ""
        return self._caller_tenant(principal, tenant_id)

    async def _view(self, spec: SettingSpec, tenant: str) -> SettingView:
        rows = await self.store.values(tenant) if tenant or spec.scope == PLATFORM else {}
        return SettingView(spec, tenant, rows.get(spec.key))

    async def get(self, principal: Principal, key: str, tenant_id: str) -> SettingView:
        spec = SCHEMA.get(key)
        if spec is None:
            raise NotFound("setting", key)
        return await self._view(spec, self._tenant(principal, spec, tenant_id))

    async def page(
        self, principal: Principal, tenant_id: str, request: ListRequest
    ) -> Page[SettingView]:
        """Every setting as it applies to the tenant, ordered by key; ``page_size`` 0: all."""
        if request.order_by.strip() not in ("", "key"):
            raise InvalidArgument("order_by", "settings are ordered by `key` only")
        tenant = self._caller_tenant(principal, tenant_id)
        platform_rows, tenant_rows = await self.store.values(""), await self.store.values(tenant)
        matches = _matcher(request.filter)
        views = []
        for key in sorted(SCHEMA):
            spec = SCHEMA[key]
            owner, rows = ("", platform_rows) if spec.scope == PLATFORM else (tenant, tenant_rows)
            view = SettingView(spec, owner, rows.get(key))
            if matches(view):
                views.append(view)
        after = _decode(request.page_token)
        views = [v for v in views if v.spec.key > after]
        size = request.page_size or len(views)
        page, rest = views[:size], views[size:]
        token = _encode(page[-1].spec.key) if rest and page else ""
        return Page(page, token)

    async def set(
        self, principal: Principal, key: str, value: Any, tenant_id: str, reason: str
    ) -> SettingView:
        """Validate and set a value; the audit entry notes the old and new value."""
        spec = _spec(key, "setting.key")
        if spec.scope == PLATFORM and not principal.platform:
            raise PermissionDenied(f"{key} is a platform setting: only platform operators set it")
        tenant = self._tenant(principal, spec, tenant_id)
        checked = spec.check(value)
        row, change = await self.store.set(tenant, key, checked, principal.user_id, reason)
        audit.note(
            key=key,
            tenant_id=tenant,
            old_value=spec.default if change.old_value is None else change.old_value,
            new_value=checked,
            reason=reason,
        )
        return SettingView(spec, tenant, row)

    async def changes(
        self, principal: Principal, tenant_id: str, request: ListRequest
    ) -> Page[SettingChange]:
        return await self.store.changes(self._caller_tenant(principal, tenant_id), request)

    async def effective(self, known_version: int) -> tuple[int, bool, list[SettingRow]]:
        """(version, unchanged since ``known_version``, every value set)."""
        if known_version and await self.store.version() == known_version:
            return known_version, True, []
        version, rows = await self.store.everything()
        return version, version == known_version, [] if version == known_version else rows


def _encode(key: str) -> str:
    return base64.urlsafe_b64encode(key.encode()).decode().rstrip("=")


def _decode(token: str) -> str:
    if not token:
        return ""
    try:
        return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        raise InvalidArgument("page_token", "malformed page token") from None
