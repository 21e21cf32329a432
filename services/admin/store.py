"""All of the admin service's SQL: the audit chains, their checkpoints, settings and history.

:class:`AuditStore` appends entries to a tenant's chain under the tenant's head row
(``audit_heads``, locked ``FOR UPDATE`` on PostgreSQL; SQLite has one writer), so
concurrent appends — several replicas of admin included — always extend the newest head
and never fork the chain. Entry ids are unique: a relayed batch that arrives twice is
appended once. :class:`SettingsStore` keeps the values set (one row per tenant and key;
tenant ``""`` for platform settings) and every change, whose id is the settings version.
Times are UNIX seconds (floats, microsecond precision) so that both databases keep them
exactly as hashed.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    Column,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    bindparam,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncConnection

from services.admin.chain import GENESIS, ChainEntry, entry_hash, rfc3339
from services.runtime.db import Database, rowcount
from services.runtime.events import event
from services.runtime.listing import Listing, ListRequest, Page, number, text, timestamp
from services.runtime.outbox import Outbox, OutboxItem

__all__ = [
    "AUDIT_EVENTS",
    "SETTING_CHANGES",
    "AuditDraft",
    "AuditStore",
    "Checkpoint",
    "SettingChange",
    "SettingRow",
    "SettingsStore",
    "metadata",
]

metadata = MetaData()
_ID = BigInteger().with_variant(Integer(), "sqlite")  # SQLite's autoincrementing rowid

audit_events = Table(
    "audit_events",
    metadata,
    Column("tenant_id", String(36), primary_key=True),
    Column("sequence", BigInteger, primary_key=True, autoincrement=False),
    Column("id", String(36), nullable=False, unique=True),
    Column("service", String(64), nullable=False),
    Column("actor", String(100), nullable=False),
    Column("api_key_id", String(64), nullable=False),
    Column("action", String(200), nullable=False),
    Column("resource", String(512), nullable=False),
    Column("outcome", String(32), nullable=False),
    Column("request_id", String(128), nullable=False),
    Column("client_address", String(256), nullable=False),
    Column("details", Text, nullable=False),  # canonical JSON, exactly as hashed
    Column("event_time", Float, nullable=False),
    Column("create_time", Float, nullable=False),
    Column("previous_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    Index("ix_audit_events_tenant_time", "tenant_id", "event_time"),
)

audit_heads = Table(
    "audit_heads",
    metadata,
    Column("tenant_id", String(36), primary_key=True),
    Column("sequence", BigInteger, nullable=False),
    Column("hash", String(64), nullable=False),
)

audit_checkpoints = Table(
    "audit_checkpoints",
    metadata,
    Column("tenant_id", String(36), primary_key=True),
    Column("sequence", BigInteger, primary_key=True, autoincrement=False),
    Column("head_hash", String(64), nullable=False),
    Column("create_time", Float, nullable=False),
    Column("key_id", String(16), nullable=False),
    Column("public_key", LargeBinary, nullable=False),
    Column("signature", LargeBinary, nullable=False),
)

settings = Table(
    "settings",
    metadata,
    Column("tenant_id", String(36), primary_key=True),
    Column("key", String(128), primary_key=True),
    Column("value", Text, nullable=False),  # JSON
    Column("updater_id", String(100), nullable=False),
    Column("create_time", Float, nullable=False),
    Column("update_time", Float, nullable=False),
)

setting_changes = Table(
    "setting_changes",
    metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("tenant_id", String(36), nullable=False),
    Column("key", String(128), nullable=False),
    Column("old_value", Text, nullable=True),  # JSON; NULL: it was the default
    Column("new_value", Text, nullable=False),
    Column("actor", String(100), nullable=False),
    Column("reason", Text, nullable=False),
    Column("change_time", Float, nullable=False),
)

AUDIT_EVENTS = Listing(
    {
        "actor": text(audit_events.c.actor, sortable=False),
        "action": text(audit_events.c.action, sortable=False),
        "resource": text(audit_events.c.resource, sortable=False),
        "outcome": text(audit_events.c.outcome, sortable=False),
        "service": text(audit_events.c.service, sortable=False),
        "request_id": text(audit_events.c.request_id, sortable=False),
        "event_time": timestamp(audit_events.c.event_time, epoch=True),
        "sequence": number(audit_events.c.sequence),
    },
    key=audit_events.c.id,
    default_order="sequence desc",
)

SETTING_CHANGES = Listing(
    {
        "key": text(setting_changes.c.key, sortable=False),
        "actor": text(setting_changes.c.actor, sortable=False),
        "change_time": timestamp(setting_changes.c.change_time, epoch=True),
    },
    key=setting_changes.c.id,
    default_order="change_time desc",
)


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _chained(
    draft: AuditDraft, sequence: int, previous_hash: str, now: float
) -> tuple[ChainEntry, str]:
    """``draft`` as the entry ``sequence`` of its chain, after ``previous_hash``, and its
    details as stored (canonical JSON)."""
    details = _json(draft.details)
    values: dict[str, Any] = {
        "tenant_id": draft.tenant_id,
        "sequence": sequence,
        "id": draft.id,
        "service": draft.service,
        "actor": draft.actor,
        "api_key_id": draft.api_key_id,
        "action": draft.action,
        "resource": draft.resource,
        "outcome": draft.outcome,
        "request_id": draft.request_id,
        "client_address": draft.client_address,
        "details": json.loads(details),  # exactly as it will read back
        "event_time": round(draft.event_time, 6),
        "create_time": now,
        "previous_hash": previous_hash,
    }
    digest = entry_hash(ChainEntry(**values, hash=""), previous_hash, details)
    return ChainEntry(**values, hash=digest), details


# -- audit ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class AuditDraft:
    """An entry to append: everything but its place in the chain."""

    id: str
    tenant_id: str
    service: str
    actor: str
    api_key_id: str
    action: str
    resource: str
    outcome: str
    request_id: str
    client_address: str
    details: dict[str, Any]
    event_time: float


@dataclass(frozen=True)
class Checkpoint:
    """A signed statement of a chain's length and head."""

    tenant_id: str
    sequence: int
    head_hash: str
    create_time: float
    key_id: str
    public_key: bytes
    signature: bytes


def _entry(row: Any) -> ChainEntry:
    values = dict(row._mapping)
    values["details"] = json.loads(values["details"])
    return ChainEntry(**{k: values[k] for k in ChainEntry.__dataclass_fields__})


def checkpoint_event(checkpoint: Checkpoint) -> OutboxItem:
    """The ``audit.checkpoint`` event carrying a tenant's checkpoint to its event feed."""
    return event(
        "audit.checkpoint",
        checkpoint.tenant_id,
        f"tenants/{checkpoint.tenant_id}/auditCheckpoints/{checkpoint.sequence}",
        {
            "sequence": checkpoint.sequence,
            "head_hash": checkpoint.head_hash,
            "create_time": rfc3339(checkpoint.create_time),
            "key_id": checkpoint.key_id,
            "public_key": base64.b64encode(checkpoint.public_key).decode(),
            "signature": base64.b64encode(checkpoint.signature).decode(),
        },
        at=checkpoint.create_time,
    )


class AuditStore:
    """The audit chains of every tenant (and the platform's, tenant ``""``); a tenant's
    checkpoints are also written to ``outbox`` as events, with the checkpoint itself."""

    def __init__(self, db: Database, outbox: Outbox | None = None) -> None:
        self.db = db
        self.outbox = outbox or Outbox()

    async def append(self, drafts: Sequence[AuditDraft]) -> list[ChainEntry]:
        """Append ``drafts`` in order, each to its tenant's chain, in one transaction;
        drafts whose id is already in the log are skipped. Returns the new entries.

        A batch costs five statements whatever its size and tenants: the heads created
        and locked (in tenant order, so replicas never deadlock), the ids already present,
        the entries inserted, the heads moved on."""
        tenants = sorted({d.tenant_id for d in drafts})
        if not tenants:
            return []
        async with self.db.transaction() as session:
            heads = await self._lock_heads(session, tenants)
            ids = [d.id for d in drafts]
            present = await session.execute(
                select(audit_events.c.id).where(audit_events.c.id.in_(ids))
            )
            seen = set(present.scalars())
            now = round(time.time(), 6)
            entries: list[ChainEntry] = []
            rows: list[dict[str, Any]] = []
            for draft in drafts:
                if draft.id in seen:
                    continue
                seen.add(draft.id)
                sequence, head = heads[draft.tenant_id]
                entry, details = _chained(draft, sequence + 1, head, now)
                heads[draft.tenant_id] = (entry.sequence, entry.hash)
                entries.append(entry)
                rows.append({**entry.__dict__, "details": details})
            if not entries:
                return []
            await session.execute(insert(audit_events), rows)
            moved = {e.tenant_id for e in entries}
            await session.execute(
                update(audit_heads)
                .where(audit_heads.c.tenant_id == bindparam("tenant"))
                .values(sequence=bindparam("sequence"), hash=bindparam("head")),
                [{"tenant": t, "sequence": heads[t][0], "head": heads[t][1]} for t in moved],
            )
        return entries

    async def _lock_heads(
        self, session: AsyncConnection, tenants: list[str]
    ) -> dict[str, tuple[int, str]]:
        """Each tenant's head (sequence, hash), created at (0, GENESIS) for a first entry
        and locked until the transaction ends."""
        make = postgresql.insert if self.db.dialect == "postgresql" else sqlite.insert
        await session.execute(
            make(audit_heads).on_conflict_do_nothing(),
            [{"tenant_id": t, "sequence": 0, "hash": GENESIS} for t in tenants],
        )
        query = (
            select(audit_heads.c.tenant_id, audit_heads.c.sequence, audit_heads.c.hash)
            .where(audit_heads.c.tenant_id.in_(tenants))
            .order_by(audit_heads.c.tenant_id)
            .with_for_update()
        )
        rows = (await session.execute(query)).all()
        return {str(r.tenant_id): (int(r.sequence), str(r.hash)) for r in rows}

    async def head(self, tenant: str) -> tuple[int, str]:
        """The tenant's head as its row says (0 and GENESIS for an empty log)."""
        query = select(audit_heads.c.sequence, audit_heads.c.hash).where(
            audit_heads.c.tenant_id == tenant
        )
        async with self.db.reading() as session:
            row = (await session.execute(query)).first()
        return (int(row.sequence), str(row.hash)) if row else (0, GENESIS)

    async def last_sequence(self, tenant: str) -> int:
        """The highest sequence present in the tenant's log (0 when empty)."""
        query = select(func.max(audit_events.c.sequence)).where(audit_events.c.tenant_id == tenant)
        async with self.db.reading() as session:
            found = (await session.execute(query)).scalar()
        return int(found or 0)

    async def entry(self, tenant: str, sequence: int) -> ChainEntry | None:
        """One entry of a tenant's log."""
        query = select(audit_events).where(
            audit_events.c.tenant_id == tenant, audit_events.c.sequence == sequence
        )
        async with self.db.reading() as session:
            row = (await session.execute(query)).first()
        return _entry(row) if row else None

    async def entry_by_id(self, entry_id: str) -> ChainEntry | None:
        """The entry with id ``entry_id``, in whichever log."""
        query = select(audit_events).where(audit_events.c.id == entry_id)
        async with self.db.reading() as session:
            row = (await session.execute(query)).first()
        return _entry(row) if row else None

    async def entries(
        self, tenant: str, start: int, end: int | None, chunk: int = 2000
    ) -> AsyncIterator[ChainEntry]:
        """The tenant's entries from ``start`` to ``end`` (inclusive; None: the newest), in
        sequence order, read a chunk at a time."""
        after = start - 1
        while True:
            query = (
                select(audit_events)
                .where(audit_events.c.tenant_id == tenant, audit_events.c.sequence > after)
                .order_by(audit_events.c.sequence)
                .limit(chunk)
            )
            if end is not None:
                query = query.where(audit_events.c.sequence <= end)
            async with self.db.reading() as session:
                rows = (await session.execute(query)).all()
            for row in rows:
                yield _entry(row)
            if len(rows) < chunk:
                return
            after = int(rows[-1].sequence)

    async def page(self, tenant: str | None, request: ListRequest) -> Page[ChainEntry]:
        """A page of one tenant's log, or of every log (``tenant`` None)."""
        scope = "*" if tenant is None else tenant
        query = AUDIT_EVENTS.query(request, scope)
        statement = select(audit_events)
        if tenant is not None:
            statement = statement.where(audit_events.c.tenant_id == tenant)
        async with self.db.reading() as session:
            rows = (await session.execute(query.apply(statement))).all()
        items, token = query.page(rows)
        return Page([_entry(_Row(item)) for item in items], token)

    async def count(self, tenant: str | None) -> int:
        """Entries in one tenant's log, or in every log (from the head rows: no scan)."""
        query = select(func.coalesce(func.sum(audit_heads.c.sequence), 0))
        if tenant is not None:
            query = query.where(audit_heads.c.tenant_id == tenant)
        async with self.db.reading() as session:
            return int((await session.execute(query)).scalar() or 0)

    # -- checkpoints ----------------------------------------------------------------------

    async def add_checkpoint(self, checkpoint: Checkpoint) -> None:
        """Keep a signed checkpoint (one per tenant and sequence; a second is ignored) and,
        for a tenant's log, its event (the platform's log has no feed)."""
        make = postgresql.insert if self.db.dialect == "postgresql" else sqlite.insert
        async with self.db.transaction() as session:
            added = await session.execute(
                make(audit_checkpoints).values(**checkpoint.__dict__).on_conflict_do_nothing()
            )
            if rowcount(added) == 1 and checkpoint.tenant_id:
                await self.outbox.add(session, checkpoint_event(checkpoint))

    async def checkpoint(self, tenant: str, at_most: int | None = None) -> Checkpoint | None:
        """The newest checkpoint of a tenant (at or below ``at_most`` when given)."""
        query = (
            select(audit_checkpoints)
            .where(audit_checkpoints.c.tenant_id == tenant)
            .order_by(audit_checkpoints.c.sequence.desc())
            .limit(1)
        )
        if at_most is not None:
            query = query.where(audit_checkpoints.c.sequence <= at_most)
        async with self.db.reading() as session:
            row = (await session.execute(query)).first()
        return Checkpoint(**row._mapping) if row else None

    async def grown_since_checkpoint(self) -> list[tuple[str, int, str]]:
        """(tenant, head sequence, head hash) of every log that grew since its newest
        checkpoint."""
        newest = (
            select(
                audit_checkpoints.c.tenant_id,
                func.max(audit_checkpoints.c.sequence).label("sequence"),
            )
            .group_by(audit_checkpoints.c.tenant_id)
            .subquery()
        )
        query = (
            select(audit_heads.c.tenant_id, audit_heads.c.sequence, audit_heads.c.hash)
            .outerjoin(newest, newest.c.tenant_id == audit_heads.c.tenant_id)
            .where(
                audit_heads.c.sequence > 0,
                (newest.c.sequence.is_(None)) | (newest.c.sequence < audit_heads.c.sequence),
            )
        )
        async with self.db.reading() as session:
            rows = (await session.execute(query)).all()
        return [(str(r.tenant_id), int(r.sequence), str(r.hash)) for r in rows]


class _Row:
    """A mapping from a listing page, shaped like a result row for :func:`_entry`."""

    def __init__(self, mapping: dict[str, Any]) -> None:
        self._mapping = mapping


# -- settings -------------------------------------------------------------------------------


@dataclass(frozen=True)
class SettingRow:
    """A value set for a tenant (``""``: the platform)."""

    tenant_id: str
    key: str
    value: Any
    updater_id: str
    create_time: float
    update_time: float


@dataclass(frozen=True)
class SettingChange:
    """One change of a setting, kept for ever; its id is the settings version it made."""

    id: int
    tenant_id: str
    key: str
    old_value: Any  # None: it was the default
    new_value: Any
    actor: str
    reason: str
    change_time: float


def _setting(row: Any) -> SettingRow:
    values = dict(row._mapping)
    return SettingRow(**{**values, "value": json.loads(values["value"])})


def _change(mapping: Any) -> SettingChange:
    values = dict(mapping)
    old = values["old_value"]
    return SettingChange(
        id=int(values["id"]),
        tenant_id=values["tenant_id"],
        key=values["key"],
        old_value=None if old is None else json.loads(old),
        new_value=json.loads(values["new_value"]),
        actor=values["actor"],
        reason=values["reason"],
        change_time=values["change_time"],
    )


class SettingsStore:
    """Values set and their history."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def values(self, tenant: str) -> dict[str, SettingRow]:
        """The values set for ``tenant`` (``""``: the platform's), by key."""
        query = select(settings).where(settings.c.tenant_id == tenant)
        async with self.db.reading() as session:
            rows = (await session.execute(query)).all()
        return {row.key: _setting(row) for row in rows}

    async def set(
        self, tenant: str, key: str, value: Any, actor: str, reason: str
    ) -> tuple[SettingRow, SettingChange]:
        """Set a value and record the change, in one transaction."""
        now = time.time()
        found = select(settings).where(settings.c.tenant_id == tenant, settings.c.key == key)
        async with self.db.transaction() as session:
            row = (await session.execute(found.with_for_update())).first()
            old = _setting(row) if row else None
            if old is None:
                await session.execute(
                    insert(settings).values(
                        tenant_id=tenant,
                        key=key,
                        value=_json(value),
                        updater_id=actor,
                        create_time=now,
                        update_time=now,
                    )
                )
            else:
                await session.execute(
                    update(settings)
                    .where(settings.c.tenant_id == tenant, settings.c.key == key)
                    .values(value=_json(value), updater_id=actor, update_time=now)
                )
            change = {
                "tenant_id": tenant,
                "key": key,
                "old_value": None if old is None else _json(old.value),
                "new_value": _json(value),
                "actor": actor,
                "reason": reason,
                "change_time": now,
            }
            result = await session.execute(insert(setting_changes).values(**change))
            key_row = cast(CursorResult[Any], result).inserted_primary_key
            assert key_row is not None
            change["id"] = key_row[0]
        stored = SettingRow(tenant, key, value, actor, old.create_time if old else now, now)
        return stored, _change(change)

    async def changes(self, tenant: str, request: ListRequest) -> Page[SettingChange]:
        """A page of the changes that apply to ``tenant``: its own and the platform's."""
        query = SETTING_CHANGES.query(request, tenant)
        statement = select(setting_changes).where(setting_changes.c.tenant_id.in_([tenant, ""]))
        async with self.db.reading() as session:
            rows = (await session.execute(query.apply(statement))).all()
        items, token = query.page(rows)
        return Page([_change(item) for item in items], token)

    async def version(self) -> int:
        """The id of the newest change (0 when nothing was ever set)."""
        async with self.db.reading() as session:
            found = (await session.execute(select(func.max(setting_changes.c.id)))).scalar()
        return int(found or 0)

    async def everything(self) -> tuple[int, list[SettingRow]]:
        """(version, every value set for every tenant), read in one snapshot."""
        # The version first: the rows read after it are at least as new, so a reader that
        # keeps it fetches again at the next change rather than missing one.
        async with self.db.reading() as session:
            version = (await session.execute(select(func.max(setting_changes.c.id)))).scalar()
            rows = (await session.execute(select(settings))).all()
        return int(version or 0), [_setting(row) for row in rows]
