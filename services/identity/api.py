"""IdentityService servicer: translates protobuf ↔ domain and nothing else."""

from __future__ import annotations

import datetime as dt
from typing import Any

from alea.access.v1 import access_pb2
from alea.identity.v1 import identity_pb2 as pb
from alea.identity.v1 import identity_pb2_grpc
from google.protobuf import empty_pb2

from services.identity.apikeys import ApiKeys
from services.identity.domain import Accounts, Tokens
from services.identity.quota import Quotas, QuotaView
from services.identity.store import ApiKey, Tenant, User
from services.identity.tokens import SigningKeys
from services.runtime.context import ServicerContext, current_principal
from services.runtime.convert import timestamp
from services.runtime.listing import ListRequest

__all__ = ["IdentityServicer"]


def _role(name: str) -> str:
    return f"ROLE_{name.upper()}"  # enum fields accept their value names


def _tier(name: str) -> str:
    return f"TIER_{name.upper()}"


def _role_name(value: int) -> str:
    return access_pb2.Role.Name(value).removeprefix("ROLE_").lower()


def _tenant(row: Tenant) -> pb.Tenant:
    return pb.Tenant(
        id=row.id,
        display_name=row.display_name,
        tier=_tier(row.tier),
        create_time=timestamp(row.create_time),
        update_time=timestamp(row.update_time),
    )


def _user(row: User, platform: bool) -> pb.User:
    return pb.User(
        id=row.id,
        tenant_id=row.tenant_id,
        email=row.email,
        display_name=row.display_name,
        role=_role(row.role),
        preferences=pb.Preferences(**row.preferences),
        disabled=row.disabled,
        create_time=timestamp(row.create_time),
        update_time=timestamp(row.update_time),
        last_login_time=timestamp(row.last_login_time),
        platform=platform,
    )


def _preferences(message: pb.Preferences) -> dict[str, Any]:
    values: dict[str, Any] = {
        "locale": message.locale or None,
        "default_trials": message.default_trials or None,
        "notify_on_completion": message.notify_on_completion or None,
    }
    if message.HasField("default_seed"):
        values["default_seed"] = message.default_seed
    return values


def _tokens(tokens: Tokens) -> pb.Tokens:
    return pb.Tokens(
        access_token=tokens.access_token,
        token_type="Bearer",
        expires_in=tokens.expires_in,
        refresh_token=tokens.refresh_token,
        refresh_expires_in=tokens.refresh_expires_in,
    )


def _api_key(row: ApiKey) -> pb.ApiKey:
    return pb.ApiKey(
        id=row.id,
        tenant_id=row.tenant_id,
        user_id=row.user_id,
        display_name=row.display_name,
        role=_role(row.role),
        prefix=row.prefix,
        expire_time=timestamp(row.expire_time),
        revoke_time=timestamp(row.revoke_time),
        last_used_time=timestamp(row.last_used_time),
        create_time=timestamp(row.create_time),
        update_time=timestamp(row.update_time),
    )


def _list_request(request: pb.ListUsersRequest | pb.ListApiKeysRequest) -> ListRequest:
    return ListRequest(request.page_size, request.page_token, request.filter, request.order_by)


def _quota(view: QuotaView) -> pb.Quota:
    return pb.Quota(
        tenant_id=view.tenant_id,
        tier=_tier(view.tier),
        trials_per_month=view.limits.trials_per_month,
        trials_per_simulation=view.limits.trials_per_simulation,
        storage_bytes=view.limits.storage_bytes,
        trials_used_this_month=view.trials_used,
        period_start_time=timestamp(view.period_start),
    )


class IdentityServicer(identity_pb2_grpc.IdentityServiceServicer):
    """The IdentityService RPCs; access rules and validation ran before each handler."""

    def __init__(
        self, accounts: Accounts, api_keys: ApiKeys, quotas: Quotas, keys: SigningKeys
    ) -> None:
        self.accounts, self.api_keys, self.quotas, self.keys = accounts, api_keys, quotas, keys

    def _user(self, row: User) -> pb.User:
        return _user(row, self.accounts.is_platform(row))

    async def Register(
        self, request: pb.RegisterRequest, context: ServicerContext
    ) -> pb.RegisterResponse:
        tenant, user, tokens = await self.accounts.register(
            request.tenant_display_name,
            request.email,
            request.password,
            request.display_name,
            request.request_id,
        )
        return pb.RegisterResponse(
            tenant=_tenant(tenant), user=self._user(user), tokens=_tokens(tokens)
        )

    async def Login(self, request: pb.LoginRequest, context: ServicerContext) -> pb.LoginResponse:
        tokens, user = await self.accounts.login(request.email, request.password)
        return pb.LoginResponse(tokens=_tokens(tokens), user=self._user(user))

    async def Refresh(
        self, request: pb.RefreshRequest, context: ServicerContext
    ) -> pb.RefreshResponse:
        return pb.RefreshResponse(
            tokens=_tokens(await self.accounts.refresh(request.refresh_token))
        )

    async def Logout(self, request: pb.LogoutRequest, context: ServicerContext) -> empty_pb2.Empty:
        await self.accounts.logout(request.refresh_token)
        return empty_pb2.Empty()

    async def GetTenant(self, request: pb.GetTenantRequest, context: ServicerContext) -> pb.Tenant:
        return _tenant(await self.accounts.get_tenant(current_principal(), request.tenant_id))

    async def CreateUser(self, request: pb.CreateUserRequest, context: ServicerContext) -> pb.User:
        user = await self.accounts.create_user(
            current_principal(),
            request.email,
            request.password,
            request.display_name,
            _role_name(request.role),
            request.request_id,
        )
        return self._user(user)

    async def GetUser(self, request: pb.GetUserRequest, context: ServicerContext) -> pb.User:
        return self._user(await self.accounts.get_user(current_principal(), request.user_id))

    async def UpdateUser(self, request: pb.UpdateUserRequest, context: ServicerContext) -> pb.User:
        given = request.user
        values = {
            "display_name": given.display_name,
            "preferences": _preferences(given.preferences),
            "role": _role_name(given.role) if given.role else "",
            "disabled": given.disabled,
        }
        user = await self.accounts.update_user(
            current_principal(), given.id, list(request.update_mask.paths), values
        )
        return self._user(user)

    async def ListUsers(
        self, request: pb.ListUsersRequest, context: ServicerContext
    ) -> pb.ListUsersResponse:
        page = await self.accounts.list_users(current_principal(), _list_request(request))
        return pb.ListUsersResponse(
            users=[self._user(u) for u in page.items], next_page_token=page.next_page_token
        )

    async def SearchUsers(
        self, request: pb.SearchUsersRequest, context: ServicerContext
    ) -> pb.SearchUsersResponse:
        paging = ListRequest(request.page_size, request.page_token)
        page = await self.accounts.search_users(current_principal(), request.query, paging)
        return pb.SearchUsersResponse(
            users=[self._user(u) for u in page.items], next_page_token=page.next_page_token
        )

    async def CreateApiKey(
        self, request: pb.CreateApiKeyRequest, context: ServicerContext
    ) -> pb.CreateApiKeyResponse:
        expire = request.expire_time.ToDatetime(dt.UTC) if request.HasField("expire_time") else None
        row, secret = await self.api_keys.create(
            current_principal(),
            request.display_name,
            _role_name(request.role),
            expire,
            request.request_id,
        )
        return pb.CreateApiKeyResponse(api_key=_api_key(row), secret=secret)

    async def ListApiKeys(
        self, request: pb.ListApiKeysRequest, context: ServicerContext
    ) -> pb.ListApiKeysResponse:
        page = await self.api_keys.list(current_principal(), _list_request(request))
        return pb.ListApiKeysResponse(
            api_keys=[_api_key(k) for k in page.items], next_page_token=page.next_page_token
        )

    async def RevokeApiKey(
        self, request: pb.RevokeApiKeyRequest, context: ServicerContext
    ) -> pb.ApiKey:
        return _api_key(await self.api_keys.revoke(current_principal(), request.api_key_id))

    async def GetJwks(
        self, request: pb.GetJwksRequest, context: ServicerContext
    ) -> pb.GetJwksResponse:
        return pb.GetJwksResponse(keys=[pb.Jwk(**key) for key in await self.keys.jwks()])

    async def GetQuota(self, request: pb.GetQuotaRequest, context: ServicerContext) -> pb.Quota:
        return _quota(await self.quotas.get(current_principal(), request.tenant_id))

    async def ReserveTrials(
        self, request: pb.ReserveTrialsRequest, context: ServicerContext
    ) -> pb.Quota:
        view = await self.quotas.reserve(request.tenant_id, request.trials, request.request_id)
        return _quota(view)

    async def VerifyApiKey(
        self, request: pb.VerifyApiKeyRequest, context: ServicerContext
    ) -> pb.VerifyApiKeyResponse:
        principal, expires = await self.api_keys.verify(request.secret)
        expire_time = timestamp(dt.datetime.fromtimestamp(expires, dt.UTC)) if expires else None
        return pb.VerifyApiKeyResponse(
            user_id=principal.user_id,
            tenant_id=principal.tenant_id,
            role=_role(principal.role),
            api_key_id=principal.api_key_id,
            expire_time=expire_time,
            platform=principal.platform,
        )

    async def CheckUser(
        self, request: pb.CheckUserRequest, context: ServicerContext
    ) -> pb.CheckUserResponse:
        active, role, platform = await self.accounts.check_user(request.tenant_id, request.user_id)
        return pb.CheckUserResponse(
            active=active, role=_role(role or "unspecified"), platform=platform
        )

    async def ListContacts(
        self, request: pb.ListContactsRequest, context: ServicerContext
    ) -> pb.ListContactsResponse:
        users = await self.accounts.contacts(
            request.tenant_id, list(request.user_ids), request.include_admins
        )
        return pb.ListContactsResponse(
            contacts=[
                pb.Contact(
                    user_id=u.id,
                    email=u.email,
                    display_name=u.display_name,
                    role=_role(u.role),
                    disabled=u.disabled,
                )
                for u in users
            ]
        )
