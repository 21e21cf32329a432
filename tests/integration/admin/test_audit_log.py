"""The audit log on SQLite and a real PostgreSQL: chains per tenant, duplicates skipped,
concurrent appenders never fork a chain, and tampering with the rows in the database —
an edited entry, a deleted middle entry, the newest entries removed — is detected."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from services.admin.app import MIGRATIONS
from services.admin.audit import PLATFORM, AuditLog
from services.admin.chain import entry_hash
from services.admin.signing import Signer
from services.admin.store import AuditDraft, AuditStore, Checkpoint
from services.runtime.context import Principal
from services.runtime.db import Database
from services.runtime.errors import InvalidArgument, NotFound, PermissionDenied
from services.runtime.listing import ListRequest
from tests.support.postgres import postgres  # noqa: F401  (session fixture)

TENANT, OTHER = str(uuid.uuid4()), str(uuid.uuid4())
ADMIN = Principal(user_id=str(uuid.uuid4()), tenant_id=TENANT, role="admin")
OPERATOR = Principal(user_id=str(uuid.uuid4()), tenant_id=OTHER, role="admin", platform=True)
_names = itertools.count()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'admin.db'}"
    else:
        url = request.getfixturevalue("postgres").create_database(f"admin{next(_names)}")
    database = Database(url, MIGRATIONS)
    await database.open()
    yield database
    await database.close()


class Published(list[Checkpoint]):
    async def __call__(self, checkpoint: Checkpoint) -> None:
        self.append(checkpoint)


@pytest.fixture
def published() -> Published:
    return Published()


@pytest.fixture
def log(db: Database, tmp_path: Path, published: Published) -> AuditLog:
    return AuditLog(AuditStore(db), Signer.load(tmp_path / "pki"), published)


def draft(tenant: str = TENANT, n: int = 0, **changes: object) -> AuditDraft:
    values: dict = {
        "id": str(uuid.uuid4()),
        "tenant_id": tenant,
        "service": "files",
        "actor": ADMIN.user_id,
        "api_key_id": "",
        "action": "alea.files.v1.FilesService/DeleteFile",
        "resource": f"files/{n}",
        "outcome": "OK",
        "request_id": f"request-{n}",
        "client_address": "127.0.0.1",
        "details": {"n": n, "nested": {"list": [1, 2.5, "x"]}},
        "event_time": time.time(),
    }
    return AuditDraft(**{**values, **changes})


async def fill(log: AuditLog, count: int, tenant: str = TENANT) -> None:
    await log.record([draft(tenant, n) for n in range(1, count + 1)])


async def sql(db: Database, statement: str, **params: object) -> None:
    async with db.transaction() as session:
        await session.execute(sa.text(statement), params)


async def test_each_tenant_has_its_own_chain_and_duplicates_count_once(log: AuditLog) -> None:
    batch = [draft(TENANT, 1), draft(OTHER, 1), draft(TENANT, 2)]
    assert await log.record(batch) == 3
    assert await log.record(batch) == 0  # the same batch relayed again
    page = await log.page(ADMIN, "", ListRequest(order_by="sequence"))
    assert [(e.sequence, e.resource) for e in page.items] == [(1, "files/1"), (2, "files/2")]
    assert page.items[1].previous_hash == page.items[0].hash
    assert page.items[0].details == {"n": 1, "nested": {"list": [1, 2.5, "x"]}}
    verdict = await log.verify(ADMIN, "", 0, 0, None)
    assert (verdict.valid, verdict.checked, verdict.head_sequence) == (True, 2, 2)


async def test_tenants_see_only_their_own_log(log: AuditLog) -> None:
    await log.record([draft(TENANT, 1), draft(OTHER, 1), draft(PLATFORM, 1)])
    with pytest.raises(NotFound):
        await log.page(ADMIN, OTHER, ListRequest())
    with pytest.raises(PermissionDenied):
        await log.page(ADMIN, "-", ListRequest())
    with pytest.raises(NotFound):
        await log.verify(ADMIN, OTHER, 0, 0, None)
    everything = await log.page(OPERATOR, "-", ListRequest(page_size=10))
    assert sorted(e.tenant_id for e in everything.items) == sorted([TENANT, OTHER, PLATFORM])
    assert (await log.verify(OPERATOR, "-", 0, 0, None)).head_sequence == 1  # the platform's


async def test_filters_page_and_order(log: AuditLog) -> None:
    await log.record(
        [draft(TENANT, n, outcome="OK" if n % 2 else "NOT_FOUND") for n in range(1, 8)]
    )
    page = await log.page(ADMIN, "", ListRequest(page_size=2, filter='outcome != "OK"'))
    second = await log.page(
        ADMIN,
        "",
        ListRequest(page_size=2, filter='outcome != "OK"', page_token=page.next_page_token),
    )
    assert [e.sequence for e in page.items + second.items] == [6, 4, 2]
    assert second.next_page_token == ""
    with pytest.raises(InvalidArgument) as bad:
        await log.page(ADMIN, "", ListRequest(filter='password = "x"'))
    assert bad.value.violations[0][0] == "filter"


async def test_concurrent_appenders_never_fork_a_chain(db: Database, tmp_path: Path) -> None:
    """Two admin replicas (two engines on one database) appending at once."""
    other_engine = Database(db.url)
    try:
        replicas = [
            AuditLog(AuditStore(d), Signer.load(tmp_path / "pki"), Published())
            for d in (db, other_engine)
        ]
        await asyncio.gather(*(r.record([draft(TENANT, n)]) for n in range(40) for r in replicas))
        verdict = await replicas[0].verify(ADMIN, "", 0, 0, None)
        assert (verdict.valid, verdict.checked) == (True, 80)
    finally:
        await other_engine.close()


async def test_an_edited_row_is_found_at_its_exact_sequence(log: AuditLog, db: Database) -> None:
    await fill(log, 10)
    await sql(
        db,
        "UPDATE audit_events SET outcome = 'OK', actor = 'someone' "
        "WHERE tenant_id = :t AND sequence = 7",
        t=TENANT,
    )
    verdict = await log.verify(ADMIN, "", 0, 0, None)
    assert (verdict.valid, verdict.first_invalid, verdict.checked) == (False, 7, 6)
    assert verdict.reason == "entry 7: content does not match its hash"


async def test_an_edited_time_is_found_too(log: AuditLog, db: Database) -> None:
    await fill(log, 5)
    await sql(
        db,
        "UPDATE audit_events SET event_time = event_time - 3600 "
        "WHERE tenant_id = :t AND sequence = 2",
        t=TENANT,
    )
    assert (await log.verify(ADMIN, "", 0, 0, None)).first_invalid == 2


async def test_a_deleted_middle_row_is_found_at_its_exact_sequence(
    log: AuditLog, db: Database
) -> None:
    await fill(log, 10)
    await sql(db, "DELETE FROM audit_events WHERE tenant_id = :t AND sequence = 4", t=TENANT)
    verdict = await log.verify(ADMIN, "", 0, 0, None)
    assert (verdict.valid, verdict.first_invalid) == (False, 4)
    assert verdict.reason == "entry 4 is missing"


async def test_truncation_is_found_by_the_signed_checkpoint(
    log: AuditLog, db: Database, published: Published
) -> None:
    """The newest rows removed, and the head row rewound to match: only the checkpoint,
    signed with a key the database does not hold, still knows how long the log was."""
    await fill(log, 10)
    checkpoint = await log.create_checkpoint(ADMIN, "")
    assert published == [checkpoint] and checkpoint.sequence == 10
    await sql(db, "DELETE FROM audit_events WHERE tenant_id = :t AND sequence > 7", t=TENANT)
    row = "SELECT hash FROM audit_events WHERE tenant_id = :t AND sequence = 7"
    await sql(
        db,
        f"UPDATE audit_heads SET sequence = 7, hash = ({row}) WHERE tenant_id = :t",
        t=TENANT,
    )
    verdict = await log.verify(ADMIN, "", 0, 0, None)
    assert (verdict.valid, verdict.first_invalid, verdict.head_sequence) == (False, 8, 7)
    assert "checkpoint 10" in verdict.reason and "removed" in verdict.reason
    # The rows removed and the stored checkpoint deleted too: a copy kept elsewhere (the
    # logs, the event feed) still tells.
    await sql(db, "DELETE FROM audit_checkpoints WHERE tenant_id = :t", t=TENANT)
    assert (await log.verify(ADMIN, "", 0, 0, None)).valid  # what the database alone shows
    verdict = await log.verify(ADMIN, "", 0, 0, checkpoint)
    assert (verdict.valid, verdict.first_invalid) == (False, 8)


async def test_truncation_without_the_head_rewound_needs_no_checkpoint(
    log: AuditLog, db: Database
) -> None:
    await fill(log, 6)
    await sql(db, "DELETE FROM audit_events WHERE tenant_id = :t AND sequence >= 5", t=TENANT)
    verdict = await log.verify(ADMIN, "", 0, 0, None)
    assert (verdict.valid, verdict.first_invalid) == (False, 5)


async def test_a_consistently_rewritten_tail_is_found_by_the_checkpoint(
    log: AuditLog, db: Database
) -> None:
    """Every hash from entry 6 on recomputed after an edit: the chain is consistent in
    itself, but entry 10 no longer has the hash checkpoint 10 signed, while checkpoint 5
    still matches — so the rewrite began after 5."""
    await fill(log, 5)
    await log.create_checkpoint(ADMIN, "")
    await fill(log, 5)
    await log.create_checkpoint(ADMIN, "")
    store = log.store
    entries = [e async for e in store.entries(TENANT, 1, None)]
    previous = entries[4].hash
    for entry in entries[5:]:
        forged = type(entry)(**{**entry.__dict__, "actor": "forger", "previous_hash": previous})
        digest = entry_hash(forged, previous)
        await sql(
            db,
            "UPDATE audit_events SET actor = 'forger', previous_hash = :p, hash = :h "
            "WHERE tenant_id = :t AND sequence = :s",
            p=previous,
            h=digest,
            t=TENANT,
            s=entry.sequence,
        )
        previous = digest
    await sql(db, "UPDATE audit_heads SET hash = :h WHERE tenant_id = :t", h=previous, t=TENANT)
    verdict = await log.verify(ADMIN, "", 0, 0, None)
    assert (verdict.valid, verdict.first_invalid) == (False, 6)
    assert "checkpoint 10" in verdict.reason


async def test_a_forged_checkpoint_is_refused(log: AuditLog, tmp_path: Path) -> None:
    await fill(log, 3)
    genuine = await log.create_checkpoint(ADMIN, "")
    forger = Signer.load(tmp_path / "forger")
    forged = Checkpoint(**{**genuine.__dict__, "sequence": 2, "signature": genuine.signature})
    with pytest.raises(InvalidArgument) as bad:
        await log.verify(ADMIN, "", 0, 0, forged)
    assert bad.value.violations[0][0] == "checkpoint.signature"
    foreign = Checkpoint(
        **{**genuine.__dict__, "key_id": forger.key_id, "public_key": forger.public_key}
    )
    with pytest.raises(InvalidArgument):
        await log.verify(ADMIN, "", 0, 0, foreign)


async def test_a_tampered_stored_checkpoint_is_reported(log: AuditLog, db: Database) -> None:
    await fill(log, 4)
    await log.create_checkpoint(ADMIN, "")
    await sql(db, "UPDATE audit_checkpoints SET sequence = 3 WHERE tenant_id = :t", t=TENANT)
    verdict = await log.verify(ADMIN, "", 0, 0, None)
    assert not verdict.valid and "not signed" in verdict.reason


async def test_periodic_checkpoints_cover_only_logs_that_grew(
    log: AuditLog, published: Published
) -> None:
    await fill(log, 2)
    await fill(log, 1, OTHER)
    first = await log.sign_grown()
    assert sorted((c.tenant_id, c.sequence) for c in first) == sorted([(TENANT, 2), (OTHER, 1)])
    assert await log.sign_grown() == []
    await fill(log, 1)
    assert [(c.tenant_id, c.sequence) for c in await log.sign_grown()] == [(TENANT, 3)]
    assert len(published) == 3
    assert (await log.checkpoint(ADMIN, "", 2)).sequence == 2


async def test_a_range_is_checked_from_its_anchor(log: AuditLog, db: Database) -> None:
    await fill(log, 8)
    assert (await log.verify(ADMIN, "", 5, 6, None)).checked == 2
    await sql(
        db, "UPDATE audit_events SET resource = 'x' WHERE tenant_id = :t AND sequence = 2", t=TENANT
    )
    assert (await log.verify(ADMIN, "", 5, 8, None)).valid  # the edit lies before the range
    assert (await log.verify(ADMIN, "", 1, 8, None)).first_invalid == 2


async def test_exports_carry_the_chain(log: AuditLog) -> None:
    await fill(log, 3)
    ndjson = b"".join([c async for c in log.export(ADMIN, "", ListRequest(), True)])
    lines = [json.loads(line) for line in ndjson.decode().splitlines()]
    assert [line["sequence"] for line in lines] == [1, 2, 3]
    assert lines[1]["previous_hash"] == lines[0]["hash"]
    csv_text = b"".join([c async for c in log.export(ADMIN, "", ListRequest(), False)]).decode()
    rows = csv_text.splitlines()
    assert rows[0].startswith("tenant_id,sequence,event_time") and len(rows) == 4


async def test_verification_during_appends_sees_no_tampering(log: AuditLog) -> None:
    """Entries arriving while a verification reads the log are not missing entries."""
    await fill(log, 5)
    await log.create_checkpoint(ADMIN, "")

    async def append() -> None:
        for n in range(30):
            await log.record([draft(TENANT, n)])
            if n % 10 == 0:
                await log.create_checkpoint(ADMIN, "")

    async def verify() -> list[str]:
        reasons = []
        for _ in range(15):
            verdict = await log.verify(ADMIN, "", 0, 0, None)
            reasons += [] if verdict.valid else [verdict.reason]
        return reasons

    _, reasons = await asyncio.gather(append(), verify())
    assert reasons == []
