"""AdminService servicer: protobuf → domain call → protobuf, nothing else."""

from __future__ import annotations

from collections.abc import AsyncIterator

from alea.admin.v1 import admin_pb2 as pb
from alea.admin.v1 import admin_pb2_grpc
from alea.identity.v1 import identity_pb2
from google.api import httpbody_pb2

from services.admin import convert
from services.admin.audit import AuditLog
from services.admin.overview import Overview
from services.admin.settings import SettingValues
from services.admin.users import UserAdmin
from services.runtime.access import ROLE_NAMES
from services.runtime.context import ServicerContext, current_principal, forwarded_credentials
from services.runtime.listing import ListRequest

__all__ = ["AdminServicer"]

_CONTENT_TYPES = {
    pb.EXPORT_FORMAT_UNSPECIFIED: "text/csv; charset=utf-8",
    pb.EXPORT_FORMAT_CSV: "text/csv; charset=utf-8",
    pb.EXPORT_FORMAT_NDJSON: "application/x-ndjson",
}


def _paging(
    request: pb.ListAuditEventsRequest | pb.ListSettingsRequest | pb.ListSettingChangesRequest,
) -> ListRequest:
    return ListRequest(request.page_size, request.page_token, request.filter, request.order_by)


class AdminServicer(admin_pb2_grpc.AdminServiceServicer):
    """The AdminService RPCs; access rules and validation ran before each handler."""

    def __init__(
        self, audit: AuditLog, settings: SettingValues, overview: Overview, users: UserAdmin
    ) -> None:
        self.audit, self.settings, self.overview, self.users = audit, settings, overview, users

    # -- audit ----------------------------------------------------------------------------

    async def RecordAuditEvent(
        self, request: pb.RecordAuditEventRequest, context: ServicerContext
    ) -> pb.AuditEvent:
        draft = convert.draft_of_single(request, current_principal().service)
        return convert.event(await self.audit.record_one(draft))

    async def RecordAuditEvents(
        self, request: pb.RecordAuditEventsRequest, context: ServicerContext
    ) -> pb.RecordAuditEventsResponse:
        appended = await self.audit.record([convert.draft(r) for r in request.records])
        return pb.RecordAuditEventsResponse(appended=appended)

    async def ListAuditEvents(
        self, request: pb.ListAuditEventsRequest, context: ServicerContext
    ) -> pb.ListAuditEventsResponse:
        paging = ListRequest(
            request.page_size, request.page_token, request.filter, request.order_by
        )
        page = await self.audit.page(current_principal(), request.tenant_id, paging)
        return pb.ListAuditEventsResponse(
            audit_events=[convert.event(e) for e in page.items],
            next_page_token=page.next_page_token,
        )

    async def ExportAuditEvents(
        self, request: pb.ExportAuditEventsRequest, context: ServicerContext
    ) -> AsyncIterator[httpbody_pb2.HttpBody]:
        ndjson = request.format == pb.EXPORT_FORMAT_NDJSON
        chunks = self.audit.export(
            current_principal(),
            request.tenant_id,
            ListRequest(filter=request.filter, order_by=request.order_by),
            ndjson,
        )
        content_type = _CONTENT_TYPES[request.format]
        async for chunk in chunks:
            yield httpbody_pb2.HttpBody(content_type=content_type, data=chunk)
            content_type = ""  # the first chunk carries it

    async def VerifyAuditChain(
        self, request: pb.VerifyAuditChainRequest, context: ServicerContext
    ) -> pb.VerifyAuditChainResponse:
        given = convert.checkpoint(request.checkpoint) if request.HasField("checkpoint") else None
        verdict = await self.audit.verify(
            current_principal(),
            request.tenant_id,
            request.start_sequence,
            request.end_sequence,
            given,
        )
        response = pb.VerifyAuditChainResponse(
            valid=verdict.valid,
            events_checked=verdict.checked,
            first_invalid_sequence=verdict.first_invalid,
            reason=verdict.reason,
            head_sequence=verdict.head_sequence,
        )
        if verdict.checkpoint is not None:
            response.checkpoint.CopyFrom(convert.checkpoint_message(verdict.checkpoint))
        return response

    async def GetAuditCheckpoint(
        self, request: pb.GetAuditCheckpointRequest, context: ServicerContext
    ) -> pb.AuditCheckpoint:
        found = await self.audit.checkpoint(
            current_principal(), request.tenant_id, request.sequence
        )
        return convert.checkpoint_message(found)

    async def CreateAuditCheckpoint(
        self, request: pb.CreateAuditCheckpointRequest, context: ServicerContext
    ) -> pb.AuditCheckpoint:
        signed = await self.audit.create_checkpoint(current_principal(), request.tenant_id)
        return convert.checkpoint_message(signed)

    # -- settings -------------------------------------------------------------------------

    async def GetSetting(
        self, request: pb.GetSettingRequest, context: ServicerContext
    ) -> pb.Setting:
        view = await self.settings.get(current_principal(), request.key, request.tenant_id)
        return convert.setting(view)

    async def SetSetting(
        self, request: pb.SetSettingRequest, context: ServicerContext
    ) -> pb.Setting:
        view = await self.settings.set(
            current_principal(),
            request.setting.key,
            convert.value(request.setting.value),
            request.tenant_id,
            request.reason,
        )
        return convert.setting(view)

    async def ListSettings(
        self, request: pb.ListSettingsRequest, context: ServicerContext
    ) -> pb.ListSettingsResponse:
        paging = ListRequest(
            request.page_size, request.page_token, request.filter, request.order_by
        )
        page = await self.settings.page(current_principal(), request.tenant_id, paging)
        return pb.ListSettingsResponse(
            settings=[convert.setting(v) for v in page.items], next_page_token=page.next_page_token
        )

    async def ListSettingChanges(
        self, request: pb.ListSettingChangesRequest, context: ServicerContext
    ) -> pb.ListSettingChangesResponse:
        paging = ListRequest(
            request.page_size, request.page_token, request.filter, request.order_by
        )
        page = await self.settings.changes(current_principal(), request.tenant_id, paging)
        return pb.ListSettingChangesResponse(
            changes=[convert.setting_change(c) for c in page.items],
            next_page_token=page.next_page_token,
        )

    async def GetEffectiveSettings(
        self, request: pb.GetEffectiveSettingsRequest, context: ServicerContext
    ) -> pb.EffectiveSettings:
        version, unchanged, rows = await self.settings.effective(request.known_version)
        values = [
            pb.SettingValue(
                key=row.key, tenant_id=row.tenant_id, value=convert.json_value(row.value)
            )
            for row in rows
        ]
        return pb.EffectiveSettings(version=version, unchanged=unchanged, values=values)

    # -- overview and users -----------------------------------------------------------------

    async def GetSystemOverview(
        self, request: pb.GetSystemOverviewRequest, context: ServicerContext
    ) -> pb.SystemOverview:
        view = await self.overview.get(current_principal(), forwarded_credentials(context))
        return convert.overview(view)

    async def DisableUser(
        self, request: pb.DisableUserRequest, context: ServicerContext
    ) -> identity_pb2.User:
        user: identity_pb2.User = await self.users.set_disabled(
            current_principal(),
            forwarded_credentials(context),
            request.user_id,
            True,
            request.reason,
        )
        return user

    async def EnableUser(
        self, request: pb.EnableUserRequest, context: ServicerContext
    ) -> identity_pb2.User:
        user: identity_pb2.User = await self.users.set_disabled(
            current_principal(),
            forwarded_credentials(context),
            request.user_id,
            False,
            request.reason,
        )
        return user

    async def ChangeUserRole(
        self, request: pb.ChangeUserRoleRequest, context: ServicerContext
    ) -> identity_pb2.User:
        user: identity_pb2.User = await self.users.change_role(
            current_principal(),
            forwarded_credentials(context),
            request.user_id,
            ROLE_NAMES[request.role],
            request.reason,
        )
        return user
