"""Subscribers of the tenant's feed in a process of their own.

A feed's consumers are other programs, not the client whose simulation is timed: run in the
benchmark's own process, receiving 1,000 copies of each event would take that client's event
loop and core from under it, and its simulation would look slower for a cost that no real
client pays. Each subscriber records the latency of every event it receives (its arrival
minus the event's time); the parent gets them back when it stops the process.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import time
from collections.abc import Sequence
from multiprocessing.connection import Connection

import grpc
from alea.notification.v1 import notification_pb2 as npb
from alea.notification.v1 import notification_pb2_grpc

from services.cli.mesh_procs import MeshLayout
from services.runtime.clients import channel_credentials

Metadata = tuple[tuple[str, str], ...]

STREAMS_PER_CONNECTION = 90  # the edge allows 100 concurrent streams per HTTP/2 connection
START_SECONDS = 120  # for every subscriber to be connected


def edge_channel(layout: MeshLayout, n: int = 0) -> grpc.aio.Channel:
    """A client channel to the edge. A distinct argument per ``n``: a connection of its own
    (streams per connection are limited at the edge)."""
    options = [("grpc.ssl_target_name_override", "localhost"), ("alea.bench.connection", n)]
    return grpc.aio.secure_channel(
        f"localhost:{layout.edge_port}", channel_credentials(layout.pki, "client"), options
    )


class SubscriberProcess:
    """``count`` subscribers of simulation.succeeded, connected when the constructor returns."""

    def __init__(self, layout: MeshLayout, metadata: Metadata, count: int) -> None:
        context = multiprocessing.get_context("spawn")  # gRPC does not survive a fork
        self._pipe, child = context.Pipe()
        self._process = context.Process(
            target=_serve, args=(layout, metadata, count, child), daemon=True
        )
        self._process.start()
        child.close()
        if not self._pipe.poll(START_SECONDS):
            self._process.kill()
            raise TimeoutError(f"{count} subscribers not connected in {START_SECONDS} s")
        self._pipe.recv()  # connected

    @property
    def pid(self) -> int:
        """The subscribers' process (for its CPU time)."""
        assert self._process.pid is not None  # started in the constructor
        return self._process.pid

    def stop(self) -> list[float]:
        """Disconnect every subscriber; the latencies (s) of every event each received."""
        self._pipe.send("stop")
        latencies: list[float] = self._pipe.recv()
        self._process.join(30)
        return latencies


def _serve(layout: MeshLayout, metadata: Metadata, count: int, pipe: Connection) -> None:
    asyncio.run(_subscribe(layout, metadata, count, pipe))


async def _subscribe(layout: MeshLayout, metadata: Metadata, count: int, pipe: Connection) -> None:
    latencies: list[float] = []
    channels = [edge_channel(layout, n) for n in range(1 + count // STREAMS_PER_CONNECTION)]
    ready = asyncio.Semaphore(0)
    request = npb.SubscribeRequest(types=[npb.EVENT_TYPE_SIMULATION_SUCCEEDED])

    async def follow(n: int) -> None:
        stub = notification_pb2_grpc.NotificationServiceStub(channels[n // STREAMS_PER_CONNECTION])
        call = stub.Subscribe(request, metadata=metadata)
        await call.initial_metadata()
        ready.release()
        async for message in call:
            latencies.append(time.time() - message.event_time.ToNanoseconds() / 1e9)

    tasks = [asyncio.create_task(follow(n)) for n in range(count)]
    for _ in range(count):
        await ready.acquire()
    pipe.send("connected")
    await asyncio.to_thread(pipe.recv)  # the parent's "stop"
    await _close(tasks, channels)
    pipe.send(latencies)


async def _close(tasks: Sequence[asyncio.Task[None]], channels: Sequence[grpc.aio.Channel]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for channel in channels:
        await channel.close(None)
