"""``python -m bench.files [--mb 100] [--repeat 3]``: files service MB/s vs raw gRPC streaming.

Starts ``bench.files.server`` as a separate process (the files servicer and a raw
streaming servicer, both mTLS) and, from this process, streams the same bytes in the
same 1 MiB messages through each: Upload vs a raw client stream, Download vs a raw
server stream. Prints the median MB/s of ``--repeat`` runs and the ratio files/raw.
On a 2-core machine the client and the server each get roughly one core; pass
``--pin`` to pin the server to CPU 1 and this client to CPU 0.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterable, Awaitable, Iterator
from pathlib import Path
from typing import TypeVar

import grpc
from alea.files.v1 import files_pb2, files_pb2_grpc
from google.api import httpbody_pb2

from bench.files.server import API_KEY, RAW_SINK, RAW_SOURCE
from services.runtime.clients import channel_credentials
from services.runtime.pki import ensure_pki

MIB = 1024 * 1024
METADATA = (("x-api-key", API_KEY),)
T = TypeVar("T")
OPTIONS = (
    ("grpc.ssl_target_name_override", "localhost"),
    ("grpc.max_receive_message_length", 64 << 20),
)


def _messages(data: bytes, sha256: str) -> Iterator[files_pb2.UploadRequest]:
    meta = files_pb2.FileMetadata(file_name="bench.bin", size_bytes=len(data), sha256=sha256)
    yield files_pb2.UploadRequest(metadata=meta)
    view = memoryview(data)
    for start in range(0, len(data), MIB):
        yield files_pb2.UploadRequest(chunk=bytes(view[start : start + MIB]))


async def _timed(coro: Awaitable[T]) -> tuple[float, T]:
    start = time.perf_counter()
    result = await coro
    return time.perf_counter() - start, result


async def _drain(call: AsyncIterable[httpbody_pb2.HttpBody]) -> int:
    return sum([len(message.data) async for message in call])


async def run(mb: int, repeat: int, files_port: int, raw_port: int, pki: Path) -> dict[str, float]:
    data = os.urandom(mb * MIB)
    digest = hashlib.sha256(data).hexdigest()
    credentials = channel_credentials(pki, "edge")  # straight to files, as the edge calls it
    files_channel = grpc.aio.secure_channel(f"127.0.0.1:{files_port}", credentials, OPTIONS)
    raw_channel = grpc.aio.secure_channel(f"127.0.0.1:{raw_port}", credentials, OPTIONS)
    stub = files_pb2_grpc.FilesServiceStub(files_channel)
    sink = raw_channel.stream_unary(
        RAW_SINK, files_pb2.UploadRequest.SerializeToString, files_pb2.File.FromString
    )
    source = raw_channel.unary_stream(
        RAW_SOURCE, files_pb2.DownloadRequest.SerializeToString, httpbody_pb2.HttpBody.FromString
    )
    times: dict[str, list[float]] = {k: [] for k in ("up", "raw_up", "down", "raw_down")}
    for _ in range(repeat):
        seconds, raw = await _timed(sink(_messages(data, digest)))
        assert raw.size_bytes == len(data)
        times["raw_up"].append(seconds)
        seconds, stored = await _timed(stub.Upload(_messages(data, digest), metadata=METADATA))
        assert stored.sha256 == digest
        times["up"].append(seconds)
        request = files_pb2.DownloadRequest(file_id=stored.id)
        seconds, size = await _timed(_drain(stub.Download(request, metadata=METADATA)))
        assert size == len(data)
        times["down"].append(seconds)
        seconds, size = await _timed(_drain(source(files_pb2.DownloadRequest(length=len(data)))))
        assert size == len(data)
        times["raw_down"].append(seconds)
        await stub.DeleteFile(files_pb2.DeleteFileRequest(file_id=stored.id), metadata=METADATA)
    await files_channel.close(None)
    await raw_channel.close(None)
    return {key: mb / statistics.median(values) for key, values in times.items()}


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.files", description=__doc__)
    parser.add_argument("--mb", type=int, default=100, help="file size in MiB")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--pin", action="store_true", help="server on CPU 1, client on CPU 0")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="alea-bench-files-") as home:
        pki = ensure_pki(Path(home))
        command = [sys.executable, "-m", "bench.files.server"]
        if args.pin:
            command = ["taskset", "-c", "1", *command]
            os.sched_setaffinity(0, {0})
        server = subprocess.Popen(
            command,
            env={**os.environ, "ALEA_HOME": home},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert server.stdout is not None and server.stdin is not None
        try:
            _, files_port, raw_port = server.stdout.readline().split()
            rates = asyncio.run(run(args.mb, args.repeat, int(files_port), int(raw_port), pki))
        finally:
            server.stdin.close()
            server.wait(30)
    print(f"{args.mb} MiB, median of {args.repeat}, 1 MiB messages, mTLS, loopback")
    print(f"{'direction':<10}{'files MB/s':>12}{'raw MB/s':>12}{'ratio':>8}")
    for name, key in (("upload", "up"), ("download", "down")):
        files_rate, raw_rate = rates[key], rates[f"raw_{key}"]
        print(f"{name:<10}{files_rate:>12.1f}{raw_rate:>12.1f}{files_rate / raw_rate:>8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
