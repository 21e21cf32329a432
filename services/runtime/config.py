"""Service settings, parsed once from the ALEA_* environment variables.

:class:`Environment` is the one parser of environment variables: the runtime's
:func:`load_settings` and every service's own settings (``services/<name>/config.py``)
read through it, so a missing or malformed value always raises :class:`ConfigError`
naming the variable, and a misconfigured process fails at start-up (exit status 2, see
``runtime.server.run``) rather than on its first request.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

__all__ = [
    "DEFAULT_PORTS",
    "ConfigError",
    "Environment",
    "Settings",
    "alea_home",
    "load_settings",
]

DEFAULT_PORTS: dict[str, int] = {
    "identity": 50051,
    "files": 50052,
    "simulation": 50053,
    "notification": 50054,
    "admin": 50055,
    "analytics": 50056,
}
HEALTH_PORT_OFFSET = 1000
# Response streams (feeds, watches) a replica keeps open at once, in all and per tenant:
# each holds a task, buffers and often a queue, so without a bound one caller could
# exhaust a replica's memory. The edge is sized to hold MAX_STREAMS per service.
MAX_STREAMS = 10_000
MAX_STREAMS_PER_TENANT = 2_000
_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
_EXPORTERS = ("none", "console", "otlp")
_DATABASES = ("sqlite+aiosqlite://", "postgresql+asyncpg://")
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")
_N = TypeVar("_N", int, float)


class ConfigError(ValueError):
    """A setting is missing or malformed; the message names the variable."""


class Environment:
    """Typed reads of environment variables; an empty variable counts as unset.

    Every method returns ``default`` when the variable is unset and raises
    :class:`ConfigError` naming the variable when its value does not parse or is out
    of range.
    """

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        self.env: Mapping[str, str] = os.environ if env is None else env

    def text(self, name: str, default: str) -> str:
        """The raw value."""
        return self.env.get(name) or default

    def integer(
        self, name: str, default: int, *, minimum: int | None = None, maximum: int | None = None
    ) -> int:
        """A whole number within ``minimum..maximum`` (either bound optional)."""
        raw = self.env.get(name)
        if not raw:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
        return self._bounded(name, value, minimum, maximum)

    def number(self, name: str, default: float, *, minimum: float | None = None) -> float:
        """A real number, at least ``minimum`` when given."""
        raw = self.env.get(name)
        if not raw:
            return default
        try:
            value = float(raw)
        except ValueError:
            raise ConfigError(f"{name} must be a number, got {raw!r}") from None
        return self._bounded(name, value, minimum, None)

    def port(self, name: str, default: int) -> int:
        """A TCP port, 0..65535 (0: any free port)."""
        return self.integer(name, default, minimum=0, maximum=65535)

    def flag(self, name: str, default: bool) -> bool:
        """A yes/no switch: 1/true/yes/on or 0/false/no/off, case-insensitively."""
        raw = self.env.get(name)
        if not raw:
            return default
        value = raw.strip().lower()
        if value in _TRUE or value in _FALSE:
            return value in _TRUE
        raise ConfigError(f"{name} must be one of 1, true, yes, on, 0, false, no, off; got {raw!r}")

    def choice(self, name: str, default: str, allowed: tuple[str, ...]) -> str:
        """One of ``allowed``, compared case-insensitively; returned as spelled there."""
        value = self.env.get(name) or default
        for option in allowed:
            if option.lower() == value.lower():
                return option
        raise ConfigError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")

    @staticmethod
    def _bounded(name: str, value: _N, low: _N | None, high: _N | None) -> _N:
        if low is not None and value < low:
            raise ConfigError(f"{name} must be >= {low}, got {value}")
        if high is not None and value > high:
            raise ConfigError(f"{name} must be <= {high}, got {value}")
        return value


@dataclass(frozen=True)
class Settings:
    """Everything the runtime reads from a service's environment."""

    service: str
    home: Path
    port: int
    health_port: int
    database_url: str
    log_level: str
    otel_exporter: str
    shutdown_grace: float
    addresses: Mapping[str, str] = field(default_factory=dict)
    listen_address: str = "localhost"
    direct_client_calls: bool = False
    audit: bool = True
    audit_flush_seconds: float = 0.1
    usage_flush_seconds: float = 10.0
    max_streams: int = MAX_STREAMS
    max_streams_per_tenant: int = MAX_STREAMS_PER_TENANT

    @property
    def pki_dir(self) -> Path:
        """Directory holding ca.crt and <name>.crt/<name>.key."""
        return self.home / "pki"

    def address(self, peer: str) -> str:
        """Where ``peer`` (another service) listens: ``ALEA_<PEER>_ADDRESS``."""
        return self.addresses[peer]


def alea_home(env: Mapping[str, str] | None = None) -> Path:
    """``$ALEA_HOME`` (default ``./.alea``) as an absolute path: PKI, data, logs, pid files."""
    return Path(Environment(env).text("ALEA_HOME", "./.alea")).resolve()


def _database_url(environment: Environment, service: str, home: Path) -> str:
    url = environment.text("ALEA_DATABASE_URL", f"sqlite+aiosqlite:///{home / 'data' / service}.db")
    if not url.startswith(_DATABASES):
        raise ConfigError(
            f"ALEA_DATABASE_URL must start with {' or '.join(_DATABASES)}, "
            f"got {url.split(':', 1)[0]!r}"
        )
    return url


def load_settings(service: str, env: Mapping[str, str] | None = None) -> Settings:
    """Parse the settings of ``service`` from ``env`` (default: ``os.environ``).

    Health port defaults to the gRPC port + 1000; port 0 (tests) keeps health on 0 too.
    The OpenTelemetry exporter is ``ALEA_OTEL_EXPORTER`` (none/console/otlp), and
    becomes ``otlp`` when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set. ``ALEA_AUDIT=off``
    stops the audit trail (benchmarks compare with and without it);
    ``ALEA_AUDIT_FLUSH_SECONDS`` (0.1) and ``ALEA_USAGE_FLUSH_SECONDS`` (10) say how often
    audit entries and API-call counts are written to the outbox. Every other service
    is found at ``ALEA_<NAME>_ADDRESS``, by default ``localhost`` on its default port.

    Both ports bind ``ALEA_LISTEN_ADDRESS``: ``localhost`` by default (127.0.0.1 and ::1,
    so that on a developer's machine nothing but the machine itself reaches a service),
    ``0.0.0.0`` or ``::`` for every interface (containers, Kubernetes), or one address.
    ``ALEA_DEV_DIRECT_CALLS`` (off by default, development only) lets the ``client``
    certificate call the service directly instead of only through the edge.
    ``ALEA_MAX_STREAMS`` (10,000) and ``ALEA_MAX_STREAMS_PER_TENANT`` (2,000) bound the
    response streams the replica holds open at once; one more is RESOURCE_EXHAUSTED.
    """
    environment = Environment(env)
    home = alea_home(environment.env)
    port = environment.port("ALEA_PORT", DEFAULT_PORTS.get(service, 0))
    health_default = port + HEALTH_PORT_OFFSET if port else 0
    exporter_default = "otlp" if environment.env.get("OTEL_EXPORTER_OTLP_ENDPOINT") else "none"
    return Settings(
        service=service,
        home=home,
        port=port,
        health_port=environment.port("ALEA_HEALTH_PORT", health_default),
        database_url=_database_url(environment, service, home),
        log_level=environment.choice("ALEA_LOG_LEVEL", "INFO", _LOG_LEVELS),
        otel_exporter=environment.choice("ALEA_OTEL_EXPORTER", exporter_default, _EXPORTERS),
        shutdown_grace=environment.number("ALEA_SHUTDOWN_GRACE", 5.0, minimum=0.0),
        audit=environment.choice("ALEA_AUDIT", "on", ("on", "off")) == "on",
        audit_flush_seconds=environment.number("ALEA_AUDIT_FLUSH_SECONDS", 0.1, minimum=0.001),
        usage_flush_seconds=environment.number("ALEA_USAGE_FLUSH_SECONDS", 10.0, minimum=0.01),
        addresses={
            peer: environment.text(f"ALEA_{peer.upper()}_ADDRESS", f"localhost:{default}")
            for peer, default in DEFAULT_PORTS.items()
        },
        listen_address=environment.text("ALEA_LISTEN_ADDRESS", "localhost").strip("[]"),
        direct_client_calls=environment.flag("ALEA_DEV_DIRECT_CALLS", False),
        max_streams=environment.integer("ALEA_MAX_STREAMS", MAX_STREAMS, minimum=1),
        max_streams_per_tenant=environment.integer(
            "ALEA_MAX_STREAMS_PER_TENANT", MAX_STREAMS_PER_TENANT, minimum=1
        ),
    )
