"""Persistence of file metadata, shares and per-tenant storage usage: all of files' SQL.

:class:`FileStore` is a repository returning :class:`FileRecord` dataclasses; every
method over a tenant's files takes the tenant first. Usage is changed only by
conditional single-statement updates inside the same transaction as the metadata row,
so concurrent uploads of one tenant can neither lose an increment nor pass the quota
together (this holds on SQLite and PostgreSQL alike).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

from sqlalchemy import (
    BigInteger,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    and_,
    bindparam,
    delete,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from services.runtime.db import Database, Reader, UtcDateTime, rowcount
from services.runtime.errors import AlreadyExists
from services.runtime.events import event
from services.runtime.listing import Listing, ListRequest, Page, number, text, timestamp
from services.runtime.outbox import Outbox, OutboxItem

__all__ = ["FILES", "FileRecord", "FileStore", "files", "metadata", "shares", "storage_usage"]

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
    Column("create_time", UtcDateTime, nullable=False),
    Column("update_time", UtcDateTime, nullable=False),
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
    Column("create_time", UtcDateTime, nullable=False),
    Index("ix_file_shares_user", "user_id"),
)

storage_usage = Table(
    "storage_usage",
    metadata,
    Column("tenant_id", String(36), primary_key=True),
    Column("bytes_used", BigInteger, nullable=False),
    Column("file_count", BigInteger, nullable=False),
)

FILES = Listing(
    {
        "file_name": text(files.c.name),
        "content_type": text(files.c.content_type),
        "owner_id": text(files.c.owner_id, sortable=False),
        "size_bytes": number(files.c.size),
        "create_time": timestamp(files.c.create_time),
        "update_time": timestamp(files.c.update_time),
    },
    key=files.c.id,
    default_order="create_time desc",
)
"""ListFiles: the fields its ``filter`` and ``order_by`` take (see files.proto)."""


# GetFile and every Download read these: built (and their cache keys computed) once.
_FILE = select(files).where(files.c.tenant_id == bindparam("t"), files.c.id == bindparam("f"))
_SHARED_WITH = (
    select(shares.c.user_id).where(shares.c.file_id == bindparam("f")).order_by(shares.c.user_id)
)


@dataclass(frozen=True)
class FileRecord:
    """A file's metadata row: what it is, whose, and how its blob is sealed."""

    id: str
    tenant_id: str
    owner_id: str
    name: str
    content_type: str
    size: int
    sha256: str
    key_id: str
    wrapped_key: bytes
    nonce_prefix: bytes
    chunk_size: int
    create_time: dt.datetime
    update_time: dt.datetime
    request_id: str | None


Rewrap = Callable[[str, str, bytes], tuple[str, bytes]]
"""(file id, key id, wrapped key) → (new key id, re-wrapped key)."""

QUOTA_WARNINGS = (80, 100)
"""Percentages of the storage quota whose crossing by an upload is an event."""


def _file_event(type_: str, record: FileRecord, **data: object) -> OutboxItem:
    return event(
        type_,
        record.tenant_id,
        f"files/{record.id}",
        {
            "file_id": record.id,
            "file_name": record.name,
            "content_type": record.content_type,
            "size_bytes": record.size,
            "owner_id": record.owner_id,
            **data,
        },
        user_id=str(data.get("shared_with_user_id", record.owner_id)),
    )


def _quota_events(record: FileRecord, before: int, limit: int) -> list[OutboxItem]:
    """quota.warning for each threshold of :data:`QUOTA_WARNINGS` the upload crossed."""
    after = before + record.size
    return [
        event(
            "quota.warning",
            record.tenant_id,
            f"tenants/{record.tenant_id}/storage",
            {
                "metric": "storage_bytes",
                "percent": percent,
                "used_bytes": after,
                "limit_bytes": limit,
                "file_id": record.id,
            },
            user_id=record.owner_id,
        )
        for percent in QUOTA_WARNINGS
        if limit > 0 and before * 100 < percent * limit <= after * 100
    ]


class FileStore:
    """Every read and write of the files service's tables; one transaction per method."""

    def __init__(self, db: Database, outbox: Outbox | None = None) -> None:
        self.db = db
        self.outbox = outbox or Outbox()

    # -- reads ---------------------------------------------------------------------------

    async def get(self, tenant_id: str, file_id: str) -> tuple[FileRecord, tuple[str, ...]] | None:
        """A file of the tenant and the users it is shared with (sorted), or None."""
        async with self.db.reading() as session:
            row = (await session.execute(_FILE, {"t": tenant_id, "f": file_id})).first()
            if row is None:
                return None
            users = await session.scalars(_SHARED_WITH, {"f": file_id})
            return FileRecord(**row._mapping), tuple(users)

    async def id_by_request(self, tenant_id: str, request_id: str) -> str | None:
        """The file an upload with this idempotency key created, if any."""
        async with self.db.reading() as session:
            file_id: str | None = await session.scalar(
                select(files.c.id).where(
                    files.c.tenant_id == tenant_id, files.c.request_id == request_id
                )
            )
        return file_id

    async def totals(self) -> tuple[int, int]:
        """(bytes stored, files) over every tenant, for the operator overview."""
        query = select(
            func.coalesce(func.sum(storage_usage.c.bytes_used), 0),
            func.coalesce(func.sum(storage_usage.c.file_count), 0),
        )
        async with self.db.reading() as session:
            stored, count = (await session.execute(query)).one()
        return int(stored), int(count)

    async def usage(self, tenant_id: str) -> tuple[int, int]:
        """(bytes used, file count) of a tenant; zeros before its first upload."""
        async with self.db.reading() as session:
            return await _usage(session, tenant_id)

    async def list(
        self, tenant_id: str, request: ListRequest, visible_to: str | None
    ) -> Page[FileRecord]:
        """A page of the tenant's files (only those ``visible_to`` owns or was shared,
        unless None); InvalidArgument for a bad filter, order or token."""
        query = FILES.query(request, tenant_id, visible_to or "")
        statement = select(files).where(files.c.tenant_id == tenant_id)
        if visible_to is not None:
            shared = select(shares.c.file_id).where(shares.c.user_id == visible_to)
            statement = statement.where(or_(files.c.owner_id == visible_to, files.c.id.in_(shared)))
        async with self.db.reading() as session:
            rows = (await session.execute(query.apply(statement))).all()
        items, token = query.page(rows)
        return Page([FileRecord(**item) for item in items], token)

    async def known(self, file_ids: Sequence[str]) -> set[str]:
        """Which of ``file_ids`` name a file of any tenant (blobs are keyed by file id)."""
        async with self.db.reading() as session:
            return set(await session.scalars(select(files.c.id).where(files.c.id.in_(file_ids))))

    # -- writes --------------------------------------------------------------------------

    async def insert(self, record: FileRecord, limit: int) -> bool:
        """Store the row and charge its bytes if the tenant stays within ``limit``, with the
        file.uploaded event and a quota.warning for each threshold the upload crosses.

        False (and nothing stored) when it would not; AlreadyExists when the tenant's
        request id was taken meanwhile by a concurrent upload.
        """
        try:
            async with self.db.transaction() as session:
                if not await _charge(session, record.tenant_id, record.size, limit):
                    return False
                await session.execute(insert(files).values(**asdict(record)))
                before = (await _usage(session, record.tenant_id))[0] - record.size
                await self.outbox.add(
                    session,
                    _file_event("file.uploaded", record, sha256=record.sha256),
                    *_quota_events(record, before, limit),
                )
            return True
        except IntegrityError:
            raise AlreadyExists("upload", record.request_id or record.id) from None

    async def delete(self, tenant_id: str, file_id: str, actor_id: str) -> bool:
        """Remove the file and its shares and give back its bytes, with the file.deleted
        event; False if already gone."""
        async with self.db.transaction() as session:
            row = (
                await session.execute(
                    select(files).where(files.c.tenant_id == tenant_id, files.c.id == file_id)
                )
            ).first()
            if row is None:
                return False
            record = FileRecord(**row._mapping)
            size = record.size
            await session.execute(delete(shares).where(shares.c.file_id == file_id))
            await session.execute(delete(files).where(files.c.id == file_id))
            await session.execute(
                update(storage_usage)
                .where(storage_usage.c.tenant_id == tenant_id)
                .values(
                    bytes_used=storage_usage.c.bytes_used - size,
                    file_count=storage_usage.c.file_count - 1,
                )
            )
            await self.outbox.add(session, _file_event("file.deleted", record, actor_id=actor_id))
        return True

    async def share(
        self, tenant_id: str, file_id: str, user_id: str, now: dt.datetime, actor_id: str
    ) -> bool:
        """Let ``user_id`` read the file (idempotent; a new share moves the file's update
        time on and is a file.shared event); False when the file is gone."""
        try:
            async with self.db.transaction() as session:
                row = (
                    await session.execute(
                        select(files).where(files.c.tenant_id == tenant_id, files.c.id == file_id)
                    )
                ).first()
                if row is None:
                    return False
                exists = await session.scalar(
                    select(shares.c.user_id).where(
                        shares.c.file_id == file_id, shares.c.user_id == user_id
                    )
                )
                if not exists:
                    await session.execute(
                        insert(shares).values(file_id=file_id, user_id=user_id, create_time=now)
                    )
                    await session.execute(
                        update(files).where(files.c.id == file_id).values(update_time=now)
                    )
                    shared = _file_event(
                        "file.shared",
                        FileRecord(**row._mapping),
                        shared_with_user_id=user_id,
                        actor_id=actor_id,
                    )
                    await self.outbox.add(session, shared)
            return True
        except IntegrityError:  # deleted by a concurrent transaction after our check
            return False

    async def unshare(self, tenant_id: str, file_id: str, user_id: str) -> None:
        """Revoke ``user_id``'s access (idempotent)."""
        owned = select(files.c.id).where(files.c.tenant_id == tenant_id, files.c.id == file_id)
        async with self.db.transaction() as session:
            await session.execute(
                delete(shares).where(shares.c.file_id.in_(owned), shares.c.user_id == user_id)
            )

    async def rewrap_keys(self, current_key_id: str, rewrap: Rewrap, batch: int) -> int:
        """Re-wrap up to ``batch`` data keys not under ``current_key_id``; returns how many.

        Each row is updated only if its key id is still the one read, so this is safe to
        run while serving and to rerun.
        """
        async with self.db.transaction() as session:
            rows = (
                await session.execute(
                    select(files.c.id, files.c.key_id, files.c.wrapped_key)
                    .where(files.c.key_id != current_key_id)
                    .limit(batch)
                )
            ).all()
            for file_id, key_id, wrapped in rows:
                new_id, rewrapped = rewrap(file_id, key_id, wrapped)
                await session.execute(
                    update(files)
                    .where(files.c.id == file_id, files.c.key_id == key_id)
                    .values(key_id=new_id, wrapped_key=rewrapped)
                )
        return len(rows)


async def _usage(session: Reader, tenant_id: str) -> tuple[int, int]:
    row = (
        await session.execute(
            select(storage_usage.c.bytes_used, storage_usage.c.file_count).where(
                storage_usage.c.tenant_id == tenant_id
            )
        )
    ).first()
    return (int(row[0]), int(row[1])) if row else (0, 0)


async def _charge(session: AsyncConnection, tenant_id: str, size: int, limit: int) -> bool:
    """Charge ``size`` bytes and one file if the total stays within ``limit``."""
    exists = await session.scalar(
        select(storage_usage.c.tenant_id).where(storage_usage.c.tenant_id == tenant_id)
    )
    if not exists:
        try:
            async with session.begin_nested():
                await session.execute(
                    insert(storage_usage).values(tenant_id=tenant_id, bytes_used=0, file_count=0)
                )
        except IntegrityError:
            pass  # a concurrent first upload of the same tenant created it
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
