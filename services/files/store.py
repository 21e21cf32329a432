"""Persistence of file metadata, shares and per-tenant storage usage (SQLAlchemy Core).

Usage is changed only by conditional single-statement updates inside the same
transaction as the metadata row, so concurrent uploads of one tenant can neither lose
an increment nor pass the quota together (this holds on SQLite and PostgreSQL alike).
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    and_,
    delete,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.runtime.db import rowcount

__all__ = ["files", "metadata", "shares", "storage_usage"]

metadata = MetaData()

files = Table(
    "files",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("tenant_id", String(36), nullable=False),
    Column("owner_id", String(36), nullable=False),
    Column("name", String(255), nullable=False),
    Column("content_type", String(255), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("key_id", String(64), nullable=False),
    Column("wrapped_key", LargeBinary, nullable=False),
    Column("nonce_prefix", LargeBinary, nullable=False),
    Column("chunk_size", Integer, nullable=False),
    Column("create_time", DateTime(timezone=True), nullable=False),
    Column("update_time", DateTime(timezone=True), nullable=False),
    Column("request_id", String(36), nullable=True),
    Index("ux_files_tenant_request", "tenant_id", "request_id", unique=True),
    Index("ix_files_tenant_create", "tenant_id", "create_time"),
    Index("ix_files_key_id", "key_id"),
)

shares = Table(
    "file_shares",
    metadata,
    Column("file_id", String(36), ForeignKey("files.id", ondelete="CASCADE"), primary_key=True),
    Column("user_id", String(36), primary_key=True),
    Column("create_time", DateTime(timezone=True), nullable=False),
    Index("ix_file_shares_user", "user_id"),
)

storage_usage = Table(
    "storage_usage",
    metadata,
    Column("tenant_id", String(36), primary_key=True),
    Column("bytes_used", BigInteger, nullable=False),
    Column("file_count", BigInteger, nullable=False),
)


def utc(value: datetime) -> datetime:
    """SQLite returns naive datetimes; every stored time is UTC."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


async def usage(session: AsyncSession, tenant_id: str) -> tuple[int, int]:
    """(bytes used, file count) of a tenant; zeros before its first upload."""
    row = (
        await session.execute(
            select(storage_usage.c.bytes_used, storage_usage.c.file_count).where(
                storage_usage.c.tenant_id == tenant_id
            )
        )
    ).first()
    return (int(row[0]), int(row[1])) if row else (0, 0)


async def _ensure_usage_row(session: AsyncSession, tenant_id: str) -> None:
    exists = await session.scalar(
        select(storage_usage.c.tenant_id).where(storage_usage.c.tenant_id == tenant_id)
    )
    if exists:
        return
    try:
        async with session.begin_nested():
            await session.execute(
                insert(storage_usage).values(tenant_id=tenant_id, bytes_used=0, file_count=0)
            )
    except IntegrityError:
        pass  # a concurrent first upload of the same tenant created it


async def add_usage(session: AsyncSession, tenant_id: str, size: int, limit: int) -> bool:
    """Charge ``size`` bytes and one file if the total stays within ``limit``."""
    await _ensure_usage_row(session, tenant_id)
    result = await session.execute(
        update(storage_usage)
        .where(
            and_(
                storage_usage.c.tenant_id == tenant_id,
                storage_usage.c.bytes_used + size <= limit,
            )
        )
        .values(
            bytes_used=storage_usage.c.bytes_used + size,
            file_count=storage_usage.c.file_count + 1,
        )
    )
    return rowcount(result) == 1


async def release_usage(session: AsyncSession, tenant_id: str, size: int) -> None:
    """Give back ``size`` bytes and one file."""
    await session.execute(
        update(storage_usage)
        .where(storage_usage.c.tenant_id == tenant_id)
        .values(
            bytes_used=storage_usage.c.bytes_used - size,
            file_count=storage_usage.c.file_count - 1,
        )
    )


async def delete_file(session: AsyncSession, file_id: str) -> None:
    """Remove a file row (its shares cascade; deleted explicitly for SQLite without FKs)."""
    await session.execute(delete(shares).where(shares.c.file_id == file_id))
    await session.execute(delete(files).where(files.c.id == file_id))
