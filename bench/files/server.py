"""Benchmark server process: the real files servicer and a raw streaming servicer side by side.

Both speak mTLS with the same certificates and the same protobuf messages
(``UploadRequest`` in, ``HttpBody`` out), so their difference is exactly what the files
service adds: the runtime interceptor (auth, validation, logs, telemetry), SHA-256,
AES-256-GCM, the blob store on disk and the metadata transaction. Users are
authenticated by a fixed API key resolved locally (identity is not part of the
measurement), quotas are unlimited. Prints ``ready <files port> <raw port>``.
"""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import grpc
from alea.files.v1 import files_pb2, files_pb2_grpc
from google.api import httpbody_pb2

from services.files.api import FilesServicer
from services.files.app import MIGRATIONS
from services.files.blobs import LocalBlobStore
from services.files.crypto import MasterKeys
from services.files.domain import Files
from services.files.store import FileStore
from services.runtime.auth import ApiKeyCache, Authenticator, TokenVerifier
from services.runtime.config import load_settings
from services.runtime.context import Principal, ServicerContext
from services.runtime.db import Database
from services.runtime.server import Mount, create_server, serve

API_KEY = "bench-files-key"
PRINCIPAL = Principal(user_id=str(uuid.uuid4()), tenant_id=str(uuid.uuid4()), role="analyst")
RAW_SINK = "/bench.files.Raw/Sink"
RAW_SOURCE = "/bench.files.Raw/Source"


class Unlimited:
    """Every tenant may store anything, and every user exists (nothing is shared here)."""

    async def storage_limit(self, tenant_id: str) -> int:
        return 1 << 62

    async def user_exists(self, user_id: str, credentials: Sequence[tuple[str, str]]) -> bool:
        return True


async def _no_jwks() -> list[dict[str, Any]]:
    return []


async def _api_key(secret: str) -> tuple[Principal, None]:
    return PRINCIPAL, None


async def _sink(
    requests: AsyncIterator[files_pb2.UploadRequest], context: ServicerContext
) -> files_pb2.File:
    total = 0
    async for message in requests:
        total += len(message.chunk)
    return files_pb2.File(size_bytes=total)


async def _source(
    request: files_pb2.DownloadRequest, context: ServicerContext
) -> AsyncIterator[httpbody_pb2.HttpBody]:
    piece = os.urandom(1024 * 1024)
    remaining = request.length
    while remaining > 0:
        yield httpbody_pb2.HttpBody(data=piece[: min(remaining, len(piece))])
        remaining -= len(piece)


def raw_server(home: Path) -> tuple[grpc.aio.Server, int]:
    """A bare grpc.aio server (no interceptors) with the same TLS setup."""
    pki = home / "pki"
    credentials = grpc.ssl_server_credentials(
        [((pki / "files.key").read_bytes(), (pki / "files.crt").read_bytes())],
        root_certificates=(pki / "ca.crt").read_bytes(),
        require_client_auth=True,
    )
    handlers = {
        "Sink": grpc.stream_unary_rpc_method_handler(
            _sink, files_pb2.UploadRequest.FromString, files_pb2.File.SerializeToString
        ),
        "Source": grpc.unary_stream_rpc_method_handler(
            _source, files_pb2.DownloadRequest.FromString, httpbody_pb2.HttpBody.SerializeToString
        ),
    }
    server = grpc.aio.server(options=[("grpc.max_receive_message_length", 64 << 20)])
    generic = grpc.method_handlers_generic_handler("bench.files.Raw", handlers)
    server.add_generic_rpc_handlers([generic])
    return server, server.add_secure_port("127.0.0.1:0", credentials)


async def main() -> None:
    home = Path(os.environ["ALEA_HOME"])
    settings = load_settings(
        "files", {"ALEA_HOME": str(home), "ALEA_PORT": "0", "ALEA_LOG_LEVEL": "WARNING"}
    )
    database = Database(f"sqlite+aiosqlite:///{home / 'files.db'}", MIGRATIONS)
    await database.open()
    files = Files(
        FileStore(database),
        LocalBlobStore(home / "blobs"),
        MasterKeys("k", {"k": os.urandom(32)}),
        Unlimited(),
        max_file_bytes=1 << 34,
    )
    mount = Mount(
        files_pb2.DESCRIPTOR.services_by_name["FilesService"],
        FilesServicer(files),
        files_pb2_grpc.add_FilesServiceServicer_to_server,
    )
    authenticator = Authenticator(TokenVerifier(_no_jwks), ApiKeyCache(_api_key))
    server, port = create_server("files", [mount], settings, authenticator)
    raw, raw_port = raw_server(home)
    await raw.start()
    stop = asyncio.Event()
    task = asyncio.create_task(serve(server, stop))
    await asyncio.sleep(0.2)
    print(f"ready {port} {raw_port}", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)  # until stdin closes
    stop.set()
    await task
    await raw.stop(0)
    await database.close()


if __name__ == "__main__":
    asyncio.run(main())
