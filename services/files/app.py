"""Process entry points of the files service: serve, and rotate master keys.

``python -m services.files`` serves; ``python -m services.files rotate-keys`` re-wraps
every data key under the current master key (``--new-dev-key`` first adds a fresh
development key to ``$ALEA_HOME/keys`` and makes it current).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from pathlib import Path

from alea.files.v1 import files_pb2, files_pb2_grpc

from services.files.api import FilesServicer
from services.files.blobs import LocalBlobStore
from services.files.config import add_dev_master_key, load_files_settings
from services.files.domain import Files, rotate_master_keys
from services.files.store import FileStore
from services.runtime.config import Settings, load_settings
from services.runtime.db import Database
from services.runtime.events import events_relay
from services.runtime.outbox import Outbox
from services.runtime.peers import Peers
from services.runtime.server import Mount, Service, run

__all__ = ["MIGRATIONS", "build", "main"]

log = logging.getLogger(__name__)
SERVICE = "files"
ORPHAN_AGE_S = 600
"""A blob unreferenced for this long is an orphan of a crash (uploads commit in moments)."""
MIGRATIONS = Path(__file__).resolve().parent / "migrations"


async def build(settings: Settings, database: Database, peers: Peers) -> Service:
    """The files servicer wired to its blob store, master keys and identity's quotas."""
    files_settings = load_files_settings(settings.home)
    blobs = LocalBlobStore(files_settings.blob_dir)  # empties its temp area
    outbox = Outbox()
    store = FileStore(database, outbox)
    files = Files(
        store,
        blobs,
        files_settings.master_keys,
        peers.identity,
        files_settings.max_file_bytes,
    )
    removed = await files.sweep_orphans(blobs.keys_older_than(ORPHAN_AGE_S))
    if removed:
        log.warning("removed orphaned blobs", extra={"count": removed})
    mount = Mount(
        files_pb2.DESCRIPTOR.services_by_name["FilesService"],
        FilesServicer(files),
        files_pb2_grpc.add_FilesServiceServicer_to_server,
    )

    async def gauges() -> dict[str, float]:
        stored, count = await store.totals()
        return {"storage_bytes": stored, "files": count}

    return Service([mount], background=[events_relay(database, outbox, peers)], gauges=gauges)


async def _rotate(new_dev_key: bool) -> int:
    settings = load_settings(SERVICE)
    if new_dev_key:
        print(f"added development master key {add_dev_master_key(settings.home)}")
    keys = load_files_settings(settings.home).master_keys
    database = Database(settings.database_url, MIGRATIONS)
    await database.open()
    try:
        count = await rotate_master_keys(FileStore(database), keys)
    finally:
        await database.close()
    print(f"re-wrapped {count} data keys under master key {keys.current_id}")
    return 0


def main(argv: list[str]) -> int:
    """Run the command in ``argv`` (serve when empty); returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m services.files", description=__doc__)
    commands = parser.add_subparsers(dest="command")
    rotate = commands.add_parser("rotate-keys", help="re-wrap data keys under the current key")
    rotate.add_argument("--new-dev-key", action="store_true", help="add a development key first")
    args = parser.parse_args(argv)
    if args.command == "rotate-keys":
        return asyncio.run(_rotate(args.new_dev_key))
    run(SERVICE, build, MIGRATIONS)
    return 0
