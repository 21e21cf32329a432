"""Every call one Alea service makes to another, in one place.

:class:`Peers` opens one traced mTLS channel per peer service on first use (as the
calling service's own ``spiffe://alea/<service>`` identity, at ``ALEA_<PEER>_ADDRESS``)
and closes them all at shutdown; ``runtime.server.run`` hands it to a service's
``build``. Each peer has one client class here whose methods speak domain terms.

A failed call becomes a domain error at one boundary, :func:`_failed`: the codes a
method lists as the caller's own business (the quota it exceeded, the file it may not
read) come back as the peer's error, rebuilt by ``errors.from_rpc_error``; any other
failure means the peer could not serve and becomes :class:`Unavailable`, so the
caller's client retries rather than seeing another service's INTERNAL.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import grpc
from alea.admin.v1 import admin_pb2, admin_pb2_grpc
from alea.analytics.v1 import analytics_pb2, analytics_pb2_grpc
from alea.files.v1 import files_pb2, files_pb2_grpc
from alea.identity.v1 import identity_pb2, identity_pb2_grpc
from alea.notification.v1 import notification_pb2, notification_pb2_grpc
from alea.simulation.v1 import simulation_pb2, simulation_pb2_grpc
from alea.status.v1 import status_pb2, status_pb2_grpc
from google.protobuf import field_mask_pb2, json_format
from grpc_health.v1 import health_pb2, health_pb2_grpc
from opentelemetry.instrumentation.grpc import aio_client_interceptors

from services.runtime.access import ROLE_NAMES
from services.runtime.clients import secure_channel
from services.runtime.config import Settings
from services.runtime.context import Principal
from services.runtime.errors import (
    AleaError,
    InvalidArgument,
    Unauthenticated,
    Unavailable,
    from_rpc_error,
)
from services.runtime.outbox import OutboxRecord, Rejected
from services.runtime.platform_settings import LiveSettings

__all__ = [
    "AdminClient",
    "AnalyticsClient",
    "Contact",
    "FilesClient",
    "IdentityClient",
    "NotificationClient",
    "Peers",
    "SimulationClient",
    "StatusClient",
]

Credentials = Sequence[tuple[str, str]]
"""A user's own ``authorization`` / ``x-api-key`` metadata, forwarded on their behalf."""

_CODE = grpc.StatusCode
_TIMEOUT = 10.0
_PROBE_TIMEOUT = 2.0  # an overview must not wait long on a service that does not answer
# What a peer may answer about the user's own request made on their behalf: the object
# is missing, not theirs, malformed, refused by a rule, or fails its integrity check.
_USERS_OWN = frozenset(
    {
        _CODE.NOT_FOUND,
        _CODE.INVALID_ARGUMENT,
        _CODE.PERMISSION_DENIED,
        _CODE.UNAUTHENTICATED,
        _CODE.FAILED_PRECONDITION,
        _CODE.DATA_LOSS,
    }
)


def _failed(
    peer: str, what: str, error: grpc.aio.AioRpcError, passing: frozenset[grpc.StatusCode]
) -> AleaError:
    """The domain error for a failed call to ``peer`` (see the module docstring)."""
    if error.code() in passing:
        return from_rpc_error(error)
    return Unavailable(f"{peer} could not {what}: {error.code().name}")


@dataclass(frozen=True)
class Contact:
    """Where to reach a user: identity's answer to ListContacts."""

    user_id: str
    email: str
    display_name: str
    role: str
    disabled: bool


class IdentityClient:
    """Identity: signing keys, API keys, trial quotas, storage limits, preferences."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        self._stub = identity_pb2_grpc.IdentityServiceStub(channel)

    async def jwks(self) -> list[dict[str, Any]]:
        """The public keys that verify access tokens, as JWK dictionaries."""
        try:
            response = await self._stub.GetJwks(identity_pb2.GetJwksRequest(), timeout=5)
        except grpc.aio.AioRpcError as exc:
            raise _failed("identity", "give its JWKS", exc, frozenset()) from None
        return [
            json_format.MessageToDict(k, preserving_proto_field_name=True) for k in response.keys
        ]

    async def verify_api_key(self, secret: str) -> tuple[Principal, float | None]:
        """The principal of an active API key and its expiry (epoch seconds, None: never)."""
        request = identity_pb2.VerifyApiKeyRequest(secret=secret)
        try:
            answer = await self._stub.VerifyApiKey(request, timeout=5)
        except grpc.aio.AioRpcError as exc:
            if exc.code() in (_CODE.UNAUTHENTICATED, _CODE.INVALID_ARGUMENT):
                raise Unauthenticated("invalid API key") from None
            raise _failed("identity", "verify an API key", exc, frozenset()) from None
        principal = Principal(
            user_id=answer.user_id,
            tenant_id=answer.tenant_id,
            role=ROLE_NAMES.get(answer.role, ""),
            api_key_id=answer.api_key_id,
            platform=answer.platform,
        )
        expires = answer.expire_time.seconds if answer.HasField("expire_time") else None
        return principal, expires

    async def check_user(self, tenant_id: str, user_id: str) -> tuple[bool, str, bool]:
        """(active, current role, platform operator) of the user behind an access token."""
        request = identity_pb2.CheckUserRequest(tenant_id=tenant_id, user_id=user_id)
        try:
            answer = await self._stub.CheckUser(request, timeout=5)
        except grpc.aio.AioRpcError as exc:
            if exc.code() == _CODE.INVALID_ARGUMENT:  # a token whose ids are not UUIDs
                return False, "", False
            raise _failed("identity", "check a user", exc, frozenset()) from None
        return answer.active, ROLE_NAMES.get(answer.role, ""), answer.platform

    async def reserve_trials(self, tenant_id: str, trials: int, reservation_id: str) -> None:
        """Reserve ``trials`` against the tenant's quotas (idempotent by reservation id);
        ResourceExhausted names the limit."""
        request = identity_pb2.ReserveTrialsRequest(
            tenant_id=tenant_id, trials=trials, request_id=reservation_id
        )
        try:
            await self._stub.ReserveTrials(request, timeout=_TIMEOUT)
        except grpc.aio.AioRpcError as exc:
            passing = frozenset({_CODE.RESOURCE_EXHAUSTED})
            raise _failed("identity", "reserve trials", exc, passing) from None

    async def default_seed(self, user_id: str, credentials: Credentials) -> int | None:
        """The seed the user prefers when a simulation leaves it unset (None: no
        preference), read with the user's own ``credentials``."""
        request = identity_pb2.GetUserRequest(user_id=user_id)
        try:
            user = await self._stub.GetUser(request, metadata=credentials, timeout=5)
        except grpc.aio.AioRpcError as exc:
            passing = frozenset({_CODE.UNAUTHENTICATED})
            raise _failed("identity", "read the user's preferences", exc, passing) from None
        preferences = user.preferences
        return preferences.default_seed if preferences.HasField("default_seed") else None

    async def user_exists(self, user_id: str, credentials: Credentials) -> bool:
        """Whether ``user_id`` is a user of the tenant of ``credentials`` (the caller's own,
        forwarded): another tenant's user and one that does not exist are alike False."""
        request = identity_pb2.GetUserRequest(user_id=user_id)
        try:
            await self._stub.GetUser(request, metadata=credentials, timeout=5)
        except grpc.aio.AioRpcError as exc:
            if exc.code() == _CODE.NOT_FOUND:
                return False
            passing = frozenset({_CODE.UNAUTHENTICATED})
            raise _failed("identity", "look the user up", exc, passing) from None
        return True

    async def change_user(
        self,
        user_id: str,
        credentials: Credentials,
        *,
        disabled: bool | None = None,
        role: str = "",
    ) -> identity_pb2.User:
        """Disable/enable a user or change their role, with an admin's own ``credentials``
        (identity applies its rules: admins only, a tenant keeps an active admin)."""
        fields: dict[str, Any] = {"id": user_id}
        if disabled is not None:
            fields["disabled"] = disabled
        if role:
            fields["role"] = f"ROLE_{role.upper()}"  # enum fields take their value names
        paths = [name for name in ("disabled", "role") if name in fields]
        request = identity_pb2.UpdateUserRequest(
            user=identity_pb2.User(**fields), update_mask=field_mask_pb2.FieldMask(paths=paths)
        )
        try:
            user: identity_pb2.User = await self._stub.UpdateUser(
                request, metadata=credentials, timeout=_TIMEOUT
            )
            return user
        except grpc.aio.AioRpcError as exc:
            raise _failed("identity", "change the user", exc, _USERS_OWN) from None

    async def user(self, user_id: str, credentials: Credentials) -> identity_pb2.User:
        """A user of the caller's tenant, read with the caller's ``credentials``."""
        request = identity_pb2.GetUserRequest(user_id=user_id)
        try:
            found: identity_pb2.User = await self._stub.GetUser(
                request, metadata=credentials, timeout=5
            )
            return found
        except grpc.aio.AioRpcError as exc:
            raise _failed("identity", "read the user", exc, _USERS_OWN) from None

    async def count_users(self, credentials: Credentials) -> int:
        """Users of the caller's tenant."""
        count, token = 0, ""
        while True:
            request = identity_pb2.ListUsersRequest(page_size=1000, page_token=token)
            try:
                page = await self._stub.ListUsers(request, metadata=credentials, timeout=_TIMEOUT)
            except grpc.aio.AioRpcError as exc:
                raise _failed("identity", "list the users", exc, _USERS_OWN) from None
            count += len(page.users)
            token = page.next_page_token
            if not token:
                return count

    async def storage_limit(self, tenant_id: str) -> int:
        """Bytes the tenant may store."""
        request = identity_pb2.GetQuotaRequest(tenant_id=tenant_id)
        try:
            quota: identity_pb2.Quota = await self._stub.GetQuota(request, timeout=5)
        except grpc.aio.AioRpcError as exc:
            raise _failed("identity", "give the storage quota", exc, frozenset()) from None
        return quota.storage_bytes

    async def contacts(
        self, tenant_id: str, user_ids: Sequence[str], include_admins: bool
    ) -> list[Contact]:
        """Email and role of the tenant's users named (and of every admin, if asked)."""
        request = identity_pb2.ListContactsRequest(
            tenant_id=tenant_id, user_ids=list(user_ids), include_admins=include_admins
        )
        try:
            answer = await self._stub.ListContacts(request, timeout=5)
        except grpc.aio.AioRpcError as exc:
            raise _failed("identity", "list contacts", exc, frozenset()) from None
        return [
            Contact(c.user_id, c.email, c.display_name, ROLE_NAMES.get(c.role, ""), c.disabled)
            for c in answer.contacts
        ]


class NotificationClient:
    """Notification: the sink of every service's events (see ``runtime.events``)."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        self._stub = notification_pb2_grpc.NotificationServiceStub(channel)

    async def publish(self, record: OutboxRecord) -> None:
        """Publish one outbox record of topic ``events`` (an ``Event``); notification
        deduplicates by event id, so a record delivered twice is recorded once. A record
        it refuses as malformed is :class:`Rejected`; any other failure is retried."""
        request = notification_pb2.PublishEventRequest(
            event=notification_pb2.Event.FromString(record.payload)
        )
        try:
            await self._stub.PublishEvent(request, timeout=_TIMEOUT)
        except grpc.aio.AioRpcError as exc:
            if exc.code() == _CODE.INVALID_ARGUMENT:
                raise Rejected(exc.details() or "invalid event") from None
            raise _failed("notification", "record the event", exc, frozenset()) from None


class FilesClient:
    """Files: workbooks read on a user's behalf, a tenant's storage."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        self._stub = files_pb2_grpc.FilesServiceStub(channel)

    async def download(
        self, file_id: str, credentials: Credentials, max_bytes: int | None = None
    ) -> bytes:
        """The bytes of a file, read with the user's ``credentials`` (their access rights);
        a file over ``max_bytes`` is InvalidArgument (``file_id``), read no further."""
        chunks, size = [], 0
        try:
            call = self._stub.Download(
                files_pb2.DownloadRequest(file_id=file_id), metadata=credentials, timeout=60
            )
            async for chunk in call:
                size += len(chunk.data)
                if max_bytes is not None and size > max_bytes:
                    call.cancel()
                    raise InvalidArgument("file_id", f"the file is over {max_bytes} bytes")
                chunks.append(chunk.data)
        except grpc.aio.AioRpcError as exc:
            raise _failed("files", "read the file", exc, _USERS_OWN) from None
        return b"".join(chunks)

    async def storage(self, credentials: Credentials) -> tuple[int, int]:
        """(bytes used, bytes allowed) of the caller's tenant."""
        try:
            usage = await self._stub.GetStorageUsage(
                files_pb2.GetStorageUsageRequest(), metadata=credentials, timeout=5
            )
        except grpc.aio.AioRpcError as exc:
            raise _failed("files", "give the storage used", exc, _USERS_OWN) from None
        return usage.used_bytes, usage.quota_bytes


class SimulationClient:
    """Simulation: a tenant's queue."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        self._stub = simulation_pb2_grpc.SimulationServiceStub(channel)

    async def queue(self, credentials: Credentials) -> simulation_pb2.QueueStatus:
        """The caller's tenant's queued and running simulations, and the live workers."""
        request = simulation_pb2.GetQueueStatusRequest()
        try:
            queue: simulation_pb2.QueueStatus = await self._stub.GetQueueStatus(
                request, metadata=credentials, timeout=5
            )
            return queue
        except grpc.aio.AioRpcError as exc:
            raise _failed("simulation", "give its queue", exc, _USERS_OWN) from None


class StatusClient:
    """Any service: its health (grpc.health.v1) and its replica's status (the runtime's
    StatusService)."""

    def __init__(self, peer: str, channel: grpc.aio.Channel) -> None:
        self.peer = peer
        self._health = health_pb2_grpc.HealthStub(channel)
        self._status = status_pb2_grpc.StatusServiceStub(channel)

    async def health(self) -> int:
        """The ``HealthCheckResponse.ServingStatus`` of the whole service."""
        request = health_pb2.HealthCheckRequest(service="")
        try:
            answer = await self._health.Check(request, timeout=_PROBE_TIMEOUT)
        except grpc.aio.AioRpcError as exc:
            raise _failed(self.peer, "answer a health check", exc, frozenset()) from None
        return int(answer.status)

    async def status(self) -> status_pb2.ServiceStatus:
        """The answering replica's status."""
        request = status_pb2.GetStatusRequest()
        try:
            status: status_pb2.ServiceStatus = await self._status.GetStatus(
                request, timeout=_PROBE_TIMEOUT
            )
            return status
        except grpc.aio.AioRpcError as exc:
            raise _failed(self.peer, "give its status", exc, frozenset()) from None


def _relayed(peer: str, what: str, error: grpc.aio.AioRpcError) -> Exception:
    """The error an outbox sink raises: :class:`Rejected` (kept as dead) for a record the
    peer refuses as malformed, else Unavailable (the relay retries)."""
    if error.code() == _CODE.INVALID_ARGUMENT:
        return Rejected(f"{peer} refused {what}: {error.details()}")
    return _failed(peer, what, error, frozenset())


class AdminClient:
    """Admin: the audit log (relayed batches) and the platform's settings."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        self._stub = admin_pb2_grpc.AdminServiceStub(channel)

    async def record_audit_events(self, record: OutboxRecord) -> None:
        """Outbox sink of topic ``audit``: one batch of entries (a RecordAuditEventsRequest)."""
        request = admin_pb2.RecordAuditEventsRequest.FromString(record.payload)
        try:
            await self._stub.RecordAuditEvents(request, timeout=_TIMEOUT)
        except grpc.aio.AioRpcError as exc:
            raise _relayed("admin", "audit entries", exc) from None

    async def effective_settings(self, known_version: int) -> admin_pb2.EffectiveSettings:
        """Every setting value set, unless nothing changed since ``known_version``."""
        request = admin_pb2.GetEffectiveSettingsRequest(known_version=known_version)
        try:
            settings: admin_pb2.EffectiveSettings = await self._stub.GetEffectiveSettings(
                request, timeout=5
            )
            return settings
        except grpc.aio.AioRpcError as exc:
            raise _failed("admin", "give the settings", exc, frozenset()) from None


class AnalyticsClient:
    """Analytics: usage records and events relayed from the outbox."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        self._stub = analytics_pb2_grpc.AnalyticsServiceStub(channel)

    async def record_usage(self, record: OutboxRecord) -> None:
        """Outbox sink of topic ``usage``: one RecordEventRequest (API calls)."""
        request = analytics_pb2.RecordEventRequest.FromString(record.payload)
        try:
            await self._stub.RecordEvent(request, timeout=_TIMEOUT)
        except grpc.aio.AioRpcError as exc:
            raise _relayed("analytics", "a usage record", exc) from None

    async def ingest_event(self, record: OutboxRecord) -> None:
        """Outbox sink of topic ``analytics``: one event (an ``Event``), for its usage."""
        event = notification_pb2.Event.FromString(record.payload)
        request = analytics_pb2.IngestEventsRequest(events=[event])
        try:
            await self._stub.IngestEvents(request, timeout=_TIMEOUT)
        except grpc.aio.AioRpcError as exc:
            raise _relayed("analytics", "an event", exc) from None


class Peers:
    """The channels this service opens to the others, one per peer, closed together."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._channels: dict[str, grpc.aio.Channel] = {}

    def channel(self, peer: str) -> grpc.aio.Channel:
        """The mTLS channel to ``peer``, opened on first use."""
        if peer not in self._channels:
            address = self._settings.address(peer)
            own = self._settings.service
            # The OpenTelemetry client interceptors carry the trace context of the RPC
            # being handled, so the peer's server span joins the caller's trace.
            self._channels[peer] = secure_channel(
                address, self._settings.pki_dir, own, aio_client_interceptors()
            )
        return self._channels[peer]

    async def reconnected(self, peer: str) -> None:
        """Return once the channel to ``peer`` next becomes READY after not being so.

        A relay whose peer was down waits on this beside its backoff, so it learns that the
        peer is back within gRPC's reconnect interval (at most 2 s, a TCP connect each,
        no RPC) rather than when a long backoff ends. A channel READY all along (the peer
        answers, but fails) does not return here: the caller's backoff applies.
        """
        channel = self.channel(peer)
        state = channel.get_state(try_to_connect=True)
        while True:
            await channel.wait_for_state_change(state)
            state = channel.get_state(try_to_connect=True)
            if state == grpc.ChannelConnectivity.READY:
                return

    @cached_property
    def identity(self) -> IdentityClient:
        return IdentityClient(self.channel("identity"))

    @cached_property
    def files(self) -> FilesClient:
        return FilesClient(self.channel("files"))

    @cached_property
    def notification(self) -> NotificationClient:
        return NotificationClient(self.channel("notification"))

    @cached_property
    def simulation(self) -> SimulationClient:
        return SimulationClient(self.channel("simulation"))

    def status(self, peer: str) -> StatusClient:
        """Health and status of ``peer``."""
        return StatusClient(peer, self.channel(peer))

    @cached_property
    def admin(self) -> AdminClient:
        return AdminClient(self.channel("admin"))

    @cached_property
    def analytics(self) -> AnalyticsClient:
        return AnalyticsClient(self.channel("analytics"))

    @cached_property
    def settings(self) -> LiveSettings:
        """The platform settings served by admin, as this process sees them now."""
        return LiveSettings(self.admin.effective_settings)

    async def close(self) -> None:
        """Close every channel opened so far."""
        channels, self._channels = list(self._channels.values()), {}
        for channel in channels:
            await channel.close(None)
