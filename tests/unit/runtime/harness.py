"""In-process servers for runtime tests: the real bootstrap on port 0 in a temp ALEA_HOME."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from services.identity.app import MIGRATIONS, build
from services.identity.store import IdentityStore
from services.identity.tokens import SigningKeys, load_kek
from services.runtime.auth import Authenticator
from services.runtime.clients import secure_channel
from services.runtime.config import Settings, load_settings
from services.runtime.db import Database
from services.runtime.peers import Peers
from services.runtime.server import AleaServer, Mount, create_server


def settings_for(service: str, home: Path, **env: str) -> Settings:
    """Settings on free ports under ``home``."""
    base = {"ALEA_HOME": str(home), "ALEA_PORT": "0", "ALEA_SHUTDOWN_GRACE": "1"}
    return load_settings(service, {**base, **env})


@asynccontextmanager
async def running(
    service: str, mounts: Sequence[Mount], settings: Settings, auth: Authenticator | None
) -> AsyncIterator[tuple[AleaServer, int]]:
    """A started server; stopped (gracefully) on exit."""
    server, port = create_server(service, mounts, settings, auth)
    await server.start()
    try:
        yield server, port
    finally:
        await server.stop()


@dataclass
class Subject:
    """A running in-process identity service and ways to reach it."""

    server: AleaServer
    port: int
    home: Path
    db: Database
    keys: SigningKeys
    _channels: dict[str, grpc.aio.Channel] = field(default_factory=dict)

    def channel(self, identity: str = "edge") -> grpc.aio.Channel:
        """A channel presenting ``identity``'s certificate, kept for the module: a stub alone
        does not keep an intercepted channel from being collected (and closed)."""
        if identity not in self._channels:
            address = f"localhost:{self.port}"
            self._channels[identity] = secure_channel(address, self.home / "pki", identity)
        return self._channels[identity]


@asynccontextmanager
async def identity_in_process(home: Path, mounts_hook=None, **env: str) -> AsyncIterator[Subject]:
    """The identity service on SQLite under ``home``; ``mounts_hook`` may swap the servicer,
    ``env`` adds settings (``ALEA_DEV_DIRECT_CALLS="1"``)."""
    settings = settings_for("identity", home, **env)
    db = Database(settings.database_url, MIGRATIONS)
    await db.open()
    try:
        service = await build(settings, db, Peers(settings))
        mounts, auth = list(service.mounts), service.authenticator
        if mounts_hook is not None:
            mounts = mounts_hook(mounts)
        async with running("identity", mounts, settings, auth) as (server, port):
            keys = SigningKeys(IdentityStore(db), load_kek(home / "pki"))
            yield Subject(server, port, home, db, keys)
    finally:
        await db.close()
