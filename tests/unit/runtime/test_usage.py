"""API calls per tenant, user and hour: users' calls counted, services and health not,
written to the outbox as RecordEvent payloads that analytics deduplicates by id."""

from __future__ import annotations

from dataclasses import dataclass

import grpc
import pytest
from alea.analytics.v1 import analytics_pb2
from sqlalchemy import select

from services.runtime.context import Principal
from services.runtime.db import Database
from services.runtime.outbox import Outbox, outbox_table
from services.runtime.usage import ApiCallMeter


@dataclass
class Call:
    method: str
    principal: Principal | None
    code: grpc.StatusCode = grpc.StatusCode.OK


@pytest.fixture
def db(outbox_db: Database) -> Database:
    return outbox_db


async def test_users_calls_are_counted_per_tenant_user_and_hour(db: Database) -> None:
    meter = ApiCallMeter("files", db, Outbox())
    ann = Principal(user_id="u-1", tenant_id="t-1", role="viewer")
    bob = Principal(user_id="u-2", tenant_id="t-1", role="viewer")
    for principal in (ann, ann, bob, ann):
        meter.finished(Call("/alea.files.v1.FilesService/GetFile", principal))
    meter.finished(Call("/alea.files.v1.FilesService/GetFile", Principal(service="simulation")))
    meter.finished(Call("/grpc.health.v1.Health/Check", ann))
    meter.finished(Call("/alea.identity.v1.IdentityService/Login", None))
    assert await meter.flush() == 2
    assert await meter.flush() == 0
    async with db.reading() as session:
        rows = (await session.execute(select(outbox_table))).all()
    records = {r.record_id: analytics_pb2.RecordEventRequest.FromString(r.payload) for r in rows}
    counted = {(e.user_id, e.quantity) for e in records.values()}
    assert counted == {("u-1", 3.0), ("u-2", 1.0)}
    for record_id, event in records.items():
        assert event.request_id == record_id and event.tenant_id == "t-1"
        assert event.metric == analytics_pb2.USAGE_METRIC_API_CALLS
        assert event.event_time.seconds % 3600 == 0
