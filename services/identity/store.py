"""Identity's tables (SQLAlchemy 2 ORM); the schema itself is made by ``migrations/``."""

from __future__ import annotations

import datetime as dt
from typing import Any, ClassVar

from sqlalchemy import JSON, BigInteger, ForeignKey, LargeBinary, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from services.runtime.db import UtcDateTime

__all__ = [
    "ApiKeyRow",
    "IdempotencyRow",
    "RefreshTokenRow",
    "ReservationRow",
    "SessionRow",
    "SigningKeyRow",
    "TenantRow",
    "UserRow",
]


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[object, object]] = {
        dt.datetime: UtcDateTime,
        dict[str, Any]: JSON,
    }


class TenantRow(Base):
    __tablename__ = "tenants"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    display_name: Mapped[str] = mapped_column(String(200))
    tier: Mapped[str] = mapped_column(String(16))
    create_time: Mapped[dt.datetime]
    update_time: Mapped[dt.datetime]


class UserRow(Base):
    __tablename__ = "users"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    display_name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str] = mapped_column(String(255))
    preferences: Mapped[dict[str, Any]]
    disabled: Mapped[bool]
    create_time: Mapped[dt.datetime]
    update_time: Mapped[dt.datetime]
    last_login_time: Mapped[dt.datetime | None]


class SessionRow(Base):
    __tablename__ = "sessions"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    tenant_id: Mapped[str] = mapped_column(String(36))
    create_time: Mapped[dt.datetime]
    revoke_time: Mapped[dt.datetime | None]


class RefreshTokenRow(Base):
    __tablename__ = "refresh_tokens"
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("sessions.id"), index=True)
    expire_time: Mapped[dt.datetime]
    use_time: Mapped[dt.datetime | None]


class ApiKeyRow(Base):
    __tablename__ = "api_keys"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    display_name: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(16))
    prefix: Mapped[str] = mapped_column(String(16))
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    expire_time: Mapped[dt.datetime | None]
    revoke_time: Mapped[dt.datetime | None]
    last_used_time: Mapped[dt.datetime | None]
    create_time: Mapped[dt.datetime]
    update_time: Mapped[dt.datetime]


class SigningKeyRow(Base):
    __tablename__ = "signing_keys"
    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    algorithm: Mapped[str] = mapped_column(String(16))
    private_key: Mapped[bytes] = mapped_column(LargeBinary)
    public_jwk: Mapped[dict[str, Any]]
    create_time: Mapped[dt.datetime]
    retire_time: Mapped[dt.datetime | None]


class IdempotencyRow(Base):
    __tablename__ = "idempotency_keys"
    scope: Mapped[str] = mapped_column(String(64), primary_key=True)
    request_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    resource_id: Mapped[str] = mapped_column(String(36))
    create_time: Mapped[dt.datetime]


class ReservationRow(Base):
    __tablename__ = "trial_reservations"
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), primary_key=True)
    request_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    period: Mapped[str] = mapped_column(String(7), index=True)
    trials: Mapped[int] = mapped_column(BigInteger)
    create_time: Mapped[dt.datetime]
