"""One bootstrap for every service: mTLS gRPC server, plaintext health port, background
tasks, shutdown.

``create_server`` builds (``server, port``) — tests bind port 0 and use the port that
comes back; ``serve`` runs it until SIGTERM/SIGINT, then flips health to NOT_SERVING
and stops with a grace period; ``run`` is what a service's ``__main__`` calls: settings,
JSON logs, telemetry, database (migrated), the platform settings (``peers.settings``,
polled from admin), the service's ``build``, then serving and the service's background
tasks side by side until a signal, and on the way out the tasks, peer channels and
database closed and the buffered telemetry flushed.

Every serving process also gets, from the runtime rather than its own code: the audit
trail (``runtime.audit``, relayed to admin through the outbox; ``ALEA_AUDIT=off`` stops
it), the API-call meter (``runtime.usage``, relayed to analytics), and the
``alea.status.v1.StatusService`` the admin overview reads (``runtime.status``).

Health: the overall status (``""``) and each mounted service's are SERVING while the
process serves and its database answers; :func:`watch_database` probes the database
every :data:`DATABASE_PROBE_SECONDS` and turns them NOT_SERVING while it cannot be
reached (readiness probes and the edge's health checks see it), SERVING again once it
answers, without a restart. :data:`LIVENESS` stays SERVING until shutdown: liveness
probes ask for it, so an outage of the database never gets the process restarted.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import sys
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import grpc
from alea.status.v1 import status_pb2, status_pb2_grpc
from google.protobuf.descriptor import ServiceDescriptor
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from services.runtime import audit, telemetry, usage
from services.runtime.audit import AuditTrail
from services.runtime.auth import ApiKeyCache, Authenticator, TokenVerifier, UserCheck
from services.runtime.config import ConfigError, Settings, load_settings
from services.runtime.db import Database
from services.runtime.health_port import HealthPort
from services.runtime.interceptor import RpcObserver, RuntimeInterceptor
from services.runtime.logs import configure_logging
from services.runtime.outbox import Outbox, Relay, RelaySettings
from services.runtime.peers import Peers
from services.runtime.pki import ensure_pki
from services.runtime.platform_settings import LiveSettings
from services.runtime.reflection import add_reflection
from services.runtime.status import Gauges, RecentCalls, StatusServicer
from services.runtime.usage import ApiCallMeter

__all__ = [
    "DATABASE_PROBE_SECONDS",
    "LIVENESS",
    "AleaServer",
    "Background",
    "Build",
    "Mount",
    "Service",
    "create_server",
    "run",
    "serve",
    "watch_database",
]

log = logging.getLogger(__name__)
LIVENESS = "liveness"
DATABASE_PROBE_SECONDS = 1.0
YOUNG_COLLECTION_THRESHOLD = 20_000  # allocations between young collections (default 700)
_SERVING = health_pb2.HealthCheckResponse.SERVING
_NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
_MAX_MESSAGE = 64 * 1024 * 1024
# Above what the edge lets through (60 KiB of headers, plus the REST path it copies into
# x-envoy-original-path), so no request is refused here for its size as RESOURCE_EXHAUSTED.
_MAX_METADATA = 192 * 1024
_OPTIONS = (
    ("grpc.max_receive_message_length", _MAX_MESSAGE),
    ("grpc.max_send_message_length", _MAX_MESSAGE),
    ("grpc.max_metadata_size", _MAX_METADATA),
    ("grpc.absolute_max_metadata_size", _MAX_METADATA),
    ("grpc.so_reuseport", 0),
)


@dataclass(frozen=True)
class Mount:
    """A servicer, the generated ``add_*_to_server`` function and its service descriptor."""

    descriptor: ServiceDescriptor
    servicer: object
    add: Callable[[object, grpc.aio.Server], None]


Background = Callable[[asyncio.Event], Awaitable[None]]
"""A task running beside the server (simulation workers): it returns soon after the
event is set, which happens on SIGTERM/SIGINT before the server stops."""


@dataclass(frozen=True)
class Service:
    """What a service's ``build`` returns.

    ``mounts``: the servicers to serve (none: a process of background tasks only, such
    as ``python -m services.simulation --worker``). ``authenticator``: how user
    credentials are checked; None verifies them against identity (JWKS, VerifyApiKey,
    CheckUser). ``background``: tasks run for the life of the process. ``gauges``: the
    service's own numbers for the admin overview (``runtime.status``).
    """

    mounts: Sequence[Mount]
    authenticator: Authenticator | None = None
    background: Sequence[Background] = ()
    gauges: Gauges | None = None


@dataclass
class AleaServer:
    """The mTLS server, the plaintext health server and what to close on stop."""

    service: str
    grpc_server: grpc.aio.Server
    health_server: grpc.aio.Server
    health: Any  # grpc_health.v1.health.aio.HealthServicer (untyped)
    service_names: list[str]
    health_front: HealthPort  # the health port: gRPC health relayed, GET /metrics answered
    grace: float
    on_stop: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    @property
    def health_port(self) -> int:
        return self.health_front.port

    async def start(self) -> None:
        """Start both servers and mark every service SERVING."""
        await self.grpc_server.start()
        await self.health_server.start()
        await self.health_front.start()
        await self.health.set(LIVENESS, _SERVING)
        await self.set_serving(True)

    async def set_serving(self, serving: bool) -> None:
        """The overall and every service's health (not :data:`LIVENESS`); no effect once
        stopping."""
        for name in ("", *self.service_names):
            await self.health.set(name, _SERVING if serving else _NOT_SERVING)

    async def stop(self) -> None:
        """NOT_SERVING first (probes and the edge drain us), then stop with grace."""
        await self.health.enter_graceful_shutdown()
        try:
            await self.grpc_server.stop(self.grace)
        finally:
            await self.health_front.stop()
            await self.health_server.stop(0)
            for close in self.on_stop:
                await close()


def _server_credentials(pki_dir: Path, service: str) -> grpc.ServerCredentials:
    return grpc.ssl_server_credentials(
        [((pki_dir / f"{service}.key").read_bytes(), (pki_dir / f"{service}.crt").read_bytes())],
        root_certificates=(pki_dir / "ca.crt").read_bytes(),
        require_client_auth=True,
    )


def grpc_address(host: str, port: int) -> str:
    """gRPC's spelling of ``host:port`` (IPv6 literals in brackets). ``localhost`` binds both
    loopback addresses, and either wildcard (``0.0.0.0``, ``::``) every interface of both
    families, as gRPC does."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def remote_authenticator(peers: Peers) -> Authenticator:
    """User credentials checked against identity: its JWKS (cached, refreshed for an
    unknown key id), VerifyApiKey and CheckUser (answers trusted for a second)."""
    identity = peers.identity
    return Authenticator(
        TokenVerifier(identity.jwks),
        ApiKeyCache(identity.verify_api_key),
        UserCheck(identity.check_user),
    )


def create_server(
    service: str,
    mounts: Sequence[Mount],
    settings: Settings,
    authenticator: Authenticator | None = None,
    peers: Peers | None = None,
    observers: Sequence[RpcObserver] = (),
    live: LiveSettings | None = None,
) -> tuple[AleaServer, int]:
    """Build (not start) the server of ``service``; returns it and its bound mTLS port.

    Without an ``authenticator`` user credentials are checked remotely against
    identity through ``peers`` (a ``Peers`` of its own, closed with the server, when
    none is given). ``observers`` are told of every finished RPC; ``live`` gives the
    advisory rate limit each response advertises.
    """
    on_stop: list[Callable[[], Awaitable[None]]] = []
    pki_dir = ensure_pki(settings.home)
    if authenticator is None:
        if peers is None:
            peers = Peers(settings)
            on_stop.append(peers.close)
        authenticator = remote_authenticator(peers)
    server = grpc.aio.server(
        interceptors=[
            RuntimeInterceptor(
                service,
                authenticator,
                direct_client_calls=settings.direct_client_calls,
                observers=observers,
                live=live,
                max_streams=settings.max_streams,
                max_streams_per_tenant=settings.max_streams_per_tenant,
            ),
        ],
        options=_OPTIONS,
    )
    names = [m.descriptor.full_name for m in mounts]
    for mount in mounts:
        mount.add(mount.servicer, server)
    health_servicer = health.aio.HealthServicer()  # type: ignore[attr-defined]
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    add_reflection(server, [*names, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name])
    port = server.add_secure_port(
        grpc_address(settings.listen_address, settings.port),
        _server_credentials(pki_dir, service),
    )
    health_server = grpc.aio.server(options=_OPTIONS)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, health_server)
    # The gRPC health server listens on loopback; the health port itself is HealthPort's.
    internal_port = health_server.add_insecure_port("127.0.0.1:0")
    alea_server = AleaServer(
        service,
        server,
        health_server,
        health_servicer,
        names,
        HealthPort(settings.listen_address, settings.health_port, internal_port),
        settings.shutdown_grace,
        on_stop,
    )
    return alea_server, port


async def serve(server: AleaServer, stop: asyncio.Event | None = None) -> None:
    """Start ``server`` and run until SIGTERM/SIGINT (or ``stop`` is set), then drain."""
    stop = stop or asyncio.Event()
    with _stop_on_signals(stop):
        try:
            await server.start()
            log.info("serving", extra={"health_port": server.health_port})
            await stop.wait()
            log.info("shutting down", extra={"grace_s": server.grace})
        finally:
            await server.stop()


@contextlib.contextmanager
def _stop_on_signals(stop: asyncio.Event) -> Iterator[None]:
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        yield
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)


class BackgroundTaskFailed(Exception):
    """A background task ended by an unexpected error; the process exits with status 1."""


async def _background(tasks: Sequence[Background], stop: asyncio.Event) -> None:
    """Run ``tasks`` until ``stop``; the first one to fail stops the process."""

    async def guarded(task: Background) -> None:
        try:
            await task(stop)
        except Exception as exc:
            log.critical("background task failed; stopping", exc_info=exc)
            stop.set()
            raise BackgroundTaskFailed(str(exc)) from exc

    await asyncio.gather(*(guarded(task) for task in tasks))


def _freeze_startup_objects() -> None:
    """Move everything built at start-up out of the garbage collector's sight, and collect
    the young generation less often.

    Protobuf descriptors, SQLAlchemy metadata, OpenTelemetry and the service's own
    objects live as long as the process; without the freeze every full collection
    traverses them all, which profiling showed at a quarter of a busy server's CPU.
    A busy server keeps thousands of objects alive for a while (calls in flight, streams,
    their tasks and buffers), so the default young-generation threshold of 700 fired
    collection after collection: notification fanning events out to 1,000 streams spent
    11.5 % of its event loop collecting (py-spy). At 20,000 that is gone from the
    profile; only cyclic garbage waits longer to be freed.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_COLLECTION_THRESHOLD, 20, 20)


async def watch_database(
    database: Database,
    server: AleaServer,
    stop: asyncio.Event,
    every: float = DATABASE_PROBE_SECONDS,
) -> None:
    """Until ``stop``: health NOT_SERVING while ``database`` does not answer, SERVING again
    once it does (see the module docstring)."""
    serving = True
    while not stop.is_set():
        reachable = await database.reachable(within=every * 2)
        if reachable != serving:
            serving = reachable
            await server.set_serving(serving)
            if serving:
                log.warning("database reachable again: SERVING")
            else:
                log.warning("database unreachable: NOT_SERVING until it answers")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every)


Build = Callable[[Settings, Database, Peers], Awaitable[Service]]
"""A service's wiring: its servicers, authenticator and background tasks."""

_FIRST_SETTINGS_SECONDS = 3.0


@dataclass
class _Recording:
    """What the runtime adds to a serving process: RPC observers, their background tasks
    and the status mount."""

    observers: list[RpcObserver]
    background: list[Background]
    mount: Mount


def _recording(
    service: str, settings: Settings, db: Database, peers: Peers, wiring: Service
) -> _Recording:
    outbox, relays = Outbox(), RelaySettings.from_env()
    recent = RecentCalls()
    meter = ApiCallMeter(service, db, outbox, settings.usage_flush_seconds)
    observers: list[RpcObserver] = [recent, meter]
    background: list[Background] = [
        peers.settings.run,
        meter.run,
        Relay(
            db,
            outbox,
            usage.TOPIC,
            peers.analytics.record_usage,
            relays,
            partial(peers.reconnected, "analytics"),
        ).run,
    ]
    trail = None
    if settings.audit:
        trail = AuditTrail(service, db, outbox, flush_seconds=settings.audit_flush_seconds)
        observers.append(trail)
        sink = peers.admin.record_audit_events
        back = partial(peers.reconnected, "admin")
        background += [trail.run, Relay(db, outbox, audit.TOPIC, sink, relays, back).run]
    status = StatusServicer(service, db, recent, wiring.gauges, trail)
    mount = Mount(
        status_pb2.DESCRIPTOR.services_by_name["StatusService"],
        status,
        status_pb2_grpc.add_StatusServiceServicer_to_server,
    )
    return _Recording(observers, background, mount)


async def _first_settings(live: LiveSettings) -> None:
    """Read the platform settings before serving; the schema's defaults while admin is away."""
    try:
        await asyncio.wait_for(live.refresh(), _FIRST_SETTINGS_SECONDS)
    except Exception as exc:
        log.warning("settings: admin unreachable at start-up, using defaults: %s", exc)


async def _main(service: str, build: Build, migrations: Path | None) -> None:
    settings = load_settings(service)
    configure_logging(service, settings.log_level)
    shutdown_telemetry = telemetry.configure_telemetry(service, settings.otel_exporter)
    ensure_pki(settings.home)
    database = Database(settings.database_url, migrations)
    peers = Peers(settings)
    stop = asyncio.Event()
    try:
        await database.open()
        await _first_settings(peers.settings)
        wiring = await build(settings, database, peers)
        background = list(wiring.background)
        server, port = None, 0
        if wiring.mounts:
            recording = _recording(service, settings, database, peers, wiring)
            background += recording.background
            server, port = create_server(
                service,
                [*wiring.mounts, recording.mount],
                settings,
                wiring.authenticator,
                peers,
                recording.observers,
                peers.settings,
            )
        _freeze_startup_objects()
        tasks = asyncio.create_task(_background(background, stop))
        try:
            if server is not None:
                log.info("listening", extra={"port": port, "tasks": len(background)})
                watch = asyncio.create_task(watch_database(database, server, stop))
                try:
                    await serve(server, stop)
                finally:
                    stop.set()
                    await watch
            else:
                with _stop_on_signals(stop):
                    await stop.wait()
        finally:
            stop.set()
            await tasks
    finally:
        await peers.close()
        await database.close()
        shutdown_telemetry()


def run(service: str, build: Build, migrations: Path | None = None) -> None:
    """Entry point of ``python -m services.<service>``: settings, logs, database, serve.

    A configuration error exits with status 2 and one line naming the variable; a
    background task that fails stops the process with status 1.
    """
    try:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(_main(service, build, migrations))
    except ConfigError as exc:
        print(f"alea-{service}: configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    except BackgroundTaskFailed:
        raise SystemExit(1) from None
