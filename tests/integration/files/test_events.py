"""Files' events, written with the change on SQLite and PostgreSQL: uploaded (with its size),
shared, deleted, and a quota warning each time an upload crosses 80 % and 100 % of the
tenant's storage quota."""

from __future__ import annotations

from alea.notification.v1 import notification_pb2 as pb
from google.protobuf import json_format
from sqlalchemy import select

from services.files.domain import Files, NewFile
from services.runtime.outbox import outbox_table
from tests.integration.files.conftest import FixedQuota, as_caller, user


async def events(files: Files) -> list[tuple[str, dict]]:
    async with files._store.db.reading() as session:
        payloads = (
            await session.execute(select(outbox_table.c.payload).order_by(outbox_table.c.seq))
        ).scalars()
        found = [pb.Event.FromString(p) for p in payloads]
    return [(pb.EventType.Name(e.type), json_format.MessageToDict(e.data)) for e in found]


async def chunks(data: bytes):
    yield data


async def test_uploads_crossing_80_and_100_percent_warn_once_each(
    files: Files, quota: FixedQuota
) -> None:
    owner = user("t-quota")
    quota.limits["t-quota"] = 1000
    for size in (700, 150, 100, 50):  # 70 %, 85 %, 95 %, 100 %
        await files.upload(owner, NewFile("a.csv", "text/csv"), chunks(b"x" * size))
    warnings = [d for n, d in await events(files) if n == "EVENT_TYPE_QUOTA_WARNING"]
    assert [(w["percent"], w["used_bytes"], w["limit_bytes"]) for w in warnings] == [
        (80, 850, 1000),
        (100, 1000, 1000),
    ]


async def test_upload_share_delete_are_events_with_sizes(files: Files, quota: FixedQuota) -> None:
    owner, reader = user("t-ev", "admin"), user("t-ev")
    quota.users[reader.user_id] = "t-ev"
    stored = await files.upload(owner, NewFile("b.csv", "text/csv"), chunks(b"12345"))
    await files.share(owner, stored.id, reader.user_id, as_caller(owner))
    await files.share(
        owner, stored.id, reader.user_id, as_caller(owner)
    )  # already shared: no second event
    await files.delete(owner, stored.id)
    written = await events(files)
    assert [n for n, _ in written] == [
        "EVENT_TYPE_FILE_UPLOADED",
        "EVENT_TYPE_FILE_SHARED",
        "EVENT_TYPE_FILE_DELETED",
    ]
    assert all(d["size_bytes"] == 5 and d["file_id"] == stored.id for _, d in written)
    assert written[1][1]["shared_with_user_id"] == reader.user_id
