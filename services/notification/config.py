"""Settings of the notification service (``ALEA_NOTIFICATION_*``, ``ALEA_SMTP_*``), parsed once.

Every variable is optional; a malformed one stops the service at start-up naming it.
The table in services/notification/README.md lists them with their defaults.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from services.runtime.config import ConfigError, Environment
from services.runtime.platform_settings import SCHEMA, WEBHOOK_DISABLE_AFTER, WEBHOOK_RETRY_SCHEDULE

__all__ = ["NotificationConfig", "SmtpConfig", "load_config"]


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class SmtpConfig:
    """Where email goes: host (empty: email is off), port, security, credentials, sender,
    and the CA bundle that verifies the server's certificate (empty: the system's)."""

    host: str = ""
    port: int = 587
    security: str = "starttls"  # starttls | tls | none
    username: str = ""
    password: str = ""
    sender: str = "Alea <alea@localhost>"
    timeout_seconds: float = 30.0
    ca_file: str = ""


@dataclass(frozen=True)
class NotificationConfig:
    """Retention, feed, webhook delivery and email settings."""

    retention_seconds: float = 7 * 86400.0
    poll_seconds: float = 0.5
    # The retry policy is a platform setting (the service reads it live); these are its
    # defaults, for a Webhooks built without the settings (tests).
    retry_schedule: tuple[float, ...] = SCHEMA[WEBHOOK_RETRY_SCHEDULE].default
    retry_jitter: float = 0.1
    disable_after_seconds: float = SCHEMA[WEBHOOK_DISABLE_AFTER].default
    connect_timeout_seconds: float = 5.0
    read_timeout_seconds: float = 15.0
    allowlist: tuple[Network, ...] = ()
    smtp: SmtpConfig = SmtpConfig()


def _allowlist(environment: Environment, name: str) -> tuple[Network, ...]:
    raw = environment.text(name, "")
    try:
        return tuple(ipaddress.ip_network(p.strip()) for p in raw.split(",") if p.strip())
    except ValueError:
        raise ConfigError(f"{name} must be comma-separated CIDR networks, got {raw!r}") from None


def load_config(env: Mapping[str, str] | None = None) -> NotificationConfig:
    """Parse the notification settings from ``env`` (default ``os.environ``)."""
    e = Environment(env)
    prefix = "ALEA_NOTIFICATION_"
    smtp = SmtpConfig(
        host=e.text("ALEA_SMTP_HOST", ""),
        port=e.port("ALEA_SMTP_PORT", 587),
        security=e.choice("ALEA_SMTP_SECURITY", "starttls", ("starttls", "tls", "none")),
        username=e.text("ALEA_SMTP_USERNAME", ""),
        password=e.text("ALEA_SMTP_PASSWORD", ""),
        sender=e.text("ALEA_SMTP_FROM", SmtpConfig.sender),
        timeout_seconds=e.number("ALEA_SMTP_TIMEOUT_SECONDS", 30.0, minimum=0.1),
        ca_file=e.text("ALEA_SMTP_CA_FILE", ""),
    )
    if smtp.ca_file and not Path(smtp.ca_file).is_file():
        raise ConfigError(f"ALEA_SMTP_CA_FILE must name a readable file, got {smtp.ca_file!r}")
    return NotificationConfig(
        retention_seconds=e.number(f"{prefix}RETENTION_DAYS", 7.0, minimum=0.0001) * 86400,
        poll_seconds=e.number(f"{prefix}POLL_SECONDS", 0.5, minimum=0.01),
        retry_jitter=e.number(f"{prefix}WEBHOOK_RETRY_JITTER", 0.1, minimum=0.0),
        connect_timeout_seconds=e.number(f"{prefix}WEBHOOK_CONNECT_TIMEOUT", 5.0, minimum=0.01),
        read_timeout_seconds=e.number(f"{prefix}WEBHOOK_READ_TIMEOUT", 15.0, minimum=0.01),
        allowlist=_allowlist(e, f"{prefix}WEBHOOK_ALLOWLIST"),
        smtp=smtp,
    )
