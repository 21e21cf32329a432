"""Wiring of the admin service: the audit log and its checkpoint signer, settings, the
overview and user administration, over one database and the runtime's peers."""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alea.admin.v1 import admin_pb2, admin_pb2_grpc

from services.admin.api import AdminServicer
from services.admin.audit import AuditLog
from services.admin.chain import rfc3339
from services.admin.overview import Overview
from services.admin.settings import SettingValues
from services.admin.signing import Signer
from services.admin.store import AuditStore, Checkpoint, SettingsStore
from services.admin.users import UserAdmin
from services.runtime.config import Settings
from services.runtime.db import Database
from services.runtime.events import events_relay
from services.runtime.outbox import Outbox
from services.runtime.peers import Peers
from services.runtime.server import Mount, Service

__all__ = ["MIGRATIONS", "build"]

MIGRATIONS = Path(__file__).parent / "migrations"
CHECKPOINT_INTERVAL = "audit.checkpoint_interval_seconds"
log = logging.getLogger("alea.audit")


async def log_checkpoint(checkpoint: Checkpoint) -> None:
    """Publish a signed checkpoint in the logs, outside the database it vouches for (the
    store also sends it to the tenant's event feed)."""
    log.info(
        "audit checkpoint",
        extra={
            "checkpoint": {
                "tenant_id": checkpoint.tenant_id,
                "sequence": checkpoint.sequence,
                "head_hash": checkpoint.head_hash,
                "create_time": rfc3339(checkpoint.create_time),
                "key_id": checkpoint.key_id,
                "public_key": base64.b64encode(checkpoint.public_key).decode(),
                "signature": base64.b64encode(checkpoint.signature).decode(),
            }
        },
    )


@dataclass(frozen=True)
class _TenantSources:
    """A tenant's own numbers for the overview, asked of identity, simulation and files."""

    peers: Peers

    async def count_users(self, credentials: Sequence[tuple[str, str]]) -> int:
        return await self.peers.identity.count_users(credentials)

    async def queue(self, credentials: Sequence[tuple[str, str]]) -> Any:
        return await self.peers.simulation.queue(credentials)

    async def storage(self, credentials: Sequence[tuple[str, str]]) -> tuple[int, int]:
        return await self.peers.files.storage(credentials)


async def build(settings: Settings, db: Database, peers: Peers) -> Service:
    """The AdminService servicer and the task that signs checkpoints at the set interval."""
    outbox = Outbox()
    audit_store = AuditStore(db, outbox)
    audit = AuditLog(audit_store, Signer.load(settings.pki_dir), log_checkpoint)
    servicer = AdminServicer(
        audit,
        SettingValues(SettingsStore(db)),
        Overview(peers.status, _TenantSources(peers), audit_store.count),
        UserAdmin(peers.identity),
    )
    mount = Mount(
        admin_pb2.DESCRIPTOR.services_by_name["AdminService"],
        servicer,
        admin_pb2_grpc.add_AdminServiceServicer_to_server,
    )

    async def checkpoints(stop: asyncio.Event) -> None:
        await audit.run_checkpoints(stop, lambda: peers.settings.get(CHECKPOINT_INTERVAL))

    async def gauges() -> dict[str, float]:
        return {"audit_events": await audit_store.count(None)}

    relay = events_relay(db, outbox, peers)
    return Service([mount], background=[checkpoints, relay], gauges=gauges)
