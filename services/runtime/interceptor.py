"""The server interceptor every Alea service runs: one guard around every RPC.

In order, before the handler: the RPC's OpenTelemetry server span (continuing the
caller's trace from ``traceparent``), request id (``x-request-id`` or a new one, returned
in trailing metadata), mTLS peer check, authentication, authorisation from the RPC's
``(alea.access.v1.rule)``, request validation (each message of a client stream too; a
request whose bytes do not parse is INVALID_ARGUMENT, see ``validation.Undecodable``).
Around the handler: domain errors mapped to rich statuses (:mod:`.errors`), a database
that cannot be reached to UNAVAILABLE (clients retry), anything else to INTERNAL with an
error id, one JSON log line and one duration sample per RPC, the span ended with the
status, and the finished call handed to each observer (the audit trail, the recent-calls
counters, the API-call meter: each only queues or counts, in microseconds, so the
response is never delayed). Unary and streaming handlers, async functions and async
generators, are all wrapped, once per method. A streaming handler may yield a response
already serialised (``bytes``): it is sent as it is, so a message fanned out to many
streams (notification's feed) is serialised once, not once per stream. Response streams
stay open as long as their clients like, so a replica holds at most ``max_streams`` of
them, and ``max_streams_per_tenant`` of one tenant; one more is RESOURCE_EXHAUSTED.

The span is made here rather than by OpenTelemetry's gRPC server interceptor, with the
same name and attributes (``rpc.system``, ``rpc.service``, ``rpc.method``,
``rpc.grpc.status_code``, ``net.peer.*``, ``rpc.user_agent``): one guard instead of two
around every call halved what the guard cost per RPC.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias
from urllib.parse import unquote

import grpc
from google.protobuf.message import Message
from google.rpc import status_pb2
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from services.runtime import access
from services.runtime.auth import USER_CHECK_SECONDS, Authenticator
from services.runtime.config import MAX_STREAMS, MAX_STREAMS_PER_TENANT
from services.runtime.context import Principal, ServicerContext, principal_var, request_id_var
from services.runtime.db import is_outage
from services.runtime.errors import (
    AleaError,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
    Unavailable,
    internal_status,
    to_status,
)
from services.runtime.platform_settings import RATE_LIMIT, LiveSettings
from services.runtime.telemetry import rpc_duration
from services.runtime.validation import tolerant, validate

__all__ = ["Call", "RpcObserver", "RuntimeInterceptor"]

log = logging.getLogger("alea.rpc")
_MAX_REQUEST_ID = 128
# RpcMethodHandler and ServerInterceptor are generic only in types-grpcio's stubs.
Handler: TypeAlias = "grpc.RpcMethodHandler[Any, Any]"
if TYPE_CHECKING:
    _ServerInterceptor = grpc.aio.ServerInterceptor[Any, Any]
else:
    _ServerInterceptor = grpc.aio.ServerInterceptor
Behavior = Callable[..., Any]  # a unary or streaming handler function, as grpc calls it
_CODES = {code.value[0]: code for code in grpc.StatusCode}


# Statuses that mark the span as an error: the server failed, not the caller (the same
# set as OpenTelemetry's gRPC instrumentation).
_SPAN_ERRORS = frozenset(
    {
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.UNIMPLEMENTED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DATA_LOSS,
    }
)


def _request_id(metadata: dict[str, str]) -> str:
    given = metadata.get("x-request-id", "")
    if given and len(given) <= _MAX_REQUEST_ID and given.isprintable():
        return given
    return os.urandom(16).hex()


def _span_attributes(method: str, context: Any, metadata: dict[str, str]) -> dict[str, Any]:
    """The semantic-convention attributes of an RPC's server span."""
    service, _, name = method.lstrip("/").partition("/")
    attributes: dict[str, Any] = {
        "rpc.system": "grpc",
        "rpc.grpc.status_code": grpc.StatusCode.OK.value[0],
        "rpc.method": name,
        "rpc.service": service,
    }
    if "user-agent" in metadata:
        attributes["rpc.user_agent"] = metadata["user-agent"]
    peer = context.peer() or ""  # ipv4:127.0.0.1:57284, ipv6:[::1]:57284
    scheme, _, address = peer.split(",")[0].partition(":")
    ip, _, port = address.rpartition(":")
    if scheme in ("ipv4", "ipv6") and ip:
        ip = unquote(ip)
        attributes["net.peer.ip"], attributes["net.peer.port"] = ip, port
        if ip in ("[::1]", "127.0.0.1"):
            attributes["net.peer.name"] = "localhost"
    return attributes


class Call(Protocol):
    """What an observer is told of a finished RPC (an ``_Rpc``)."""

    method: str
    code: grpc.StatusCode
    request_id: str
    peer: str | None
    principal: Principal | None
    request: Message | None
    response: Message | None
    error: str

    @property
    def metadata(self) -> Mapping[str, str]: ...

    def client_address(self) -> str: ...


class RpcObserver(Protocol):
    """Told of every finished RPC; must return at once."""

    def finished(self, call: Call) -> None: ...


class _Rpc:
    """Admission, error mapping and accounting of one RPC (an async context manager)."""

    def __init__(
        self,
        guard: RuntimeInterceptor,
        method: str,
        context: ServicerContext,
        request: Message | None = None,
    ) -> None:
        self.guard, self.method, self.context = guard, method, context
        self.metadata = {k: v for k, v in context.invocation_metadata() or () if isinstance(v, str)}
        self.request_id = _request_id(self.metadata)
        self.peer: str | None = None
        self.principal: Principal | None = None
        self.code = grpc.StatusCode.OK
        self.started = time.perf_counter()
        self.span = guard.tracer.start_span(
            method, propagate.extract(self.metadata), kind=SpanKind.SERVER
        )
        if self.span.is_recording():  # not sampled: nobody would read the attributes
            attributes = _span_attributes(method, context, self.metadata)
            attributes["alea.request_id"] = self.request_id
            self.span.set_attributes(attributes)
        self.request = request
        self.response: Message | None = None
        self.error = ""

    def client_address(self) -> str:
        """The caller's address: for calls through the edge the downstream address it saw
        (``x-envoy-external-address``, which the edge sets itself), else the transport peer."""
        if self.peer == "edge":
            external = self.metadata.get("x-envoy-external-address", "")
            if external:
                return external
        return unquote(self.context.peer() or "")  # gRPC escapes "[" and "]"

    async def __aenter__(self) -> _Rpc:
        self._span_token = otel_context.attach(trace.set_span_in_context(self.span))
        self._request_token = request_id_var.set(self.request_id)
        self._principal_token = principal_var.set(None)
        self.context.set_trailing_metadata(self.guard.trailers(self.request_id))
        try:
            self.principal = await self.guard.admit(self)
        except BaseException as exc:
            await self.__aexit__(type(exc), exc, exc.__traceback__)
            raise
        principal_var.set(self.principal)
        if self.principal is not None:
            self.span.set_attribute("alea.tenant_id", self.principal.tenant_id)
            self.span.set_attribute("alea.user_id", self.principal.user_id)
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, _tb: TracebackType | None
    ) -> None:
        try:
            if exc is None or isinstance(exc, GeneratorExit):
                return
            if isinstance(exc, asyncio.CancelledError):
                self.code = grpc.StatusCode.CANCELLED
                return
            if isinstance(exc, grpc.aio.AbortError):
                self.code = self.context.code() or grpc.StatusCode.UNKNOWN
                return
            if isinstance(exc, AleaError):
                self.code, self.error = exc.code, exc.message
                await self._abort(to_status(exc))  # raises AbortError
            if is_outage(exc):
                self.code = grpc.StatusCode.UNAVAILABLE
                log.warning("database unavailable in %s: %s", self.method, type(exc).__name__)
                await self._abort(to_status(Unavailable("the database is unavailable; retry")))
            error_id, status = internal_status()
            self.code = grpc.StatusCode.INTERNAL
            self.span.record_exception(exc)
            log.error(
                "unhandled error %s in %s",
                error_id,
                self.method,
                exc_info=exc,
                extra={"error_id": error_id},
            )
            await self._abort(status)
        finally:
            self._account()

    async def _abort(self, status: status_pb2.Status) -> None:
        trailing = (
            *self.guard.trailers(self.request_id),
            ("grpc-status-details-bin", status.SerializeToString()),
        )
        await self.context.abort(_CODES[status.code], status.message, trailing)

    def _account(self) -> None:
        seconds = time.perf_counter() - self.started
        principal = self.principal or Principal()
        code = self.code.name
        log.info(
            "rpc",
            extra={
                "method": self.method,
                "code": code,
                "duration_ms": round(seconds * 1000, 3),
                "peer": self.peer or "",
                "tenant_id": principal.tenant_id,
                "user_id": principal.user_id or principal.service,
            },
        )
        self.guard.durations.record(seconds, {"rpc.method": self.method, "rpc.grpc.status": code})
        self.span.set_attribute("rpc.grpc.status_code", self.code.value[0])
        if self.code in _SPAN_ERRORS:
            self.span.set_status(Status(StatusCode.ERROR, f"{self.code}"))
        self.span.end()
        for observer in self.guard.observers:
            try:
                observer.finished(self)
            except Exception:  # an observer's fault must not change the RPC's outcome
                log.exception("observer %s failed on %s", type(observer).__name__, self.method)
        try:
            principal_var.reset(self._principal_token)
        except ValueError:
            # A stream the client abandoned while its response was being written: asyncio
            # closes the handler's generator later, in a task of its own whose context
            # never held these values. There is nothing to restore there.
            return
        request_id_var.reset(self._request_token)
        otel_context.detach(self._span_token)

    async def requests(self, iterator: AsyncIterator[Message]) -> AsyncIterator[Message]:
        """A client stream with every message validated."""
        async for message in iterator:
            validate(message)
            yield message


def _check_role(method: str, rule: access.MethodRule, user: Principal) -> None:
    """PermissionDenied unless ``user``'s role reaches the rule's."""
    if access.ROLE_RANK.get(user.role, 0) < access.ROLE_RANK.get(rule.role, 99):
        raise PermissionDenied(f"{method} needs role {rule.role or 'unspecified'}")


class _OpenStreams:
    """Response streams held open on this replica, in all and per tenant, within limits."""

    def __init__(self, service: str, total: int, per_tenant: int) -> None:
        self.service, self.total, self.per_tenant = service, total, per_tenant
        self.open = 0
        self._by_tenant: dict[str, int] = {}

    @contextlib.contextmanager
    def hold(self, principal: Principal | None) -> Iterator[None]:
        """One stream of ``principal``'s tenant (a service, or nobody, for callers without
        a tenant) for the ``with`` block; ResourceExhausted beyond a limit."""
        tenant = (principal.tenant_id or f"service:{principal.service}") if principal else ""
        held = self._by_tenant.get(tenant, 0)
        if held >= self.per_tenant:
            raise ResourceExhausted(
                "streams_per_tenant",
                f"the tenant already has {held} streams open on this {self.service} replica, "
                "the most allowed; close one first",
                subject=f"tenants/{tenant}" if principal and principal.tenant_id else "",
            )
        if self.open >= self.total:
            raise ResourceExhausted(
                "streams",
                f"this {self.service} replica has {self.open} streams open, the most it "
                "takes; retry later",
            )
        self.open += 1
        self._by_tenant[tenant] = held + 1
        try:
            yield
        finally:
            self.open -= 1
            left = self._by_tenant[tenant] - 1
            if left:
                self._by_tenant[tenant] = left
            else:
                del self._by_tenant[tenant]


class RuntimeInterceptor(_ServerInterceptor):
    """Wraps every RPC of ``service`` in :class:`_Rpc`; see the module docstring."""

    def __init__(
        self,
        service: str,
        authenticator: Authenticator | None,
        direct_client_calls: bool = False,
        observers: Sequence[RpcObserver] = (),
        live: LiveSettings | None = None,
        max_streams: int = MAX_STREAMS,
        max_streams_per_tenant: int = MAX_STREAMS_PER_TENANT,
    ) -> None:
        self.service = service
        self.streams = _OpenStreams(service, max_streams, max_streams_per_tenant)
        self.authenticator = authenticator
        self.allowed_peers = access.admitted_peers(service, direct_client_calls)
        self.durations = rpc_duration()
        self.observers = tuple(observers)
        self.live = live
        self.tracer = trace.get_tracer("alea.runtime")
        # method → (the handler grpc found, the same wrapped): wrapping once per method
        # rather than once per call.
        self._wrapped: dict[str, tuple[Any, Any]] = {}

    def trailers(self, request_id: str) -> tuple[tuple[str, str], ...]:
        """Trailing metadata of every response: the request id, and the request rate
        clients are asked to keep (``ratelimit-policy``, the ``edge.rate_limit_per_second``
        setting) when the platform settings are known."""
        if self.live is None:
            return (("x-request-id", request_id),)
        rate = self.live.get(RATE_LIMIT)
        return (("x-request-id", request_id), ("ratelimit-policy", f"{rate};w=1"))

    async def admit(self, rpc: _Rpc) -> Principal | None:
        """The caller's principal (None for public and framework RPCs), or raise."""
        rpc.peer = access.peer_identity(rpc.context.auth_context())
        if rpc.peer not in self.allowed_peers:
            if rpc.peer == access.DEV_CLIENT:
                raise PermissionDenied(
                    f"the client certificate may not call {self.service} directly: "
                    "call it through the edge"
                )
            raise PermissionDenied(
                f"peer {rpc.peer or 'without identity'} may not call {self.service}"
            )
        rule = access.method_rule(rpc.method)
        if rule is None:
            raise PermissionDenied(f"{rpc.method} declares no access rule")
        if rule.framework or rule.public:
            return None
        if rule.internal:
            if rpc.peer in access.SERVICES and (not rule.peers or rpc.peer in rule.peers):
                return Principal(service=rpc.peer)
            raise PermissionDenied(f"{rpc.method} is internal to services")
        user = await self._authenticate(rpc.metadata)
        if user is None:
            if rpc.peer in rule.peers:
                return Principal(service=rpc.peer)
            raise Unauthenticated("missing credentials: send 'authorization: Bearer' or x-api-key")
        rpc.principal = user  # known even if refused below: the log and the audit name them
        _check_role(rpc.method, rule, user)
        return user

    async def recheck(self, rpc: _Rpc) -> None:
        """Raise if the user of an open response stream may no longer call its RPC."""
        if self.authenticator is None or rpc.principal is None or rpc.principal.is_service:
            return
        user = await self.authenticator.recheck(rpc.principal, rpc.metadata)
        rule = access.method_rule(rpc.method)
        if rule is not None:
            _check_role(rpc.method, rule, user)

    async def _authenticate(self, metadata: dict[str, str]) -> Principal | None:
        if self.authenticator is None:
            raise Unauthenticated("this service cannot verify user credentials")
        return await self.authenticator.authenticate(metadata)

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Handler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Handler:
        handler = await continuation(handler_call_details)
        if handler is None:  # no such method: grpc answers UNIMPLEMENTED
            return handler
        method = handler_call_details.method
        found = self._wrapped.get(method)
        if found is None or found[0] is not handler:
            found = self._wrapped[method] = (handler, self._wrap(handler, method))
        return found[1]

    def _wrap(self, handler: Handler, method: str) -> Handler:
        def unary_request(behavior: Behavior) -> Behavior:
            async def run(request: Message, context: ServicerContext) -> Any:
                async with _Rpc(self, method, context, request) as rpc:
                    validate(request)
                    rpc.response = await behavior(request, context)
                    return rpc.response

            return run

        def stream_request(behavior: Behavior) -> Behavior:
            async def run(
                request_iterator: AsyncIterator[Message], context: ServicerContext
            ) -> Any:
                async with _Rpc(self, method, context) as rpc:
                    rpc.response = await behavior(rpc.requests(request_iterator), context)
                    return rpc.response

            return run

        def streaming(behavior: Behavior, streamed_request: bool) -> Behavior:
            if not inspect.isasyncgenfunction(behavior):
                return (stream_request if streamed_request else unary_request)(behavior)

            async def run(request: Any, context: ServicerContext) -> AsyncIterator[Any]:
                async with _Rpc(
                    self, method, context, None if streamed_request else request
                ) as rpc:
                    if streamed_request:
                        request = rpc.requests(request)
                    else:
                        validate(request)
                    with self.streams.hold(rpc.principal):
                        # Admitted when it opened, a stream may run for hours: its user is
                        # checked again before what it sends, at most once a check's lifetime.
                        checked = time.monotonic()
                        async for response in behavior(request, context):
                            if time.monotonic() - checked >= USER_CHECK_SECONDS:
                                await self.recheck(rpc)
                                checked = time.monotonic()
                            yield response

            return run

        serializers = {
            "request_deserializer": tolerant(handler.request_deserializer),
            "response_serializer": handler.response_serializer,
        }
        streamed = {
            **serializers,
            "response_serializer": _bytes_as_they_are(handler.response_serializer),
        }
        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(
                unary_request(handler.unary_unary), **serializers
            )
        if handler.unary_stream:
            return grpc.unary_stream_rpc_method_handler(
                streaming(handler.unary_stream, False), **streamed
            )
        if handler.stream_unary:
            return grpc.stream_unary_rpc_method_handler(
                stream_request(handler.stream_unary), **serializers
            )
        assert handler.stream_stream is not None  # the one kind left
        return grpc.stream_stream_rpc_method_handler(
            streaming(handler.stream_stream, True), **streamed
        )


def _bytes_as_they_are(
    serialize: Callable[[Any], bytes] | None,
) -> Callable[[Any], bytes] | None:
    """The method's response serializer, passing a response that is ``bytes`` already."""
    if serialize is None:
        return None

    def serialized(response: Any) -> bytes:
        return response if type(response) is bytes else serialize(response)

    return serialized
