"""Service settings, parsed once from the ALEA_* environment variables.

A missing or malformed setting raises :class:`ConfigError` naming the variable,
so a misconfigured process fails at start-up rather than on its first request.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = ["DEFAULT_PORTS", "ConfigError", "Settings", "alea_home", "load_settings"]

DEFAULT_PORTS: dict[str, int] = {
    "identity": 50051,
    "files": 50052,
    "simulation": 50053,
    "notification": 50054,
    "admin": 50055,
    "analytics": 50056,
}
HEALTH_PORT_OFFSET = 1000
_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
_EXPORTERS = ("none", "console", "otlp")


class ConfigError(ValueError):
    """A setting is missing or malformed; the message names the variable."""


@dataclass(frozen=True)
class Settings:
    """Everything a service process reads from its environment."""

    service: str
    home: Path
    port: int
    health_port: int
    database_url: str
    identity_address: str
    log_level: str
    otel_exporter: str
    shutdown_grace: float

    @property
    def pki_dir(self) -> Path:
        """Directory holding ca.crt and <name>.crt/<name>.key."""
        return self.home / "pki"


def _port(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer port, got {raw!r}") from None
    if not 0 <= value <= 65535:
        raise ConfigError(f"{name} must be within 0..65535, got {value}")
    return value


def _choice(env: Mapping[str, str], name: str, default: str, allowed: tuple[str, ...]) -> str:
    value = env.get(name) or default
    normalised = value.upper() if allowed is _LOG_LEVELS else value.lower()
    if normalised not in allowed:
        raise ConfigError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")
    return normalised


def _database_url(env: Mapping[str, str], service: str, home: Path) -> str:
    url = env.get("ALEA_DATABASE_URL") or f"sqlite+aiosqlite:///{home / 'data' / service}.db"
    if not url.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
        raise ConfigError(
            "ALEA_DATABASE_URL must start with sqlite+aiosqlite:// or postgresql+asyncpg://, "
            f"got {url.split(':', 1)[0]!r}"
        )
    return url


def _grace(env: Mapping[str, str]) -> float:
    raw = env.get("ALEA_SHUTDOWN_GRACE") or "5"
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"ALEA_SHUTDOWN_GRACE must be seconds, got {raw!r}") from None
    if value < 0:
        raise ConfigError(f"ALEA_SHUTDOWN_GRACE must be >= 0, got {value}")
    return value


def alea_home(env: Mapping[str, str] | None = None) -> Path:
    """``$ALEA_HOME`` (default ``./.alea``) as an absolute path: PKI, data, logs, pid files."""
    env = os.environ if env is None else env
    return Path(env.get("ALEA_HOME") or "./.alea").resolve()


def load_settings(service: str, env: Mapping[str, str] | None = None) -> Settings:
    """Parse the settings of ``service`` from ``env`` (default: ``os.environ``).

    Health port defaults to the gRPC port + 1000; port 0 (tests) keeps health on 0 too.
    The OpenTelemetry exporter is ``ALEA_OTEL_EXPORTER`` (none/console/otlp), and
    becomes ``otlp`` when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set.
    """
    env = os.environ if env is None else env
    home = alea_home(env)
    default_port = DEFAULT_PORTS.get(service, 0)
    port = _port(env, "ALEA_PORT", default_port)
    health_default = port + HEALTH_PORT_OFFSET if port else 0
    exporter_default = "otlp" if env.get("OTEL_EXPORTER_OTLP_ENDPOINT") else "none"
    return Settings(
        service=service,
        home=home,
        port=port,
        health_port=_port(env, "ALEA_HEALTH_PORT", health_default),
        database_url=_database_url(env, service, home),
        identity_address=env.get("ALEA_IDENTITY_ADDRESS") or "localhost:50051",
        log_level=_choice(env, "ALEA_LOG_LEVEL", "INFO", _LOG_LEVELS),
        otel_exporter=_choice(env, "ALEA_OTEL_EXPORTER", exporter_default, _EXPORTERS),
        shutdown_grace=_grace(env),
    )
