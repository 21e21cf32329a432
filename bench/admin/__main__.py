"""``python -m bench.admin [SECONDS] [CONCURRENCY] [ENTRIES]``: what auditing costs.

1. **RPC latency with the audit trail on vs off.** Two identity services in this process,
   each the real one (servicer, SQLite database, interceptor) on its own database: one with
   the runtime's audit trail (entries buffered, written to its outbox every 0.1 s, relayed
   by the outbox relay to a sink that accepts them — admin runs in another process in a
   mesh, so its appends are not this service's cost; they are measured in 2.), one
   without. The RPC is UpdateUser (a display name: one write transaction), a mutating call
   that is audited. Each round runs the two back to back, in alternating order, so load
   from elsewhere hits both alike; p50 and p95, and this process's CPU time per call
   (client, server and the audit's background work together: on a loaded machine the
   steadier measure), medians over rounds, and the ratios on/off as the median of the
   rounds' ratios. Target: p50 with auditing ≤ 1.05 × without.
2. **Audit append throughput on SQLite**: admin's AuditStore appending ENTRIES entries of
   10 tenants in relayed batches of 1,000 (hash chain, duplicates check, head rows), per
   second of wall-clock time and per second of this process's CPU time (what one core
   sustains however loaded the machine is). Target ≥ 5,000 entries/s.

Client, servers and the admin log share one event loop: ratios, not absolute numbers, are
the result. The load average is printed before and after.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import shutil
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

from alea.admin.v1 import admin_pb2
from alea.identity.v1 import identity_pb2 as pb
from alea.identity.v1 import identity_pb2_grpc
from google.protobuf import field_mask_pb2

from bench.closed_loop import closed_loop
from services.admin.app import MIGRATIONS as ADMIN_MIGRATIONS
from services.admin.store import AuditDraft, AuditStore
from services.identity.app import MIGRATIONS, build
from services.runtime import audit as audit_topic
from services.runtime.audit import AuditTrail
from services.runtime.clients import secure_channel
from services.runtime.config import load_settings
from services.runtime.db import Database
from services.runtime.interceptor import RpcObserver
from services.runtime.outbox import Outbox, OutboxRecord, Relay
from services.runtime.peers import Peers
from services.runtime.server import create_server

ROUNDS = 8
PASSWORD = "bench password 0123"


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


Call = Callable[[], Awaitable[object]]


async def _identity(
    home: Path, audited: bool, accepted: list[int]
) -> tuple[identity_pb2_grpc.IdentityServiceStub, pb.RegisterResponse, Call]:
    """A started identity server (audited or not), a stub and a token of a fresh admin."""
    settings = load_settings(
        "identity", {"ALEA_HOME": str(home), "ALEA_PORT": "0", "ALEA_HEALTH_PORT": "0"}
    )
    db = Database(settings.database_url, MIGRATIONS)
    await db.open()
    service = await build(settings, db, Peers(settings))
    observers: list[RpcObserver] = []
    tasks: list[asyncio.Task[None]] = []
    stop = asyncio.Event()
    if audited:
        outbox = Outbox()
        trail = AuditTrail("identity", db, outbox)

        async def sink(record: OutboxRecord) -> None:
            batch = admin_pb2.RecordAuditEventsRequest.FromString(record.payload)
            accepted.append(len(batch.records))

        relay = Relay(db, outbox, audit_topic.TOPIC, sink)
        observers.append(trail)
        tasks = [asyncio.create_task(trail.run(stop)), asyncio.create_task(relay.run(stop))]
    server, port = create_server(
        "identity", service.mounts, settings, service.authenticator, observers=observers
    )
    await server.start()
    channel = secure_channel(f"localhost:{port}", home / "pki", "edge")  # as the edge calls it
    stub = identity_pb2_grpc.IdentityServiceStub(channel)
    reply = await stub.Register(
        pb.RegisterRequest(
            tenant_display_name="Bench",
            email=f"{uuid.uuid4().hex}@example.com",
            password=PASSWORD,
            display_name="B",
        )
    )

    async def close() -> None:
        stop.set()
        await asyncio.gather(*tasks)
        await channel.close(None)
        await server.stop()
        await db.close()

    return stub, reply, close


def _update(stub: identity_pb2_grpc.IdentityServiceStub, reply: pb.RegisterResponse) -> Call:
    metadata = (("authorization", f"Bearer {reply.tokens.access_token}"),)
    mask = field_mask_pb2.FieldMask(paths=["display_name"])
    names = iter(range(10**9))

    async def call() -> object:
        user = pb.User(id=reply.user.id, display_name=f"n{next(names)}")
        request = pb.UpdateUserRequest(user=user, update_mask=mask)
        return await stub.UpdateUser(request, metadata=metadata)

    return call


async def latency(seconds: float, concurrency: int) -> None:
    base = Path(tempfile.mkdtemp(prefix="alea-bench-admin-"))
    accepted: list[int] = []
    cases = {}
    closers = []
    for name, audited in (("audit off", False), ("audit on", True)):
        home = base / name.replace(" ", "-")
        home.mkdir()
        stub, reply, close = await _identity(home, audited, accepted)
        cases[name] = _update(stub, reply)
        closers.append(close)
    for call in cases.values():
        await closed_loop(call, 0.5, concurrency)  # warm up
    rounds: dict[str, list[tuple[float, float, float]]] = {name: [] for name in cases}
    for round_ in range(ROUNDS):
        # Each round runs both cases back to back, in alternating order, so that a change
        # of load from elsewhere hits a pair alike; the ratios are taken per round.
        order = list(cases.items()) if round_ % 2 == 0 else list(reversed(cases.items()))
        for name, call in order:
            cpu = time.process_time()
            samples = sorted(await closed_loop(call, seconds / ROUNDS, concurrency))
            per_call = (time.process_time() - cpu) / len(samples)
            p95 = samples[int(len(samples) * 0.95)]
            rounds[name].append((statistics.median(samples) * 1e3, p95 * 1e3, per_call * 1e6))
    print(
        f"UpdateUser, concurrency {concurrency}, {seconds:g} s per case in {ROUNDS} paired "
        "rounds, one process and event loop (medians over rounds)"
    )
    result = {
        n: tuple(statistics.median(v[i] for v in r) for i in (0, 1, 2)) for n, r in rounds.items()
    }
    for name, (p50, p95, cpu_us) in result.items():
        print(f"  {name:10s} p50 {p50:6.3f} ms  p95 {p95:6.3f} ms  CPU {cpu_us:5.0f} us per call")

    def ratio(i: int) -> float:
        on, off = rounds["audit on"], rounds["audit off"]
        return statistics.median(a[i] / b[i] for a, b in zip(on, off, strict=True))

    verdict = "meets" if ratio(0) <= 1.05 else "MISSES"
    print(f"  p50 on/off = {ratio(0):.3f}, median of the rounds' ratios ({verdict} <= 1.05)")
    print(
        f"  CPU per call on/off = {ratio(2):.3f}, median of the rounds' ratios (what auditing "
        "costs, whatever the load)"
    )
    await asyncio.sleep(1.0)  # the last entries are relayed
    print(f"  audit entries relayed meanwhile: {sum(accepted)} in {len(accepted)} batches")
    for close in closers:
        await close()
    shutil.rmtree(base, ignore_errors=True)


async def throughput(entries: int) -> None:
    base = Path(tempfile.mkdtemp(prefix="alea-bench-audit-"))
    db = Database(f"sqlite+aiosqlite:///{base / 'admin.db'}", ADMIN_MIGRATIONS)
    await db.open()
    store = AuditStore(db)
    tenants = [str(uuid.uuid4()) for _ in range(10)]
    now = time.time()
    drafts = [
        AuditDraft(
            id=str(uuid.uuid4()),
            tenant_id=tenants[n % len(tenants)],
            service="files",
            actor=str(uuid.uuid4()),
            api_key_id="",
            action="alea.files.v1.FilesService/DeleteFile",
            resource=f"files/{uuid.uuid4()}",
            outcome="OK",
            request_id=uuid.uuid4().hex,
            client_address="127.0.0.1",
            details={"fields": ["display_name"]},
            event_time=now + n * 1e-4,
        )
        for n in range(entries)
    ]
    started, cpu = time.perf_counter(), time.process_time()
    for at in range(0, entries, 1000):
        await store.append(drafts[at : at + 1000])
    elapsed, used = time.perf_counter() - started, time.process_time() - cpu
    rate, per_cpu = entries / elapsed, entries / used
    verdict = "both meet" if min(rate, per_cpu) >= 5000 else "one MISSES"
    print(
        f"audit appends on SQLite: {entries} entries of {len(tenants)} tenants in batches of "
        f"1,000: {rate:,.0f} entries/s of wall-clock time ({elapsed:.2f} s), {per_cpu:,.0f} "
        f"per CPU-second ({verdict} the target of >= 5,000)"
    )
    await db.close()
    shutil.rmtree(base, ignore_errors=True)


async def main(seconds: float, concurrency: int, entries: int) -> None:
    logging.disable(logging.WARNING)
    print(f"load average before: {load_average()}")
    await latency(seconds, concurrency)
    await throughput(entries)
    print(f"load average after:  {load_average()}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        prog="python -m bench.admin",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("seconds", type=float, nargs="?", default=12.0, help="latency run")
    parser.add_argument("concurrency", type=int, nargs="?", default=4, help="calls in flight")
    parser.add_argument("entries", type=int, nargs="?", default=50_000, help="entries appended")
    args = parser.parse_args()
    asyncio.run(main(args.seconds, args.concurrency, args.entries))
